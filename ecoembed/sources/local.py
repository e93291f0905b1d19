"""Local NetCDF / Zarr sensor cubes: open into the cube contract, save atomically.

:func:`open_cube` adapts common layouts to the contract: a ``t`` time dim,
CRS in a ``grid_mapping``/``spatial_ref`` variable (``crs_wkt``), Sentinel-2
bands stored as L2A digital numbers (converted with
:func:`~ecoembed.sensors.sentinel2.dn_to_reflectance`), float SCL with NaN,
S1 in linear power, and boolean attributes stored as 0/1 in NetCDF.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr
from pyproj import CRS

from ecoembed.errors import CubeError, InputError, OutputExistsError
from ecoembed.io_utils import atomic_path
from ecoembed.sensors.cube import RESOLUTION_M, canonical_sensor, infer_sensor, validate_cube
from ecoembed.sensors.sentinel1 import S1_POLARISATIONS, linear_to_db
from ecoembed.sensors.sentinel2 import S2_BANDS, dn_to_reflectance, scl_valid

_BOOL_ATTRS = ("synthetic",)
_TIME_NAMES = ("t", "date", "datetime", "times")
_CONTRACT_VARS = {*S2_BANDS, *S1_POLARISATIONS, "valid", "SCL"}


def _crs_from(ds: xr.Dataset) -> str | None:
    """``attrs['crs']`` or the CRS of a grid_mapping / spatial_ref / crs variable, as ``"EPSG:n"`` (or WKT)."""
    if ds.attrs.get("crs"):
        return str(ds.attrs["crs"])
    candidates = [str(ds[v].attrs["grid_mapping"]) for v in ds.data_vars if "grid_mapping" in ds[v].attrs]
    candidates += [c for c in ("spatial_ref", "crs") if c in ds.variables]
    for name in candidates:
        if name not in ds.variables:
            continue
        attrs = ds[name].attrs
        wkt = attrs.get("crs_wkt") or attrs.get("spatial_ref")
        if wkt:
            try:
                crs = CRS.from_user_input(wkt)
                epsg = crs.to_epsg()
                return f"EPSG:{epsg}" if epsg else crs.to_wkt()
            except Exception:
                return None
        if "epsg_code" in attrs:
            return str(attrs["epsg_code"])
    return None


def _looks_like_dn(da: xr.DataArray) -> bool:
    """True for S2 bands stored as L2A digital numbers (integer dtype, or float > 2 without reflectance units)."""
    if da.dtype.kind in "iu":
        return True
    if str(da.attrs.get("units", "")).strip() in ("1", "reflectance"):
        return False
    return bool(da.max(skipna=True) > 2.0)


def adapt_cube(ds: xr.Dataset, sensor: str | None = None, *, source: str = "cube") -> xr.Dataset:
    """Rename, rescale and mask a loosely formatted cube into the contract (not yet validated)."""
    ds = ds.copy()
    ds.attrs = dict(ds.attrs)
    if "time" not in ds.dims:
        for alt in _TIME_NAMES:
            if alt in ds.dims:
                ds = ds.rename({alt: "time"})
                break
    for key in _BOOL_ATTRS:
        if key in ds.attrs:
            v = ds.attrs[key]
            ds.attrs[key] = bool(int(v)) if not isinstance(v, str) else v.strip().lower() in ("1", "true", "yes")
    ds.attrs.setdefault("synthetic", False)
    crs = _crs_from(ds)
    if crs:
        ds.attrs["crs"] = crs
    sensor = canonical_sensor(sensor) if sensor else infer_sensor(ds)
    if sensor:
        ds.attrs.setdefault("sensor", sensor)
    ds.attrs.setdefault("resolution_m", RESOLUTION_M)
    # drop non-contract data variables (grid mapping, derived products such as NDVI or CLM)
    extra = [v for v in ds.data_vars if v not in _CONTRACT_VARS]
    if extra:
        ds = ds.drop_vars(extra)
        ds.attrs["dropped_variables"] = ",".join(map(str, extra))
    if "time" not in ds.dims:
        return ds
    if "orbit" in ds.coords:  # Zarr v3 returns variable-length strings (StringDType/object); use plain str
        ds = ds.assign_coords(orbit=(ds["orbit"].dims, np.array([str(o) for o in np.asarray(ds["orbit"].values).tolist()])))
    if sensor == "sentinel-2-l2a":
        for b in S2_BANDS:
            if b in ds and _looks_like_dn(ds[b]):
                ds[b] = dn_to_reflectance(ds[b].rename(b))
                ds.attrs["converted_from"] = "L2A digital numbers (scale 1e-4, baseline 04.00 offset -1000 DN from 2022-01-25)"
        if "SCL" in ds:
            scl = ds["SCL"]
            if scl.dtype.kind == "f":
                scl = scl.fillna(0)
            ds["SCL"] = scl.astype(np.uint8)
    elif sensor == "sentinel-1-grd":
        for p in S1_POLARISATIONS:
            if p in ds and str(ds[p].attrs.get("units", "")).lower() in ("linear", "1", "power", "linear power"):
                ds[p] = linear_to_db(ds[p])
    if "valid" in ds:
        ds["valid"] = ds["valid"].fillna(0).astype(bool) if ds["valid"].dtype.kind == "f" else ds["valid"].astype(bool)
    else:
        bands = [b for b in (*S2_BANDS, *S1_POLARISATIONS) if b in ds]
        valid = xr.ones_like(ds[bands[0]], dtype=bool) if bands else None
        if valid is not None:
            for b in bands:
                valid = valid & ds[b].notnull()
            if "SCL" in ds:
                valid = valid & scl_valid(ds["SCL"])
            ds["valid"] = valid.transpose("time", "y", "x")
            ds["valid"].attrs = {"long_name": "valid observation", "derived": "finite bands" + (" and SCL" if "SCL" in ds else "")}
    return ds


NETCDF_CHUNK_CACHE_BYTES = 8 * 2**20
"""HDF5 chunk cache per NetCDF variable (netCDF-C's default, 64 MB, kept whole bands of a
256 px S2 year resident: peak RSS grew with the scene)."""


def _limit_netcdf_chunk_cache() -> None:
    """Lower netCDF-C's per-variable chunk cache to :data:`NETCDF_CHUNK_CACHE_BYTES` (process-wide, never raises it)."""
    size, nelems, preemption = netCDF4.get_chunk_cache()
    if size > NETCDF_CHUNK_CACHE_BYTES:
        netCDF4.set_chunk_cache(NETCDF_CHUNK_CACHE_BYTES, nelems, preemption)


def open_cube(path: str | os.PathLike[str], sensor: str | None = None, *, bands: Sequence[str] | None = None,
              allow_missing: bool = False, validate: bool = True) -> xr.Dataset:
    """Open a NetCDF (``.nc``) or Zarr (``.zarr``) sensor cube in the contract form.

    Data stay lazy (dask) until used; only the checks of
    :func:`~ecoembed.sensors.cube.validate_cube` read them.

    Args:
        path: the cube file/store.
        sensor: ``"sentinel-2-l2a"``/``"sentinel-1-grd"`` (or s2/s1); default from the file.
        bands: bands that must be present (default all of the sensor's).
        allow_missing: accept a subset of the sensor's bands (e.g. the real B04/B08 cube).
        validate: run the contract checks.

    Raises:
        CubeError: unreadable file or a cube that breaks the contract (message names the file).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"cube {p} does not exist")
    try:
        if p.suffix == ".zarr" or p.is_dir():
            ds = xr.open_zarr(p, consolidated=False, chunks={})
        else:
            _limit_netcdf_chunk_cache()
            ds = xr.open_dataset(p, chunks={})
    except CubeError:
        raise
    except Exception as exc:
        raise CubeError(f"cannot read cube {p} as NetCDF/Zarr ({type(exc).__name__}: {str(exc)[:200]}); "
                        f"give a .nc or .zarr sensor cube") from None
    ds = adapt_cube(ds, sensor, source=str(p))
    ds.encoding["source"] = str(p)
    if validate:
        validate_cube(ds, sensor, bands, allow_missing=allow_missing, source=str(p))
    return ds


def save_cube(ds: xr.Dataset, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
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
