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
from ecoembed.sensors.sentinel1 import S1_POLARISATIONS
from ecoembed.sensors.sentinel1 import SENSOR as S1_SENSOR
from ecoembed.sensors.sentinel2 import S2_BANDS
from ecoembed.sensors.sentinel2 import SENSOR as S2_SENSOR

SENSORS: dict[str, tuple[str, ...]] = {S2_SENSOR: S2_BANDS, S1_SENSOR: S1_POLARISATIONS}
RESOLUTION_M = 10.0
_ALIASES = {"s2": S2_SENSOR, "sentinel-2": S2_SENSOR, "sentinel2": S2_SENSOR, "sentinel-2-l2a": S2_SENSOR,
            "s1": S1_SENSOR, "sentinel-1": S1_SENSOR, "sentinel1": S1_SENSOR, "sentinel-1-grd": S1_SENSOR,
            "sentinel-1-rtc": S1_SENSOR}


def canonical_sensor(sensor: str) -> str:
    """``"s2"``/``"sentinel-2"``/... -> ``"sentinel-2-l2a"``; ``"s1"``/... -> ``"sentinel-1-grd"``."""
    key = str(sensor).strip().lower()
    if key not in _ALIASES:
        raise CubeError(f"unknown sensor {sensor!r}; use 'sentinel-2-l2a' (s2) or 'sentinel-1-grd' (s1)")
    return _ALIASES[key]


def infer_sensor(ds: xr.Dataset) -> str | None:
    """The cube's sensor from ``attrs['sensor']``, else from its variables (B04 -> S2, VV -> S1)."""
    if ds.attrs.get("sensor"):
        try:
            return canonical_sensor(str(ds.attrs["sensor"]))
        except CubeError:
            return None
    names = set(map(str, ds.data_vars))
    if names & set(S2_BANDS):
        return S2_SENSOR
    if names & set(S1_POLARISATIONS):
        return S1_SENSOR
    return None


def validate_cube(ds: xr.Dataset, sensor: str | None = None, bands: Sequence[str] | None = None, *,
                  allow_missing: bool = False, source: str | None = None, check_values: bool = True) -> xr.Dataset:
    """Check that ``ds`` meets the sensor cube contract; return it unchanged.

    Args:
        ds: the cube.
        sensor: expected sensor (default: from the cube).
        bands: bands that must be present (default: all bands of the sensor, or
            with ``allow_missing`` at least one of them).
        allow_missing: accept a subset of the sensor's bands (e.g. a B04/B08 cube).
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
        raise CubeError(f"{where}: cannot tell the sensor (no 'sensor' attribute and neither S2 bands {list(S2_BANDS)} "
                        f"nor S1 polarisations {list(S1_POLARISATIONS)} among its variables {sorted(map(str, ds.data_vars))})")
    for dim in ("time", "y", "x"):
        if dim not in ds.dims:
            raise CubeError(f"{where} has dims {dict(ds.sizes)}; the contract needs 'time', 'y', 'x' (rename them)")
    if ds.sizes["time"] == 0 or ds.sizes["y"] == 0 or ds.sizes["x"] == 0:
        raise CubeError(f"{where} is empty (sizes {dict(ds.sizes)}); it has no acquisition or no pixel")
    crs = ds.attrs.get("crs")
    if not crs:
        raise CubeError(f"{where} has no CRS: set attrs['crs'] (e.g. 'EPSG:32630') or a grid_mapping/spatial_ref variable")
    known = SENSORS[sensor]
    present = [b for b in known if b in ds.data_vars]
    required = list(bands) if bands is not None else ([] if allow_missing else list(known))
    missing = [b for b in required if b not in ds.data_vars]
    if missing:
        raise CubeError(f"{where} lacks band(s) {missing} of {sensor} (it has {present}); "
                        f"give a cube with all bands {list(required)}")
    if not present and not [b for b in required if b in ds.data_vars]:
        raise CubeError(f"{where} has none of the {sensor} bands {list(known)}")
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
            if not np.allclose(d, RESOLUTION_M, atol=1e-3):
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
                and np.allclose(a["x"].values, b["x"].values) and np.allclose(a["y"].values, b["y"].values))


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
