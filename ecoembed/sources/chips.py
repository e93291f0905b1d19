"""Tower-centred chips and per-pixel time series (the encoders' input) from sensor cubes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ecoembed.dates import to_days
from ecoembed.errors import CubeError, InputError
from ecoembed.sensors.cube import infer_sensor
from ecoembed.sensors.sentinel1 import S1_NORM_MEAN, S1_NORM_STD, S1_POLARISATIONS
from ecoembed.sensors.sentinel2 import S2_BANDS, S2_NORM_MEAN, S2_NORM_STD

_STATS: dict[str, tuple[float, float, str]] = {
    **{b: (float(m), float(s), "ecoembed.sensors.sentinel2") for b, m, s in zip(S2_BANDS, S2_NORM_MEAN, S2_NORM_STD, strict=True)},
    **{b: (float(m), float(s), "ecoembed.sensors.sentinel1") for b, m, s in zip(S1_POLARISATIONS, S1_NORM_MEAN, S1_NORM_STD, strict=True)},
}


@dataclass
class PixelSeries:
    """Per-pixel time series of one cube.

    Attributes:
        values: float32 [N, T, C]; normalised ``(x - mean) / std`` when ``normalize``; 0 where invalid.
        days: int64 [T], days since 1970-01-01 of each acquisition.
        valid: bool [N, T]; the cube's ``valid`` and all bands finite.
        orbit: int8 [T] (0 ascending, 1 descending) for S1, else None.
        yx: int [N, 2] row/column index of each pixel (row-major order).
        bands: band names of the C channels.
        empty_pixels: bool [N], pixels without any valid observation.
        normalisation: ``{"bands", "mean", "std", "applied", "source"}``.
        attrs: the cube's attributes (sensor, crs, synthetic, ...).
    """

    values: np.ndarray
    days: np.ndarray
    valid: np.ndarray
    orbit: np.ndarray | None
    yx: np.ndarray
    bands: tuple[str, ...]
    empty_pixels: np.ndarray
    normalisation: dict[str, Any]
    attrs: dict[str, Any] = field(default_factory=dict)


def cube_to_series(cube: xr.Dataset, bands: Sequence[str] | None = None, normalize: bool = True) -> PixelSeries:
    """Flatten a ``(time, y, x)`` cube into per-pixel series (N = y*x pixels, row-major).

    Pixels with no valid observation (all NaN) are kept and flagged in
    ``empty_pixels``; their values are 0 and ``valid`` False.

    Raises:
        CubeError: a requested band is absent or the cube has no band at all.
    """
    if bands is None:
        bands = [b for b in (*S2_BANDS, *S1_POLARISATIONS) if b in cube.data_vars]
        if not bands:
            raise CubeError(f"cube {cube.encoding.get('source', '')} has no S2 band or S1 polarisation ({sorted(map(str, cube.data_vars))})")
    bands = tuple(bands)
    missing = [b for b in bands if b not in cube.data_vars]
    if missing:
        raise CubeError(f"cube {cube.encoding.get('source', '')} lacks band(s) {missing}; it has {sorted(map(str, cube.data_vars))}")
    ny, nx, nt = cube.sizes["y"], cube.sizes["x"], cube.sizes["time"]
    arr = np.empty((ny * nx, nt, len(bands)), np.float32)
    for i, b in enumerate(bands):
        arr[:, :, i] = np.asarray(cube[b].transpose("y", "x", "time").values, np.float32).reshape(ny * nx, nt)
    finite = np.isfinite(arr).all(-1)
    if "valid" in cube:
        valid = np.asarray(cube["valid"].transpose("y", "x", "time").values).astype(bool).reshape(ny * nx, nt) & finite
    else:
        valid = finite
    mean = np.zeros(len(bands), np.float32)
    std = np.ones(len(bands), np.float32)
    if normalize:
        unknown = [b for b in bands if b not in _STATS]
        if unknown:
            raise InputError(f"no normalisation statistics for band(s) {unknown}; use normalize=False")
        mean = np.array([_STATS[b][0] for b in bands], np.float32)
        std = np.array([_STATS[b][1] for b in bands], np.float32)
        arr = (arr - mean) / std
    values = np.where(valid[..., None], arr, np.float32(0)).astype(np.float32)
    orbit = None
    if "orbit" in cube.coords:
        names = np.array([str(o) for o in np.asarray(cube["orbit"].values).tolist()])
        bad = sorted(set(names) - {"ascending", "descending"})
        if bad:
            raise CubeError(f"cube {cube.encoding.get('source', '')}: orbit values {bad} are not 'ascending'/'descending'")
        orbit = (names == "descending").astype(np.int8)
    yy, xx = np.divmod(np.arange(ny * nx), nx)
    sources = sorted({_STATS[b][2] for b in bands if b in _STATS})
    return PixelSeries(
        values=values,
        days=np.asarray(to_days(cube["time"].values), np.int64),
        valid=valid,
        orbit=orbit,
        yx=np.stack([yy, xx], axis=1).astype(np.int64),
        bands=bands,
        empty_pixels=~valid.any(1),
        normalisation={"bands": list(bands), "mean": mean.tolist() if normalize else None,
                       "std": std.tolist() if normalize else None, "applied": bool(normalize),
                       "source": ",".join(sources)},
        attrs={**dict(cube.attrs), "sensor": cube.attrs.get("sensor") or infer_sensor(cube)},
    )


def lonlat_to_cube_xy(cube: xr.Dataset, lat: float, lon: float) -> tuple[float, float]:
    """Project WGS84 ``lat``/``lon`` (degrees) into the cube's CRS (metres)."""
    from pyproj import Transformer

    crs = cube.attrs.get("crs")
    if not crs:
        raise CubeError(f"cube {cube.encoding.get('source', '')} has no CRS; cannot place lat/lon on it")
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    return float(x), float(y)


def tower_chip(cube: xr.Dataset, lat: float, lon: float, size_px: int) -> xr.Dataset:
    """The ``size_px`` x ``size_px`` window of ``cube`` centred on the pixel containing (lat, lon).

    For even sizes the tower pixel is at index ``size_px // 2``. The chip's
    ``attrs`` gain ``tower_lat``, ``tower_lon`` and ``tower_yx`` (row, col in the chip).

    Raises:
        CubeError: the tower or the window falls outside the cube.
    """
    if size_px < 1:
        raise InputError(f"size_px must be >= 1, got {size_px}")
    x, y = lonlat_to_cube_xy(cube, lat, lon)
    xs, ys = np.asarray(cube["x"].values, float), np.asarray(cube["y"].values, float)
    half = 0.5 * abs(xs[1] - xs[0]) if len(xs) > 1 else 5.0
    name = cube.encoding.get("source", "cube")
    if not (xs.min() - half <= x <= xs.max() + half and ys.min() - half <= y <= ys.max() + half):
        raise CubeError(f"tower lat={lat}, lon={lon} (x={x:.0f}, y={y:.0f} in {cube.attrs.get('crs')}) is outside cube {name} "
                        f"(x {xs.min():.0f}..{xs.max():.0f}, y {ys.min():.0f}..{ys.max():.0f}); check the site coordinates")
    col, row = int(np.abs(xs - x).argmin()), int(np.abs(ys - y).argmin())
    r0, c0 = row - size_px // 2, col - size_px // 2
    if r0 < 0 or c0 < 0 or r0 + size_px > len(ys) or c0 + size_px > len(xs):
        raise CubeError(f"a {size_px} px chip around lat={lat}, lon={lon} (pixel row {row}, col {col}) extends outside cube "
                        f"{name} ({len(ys)} x {len(xs)} px); use a smaller size_px or a larger cube")
    chip = cube.isel(y=slice(r0, r0 + size_px), x=slice(c0, c0 + size_px))
    chip.attrs = {**cube.attrs, "tower_lat": float(lat), "tower_lon": float(lon), "tower_yx": [row - r0, col - c0]}
    return chip
