"""The embedding cube contract: layout, int8 storage codec, and reading.

An embedding cube is an ``xarray.Dataset`` with variable ``embedding`` of
dims ``(time, y, x, feature)`` (as :func:`open_embeddings` returns it): daily
``time``, the S2 cube's ``x``/``y`` grid and ``crs``, and attrs naming the
model checkpoint (``checkpoint_sha256``, ``model``), ``synthetic``,
``modalities`` and ``embedding_encoding``.

Stored layout: ``embedding`` is stored as ``(time, feature, y, x)``
(:data:`STORED_DIMS`, attr ``embedding_dims``) and the cube is georeferenced
after CF-1.8 (:func:`ecoembed.sources.cf.georeference`), so GDAL/QGIS/rasterio
read ``netcdf:<file>:embedding`` as a raster on the S2 cube's CRS and grid
with ``time x feature`` bands (GDAL needs ``y``, ``x`` last). Cubes written
before that, stored ``(time, y, x, feature)`` (:data:`LEGACY_DIMS`), are
still read; :func:`open_embeddings` returns both as ``(time, y, x, feature)``.

Storage encodings (attr ``embedding_encoding``; :data:`ENCODINGS`, chosen with
``ecoembed embed --encoding``), all decoded by :func:`open_embeddings` to float32:

* ``int16`` (the default, :data:`INT16_ENCODING`): CF-packed int16,
  ``embedding = stored * scale_factor`` with the fixed quantisation step
  :data:`INT16_STEP` = 1/32 (attrs ``scale_factor``, ``_FillValue`` = -32768 = NaN),
  so any CF reader (xarray, netCDF4, GDAL's scale/offset) decodes it without
  ecoembed. Max abs error per component: half a step, 1/64 = 0.015625
  (values beyond +-1023.97 would be clipped; LayerNorm-based embeddings are
  orders of magnitude smaller). 25.0 bytes per pixel-day with E = 64 (0.091 GB
  per km2 per year at 10 m), against 193.9 for float32 and 34.3 for ``int8``, on a
  128 x 128 px one-year synthetic scene (``experiments/bench_cube_size.py``).
* ``int8`` (:data:`INT8_ENCODING`, TESSERA-style): each (pixel, day) vector
  stored as ``round(e / s)`` in int8 with ``s = max|e| / 127`` in the float32
  variable ``embedding_scale`` (time, y, x); max abs error ``s / 2`` per
  component (relative to the vector's largest component). Bigger than ``int16``
  once compressed: the per-day scale breaks the smoothness along time.
* ``float32`` (:data:`FLOAT_ENCODING`): lossless.

Compression (attr ``embedding_codec``, :data:`ZARR_CODEC`): in Zarr (v3) every
variable is stored with the core codecs ``transpose`` (time the fastest axis
inside a chunk: daily embeddings change little from day to day, so the bytes
zstd sees come in long, slowly varying runs) and ``blosc`` (zstd level 3, byte
shuffle, 1 MiB blocks), which any Zarr v3 reader decodes; no numcodecs-only
filter is used. NetCDF outputs (:func:`netcdf_encoding`) use zlib with shuffle
(HDF5 has no transpose; every netCDF-4 reader decodes it), so they are larger.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from ecoembed.dates import from_days
from ecoembed.errors import CubeError, InputError
from ecoembed.sources.cf import georeference

INT8_ENCODING = "int8_scaled"
"""``embedding_encoding`` of cubes stored as int8 with a per-vector scale."""
FLOAT_ENCODING = "float32"
"""``embedding_encoding`` of cubes stored as float32."""
INT16_STEP = 1.0 / 32.0
"""Quantisation step of the ``int16`` encoding (its CF ``scale_factor``); decode error <= INT16_STEP / 2 per component."""
INT16_ENCODING = "int16_step_0.03125"
"""``embedding_encoding`` of cubes stored as CF-packed int16 with ``scale_factor`` :data:`INT16_STEP`."""
INT16_FILL = -32768
"""Stored int16 value of NaN (``_FillValue``) in the ``int16`` encoding."""
ENCODINGS: dict[str, str] = {"int16": INT16_ENCODING, "int8": INT8_ENCODING, "float32": FLOAT_ENCODING}
"""``--encoding`` choice -> ``embedding_encoding`` attr."""
DEFAULT_ENCODING = "int16"
"""The default ``--encoding``: the smallest cube within 1/64 per component of float32 (<= 0.1 GB per km2 per year)."""
MAX_ABS_ERROR: dict[str, str] = {"int16": "0.015625 (INT16_STEP / 2)", "int8": "embedding_scale / 2 (per pixel-day)", "float32": "0"}
"""Max abs decode error per component of each encoding, in words (also stored as attr ``embedding_max_abs_error``)."""
ZARR_CODEC = "zarr v3: transpose (time fastest) + blosc zstd clevel 3 shuffle, 1 MiB blocks"
"""``embedding_codec`` of stores written with :func:`zarr_encoding` (``compact=True``)."""
BOOL_ATTRS: tuple[str, ...] = ("synthetic", "complete", "model_trained_on_synthetic", "extrapolation_allowed")
"""Attributes stored as 0/1 in NetCDF and turned back into booleans on reading."""
QUALITY_LAYERS: tuple[str, ...] = ("days_to_s2", "days_to_s1")
"""Per-day quality layers (time, y, x): days from each day to the pixel's nearest valid observation of a sensor."""
NO_OBSERVATION = 32767
"""Value of a quality layer where the pixel has no valid observation of that sensor (int16 maximum)."""
STORED_DIMS: tuple[str, ...] = ("time", "feature", "y", "x")
"""Dims of ``embedding`` as stored (spatial dims last, as GDAL reads rasters)."""
LEGACY_DIMS: tuple[str, ...] = ("time", "y", "x", "feature")
"""Dims of ``embedding`` in cubes written before :data:`STORED_DIMS`; also the dims :func:`open_embeddings` returns."""


def encode_int8(embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantise ``[..., E]`` float embeddings to int8 with a per-vector scale (NaN vectors -> 0, scale NaN)."""
    finite = np.isfinite(embedding).all(axis=-1)
    safe = np.where(finite[..., None], embedding, 0.0)
    amax = np.abs(safe).max(axis=-1, initial=0.0)
    scale = np.where(finite, np.maximum(amax, 1e-12) / 127.0, np.nan).astype(np.float32)
    safe = safe / np.where(finite, scale, 1.0)[..., None]
    q = np.clip(np.rint(safe), -127, 127).astype(np.int8)
    return q, scale


def encode_int16(embedding: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """Quantise float embeddings to int16 steps of :data:`INT16_STEP` (NaN/inf -> :data:`INT16_FILL`; clipped to +-32767 steps).

    ``inplace=True`` uses a C-contiguous float32 ``embedding`` as the work buffer (its values are overwritten): no float
    temporaries the size of the input.
    """
    bad = ~np.isfinite(embedding)
    work = embedding if inplace and embedding.dtype == np.float32 and embedding.flags.c_contiguous else \
        np.array(embedding, dtype=np.float32, order="C")
    work[bad] = 0.0
    np.multiply(work, np.float32(1.0 / INT16_STEP), out=work)
    np.rint(work, out=work)
    np.clip(work, -32767, 32767, out=work)
    q = work.astype(np.int16)
    q[bad] = INT16_FILL
    return q


def check_encoding(encoding: str) -> str:
    """The ``embedding_encoding`` attr of an ``--encoding`` choice.

    Raises:
        InputError: unknown choice.
    """
    if encoding not in ENCODINGS:
        raise InputError(f"unknown embedding encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    return ENCODINGS[encoding]


def zarr_encoding(ds: xr.Dataset, compact: bool = True) -> dict[str, dict[str, Any]]:
    """``to_zarr(encoding=...)`` of an embedding cube from :func:`embedding_template` (Zarr v3).

    ``compact``: the codecs of :data:`ZARR_CODEC` on every (time, ...) variable; ``False`` keeps
    xarray's default (zstd level 0, time slowest; how cubes were stored before, for comparisons).
    """
    from zarr.codecs import BloscCodec, TransposeCodec

    out: dict[str, dict[str, Any]] = {}
    for name, var in ds.data_vars.items():
        if "time" not in var.dims:
            continue
        enc: dict[str, Any] = dict(var.encoding)  # to_zarr's encoding replaces the variable's (the int16 CF packing)
        if compact:
            fastest_time = (*range(1, var.ndim), 0)  # dims[0] is time
            enc["filters"] = [TransposeCodec(order=fastest_time)]
            enc["compressors"] = [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", blocksize=1 << 20)]
        if name == "embedding":
            packed = np.dtype(enc.get("dtype", var.dtype))
            enc["fill_value"] = {np.dtype(np.int16): INT16_FILL, np.dtype(np.int8): None}.get(packed, np.nan)
        out[str(name)] = enc
    return out


def netcdf_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """``to_netcdf(encoding=...)`` of an embedding cube opened from its work store: zlib + shuffle, the store's chunks.

    ``int16`` cubes stay CF-packed int16 (``scale_factor``, ``_FillValue``) and ``int8`` ones int8 + scale.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, var in ds.data_vars.items():
        if "time" not in var.dims:
            continue
        enc: dict[str, Any] = {"zlib": True, "complevel": 4, "shuffle": True}
        chunks = var.encoding.get("chunks") or var.encoding.get("preferred_chunks")
        if isinstance(chunks, tuple) and len(chunks) == var.ndim:
            enc["chunksizes"] = tuple(min(int(c), int(n)) for c, n in zip(chunks, var.shape, strict=True))
        if name == "embedding" and ds.attrs.get("embedding_encoding") == INT16_ENCODING:
            enc.update(dtype="int16", scale_factor=np.float32(INT16_STEP), _FillValue=np.int16(INT16_FILL))
        out[str(name)] = enc
    return out


def decode_int8(quantised: xr.DataArray, scale: xr.DataArray) -> xr.DataArray:
    """Inverse of :func:`encode_int8` on (lazy) arrays: int8 ``[..., feature]`` x ``[...]`` scales -> float32 (NaN where scale is NaN)."""
    return quantised.astype("float32") * scale


def embedding_template(s2: xr.Dataset, days: np.ndarray, embed_dim: int, chunk_px: int, days_per_chunk: int, encoding: str,
                       attrs: dict[str, Any]) -> xr.Dataset:
    """A lazy, all-zero embedding cube on the S2 cube's grid, georeferenced (CF-1.8).

    ``embedding`` has dims :data:`STORED_DIMS` ``(time, feature, y, x)``, chunked
    ``(days_per_chunk, E, chunk_px, chunk_px)``; ``embedding_scale`` (``int8`` encoding) and the
    quality layers are ``(time, y, x)``, chunked ``(days_per_chunk, chunk_px, chunk_px)``.
    ``encoding`` is an ``--encoding`` choice (:data:`ENCODINGS`); the ``int16`` packing is in
    ``embedding``'s ``.encoding`` (CF ``scale_factor``, ``_FillValue``). Written with
    ``to_zarr(compute=False, encoding=zarr_encoding(template))`` it lays out the store that
    block tasks then fill with region writes (of stored values: :func:`encode_int16`, :func:`encode_int8`).

    Raises:
        CubeError: the S2 cube has no CRS or an irregular grid (it cannot be georeferenced).
    """
    check_encoding(encoding)
    int8 = encoding == "int8"
    ny, nx, nt = s2.sizes["y"], s2.sizes["x"], len(days)
    plane, plane_chunks = (nt, ny, nx), (days_per_chunk, chunk_px, chunk_px)
    data_vars: dict[str, Any] = {
        "embedding": (STORED_DIMS, da.zeros((nt, embed_dim, ny, nx), chunks=(days_per_chunk, embed_dim, chunk_px, chunk_px),
                                            dtype=np.int8 if int8 else np.float32))
    }
    if int8:
        data_vars["embedding_scale"] = (("time", "y", "x"), da.zeros(plane, chunks=plane_chunks, dtype=np.float32))
    for layer in QUALITY_LAYERS:
        filled = da.full(plane, NO_OBSERVATION, chunks=plane_chunks, dtype=np.int16)  # type: ignore[no-untyped-call]
        data_vars[layer] = (("time", "y", "x"), filled)
    coords = {"time": from_days(days), "y": s2["y"].values, "x": s2["x"].values, "feature": np.arange(embed_dim)}
    ds = xr.Dataset(data_vars, coords=coords, attrs={**attrs, "embedding_dims": " ".join(STORED_DIMS)})
    ds["embedding"].attrs = {"long_name": "fused daily embedding", "units": "1"}
    if encoding == "int16":
        ds["embedding"].encoding = {"dtype": "int16", "scale_factor": np.float32(INT16_STEP), "_FillValue": np.int16(INT16_FILL)}
    if int8:
        ds["embedding"].attrs["encoding"] = "embedding_float = embedding_int8 * embedding_scale"
        ds["embedding_scale"].attrs = {"long_name": "per-pixel-per-day int8 scale", "units": "1"}
    for layer in QUALITY_LAYERS:
        sensor = layer.rsplit("_", 1)[-1].upper()
        ds[layer].attrs = {"long_name": f"days to the nearest valid {sensor} observation of the pixel", "units": "days",
                           "no_observation": NO_OBSERVATION}
    for c in ("x", "y"):
        ds[c].attrs = dict(s2[c].attrs)
    ds["feature"].attrs = {"long_name": "embedding component"}
    return georeference(ds, str(attrs.get("crs") or "") or None)


def open_embeddings(path: str | os.PathLike[str]) -> xr.Dataset:
    """Open an embedding cube (.zarr or .nc) lazily; ``embedding`` comes back float32 whatever the encoding.

    ``int16`` cubes are CF-decoded (NaN where stored -32768), ``int8`` ones multiplied by
    their per-pixel-day scale; attr ``embedding_encoding`` then ends in ``(decoded)``.

    Both stored layouts are read (:data:`STORED_DIMS` and the older
    :data:`LEGACY_DIMS`); ``embedding`` is always returned with dims
    ``(time, y, x, feature)``.

    Raises:
        CubeError: the file is not an embedding cube or was left unfinished.
    """
    p = Path(path)
    if not p.exists():
        raise CubeError(f"embedding cube {p} does not exist")
    try:
        ds = xr.open_zarr(p, consolidated=False) if p.suffix == ".zarr" else xr.open_dataset(p, engine="netcdf4", chunks={})
    except Exception as exc:
        raise CubeError(f"cannot open embedding cube {p}: {exc}") from exc
    if "embedding" not in ds or ds["embedding"].dims not in (STORED_DIMS, LEGACY_DIMS):
        raise CubeError(f"{p} has no variable 'embedding' with dims (time, feature, y, x) or (time, y, x, feature)")
    if not bool(ds.attrs.get("complete", True)):
        raise CubeError(f"embedding cube {p} is unfinished; re-run `ecoembed embed` with the same arguments to complete it")
    for key in BOOL_ATTRS:
        if key in ds.attrs:
            ds.attrs[key] = bool(ds.attrs[key])
    if ds.attrs.get("embedding_encoding") == INT8_ENCODING:
        decoded = decode_int8(ds["embedding"], ds["embedding_scale"])
        decoded.attrs = {k: v for k, v in ds["embedding"].attrs.items() if k != "encoding"}
        ds = ds.drop_vars("embedding_scale").assign(embedding=decoded.transpose(*LEGACY_DIMS))
        ds.attrs["embedding_encoding"] = f"{INT8_ENCODING} (decoded)"
    else:
        if ds.attrs.get("embedding_encoding") == INT16_ENCODING:  # xarray applied scale_factor/_FillValue (CF)
            ds.attrs["embedding_encoding"] = f"{INT16_ENCODING} (decoded)"
        if ds["embedding"].dtype != np.float32:  # CF decoding of a JSON scale_factor gives float64; q / 32 is exact in float32
            ds = ds.assign(embedding=ds["embedding"].astype(np.float32))
        if ds["embedding"].dims != LEGACY_DIMS:
            ds = ds.assign(embedding=ds["embedding"].transpose(*LEGACY_DIMS))
    return ds


def embedding_chip(cube_path: str | os.PathLike[str], *, n_dates: int = 8, max_px: int = 64,
                   variable: str = "embedding") -> tuple[np.ndarray, np.ndarray]:
    """Read ``n_dates`` evenly spaced dates of an embedding cube (centre crop of at most ``max_px``).

    Args:
        cube_path: embedding cube (.zarr or .nc) with ``variable`` of dims (time, y, x, feature) as
            :func:`open_embeddings` returns it (either stored layout).
        n_dates: dates to read, evenly spread over the cube's time axis.
        max_px: edge of the centre crop (pixels).

    Returns:
        ``(chip (n_dates, y, x, feature) float32, dates datetime64[D])``.

    Raises:
        CubeError: the file cannot be opened or lacks ``variable`` with those dims.
    """
    ds = open_embeddings(cube_path)  # CubeError on a bad file; int8 storage decoded lazily
    with ds:
        da = ds[variable].transpose("time", "y", "x", "feature")
        nt, ny, nx = da.sizes["time"], da.sizes["y"], da.sizes["x"]
        ti = np.unique(np.linspace(0, nt - 1, min(n_dates, nt)).round().astype(int))
        y0, x0 = max((ny - max_px) // 2, 0), max((nx - max_px) // 2, 0)
        sub = da.isel(time=ti, y=slice(y0, y0 + max_px), x=slice(x0, x0 + max_px))
        chip = np.asarray(sub.values, dtype=np.float32)
        dates = np.asarray(sub["time"].values).astype("datetime64[D]")
    return chip, dates
