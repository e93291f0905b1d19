"""Absolute time axis shared by every room.

Time enters the models as *days since* :data:`EPOCH` (an integer, unambiguous
across years); day-of-year is derived from it where a seasonal feature is
wanted, never used alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecoembed.errors import InputError

EPOCH = np.datetime64("1970-01-01", "D")
"""Epoch of the absolute date encoding (Unix epoch, UTC days)."""
OPTION_DATES = (np.datetime64("1970-01-01", "D"), np.datetime64("2100-12-31", "D"))
"""Range of dates a command-line date option may take (earlier/later is a typo, and overflows nanosecond times)."""


def to_days(times: object) -> np.ndarray:
    """Convert datetimes (array-like of datetime64 / pandas timestamps) to int64 days since EPOCH.

    Sub-day parts are floored (an acquisition at 10:30 UTC belongs to its UTC day).
    """
    arr = np.asarray(times)
    t = pd.to_datetime(arr.ravel()).values.astype("datetime64[D]")
    return (t - EPOCH).astype(np.int64).reshape(arr.shape)


def from_days(days: object) -> np.ndarray:
    """Inverse of :func:`to_days`: int days since EPOCH -> datetime64[ns] (midnight UTC)."""
    d = np.asarray(days, dtype=np.int64)
    return (EPOCH + d.astype("timedelta64[D]")).astype("datetime64[ns]")


def day_of_year(days: object) -> np.ndarray:
    """Day of year (1..366) of int days since EPOCH."""
    arr = np.asarray(days)
    dt = pd.DatetimeIndex(from_days(arr.ravel()))
    return np.asarray(dt.dayofyear, dtype=np.int64).reshape(arr.shape)


def parse_day(value: object, option: str) -> int:
    """Days since :data:`EPOCH` of a ``YYYY-MM-DD`` string (a command-line date option).

    Raises:
        InputError: ``value`` is not a date; the message names ``--option``.
    """
    try:
        day = np.datetime64(str(value)[:10], "D")
    except (ValueError, TypeError) as exc:
        raise InputError(f"--{option} {value!r} is not a date (use YYYY-MM-DD)") from exc
    if not (OPTION_DATES[0] <= day <= OPTION_DATES[1]):
        raise InputError(f"--{option} {value}: dates must lie within {OPTION_DATES[0]}..{OPTION_DATES[1]} (the satellite "
                         "era; nanosecond timestamps overflow beyond 2262)")
    return int((day - EPOCH).astype(np.int64))


def daily_range(acquisitions: object, start: str | None = None, end: str | None = None) -> np.ndarray:
    """Every day (int64 days since :data:`EPOCH`) from ``start`` to ``end`` inclusive.

    ``start``/``end`` default to the first/last of ``acquisitions`` (datetimes).

    Raises:
        InputError: an unparsable date, or ``end`` before ``start``.
    """
    obs = to_days(acquisitions)
    first = parse_day(start, "start") if start else int(obs.min())
    last = parse_day(end, "end") if end else int(obs.max())
    if last < first:
        raise InputError(f"--end {end} is before --start {start}")
    return np.arange(first, last + 1, dtype=np.int64)


def days_to_nearest(observed: object, query: object) -> np.ndarray:
    """int64 days from each ``query`` day to the nearest ``observed`` day (both int days, ``observed`` sorted, non-empty)."""
    d = np.asarray(observed, np.int64)
    q = np.asarray(query, np.int64)
    if d.size == 1:
        return np.abs(q - d[0])
    i = np.clip(np.searchsorted(d, q), 1, d.size - 1)
    return np.minimum(np.abs(q - d[i - 1]), np.abs(q - d[i]))
