"""Every timestamp convention gives the same days; ambiguous or broken stamps get one clear message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxnet import FluxDataError, read_flux
from fluxnet.aggregate import UMOL_S_TO_GC_DAY

Starts = Callable[..., pd.DatetimeIndex]
TableWriter = Callable[..., Path]
DAYS = [pd.Timestamp("2020-06-01"), pd.Timestamp("2020-06-02")]


def gpp_ramp(n: int) -> np.ndarray:
    """A value per record that tells the days apart (day 1 mean 11.75, day 2 mean 35.75)."""
    return np.arange(n, dtype=float) / 2


def expected_daily(step_minutes: int = 30) -> np.ndarray:
    per_day = 1440 // step_minutes
    values = gpp_ramp(2 * per_day)
    return np.array([values[:per_day].mean(), values[per_day:].mean()]) * UMOL_S_TO_GC_DAY


@pytest.mark.parametrize(
    ("columns", "shift_minutes", "fmt"),
    [
        (("TIMESTAMP_START", "TIMESTAMP_END"), (0, 30), "%Y%m%d%H%M"),
        (("TIMESTAMP_START", "TIMESTAMP_END"), (0, 30), "%Y-%m-%d %H:%M:%S"),
        (("TIMESTAMP_START", "TIMESTAMP_END"), (0, 30), "%Y-%m-%dT%H:%M"),
        (("TIMESTAMP_END",), (30,), "%Y%m%d%H%M"),
        (("TIMESTAMP_START",), (0,), "%Y%m%d%H%M"),
        (("TIMESTAMP_MIDDLE",), (15,), "%Y%m%d%H%M"),
    ],
)
def test_named_stamps_give_record_starts(write_table: TableWriter, starts: Starts, columns: tuple[str, ...],
                                         shift_minutes: tuple[int, ...], fmt: str) -> None:
    times = starts()
    frame = pd.DataFrame({c: (times + pd.Timedelta(minutes=m)).strftime(fmt) for c, m in zip(columns, shift_minutes, strict=True)})
    frame["NEE_VUT_REF_QC"] = 0
    frame["GPP_NT_VUT_REF"] = gpp_ramp(len(times))
    table = read_flux(write_table("ZZ-Tim_fluxes.csv", frame))
    assert list(table["date"]) == DAYS  # the record ending at 00:00 on 2 June belongs to 1 June
    np.testing.assert_allclose(table["GPP"], expected_daily())
    assert table.attrs["resolution_in"] == "HH"


def test_end_only_hourly_file_takes_its_step_from_the_stamps(write_table: TableWriter, starts: Starts) -> None:
    times = starts(step_minutes=60)
    frame = pd.DataFrame({"TIMESTAMP_END": (times + pd.Timedelta(hours=1)).strftime("%Y%m%d%H%M"),
                          "NEE_VUT_REF_QC": 0, "GPP_NT_VUT_REF": gpp_ramp(len(times))})
    frame = frame.drop(index=[5, 6, 30])  # gaps keep the step
    table = read_flux(write_table("ZZ-Tim_fluxes.csv", frame), min_coverage=0.5)
    assert table.attrs["resolution_in"] == "HR"
    np.testing.assert_allclose(table["GPP_qc"], [22 / 24, 23 / 24])


def test_reddyproc_year_doy_hour_marks_the_end(write_table: TableWriter, starts: Starts) -> None:
    ends = starts() + pd.Timedelta(minutes=30)
    frame = pd.DataFrame({"Year": ends.year, "DoY": ends.day_of_year, "Hour": ends.hour + ends.minute / 60,
                          "NEE_uStar_fqc": 0, "GPP_uStar_f": gpp_ramp(len(ends))})
    # REddyProc writes the midnight record as hour 24 of the day before; both spellings mean the same instant
    midnight = frame["Hour"] == 0
    frame.loc[midnight, "DoY"] -= 1
    frame.loc[midnight, "Hour"] = 24.0
    table = read_flux(write_table("ZZ-Ydh_REddyProc.txt", frame, sep="\t"))
    assert list(table["date"]) == DAYS
    np.testing.assert_allclose(table["GPP"], expected_daily())
    assert table.attrs["timestamps"] == "Year/DoY/Hour (marks the record end; REDDYPROC convention)"


@pytest.mark.parametrize(("column", "sep"), [("DateTime", ","), ("Date Time", "\t")])  # fWriteDataframeToFile writes "Date Time"
def test_reddyproc_datetime_and_daily_year_doy(write_table: TableWriter, starts: Starts, column: str, sep: str) -> None:
    ends = starts() + pd.Timedelta(minutes=30)
    frame = pd.DataFrame({column: ends.strftime("%Y-%m-%d %H:%M:%S"), "NEE_fqc": 0, "GPP_f": gpp_ramp(len(ends))})
    table = read_flux(write_table("ZZ-Dtm_output.csv", frame, sep=sep))
    np.testing.assert_allclose(table["GPP"], expected_daily())
    daily = pd.DataFrame({"Year": [2020, 2020], "DoY": [153, 154], "GPP_f": [3.0, 4.0]})
    table = read_flux(write_table("ZZ-Dtm_daily.csv", daily), units={"GPP_f": "gC m-2 d-1"}, qc_missing="pass")
    assert list(table["date"]) == DAYS


@pytest.mark.parametrize("value", ["2020-06-01", "20200601", "20200601.0", "2020-06-01 00:00:00"])
def test_daily_stamp_layouts(write_table: TableWriter, value: str) -> None:
    second = {"2020-06-01": "2020-06-02", "20200601": "20200602", "20200601.0": "20200602.0",
              "2020-06-01 00:00:00": "2020-06-02 00:00:00"}[value]
    frame = pd.DataFrame({"TIMESTAMP": [value, second], "GPP_NT_VUT_REF": [1.0, 2.0], "NEE_VUT_REF_QC": [1.0, 1.0]})
    table = read_flux(write_table("ZZ-Day_x_DD.csv", frame))
    assert list(table["date"]) == DAYS and table.attrs["resolution_in"] == "DD"


def test_stamp_without_reference_needs_time_reference(write_table: TableWriter, starts: Starts) -> None:
    times = starts()
    frame = pd.DataFrame({"TIMESTAMP": times.strftime("%Y%m%d%H%M"), "NEE_VUT_REF_QC": 0, "GPP_NT_VUT_REF": gpp_ramp(len(times))})
    path = write_table("ZZ-Amb_x.csv", frame)
    with pytest.raises(FluxDataError, match=r"ZZ-Amb_x\.csv: TIMESTAMP holds times of day \(202006010000\) but does not say whether "
                                            r"they mark the start, middle or end of each 30-min record; pass time_reference="):
        read_flux(path)
    np.testing.assert_allclose(read_flux(path, time_reference="start")["GPP"], expected_daily())
    with pytest.raises(FluxDataError, match="time_reference='start' but the column TIMESTAMP_END marks the record end"):
        read_flux(write_table("ZZ-Amb_y.csv", frame.rename(columns={"TIMESTAMP": "TIMESTAMP_END"})), time_reference="start")


@pytest.mark.parametrize(
    ("stamps", "message"),
    [
        (["202006010000", "202006010030", "202006010115"], r"TIMESTAMP_END is not on a regular step: 45 min between line 3 and line 4"),
        (["202006010000", "202006010045", "202006010130"], r"the step between TIMESTAMP_END stamps is 45 min; only half-hourly"),
        (["202006", "202007", "202008"], r"TIMESTAMP_END values are YYYYMM \(monthly, MM\); only half-hourly"),
        (["2020-06-01T00:30+02:00", "2020-06-01T01:00+02:00", "2020-06-01T01:30+02:00"], r"values carry a time zone"),
        (["202006010030", "20200601", "202006010130"], r"TIMESTAMP_END mixes timestamp layouts \(YYYYMMDD, YYYYMMDDHHMM\)"),
        (["2020-06-01 00:30", "yesterday", "2020-06-01 01:30"], r"TIMESTAMP_END yesterday on line 3 is not a valid ISO 8601"),
    ],
)
def test_broken_stamps(write_table: TableWriter, stamps: list[str], message: str) -> None:
    frame = pd.DataFrame({"TIMESTAMP_END": stamps, "NEE_VUT_REF_QC": 0, "GPP_NT_VUT_REF": 1.0})
    with pytest.raises(FluxDataError, match=message):
        read_flux(write_table("ZZ-Bad_x.csv", frame))


def test_single_record_needs_a_resolution(write_table: TableWriter) -> None:
    frame = pd.DataFrame({"TIMESTAMP_END": ["202006010030"], "NEE_VUT_REF_QC": [0], "GPP_NT_VUT_REF": [1.0]})
    path = write_table("ZZ-One_x.csv", frame)
    with pytest.raises(FluxDataError, match="a single record cannot tell its length; pass resolution='HH', 'HR' or 'DD'"):
        read_flux(path)
    assert list(read_flux(path, resolution="HH", min_coverage=1 / 48)["date"]) == [pd.Timestamp("2020-06-01")]


def test_weekly_start_end_is_refused(write_table: TableWriter) -> None:
    frame = pd.DataFrame({"TIMESTAMP_START": ["20200601", "20200608"], "TIMESTAMP_END": ["20200608", "20200615"],
                          "GPP_NT_VUT_REF": [1.0, 2.0]})
    with pytest.raises(FluxDataError, match=r"TIMESTAMP_END - TIMESTAMP_START is weekly \(WW\); only half-hourly"):
        read_flux(write_table("ZZ-Wek_x.csv", frame))


def test_name_and_resolution_option_are_checked_against_the_records(write_table: TableWriter, starts: Starts,
                                                                     oneflux_frame: Callable[..., pd.DataFrame]) -> None:
    path = write_table("FLX_ZZ-Res_FLUXNET2015_FULLSET_HR_2020-2020_x.csv", oneflux_frame(starts()))
    with pytest.raises(FluxDataError, match="the name says HR but the records are HH"):
        read_flux(path)
    path = write_table("ZZ-Res_x.csv", oneflux_frame(starts()))
    with pytest.raises(FluxDataError, match="resolution='DD' but its records are HH"):
        read_flux(path, resolution="DD")


def test_typed_timestamps_in_parquet(tmp_path: Path, starts: Starts) -> None:
    times = starts()
    frame = pd.DataFrame({"TIMESTAMP_START": times, "TIMESTAMP_END": times + pd.Timedelta(minutes=30),
                          "NEE_VUT_REF_QC": 0, "GPP_NT_VUT_REF": gpp_ramp(len(times))})
    frame.to_parquet(tmp_path / "ZZ-Typ_x.parquet")
    np.testing.assert_allclose(read_flux(tmp_path / "ZZ-Typ_x.parquet")["GPP"], expected_daily())
    daily = pd.DataFrame({"date": pd.to_datetime(["2020-06-01", "2020-06-02"]).date, "GPP_NT_VUT_REF": [1.0, 2.0],
                          "NEE_VUT_REF_QC": [1.0, 1.0]})
    daily.to_parquet(tmp_path / "ZZ-Typ_daily.parquet")
    assert list(read_flux(tmp_path / "ZZ-Typ_daily.parquet")["date"]) == DAYS
    zoned = frame.assign(TIMESTAMP_START=times.tz_localize("UTC"), TIMESTAMP_END=(times + pd.Timedelta(minutes=30)).tz_localize("UTC"))
    zoned.to_parquet(tmp_path / "ZZ-Typ_utc.parquet")
    with pytest.raises(FluxDataError, match="TIMESTAMP_START is a timestamp with time zone UTC; flux days are in the tower's local"):
        read_flux(tmp_path / "ZZ-Typ_utc.parquet")
