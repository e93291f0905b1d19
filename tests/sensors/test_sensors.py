"""Sensors room: S2 scaling/SCL/resampling, S1 dB/speckle, indices, cube validation."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ecoembed.errors import CubeError
from ecoembed.sensors import indices
from ecoembed.sensors.cube import validate_cube
from ecoembed.sensors.registry import get_sensor
from ecoembed.sensors.sentinel1 import (
    S1_POLARISATIONS,
    db_to_linear,
    linear_to_db,
    mask_nodata,
    temporal_speckle_filter,
)
from ecoembed.sensors.sentinel2 import S2_BANDS, SCL_INVALID, dn_to_reflectance, resample_to_10m, scl_valid


def _encoder_norm(name: str) -> dict:
    return json.loads(resources.files("ecoembed").joinpath("weights", "data", name).read_text())["normalisation"]


def test_normalisation_matches_shipped_encoders() -> None:
    s2 = _encoder_norm("s2_encoder.json")
    assert tuple(s2["bands"]) == S2_BANDS
    np.testing.assert_allclose(get_sensor("s2").mean(), s2["mean"], rtol=1e-6)
    np.testing.assert_allclose(get_sensor("s2").std(), s2["std"], rtol=1e-6)
    s1 = _encoder_norm("s1_encoder.json")
    assert tuple(s1["bands"]) == S1_POLARISATIONS
    np.testing.assert_allclose(get_sensor("s1").mean(), s1["mean"], rtol=1e-6)
    np.testing.assert_allclose(get_sensor("s1").std(), s1["std"], rtol=1e-6)
    assert get_sensor("s2").mean().dtype == np.float32 and get_sensor("s1").std().dtype == np.float32


def test_scl_validity_classes() -> None:
    scl = np.arange(12)
    ok = scl_valid(scl)
    assert set(scl[~ok]) == set(SCL_INVALID) == {0, 1, 3, 8, 9, 10, 11}
    assert not scl_valid(np.array([np.nan]))[0] and scl_valid(np.array([4.0]))[0]


def test_dn_to_reflectance_baseline_offset() -> None:
    t = np.array(["2021-06-01", "2022-01-24", "2022-01-25", "2023-07-01"], dtype="datetime64[ns]")
    dn = np.array([2000, 2000, 2000, 0], dtype=np.uint16)
    out = dn_to_reflectance(dn, t)
    np.testing.assert_allclose(out[:3], [0.2, 0.2, 0.1], rtol=1e-6)
    assert np.isnan(out[3])  # DN 0 = no data
    da = xr.DataArray(np.full((4, 2, 2), 3000, np.uint16), dims=("time", "y", "x"), coords={"time": t}, name="B04")
    r = dn_to_reflectance(da)
    np.testing.assert_allclose(r.isel(y=0, x=0).values, [0.3, 0.3, 0.2, 0.2], rtol=1e-6)
    assert r.attrs["units"] == "1" and r.dtype == np.float32


def test_resample_20m_to_10m() -> None:
    x20, y20 = 10.0 + 20.0 * np.arange(3), 90.0 - 20.0 * np.arange(3)
    band = xr.DataArray(np.arange(9, dtype=np.float32).reshape(1, 3, 3), dims=("time", "y", "x"), coords={"x": x20, "y": y20})
    like = xr.DataArray(np.zeros((6, 6)), dims=("y", "x"), coords={"x": 5.0 + 10 * np.arange(6), "y": 95.0 - 10 * np.arange(6)})
    near = resample_to_10m(band, like)
    assert near.shape == (1, 6, 6)
    np.testing.assert_array_equal(near.values[0, ::2, ::2], band.values[0])  # every 20 m pixel covers 2x2 10 m pixels
    np.testing.assert_array_equal(near.values[0, 1::2, 1::2], band.values[0])
    lin = resample_to_10m(band, like, method="linear")
    assert np.isfinite(lin.values).all()
    assert band.values.min() <= lin.values.min() and lin.values.max() <= band.values.max()
    with pytest.raises(ValueError, match="nearest"):
        resample_to_10m(band, like, method="cubic")  # type: ignore[arg-type]


def test_db_conversions() -> None:
    lin = np.array([1.0, 0.1, 0.0, -1.0, np.nan])
    db = linear_to_db(lin)
    np.testing.assert_allclose(db[:2], [0.0, -10.0], atol=1e-6)
    assert np.isnan(db[2:]).all()
    np.testing.assert_allclose(db_to_linear(db[:2]), lin[:2], rtol=1e-6)


def _s1_cube(n_t: int = 12, n: int = 8, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    truth = np.full((n_t, n, n), 0.05)
    speckled = truth * rng.gamma(4.4, 1 / 4.4, truth.shape)
    vv = linear_to_db(speckled)
    t = pd.date_range("2019-01-01", periods=n_t, freq="6D")
    ds = xr.Dataset({"VV": (("time", "y", "x"), vv), "VH": (("time", "y", "x"), vv - 6)},
                    coords={"time": t, "y": 100.0 - 10 * np.arange(n), "x": 10.0 * np.arange(n),
                            "orbit": ("time", np.where(np.arange(n_t) % 2, "descending", "ascending"))})
    ds["valid"] = (("time", "y", "x"), np.ones(vv.shape, bool))
    return ds


def test_speckle_filter_reduces_variance_and_keeps_mean() -> None:
    ds = _s1_cube()
    out = temporal_speckle_filter(ds, window=5)
    lin_in, lin_out = db_to_linear(ds["VV"].values), db_to_linear(out["VV"].values)
    assert lin_out.std() < 0.6 * lin_in.std()
    assert abs(lin_out.mean() / lin_in.mean() - 1) < 0.1
    assert "orbit" in out.coords and "speckle_filter" in out.attrs


def test_mask_nodata_border_and_floor() -> None:
    ds = _s1_cube()
    ds["VV"][0, 0, 0] = -50.0
    out = mask_nodata(ds, border_px=1)
    assert not out["valid"].values[0, 0, 0] and np.isnan(out["VV"].values[0, 0, 0])
    assert not out["valid"].values[:, 0, :].any() and out["valid"].values[:, 1:-1, 1:-1].all()


def _s2_cube(n_t: int = 4, n: int = 3) -> xr.Dataset:
    t = pd.date_range("2019-05-01", periods=n_t, freq="5D")
    ds = xr.Dataset(coords={"time": t, "y": 95.0 - 10 * np.arange(n), "x": 5.0 + 10 * np.arange(n)})
    for i, b in enumerate(S2_BANDS):
        ds[b] = (("time", "y", "x"), np.full((n_t, n, n), 0.05 + 0.02 * i, np.float32))
    ds["B04"][:] = 0.05
    ds["B08"][:] = 0.35
    valid = np.ones((n_t, n, n), bool)
    valid[0, 0, 0] = False
    ds["valid"] = (("time", "y", "x"), valid)
    ds.attrs = {"crs": "EPSG:32630", "sensor": "sentinel-2-l2a", "synthetic": True, "resolution_m": 10.0}
    return ds


def test_indices_values_and_masking() -> None:
    ds = _s2_cube()
    red, nir = 0.05, 0.35
    nd = (nir - red) / (nir + red)
    expected = {"ndvi": nd, "nirv": nd * nir, "kndvi": np.tanh(nd ** 2), "evi2": 2.5 * (nir - red) / (nir + 2.4 * red + 1)}
    for name, value in expected.items():
        da = getattr(indices, name)(ds)
        assert da.dims == ("time", "y", "x") and "long_name" in da.attrs and da.attrs["units"] == "1"
        assert np.isnan(da.values[0, 0, 0])
        np.testing.assert_allclose(da.values[1], value, rtol=1e-5)
    with pytest.raises(CubeError, match="B08"):
        indices.ndvi(ds.drop_vars("B08"))


def test_validate_accepts_contract_cube() -> None:
    ds = _s2_cube()
    assert validate_cube(ds, "s2", source="ok.nc") is ds


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (lambda ds: ds.assign_attrs(crs=None), ["bad.nc", "no CRS"]),
        (lambda ds: ds.isel(time=[1, 0, 2, 3]), ["bad.nc", "unsorted times"]),
        (lambda ds: ds.isel(time=[0, 1, 1, 2]), ["bad.nc", "duplicated times"]),
        (lambda ds: ds.assign(B03=ds["B03"] * np.nan), ["bad.nc", "band B03", "entirely NaN"]),
        (lambda ds: ds.drop_vars(["B08", "B8A"]), ["bad.nc", "B08/B8A", "needs at least"]),
        (lambda ds: ds.isel(time=slice(0, 0)), ["bad.nc", "empty"]),
        (lambda ds: ds.assign_coords(x=ds["x"] * 2), ["bad.nc", "x spacing", "10 m"]),
        (lambda ds: ds.rename(time="t"), ["bad.nc", "dims", "time"]),
        (lambda ds: ds.assign(B02=ds["B02"].transpose("y", "x", "time")), ["bad.nc", "B02", "dims"]),
        (lambda ds: ds.assign_attrs(sensor="sentinel-1-grd"), ["bad.nc", "sentinel-1-grd", "expected"]),
    ],
    ids=["no-crs", "unsorted", "duplicated", "all-nan", "missing-bands", "empty", "20m-grid", "wrong-dims", "transposed", "wrong-sensor"],
)
def test_validate_rejects_bad_cubes(edit, fragments: list[str]) -> None:
    ds = edit(_s2_cube())
    if ds.attrs.get("crs") is None:
        ds.attrs.pop("crs", None)
    with pytest.raises(CubeError) as info:
        validate_cube(ds, "sentinel-2-l2a", source="bad.nc")
    for f in fragments:
        assert f in str(info.value)


def test_validate_a_band_subset_needs_red_and_nir() -> None:
    ds = _s2_cube()[["B04", "B08", "valid"]].assign_attrs(crs="EPSG:32630", sensor="sentinel-2-l2a")
    assert validate_cube(ds, "s2") is ds  # a subset with red and NIR is a valid S2 cube
    with pytest.raises(CubeError, match="B02"):
        validate_cube(ds, "s2", bands=["B02"])  # unless the caller needs a band it lacks
    with pytest.raises(CubeError, match="B08/B8A"):
        validate_cube(ds[["B04", "valid"]], "s2")


def test_index_formulas_on_arrays() -> None:
    from ecoembed.sensors.indices import evi2_of, kndvi_of, ndvi_of, nirv_of

    red, nir = np.array([0.05, 0.1]), np.array([0.45, 0.1])
    assert ndvi_of(red, nir)[0] == pytest.approx(0.8) and ndvi_of(red, nir)[1] == 0
    assert nirv_of(red, nir)[0] == pytest.approx(0.36)
    assert kndvi_of(red, nir)[0] == pytest.approx(np.tanh(0.64))
    assert evi2_of(red, nir)[0] == pytest.approx(2.5 * 0.4 / (0.45 + 0.12 + 1.0))


def test_linear_to_db_of_non_positive_power_is_nan() -> None:
    db = linear_to_db(np.array([1.0, 0.01, 0.0, -1.0]))
    assert db[0] == 0 and db[1] == pytest.approx(-20) and np.isnan(db[2:]).all()
