"""Tower-centred chips and per-pixel time series (the encoders' input) from sensor cubes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from pyproj import Transformer

from ecoembed.dates import to_days
from ecoembed.errors import CheckpointError, CubeError, InputError
from ecoembed.sensors import band_statistics
from ecoembed.sensors.cube import infer_sensor
from ecoembed.sensors.registry import detect_sensor, get_sensor
from ecoembed.sources.grid import crs_string, require_metric_grid


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
        band_mask: bool [C], True where the cube has the band (missing bands are zero).
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
    band_mask: np.ndarray
    empty_pixels: np.ndarray
    normalisation: dict[str, Any]
    attrs: dict[str, Any] = field(default_factory=dict)


def cube_to_series(cube: xr.Dataset, bands: Sequence[str] | None = None, normalize: bool = True, *,
                   missing: str = "error") -> PixelSeries:
    """Flatten a ``(time, y, x)`` cube into per-pixel series (N = y*x pixels, row-major).

    Pixels with no valid observation (all NaN) are kept and flagged in
    ``empty_pixels``; their values are 0 and ``valid`` False.

    Args:
        cube: a contract cube.
        bands: channel order (default the bands the cube has, in the sensor's order).
        normalize: ``(value - mean) / std`` with the registry's statistics.
        missing: what to do with ``bands`` the cube lacks: ``"error"``, or ``"mask"`` (zero values
            and ``band_mask`` False: the encoders' band-subset input).

    Raises:
        CubeError: a requested band is absent (with ``missing="error"``) or the cube has no band at all.
    """
    spec = detect_sensor(map(str, cube.data_vars), cube.attrs)
    if bands is None:
        bands = [b for b in spec.band_names if b in cube.data_vars] if spec is not None else []
        if not bands:
            raise CubeError(f"cube {cube.encoding.get('source', '')} has no band of a known sensor "
                            f"({sorted(map(str, cube.data_vars))})")
    bands = tuple(bands)
    absent = [b for b in bands if b not in cube.data_vars]
    if absent and missing != "mask":
        raise CubeError(f"cube {cube.encoding.get('source', '')} lacks band(s) {absent}; it has {sorted(map(str, cube.data_vars))}")
    band_mask = np.array([b not in absent for b in bands], dtype=bool)
    if not band_mask.any():
        raise CubeError(f"cube {cube.encoding.get('source', '')} has none of the bands {list(bands)}")
    ny, nx, nt = cube.sizes["y"], cube.sizes["x"], cube.sizes["time"]
    arr = np.empty((ny * nx, nt, len(bands)), np.float32)
    arr[:] = np.nan
    for i, b in enumerate(bands):
        if band_mask[i]:
            arr[:, :, i] = np.asarray(cube[b].transpose("y", "x", "time").values, np.float32).reshape(ny * nx, nt)
    finite = np.asarray(np.isfinite(arr[..., band_mask]).all(-1))
    if "valid" in cube:
        valid = np.asarray(cube["valid"].transpose("y", "x", "time").values).astype(bool).reshape(ny * nx, nt) & finite
    else:
        valid = finite
    mean = np.zeros(len(bands), np.float32)
    std = np.ones(len(bands), np.float32)
    if normalize:
        stats = [band_statistics(b) for b in bands]
        mean = np.array([m for m, _, _ in stats], np.float32)
        std = np.array([sd for _, sd, _ in stats], np.float32)
        arr = (arr - mean) / std
    values = np.where(valid[..., None] & band_mask, arr, np.float32(0)).astype(np.float32)
    orbit = None
    if "orbit" in cube.coords:
        names = np.array([str(o) for o in np.asarray(cube["orbit"].values).tolist()])
        bad = sorted(set(names) - {"ascending", "descending"})
        if bad:
            raise CubeError(f"cube {cube.encoding.get('source', '')}: orbit values {bad} are not 'ascending'/'descending'")
        orbit = (names == "descending").astype(np.int8)
    yy, xx = np.divmod(np.arange(ny * nx), nx)
    sources = sorted({band_statistics(b)[2] for b in bands}) if normalize else []
    return PixelSeries(
        values=values,
        days=np.asarray(to_days(cube["time"].values), np.int64),
        valid=valid,
        orbit=orbit,
        yx=np.stack([yy, xx], axis=1).astype(np.int64),
        bands=bands,
        band_mask=band_mask,
        empty_pixels=np.asarray(~valid.any(1)),
        normalisation={"bands": list(bands), "mean": mean.tolist() if normalize else None,
                       "std": std.tolist() if normalize else None, "applied": bool(normalize),
                       "source": ",".join(sources)},
        attrs={**dict(cube.attrs), "sensor": cube.attrs.get("sensor") or infer_sensor(cube)},
    )


def encoder_series(cube: xr.Dataset, sensor: str) -> PixelSeries:
    """Pixel series of ``cube`` in the sensor's full band order with the registry's statistics, missing bands masked.

    The input of encoders that are not read from a checkpoint (synthetic experiments, training
    from scratch). A loaded checkpoint's encoders take :func:`checkpoint_series`: its recorded
    band order and statistics, which need not be the registry's.
    """
    return cube_to_series(cube, bands=get_sensor(sensor).band_names, missing="mask")


def checkpoint_input(normalisation: Any, sensor: str, *, checkpoint: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The band order, means and standard deviations a checkpoint records for ``sensor``.

    Args:
        normalisation: the checkpoint's entry for the sensor (``{"bands", "mean", "std"}``, as
            :func:`ecoembed.sensors.normalisation_stats` writes it), or None when it records none.
        sensor: the modality (``"s2"``, ``"s1"``).
        checkpoint: the file (named in messages).

    Raises:
        CheckpointError: no entry, or one without matching ``bands`` / ``mean`` / ``std`` lists
            (finite, ``std`` > 0).
    """
    if not isinstance(normalisation, Mapping) or not normalisation.get("bands"):
        raise CheckpointError(f"{checkpoint} records no {sensor} band order/normalisation statistics, so its encoder's input "
                              "is unknown; re-create it with `ecoembed pretrain` (which records them)")
    bands = [str(b) for b in normalisation["bands"]]
    try:
        mean = np.asarray(normalisation.get("mean"), dtype=np.float32).reshape(-1)
        std = np.asarray(normalisation.get("std"), dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        mean = std = np.zeros(0, np.float32)
    if (len(set(bands)) != len(bands) or mean.shape != (len(bands),) or std.shape != (len(bands),)
            or not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)) or not np.all(std > 0)):
        raise CheckpointError(f"{checkpoint}: its {sensor} normalisation (bands {bands}) does not give one finite mean and "
                              "one positive std per distinct band; re-create the checkpoint")
    return bands, mean, std


def checkpoint_bands_needed(bands: Sequence[str], sensor: str, normalisation: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Groups of bands of a checkpoint's order of which a cube needs at least one band each.

    The checkpoint's own ``required`` list (each band needed) when it records one; else the
    sensor's required groups (S2: a visible or red-edge and a near-infrared band) restricted to
    the checkpoint's band order, and every band of that order the sensor does not know (no cube
    can supply it as a band to mask).
    """
    if normalisation.get("required"):
        return [(str(b),) for b in normalisation["required"]]
    spec = get_sensor(sensor)
    groups = [tuple(b for b in group if b in bands) for group in spec.required]
    return [g for g in groups if g] + [(b,) for b in bands if b not in spec.band_names]


def require_checkpoint_bands(cube: xr.Dataset, sensor: str, normalisation: Any, *, checkpoint: str) -> list[str]:
    """The checkpoint's band order for ``sensor``, after checking that ``cube`` has every band it needs.

    Raises:
        CheckpointError: the checkpoint records no usable band order/normalisation.
        CubeError: the cube lacks a band the checkpoint needs (:func:`checkpoint_bands_needed`), one line.
    """
    bands, _, _ = checkpoint_input(normalisation, sensor, checkpoint=checkpoint)
    have = {str(v) for v in cube.data_vars}
    missing = [g for g in checkpoint_bands_needed(bands, sensor, normalisation) if not have & set(g)]
    if missing:
        need = " and ".join("/".join(g) for g in missing)
        present = [b for b in bands if b in have]
        raise CubeError(f"cube {cube.encoding.get('source', '') or cube.attrs.get('source', '')} lacks {need}, which checkpoint "
                        f"{checkpoint} needs (its {sensor} band order is {','.join(bands)}; the cube has "
                        f"{','.join(present) or 'none of them'}); give a cube with {need} or a checkpoint trained without it")
    return bands


def checkpoint_series(cube: xr.Dataset, sensor: str, normalisation: Any, *, checkpoint: str) -> PixelSeries:
    """Pixel series of ``cube`` as a checkpoint's encoder expects them: its band order, its statistics.

    Bands of the order that the cube lacks are masked (zero, ``band_mask`` False) when the
    checkpoint can do without them; a band it needs refuses the cube
    (:func:`require_checkpoint_bands`). Never the registry's defaults.

    Args:
        cube: a contract cube.
        sensor: the modality (``"s2"``, ``"s1"``).
        normalisation: the checkpoint's entry for ``sensor`` (``{"bands", "mean", "std"[, "required"]}``).
        checkpoint: the file (recorded in ``normalisation["source"]`` and named in messages).

    Raises:
        CheckpointError: no or a malformed entry.
        CubeError: a needed band is absent, or the cube has none of the checkpoint's bands.
    """
    bands = require_checkpoint_bands(cube, sensor, normalisation, checkpoint=checkpoint)
    _, mean, std = checkpoint_input(normalisation, sensor, checkpoint=checkpoint)
    raw = cube_to_series(cube, bands=bands, normalize=False, missing="mask")
    usable = np.asarray(raw.valid)[..., None] & np.asarray(raw.band_mask)
    raw.values = np.where(usable, (raw.values - mean) / std, np.float32(0)).astype(np.float32)
    raw.normalisation = {"bands": list(bands), "mean": mean.tolist(), "std": std.tolist(), "applied": True,
                         "source": f"checkpoint {checkpoint}"}
    return raw


def tower_xy(lat: float, lon: float, crs: str) -> tuple[float, float]:
    """Tower position in a projected CRS (metres for UTM) from WGS84 ``lat``/``lon`` (degrees)."""
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(float(lon), float(lat))
    return float(x), float(y)


def tower_pixel(cube: xr.Dataset, lat: float, lon: float, *, source: str | None = None) -> tuple[int, int]:
    """Row and column of the cube pixel that contains the tower at WGS84 ``lat``/``lon``.

    The cube's grid is checked first (:func:`ecoembed.sources.grid.require_metric_grid`): every
    window around the tower is counted in pixels of metres, so a cube in degrees, without a CRS,
    or whose spacing contradicts its ``resolution_m`` is refused, embedding cubes included.

    Raises:
        CubeError: the cube has no CRS or x/y coordinates, a grid that is not in metres, or the
            tower lies outside it.
    """
    name = source or cube.encoding.get("source", "cube")
    if "x" not in cube.coords or "y" not in cube.coords:
        raise CubeError(f"{name}: no x/y coordinates; cannot place the tower on the cube grid")
    crs = crs_string(require_metric_grid(cube, source=str(name)))
    x, y = tower_xy(lat, lon, crs)
    xs, ys = np.asarray(cube["x"].values, float), np.asarray(cube["y"].values, float)
    rx = abs(xs[1] - xs[0]) if xs.size > 1 else 10.0
    ry = abs(ys[1] - ys[0]) if ys.size > 1 else 10.0
    if not (xs.min() - rx / 2 <= x <= xs.max() + rx / 2 and ys.min() - ry / 2 <= y <= ys.max() + ry / 2):
        raise CubeError(f"{name}: tower at lat={lat}, lon={lon} (x={x:.1f}, y={y:.1f} in {crs}) lies outside the cube "
                        f"(x {xs.min():.1f}..{xs.max():.1f}, y {ys.min():.1f}..{ys.max():.1f}); check the site's lat/lon "
                        "or the cube path in sites.csv")
    return int(np.argmin(np.abs(ys - y))), int(np.argmin(np.abs(xs - x)))


def tower_chip(cube: xr.Dataset, lat: float, lon: float, size_px: int) -> xr.Dataset:
    """The ``size_px`` x ``size_px`` window of ``cube`` centred on the pixel containing (lat, lon).

    For even sizes the tower pixel is at index ``size_px // 2``. The chip's
    ``attrs`` gain ``tower_lat``, ``tower_lon`` and ``tower_yx`` (row, col in the chip).

    Raises:
        CubeError: the tower or the window falls outside the cube.
    """
    if size_px < 1:
        raise InputError(f"size_px must be >= 1, got {size_px}")
    name = cube.encoding.get("source", "cube")
    row, col = tower_pixel(cube, lat, lon)
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    r0, c0 = row - size_px // 2, col - size_px // 2
    if r0 < 0 or c0 < 0 or r0 + size_px > ny or c0 + size_px > nx:
        raise CubeError(f"a {size_px} px chip around lat={lat}, lon={lon} (pixel row {row}, col {col}) extends outside cube "
                        f"{name} ({ny} x {nx} px); use a smaller size_px or a larger cube")
    chip = cube.isel(y=slice(r0, r0 + size_px), x=slice(c0, c0 + size_px))
    chip.attrs = {**cube.attrs, "tower_lat": float(lat), "tower_lon": float(lon), "tower_yx": [row - r0, col - c0]}
    return chip
