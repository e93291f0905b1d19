"""SOS/EOS on curves with known transition dates; lag analysis on a shifted curve."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ecoembed.errors import InputError
from ecoembed.gpp.phenology import (
    cross_correlation,
    lag_analysis,
    longest_gap_days,
    phenology_summary,
    phenology_table,
    season_transitions,
)


def double_logistic(doy: np.ndarray, sos: float, eos: float, *, base: float = 1.0, amp: float = 10.0,
                    k: float = 8.0) -> np.ndarray:
    """GPP-like curve (gC m-2 d-1): half amplitude and steepest rise at ``sos``, steepest fall/half at ``eos``."""
    return base + amp * (1 / (1 + np.exp(-(doy - sos) / k)) - 1 / (1 + np.exp(-(doy - eos) / k)))


def oof_from_curves(curves: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    parts = []
    for (site, year), (obs, pred) in curves.items():
        dates = pd.date_range(f"{year}-01-01", periods=len(obs), freq="D")
        parts.append(pd.DataFrame({"site_id": site, "date": dates, "observed": obs, "predicted": pred}))
    df = pd.concat(parts, ignore_index=True)
    df["features"], df["head"] = "embeddings", "xgboost"
    return df


@pytest.mark.parametrize("method", ["threshold", "derivative"])
@pytest.mark.parametrize(("sos", "eos"), [(120.0, 280.0), (95.5, 250.0), (150.0, 300.0)])
def test_known_transitions_within_one_day(method: str, sos: float, eos: float) -> None:
    doy = np.arange(1, 366)
    rng = np.random.default_rng(0)
    y = double_logistic(doy, sos, eos) + rng.normal(0, 0.2, doy.size)  # measurement noise, smoothed away
    s, e = season_transitions(doy, y, method=method)
    assert abs(s - sos) <= 1.0, (s, sos)
    assert abs(e - eos) <= 1.0, (e, eos)


def test_threshold_fraction_is_configurable() -> None:
    doy = np.arange(1, 366)
    y = double_logistic(doy, 120, 280, k=8)
    # logistic: fraction f is reached at sos + k*ln(f/(1-f)) -> f=0.2: 120 - 8 ln 4 = 108.9
    s, e = season_transitions(doy, y, fraction=0.2, smooth_days=1)
    assert s == pytest.approx(120 - 8 * math.log(4), abs=0.5)
    assert e == pytest.approx(280 + 8 * math.log(4), abs=0.5)
    with pytest.raises(InputError, match="fraction"):
        season_transitions(doy, y, fraction=1.5)


def test_flat_curve_has_no_season_and_gaps_are_filled() -> None:
    doy = np.arange(1, 366)
    s, e = season_transitions(doy, np.full(365, 3.0))
    assert math.isnan(s) and math.isnan(e)
    y = double_logistic(doy, 130, 270)
    y[60:75] = np.nan  # a two-week gap before the season
    s, e = season_transitions(doy, y)
    assert abs(s - 130) <= 1 and abs(e - 270) <= 1


def test_phenology_table_errors_in_days() -> None:
    doy = np.arange(1, 366)
    curves = {("A", 2010): (double_logistic(doy, 120, 280), double_logistic(doy, 127, 275)),
              ("B", 2011): (double_logistic(doy, 100, 260), double_logistic(doy, 100, 260))}
    table = phenology_table(oof_from_curves(curves))
    assert len(table) == 4  # 2 site-years x 2 methods
    a = table[(table["site_id"] == "A")]
    assert np.allclose(a["sos_error_days"], 7, atol=1) and np.allclose(a["eos_error_days"], -5, atol=1)
    b = table[(table["site_id"] == "B")]
    assert np.allclose(b["sos_error_days"], 0, atol=0.01)
    summ = phenology_summary(table)
    thr = summ[summ["method"] == "threshold"].iloc[0]
    assert thr["n_sos"] == 2 and thr["sos_mae_days"] == pytest.approx(3.5, abs=0.5)
    assert thr["eos_bias_days"] == pytest.approx(-2.5, abs=0.5)


def test_short_site_years_are_skipped() -> None:
    doy = np.arange(1, 200)
    curve = double_logistic(doy, 120, 280)
    assert phenology_table(oof_from_curves({("A", 2010): (curve, curve)})).empty  # 199 of 365 days


def test_coverage_rule_keeps_gappy_years_and_drops_long_gaps() -> None:
    doy = np.arange(1, 366)
    curve = double_logistic(doy.astype(float), 120, 280)
    rng = np.random.default_rng(3)
    scattered = curve.copy()
    scattered[rng.random(doy.size) < 0.2] = np.nan  # 20 % of days lost, short gaps: resolved
    long_gap = curve.copy()
    long_gap[100:150] = np.nan  # 50 days missing across the spring transition: skipped
    table = phenology_table(oof_from_curves({("A", 2010): (scattered, scattered), ("B", 2010): (long_gap, long_gap)}),
                            methods=["threshold"])
    assert set(table["site_id"]) == {"A"}
    assert table["sos_obs"].iloc[0] == pytest.approx(120, abs=3)
    assert longest_gap_days(np.r_[[True] * 3, [False] * 4, [True], [False] * 2]) == 4


def test_lag_of_a_shifted_curve() -> None:
    days = np.arange(0, 3 * 365)
    doy = days % 365 + 1
    obs = double_logistic(doy.astype(float), 120, 280)
    rng = np.random.default_rng(1)
    obs = obs + rng.normal(0, 0.3, obs.size)
    shift = 12
    pred = np.full_like(obs, np.nan)
    pred[shift:] = obs[:-shift]  # the prediction repeats the observation 12 days late
    lags, r = cross_correlation(obs, pred, max_lag=30)
    assert lags[np.nanargmax(r)] == shift
    dates = pd.date_range("2015-01-01", periods=days.size, freq="D")
    df = pd.DataFrame({"site_id": "L", "date": dates, "observed": obs, "predicted": pred})
    early = df.assign(site_id="E", predicted=np.r_[obs[5:], [np.nan] * 5])  # 5 days early
    res = lag_analysis(pd.concat([df, early]), max_lag=30).set_index("site_id")
    assert res.loc["L", "lag_days"] == shift and res.loc["E", "lag_days"] == -5
    assert res.loc["L", "r_at_lag"] > res.loc["L", "r_at_zero"]


def test_real_fr_pue_observed_season_is_resolved(shared_data) -> None:
    """FR-Pue (evergreen broadleaf, 2007-2012): GPP vs itself gives zero error; SOS precedes EOS."""
    path = shared_data / "pmodel" / "FR-Pue_gpp_daily_2007-2012.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    raw = pd.read_csv(path)
    date_col = next(c for c in raw.columns if "date" in c.lower() or "time" in c.lower())
    gpp_col = next(c for c in raw.columns if "gpp" in c.lower())
    df = pd.DataFrame({"site_id": "FR-Pue", "date": pd.to_datetime(raw[date_col]),
                       "observed": pd.to_numeric(raw[gpp_col], errors="coerce")})
    df["predicted"] = df["observed"]
    table = phenology_table(df, methods=["threshold"], smooth_days=31, min_coverage=0.68)
    print(table[["year", "sos_obs", "eos_obs"]].to_string())
    assert len(table) >= 4
    ok = table.dropna(subset=["sos_obs", "eos_obs"])
    assert len(ok) >= 1 and (ok["sos_obs"] < ok["eos_obs"]).all()
    assert np.allclose(ok["sos_error_days"], 0)
