"""Potential (top-of-atmosphere) shortwave radiation: a light driver for towers without meteorology.

Daily extraterrestrial radiation from latitude and day of year (FAO-56,
Allen et al. 1998, eq. 21-25), as the daily mean flux density in W m-2, so
it is on the same scale as a flux file's ``SW_IN``:

    Ra = 24 * 60 / pi * Gsc * dr * (ws sin(phi) sin(delta) + cos(phi) cos(delta) sin(ws))

with Gsc = 0.0820 MJ m-2 min-1, dr the inverse relative Earth-Sun distance,
delta the solar declination and ws the sunset hour angle (polar day and night
handled: ws in [0, pi]). Ra in MJ m-2 d-1 x 1e6 / 86400 gives W m-2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SOLAR_CONSTANT_MJ_MIN = 0.0820
"""Gsc, MJ m-2 min-1 (1367 W m-2)."""
MJ_PER_DAY_TO_W = 1e6 / 86400.0
"""MJ m-2 d-1 -> W m-2 (daily mean)."""


def potential_radiation_mj(lat_deg: float | np.ndarray, doy: int | np.ndarray) -> np.ndarray:
    """Daily extraterrestrial radiation Ra, MJ m-2 d-1 (FAO-56 eq. 21).

    Args:
        lat_deg: latitude, decimal degrees (north positive), in [-90, 90].
        doy: day of year, 1..366.

    Raises:
        ValueError: latitude outside [-90, 90].
    """
    lat = np.asarray(lat_deg, dtype=float)
    if np.any(np.abs(lat[np.isfinite(lat)]) > 90):
        raise ValueError(f"latitude must be within [-90, 90] degrees, got {lat_deg}")
    j = np.asarray(doy, dtype=float)
    phi = np.deg2rad(lat)
    dr = 1.0 + 0.033 * np.cos(2 * np.pi / 365.0 * j)
    delta = 0.409 * np.sin(2 * np.pi / 365.0 * j - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))
    ra = 24 * 60 / np.pi * SOLAR_CONSTANT_MJ_MIN * dr * (ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws))
    return np.maximum(ra, 0.0)


def potential_radiation(lat_deg: float, dates: pd.DatetimeIndex | pd.Series | np.ndarray) -> np.ndarray:
    """Daily mean potential shortwave radiation ``SW_IN_POT`` (W m-2) at ``lat_deg`` on ``dates``."""
    doy = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates))).day_of_year.to_numpy()
    return potential_radiation_mj(lat_deg, doy) * MJ_PER_DAY_TO_W
