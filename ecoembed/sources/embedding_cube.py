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

int8 storage (TESSERA-style): with ``embedding_encoding == "int8_scaled"``
each (pixel, day) vector is stored as ``round(e / s)`` in int8 with
``s = max|e| / 127`` in the float32 variable ``embedding_scale`` (time, y, x);
:func:`open_embeddings` decodes it back to float transparently (max abs error
``s / 2`` per component).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from ecoembed.dates import from_days
from ecoembed.errors import CubeError
from ecoembed.sources.cf import georeference

INT8_ENCODING = "int8_scaled"
"""``embedding_encoding`` of cubes stored as int8 with a per-vector scale."""
FLOAT_ENCODING = "float32"
"""``embedding_encoding`` of cubes stored as float32."""
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


def decode_int8(quantised: xr.DataArray, scale: xr.DataArray) -> xr.DataArray:
    """Inverse of :func:`encode_int8` on (lazy) arrays: int8 ``[..., feature]`` x ``[...]`` scales -> float32 (NaN where scale is NaN)."""
    return quantised.astype("float32") * scale


def embedding_template(s2: xr.Dataset, days: np.ndarray, embed_dim: int, chunk_px: int, days_per_chunk: int, int8: bool,
                       attrs: dict[str, Any]) -> xr.Dataset:
    """A lazy, all-zero embedding cube on the S2 cube's grid, georeferenced (CF-1.8).

    ``embedding`` has dims :data:`STORED_DIMS` ``(time, feature, y, x)``, chunked
    ``(days_per_chunk, E, chunk_px, chunk_px)``; ``embedding_scale`` (int8) and the
    quality layers are ``(time, y, x)``, chunked ``(days_per_chunk, chunk_px, chunk_px)``.
    Written with ``to_zarr(compute=False)`` it lays out the store that block
    tasks then fill with region writes.

    Raises:
        CubeError: the S2 cube has no CRS or an irregular grid (it cannot be georeferenced).
    """
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
    """Open an embedding cube (.zarr or .nc) lazily; int8 storage is decoded to float32.

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
    elif ds["embedding"].dims != LEGACY_DIMS:
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
