"""`ecoembed demo` through the real CLI entry point, shrunk (3 sites, 8x8 px, linear head) to stay fast."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ecoembed.cli import main


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo") / "out"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["demo", "--out", str(out), "--sites", "3", "--size-px", "8", "--head", "linear", "--quiet"])
    return out, rc, buf.getvalue()


def test_demo_writes_report_summary_and_embeddings(demo_dir: tuple[Path, int, str]) -> None:
    out, rc, stdout = demo_dir
    assert rc == 0, stdout
    assert "SYNTHETIC" in stdout and "index.html" in stdout
    summary = (out / "demo_summary.md").read_text()
    assert summary.startswith("# ecoembed demo — SYNTHETIC DATA")
    info = json.loads((out / "demo_summary.json").read_text())
    assert info["synthetic"] is True and info["n_sites"] == 3 and info["seconds"]["total"] > 0
    assert [r["head"] for r in info["fused_vs_s2only"]] == ["linear"]
    sites = pd.read_csv(out / "data" / "sites.csv")
    assert len(sites) == 3 and sites["synthetic"].all()
    for fp in sites["features_path"]:
        assert "fused_synthetic" in fp and (out / "data" / fp).is_dir()
    pooled = pd.read_csv(out / "run" / "metrics_pooled.csv")
    assert set(pooled["features"]) == {"embeddings", "embeddings+meteo", "bands", "indices", "indices_x_par", "meteo"}
    assert set(pooled["head"]) == {"linear"} and (pooled["n"] > 300).all()
    html = (out / "run" / "index.html").read_text()
    assert "SYNTHETIC DATA" in html and "section skipped" not in html
    assert (out / "run_s2only" / "metrics_pooled.csv").is_file()
    # the report explains the combined set, so families share the work visibly
    prov = json.loads((out / "run" / "provenance.json").read_text())
    assert prov["interpreted_feature_set"] == "embeddings+meteo"
    fam = pd.read_csv(out / "run" / "interpret_contributions_family.csv").set_index("family")
    assert set(fam.index) == {"embedding", "meteo"} and fam["share"].sum() == pytest.approx(1.0)
    assert (out / "run" / "figures" / "pca_rgb.png").is_file()


def test_demo_refuses_a_non_empty_folder(demo_dir: tuple[Path, int, str], capsys: pytest.CaptureFixture[str]) -> None:
    out, _, _ = demo_dir
    before = (out / "demo_summary.md").read_text()
    assert main(["demo", "--out", str(out), "--sites", "3", "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "demo_summary.md").read_text() == before


def test_demo_needs_three_sites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path / "d"), "--sites", "2", "--quiet"]) == 2
    assert "at least 3" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
