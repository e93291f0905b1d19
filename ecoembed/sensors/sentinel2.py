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

from ecoembed.sensors.spec import BandSpec, SensorSpec

_STATS = {  # normalisation (reflectance) of typical vegetated land: what the shipped encoders were trained with
    "B02": (0.07, 0.06), "B03": (0.10, 0.06), "B04": (0.10, 0.07), "B05": (0.14, 0.06), "B06": (0.22, 0.07),
    "B07": (0.26, 0.09), "B08": (0.29, 0.10), "B8A": (0.30, 0.10), "B11": (0.27, 0.08), "B12": (0.19, 0.08),
}
_BANDS = (  # name, native resolution (m), central wavelength (nm), aliases
    ("B02", 10.0, 492.4, ("BLUE",)), ("B03", 10.0, 559.8, ("GREEN",)), ("B04", 10.0, 664.6, ("RED",)),
    ("B05", 20.0, 704.1, ("REDEDGE1", "RE1")), ("B06", 20.0, 740.5, ("REDEDGE2", "RE2")),
    ("B07", 20.0, 782.8, ("REDEDGE3", "RE3")), ("B08", 10.0, 832.8, ("NIR",)),
    ("B8A", 20.0, 864.7, ("B08A", "NIR08", "NIRNARROW", "REDEDGE4")), ("B11", 20.0, 1613.7, ("SWIR16", "SWIR1")),
    ("B12", 20.0, 2202.4, ("SWIR22", "SWIR2")),
)
SPEC = SensorSpec(
    key="s2",
    name="sentinel-2-l2a",
    aliases=("s2", "sentinel-2", "sentinel2", "sentinel-2-l2a", "s2_l2a", "sentinel-2a", "sentinel-2b", "s2-l2a"),
    bands=tuple(BandSpec(n, r, "reflectance", w, *_STATS[n], aliases=a) for n, r, w, a in _BANDS),
    masks=(BandSpec("SCL", 20.0, "mask", aliases=("SCENECLASSIFICATION", "SCENE_CLASSIFICATION")),),
    required=(("B02", "B03", "B04", "B05"), ("B08", "B8A")),  # a visible or red-edge band and a NIR band
    prefixes=("S2-L2A-", "S2_L2A_", "S2-", "S2_", "SENTINEL2_", "L2A_", "BOA_"),
    unit="1",
    dn_scale=1.0e-4,
    dn_offset=0.0,
    nodata_dn=(0.0, 65535.0),
    typical_subsets=(
        ("B02", "B03", "B04", "B08"),  # the 10 m file alone
        ("B04", "B08"),  # red + NIR (NDVI exports)
        ("B05", "B06", "B07", "B8A", "B11", "B12"),  # the 20 m file alone
        ("B02", "B03", "B04", "B8A"),  # EarthNet-style minicubes
        ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B11", "B12"),  # no B8A (openEO WorldCereal inputs)
    ),
)
"""Sentinel-2 L2A: ten surface-reflectance bands (60 m bands B01, B09, B10 are not used) and the SCL."""

SENSOR = SPEC.name
S2_BANDS: tuple[str, ...] = SPEC.band_names
"""Band order of every S2 array in the package (10 m: B02-B04, B08; 20 m: B05-B07, B8A, B11, B12)."""

SCL_CLASSES: dict[int, str] = {
    0: "no_data", 1: "saturated_or_defective", 2: "dark_area_pixels", 3: "cloud_shadows", 4: "vegetation",
    5: "not_vegetated", 6: "water", 7: "unclassified", 8: "cloud_medium_probability",
    9: "cloud_high_probability", 10: "thin_cirrus", 11: "snow",
}
SCL_INVALID: tuple[int, ...] = (0, 1, 3, 8, 9, 10, 11)
"""SCL classes that make an observation unusable: no data, saturated, cloud shadow, cloud medium/high, cirrus, snow."""

BASELINE_0400_START = np.datetime64("2022-01-25", "D")
"""First acquisition day processed with baseline 04.00 (radiometric offset -1000 DN)."""
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


def remove_baseline_offset(reflectance: xr.DataArray) -> xr.DataArray:
    """Reflectance from raw DN x 1e-4 of products with processing baseline >= 04.00 corrected by their -1000 DN offset."""
    offset = xr.DataArray(boa_offset_dn(reflectance["time"].values) * SPEC.dn_scale, dims="time",
                          coords={"time": reflectance["time"]})
    out = (reflectance + offset).astype(np.float32)
    out.attrs = dict(reflectance.attrs)
    return out


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
        out = ((data + offset) * SPEC.dn_scale).where((data != 0) & data.notnull()).astype(np.float32)
        out.attrs = {**{k: v for k, v in dn.attrs.items() if k not in ("units", "scale_factor", "add_offset")},
                     "units": "1", "long_name": f"surface reflectance {dn.name or ''}".strip()}
        return out
    if time is None:
        raise ValueError("dn_to_reflectance: a numpy DN array needs the acquisition time(s)")
    values = np.asarray(dn, dtype=np.float32)
    offsets = boa_offset_dn(np.asarray(time)).astype(np.float32)
    if offsets.ndim:
        offsets = offsets.reshape((-1,) + (1,) * (values.ndim - 1))
    refl = (values + offsets) * np.float32(SPEC.dn_scale)
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


SPECTRAL_TEST = ("cloud where blue B02 > 0.20 (red B04 > 0.25 without B02); shadow where NIR B08 < 0.04 "
                 "and blue < 0.04; snow where (B03 - B11) / (B03 + B11) > 0.42 with B08 > 0.11 when B03 and B11 exist")
"""The fallback validity test for cubes without an SCL (simple reflectance thresholds, after Hollstein et al. 2016)."""


def spectral_validity(cube: xr.Dataset) -> tuple[xr.DataArray, str]:
    """Cloud / shadow / snow test from the reflectance bands, for S2 cubes that carry no SCL.

    Returns:
        ``(valid, rule)``: True where no test fires (NaN bands do not fire), and which tests ran.
    """
    ran = []
    template = next(cube[b] for b in S2_BANDS if b in cube.data_vars)
    bad = xr.zeros_like(template, dtype=bool)
    if "B02" in cube:
        bad = bad | (cube["B02"] > 0.20)
        ran.append("blue > 0.20")
    elif "B04" in cube:
        bad = bad | (cube["B04"] > 0.25)
        ran.append("red > 0.25")
    nir = cube["B08"] if "B08" in cube else cube.get("B8A")
    dark = cube["B02"] if "B02" in cube else cube.get("B04")
    if nir is not None and dark is not None:
        bad = bad | ((nir < 0.04) & (dark < 0.04))
        ran.append("NIR < 0.04 and visible < 0.04 (shadow)")
    if nir is not None and "B03" in cube and "B11" in cube:
        with np.errstate(invalid="ignore", divide="ignore"):
            ndsi = (cube["B03"] - cube["B11"]) / (cube["B03"] + cube["B11"])
        bad = bad | ((ndsi > 0.42) & (nir > 0.11))
        ran.append("NDSI > 0.42 and NIR > 0.11 (snow)")
    return ~bad, "spectral test: " + ", ".join(ran)
