"""Footprint-aware tower windows: FFP climatology weights on a cube's grid, or the Gaussian window with the reason.

``fit-gpp --footprint ffp`` weights each cube's pixels around a tower by the
Kljun et al. (2015) footprint climatology of the site
(:func:`fluxnet.footprint.footprint_weights`) computed from the half-hourly
turbulence records (``halfhourly_path`` in sites.csv, else the ``flux_path``
files when they are half-hourly), with the sensor height and canopy height from
``measurement_height`` and ``canopy_height`` (m) in sites.csv. When any of these
is missing, or the records give no valid half-hour, the Gaussian window is used
and :class:`TowerWindow` says why. Point tables (1 x 1 px) have nothing to weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ecoembed.gpp.join import window_indices
from ecoembed.sources.chips import tower_xy
from ecoembed.sources.grid import crs_string, require_metric_grid
from fluxnet import FluxDataError, split_path_list
from fluxnet.footprint import footprint_weights
from fluxnet.turbulence import read_turbulence

FOOTPRINT_METHODS: tuple[str, ...] = ("window", "ffp")
DEFAULT_FOOTPRINT_PX = 61
"""Edge (pixels) of the grid the footprint climatology is computed on (610 m at 10 m): holds the 80 % source
area of towers up to ~30 m high over forest, ~10 m over grass."""


@dataclass(frozen=True)
class TowerWindow:
    """How a site's cube pixels are weighted.

    Attributes:
        rows, cols: the window's row/column slices in the cube.
        weights: weights of those pixels (sum 1).
        method: ``"ffp"`` or ``"window"`` (Gaussian).
        extent_80_m: largest distance [m] of a pixel in the 80 % source area (FFP only; NaN else).
        n_halfhours: half-hours in the climatology (0 for the window).
        reason: why the Gaussian window is used although ``ffp`` was asked for (empty otherwise).
    """

    rows: slice
    cols: slice
    weights: np.ndarray
    method: str
    extent_80_m: float = float("nan")
    n_halfhours: int = 0
    reason: str = ""

    def describe(self, site_id: str) -> dict[str, object]:
        """One row of ``footprint.csv``."""
        return {"site_id": site_id, "method": self.method, "extent_80_m": self.extent_80_m, "n_halfhours": self.n_halfhours,
                "fallback_reason": self.reason}


def _float(site: pd.Series, column: str) -> float | None:
    try:
        value = float(site.get(column, np.nan))
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def tower_window(ds: xr.Dataset, site: pd.Series, *, method: str = "window", window_px: int = 5,
                 footprint_px: int = DEFAULT_FOOTPRINT_PX, source: str = "cube") -> TowerWindow:
    """The pixel weights of ``site`` on ``ds``'s grid by ``method`` (``ffp`` falls back to the window with a reason)."""
    lat, lon = float(site["lat"]), float(site["lon"])
    rows, cols, w = window_indices(ds, lat, lon, window_px, source=source)
    window = TowerWindow(rows, cols, w, "window")
    if method != "ffp":
        return window

    def fallback(reason: str) -> TowerWindow:
        return TowerWindow(rows, cols, w, "window", reason=reason)

    if ds.sizes["x"] < 2 or ds.sizes["y"] < 2:
        return fallback("a point series (1 x 1 px) has no pixels to weight")
    zm, hc = _float(site, "measurement_height"), _float(site, "canopy_height")
    if zm is None or hc is None:
        return fallback("measurement_height and canopy_height (m) are needed in sites.csv")
    hh = site.get("halfhourly_path") if isinstance(site.get("halfhourly_path"), str) else site.get("flux_path")
    try:
        records = read_turbulence(split_path_list(hh)) if isinstance(hh, str) and hh else None
    except FluxDataError as exc:
        return fallback(str(exc))
    if records is None:
        return fallback("no half-hourly file (halfhourly_path) in sites.csv")
    frows, fcols, _ = window_indices(ds, lat, lon, footprint_px, source=source)
    gx = np.asarray(ds["x"].values[fcols], float)
    gy = np.asarray(ds["y"].values[frows], float)
    if gx.size < 2 or gy.size < 2:
        return fallback("the cube is too small around the tower for a footprint grid")
    tx, ty = tower_xy(lat, lon, crs_string(require_metric_grid(ds, source=source)))
    try:
        result = footprint_weights(gx, gy, tx, ty, records, zm, hc, latitude_deg=lat)
    except ValueError as exc:
        return fallback(f"footprint inputs rejected: {exc}")
    if result.weights is None:
        return fallback(result.fallback_reason or "no valid half-hour for FFP")
    return TowerWindow(frows, fcols, np.asarray(result.weights, float), "ffp", extent_80_m=float(result.extent_80_m),
                       n_halfhours=int(result.n_used))
