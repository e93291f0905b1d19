"""Sentinel-2 L2A: band order, reflectance scaling, SCL validity, normalisation, 20 m -> 10 m resampling.

Reflectance is dimensionless surface reflectance (0..1). Digital numbers (DN)
of L2A products are converted with :func:`dn_to_reflectance`: ``(DN + offset) *
1e-4`` where the offset is ``-1000`` DN for products of processing baseline
04.00 and later (acquisitions from 2022-01-25) and 0 before. DN 0 is no data.
"""

from __future__ import annotations

from typing import Literal, overload

import numpy as np
import xarray as xr

SENSOR = "sentinel-2-l2a"
S2_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
"""Band order of every S2 array in the package (10 m: B02-B04, B08; 20 m: B05-B07, B8A, B11, B12)."""
S2_NATIVE_RESOLUTION_M: dict[str, float] = {
    "B02": 10.0, "B03": 10.0, "B04": 10.0, "B08": 10.0,
    "B05": 20.0, "B06": 20.0, "B07": 20.0, "B8A": 20.0, "B11": 20.0, "B12": 20.0,
}
# Normalisation statistics (reflectance, band order S2_BANDS): typical L2A values of vegetated land.
# They are the numbers the shipped encoders were trained with (ecoembed/data/s2_encoder.json
# "normalisation"); changing them silently breaks the pretrained weights.
S2_NORM_MEAN: np.ndarray = np.array([0.07, 0.10, 0.10, 0.14, 0.22, 0.26, 0.29, 0.30, 0.27, 0.19], dtype=np.float32)
S2_NORM_STD: np.ndarray = np.array([0.06, 0.06, 0.07, 0.06, 0.07, 0.09, 0.10, 0.10, 0.08, 0.08], dtype=np.float32)

SCL_CLASSES: dict[int, str] = {
    0: "no_data", 1: "saturated_or_defective", 2: "dark_area_pixels", 3: "cloud_shadows", 4: "vegetation",
    5: "not_vegetated", 6: "water", 7: "unclassified", 8: "cloud_medium_probability",
    9: "cloud_high_probability", 10: "thin_cirrus", 11: "snow",
}
SCL_INVALID: tuple[int, ...] = (0, 1, 3, 8, 9, 10, 11)
"""SCL classes that make an observation unusable: no data, saturated, cloud shadow, cloud medium/high, cirrus, snow."""

BASELINE_0400_START = np.datetime64("2022-01-25", "D")
"""First acquisition day processed with baseline 04.00 (radiometric offset -1000 DN)."""
BOA_QUANTIFICATION = 1.0e-4
BOA_OFFSET_DN = -1000.0


@overload
def scl_valid(scl: xr.DataArray) -> xr.DataArray: ...
@overload
def scl_valid(scl: np.ndarray) -> np.ndarray: ...
def scl_valid(scl: np.ndarray | xr.DataArray) -> np.ndarray | xr.DataArray:
    """True where the Scene Classification class is usable (not in :data:`SCL_INVALID`).

    NaN (float SCL read from files) counts as no data (invalid).
    """
    if isinstance(scl, xr.DataArray):
        out = xr.apply_ufunc(scl_valid, scl, dask="parallelized", output_dtypes=[bool])
        out.attrs = {"long_name": "valid observation (SCL not in no-data/saturated/shadow/cloud/cirrus/snow)"}
        return out
    arr = np.asarray(scl)
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        arr = np.where(finite, arr, 0).astype(np.int64)
    return ~np.isin(arr, SCL_INVALID)


def boa_offset_dn(time: np.ndarray | xr.DataArray) -> np.ndarray:
    """Radiometric offset (DN) per acquisition time: -1000 from 2022-01-25 (baseline 04.00), else 0."""
    t = np.asarray(time).astype("datetime64[D]")
    return np.where(t >= BASELINE_0400_START, BOA_OFFSET_DN, 0.0)


@overload
def dn_to_reflectance(dn: xr.DataArray, time: xr.DataArray | np.ndarray | None = None) -> xr.DataArray: ...
@overload
def dn_to_reflectance(dn: np.ndarray, time: xr.DataArray | np.ndarray | None = None) -> np.ndarray: ...
def dn_to_reflectance(dn: xr.DataArray | np.ndarray, time: xr.DataArray | np.ndarray | None = None) -> xr.DataArray | np.ndarray:
    """L2A digital numbers -> surface reflectance (dimensionless, float32; NaN where DN is 0 or NaN).

    Args:
        dn: DN array. A DataArray with a ``time`` dim takes its offsets from it; a
            numpy array needs ``time`` with one entry per first-axis element (or a scalar time).
        time: acquisition time(s); default the DataArray's ``time`` coordinate.
    """
    if isinstance(dn, xr.DataArray):
        t = dn["time"] if time is None else xr.DataArray(np.asarray(time), dims="time") if np.ndim(time) else time
        offset: xr.DataArray | float = (xr.DataArray(boa_offset_dn(np.atleast_1d(np.asarray(t))), dims="time") if np.ndim(t)
                                        else float(boa_offset_dn(np.asarray(t))))
        data = dn.astype(np.float32)
        out = ((data + offset) * BOA_QUANTIFICATION).where((data != 0) & data.notnull()).astype(np.float32)
        out.attrs = {**{k: v for k, v in dn.attrs.items() if k not in ("units", "scale_factor", "add_offset")},
                     "units": "1", "long_name": f"surface reflectance {dn.name or ''}".strip()}
        return out
    if time is None:
        raise ValueError("dn_to_reflectance: a numpy DN array needs the acquisition time(s)")
    values = np.asarray(dn, dtype=np.float32)
    offsets = boa_offset_dn(np.asarray(time)).astype(np.float32)
    if offsets.ndim:
        offsets = offsets.reshape((-1,) + (1,) * (values.ndim - 1))
    refl = (values + offsets) * np.float32(BOA_QUANTIFICATION)
    return np.where((values != 0) & np.isfinite(values), refl, np.nan).astype(np.float32)


def resample_to_10m(band: xr.DataArray, like: xr.DataArray, method: Literal["nearest", "linear"] = "nearest") -> xr.DataArray:
    """Resample a (20 m) band onto the 10 m ``x``/``y`` grid of ``like``.

    ``nearest`` replicates each 20 m pixel over its four 10 m pixels (no new
    values, the default for masks and for training); ``linear`` is bilinear
    interpolation between 20 m pixel centres (edges take the nearest value).
    """
    if method not in ("nearest", "linear"):
        raise ValueError(f"method must be 'nearest' or 'linear', not {method!r}")
    near = band.sel(x=like["x"].values, y=like["y"].values, method="nearest").assign_coords(x=like["x"].values, y=like["y"].values)
    if method == "nearest":
        out = near
    else:  # bilinear between 20 m centres; the half-pixel rims outside them take the nearest value
        out = band.astype(np.float32).interp(x=like["x"].values, y=like["y"].values, method="linear").fillna(near)
    out.attrs = dict(band.attrs)
    return out.astype(band.dtype) if band.dtype.kind == "f" else out
