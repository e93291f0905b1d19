"""Sources room: local NetCDF/Zarr cubes (incl. the real S2 cube), chips and pixel series, synthetic scenes."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ecoembed.errors import CubeError, InputError
from ecoembed.sensors.cube import validate_cube
from ecoembed.sensors.indices import ndvi, nirv
from ecoembed.sensors.registry import get_sensor
from ecoembed.sensors.sentinel2 import S2_BANDS
from ecoembed.sources.chips import cube_to_series, tower_chip, tower_xy
from ecoembed.sources.local import open_cube, save_cube
from ecoembed.sources.synthetic import ENL, S1_INCIDENCE_DEG, make_scene, oneflux_like_qc, water_cloud_sigma0, write_demo_sites

REAL_S2 = Path("sentinel2") / "raw_s2_ndvi_field.nc"


@pytest.fixture(scope="module")
def scene():
    return make_scene(size_px=16, start="2019-01-01", end="2019-12-31", seed=3)


# --- real cube --------------------------------------------------------------------------------------


def test_real_s2_cube_masked_ndvi_matches_file(shared_data: Path) -> None:
    path = shared_data / REAL_S2
    cube = open_cube(path)
    assert cube.attrs["crs"] == "EPSG:32630" and cube.attrs["sensor"] == "sentinel-2-l2a" and cube.attrs["synthetic"] is False
    assert cube.sizes == {"time": 33, "y": 57, "x": 56}
    assert set(cube.data_vars) == {"B04", "B08", "SCL", "valid"}
    assert float(cube["B08"].max()) <= 1.0  # DN converted to reflectance
    raw = xr.open_dataset(path)
    mine = ndvi(cube).values
    theirs = raw["NDVI"].values
    both = cube["valid"].values & np.isfinite(theirs)
    assert both.sum() > 0.5 * cube["valid"].size  # most of the field is clear
    np.testing.assert_allclose(mine[both], theirs[both], atol=1e-5)
    # invalid (cloud/shadow/no-data SCL) observations are masked, never silently kept
    assert np.isnan(mine[~cube["valid"].values]).all()
    assert not cube["valid"].values[np.isin(cube["SCL"].values, [0, 3, 8, 9, 10, 11])].any()
    with pytest.raises(CubeError, match="B02"):
        open_cube(path, bands=["B02"])  # a caller that needs a band the cube lacks gets a clear error
    assert "openEO" in cube.attrs["values"]  # float storage, DN by the openEO export convention (its metadata says so)


def test_real_s2_cube_series_and_chip(shared_data: Path) -> None:
    cube = open_cube(shared_data / REAL_S2, bands=["B04", "B08"])
    ser = cube_to_series(cube)
    assert ser.bands == ("B04", "B08") and ser.values.shape == (57 * 56, 33, 2)
    i = [S2_BANDS.index("B04"), S2_BANDS.index("B08")]
    row, col = ser.yx[100]
    raw = cube["B08"].values[:, row, col]
    ok = ser.valid[100]
    np.testing.assert_allclose(ser.values[100, ok, 1] * get_sensor("s2").std()[i[1]] + get_sensor("s2").mean()[i[1]], raw[ok], rtol=1e-5)
    x, y = float(cube.x[20]), float(cube.y[30])
    from pyproj import Transformer

    lon, lat = Transformer.from_crs("EPSG:32630", "EPSG:4326", always_xy=True).transform(x, y)
    chip = tower_chip(cube, lat, lon, 9)
    assert chip.sizes["y"] == 9 and float(chip.x[4]) == x and float(chip.y[4]) == y


# --- local files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_save_open_round_trip(tmp_path: Path, scene, suffix: str) -> None:
    for cube in (scene.s2, scene.s1):
        path = save_cube(cube, tmp_path / f"{cube.attrs['sensor']}{suffix}")
        back = open_cube(path).load()
        assert back.attrs["synthetic"] is True and back.attrs["crs"] == cube.attrs["crs"]
        assert back["valid"].dtype == bool
        np.testing.assert_array_equal(back["time"].values, cube["time"].values)
        for v in cube.data_vars:
            np.testing.assert_array_equal(back[v].values, cube[v].values)
        if "orbit" in cube.coords:
            assert list(back["orbit"].values.astype(str)) == list(cube["orbit"].values)


def test_open_cube_crs_from_grid_mapping_and_dn(tmp_path: Path) -> None:
    from pyproj import CRS

    t = pd.date_range("2023-03-01", periods=3, freq="5D")
    dn = np.full((3, 2, 2), 2500.0, np.float32)
    dn[0, 0, 0] = 0.0
    ds = xr.Dataset({b: (("t", "y", "x"), dn, {"grid_mapping": "crs"}) for b in ("B04", "B08")},
                    coords={"t": t, "y": [105.0, 95.0], "x": [5.0, 15.0]})
    ds["crs"] = ((), np.int8(0), {"crs_wkt": CRS.from_epsg(32631).to_wkt()})
    ds.to_netcdf(tmp_path / "dn.nc")
    cube = open_cube(tmp_path / "dn.nc", sensor="s2", values="dn")  # float DN without units: the option says so
    assert cube.attrs["crs"] == "EPSG:32631" and "time" in cube.dims
    np.testing.assert_allclose(cube["B04"].values[1], 0.15, rtol=1e-6)  # 2023: baseline 04.00 offset -1000 DN
    assert np.isnan(cube["B04"].values[0, 0, 0]) and not cube["valid"].values[0, 0, 0]


def test_open_cube_bad_files(tmp_path: Path, scene) -> None:
    (tmp_path / "text.nc").write_text("not a cube\n")
    with pytest.raises(CubeError, match="text.nc"):
        open_cube(tmp_path / "text.nc")
    with pytest.raises(InputError, match="gone.nc.*does not exist"):
        open_cube(tmp_path / "gone.nc")
    bad = scene.s2.copy()
    bad.attrs = {k: v for k, v in bad.attrs.items() if k != "crs"}
    save_cube(bad, tmp_path / "nocrs.nc")
    with pytest.raises(CubeError, match="nocrs.nc.*no CRS"):
        open_cube(tmp_path / "nocrs.nc")
    save_cube(scene.s2, tmp_path / "s2.nc")
    with pytest.raises(CubeError, match="s2.nc.*sentinel-1-grd cube was expected"):
        open_cube(tmp_path / "s2.nc", sensor="sentinel-1-grd")
    save_cube(scene.s2.isel(time=[2, 1, 3]), tmp_path / "unsorted.nc")
    with pytest.raises(CubeError, match="unsorted.nc.*unsorted times"):
        open_cube(tmp_path / "unsorted.nc")
    with pytest.raises(InputError, match="must end in .nc or .zarr"):
        save_cube(scene.s2, tmp_path / "cube.tif")


# --- chips and series -------------------------------------------------------------------------------


def test_cube_to_series_contract(scene) -> None:
    s2 = scene.s2.copy(deep=True)
    for b in S2_BANDS:  # make pixel (0, 1) NaN-only
        s2[b][:, 0, 1] = np.nan
    ser = cube_to_series(s2)
    n = 16 * 16
    assert ser.values.shape == (n, s2.sizes["time"], 10) and ser.values.dtype == np.float32
    assert ser.days.dtype == np.int64 and ser.days[0] == (s2["time"].values[0].astype("datetime64[D]") - np.datetime64("1970-01-01", "D")).astype(int)
    assert ser.orbit is None and ser.bands == S2_BANDS
    assert ser.empty_pixels[1] and ser.empty_pixels.sum() == 1 and not ser.valid[1].any()
    assert (ser.values[~ser.valid] == 0).all() and np.isfinite(ser.values).all()
    np.testing.assert_array_equal(ser.yx[17], [1, 1])
    k = np.flatnonzero(ser.valid[17])[0]
    expect = (np.array([s2[b].values[k, 1, 1] for b in S2_BANDS]) - get_sensor("s2").mean()) / get_sensor("s2").std()
    np.testing.assert_allclose(ser.values[17, k], expect, rtol=1e-5)
    assert ser.normalisation["mean"] == pytest.approx(get_sensor("s2").mean().tolist())
    raw = cube_to_series(s2, bands=["B08"], normalize=False)
    assert raw.normalisation["applied"] is False and raw.values[17, k, 0] == pytest.approx(s2["B08"].values[k, 1, 1])
    s1 = cube_to_series(scene.s1)
    assert s1.bands == ("VV", "VH") and s1.orbit.dtype == np.int8 and set(s1.orbit) == {0, 1}
    assert abs(float(s1.values[s1.valid].mean(0)[0]) - 0) < 2 and s1.normalisation["std"] == pytest.approx(get_sensor("s1").std().tolist())
    assert get_sensor("s1").mean()[0] < 0
    with pytest.raises(CubeError, match="B99"):
        cube_to_series(s2, bands=["B99"])


def test_all_nan_cube_series_does_not_crash(scene) -> None:
    s2 = scene.s2.copy(deep=True)
    for b in S2_BANDS:
        s2[b][:] = np.nan
    ser = cube_to_series(s2)
    assert ser.empty_pixels.all() and not ser.valid.any() and (ser.values == 0).all()


def test_tower_chip(scene) -> None:
    chip = tower_chip(scene.s2, scene.lat, scene.lon, 5)
    assert chip.sizes["y"] == 5 and chip.sizes["x"] == 5 and chip.attrs["tower_yx"] == [2, 2]
    r, c = scene.tower_yx
    assert float(chip.x[2]) == float(scene.s2.x[c]) and float(chip.y[2]) == float(scene.s2.y[r])
    x, y = tower_xy(scene.lat, scene.lon, scene.s2.attrs["crs"])
    assert abs(x - float(chip.x[2])) <= 5 and abs(y - float(chip.y[2])) <= 5
    with pytest.raises(CubeError, match="outside the cube"):
        tower_chip(scene.s2, scene.lat + 1.0, scene.lon, 5)
    with pytest.raises(CubeError, match="extends outside"):
        tower_chip(scene.s2, scene.lat, scene.lon, 17)


# --- synthetic scenes -------------------------------------------------------------------------------


def test_synthetic_scene_contract_and_physics(scene) -> None:
    s2, s1 = scene.s2, scene.s1
    validate_cube(s2, "s2")
    validate_cube(s1, "s1")
    assert s2.attrs["synthetic"] is True and s1.attrs["synthetic"] is True and "SYNTHETIC" in s2.attrs["title"]
    assert (np.diff(s2["time"].values).astype("timedelta64[D]").astype(int) == 5).all()
    assert (np.diff(s1["time"].values.astype("datetime64[D]")).astype(int) == 6).all()
    assert list(s1["orbit"].values[:4]) == ["ascending", "descending", "ascending", "descending"]
    # clouds: SCL consistent with valid; some but not all observations clouded; cloudy pixels are bright
    scl, valid = s2["SCL"].values, s2["valid"].values
    assert ((scl == 8) | (scl == 9) | (scl == 10) | (scl == 3)).any() and 0.2 < valid.mean() < 0.95
    assert (valid == ~np.isin(scl, [0, 1, 3, 8, 9, 10, 11])).all()
    assert s2["B02"].values[scl == 9].mean() > 2 * s2["B02"].values[valid].mean()
    # canopy: NIR up and red down with LAI on clear observations
    lai = scene.truth["lai"].sel(time=s2["time"].values.astype("datetime64[D]")).values
    assert np.corrcoef(lai[valid], s2["B08"].values[valid])[0, 1] > 0.8
    assert np.corrcoef(lai[valid], s2["B04"].values[valid])[0, 1] < -0.5
    # S1: backscatter in a plausible dB range, speckle (ENL ~ 4.4) visible in linear power
    assert -20 < float(s1["VV"].mean()) < -4 and float(s1["VH"].mean()) < float(s1["VV"].mean())
    truth = scene.truth
    assert set(truth.data_vars) >= {"lai", "fapar", "landcover", "soil_moisture"} and truth["landcover"].dims == ("y", "x")
    assert truth.sizes["time"] == 365 and set(scene.meteo.columns) >= {"date", "TA", "SW_IN", "VPD", "P", "PAR"}
    assert (scene.tower["GPP"] >= 0).all() and scene.tower["GPP"].max() > 3


def test_synthetic_s1_is_water_cloud_times_speckle(scene) -> None:
    s1, truth = scene.s1, scene.truth
    on = truth.sel(time=s1["time"].values.astype("datetime64[D]"))
    theta = np.deg2rad([S1_INCIDENCE_DEG[o] for o in s1["orbit"].values])[:, None, None]
    forest = truth["landcover"].values == 0
    for pol in ("VV", "VH"):
        clean = water_cloud_sigma0(pol, on["lai"].values, on["soil_moisture"].values, theta, forest)
        ratio = 10 ** (s1[pol].values / 10) / clean  # multiplicative speckle: mean 1, mean^2/var = ENL
        assert abs(ratio.mean() - 1) < 0.02 and abs(ratio.mean() ** 2 / ratio.var() - ENL) < 0.3
    # physics of the model: wetter soil is brighter; over dry soil more canopy means more VH (volume scattering)
    assert water_cloud_sigma0("VV", 0.5, 0.35, 0.7) > water_cloud_sigma0("VV", 0.5, 0.10, 0.7)
    assert water_cloud_sigma0("VH", 4.0, 0.10, 0.7) > water_cloud_sigma0("VH", 0.5, 0.10, 0.7)


def test_synthetic_gpp_tracks_footprint_nirv(scene) -> None:
    r0, c0 = scene.tower_yx
    win = {"y": slice(r0 - 2, r0 + 3), "x": slice(c0 - 2, c0 + 3)}
    v = nirv(scene.s2).isel(**win)
    clear = scene.s2["valid"].isel(**win).all(("y", "x")).values
    days = scene.s2["time"].values.astype("datetime64[D]")
    gpp = scene.tower.set_index(scene.tower["date"].values.astype("datetime64[D]"))["GPP"].reindex(days).to_numpy()
    r = np.corrcoef(gpp[clear], v.mean(("y", "x")).values[clear])[0, 1]
    assert clear.sum() > 10 and r > 0.6


def test_synthetic_deterministic_and_seed_dependent() -> None:
    a = make_scene(size_px=8, start="2019-01-01", end="2019-03-31", seed=7)
    b = make_scene(size_px=8, start="2019-01-01", end="2019-03-31", seed=7)
    c = make_scene(size_px=8, start="2019-01-01", end="2019-03-31", seed=8)
    xr.testing.assert_identical(a.s2, b.s2)
    xr.testing.assert_identical(a.s1, b.s1)
    pd.testing.assert_frame_equal(a.tower, b.tower)
    assert not np.array_equal(a.s2["B08"].values, c.s2["B08"].values)


def test_synthetic_64px_two_years_is_fast() -> None:
    t0 = time.perf_counter()
    sc = make_scene(size_px=64, start="2019-01-01", end="2020-12-31", seed=0)
    elapsed = time.perf_counter() - t0
    assert sc.s2.sizes["y"] == 64 and sc.truth.sizes["time"] == 731
    assert elapsed < 10.0, f"make_scene 64 px x 2 years took {elapsed:.1f} s (budget 10 s)"


def test_write_demo_sites_readable_by_fluxnet(tmp_path: Path) -> None:
    from pyproj import Transformer

    from fluxnet.read import read_flux
    from fluxnet.sites import read_sites_csv

    csv = write_demo_sites(tmp_path / "demo", n_sites=3, size_px=8, seed=1, start="2019-01-01", end="2019-06-30")
    sites = read_sites_csv(csv)
    assert list(sites["site_id"]) == ["ZZ-Sy1", "ZZ-Sy2", "ZZ-Sy3"] and sites["synthetic"].all()
    assert sites["igbp"].nunique() >= 2
    raw = pd.read_csv(csv)
    assert not any(Path(p).is_absolute() for p in raw["s2_path"])
    for row in sites.itertuples():
        flux = read_flux(row.flux_path)
        assert "synthetic" in Path(row.flux_path).name and len(flux) == 181 and flux["GPP"].notna().all()
        s2 = open_cube(row.s2_path, sensor="s2")
        s1 = open_cube(row.s1_path, sensor="s1")
        np.testing.assert_allclose(s1["x"].values, s2["x"].values)
        x, y = Transformer.from_crs("EPSG:4326", s2.attrs["crs"], always_xy=True).transform(row.lon, row.lat)
        assert abs(x - float(s2.x[4])) <= 5 and abs(y - float(s2.y[4])) <= 5  # tower in the centre pixel


def test_oneflux_like_qc_has_clustered_gaps_at_the_requested_rate() -> None:
    """Long-run gap share ~ gap_fraction; gap runs average mean_gap_days (a geometric run length), not 1 day."""
    q = oneflux_like_qc(50_000, np.random.default_rng(0), gap_fraction=0.15, mean_gap_days=4.0)
    gap = q < 0.8
    assert ((q >= 0) & (q <= 1)).all()
    assert gap.mean() == pytest.approx(0.15, abs=0.02)
    starts = np.flatnonzero(np.diff(np.r_[0, gap.astype(int)]) == 1)
    assert gap.sum() / starts.size == pytest.approx(4.0, rel=0.15)
    with pytest.raises(InputError):
        oneflux_like_qc(10, np.random.default_rng(0), gap_fraction=1.0)
