"""Site ids through fit-gpp (issue 19): text as written in every output, and a shared flux file only when asked.

The refusals (unsafe, case-only duplicate, shared flux file, extra fields) are cases of
tests/cli/test_malformed_inputs.py; here are the inputs that must pass.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ecoembed.cli import main
from ecoembed.sources.synthetic import write_embedding_sites as make_sites

FIT = ["--features", "embeddings", "--head", "linear", "--no-interpret", "--no-keep-models", "--no-baselines", "--quiet"]


def read_text_table(path: Path) -> pd.DataFrame:
    """A CSV with every cell as the text written (no NA guessing, no numbers)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def renamed_sites(root: Path, names: dict[str, str]) -> Path:
    """SYNTHETIC sites with ids replaced by ``names`` (old -> new); flux files renamed so their names agree."""
    csv = make_sites(root, n_sites=3, days=90)
    sites = read_text_table(csv)
    for old, new in names.items():
        row = sites.index[sites["site_id"] == old][0]
        flux = root / sites.loc[row, "flux_path"]
        moved = flux.with_name(flux.name.replace(f"FLX_{old}_", f"FLX_{new}_"))
        flux.rename(moved)
        sites.loc[row, ["site_id", "flux_path"]] = [new, moved.name]
    sites.to_csv(csv, index=False)
    return csv


def test_ids_na_and_001_round_trip_verbatim(tmp_path: Path) -> None:
    """``NA`` and ``001`` are ids, not a missing value and the number 1: every output keeps them as written."""
    csv = renamed_sites(tmp_path / "data", {"ZZ-T0": "NA", "ZZ-T1": "001"})
    assert "\nNA," in csv.read_text() and "\n001," in csv.read_text()
    out = tmp_path / "run"
    assert main(["fit-gpp", "--sites", str(csv), "--out", str(out), *FIT]) == 0
    expected = {"NA", "001", "ZZ-T2"}
    for name in ("predictions.csv", "metrics_per_site.csv", "days_lost.csv"):
        assert set(read_text_table(out / name)["site_id"]) == expected, name
    assert set(pd.read_parquet(out / "predictions.parquet")["site_id"]) == expected
    predictions = read_text_table(out / "predictions.csv")
    assert (predictions["fold"] == predictions["site_id"]).all()  # LOSO folds are the ids too
    assert read_text_table(out / "skipped_sites.csv").empty
    report = (out / "report.md").read_text()
    assert "| NA |" in report and "| 001 |" in report  # the report read its tables back with the ids as text
    html = (out / "index.html").read_text()
    assert "<td>NA</td>" in html and "<td>001</td>" in html


@pytest.fixture()
def shared_flux_sites(tmp_path: Path) -> Path:
    """Sites ZZ-T0 and ZZ-T1 both naming one flux file (a copy of ZZ-T0's, under a name without a site id)."""
    csv = make_sites(tmp_path / "data", n_sites=3, days=90)
    sites = read_text_table(csv)
    shutil.copyfile(csv.parent / sites.loc[0, "flux_path"], csv.parent / "shared_tower.csv")
    sites.loc[[0, 1], "flux_path"] = "shared_tower.csv"
    sites.to_csv(csv, index=False)
    return csv


def test_shared_flux_file_runs_with_allow_shared_flux(shared_flux_sites: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["fit-gpp", "--sites", str(shared_flux_sites), "--out", str(out), *FIT]) == 2
    err = capsys.readouterr().err
    assert "share the flux file" in err and "--allow-shared-flux" in err and err.count("\n") == 1
    assert not out.exists()
    assert main(["fit-gpp", "--sites", str(shared_flux_sites), "--out", str(out), "--allow-shared-flux", *FIT]) == 0
    assert set(read_text_table(out / "predictions.csv")["site_id"]) == {"ZZ-T0", "ZZ-T1", "ZZ-T2"}
    assert json.loads((out / "provenance.json").read_text())["options"]["allow_shared_flux"] is True
