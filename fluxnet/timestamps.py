"""Timestamp conventions of flux files: which columns give the time, and what instant they mark.

Recognised, in this order of preference (column names exact unless noted):

- ``TIMESTAMP_START`` and ``TIMESTAMP_END`` (FLUXNET/ONEFlux, AmeriFlux,
  ICOS): each record's start and end; their difference is the record length.
- ``TIMESTAMP_START``, ``TIMESTAMP_END`` or ``TIMESTAMP_MIDDLE`` alone
  (European Fluxes Database exports have only ``TIMESTAMP_END``; tools built
  on REddyProc write ``TIMESTAMP_MIDDLE``): the record length is the regular
  step between consecutive stamps, and the start is derived from it.
- ``Year``, ``DoY`` and ``Hour`` (REddyProc; case-insensitive): decimal hour
  of the day of year; without an hour column, days.
- one stamp column: ``TIMESTAMP``, ``DateTime`` / ``Date Time`` (REddyProc),
  ``datetime``, ``date``: days when the values carry no time of day
  (YYYYMMDD integers, ISO dates ``YYYY-MM-DD``, or midnights one day apart),
  else records whose stamps mark the start, middle or end as the family
  documents (REddyProc: the end) or as the caller says (``time_reference=``).

Values may be integers ``YYYYMMDD``/``YYYYMMDDHHMM`` (as text or numbers),
ISO 8601 dates or date-times, or typed dates/timestamps (Parquet, Feather).
Records belong to the day of their start, in the tower's local standard time
(stamps with a time zone are refused). Only half-hourly (HH), hourly (HR) and
daily (DD) data are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fluxnet.errors import FluxDataError, Location

TimeReference = Literal["start", "middle", "end"]
TIME_REFERENCES: tuple[str, ...] = ("start", "middle", "end")
Resolution = Literal["HH", "HR", "DD"]

STEP_MINUTES: dict[str, int] = {"HH": 30, "HR": 60, "DD": 1440}
"""Record length of each supported resolution."""

RESOLUTIONS: tuple[str, ...] = tuple(STEP_MINUTES)
"""Resolutions read: half-hourly, hourly, daily."""

_DIGIT_LAYOUTS = {4: "YYYY (yearly, YY)", 6: "YYYYMM (monthly, MM)", 8: "YYYYMMDD", 10: "YYYYMMDDHH", 12: "YYYYMMDDHHMM",
                  14: "YYYYMMDDHHMMSS"}
_DIGITS = r"^\d+(\.0*)?$"
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


@dataclass(frozen=True)
class TimeSpec:
    """Where a flux table keeps the time of its records.

    Attributes:
        kind: ``"start_end"`` (two columns), ``"stamp"`` (one column),
            ``"ydh"`` (year, day of year, decimal hour) or ``"yd"`` (year, day of year).
        columns: The file's time columns, in that order.
        reference: What a single stamp marks (``start``/``middle``/``end``), or
            None when not stated (days only; sub-daily stamps then need ``time_reference=``).
        stated_by: Where ``reference`` comes from (``"column name"``, the family, ``"time_reference="``).
    """

    kind: Literal["start_end", "stamp", "ydh", "yd"]
    columns: tuple[str, ...]
    reference: TimeReference | None
    stated_by: str

    def describe(self) -> str:
        """Short description for ``attrs["timestamps"]``."""
        names = "/".join(self.columns)
        if self.kind == "start_end" or self.reference is None:
            return names
        return f"{names} (marks the record {self.reference}; {self.stated_by})"


_SINGLE_STAMPS: tuple[tuple[str, TimeReference | None], ...] = (
    ("TIMESTAMP_START", "start"),
    ("TIMESTAMP_END", "end"),
    ("TIMESTAMP_MIDDLE", "middle"),
    ("TIMESTAMP_MID", "middle"),
    ("TIMESTAMP", None),
    ("DateTime", None),
    ("Date Time", None),
    ("datetime", None),
    ("date", None),
    ("Date", None),
    ("DATE", None),
)
"""Single stamp columns, preferred first, and the instant their name says they mark."""

_YEAR = ("year",)
_DOY = ("doy", "day_of_year", "jday")
_HOUR = ("hour", "hr", "hour_dec")


def _find(names: Sequence[str], aliases: tuple[str, ...]) -> str | None:
    lower = {name.lower(): name for name in names}
    return next((lower[a] for a in aliases if a in lower), None)


def detect_time_spec(
    names: Sequence[str],
    *,
    family_reference: TimeReference | None,
    family_name: str,
    time_reference: TimeReference | None,
    label: str,
) -> TimeSpec:
    """Find a flux table's time columns.

    Args:
        names: The table's column names.
        family_reference: What the family documents single stamps to mark, if anything.
        family_name: The family, for :attr:`TimeSpec.stated_by`.
        time_reference: The caller's ``time_reference=``; wins over the family's convention.
        label: The file, for messages.

    Returns:
        The :class:`TimeSpec`.

    Raises:
        FluxDataError: No time column, or ``time_reference`` contradicting a column name.
    """
    if "TIMESTAMP_START" in names and "TIMESTAMP_END" in names:
        return TimeSpec("start_end", ("TIMESTAMP_START", "TIMESTAMP_END"), None, "column names")
    year, doy, hour = _find(names, _YEAR), _find(names, _DOY), _find(names, _HOUR)
    stamps = [(name, reference) for name, reference in _SINGLE_STAMPS if name in names]
    named = [(name, reference) for name, reference in stamps if reference is not None]
    if named:
        name, reference = named[0]
        if time_reference is not None and time_reference != reference:
            raise FluxDataError(
                f"flux file {label}: time_reference={time_reference!r} but the column {name} marks the record {reference}"
            )
        return TimeSpec("stamp", (name,), reference, "column name")
    chosen: TimeReference | None = time_reference if time_reference is not None else family_reference
    stated_by = "time_reference=" if time_reference is not None else f"{family_name} convention"
    if year is not None and doy is not None:
        if hour is not None:
            return TimeSpec("ydh", (year, doy, hour), chosen, stated_by)
        return TimeSpec("yd", (year, doy), None, "column names")
    if stamps:
        return TimeSpec("stamp", (stamps[0][0],), chosen, stated_by)
    raise FluxDataError(
        f"flux file {label} has no timestamp column. Expected TIMESTAMP (daily, YYYYMMDD or ISO date), "
        f"TIMESTAMP_START and/or TIMESTAMP_END (half-hourly/hourly, YYYYMMDDHHMM), TIMESTAMP_MIDDLE, "
        f"Year/DoY/Hour or DateTime; found columns: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}"
    )


@dataclass(frozen=True)
class Times:
    """The time of each record of a table, parsed.

    Attributes:
        start: Start of each record (sub-daily) or the day (daily), datetime64[ns].
        resolution: ``"HH"``, ``"HR"`` or ``"DD"``.
        raw: The primary time column as text, for messages.
        column: Name of the primary time column.
    """

    start: np.ndarray
    resolution: Resolution
    raw: pa.ChunkedArray
    column: str


def _fail_at(where: Location, column: str, raw: pa.ChunkedArray, bad: np.ndarray, what: str) -> FluxDataError:
    row = int(np.flatnonzero(bad)[0])
    return where.error(f"{column} {raw[row].as_py()} on {where.at(row)} is not a valid {what}")


def _digits_to_datetimes(numbers: np.ndarray, raw: pa.ChunkedArray, column: str, where: Location) -> tuple[np.ndarray, bool]:
    """``YYYYMMDD[HH[MM[SS]]]`` integers -> datetime64[ns]; also whether the layout carries a time of day."""
    if (numbers < 1).any():
        raise _fail_at(where, column, raw, numbers < 1, "YYYYMMDD or YYYYMMDDHHMM timestamp")
    widths = np.floor(np.log10(numbers)).astype(np.int64) + 1
    lengths = np.unique(widths)
    if len(lengths) > 1:
        layouts = ", ".join(_DIGIT_LAYOUTS.get(int(n), f"{n} digits") for n in lengths)
        raise where.error(f"{column} mixes timestamp layouts ({layouts}); use one layout in the whole column")
    width = int(lengths[0])
    if width in (4, 6):
        raise where.error(
            f"{column} values are {_DIGIT_LAYOUTS[width]}; only half-hourly (HH), hourly (HR) and daily (DD) data "
            f"are read: read the HH, HR or DD file of the release"
        )
    if width not in (8, 10, 12, 14):
        raise where.error(f"{column} {raw[0].as_py()} is not a YYYYMMDD or YYYYMMDDHHMM timestamp")
    numbers = numbers * 10 ** (14 - width)
    dates, clock = np.divmod(numbers, 1_000_000)
    hours, minute_second = np.divmod(clock, 10_000)
    minutes, seconds = np.divmod(minute_second, 100)
    years, month_day = np.divmod(dates, 10_000)
    months, days = np.divmod(month_day, 100)
    parsed = _calendar_days(years, months, days)
    bad = np.isnat(parsed) | (hours > 24) | (minutes > 59) | (seconds > 59) | (years < 1900)
    if bad.any():
        raise _fail_at(where, column, raw, bad, f"{_DIGIT_LAYOUTS[width]} timestamp")
    offset = (hours * 3600 + minutes * 60 + seconds).astype("timedelta64[s]")
    result: np.ndarray = (parsed + offset).astype("datetime64[ns]")
    return result, width > 8


def _calendar_days(years: np.ndarray, months: np.ndarray, days: np.ndarray) -> np.ndarray:
    """datetime64[D] of year/month/day integers; NaT where the date does not exist (30 February)."""
    valid = (months >= 1) & (months <= 12) & (days >= 1) & (days <= 31) & (years >= 1) & (years <= 9999)
    month_start = (np.where(valid, years, 1970) - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (
        np.where(valid, months, 1) - 1
    ).astype("timedelta64[M]")
    parsed = month_start.astype("datetime64[D]") + (np.where(valid, days, 1) - 1).astype("timedelta64[D]")
    valid &= parsed.astype("datetime64[M]") == month_start  # day 31 of a 30-day month spills over
    result: np.ndarray = np.where(valid, parsed, np.datetime64("NaT"))
    return result


def _iso_to_datetimes(text: pa.ChunkedArray, column: str, where: Location) -> tuple[np.ndarray, bool]:
    """ISO 8601 dates or date-times -> datetime64[ns]; also whether they carry a time of day."""
    parsed = pd.to_datetime(pd.Series(text.to_numpy(zero_copy_only=False)), format="ISO8601", errors="coerce")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        raise where.error(
            f"{column} values carry a time zone ({text[0].as_py()}); flux days are in the tower's local standard "
            f"time: write the stamps without a zone, in local standard time"
        )
    values = parsed.to_numpy(dtype="datetime64[ns]")
    bad = np.isnat(values)
    if bad.any():
        raise _fail_at(where, column, text, bad, "ISO 8601 date or date-time")
    has_time = not pc.all(pc.match_substring_regex(text, _ISO_DATE)).as_py()
    return values, has_time


def column_to_datetimes(column: pa.ChunkedArray, name: str, where: Location) -> tuple[np.ndarray, pa.ChunkedArray, bool]:
    """Parse one time column.

    Args:
        column: The column as read (text, integers, floats, dates or timestamps).
        name: Its name, for messages.
        where: The file and its first record's line, for messages.

    Returns:
        ``(datetime64[ns] values, the values as text, whether they carry a time of day)``.

    Raises:
        FluxDataError: A missing or invalid value (naming its line), mixed
            layouts, a time zone, or yearly/monthly stamps.
    """
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise where.error(f"{name} is missing on {where.at(row)}")
    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            raise where.error(
                f"{name} is a timestamp with time zone {kind.tz}; flux days are in the tower's local standard time: "
                f"store local standard time without a zone"
            )
        values = column.cast(pa.timestamp("ns")).to_numpy().astype("datetime64[ns]")
        return values, column.cast(pa.string()), not pa.types.is_date(kind)
    if pa.types.is_integer(kind) or (pa.types.is_floating(kind) and pc.all(pc.equal(column, pc.floor(column))).as_py()):
        values, has_time = _digits_to_datetimes(column.cast(pa.int64()).to_numpy(), column, name, where)
        return values, column, has_time
    text = pc.utf8_trim_whitespace(column.cast(pa.string()))
    if pc.all(pc.match_substring_regex(text, _DIGITS)).as_py():
        numbers = pc.cast(pc.replace_substring_regex(text, pattern=r"\.0*$", replacement=""), pa.int64()).to_numpy()
        values, has_time = _digits_to_datetimes(numbers, text, name, where)
    else:
        values, has_time = _iso_to_datetimes(text, name, where)
    return values, text, has_time


def read_type(sample: pa.ChunkedArray) -> pa.DataType:
    """The type to read a text time column as, from its first values: integers when they are digits, else text."""
    if pa.types.is_string(sample.type) and len(sample) and not sample.null_count:
        text = pc.utf8_trim_whitespace(sample)
        if pc.all(pc.match_substring_regex(text, r"^\d+$")).as_py():
            return pa.int64()
    return pa.string()


def check_order(times: np.ndarray, raw: pa.ChunkedArray, column: str, where: Location) -> None:
    """Refuse duplicated or decreasing timestamps, naming the first offending line.

    Args:
        times: Parsed times (datetime64).
        raw: The same as text.
        column: The time column.
        where: The file and its first record's line.

    Raises:
        FluxDataError: A repeated or earlier timestamp.
    """
    steps = np.diff(times.astype("datetime64[ns]").astype(np.int64))
    if (steps > 0).all():
        return
    row = int(np.flatnonzero(steps <= 0)[0]) + 1
    if steps[row - 1] == 0:
        raise where.error(
            f"duplicated timestamp {column}={raw[row].as_py()} on {where.at(row)} (same as {where.at(row - 1)}); "
            f"each record must appear once"
        )
    raise where.error(
        f"timestamps are not sorted: {column}={raw[row].as_py()} on {where.at(row)} comes after "
        f"{raw[row - 1].as_py()}; sort the file by time"
    )


def _resolution_of_length(minutes: int, what: str, where: Location) -> Resolution:
    for resolution, step in STEP_MINUTES.items():
        if minutes == step:
            return resolution  # type: ignore[return-value]
    name = "weekly (WW)" if minutes == 7 * 1440 else f"{minutes} min"
    raise where.error(f"{what} is {name}; only half-hourly (30 min, HH), hourly (60 min, HR) and daily (DD) records are read")


def _step_minutes(stamps: np.ndarray, column: str, hint: str | None, where: Location) -> int:
    """The regular step of sorted stamps: the smallest difference, every difference a multiple of it."""
    if len(stamps) < 2:
        if hint in STEP_MINUTES:
            return STEP_MINUTES[hint]
        raise where.error("a single record cannot tell its length; pass resolution='HH', 'HR' or 'DD'")
    diffs = np.diff(stamps).astype("timedelta64[s]").astype(np.int64)
    step = int(diffs.min())
    off_grid = diffs % step != 0
    if step % 60 or off_grid.any():
        row = int(np.flatnonzero(off_grid)[0]) + 1 if off_grid.any() else 1
        raise where.error(
            f"{column} is not on a regular step: {diffs[row - 1] / 60:g} min between {where.at(row - 1)} and "
            f"{where.at(row)}, but {step / 60:g} min elsewhere"
        )
    return step // 60


def parse_times(table: pa.Table, spec: TimeSpec, where: Location, *, resolution_hint: str | None) -> Times:
    """Parse the time columns of a table into record starts (or days).

    Args:
        table: The table read with (at least) ``spec.columns``.
        spec: From :func:`detect_time_spec`.
        where: The file and its first record's line, for messages.
        resolution_hint: ``HH``/``HR``/``DD`` from the file name or the caller,
            used only when a single record cannot tell its length.

    Returns:
        The :class:`Times`.

    Raises:
        FluxDataError: Invalid, unsorted or duplicated stamps, record lengths
            other than 30 min, 60 min or a day, a sub-daily stamp whose
            reference (start/middle/end) is unknown, or a weekly/monthly/yearly file.
    """
    if spec.kind == "start_end":
        start, raw, _ = column_to_datetimes(table.column(spec.columns[0]), spec.columns[0], where)
        end, _, _ = column_to_datetimes(table.column(spec.columns[1]), spec.columns[1], where)
        check_order(start, raw, spec.columns[0], where)
        lengths = np.unique((end - start).astype("timedelta64[m]").astype(np.int64))
        if len(lengths) != 1:
            raise where.error(
                f"TIMESTAMP_END - TIMESTAMP_START must be 30 min (HH) or 60 min (HR) on every {where.row_word}; "
                f"found {sorted(lengths.tolist())[:5]} min"
            )
        resolution = _resolution_of_length(int(lengths[0]), "TIMESTAMP_END - TIMESTAMP_START", where)
        return Times(start, resolution, raw, spec.columns[0])
    if spec.kind in ("ydh", "yd"):
        stamps, raw = _year_day_hour(table, spec, where)
        has_time = spec.kind == "ydh"
        column = "/".join(spec.columns)
    else:
        column = spec.columns[0]
        stamps, raw, has_time = column_to_datetimes(table.column(column), column, where)
    check_order(stamps, raw, column, where)
    if not has_time or (stamps.astype("datetime64[D]") == stamps).all():  # dates, or midnights only: days
        return Times(stamps.astype("datetime64[D]").astype("datetime64[ns]"), "DD", raw, column)
    step = _step_minutes(stamps, column, resolution_hint, where)
    resolution = _resolution_of_length(step, f"the step between {column} stamps", where)
    if spec.reference is None:
        raise where.error(
            f"{column} holds times of day ({raw[0].as_py()}) but does not say whether they mark the start, middle or end "
            f"of each {step}-min record; pass time_reference='start', 'middle' or 'end'"
        )
    shift = {"start": 0, "middle": step // 2, "end": step}[spec.reference]
    start = stamps - np.timedelta64(shift, "m")
    return Times(start.astype("datetime64[ns]"), resolution, raw, column)


def _year_day_hour(table: pa.Table, spec: TimeSpec, where: Location) -> tuple[np.ndarray, pa.ChunkedArray]:
    """Year, day of year and decimal hour (REddyProc ``Year/DoY/Hour``) -> datetime64[ns] stamps."""
    parts = []
    for name in spec.columns:
        column = table.column(name)
        if column.null_count:
            row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise where.error(f"{name} is missing on {where.at(row)}")
        try:
            parts.append(column.cast(pa.float64()).to_numpy())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise where.error(f"{name} must hold numbers (year, day of year, decimal hour)") from None
    year, doy = parts[0], parts[1]
    hour = parts[2] if len(parts) == 3 else np.zeros_like(year)
    minutes = np.round(hour * 60)
    text = pa.chunked_array([pc.binary_join_element_wise(*[pa.array(p).cast(pa.string()) for p in parts], "/")])
    bad = (year != np.round(year)) | (year < 1900) | (doy != np.round(doy)) | (doy < 1) | (doy > 366) | (hour < 0) | (hour > 24)
    bad |= np.abs(minutes - hour * 60) > 1e-6
    stamps = np.zeros(len(year), dtype="datetime64[ns]")
    if not bad.any():
        jan1 = pd.to_datetime(pd.DataFrame({"year": year.astype(int), "month": 1, "day": 1})).to_numpy()
        stamps = jan1 + (doy.astype(np.int64) - 1).astype("timedelta64[D]") + minutes.astype(np.int64).astype("timedelta64[m]")
        next_jan1 = pd.to_datetime(pd.DataFrame({"year": year.astype(int) + 1, "month": 1, "day": 1})).to_numpy()
        bad = stamps > next_jan1  # the record ending at midnight on 1 January still belongs to the year
    if bad.any():
        raise _fail_at(where, "/".join(spec.columns), text, bad, "year/day-of-year/hour")
    return stamps.astype("datetime64[ns]"), text
