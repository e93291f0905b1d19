"""read_flux on the real FLUXNET files in ../shared/data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxnet import read_flux
from fluxnet.aggregate import UMOL_S_TO_GC_DAY

pytestmark = pytest.mark.realdata

US_AR1_DD = "fluxnet/FLX_US-AR1_FLUXNET2015_SUBSET_DD_2009-2012_1-3.csv"
CH_CHA_HH = "fluxnet/FLX_CH-Cha_FLUXNET2015_FULLSET_HH_2005-2020_beta-3.csv"


def test_us_ar1_daily(shared_data: Path) -> None:
    table = read_flux(shared_data / US_AR1_DD)
    assert len(table) == 1461
    assert table["date"].iloc[0] == pd.Timestamp("2009-01-01")
    assert table["date"].iloc[-1] == pd.Timestamp("2012-12-31")
    assert (table["site_id"] == "US-AR1").all()
    assert table["GPP"].notna().all()
    # grassland: small negative night-time artefacts allowed, peak below ~20
    assert table["GPP"].between(-3, 20).all() and table["GPP"].max() > 5
    assert table["GPP_qc"].between(0, 1).all()
    # first row, by hand from the file: NT 0.0122488, DT 2.26843, TA_F 2.803
    first = table.iloc[0]
    assert first["GPP"] == pytest.approx((0.0122488 + 2.26843) / 2)
    assert first["GPP_unc"] == pytest.approx(abs(0.0122488 - 2.26843) / 2)
    assert first["TA"] == pytest.approx(2.803)
    assert np.isnan(first["PPFD_IN"])  # -9999 in the file
    assert table.attrs["resolution_in"] == "DD"


def test_ch_cha_half_hourly(shared_data: Path) -> None:
    path = shared_data / CH_CHA_HH
    table = read_flux(path)
    # 99 records: 48 on 1 Jan, 48 on 2 Jan, 3 on 3 Jan (a partial day -> NaN GPP)
    assert list(table["date"]) == list(pd.to_datetime(["2005-01-01", "2005-01-02", "2005-01-03"]))
    assert table["GPP"].iloc[:2].notna().all() and np.isnan(table["GPP"].iloc[2])
    assert np.isnan(table["P"].iloc[2])
    # all 99 records have NEE_VUT_REF_QC = 3 (poor gap-fill): no good records
    assert (table["GPP_qc"] == 0).all()
    raw = pd.read_csv(path, usecols=["TIMESTAMP_START", "GPP_NT_VUT_REF", "GPP_DT_VUT_REF", "P_F"])
    day1 = raw[raw["TIMESTAMP_START"] // 10_000 == 20050101]
    # day boundary: the record starting 2005-01-01 23:30 belongs to 1 Jan, the one
    # starting 2005-01-02 00:00 to 2 Jan
    assert len(day1) == 48 and day1["TIMESTAMP_START"].iloc[-1] == 200501012330
    assert table["GPP_NT"].iloc[0] == pytest.approx(day1["GPP_NT_VUT_REF"].mean() * UMOL_S_TO_GC_DAY)
    assert table["GPP_DT"].iloc[0] == pytest.approx(day1["GPP_DT_VUT_REF"].mean() * UMOL_S_TO_GC_DAY)
    assert table["P"].iloc[0] == pytest.approx(day1["P_F"].sum())
    # with a 3/48 coverage threshold the partial day is kept
    relaxed = read_flux(path, min_coverage=3 / 48)
    assert np.isfinite(relaxed["GPP"].iloc[2])
