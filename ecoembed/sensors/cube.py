"""The sensor cube contract (see ARCHITECTURE.md) and its validation.

A cube is an ``xarray.Dataset`` with band variables of dims ``(time, y, x)``,
pixel-centre ``x``/``y`` coordinates in a projected CRS (metres, 10 m grid),
sorted unique ``time`` (datetime64), a boolean ``valid`` variable and attrs
``crs``, ``sensor``, ``synthetic``, ``resolution_m``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from ecoembed.errors import CubeError
from ecoembed.sensors.registry import detect_sensor, get_sensor

RESOLUTION_M = 10.0
"""Pixel size of the contract grid (m)."""


def canonical_sensor(sensor: str) -> str:
    """Canonical sensor name of a key or alias (``"s2"`` -> ``"sentinel-2-l2a"``).

    Raises:
        CubeError: unknown sensor.
    """
    return get_sensor(sensor).name


def infer_sensor(ds: xr.Dataset) -> str | None:
    """The cube's sensor from ``attrs['sensor']``, else from its variables (B04 -> S2, VV -> S1); None if neither says."""
    spec = detect_sensor(map(str, ds.data_vars), ds.attrs)
    return spec.name if spec is not None else None


def validate_cube(ds: xr.Dataset, sensor: str | None = None, bands: Sequence[str] | None = None, *,
                  source: str | None = None, check_values: bool = True) -> xr.Dataset:
    """Check that ``ds`` meets the sensor cube contract; return it unchanged.

    Args:
        ds: the cube (canonical band names, as :func:`ecoembed.sources.local.open_cube` returns it).
        sensor: expected sensor (default: from the cube).
        bands: bands that must be present (default: the sensor's required bands, e.g. S2 red and NIR).
        source: file name used in messages (default ``ds.encoding['source']`` or "cube").
        check_values: also check that no band is entirely NaN (reads the data).

    Raises:
        CubeError: no CRS, unsorted/duplicated times, an all-NaN band, missing
            bands, wrong dims, a grid that is not 10 m, an empty cube, or a
            sensor attribute that contradicts ``sensor``.
    """
    name = source or ds.encoding.get("source") or ds.attrs.get("name") or "cube"
    where = f"cube {name}"
    found = infer_sensor(ds)
    if sensor is not None:
        sensor = canonical_sensor(sensor)
        if found is not None and ds.attrs.get("sensor") and found != sensor:
            raise CubeError(f"{where} has sensor={ds.attrs.get('sensor')!r} but a {sensor} cube was expected; pass the right file")
    sensor = sensor or found
    if sensor is None:
        raise CubeError(f"{where}: cannot tell the sensor (no 'sensor' attribute and no band of a known sensor among "
                        f"its variables {sorted(map(str, ds.data_vars))})")
    spec = get_sensor(sensor)
    for dim in ("time", "y", "x"):
        if dim not in ds.dims:
            raise CubeError(f"{where} has dims {dict(ds.sizes)}; the contract needs 'time', 'y', 'x' (rename them)")
    if ds.sizes["time"] == 0 or ds.sizes["y"] == 0 or ds.sizes["x"] == 0:
        raise CubeError(f"{where} is empty (sizes {dict(ds.sizes)}); it has no acquisition or no pixel")
    crs = ds.attrs.get("crs")
    if not crs:
        raise CubeError(f"{where} has no CRS: set attrs['crs'] (e.g. 'EPSG:32630') or a grid_mapping/spatial_ref variable")
    present = [b for b in spec.band_names if b in ds.data_vars]
    if bands is not None:
        missing = [b for b in bands if b not in ds.data_vars]
        if missing:
            raise CubeError(f"{where} lacks band(s) {missing} of {spec.name} (it has {present}); "
                            f"give a cube with bands {list(bands)}")
    lacking = spec.missing_required(present)
    if lacking:
        raise CubeError(f"{where} has none of the {spec.name} band(s) {' and '.join('/'.join(g) for g in lacking)} "
                        f"(it has {present}); a {spec.name} cube needs at least {' and '.join('/'.join(g) for g in spec.required)}")
    for b in [*present, *(["valid"] if "valid" in ds else [])]:
        if tuple(ds[b].dims) != ("time", "y", "x"):
            raise CubeError(f"{where}: variable {b} has dims {ds[b].dims}; the contract needs ('time', 'y', 'x')")
    times = np.asarray(ds["time"].values)
    if times.dtype.kind != "M":
        raise CubeError(f"{where}: time is {times.dtype}, not datetime64 acquisition times")
    if len(times) > 1:
        step = np.diff(times.astype("datetime64[ns]").astype(np.int64))
        if (step == 0).any():
            dup = times[1:][step == 0][0]
            raise CubeError(f"{where} has duplicated times (e.g. {str(dup)[:19]}); merge or drop duplicate acquisitions")
        if (step < 0).any():
            i = int(np.flatnonzero(step < 0)[0])
            raise CubeError(f"{where} has unsorted times ({str(times[i])[:19]} before {str(times[i + 1])[:19]}); sort by time")
    for dim in ("x", "y"):
        c = np.asarray(ds[dim].values, dtype=np.float64)
        if len(c) > 1:
            d = np.abs(np.diff(c))
            if not np.allclose(d, RESOLUTION_M, rtol=0, atol=1e-3):
                raise CubeError(f"{where}: {dim} spacing is {float(np.median(d)):g} m, not a {RESOLUTION_M:g} m grid; "
                                f"resample it to 10 m first")
    if check_values:
        for b in present:
            if not _has_data(ds[b]):
                raise CubeError(f"{where}: band {b} is entirely NaN (no data at all); check the file")
    return ds


def _has_data(band: xr.DataArray, slab_bytes: int = 4 * 2**20) -> bool:
    """True when ``band`` holds any non-NaN value, read in time slabs of about ``slab_bytes`` (stops at the first hit).

    A whole-band ``notnull().any()`` reads the band at once, so memory would grow
    with the scene; real bands hold data in their first slab, so this usually reads one.
    """
    if "time" not in band.dims or band.sizes["time"] == 0:
        return bool(band.notnull().any())
    per_step = max(1, band.dtype.itemsize * int(np.prod([n for d, n in band.sizes.items() if d != "time"])))
    step = max(1, slab_bytes // per_step)
    return any(bool(band.isel(time=slice(i, i + step)).notnull().any()) for i in range(0, band.sizes["time"], step))


def same_grid(a: xr.Dataset, b: xr.Dataset) -> bool:
    """True when two cubes share the pixel grid (same ``x``/``y`` sizes and pixel-centre coordinates)."""
    return bool(a.sizes["y"] == b.sizes["y"] and a.sizes["x"] == b.sizes["x"]
                and np.allclose(a["x"].values, b["x"].values, rtol=0, atol=0.01)
                and np.allclose(a["y"].values, b["y"].values, rtol=0, atol=0.01))


def require_same_grid(cube: xr.Dataset, reference: xr.Dataset, *, what: str) -> None:
    """Raise when ``cube`` is not on ``reference``'s pixel grid.

    Args:
        cube: the cube to check (e.g. S1).
        reference: the cube that defines the grid (e.g. S2).
        what: how to name ``cube`` in the message (e.g. ``"S1 cube s1.nc"``).

    Raises:
        CubeError: the grids differ.
    """
    if not same_grid(cube, reference):
        raise CubeError(f"{what} is not on the grid of the S2 cube (x/y differ); resample it to the S2 grid first")
