"""Real tower data (../shared/data/pmodel): fAPAR x PAR against meteorology-only under temporal CV.

BE-Vie (mixed forest, half-hourly 2014 -> daily), leave-one-month-out: adding
fAPAR x PAR to meteorology (TA, PAR, VPD) raises r2 for both heads.
FR-Pue (evergreen broadleaf, daily 2007-2012), leave-one-year-out: measured,
fAPAR x PAR does NOT beat meteorology-only (fAPAR is nearly constant at this
water-limited evergreen site; meteorology already carries PAR); the test pins
what holds there: fAPAR x PAR alone has skill and adding it costs nothing.
Skips when the data folder is absent. Run with ``-s`` to see the figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecoembed.gpp.cv import cv_splits, out_of_fold
from ecoembed.gpp.heads import make_head
from ecoembed.gpp.metrics import pooled_metrics

pytestmark = pytest.mark.realdata

METEO = ["TA", "PAR", "VPD"]
LIGHT = ["fAPAR_x_PAR"]


def fr_pue(shared: Path) -> pd.DataFrame:
    """FR-Pue daily table: GPP (gC m-2 d-1), TA (degC), VPD (Pa), PAR (mol m-2 d-1 from ppfd in mol m-2 s-1), fAPAR."""
    d = shared / "pmodel"
    gpp = pd.read_csv(d / "FR-Pue_gpp_daily_2007-2012.csv", parse_dates=["date"])
    frc = pd.read_csv(d / "FR-Pue_forcing_daily_2007-2012.csv", parse_dates=["date"])
    t = gpp.merge(frc, on="date")
    t = pd.DataFrame({"site_id": "FR-Pue", "date": t["date"], "GPP": t["gpp"], "TA": t["temp"], "VPD": t["vpd"],
                      "PAR": t["ppfd"] * 86400.0, "fAPAR": t["fapar"]})
    t["fAPAR_x_PAR"] = t["fAPAR"] * t["PAR"]
    return t.dropna().reset_index(drop=True)


def be_vie(shared: Path) -> pd.DataFrame:
    """BE-Vie half-hourly -> daily means: GPP umol m-2 s-1 -> gC m-2 d-1 (x 12.011e-6 x 86400), PAR mol m-2 d-1."""
    hh = pd.read_csv(shared / "pmodel" / "BE-Vie_halfhourly_2014.csv", parse_dates=["time"])
    day = hh.set_index("time").resample("D").mean(numeric_only=True)
    t = pd.DataFrame({"site_id": "BE-Vie", "date": day.index, "GPP": day["gpp_fluxnet"].to_numpy() * 12.011e-6 * 86400,
                      "TA": day["tc"].to_numpy(), "VPD": day["vpd"].to_numpy(), "PAR": day["ppfd"].to_numpy() * 0.0864,
                      "fAPAR": day["fapar"].to_numpy()})
    t["fAPAR_x_PAR"] = t["fAPAR"] * t["PAR"]
    return t.dropna().reset_index(drop=True)


def _compare(table: pd.DataFrame, scheme: str) -> pd.DataFrame:
    splits = cv_splits(table, scheme)
    parts = []
    for name, cols in (("meteo", METEO), ("fapar_x_par", LIGHT), ("fapar_x_par+meteo", LIGHT + METEO)):
        for head in ("linear", "xgboost"):
            parts.append(out_of_fold(table, cols, lambda h=head: make_head(h, seed=0), splits, head=head, features=name))
    return pooled_metrics(pd.concat(parts, ignore_index=True)).set_index(["features", "head"])


def test_fr_pue_leave_one_year_out(shared_data: Path) -> None:
    t = fr_pue(shared_data)
    assert t["date"].dt.year.nunique() == 6 and t["PAR"].between(0, 80).all()
    m = _compare(t, "year")
    print("\nFR-Pue leave-one-year-out (GPP gC m-2 d-1):\n", m[["n", "r2", "rmse", "nse"]].round(3).to_string())
    assert m.loc[("fapar_x_par", "linear"), "r2"] > 0.3
    for head in ("linear", "xgboost"):
        assert m.loc[("fapar_x_par+meteo", head), "rmse"] <= m.loc[("meteo", head), "rmse"] * 1.02


def test_be_vie_leave_one_month_out(shared_data: Path) -> None:
    t = be_vie(shared_data)
    assert len(t) > 300 and t["GPP"].max() < 25
    m = _compare(t, "month")
    print("\nBE-Vie 2014 leave-one-month-out (GPP gC m-2 d-1):\n", m[["n", "r2", "rmse", "nse"]].round(3).to_string())
    for head in ("linear", "xgboost"):
        assert m.loc[("fapar_x_par+meteo", head), "r2"] > m.loc[("meteo", head), "r2"]
        assert m.loc[("fapar_x_par+meteo", head), "rmse"] < m.loc[("meteo", head), "rmse"]
    assert np.isfinite(m["rmse"]).all()
