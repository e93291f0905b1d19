"""Sentinel-1 GRD/RTC: polarisations, dB conversion, no-data/border masking, temporal speckle filter.

Backscatter in cubes is sigma0/gamma0 in decibels (dB); computations that
average intensities (speckle filtering) are done in linear power. Each
acquisition keeps its orbit direction in the ``orbit`` coordinate
(``"ascending"``/``"descending"``).
"""

from __future__ import annotations

from typing import overload

import numpy as np
import xarray as xr
from scipy.ndimage import uniform_filter

from ecoembed.sensors.spec import BandSpec, SensorSpec

SPEC = SensorSpec(
    key="s1",
    name="sentinel-1-grd",
    aliases=("s1", "sentinel-1", "sentinel1", "sentinel-1-grd", "sentinel-1-rtc", "s1_grd", "s1-grd", "s1_rtc"),
    # normalisation in dB: typical backscatter of vegetated land, what the shipped S1 encoder was trained with
    bands=(BandSpec("VV", 10.0, "backscatter", mean=-11.0, std=3.0, aliases=("SIGMA0_VV", "GAMMA0_VV")),
           BandSpec("VH", 10.0, "backscatter", mean=-17.5, std=3.5, aliases=("SIGMA0_VH", "GAMMA0_VH"))),
    required=(("VV", "VH"),),
    typical_subsets=(("VV",), ("VH",)),
    prefixes=("S1-SIGMA0-", "S1-GAMMA0-", "S1_SIGMA0_", "S1_GAMMA0_", "S1-", "S1_", "SIGMA0-", "GAMMA0-"),
    unit="dB",
)
"""Sentinel-1 C-band SAR backscatter, VV and VH (sigma0 GRD or gamma0 RTC), in dB."""

SENSOR = SPEC.name
S1_POLARISATIONS: tuple[str, ...] = SPEC.band_names
ORBITS: tuple[str, ...] = ("ascending", "descending")
BORDER_NOISE_DB = -35.0
"""Backscatter below this (dB) is GRD border noise / no data, not a measurement."""


@overload
def linear_to_db(power: xr.DataArray) -> xr.DataArray: ...
@overload
def linear_to_db(power: np.ndarray) -> np.ndarray: ...
def linear_to_db(power: np.ndarray | xr.DataArray) -> np.ndarray | xr.DataArray:
    """Linear power -> dB (``10 log10``); values <= 0 or NaN become NaN."""
    if isinstance(power, xr.DataArray):
        out = xr.apply_ufunc(linear_to_db, power, dask="parallelized", output_dtypes=[np.float32])
        out.attrs = {**power.attrs, "units": "dB"}
        return out
    p = np.asarray(power, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(p > 0, 10.0 * np.log10(np.where(p > 0, p, 1.0)), np.nan)
    return out.astype(np.float32)


@overload
def db_to_linear(db: xr.DataArray) -> xr.DataArray: ...
@overload
def db_to_linear(db: np.ndarray) -> np.ndarray: ...
def db_to_linear(db: np.ndarray | xr.DataArray) -> np.ndarray | xr.DataArray:
    """DB -> linear power (``10 ** (dB / 10)``); NaN stays NaN."""
    if isinstance(db, xr.DataArray):
        out = xr.apply_ufunc(db_to_linear, db, dask="parallelized", output_dtypes=[np.float32])
        out.attrs = {**db.attrs, "units": "1 (linear power)"}
        return out
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 10.0).astype(np.float32)


def mask_nodata(cube: xr.Dataset, floor_db: float = BORDER_NOISE_DB, border_px: int = 0) -> xr.Dataset:
    """Mark no-data and GRD border noise invalid (NaN in the bands, ``valid`` False).

    Args:
        cube: S1 cube in dB with ``VV``/``VH``.
        floor_db: values below this (dB) are border noise / no data.
        border_px: also drop this many pixels along each scene edge (0 = none).
    """
    out = cube.copy()
    ok = xr.ones_like(out[S1_POLARISATIONS[0]], dtype=bool)
    for pol in S1_POLARISATIONS:
        if pol in out:
            ok = ok & out[pol].notnull() & (out[pol] > floor_db)
    if border_px > 0:
        ny, nx = out.sizes["y"], out.sizes["x"]
        iy = xr.DataArray(np.arange(ny), dims="y")
        ix = xr.DataArray(np.arange(nx), dims="x")
        inner = (iy >= border_px) & (iy < ny - border_px) & (ix >= border_px) & (ix < nx - border_px)
        ok = ok & inner
    if "valid" in out:
        ok = ok & out["valid"].astype(bool)
    for pol in S1_POLARISATIONS:
        if pol in out:
            out[pol] = out[pol].where(ok)
    out["valid"] = ok.transpose("time", "y", "x")
    return out


def temporal_speckle_filter(cube: xr.Dataset, window: int = 5, per_orbit: bool = True) -> xr.Dataset:
    """Multi-temporal (Quegan & Yu 2001) speckle filter, computed in linear power.

    For each date t and polarisation: ``J_t = <I_t>/N * sum_k I_k/<I_k>`` over
    the ``window`` nearest dates (same orbit direction when ``per_orbit``),
    where ``<.>`` is a 3x3 spatial mean. It keeps the temporal mean and reduces
    speckle by up to the number of dates combined. Invalid observations are
    not used and stay NaN. Returns a new cube in dB with ``attrs['speckle_filter']``.
    """
    out = cube.copy()
    times = np.arange(cube.sizes["time"])
    groups = [times]
    if per_orbit and "orbit" in cube.coords:
        orbit = np.array([str(o) for o in np.asarray(cube["orbit"].values).tolist()])
        groups = [times[orbit == o] for o in np.unique(orbit)]
    valid = cube["valid"].values.astype(bool) if "valid" in cube else np.ones([cube.sizes[d] for d in ("time", "y", "x")], bool)
    for pol in S1_POLARISATIONS:
        if pol not in cube:
            continue
        lin = np.asarray(db_to_linear(cube[pol].transpose("time", "y", "x").values), np.float64)
        ok = valid & np.isfinite(lin)
        lin0 = np.where(ok, lin, 0.0)
        num = uniform_filter(lin0, size=(1, 3, 3), mode="nearest")
        den = uniform_filter(ok.astype(np.float64), size=(1, 3, 3), mode="nearest")
        local = np.where(den > 0, num / np.maximum(den, 1e-12), np.nan)
        ratio = np.where(ok & (local > 0), lin / local, np.nan)
        result = np.full(lin.shape, np.nan)
        for g in groups:
            for j, t in enumerate(g):
                lo = max(0, min(j - window // 2, len(g) - window))
                sel = g[lo:lo + window]
                r = ratio[sel]
                n = np.isfinite(r).sum(0)
                mean_ratio = np.where(n > 0, np.nansum(r, 0) / np.maximum(n, 1), np.nan)
                result[t] = local[t] * mean_ratio
        result = np.where(ok, result, np.nan)
        out[pol] = (("time", "y", "x"), linear_to_db(result), {**cube[pol].attrs, "units": "dB"})
    out.attrs = {**cube.attrs, "speckle_filter": f"Quegan multi-temporal, window {window} dates{', per orbit' if per_orbit else ''}"}
    return out
