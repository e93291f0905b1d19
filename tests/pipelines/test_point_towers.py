"""Towers given as point tables (band / index series at the tower) and ISO-date DD flux files, on SYNTHETIC towers.

Covers the point-series source in fit-gpp, potential radiation features, index tables
versus bands, the skip-and-name rule for bad sites, ``--strict``, ``--paired``,
``--cv holdout`` and ``ecoembed embed`` on a point table.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from support.towers import write_tower, write_tower_sites

from ecoembed.cli import main
from ecoembed.errors import InputError
from ecoembed.gpp.cv import cv_splits, parse_years
from ecoembed.gpp.features import site_features
from ecoembed.gpp.radiation import potential_radiation, potential_radiation_mj
from ecoembed.pipelines.fit_gpp import common_columns, run_fit_gpp
from fluxnet import read_flux, read_sites_csv


def _cli(args: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(args)
    return rc, out.getvalue() + err.getvalue()


# --- potential radiation -----------------------------------------------------------------------


def test_potential_radiation_matches_fao56_example_and_polar_night() -> None:
    # FAO-56 example 8: 20 deg S on 3 September (day 246): Ra = 32.2 MJ m-2 d-1
    assert potential_radiation_mj(-20.0, 246) == pytest.approx(32.2, abs=0.1)
    # polar night at 80 N in late December, polar day at the June solstice is larger than at the equator
    assert potential_radiation_mj(80.0, 355) == 0.0
    assert potential_radiation_mj(80.0, 172) > potential_radiation_mj(0.0, 172)
    w = potential_radiation(50.0, pd.date_range("2020-01-01", "2020-12-31"))
    assert w.argmax() in range(165, 180) and 60 < w.min() < 120 and 450 < w.max() < 520  # W m-2 daily mean at the top of the atmosphere
    with pytest.raises(ValueError, match="latitude"):
        potential_radiation_mj(95.0, 1)


# --- point tables in fit-gpp -------------------------------------------------------------------


@pytest.fixture(scope="module")
def towers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tower_sites(tmp_path_factory.mktemp("towers"), n_sites=4)


def test_index_table_equals_indices_from_bands(towers: Path) -> None:
    sites = read_sites_csv(towers)
    site = sites.iloc[0].copy()
    flux = read_flux(str(site["flux_path"]), site_id=str(site["site_id"]), qc_missing="pass")
    from_bands, _ = site_features(site, flux, ["indices"])
    site_idx = site.copy()
    site_idx["s2_path"] = np.nan
    from_table, _ = site_features(site_idx, flux, ["indices"])
    both = from_bands.index.intersection(from_table.index)
    ok = np.isfinite(from_bands.loc[both, "NDVI"]) & np.isfinite(from_table.loc[both, "NDVI"])
    assert ok.sum() > 500
    np.testing.assert_allclose(from_bands.loc[both, "NDVI"][ok], from_table.loc[both, "NDVI"][ok], atol=1e-6)
    assert "PPI" in from_table and "PPI" in from_bands  # the index table adds PPI beside the band-derived indices
    assert np.nanmin(from_table["PPI"]) > -1  # the declared -32768 fill value is masked, not averaged in


def test_point_towers_fit_gpp_light_use_efficiency_beats_radiation_alone(towers: Path, tmp_path: Path) -> None:
    res = run_fit_gpp(towers, tmp_path / "run", feature_sets=["potrad", "indices_x_potrad", "bands+potrad"], heads=["linear"],
                      qc_missing="pass", paired=True, progress=False)
    pooled = res.pooled.set_index("features")
    print("\nSYNTHETIC point towers, LOSO pooled:\n", pooled[["n", "r2", "rmse"]].round(3).to_string())
    assert res.synthetic and res.n_skipped == 0
    assert len(set(pooled["n"])) == 1  # paired: every feature set scored on the same site-days
    assert pooled.loc["indices_x_potrad", "r2"] > pooled.loc["potrad", "r2"] + 0.2
    prov = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert prov["options"]["qc_missing"] == "pass" and "mean of night-time" in prov["gpp_target"]
    assert prov["units"]["SW_IN_POT"].startswith("W m-2")
    assert "mean of night-time (NT) and day-time (DT)" in (tmp_path / "run" / "report.md").read_text()
    support = pd.read_csv(tmp_path / "run" / "skill_by_support.csv")
    assert list(support["days_to_obs"].astype(str).unique()) == ["0", "1-2"]  # revisit 5 days: at most 2 days away
    assert "Skill by support" in (tmp_path / "run" / "report.md").read_text()
    near = run_fit_gpp(towers, tmp_path / "near", feature_sets=["indices_x_potrad"], heads=["linear"], qc_missing="pass",
                       progress=False, interpret=False, max_days_to_obs=0)
    assert (near.predictions["days_to_obs"] == 0).all() and 0 < len(near.predictions) < pooled["n"].iloc[0]


def _bad_sites(root: Path) -> Path:
    """Four good SYNTHETIC towers plus four bad ones, each with one problem."""
    csv = write_tower_sites(root, n_sites=4)
    sites = pd.read_csv(csv)
    bad = []
    for i, problem in enumerate(("no_coords", "unknown_columns", "no_gpp_column", "undeclared_fill")):
        sid = f"ZZ-B{i}"
        p = write_tower(root / sid, sid, 50.0, seed=10 + i, ppi_fill_days=3)
        row = {"site_id": sid, "lat": 50.0, "lon": 8.0, "igbp": "GRA", "flux_path": f"{sid}/{p['flux'].name}",
               "s2_path": f"{sid}/{p['bands'].name}", "indices_path": f"{sid}/{p['ndvi'].name};{sid}/{p['ppi'].name}",
               "nodata": -32768.0, "synthetic": True}
        if problem == "no_coords":
            row["lat"] = row["lon"] = np.nan
        elif problem == "unknown_columns":
            t = pd.read_csv(p["bands"])
            t.columns = ["date"] + [f"band_{j}" for j in range(len(t.columns) - 1)]
            t.to_csv(p["bands"], index=False)
        elif problem == "no_gpp_column":
            pd.read_csv(p["flux"]).drop(columns=["GPP_NT_VUT_REF", "GPP_DT_VUT_REF"]).assign(NEE_VUT_REF=1.0).to_csv(
                p["flux"], index=False)
        else:
            row["nodata"] = np.nan
        bad.append(row)
    pd.concat([sites, pd.DataFrame(bad)]).to_csv(csv, index=False)
    return csv


def test_bad_sites_are_skipped_named_and_the_rest_go_on(tmp_path: Path) -> None:
    csv = _bad_sites(tmp_path / "data")
    before = {p: p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file()}
    rc, text = _cli(["fit-gpp", "--sites", str(csv), "--out", str(tmp_path / "run"), "--features", "indices+potrad",
                     "--head", "linear", "--qc-missing", "pass", "--no-interpret", "--quiet"])
    assert rc == 0, text
    assert "4 site(s) skipped" in text and "Traceback" not in text
    skipped = pd.read_csv(tmp_path / "run" / "skipped_sites.csv").set_index("site_id")["reason"]
    assert sorted(skipped.index) == ["ZZ-B0", "ZZ-B1", "ZZ-B2", "ZZ-B3"]
    assert "no lat" in skipped["ZZ-B0"]
    assert "band or index column" in skipped["ZZ-B1"] and "band_0" in skipped["ZZ-B1"]
    assert "GPP" in skipped["ZZ-B2"]
    assert "-32768" in skipped["ZZ-B3"] and "--nodata" in skipped["ZZ-B3"]
    for reason in skipped:
        assert "\n" not in reason
    pred = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert sorted(pred["site_id"].unique()) == ["ZZ-P0", "ZZ-P1", "ZZ-P2", "ZZ-P3"]
    assert "Sites skipped (4)" in (tmp_path / "run" / "report.md").read_text()
    assert before == {p: p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file()}  # inputs untouched

    rc, text = _cli(["fit-gpp", "--sites", str(csv), "--out", str(tmp_path / "strict"), "--features", "indices+potrad",
                     "--head", "linear", "--qc-missing", "pass", "--strict", "--quiet"])
    assert rc == 2 and text.strip().startswith("error: site ZZ-B0") and len(text.strip().splitlines()) == 1, text
    assert not (tmp_path / "strict").exists()


def test_common_columns_keep_what_every_site_has() -> None:
    cols, dropped = common_columns({"A": {"indices": ["NDVI", "EVI2", "PPI"]}, "B": {"indices": ["NDVI", "EVI2"]}}, ["indices"])
    assert cols == {"indices": ["NDVI", "EVI2"]} and dropped == {"indices": {"PPI": ["B"]}}
    with pytest.raises(InputError, match="share none"):
        common_columns({"A": {"bands": ["B02"]}, "B": {"bands": ["B03"]}}, ["bands"])


def test_holdout_years_split() -> None:
    table = pd.DataFrame({"site_id": ["A"] * 4 + ["B"] * 4,
                          "date": pd.to_datetime(["2017-06-01", "2018-06-01", "2019-06-01", "2020-06-01"] * 2)})
    [(label, tr, te)] = cv_splits(table, "holdout", test_years="2020", train_years="2017-2019")
    assert label == "test 2020" and list(te) == [3, 7] and list(tr) == [0, 1, 2, 4, 5, 6]
    [(_, tr, _)] = cv_splits(table, "holdout", test_years="2020", train_years="2018")
    assert list(tr) == [1, 5]
    assert parse_years("2017-2019,2021") == [2017, 2018, 2019, 2021]
    with pytest.raises(InputError, match="test-years"):
        cv_splits(table, "holdout")
    with pytest.raises(InputError, match="no day in the test years"):
        cv_splits(table, "holdout", test_years="2023")
    with pytest.raises(InputError, match="ranges"):
        parse_years("twenty")


# --- embed a point table -----------------------------------------------------------------------


def test_embed_point_table_daily_s2_only(tmp_path: Path) -> None:
    p = write_tower(tmp_path / "t", "ZZ-E0", 48.0, seed=0, start="2019-03-01", end="2019-06-30")
    out = tmp_path / "emb.nc"
    rc, text = _cli(["embed", "--s2", str(p["bands"]), "--lat", "48.0", "--lon", "11.0", "--out", str(out)])
    assert rc == 0, text
    with xr.open_dataset(out) as e:
        obs = pd.to_datetime(pd.read_csv(p["bands"])["date"])
        assert e.sizes["x"] == e.sizes["y"] == 1 and e.sizes["time"] == (obs.max() - obs.min()).days + 1  # daily
        assert e.attrs["modalities"] == "s2" and np.isfinite(e["embedding"].values).all()
        assert int(e["days_to_s2"].max()) <= 2  # every 5 days observed: at most 2 days from an observation
        assert (e["days_to_s1"].values == 32767).all()  # no S1 given: no S1 observation, not "0 days away"
    rc, text = _cli(["embed", "--s2", str(p["bands"]), "--out", str(tmp_path / "e2.nc")])
    assert rc == 2 and "--lat/--lon" in text and "Traceback" not in text
    rc, text = _cli(["embed", "--s2", str(p["bands"]), "--lat", "48.0", "--out", str(tmp_path / "e3.nc")])
    assert rc == 2 and "go together" in text


# --- tower files alone -------------------------------------------------------------------------


def test_tower_only_sites_default_to_meteo_and_name_a_site_without_usable_days(tmp_path: Path) -> None:
    from ecoembed.sources.synthetic import write_embedding_sites

    csv = write_embedding_sites(tmp_path / "d", n_sites=4, days=200)
    sites = pd.read_csv(csv).drop(columns=["features_path"])
    sites.to_csv(csv, index=False)
    flux = csv.parent / sites.loc[3, "flux_path"]
    table = pd.read_csv(flux)
    table["NEE_VUT_REF_QC"] = 0.5  # every day below --qc-min 0.8
    table.to_csv(flux, index=False)
    rc, text = _cli(["fit-gpp", "--sites", str(csv), "--out", str(tmp_path / "run"), "--head", "linear", "--no-interpret",
                     "--quiet"])
    assert rc == 0, text
    assert "tower-only feature set meteo" in text
    assert "skipped site ZZ-T3: no usable day" in text and "qc_failed" in text
    pooled = pd.read_csv(tmp_path / "run" / "metrics_pooled.csv")
    assert list(pooled["features"]) == ["meteo"] and pooled["n"].iloc[0] > 300
    assert "Sites skipped (1)" in (tmp_path / "run" / "report.md").read_text()


def test_configuration_is_checked_before_any_file_is_read(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "sites.csv"
    missing.parent.mkdir()
    missing.write_text("site_id,lat,lon,flux_path\nZZ-A,45,9,does_not_exist.csv\n")
    with pytest.raises(InputError, match="--test-years"):
        run_fit_gpp(missing, tmp_path / "run", feature_sets=["meteo"], heads=["linear"], cv="holdout")
    with pytest.raises(InputError, match="unknown part"):
        run_fit_gpp(missing, tmp_path / "run", feature_sets=["meteorology"], heads=["linear"])
    assert not (tmp_path / "run").exists()


def test_band_table_variants_gzip_other_names_missing_bands(towers: Path, tmp_path: Path) -> None:
    """A gzipped table with Earth Engine style names (SR-like B4/B8 only, 'system:time_start' in ms) still gives indices."""
    sites = read_sites_csv(towers)
    site = sites.iloc[1].copy()
    table = pd.read_csv(site["s2_path"])
    ms = pd.to_datetime(table["date"]).astype("int64") // 1_000_000
    variant = pd.DataFrame({"system:time_start": ms, "B4": table["B4"], "B8": table["B8"]})
    path = tmp_path / "ZZ-P1_ee_export.csv.gz"
    variant.to_csv(path, index=False, compression="gzip")
    site["s2_path"] = str(path)
    flux = read_flux(str(site["flux_path"]), site_id=str(site["site_id"]), qc_missing="pass")
    feats, info = site_features(site, flux, ["indices"])
    full, _ = site_features(sites.iloc[1], flux, ["indices"])
    both = feats.index.intersection(full.index)
    np.testing.assert_allclose(feats.loc[both, "NDVI"].dropna(), full.loc[both, "NDVI"].dropna(), atol=1e-6)
    assert str(path) in info["inputs"]
