"""Property tests for aggregate_to_daily (hypothesis) and qc_pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fluxnet import DEFAULT_QC_MIN, aggregate_to_daily, qc_pass
from fluxnet.aggregate import UMOL_S_TO_GC_DAY

SLOTS_PER_DAY = 48


@st.composite
def half_hourly_records(draw: st.DrawFn) -> pd.DataFrame:
    """Unique, sorted half-hour records over 1-4 days with gaps, NaNs and QC flags."""
    n_days = draw(st.integers(1, 4))
    slots = draw(
        st.lists(st.integers(0, n_days * SLOTS_PER_DAY - 1), min_size=1, max_size=n_days * SLOTS_PER_DAY, unique=True)
    )
    slots = np.sort(np.asarray(slots))
    n = len(slots)
    start = np.datetime64("2019-12-31T00:00") + slots * np.timedelta64(30, "m")
    gpp = draw(arrays(float, n, elements=st.one_of(st.floats(-5, 60), st.just(np.nan))))
    flags = draw(arrays(float, n, elements=st.sampled_from([0.0, 1.0, 2.0, 3.0, np.nan])))
    return pd.DataFrame(
        {
            "TIMESTAMP_START": start.astype("datetime64[ns]"),
            "GPP_NT": gpp,
            "GPP_DT": gpp * 0.9,
            "P": np.abs(gpp) / 100,
            "NEE_QC": flags,
        }
    )


@settings(max_examples=60, deadline=None)
@given(records=half_hourly_records(), factor=st.floats(-10, 10))
def test_unit_conversion_is_linear(records: pd.DataFrame, factor: float) -> None:
    base = aggregate_to_daily(records, min_coverage=0.01)
    scaled_records = records.assign(GPP_NT=records["GPP_NT"] * factor)
    scaled = aggregate_to_daily(scaled_records, min_coverage=0.01)
    np.testing.assert_allclose(scaled["GPP_NT"], base["GPP_NT"] * factor, rtol=1e-9, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(records=half_hourly_records())
def test_qc_fraction_matches_hand_count(records: pd.DataFrame) -> None:
    daily = aggregate_to_daily(records)
    assert daily["GPP_qc"].between(0, 1).all()
    days = records["TIMESTAMP_START"].dt.normalize()
    for _, row in daily.iterrows():
        flags = records.loc[days == row["date"], "NEE_QC"]
        good = int(((flags == 0) | (flags == 1)).sum())
        assert row["GPP_qc"] == pytest.approx(good / SLOTS_PER_DAY)


@settings(max_examples=60, deadline=None)
@given(records=half_hourly_records())
def test_one_row_per_distinct_day_and_records_land_on_their_start_day(records: pd.DataFrame) -> None:
    daily = aggregate_to_daily(records)
    start_days = records["TIMESTAMP_START"].dt.normalize()
    assert len(daily) == start_days.nunique()
    assert list(daily["date"]) == sorted(start_days.unique())
    counts = start_days.value_counts().sort_index()
    assert list(daily["n_records"]) == list(counts)
    # complete days get the mean of their own records, converted
    for _, row in daily.iterrows():
        values = records.loc[start_days == row["date"], "GPP_NT"]
        if values.notna().sum() >= 0.9 * SLOTS_PER_DAY:
            assert row["GPP_NT"] == pytest.approx(values.mean() * UMOL_S_TO_GC_DAY)
        else:
            assert np.isnan(row["GPP_NT"])


def test_day_boundary_half_hours() -> None:
    """23:30-24:00 belongs to that day; 00:00-00:30 to the next."""
    starts = pd.to_datetime(["2020-06-01 23:00", "2020-06-01 23:30", "2020-06-02 00:00"])
    records = pd.DataFrame({"TIMESTAMP_START": starts, "GPP_NT": [1.0, 2.0, 40.0], "NEE_QC": [0, 0, 0]})
    daily = aggregate_to_daily(records, min_coverage=1 / 48)
    assert list(daily["date"]) == list(pd.to_datetime(["2020-06-01", "2020-06-02"]))
    np.testing.assert_allclose(daily["GPP_NT"], [1.5 * UMOL_S_TO_GC_DAY, 40 * UMOL_S_TO_GC_DAY])
    np.testing.assert_allclose(daily["GPP_qc"], [2 / 48, 1 / 48])


def test_constant_ten_umol_is_10_377_g() -> None:
    starts = pd.date_range("2020-06-01", periods=48, freq="30min")
    daily = aggregate_to_daily(pd.DataFrame({"TIMESTAMP_START": starts, "GPP_NT": 10.0}))
    assert daily["GPP_NT"].iloc[0] == pytest.approx(10.377504)
    assert np.isnan(daily["GPP_qc"].iloc[0])  # no flags given -> unknown, not 0


def test_bad_arguments() -> None:
    records = pd.DataFrame({"TIMESTAMP_START": pd.to_datetime(["2020-01-01"]), "GPP_NT": [1.0]})
    with pytest.raises(ValueError, match="step_minutes"):
        aggregate_to_daily(records, step_minutes=7)
    with pytest.raises(ValueError, match="min_coverage"):
        aggregate_to_daily(records, min_coverage=0)


def test_qc_pass() -> None:
    table = pd.DataFrame({"GPP": [1.0, np.nan, 2.0, 3.0], "GPP_qc": [0.9, 1.0, 0.5, np.nan]})
    assert list(qc_pass(table)) == [True, False, False, False]
    assert list(qc_pass(table, qc_min=0.4)) == [True, False, True, False]
    assert DEFAULT_QC_MIN == 0.8
    with pytest.raises(ValueError, match="qc_min"):
        qc_pass(table, qc_min=1.5)
