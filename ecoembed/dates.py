"""Absolute time axis shared by every room.

Time enters the models as *days since* :data:`EPOCH` (an integer, unambiguous
across years); day-of-year is derived from it where a seasonal feature is
wanted, never used alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EPOCH = np.datetime64("1970-01-01", "D")
"""Epoch of the absolute date encoding (Unix epoch, UTC days)."""


def to_days(times: object) -> np.ndarray:
    """Convert datetimes (array-like of datetime64 / pandas timestamps) to int64 days since EPOCH.

    Sub-day parts are floored (an acquisition at 10:30 UTC belongs to its UTC day).
    """
    t = pd.to_datetime(np.asarray(times).ravel()).values.astype("datetime64[D]")
    return (t - EPOCH).astype(np.int64).reshape(np.shape(times))


def from_days(days: object) -> np.ndarray:
    """Inverse of :func:`to_days`: int days since EPOCH -> datetime64[ns] (midnight UTC)."""
    d = np.asarray(days, dtype=np.int64)
    return (EPOCH + d.astype("timedelta64[D]")).astype("datetime64[ns]")


def day_of_year(days: object) -> np.ndarray:
    """Day of year (1..366) of int days since EPOCH."""
    dt = pd.DatetimeIndex(from_days(np.asarray(days).ravel()))
    return np.asarray(dt.dayofyear, dtype=np.int64).reshape(np.shape(days))
