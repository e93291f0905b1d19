"""Local NetCDF / Zarr sensor cubes as people export them, opened into the cube contract; atomic saving.

:func:`open_cube` takes one file or several files of one sensor (an S2 10 m
file and its 20 m file; S1 beside S2) and returns one contract cube on one
10 m grid:

* **dimensions**: the time axis may be called ``time``, ``t``, ``timestamp``,
  ``date``, ``datetime``; the spatial axes ``x``/``y`` (a ``lat``/``lon`` grid is
  refused with the remedy: reproject to UTM);
* **CRS** from ``attrs['crs']`` (``EPSG:n``, ``+init=epsg:n``), a CF
  ``grid_mapping`` / ``spatial_ref`` / ``crs`` variable (``crs_wkt``) or
  ``attrs['epsg']`` (:func:`ecoembed.sources.grid.crs_of`);
* **band names** in the conventions of openEO/CDSE, Earth Engine, Sentinel Hub,
  odc-stac and Planetary Computer (``B02``, ``B2``, ``S2-L2A-B02``, ``B02_10m``,
  ``b02``, ``VV``, ``S1-SIGMA0-VV``, ``vv``), resolved by the sensor registry;
  other variables are dropped (and named in ``attrs['dropped_variables']``);
* **values**: fill values, CF packing, DN vs reflectance and dB vs linear are
  decided from metadata or the ``values`` option (:mod:`ecoembed.sensors.values`),
  never from the data; Sentinel-2 DN get the processing-baseline offset;
* **several files** of a sensor are merged on the grid of the finest one (a
  20 m grid is split into 10 m pixels): 20 m bands and 20 m S1 are resampled
  bilinearly (S1 in linear power), the SCL by nearest neighbour; grids that do
  not nest are refused with both grids in the message; ``like`` puts the cube on
  another cube's grid (S1 onto the S2 grid);
* **validity** (``valid``): every present band finite, a ``valid`` variable of
  the file, the SCL classes (S2), or, for S2 without any SCL, the spectral test
  of :func:`ecoembed.sensors.sentinel2.spectral_validity`; ``attrs['validity']``
  says which;
* **missing bands**: any subset of the sensor's bands is a valid cube as long
  as the sensor's required bands are there (S2: a visible or red-edge band and
  a near-infrared band); the
  bands present are listed in ``attrs['bands']``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pandas as pd
import xarray as xr

from ecoembed.errors import CubeError, InputError, OutputExistsError
from ecoembed.io_utils import atomic_path
from ecoembed.sensors import sentinel2
from ecoembed.sensors.cube import validate_cube
from ecoembed.sensors.registry import detect_sensor, get_sensor, rename_map
from ecoembed.sensors.sentinel1 import ORBITS, db_to_linear, linear_to_db
from ecoembed.sensors.spec import SensorSpec
from ecoembed.sensors.values import baseline_offset_removed, decode_band
from ecoembed.sources.grid import (
    TARGET_RESOLUTION_M,
    Grid,
    crs_of,
    crs_string,
    grid_coords,
    grid_of,
    nests,
    require_nesting,
    resample_to,
    subdivide,
)
from ecoembed.sources.points import is_point_table, merge_point_cubes, point_cube

TIME_NAMES: tuple[str, ...] = ("time", "t", "timestamp", "date", "datetime", "times", "acquisition_time")
"""Names of the time axis accepted in files (the first present becomes ``time``)."""
GEOGRAPHIC_NAMES: tuple[str, ...] = ("lat", "lon", "latitude", "longitude")
ORBIT_NAMES: tuple[str, ...] = ("orbit", "orbit_direction", "orbit_state", "sat:orbit_state", "orbitdirection")
"""Coordinates, variables or attributes that give the S1 orbit direction."""
NETCDF_CHUNK_CACHE_BYTES = 8 * 2**20
"""HDF5 chunk cache per NetCDF variable (netCDF-C's default, 64 MB, kept whole bands of a
256 px S2 year resident: peak RSS grew with the scene)."""

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class _Part:
    """One file of a sensor, decoded on its own grid."""

    ds: xr.Dataset
    grid: Grid
    source: str
    rules: dict[str, str]
    dropped: list[str]


def _limit_netcdf_chunk_cache() -> None:
    """Lower netCDF-C's per-variable chunk cache to :data:`NETCDF_CHUNK_CACHE_BYTES` (process-wide, never raises it)."""
    size, nelems, preemption = netCDF4.get_chunk_cache()
    if size > NETCDF_CHUNK_CACHE_BYTES:
        netCDF4.set_chunk_cache(NETCDF_CHUNK_CACHE_BYTES, nelems, preemption)


def _open_raw(p: Path) -> xr.Dataset:
    if not p.exists():
        raise InputError(f"cube {p} does not exist")
    if not (p.is_file() or (p.is_dir() and (p.suffix == ".zarr" or (p / ".zgroup").exists() or (p / "zarr.json").exists()))):
        raise CubeError(f"cube {p} is not a regular file or a .zarr folder; give a .nc or .zarr sensor cube")
    try:
        if p.is_dir():
            return xr.open_zarr(p, consolidated=False, chunks={}, mask_and_scale=False)
        _limit_netcdf_chunk_cache()
        return xr.open_dataset(p, chunks={}, mask_and_scale=False)
    except Exception as exc:  # any reader failure means "not a cube"
        raise CubeError(f"cannot read cube {p} as NetCDF/Zarr ({type(exc).__name__}: {str(exc)[:200]}); "
                        "give a .nc or .zarr sensor cube") from None


def _standard_dims(ds: xr.Dataset, source: str) -> xr.Dataset:
    if any(d in ds.dims for d in GEOGRAPHIC_NAMES) and not {"x", "y"} <= set(ds.dims):
        raise CubeError(f"{source} is on a lat/lon grid (dims {dict(ds.sizes)}); the package needs a projected grid "
                        "in metres: reproject it to its UTM zone at 10 m first (e.g. rioxarray .rio.reproject)")
    time_dim = next((n for n in TIME_NAMES if n in ds.dims), None)
    if time_dim is None:
        raise CubeError(f"{source} has no time axis (dims {dict(ds.sizes)}); name it one of {', '.join(TIME_NAMES)}")
    if time_dim != "time":
        ds = ds.drop_vars("time", errors="ignore").rename({time_dim: "time"})
    for dim in ("x", "y"):
        if dim not in ds.dims:
            raise CubeError(f"{source} has dims {dict(ds.sizes)}; the contract needs 'time', 'y', 'x' (rename them)")
    times = ds["time"].values
    if np.asarray(times).dtype.kind != "M":
        try:
            ds = ds.assign_coords(time=pd.to_datetime(np.asarray(times).astype(str)).values.astype("datetime64[ns]"))
        except (ValueError, TypeError) as exc:
            raise CubeError(f"{source}: the time axis ({np.asarray(times)[:2]} ...) cannot be parsed as dates; "
                            "store CF time units ('days since 1970-01-01') or ISO dates") from exc
    if getattr(ds["time"].dtype, "tz", None) is not None:  # pragma: no cover - tz-aware pandas index
        ds = ds.assign_coords(time=ds["time"].values.astype("datetime64[ns]"))
    return ds


def _orbits(ds: xr.Dataset, path: Path, option: str | None) -> tuple[np.ndarray, str]:
    """One orbit direction per acquisition and where it came from."""
    n = ds.sizes["time"]
    for name in ORBIT_NAMES:
        if name in ds.variables and "time" in ds[name].dims:
            values = np.array([str(v).strip().lower() for v in np.asarray(ds[name].values).tolist()])
            return values, f"variable {name!r}"
    for name in ORBIT_NAMES:
        if name in ds.attrs:
            return np.full(n, str(ds.attrs[name]).strip().lower()), f"attribute {name!r}"
    if option is not None:
        return np.full(n, option.strip().lower()), "option"
    tokens = set(re.split(r"[^A-Za-z]+", path.name.upper()))
    found = [o for o in ORBITS if o.upper() in tokens]
    if len(found) == 1:
        return np.full(n, found[0]), f"file name ({found[0].upper()})"
    raise CubeError(f"{path}: the S1 orbit direction is not recorded (no {'/'.join(ORBIT_NAMES[:3])} variable or attribute, "
                    "and the file name says neither ASCENDING nor DESCENDING); pass orbit='ascending'|'descending' "
                    "(--s1-orbit)")


def _read_part(path: PathLike, spec: SensorSpec | None, *, values: str | None, nodata: float | None,
               orbit: str | None, harmonized: bool | None) -> tuple[_Part, SensorSpec]:
    p = Path(path)
    source = str(p)
    raw = _standard_dims(_open_raw(p), source)
    crs = crs_of(raw)
    if crs is None:
        raise CubeError(f"cube {source} has no CRS: set attrs['crs'] (e.g. 'EPSG:32630') or a grid_mapping/spatial_ref variable")
    if crs.is_geographic:
        raise CubeError(f"cube {source} is on a geographic grid ({crs_string(crs)}, degrees); the package needs metres: "
                        "reproject and resample it to its UTM zone at 10 m first")
    attrs = dict(raw.attrs)
    cubes = [str(v) for v in raw.data_vars if {"time", "y", "x"} <= set(raw[v].dims)]
    spec = spec or detect_sensor(cubes, attrs)
    if spec is None:
        raise CubeError(f"cube {source}: no band name of a known sensor among {cubes}; accepted names are e.g. "
                        f"{', '.join(get_sensor('s2').accepted_names()[:6])} (S2), {', '.join(get_sensor('s1').accepted_names())} (S1)")
    declared = detect_sensor([], attrs) if attrs.get("sensor") else None
    if declared is not None and declared.key != spec.key:
        raise CubeError(f"cube {source} has sensor={attrs['sensor']!r} ({declared.name}) but a {spec.name} cube was "
                        "expected; pass the right file")
    ren = rename_map(spec, cubes)
    if not ren:
        other = detect_sensor(cubes)
        looks = f" (it looks like a {other.name} cube)" if other is not None and other.key != spec.key else ""
        raise CubeError(f"cube {source} holds none of the {spec.name} bands: found {cubes}{looks}; accepted names are "
                        f"e.g. {', '.join(spec.accepted_names())} (case, product prefixes and _10m suffixes are ignored)")
    out = xr.Dataset(coords={"time": raw["time"].values, "y": raw["y"].values, "x": raw["x"].values})
    rules: dict[str, str] = {}
    for name, canonical in ren.items():
        band = spec.band(canonical)
        da, kind, rule = decode_band(raw[name].transpose("time", "y", "x"), band, spec, file_attrs=attrs, values=values,
                                     nodata=nodata, source=source)
        if spec.key == "s2" and kind == "dn":
            removed, why = baseline_offset_removed(attrs, harmonized)
            if not removed:
                da = sentinel2.remove_baseline_offset(da)
            rule = f"{rule}; {why}"
        out[canonical] = da.drop_vars([c for c in da.coords if c not in ("time", "y", "x")])
        rules.setdefault(band.role, rule)
    if "valid" in raw.data_vars and {"time", "y", "x"} <= set(raw["valid"].dims):
        out["valid"] = raw["valid"].transpose("time", "y", "x").fillna(0).astype(bool)
    if spec.key == "s1":
        orbits, why = _orbits(raw, p, orbit)
        bad = sorted(set(orbits) - set(ORBITS))
        if bad:
            raise CubeError(f"{source}: orbit values {bad} are not 'ascending'/'descending'")
        out = out.assign_coords(orbit=("time", orbits))
        rules["orbit"] = why
    dropped = [str(v) for v in raw.data_vars if str(v) not in ren and v != "valid"]
    out.attrs = {"crs": crs_string(crs), "sensor": spec.name, "synthetic": _bool_attr(attrs.get("synthetic", False))}
    for key in ("seed", "enl", "name", "tower_lat", "tower_lon", "title"):
        if key in attrs:
            out.attrs[key] = attrs[key]
    out.encoding["source"] = source
    return _Part(out, grid_of(out, source=source), source, rules, dropped), spec


def _bool_attr(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes")
    return bool(int(v)) if isinstance(v, (int, float, np.integer, np.floating, bool, np.bool_)) else bool(v)


def _onto(part: _Part, grid: Grid, spec: SensorSpec, what: str, reference: str) -> xr.Dataset:
    """A part on the target grid (resampled if it nests, refused if not)."""
    if part.grid.same_as(grid):
        return part.ds
    require_nesting(part.grid, grid, what=what, reference=reference)
    out = xr.Dataset(coords={"time": part.ds["time"].values, **{k: v[1] for k, v in grid_coords(grid).items()}},
                     attrs=dict(part.ds.attrs))
    if "orbit" in part.ds.coords:
        out = out.assign_coords(orbit=("time", part.ds["orbit"].values))
    for name in part.ds.data_vars:
        da = part.ds[name]
        if name == "valid" or spec.band(str(name)).role == "mask":
            out[name] = resample_to(da, grid, "nearest")
        elif spec.band(str(name)).role == "backscatter":  # average intensities, not decibels
            out[name] = linear_to_db(resample_to(db_to_linear(da), grid, "linear")).astype(np.float32)
        else:
            out[name] = resample_to(da, grid, "linear").astype(np.float32)
    return out.transpose("time", "y", "x")


def open_cube(paths: PathLike | Sequence[PathLike], sensor: str | None = None, *, bands: Sequence[str] | None = None,
              like: xr.Dataset | None = None, values: str | None = None, nodata: float | None = None,
              orbit: str | None = None, harmonized: bool | None = None, validate: bool = True,
              point: tuple[float, float] | None = None) -> xr.Dataset:
    """Open one or several NetCDF (``.nc``) / Zarr (``.zarr``) files of one sensor as one contract cube.

    Point tables (``.csv``/``.parquet``, one row per acquisition, :mod:`ecoembed.sources.points`)
    open as a 1 x 1 cube at ``point`` (lat, lon in WGS84 degrees) or at the table's own
    lat/lon columns.

    Data stay lazy (dask) until used; only the contract checks read them.

    Args:
        paths: a file, or the files of one sensor to merge (e.g. an S2 10 m and an S2 20 m file).
        sensor: ``"s2"``, ``"s1"``, ``"landsat"`` or any registered name/alias; default from the files.
        bands: bands that must be present (default: the sensor's required bands).
        like: put the cube on this cube's grid (it must nest), e.g. S1 onto the S2 grid.
        values: what the numbers are when metadata cannot say (``reflectance``/``dn``, ``db``/``linear``).
        nodata: an extra fill value to mask.
        orbit: S1 orbit direction for files that do not record it.
        harmonized: S2 digital numbers already have the processing-baseline offset removed
            (default: from the product conventions, else no).
        validate: run the contract checks.
        point: (lat, lon) of a point table without position columns.

    Raises:
        InputError: a path does not exist; a point table without a position.
        CubeError: unreadable file, unknown bands, a grid in degrees or not nesting, unparsable time,
            missing required bands, or any other break of the contract (the message names the file).
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise InputError("open_cube needs at least one file")
    if any(is_point_table(p) for p in items):
        return _open_point_tables(items, sensor, values=values, nodata=nodata, harmonized=harmonized, point=point,
                                  validate=validate)
    spec = get_sensor(sensor) if sensor else None
    parts: list[_Part] = []
    for item in items:
        part, spec = _read_part(item, spec, values=values, nodata=nodata, orbit=orbit, harmonized=harmonized)
        parts.append(part)
    assert spec is not None
    names = ", ".join(p.source for p in parts)
    if like is not None:
        target = grid_of(like, source="the reference cube")
        reference = str(like.encoding.get("source", "the reference cube"))
    else:
        finest = min(parts, key=lambda q: q.grid.resolution_m)
        target = subdivide(finest.grid) if finest.grid.resolution_m > TARGET_RESOLUTION_M else finest.grid
        reference = finest.source
        if target.resolution_m > TARGET_RESOLUTION_M and not nests(finest.grid, subdivide(finest.grid)):
            raise CubeError(f"{finest.source}: pixel size {finest.grid.resolution_m:g} m is not a multiple of 10 m")
    on_grid = [_onto(p, target, spec, what=p.source, reference=reference) for p in parts]
    seen: dict[str, str] = {}
    for part, ds in zip(parts, on_grid, strict=True):
        for name in ds.data_vars:
            if name != "valid" and name in seen:
                raise CubeError(f"band {name} is in both {seen[name]} and {part.source}; give each band once")
            seen[str(name)] = part.source
    merged = xr.merge(on_grid, join="outer", compat="override", combine_attrs="override") if len(on_grid) > 1 else on_grid[0]
    merged = _with_validity(merged, spec, parts)
    merged.attrs.update({
        "resolution_m": target.resolution_m,
        "synthetic": any(bool(p.ds.attrs.get("synthetic", False)) for p in parts),
        "bands": ",".join(b for b in spec.band_names if b in merged.data_vars),
        "values": "; ".join(dict.fromkeys(f"{k}: {v}" for p in parts for k, v in p.rules.items())),
        "merged_from": names,
    })
    dropped = sorted({d for p in parts for d in p.dropped})
    if dropped:
        merged.attrs["dropped_variables"] = ",".join(dropped)
    merged.encoding["source"] = names
    missing = spec.missing_required([b for b in spec.band_names if b in merged.data_vars])
    if missing:
        need = " and ".join("/".join(g) for g in missing)
        raise CubeError(f"cube {names} has no {need} band: a {spec.name} cube needs at least "
                        f"{' and '.join('/'.join(g) for g in spec.required)} (it has {merged.attrs['bands'] or 'none'})")
    if validate:
        validate_cube(merged, spec.name, bands, source=names)
    return merged


def _with_validity(ds: xr.Dataset, spec: SensorSpec, parts: Sequence[_Part]) -> xr.Dataset:
    present = [b for b in spec.band_names if b in ds.data_vars]
    valid = xr.ones_like(ds[present[0]], dtype=bool) if present else None
    if valid is None:
        return ds
    for b in present:
        valid = valid & ds[b].notnull()
    how = ["every present band finite"]
    if "valid" in ds.data_vars:
        valid = valid & ds["valid"].fillna(0).astype(bool)
        how.append("the file's 'valid' mask")
    if spec.key == "s2":
        if "SCL" in ds.data_vars:
            valid = valid & sentinel2.scl_valid(ds["SCL"].fillna(0))
            how.append("SCL classes " + "/".join(map(str, sentinel2.SCL_INVALID)) + " invalid")
        else:
            spectral, rule = sentinel2.spectral_validity(ds)
            valid = valid & spectral
            how.append(f"no SCL: {rule}")
    ds = ds.drop_vars("valid", errors="ignore")
    ds["valid"] = valid.transpose("time", "y", "x")
    ds["valid"].attrs = {"long_name": "valid observation", "derived": "; ".join(how)}
    ds.attrs["validity"] = "; ".join(how)
    return ds


def _open_point_tables(items: Sequence[PathLike], sensor: str | None, *, values: str | None, nodata: float | None,
                       harmonized: bool | None, point: tuple[float, float] | None, validate: bool) -> xr.Dataset:
    """:func:`open_cube` for point tables: one 1 x 1 cube (several tables of one site merged on dates)."""
    if not all(is_point_table(p) for p in items):
        raise InputError(f"{', '.join(map(str, items))}: point tables and cube files cannot be merged; give one kind")
    lat, lon = point if point is not None else (None, None)
    cubes = []
    for item in items:
        if not Path(item).exists():
            raise InputError(f"{item} does not exist")
        try:
            cubes.append(point_cube(item, lat=lat, lon=lon, sensor=sensor, values=values, nodata=nodata, harmonized=harmonized))
        except InputError as exc:
            if "no position" in str(exc):
                raise InputError(f"{item} is a point table without lat/lon columns; give the site's position "
                                 "(--lat/--lon, or lat/lon in sites.csv)") from None
            raise
    ds = merge_point_cubes(cubes)
    if validate:
        validate_cube(ds, source=", ".join(map(str, items)))
    return ds


@dataclass(frozen=True)
class CubeRequest:
    """What to open as one sensor cube (picklable: block tasks of a cluster carry it instead of arrays).

    Attributes:
        paths: the files of the sensor (resolved).
        sensor: sensor key or name.
        values, nodata, orbit: as :func:`open_cube`.
        like: the request whose grid this cube is put on (S1 onto the S2 grid), or None.
    """

    paths: tuple[str, ...]
    sensor: str
    values: str | None = None
    nodata: float | None = None
    orbit: str | None = None
    like: CubeRequest | None = None
    point: tuple[float, float] | None = None

    @classmethod
    def of(cls, paths: PathLike | Sequence[PathLike], sensor: str, **options: Any) -> CubeRequest:
        """A request for ``paths`` (one or several files), resolved to absolute paths."""
        items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        return cls(tuple(str(Path(p).resolve()) for p in items), sensor, **options)

    def open(self, like: xr.Dataset | None = None) -> xr.Dataset:
        """:func:`open_cube` of this request (``like``: the opened reference cube, when :attr:`like` is set)."""
        return open_cube(list(self.paths), self.sensor, values=self.values, nodata=self.nodata, orbit=self.orbit, like=like,
                         point=self.point)

    def describe(self) -> str:
        """The files, comma-separated (for attributes and messages)."""
        return ",".join(self.paths)


def save_cube(ds: xr.Dataset, path: PathLike, *, overwrite: bool = True) -> Path:
    """Write a contract cube to ``.nc`` or ``.zarr`` atomically (temporary beside it, then renamed).

    Boolean attributes are stored as 0/1 (NetCDF has no bool attributes) and
    converted back by :func:`open_cube`.
    """
    target = Path(path)
    if target.suffix not in (".nc", ".zarr"):
        raise InputError(f"cube output {target} must end in .nc or .zarr")
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} exists; pass overwrite=True to replace it")
    out = ds.copy()
    out.attrs = {k: (int(v) if isinstance(v, (bool, np.bool_)) else v) for k, v in ds.attrs.items() if v is not None}
    for v in out.variables:
        out[v].encoding = {k: val for k, val in out[v].encoding.items() if k in ("dtype", "units", "calendar", "_FillValue")}
        if v == "time":
            out[v].encoding = {"units": "seconds since 1970-01-01", "dtype": "int64"}
    if "orbit" in out.coords and target.suffix == ".zarr":  # variable-length strings (fixed UTF-32 has no Zarr v3 spec)
        out = out.assign_coords(orbit=("time", np.asarray(out["orbit"].values).astype(object)))
    with atomic_path(target) as tmp:
        if target.suffix == ".nc":
            comp = {v: {"zlib": True, "complevel": 1} for v in out.data_vars}
            out.to_netcdf(tmp, encoding=comp)
        else:
            out.to_zarr(tmp, mode="w", consolidated=False)
    return target
