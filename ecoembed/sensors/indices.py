"""Spectral vegetation indices, once: formulas on reflectance arrays, and the same on Sentinel-2 cubes.

The ``*_of(red, nir)`` functions take surface reflectance (0..1) as numpy
arrays or xarray DataArrays. The cube functions take a cube with reflectance
bands B04 (red) and B08 (NIR) and return a ``(time, y, x)`` DataArray, NaN
where the observation is invalid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import xarray as xr

from ecoembed.errors import CubeError

A = TypeVar("A", np.ndarray, xr.DataArray)


def ndvi_of(red: A, nir: A) -> A:
    """NDVI = (NIR - red) / (NIR + red)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (nir - red) / (nir + red)


def nirv_of(red: A, nir: A) -> A:
    """NIRv = NDVI x NIR (near-infrared reflectance of vegetation; Badgley et al. 2017)."""
    return ndvi_of(red, nir) * nir


def kndvi_of(red: A, nir: A) -> A:
    """Kernel NDVI, kNDVI = tanh(NDVI^2) (Camps-Valls et al. 2021, with the kernel width sigma = (NIR + red) / 2)."""
    return np.tanh(ndvi_of(red, nir) ** 2)  # type: ignore[return-value]  # np.tanh keeps a DataArray a DataArray


def evi2_of(red: A, nir: A) -> A:
    """EVI2 = 2.5 (NIR - red) / (NIR + 2.4 red + 1) (Jiang et al. 2008)."""
    return 2.5 * (nir - red) / (nir + 2.4 * red + 1.0)


INDICES: dict[str, tuple[Callable[[xr.DataArray, xr.DataArray], xr.DataArray], str]] = {
    "ndvi": (ndvi_of, "normalised difference vegetation index"),
    "nirv": (nirv_of, "near-infrared reflectance of vegetation"),
    "kndvi": (kndvi_of, "kernel NDVI"),
    "evi2": (evi2_of, "two-band enhanced vegetation index"),
}
"""Index name -> (formula of red and NIR reflectance, long name)."""


def _red_nir(cube: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    missing = [b for b in ("B04", "B08") if b not in cube]
    if missing:
        raise CubeError(f"cube lacks band(s) {missing} needed for this index; it has {sorted(map(str, cube.data_vars))}")
    valid = cube["valid"].astype(bool) if "valid" in cube else True
    return cube["B04"].astype(np.float32).where(valid), cube["B08"].astype(np.float32).where(valid)


def cube_index(cube: xr.Dataset, name: str) -> xr.DataArray:
    """Index ``name`` (a key of :data:`INDICES`) of a cube's valid observations, ``(time, y, x)``, float32, unitless."""
    formula, long_name = INDICES[name]
    da = formula(*_red_nir(cube))
    da = da.where(np.isfinite(da)).astype(np.float32).rename(name)
    da.attrs = {"units": "1", "long_name": long_name}
    return da.transpose("time", "y", "x", ...)


def ndvi(cube: xr.Dataset) -> xr.DataArray:
    """NDVI of a cube (see :func:`ndvi_of`)."""
    return cube_index(cube, "ndvi")


def nirv(cube: xr.Dataset) -> xr.DataArray:
    """NIRv of a cube (see :func:`nirv_of`)."""
    return cube_index(cube, "nirv")


def kndvi(cube: xr.Dataset) -> xr.DataArray:
    """Kernel NDVI of a cube (see :func:`kndvi_of`)."""
    return cube_index(cube, "kndvi")


def evi2(cube: xr.Dataset) -> xr.DataArray:
    """EVI2 of a cube (see :func:`evi2_of`)."""
    return cube_index(cube, "evi2")
