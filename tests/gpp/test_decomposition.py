"""Skill decomposition against values computed by hand on a tiny table (see the comments)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ecoembed.errors import InputError
from ecoembed.gpp.decomposition import (
    aggregate_8day,
    annual_table,
    daily_vs_8day,
    decompose_skill,
    seasonal_cycle,
)
from ecoembed.gpp.metrics import compute_metrics


def tiny_oof() -> pd.DataFrame:
    """Three sites, days 1-2 of January.

    A (2001, 2002): obs 1,3 | 3,5   pred 1,2 | 5,4
    B (2001):       obs 10,12       pred 9,15
    C (2001):       obs 6 (1 Jan)   pred 4
    """
    rows = [
        ("A", "2001-01-01", 1, 1), ("A", "2001-01-02", 3, 2), ("A", "2002-01-01", 3, 5), ("A", "2002-01-02", 5, 4),
        ("B", "2001-01-01", 10, 9), ("B", "2001-01-02", 12, 15),
        ("C", "2001-01-01", 6, 4),
    ]
    df = pd.DataFrame(rows, columns=["site_id", "date", "observed", "predicted"])
    df["features"], df["head"] = "embeddings", "xgboost"
    return df


def _row(table: pd.DataFrame, component: str, group: str = "all") -> pd.Series:
    sel = table[(table["component"] == component) & (table["group"] == group)]
    assert len(sel) == 1
    return sel.iloc[0]


def test_metrics_hand_values_and_constant_series() -> None:
    # obs 1,2,3 (mean 2, SST 2); pred 1,3,3 -> err 0,1,0 (SSE 1); pred mean 7/3
    s = compute_metrics([1, 2, 3, np.nan], [1, 3, 3, 7])
    assert s["n"] == 3
    assert s["rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert s["nse"] == pytest.approx(0.5)
    # cov: (-1)(-4/3) + 0 + (1)(2/3) = 2; ssp = 16/9 + 4/9 + 4/9 = 24/9 -> r2 = 4 / (2 * 24/9) = 0.75
    assert s["r2"] == pytest.approx(0.75)
    const = compute_metrics([2, 2, 2], [1, 2, 3])
    assert math.isnan(const["r2"]) and math.isnan(const["nse"]) and const["rmse"] == pytest.approx(math.sqrt(2 / 3))


def test_decomposition_hand_values() -> None:
    t = decompose_skill(tiny_oof(), smooth_days=1, min_year_coverage=0.0)
    assert set(t["component"]) == {"daily", "across_site", "seasonal_cycle", "anomalies", "interannual"}
    assert (t["group"] == "all").all()

    # across-site: obs means 3, 11, 6 (mean 20/3); pred means 3, 12, 4 (mean 19/3)
    a = _row(t, "across_site")
    assert a["n"] == 3
    assert a["rmse"] == pytest.approx(math.sqrt((0 + 1 + 4) / 3))
    # SST = (3-20/3)^2 + (11-20/3)^2 + (6-20/3)^2 = (121 + 169 + 4)/9 = 294/9; SSE = 5
    assert a["nse"] == pytest.approx(1 - 5 / (294 / 9))
    # do = (-11, 13, -2)/3, dp = (-10, 17, -7)/3: cov = (110+221+14)/9 = 345/9; ssp = (100+289+49)/9 = 438/9
    assert a["r2"] == pytest.approx((345 / 9) ** 2 / ((294 / 9) * (438 / 9)))

    # MSC (site mean removed): A obs -1,+1 pred 0,0; B obs -1,+1 pred -3,+3; C obs 0 pred 0
    m = _row(t, "seasonal_cycle")
    assert m["n"] == 5
    assert m["rmse"] == pytest.approx(math.sqrt(10 / 5))
    assert m["nse"] == pytest.approx(1 - 10 / 4)
    assert m["r2"] == pytest.approx(36 / (4 * 18))

    # anomalies: A obs -1,-1,+1,+1 pred -2,-1,+2,+1; B and C zero (one year each)
    an = _row(t, "anomalies")
    assert an["n"] == 7
    assert an["rmse"] == pytest.approx(math.sqrt(2 / 7))
    assert an["nse"] == pytest.approx(0.5)
    assert an["r2"] == pytest.approx(36 / 40)

    # IAV: only A has 2 years. obs annual 2*365, 4*365 -> -365, +365; pred 1.5*365, 4.5*365 -> -547.5, +547.5
    iav = _row(t, "interannual")
    assert iav["n"] == 2 and iav["unit"] == "gC m-2 yr-1"
    assert iav["rmse"] == pytest.approx(182.5)
    assert iav["nse"] == pytest.approx(0.75)

    d = _row(t, "daily")
    assert d["n"] == 7
    assert d["rmse"] == pytest.approx(math.sqrt((0 + 1 + 4 + 1 + 1 + 9 + 4) / 7))


def test_decomposition_per_igbp_class() -> None:
    t = decompose_skill(tiny_oof(), igbp={"A": "GRA", "B": "ENF", "C": "GRA"}, smooth_days=1, min_year_coverage=0.0)
    assert set(t["group"]) == {"all", "GRA", "ENF"}
    enf = _row(t, "across_site", "ENF")
    assert enf["n"] == 1 and math.isnan(enf["r2"])  # one site: no across-site skill to speak of
    gra = _row(t, "across_site", "GRA")  # A (3 vs 3) and C (6 vs 4)
    assert gra["n"] == 2 and gra["rmse"] == pytest.approx(math.sqrt(2))
    assert _row(t, "interannual", "ENF")["n"] == 0


def test_models_are_scored_separately() -> None:
    a = tiny_oof()
    b = tiny_oof().assign(head="linear", predicted=lambda d: d["observed"])
    t = decompose_skill(pd.concat([a, b]), smooth_days=1, min_year_coverage=0.0)
    lin = t[(t["head"] == "linear") & (t["component"] == "daily")].iloc[0]
    xgb = t[(t["head"] == "xgboost") & (t["component"] == "daily")].iloc[0]
    assert lin["rmse"] == 0 and lin["nse"] == 1 and xgb["rmse"] > 0


def test_seasonal_cycle_smoothing_is_circular() -> None:
    # one site, value 1 on 31 Dec and 3 on 1 Jan: a 3-day window centred on 1 Jan wraps to 31 Dec
    df = pd.DataFrame({"site_id": "S", "date": pd.to_datetime(["2001-01-01", "2001-12-31"]), "observed": [3.0, 1.0],
                       "predicted": [3.0, 1.0]})
    msc = seasonal_cycle(df, smooth_days=3).set_index("period")
    # doy 365 is 31 Dec 2001; doy 366 has no data. Window at doy 1 = {366, 1, 2} -> only doy 1 -> 3.
    assert msc.loc[1, "observed"] == pytest.approx(3.0)
    # window at doy 366 = {365, 366, 1} -> mean(1, 3) = 2
    assert msc.loc[366, "observed"] == pytest.approx(2.0)
    assert math.isnan(msc.loc[100, "observed"])


def test_annual_table_coverage_filter() -> None:
    days = pd.date_range("2003-01-01", "2003-12-31", freq="D")
    df = pd.DataFrame({"site_id": "S", "date": days, "observed": 2.0, "predicted": 3.0})
    df["year"] = df["date"].dt.year
    full = annual_table(df, min_year_coverage=0.8)
    assert full["observed"].iloc[0] == pytest.approx(730.0) and full["predicted"].iloc[0] == pytest.approx(1095.0)
    assert annual_table(df.iloc[:200], min_year_coverage=0.8).empty


def test_8day_aggregation_and_side_by_side() -> None:
    days = pd.date_range("2005-01-01", periods=16, freq="D")
    obs = np.arange(1.0, 17.0)
    df = pd.DataFrame({"site_id": "S", "date": days, "observed": obs, "predicted": obs + 1})
    agg = aggregate_8day(df)
    assert list(agg["observed"]) == [4.5, 12.5] and list(agg["predicted"]) == [5.5, 13.5]
    assert list(agg["n_days"]) == [8, 8] and agg["date"].iloc[1] == pd.Timestamp("2005-01-09")
    side = daily_vs_8day(df)
    assert side.loc[0, "n_daily"] == 16 and side.loc[0, "n_8day"] == 2
    assert side.loc[0, "rmse_daily"] == pytest.approx(1.0) and side.loc[0, "rmse_8day"] == pytest.approx(1.0)


def test_missing_columns_are_named() -> None:
    with pytest.raises(InputError, match="predicted"):
        decompose_skill(pd.DataFrame({"site_id": ["A"], "date": ["2001-01-01"], "observed": [1.0]}))


@pytest.mark.realdata
def test_real_fr_pue_leave_one_year_out_decomposition(shared_data) -> None:
    """FR-Pue 2007-2012 (real tower GPP): OLS leave-one-year-out, fAPAR x PPFD + meteo vs meteo only.

    Daily skill is nearly equal; the decomposition shows where fAPAR helps (inter-annual variability).
    """
    d = shared_data / "pmodel"
    gpp_path, forcing_path = d / "FR-Pue_gpp_daily_2007-2012.csv", d / "FR-Pue_forcing_daily_2007-2012.csv"
    if not (gpp_path.exists() and forcing_path.exists()):
        pytest.skip(f"{gpp_path} or {forcing_path} is absent")
    t = pd.read_csv(gpp_path, parse_dates=["date"]).merge(pd.read_csv(forcing_path, parse_dates=["date"]), on="date")
    t = t.dropna(subset=["gpp"]).reset_index(drop=True)
    t["apar"] = t["fapar"] * t["ppfd"]
    years = t["date"].dt.year.to_numpy()
    parts = []
    for name, cols in {"fapar_x_ppfd+meteo": ["apar", "temp", "vpd"], "meteo": ["ppfd", "temp", "vpd"]}.items():
        pred = np.full(len(t), np.nan)
        for y in np.unique(years):
            tr, te = years != y, years == y
            beta = np.linalg.lstsq(np.c_[np.ones(tr.sum()), t.loc[tr, cols]], t.loc[tr, "gpp"], rcond=None)[0]
            pred[te] = np.c_[np.ones(te.sum()), t.loc[te, cols]] @ beta
        parts.append(pd.DataFrame({"site_id": "FR-Pue", "date": t["date"], "observed": t["gpp"], "predicted": pred,
                                   "features": name, "head": "ols"}))
    table = decompose_skill(pd.concat(parts))
    print(table.to_string())
    by = table.set_index(["features", "component"])
    assert by.loc[("meteo", "seasonal_cycle"), "n"] == 366 and by.loc[("meteo", "interannual"), "n"] >= 4
    assert np.isnan(by.loc[("meteo", "across_site"), "r2"])  # one site: no across-site skill
    assert by.loc[("fapar_x_ppfd+meteo", "interannual"), "nse"] > by.loc[("meteo", "interannual"), "nse"]
