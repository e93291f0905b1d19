"""Tower window aggregation, daily interpolation, join with GPP and days lost (SYNTHETIC inputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ecoembed.errors import CubeError, InputError
from ecoembed.gpp.features import columns_for, parse_feature_set, site_features
from ecoembed.gpp.join import aggregate_cube, gaussian_weights, join_site, to_daily, weighted_window_mean
from ecoembed.sources.chips import tower_xy


def test_gaussian_weights_and_renormalisation() -> None:
    w = gaussian_weights(5)
    assert w.sum() == pytest.approx(1) and w[2, 2] == w.max() and w[0, 0] == w.min()
    v = np.ones((2, 5, 5))
    v[0, 2, 2] = np.nan  # centre missing at t0
    v[1] = np.nan
    m = weighted_window_mean(v * 3.0, w)
    assert m[0] == pytest.approx(3.0) and np.isnan(m[1])
    vals = np.arange(25, dtype=float).reshape(1, 5, 5)
    valid = np.zeros((1, 5, 5), bool)
    valid[0, 1, 1] = valid[0, 3, 3] = True
    assert weighted_window_mean(vals, w, valid)[0] == pytest.approx((6 + 18) / 2)


def test_to_daily_max_gap() -> None:
    idx = pd.to_datetime(["2019-01-01", "2019-01-11", "2019-03-01"])
    d = to_daily(pd.DataFrame({"v": [0.0, 10.0, 20.0]}, index=idx), max_gap_days=30)
    assert d.loc["2019-01-06", "v"] == pytest.approx(5.0)
    assert d.loc["2019-01-11", "v"] == 10.0 and d.loc["2019-03-01", "v"] == 20.0
    assert d.loc["2019-01-12":"2019-02-28", "v"].isna().all()  # 49-day gap stays NaN


def _cube(lat: float = 45.0, lon: float = 9.0) -> xr.Dataset:
    tx, ty = tower_xy(lat, lon, "EPSG:32632")
    xs, ys = tx + 10.0 * (np.arange(7) - 3), ty - 10.0 * (np.arange(7) - 3)
    t = pd.date_range("2019-01-01", periods=4, freq="D")
    v = np.arange(4 * 7 * 7, dtype=np.float32).reshape(4, 7, 7)
    return xr.Dataset({"B04": (("time", "y", "x"), v)}, coords={"time": t, "y": ys, "x": xs}, attrs={"crs": "EPSG:32632"})


def test_aggregate_cube_centre_and_errors() -> None:
    ds = _cube()
    one = aggregate_cube(ds, 45.0, 9.0, size_px=1)
    np.testing.assert_allclose(one["B04"].to_numpy(), ds["B04"].values[:, 3, 3])
    five = aggregate_cube(ds, 45.0, 9.0, size_px=5)  # symmetric window: mean = centre for a linear ramp
    np.testing.assert_allclose(five["B04"].to_numpy(), ds["B04"].values[:, 3, 3], rtol=1e-6)
    with pytest.raises(CubeError, match="outside the cube"):
        aggregate_cube(ds, 46.0, 9.0)
    with pytest.raises(CubeError, match="NaN/invalid"):
        aggregate_cube(ds.assign(B04=ds["B04"] * np.nan), 45.0, 9.0)
    with pytest.raises(CubeError, match="crs"):
        aggregate_cube(ds.assign_attrs(crs=""), 45.0, 9.0)


def test_join_site_days_lost_and_no_overlap() -> None:
    dates = pd.date_range("2019-01-01", periods=10, freq="D")
    flux = pd.DataFrame({"site_id": "S", "date": dates, "GPP": [1.0, np.nan, 2, 3, 4, 5, 6, 7, 8, 9],
                         "GPP_qc": [1, 1, 0.1, 1, 1, 1, 1, 1, 1, 1.0], "TA": 1.0})
    feats = pd.DataFrame({"f": [1.0, 1, 1, np.nan, 1, 1, 1]}, index=dates[:7])
    table, lost = join_site(flux, feats, feature_sets={"x": ["f"]})
    row = lost.iloc[0]
    assert (row["gpp_missing"], row["qc_failed"], row["outside_cube_period"], row["features_missing"], row["n_used"]) == (1, 1, 3, 1, 4)
    assert row[["gpp_missing", "qc_failed", "outside_cube_period", "features_missing", "n_used"]].sum() == row["n_flux_days"]
    assert len(table) == 5  # QC-passed days inside the period (one still lacks f)
    late = pd.DataFrame({"f": [1.0]}, index=pd.to_datetime(["2021-01-01"]))
    with pytest.raises(InputError, match="do not overlap"):
        join_site(flux, late)


def test_feature_sets_parse_and_site_features(tmp_path: Path) -> None:
    from ecoembed.sources.synthetic import write_embedding_sites as make_sites
    from fluxnet import read_flux, read_sites_csv

    assert parse_feature_set("embeddings+meteo") == ["embeddings", "meteo"]
    with pytest.raises(InputError, match="unknown part"):
        parse_feature_set("embeddings+ndwi")
    csv = make_sites(tmp_path, n_sites=1, days=60, s2=True)
    site = read_sites_csv(csv).iloc[0]
    flux = read_flux(site["flux_path"])
    feats, info = site_features(site, flux, ["embeddings", "indices_x_par", "bands"])
    assert info["synthetic"] is True
    assert columns_for("indices_x_par", feats.columns) == ["NIRv_x_PAR", "NDVI_x_PAR"]
    assert columns_for("bands", feats.columns) == ["B04", "B08"]
    assert len(columns_for("embeddings+meteo", feats.columns)) == 6 + 3
    # S2 every 5 days -> daily, NIRv x PAR = NIRv x PPFD_IN x 0.0864
    par = flux.set_index("date")["PPFD_IN"] * 0.0864
    d = feats.index[10]
    assert feats.loc[d, "NIRv_x_PAR"] == pytest.approx(feats.loc[d, "NIRv"] * par.loc[d], rel=1e-5)
    assert np.isfinite(feats["NDVI"].iloc[:55]).all()
