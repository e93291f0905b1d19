"""experiments/real_towers.py: on a SYNTHETIC folder of the same layout (never seen, other sites), and on 3 real towers."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from support.towers import write_tower

ROOT = Path(__file__).resolve().parents[2]


def _experiment() -> ModuleType:
    spec = importlib.util.spec_from_file_location("real_towers", ROOT / "experiments" / "real_towers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _layout(root: Path) -> Path:
    """A folder laid out as icos_towers/ with SYNTHETIC sites (3 with bands, 1 index-only, 1 without GPP, 1 stray file)."""
    rows = []
    for i, (site, igbp, bands) in enumerate([("XX-Aa", "GRA", True), ("XX-Bb", "CRO", True), ("XX-Cc", "DBF", True),
                                             ("XX-Dd", "ENF", False), ("XX-Ee", "WET", False)]):
        lat = 44.0 + 2 * i
        p = write_tower(root / "tmp" / site, site, lat, seed=i, start="2019-01-01", end="2020-12-31", ppi_fill_days=2)
        rows.append({"site_id": site, "name": f"synthetic {site}", "lat": lat, "lon": 2.0 + i, "igbp": igbp})
        if site != "XX-Ee":
            (root / "gpp_daily").mkdir(parents=True, exist_ok=True)
            shutil.copy(p["flux"], root / "gpp_daily" / p["flux"].name)
        (root / "s2_indices").mkdir(parents=True, exist_ok=True)
        for key in ("ndvi", "ppi"):
            shutil.copy(p[key], root / "s2_indices" / p[key].name)
        if bands:
            (root / "s2_bands").mkdir(parents=True, exist_ok=True)
            shutil.copy(p["bands"], root / "s2_bands" / p["bands"].name)
    shutil.rmtree(root / "tmp")
    (root / "s2_indices" / "ZZ-Stray_S2_LAI_synthetic.csv").write_text("t,LAI_mean\n2019-01-01,1.0\n")
    pd.DataFrame(rows).to_csv(root / "sites.csv", index=False)
    return root


def test_real_towers_runs_on_a_folder_it_has_never_seen(tmp_path: Path) -> None:
    data = _layout(tmp_path / "data")
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    out = tmp_path / "run"
    rc = _experiment().main(["--data", str(data), "--out", str(out), "--heads", "linear", "--quiet", "--no-interpret",
                             "--runs", "index_groupkfold,band_loso_paired"])
    assert rc == 0
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# SYNTHETIC DATA")
    assert "XX-Ee: no file in gpp_daily/" in summary and "ZZ-Stray_S2_LAI_synthetic.csv" in summary
    inventory = pd.read_csv(out / "inventory.csv")
    assert set(inventory.loc[inventory["use"] == "skipped", "site_id"]) == {"ZZ-Stray"}
    for run in ("index_groupkfold", "band_loso_paired"):
        pooled = pd.read_csv(out / "runs" / run / "metrics_pooled.csv")
        assert {"features", "head", "n", "r2", "rmse", "mae"} <= set(pooled.columns) and len(pooled)
        assert (out / "runs" / run / "metrics_per_site.csv").is_file() and (out / "runs" / run / "index.html").is_file()
    band = pd.read_csv(out / "runs" / "band_loso_paired" / "metrics_pooled.csv")
    assert len(set(band["n"])) == 1 and {"embeddings", "bands+potrad", "indices_x_potrad"} <= set(band["features"])
    assert set(pd.read_csv(out / "runs" / "band_loso_paired" / "predictions.csv")["site_id"]) == {"XX-Aa", "XX-Bb", "XX-Cc"}
    assert (out / "figures" / "seasonal_3_igbp.png").stat().st_size > 10_000
    probe = pd.read_csv(out / "probe_bands.csv")
    assert set(probe["target"]) >= {"NDVI", "B04", "B08"} and probe["r2_loso"].notna().all()
    info = json.loads((out / "summary.json").read_text())
    assert info["synthetic"] is True and "band_loso_paired" in info["best"]
    assert before == {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}  # nothing written into the input folder
    # a re-run resumes: finished runs and embeddings are kept, not refitted
    stamp = (out / "runs" / "band_loso_paired" / "provenance.json").stat().st_mtime_ns
    assert _experiment().main(["--data", str(data), "--out", str(out), "--heads", "linear", "--quiet", "--no-interpret",
                               "--runs", "band_loso_paired"]) == 0
    assert (out / "runs" / "band_loso_paired" / "provenance.json").stat().st_mtime_ns == stamp
    # an output inside the data folder is refused before anything is written
    assert _experiment().main(["--data", str(data), "--out", str(data / "run"), "--quiet"]) == 2
    assert not (data / "run").exists()


def test_real_towers_three_real_sites(shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / "icos_towers"
    if not (data / "sites.csv").is_file():
        pytest.skip(f"{data} is absent (real ICOS towers)")
    out = tmp_path / "real3"
    rc = _experiment().main(["--data", str(data), "--out", str(out), "--heads", "linear", "--quiet", "--no-interpret",
                             "--sites", "DE-Gri,DE-HoH,FI-Hyy", "--runs", "band_loso_paired"])
    assert rc == 0
    pooled = pd.read_csv(out / "runs" / "band_loso_paired" / "metrics_pooled.csv").set_index("features")
    print("\nREAL 3 band sites, LOSO paired, linear:\n", pooled[["n", "r2", "rmse", "mae"]].round(3).to_string())
    assert pooled["n"].nunique() == 1 and pooled["n"].iloc[0] > 2000
    assert pooled.loc["bands+potrad", "r2"] > pooled.loc["bands", "r2"]  # light matters on real towers too
    assert (out / "summary.md").read_text().startswith("# Real towers")


@pytest.mark.slow
def test_real_towers_full_folder(shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / "icos_towers"
    if not (data / "sites.csv").is_file():
        pytest.skip(f"{data} is absent (real ICOS towers)")
    out = tmp_path / "real"
    assert _experiment().main(["--data", str(data), "--out", str(out), "--quiet"]) == 0
    best = json.loads((out / "summary.json").read_text())["best"]
    assert best["index_groupkfold"]["r2"] > 0.6 and best["band_loso_paired"]["r2"] > 0.6
    skipped = pd.read_csv(out / "inventory.csv")
    assert (skipped["use"] != "skipped").all()  # every file of the folder is read
