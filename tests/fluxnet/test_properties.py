"""Property tests (hypothesis) for the FLUXNET readers end to end, through real CSV text.

tests/test_fluxnet_aggregate.py already checks ``aggregate_to_daily`` on
in-memory records (linear unit conversion, QC fraction by hand, one row per
start day) and tests/test_fluxnet_read.py one example round trip. What is
added here goes through the file layer (``read_flux`` parsing CSV text):

* DD round trip: any one-site daily table -> ``write_fluxnet_dd`` ->
  ``read_flux`` gives the same table (NaN <-> -9999, full float precision,
  leap days, year ends);
* HH/HR files: daily GPP = mean of the day's records x 12.011e-6 g/umol x
  86 400 s/d (constant written out here, not imported), ``GPP_qc`` = share
  of the day's records with NEE_VUT_REF_QC <= 1 (-9999 flags count as not
  good), computed independently with numpy;
* day boundaries in local standard time: a record belongs to the day of its
  TIMESTAMP_START (23:30-24:00 to that day), no time zone or DST shift is
  applied (European and US DST dates still have 48 half-hours), and the
  number of output days equals the number of distinct start dates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fluxnet import read_flux, write_fluxnet_dd

G_C_PER_UMOL_CO2 = 12.011e-6
SECONDS_PER_DAY = 86_400
DD_NAME = "FLX_ZZ-Prp_FLUXNET2015_SUBSET_DD_2000-2030_synthetic.csv"
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

finite_or_nan = st.one_of(st.floats(-50, 50, allow_nan=False, allow_subnormal=False), st.just(np.nan))


@st.composite
def daily_tables(draw: st.DrawFn) -> pd.DataFrame:
    """A one-site tidy daily table: unique sorted dates (gaps allowed), NaNs anywhere but one GPP value."""
    start = draw(st.dates(pd.Timestamp("1999-12-25").date(), pd.Timestamp("2030-12-31").date()))
    offsets = sorted(draw(st.lists(st.integers(0, 800), min_size=1, max_size=25, unique=True)))
    n = len(offsets)
    dates = pd.to_datetime(start) + pd.to_timedelta(offsets, unit="D")
    nt = draw(arrays(float, n, elements=finite_or_nan))
    dt = draw(arrays(float, n, elements=finite_or_nan))
    assume(np.isfinite(nt).any() or np.isfinite(dt).any())
    table = pd.DataFrame({
        "site_id": pd.Series(["ZZ-Prp"] * n, dtype=object),
        "date": dates.astype("datetime64[ns]"),
        "GPP_NT": nt,
        "GPP_DT": dt,
        "GPP_qc": draw(arrays(float, n, elements=st.one_of(st.floats(0, 1), st.just(np.nan)))),
        "TA": draw(arrays(float, n, elements=st.one_of(st.floats(-60, 60), st.just(np.nan)))),
        "SW_IN": draw(arrays(float, n, elements=st.floats(0, 1400))),
        "VPD": draw(arrays(float, n, elements=st.floats(0, 80))),
        "P": draw(arrays(float, n, elements=st.floats(0, 300))),
    })
    return table


@SETTINGS
@given(table=daily_tables(), method=st.sampled_from(["mean", "NT", "DT"]))
def test_dd_round_trip_through_the_file(tmp_path: Path, table: pd.DataFrame, method: str) -> None:
    path = write_fluxnet_dd(table, tmp_path / DD_NAME)
    nt, dt = table["GPP_NT"].to_numpy(), table["GPP_DT"].to_numpy()
    chosen = {"NT": nt, "DT": dt}.get(method)
    assume(chosen is None or np.isfinite(chosen).any())  # an all-missing target is refused, tested elsewhere
    again = read_flux(path, gpp_method=method)
    assert list(again["date"]) == list(table["date"])
    for column in ("GPP_NT", "GPP_DT", "GPP_qc", "TA", "SW_IN", "VPD", "P"):
        np.testing.assert_array_equal(again[column].to_numpy(), table[column].to_numpy(), err_msg=column)
    if method == "mean":
        expected = np.where(np.isfinite(nt) & np.isfinite(dt), (nt + dt) / 2, np.where(np.isfinite(nt), nt, dt))
    else:
        expected = chosen
    np.testing.assert_allclose(again["GPP"].to_numpy(), expected, rtol=0, atol=1e-12)
    assert (again["site_id"] == "ZZ-Prp").all()


@st.composite
def sub_daily_files(draw: st.DrawFn) -> tuple[pd.DataFrame, int]:
    """Records of an HH (30 min) or HR (60 min) file: any start slot, 1-3 days long, -9999 gaps and flags 0-3."""
    step = draw(st.sampled_from([30, 60]))
    per_day = 1440 // step
    start_day = draw(st.sampled_from(["2019-03-30", "2019-03-09", "2019-10-26", "2019-12-31", "2020-02-28", "2021-06-15"]))
    first_slot = draw(st.integers(0, per_day - 1))
    n = draw(st.integers(1, 3 * per_day))
    starts = pd.Timestamp(start_day) + pd.to_timedelta(first_slot * step + step * np.arange(n), unit="min")
    gpp = draw(arrays(float, n, elements=st.one_of(st.floats(-5, 60, allow_subnormal=False), st.just(-9999.0))))
    flags = draw(arrays(np.int64, n, elements=st.sampled_from([0, 1, 2, 3, -9999])))
    assume((gpp != -9999).any())
    frame = pd.DataFrame({
        "TIMESTAMP_START": starts.strftime("%Y%m%d%H%M"),
        "TIMESTAMP_END": (starts + pd.Timedelta(minutes=step)).strftime("%Y%m%d%H%M"),
        "NEE_VUT_REF_QC": flags,
        "GPP_NT_VUT_REF": gpp,
        "GPP_DT_VUT_REF": gpp,
    })
    return frame, step


@SETTINGS
@given(case=sub_daily_files(), coverage=st.sampled_from([0.01, 0.5, 0.9, 1.0]))
def test_sub_daily_file_to_daily_units_qc_and_day_boundaries(tmp_path: Path, case: tuple[pd.DataFrame, int], coverage: float) -> None:
    frame, step = case
    per_day = 1440 // step
    name = f"FLX_ZZ-Prp_FLUXNET2015_FULLSET_{'HH' if step == 30 else 'HR'}_2019-2021_synthetic.csv"
    path = tmp_path / name
    frame.to_csv(path, index=False)
    table = read_flux(path, min_coverage=coverage)

    start_day = frame["TIMESTAMP_START"].str[:8]  # local standard time, as written: no zone, no DST
    expected_days = pd.to_datetime(sorted(start_day.unique()), format="%Y%m%d")
    assert list(table["date"]) == list(expected_days)
    gpp = frame["GPP_NT_VUT_REF"].where(frame["GPP_NT_VUT_REF"] != -9999)
    good = frame["NEE_VUT_REF_QC"].isin([0, 1])
    for _, row in table.iterrows():
        in_day = (start_day == row["date"].strftime("%Y%m%d")).to_numpy()
        values = gpp[in_day].dropna().to_numpy()
        assert row["GPP_qc"] == pytest.approx(good[in_day].sum() / per_day)
        if len(values) >= coverage * per_day:
            assert row["GPP"] == pytest.approx(values.mean() * G_C_PER_UMOL_CO2 * SECONDS_PER_DAY, rel=1e-12, abs=1e-12)
        else:
            assert np.isnan(row["GPP"])


@pytest.mark.parametrize("day", ["2019-03-31", "2019-10-27", "2019-03-10", "2019-11-03"])
def test_dst_dates_keep_48_half_hours_in_local_standard_time(tmp_path: Path, day: str) -> None:
    """EU and US DST switch days are ordinary 48-record days in FLUXNET local standard time."""
    starts = pd.date_range(day, periods=48, freq="30min")
    frame = pd.DataFrame({
        "TIMESTAMP_START": starts.strftime("%Y%m%d%H%M"),
        "TIMESTAMP_END": (starts + pd.Timedelta(minutes=30)).strftime("%Y%m%d%H%M"),
        "NEE_VUT_REF_QC": 0,
        "GPP_NT_VUT_REF": np.arange(48.0),
        "GPP_DT_VUT_REF": np.arange(48.0),
    })
    path = tmp_path / "FLX_ZZ-Dst_FLUXNET2015_FULLSET_HH_2019-2019_synthetic.csv"
    frame.to_csv(path, index=False)
    table = read_flux(path, min_coverage=1.0)
    assert list(table["date"]) == [pd.Timestamp(day)]
    assert table["GPP"].iloc[0] == pytest.approx(23.5 * G_C_PER_UMOL_CO2 * SECONDS_PER_DAY)
    assert table["GPP_qc"].iloc[0] == 1.0
