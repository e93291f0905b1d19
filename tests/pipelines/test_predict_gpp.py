"""Kept models and predict-gpp on SYNTHETIC towers: reload fidelity, tower pixels, coverage, GIS, resume, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from support.cli_run import digests as _digests
from support.cli_run import run_cli as _run

from ecoembed.gpp.cv import fit_head
from ecoembed.gpp.heads import make_head
from ecoembed.gpp.saved import conformal_table, held_out_coverage, interval_half_width, load_model, save_model
from ecoembed.sources.chips import tower_pixel
from ecoembed.sources.synthetic import write_embedding_sites


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("predict")
    csv = write_embedding_sites(root / "data", n_sites=5, days=365)
    run = root / "run"
    rc, out, err = _run(["fit-gpp", "--sites", str(csv), "--out", str(run), "--features", "embeddings+potrad",
                         "--features", "embeddings+meteo", "--head", "linear", "--head", "xgboost", "--no-interpret",
                         "--no-baselines", "--quiet"])
    assert rc == 0, out + err
    return csv, run


def test_fit_gpp_keeps_models_that_reload_to_the_same_predictions(fitted: tuple[Path, Path]) -> None:
    _, run = fitted
    index = pd.read_csv(run / "models" / "index.csv")
    assert sorted(index["model"]) == ["embeddings_meteo__linear", "embeddings_meteo__xgboost",
                                      "embeddings_potrad__linear", "embeddings_potrad__xgboost"]
    joined = pd.read_parquet(run / "joined.parquet")
    for name in index["model"]:
        model = load_model(run / "models" / name)
        X = joined[model.columns].to_numpy(float)
        refit = fit_head(make_head(model.head, seed=0), pd.DataFrame(X, columns=model.columns), joined["GPP"].to_numpy(float),
                         joined["site_id"].astype(str).to_numpy())
        np.testing.assert_allclose(model.predict(X), refit.predict(pd.DataFrame(X, columns=model.columns)), rtol=1e-5, atol=1e-5)
        assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in (run / "models" / name).iterdir())


def test_every_head_round_trips_without_pickle(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(0, 0.1, 300) + 5
    sites = np.repeat(np.array(["a", "b", "c", "d", "e"]), 60)
    cols = ["f0", "f1", "f2", "f3"]
    oof = pd.DataFrame({"site_id": sites, "observed": y, "predicted": y + rng.normal(0, 0.2, 300)})
    for head in ("linear", "ridge", "xgboost", "mlp"):
        est = fit_head(make_head(head, seed=0), pd.DataFrame(X, columns=cols), y, sites)
        save_model(est, tmp_path / head, features="embeddings", head=head, columns=cols, X_train=X,
                   dates=pd.date_range("2020-01-01", periods=300), sites=sites, oof=oof)
        got = load_model(tmp_path / head).predict(X)
        np.testing.assert_allclose(got, est.predict(pd.DataFrame(X, columns=cols)), rtol=1e-5, atol=1e-5)
    (tmp_path / "xgboost" / "xgboost.json").write_text("{}")
    from ecoembed.errors import CheckpointError

    with pytest.raises(CheckpointError, match="differs from the file fit-gpp wrote"):
        load_model(tmp_path / "xgboost")


def test_conformal_intervals_cover_the_stated_fraction_on_a_known_case() -> None:
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 10, 20000)
    obs = pred + rng.normal(0, 0.2 + 0.1 * pred)  # heteroscedastic, like GPP
    table = conformal_table(pred[:10000], obs[:10000])
    for level in (0.5, 0.8, 0.9, 0.95):
        hw = interval_half_width(table, pred[10000:], level)
        assert abs(np.mean(np.abs(obs[10000:] - pred[10000:]) <= hw) - level) < 0.015
    # adaptive: the bin of the largest predictions has the widest interval
    assert table["half_width"][2][-1] > 2 * table["half_width"][2][0]
    sites = np.repeat(np.arange(10).astype(str), 2000)
    cov = held_out_coverage(pd.DataFrame({"site_id": sites, "observed": obs, "predicted": pred}))
    assert (cov["coverage"] - cov["level"]).abs().max() < 0.015


def test_held_out_site_coverage_of_kept_models_is_near_nominal(fitted: tuple[Path, Path]) -> None:
    _, run = fitted
    cov = pd.read_csv(run / "models" / "coverage.csv")
    at90 = cov[(cov["level"] == 0.9) & (cov["features"] == "embeddings+potrad")]
    print("\nSYNTHETIC held-out-site coverage of 90 % intervals:\n", at90.to_string(index=False))
    assert len(at90) == 2 and ((at90["coverage"] - 0.9).abs() < 0.04).all()


@pytest.fixture(scope="module")
def mapped(fitted: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, dict[str, str]]:
    csv, run = fitted
    cube = csv.parent / "ZZ-T2_emb.nc"
    before = _digests(csv.parent) | {f"run/{k}": v for k, v in _digests(run).items()}
    out = tmp_path_factory.mktemp("map") / "gpp_T2"
    rc, stdout, err = _run(["predict-gpp", "--run", str(run), "--cube", str(cube), "--out", str(out), "--features",
                            "embeddings+potrad", "--head", "xgboost", "--aggregate", "month", "--chunk-px", "4", "--quiet"])
    assert rc == 0, stdout + err
    assert "SYNTHETIC DATA" in stdout
    return run, cube, out, before


def test_tower_pixels_reproduce_the_kept_models_tower_predictions(fitted: tuple[Path, Path],
                                                                  mapped: tuple[Path, Path, Path, dict[str, str]]) -> None:
    csv, _ = fitted
    run, cube, out, _ = mapped
    model = load_model(run / "models" / "embeddings_potrad__xgboost")
    joined = pd.read_parquet(run / "joined.parquet")
    site = joined[joined["site_id"] == "ZZ-T2"]
    expected = model.predict(site[model.columns].to_numpy(float))
    sites = pd.read_csv(csv).set_index("site_id")
    with xr.open_dataset(cube) as emb:
        row, col = tower_pixel(emb, float(sites.loc["ZZ-T2", "lat"]), float(sites.loc["ZZ-T2", "lon"]))
    with xr.open_dataset(out / "gpp.nc") as g:
        got = g["gpp"].isel(y=row, x=col).sel(time=pd.to_datetime(site["date"]).to_numpy()).values
        assert g["gpp"].attrs["units"] == "gC m-2 d-1" and g.attrs["synthetic"] == 1
        lower, upper = g["gpp_lower"].values, g["gpp_upper"].values
        gpp = g["gpp"].values
    assert len(expected) > 250
    np.testing.assert_allclose(got, expected, atol=2e-3)
    ok = np.isfinite(gpp)
    assert ok.mean() > 0.9 and (lower[ok] <= gpp[ok]).all() and (upper[ok] >= gpp[ok]).all() and (upper[ok] > lower[ok]).any()
    with xr.open_dataset(out / "gpp_month.nc") as m:
        assert m.sizes["period"] == 12 and m["gpp_sum"].attrs["units"] == "gC m-2"
        np.testing.assert_allclose(m["gpp_sum"].isel(period=0).values, np.nansum(gpp[:31], axis=0), rtol=1e-4)


def test_gpp_outputs_are_georeferenced_like_the_input_cube(mapped: tuple[Path, Path, Path, dict[str, str]]) -> None:
    rasterio = pytest.importorskip("rasterio", reason="rasterio is needed to check what GDAL reads")
    from rasterio.crs import CRS

    from ecoembed.sources.cf import transform_of

    _, cube, out, _ = mapped
    with xr.open_dataset(cube) as emb:
        crs, transform = CRS.from_user_input(emb.attrs["crs"]), transform_of(emb)
        ny, nx, nt = emb.sizes["y"], emb.sizes["x"], emb.sizes["time"]
    for path in (f"netcdf:{out / 'gpp.nc'}:gpp", str(out / "gpp_mean.tif")):
        with rasterio.open(path) as src:
            assert src.crs == crs, path
            assert np.allclose(tuple(src.transform)[:6], transform, atol=1e-6), (path, src.transform, transform)
            assert (src.height, src.width) == (ny, nx)
            if path.startswith("netcdf"):
                assert src.count == nt  # days are bands, y/x the raster
    for fig in ("gpp_mean.png", "gpp_monthly.png", "gpp_uncertainty.png", "gpp_envelope.png", "gpp_series.png"):
        assert (out / "figures" / fig).stat().st_size > 5000, fig
    html = (out / "index.html").read_text()
    assert "SYNTHETIC DATA" in html and "gC m-2 d-1" in html and "data:image/png;base64," in html


def test_predict_gpp_changes_no_input(fitted: tuple[Path, Path], mapped: tuple[Path, Path, Path, dict[str, str]]) -> None:
    csv, run = fitted
    _, _, _, before = mapped
    assert _digests(csv.parent) | {f"run/{k}": v for k, v in _digests(run).items()} == before


def test_interrupted_predict_gpp_resumes_and_rechecks_blocks(fitted: tuple[Path, Path], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    csv, run = fitted
    cube = csv.parent / "ZZ-T1_emb.nc"
    args = ["predict-gpp", "--run", str(run), "--cube", str(cube), "--features", "embeddings+potrad", "--head", "linear",
            "--chunk-px", "4", "--quiet"]
    rc, _, err = _run([*args, "--out", str(tmp_path / "clean")])
    assert rc == 0, err
    from ecoembed.gpp import saved

    calls = {"n": 0}
    real = saved.KeptModel.predict

    def flaky(self: saved.KeptModel, X: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] > 2 * 6:  # 6 slabs of 64 days per block: two blocks complete, the third is interrupted
            raise KeyboardInterrupt
        return real(self, X)

    monkeypatch.setattr(saved.KeptModel, "predict", flaky)
    rc, _, err = _run([*args, "--out", str(tmp_path / "resumed")])
    assert rc == 130 and not (tmp_path / "resumed").exists()
    partial = tmp_path / ".resumed.partial"
    assert len(list((partial / "blocks").glob("*.json"))) == 2
    import zarr

    g = zarr.open_group(str(partial / "gpp.zarr"), mode="r+")
    g["gpp"][:, 0:4, 0:4] = 0.0  # a completed block damaged after its marker: must not be trusted
    monkeypatch.setattr(saved.KeptModel, "predict", real)
    rc, stdout, err = _run([*args, "--out", str(tmp_path / "resumed")])
    assert rc == 0, err
    assert "blocks computed 8, verified and kept 1" in stdout, stdout  # the damaged block was recomputed
    with xr.open_dataset(tmp_path / "clean" / "gpp.nc") as a, xr.open_dataset(tmp_path / "resumed" / "gpp.nc") as b:
        np.testing.assert_array_equal(a["gpp"].values, b["gpp"].values)


@pytest.mark.parametrize("case", ["no_models", "wide_cube", "geographic", "crs_mismatch", "out_exists", "meteo_missing", "level",
                                  "overlap"])
def test_predict_gpp_bad_input_is_one_clear_line(case: str, fitted: tuple[Path, Path], tmp_path: Path) -> None:
    csv, run = fitted
    cube = csv.parent / "ZZ-T0_emb.nc"
    out = tmp_path / "out"
    extra = ["--features", "embeddings+potrad", "--head", "linear"]
    expect = ""
    if case == "no_models":
        bare = tmp_path / "bare_run"
        shutil.copytree(run, bare, ignore=shutil.ignore_patterns("models"))
        run, expect = bare, "keeps no fitted models"
    elif case == "wide_cube":
        with xr.open_dataset(cube) as ds:
            wide = xr.concat([ds, ds.assign_coords(feature=ds["feature"] + 6)], dim="feature").load()
        cube, expect = tmp_path / "wide.nc", "has 12 embedding features"
        wide.to_netcdf(cube)
    elif case == "geographic":
        with xr.open_dataset(cube) as ds:
            geo = ds.load().assign_attrs(crs="EPSG:4326")
        cube, expect = tmp_path / "geo.nc", "geographic CRS"
        geo.to_netcdf(cube)
    elif case == "crs_mismatch":
        from ecoembed.sources.cf import georeference

        with xr.open_dataset(cube) as ds:
            stated = georeference(ds.load(), "EPSG:32632").assign_attrs(crs="EPSG:32633")  # the grid mapping says 32632
        cube, expect = tmp_path / "mismatch.nc", "states crs EPSG:32633 but its grid mapping is another CRS"
        stated.to_netcdf(cube)
    elif case == "out_exists":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
        expect = "pass --overwrite"
    elif case == "meteo_missing":
        extra, expect = ["--features", "embeddings+meteo", "--head", "linear"], "pass --meteo"
    elif case == "level":
        extra, expect = [*extra, "--level", "0.7"], "0.7"
    elif case == "overlap":
        out, expect = run / "map", "lies inside the input"
    before = _digests(csv.parent) | {f"run/{k}": v for k, v in _digests(run).items()}
    rc, stdout, err = _run(["predict-gpp", "--run", str(run), "--cube", str(cube), "--out", str(out), *extra, "--quiet"])
    assert rc == 2, stdout + err
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and expect in lines[0], err
    assert "Traceback" not in err
    assert _digests(csv.parent) | {f"run/{k}": v for k, v in _digests(run).items()} == before
    if case == "out_exists":
        assert (out / "keep.txt").read_text() == "mine"
