"""Spectral vegetation indices of a Sentinel-2 cube (masked by its ``valid`` variable).

All functions take a cube with reflectance bands (0..1) and return a
``(time, y, x)`` DataArray, NaN where the observation is invalid.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ecoembed.errors import CubeError


def _bands(cube: xr.Dataset, *names: str) -> list[xr.DataArray]:
    missing = [b for b in names if b not in cube]
    if missing:
        raise CubeError(f"cube lacks band(s) {missing} needed for this index; it has {sorted(map(str, cube.data_vars))}")
    valid = cube["valid"].astype(bool) if "valid" in cube else True
    return [cube[b].astype(np.float32).where(valid) for b in names]


def _finish(da: xr.DataArray, name: str, long_name: str) -> xr.DataArray:
    da = da.where(np.isfinite(da)).astype(np.float32).rename(name)
    da.attrs = {"units": "1", "long_name": long_name}
    return da.transpose("time", "y", "x", ...)


def ndvi(cube: xr.Dataset) -> xr.DataArray:
    """NDVI = (B08 - B04) / (B08 + B04)."""
    red, nir = _bands(cube, "B04", "B08")
    return _finish((nir - red) / (nir + red), "ndvi", "normalised difference vegetation index")


def nirv(cube: xr.Dataset) -> xr.DataArray:
    """NIRv = NDVI * B08 (near-infrared reflectance of vegetation; Badgley et al. 2017)."""
    red, nir = _bands(cube, "B04", "B08")
    return _finish((nir - red) / (nir + red) * nir, "nirv", "near-infrared reflectance of vegetation")


def kndvi(cube: xr.Dataset, sigma: float | None = None) -> xr.DataArray:
    """kNDVI = tanh(((B08 - B04) / (2 sigma))^2) (Camps-Valls et al. 2021); default sigma = 0.5 (B08 + B04),
    which gives kNDVI = tanh(NDVI^2)."""
    red, nir = _bands(cube, "B04", "B08")
    s = 0.5 * (nir + red) if sigma is None else sigma
    return _finish(np.tanh(((nir - red) / (2 * s)) ** 2), "kndvi", "kernel NDVI")


def evi2(cube: xr.Dataset) -> xr.DataArray:
    """EVI2 = 2.5 (B08 - B04) / (B08 + 2.4 B04 + 1) (Jiang et al. 2008)."""
    red, nir = _bands(cube, "B04", "B08")
    return _finish(2.5 * (nir - red) / (nir + 2.4 * red + 1.0), "evi2", "two-band enhanced vegetation index")
