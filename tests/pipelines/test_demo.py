"""`ecoembed demo` through the real CLI entry point, shrunk (3 sites, 8x8 px, linear head) to stay fast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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
    for fp in sites["features_path_s2only"]:
        assert (out / "data" / fp).is_dir()
    learnt = {"embeddings", "embeddings:s2only", "embeddings+meteo", "bands", "indices", "indices_x_par", "meteo"}
    lue = {"indices_x_par+meteo", "indices_x_potrad", "mod17"}  # the LUE baselines, on by default
    assert set(pooled["features"]) == learnt | lue
    assert set(pooled.loc[pooled["features"].isin(learnt), "head"]) == {"linear"}
    assert pooled["n"].nunique() == 1 and (pooled["n"] > 300).all()  # paired: every model on the same site-days
    assert (pooled["r2_lo"] <= pooled["r2"]).all() and (pooled["r2"] <= pooled["r2_hi"]).all()
    html = (out / "run" / "index.html").read_text()
    assert "SYNTHETIC DATA" in html and "section skipped" not in html
    body = html[html.index("<body"):]
    assert body.index('id="findings"') < body.index("Cross-validated skill")  # the report opens with its findings
    assert "indices_x_par+meteo / linear" in html and '<div id="site-map">' in html
    assert 'id="embedding-products"' in html and not (out / "run_s2only").exists()
    pheno = pd.read_csv(out / "run" / "phenology.csv")
    assert len(pheno) > 0 and pheno["sos_obs"].notna().any()
    # the report explains the combined set, so families share the work visibly
    prov = json.loads((out / "run" / "provenance.json").read_text())
    assert prov["interpreted_feature_set"] == "embeddings+meteo"
    fam = pd.read_csv(out / "run" / "interpret_contributions_family.csv").set_index("family")
    assert set(fam.index) == {"embedding", "meteo"} and fam["share"].sum() == pytest.approx(1.0)
    assert (out / "run" / "figures" / "pca_rgb.png").is_file()


def test_demo_maps_one_scene_and_the_report_shows_it(demo_dir: tuple[Path, int, str]) -> None:
    """Issue 20: the demo keeps the embedding models, maps one synthetic scene and shows the map in the report."""
    import xarray as xr

    out, rc, _ = demo_dir
    assert rc == 0
    assert (out / "run" / "models" / "embeddings__linear" / "model.json").is_file()
    with xr.open_dataset(out / "map" / "gpp.nc") as g:
        assert g["gpp"].dims == ("time", "y", "x") and g.attrs["synthetic"] == 1
        assert int(g["gpp"].notnull().sum()) > 0.9 * g["gpp"].size
        assert float(g["gpp"].mean()) > 0.5  # gC m-2 d-1: a vegetated scene, not zeros
    html = (out / "run" / "index.html").read_text()
    assert "Beyond the towers" in html and "SYNTHETIC scene of site" in html and 'id="kept-models-coverage"' in html
    assert (out / "map" / "index.html").is_file() and (out / "map" / "gpp_mean.tif").is_file()
    cov = pd.read_csv(out / "run" / "models" / "coverage.csv")
    print("\nSYNTHETIC demo, held-out-site coverage:\n", cov.to_string(index=False))
    assert (cov["coverage"] - cov["level"]).abs().max() < 0.1  # 3 towers: each site's coverage rests on two others


def test_demo_report_in_headless_chromium_shows_findings_and_site_map(demo_dir: tuple[Path, int, str], tmp_path: Path) -> None:
    """Issue 18: the rendered page (not just its HTML) opens with the findings box and shows the site map."""
    from matplotlib import colormaps
    from PIL import Image

    from ecoembed.report.screenshot import find_chromium, render

    if find_chromium() is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    out, rc, _ = demo_dir
    assert rc == 0
    png = render(out / "run", tmp_path / "shot.png", width=1400, height=4000)
    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=int)

    def near(colour: tuple[int, ...], tol: int = 6) -> np.ndarray:
        return (np.abs(rgb - np.asarray(colour[:3])) <= tol).all(axis=2)

    # the findings box: its pale-blue fill (#eef5fb) in a wide band in the first 900 px of the page
    fill_rows = np.flatnonzero(near((0xEE, 0xF5, 0xFB), 2).sum(axis=1) > 600)
    assert fill_rows.size > 60 and fill_rows.min() < 900, fill_rows[:5]
    # the site map: its RdYlGn colour bar (no other figure uses that map) drawn below the box
    ramp = colormaps["RdYlGn"]
    for q in (0.15, 0.5, 0.85):
        colour = tuple(round(255 * float(c)) for c in ramp(q)[:3])
        ys = np.flatnonzero(near(colour).any(axis=1))
        assert ys.size > 5 and ys.min() > fill_rows.max(), (q, colour)


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
