"""Inference: sensor cubes -> daily 10 m embedding cube, chunked over space, resumable.

``embed(s2, out, s1=..., model=...)`` writes the embedding cube contract: an
``xarray.Dataset`` with variable ``embedding`` (stored ``(time, feature, y, x)``,
read back by :func:`~ecoembed.sources.embedding_cube.open_embeddings` as
``(time, y, x, feature)``), daily ``time``, the S2 cube's ``x``/``y``/``crs``
(CF-1.8 ``spatial_ref`` grid mapping: GDAL, QGIS and rioxarray find the CRS and
pixel grid), and attrs ``checkpoint_sha256``, ``model`` and ``synthetic``.

How it works, and why memory stays bounded
------------------------------------------
The scene is cut into spatial blocks of ``chunk_px x chunk_px`` pixels, which
are exactly the Zarr chunks in ``y``/``x`` of the output store. Each block is
one dask task that

1. opens the input cubes lazily (NetCDF/Zarr) and reads *only its own pixels*
   (``isel`` on a lazily indexed file: the rest of the scene is never loaded);
2. runs the frozen stage-1 encoders and the fusion network's *contextualise*
   step once per pixel, in batches of ``pixel_batch`` pixels;
3. queries the fused embedding for every day, ``days_per_chunk`` days at a
   time, and writes each ``(days_per_chunk, E, chunk_px, chunk_px)`` slab
   straight into its own Zarr chunk (a region write; no two tasks touch the
   same chunk, so no locks are needed);
4. writes a small completion marker (atomically, *after* its data).

So a task holds at most: its input series (``chunk_px² x T x C`` float32), the
contextualised tokens (``chunk_px² x L x d_model`` float32) and one output slab
(``days_per_chunk x chunk_px² x E``), independent of the scene size and of the
number of days. With the defaults (64 px, L ~ 150 tokens/yr, d_model 64,
64 days, E 64) that is ~ 25 + 160 + 70 MB per concurrently running block. Peak
memory is that times the number of concurrent tasks (threads/workers), plus the
model (< 5 MB); never the whole scene, never the whole output (it is on disk).

Resumability: a block is complete iff its marker exists *and* the values
stored for it still hash to the SHA-256 the marker recorded (re-read on every
resume: a chunk file deleted or truncated after the marker was written reads
as fill values or fails to decode, and the block is recomputed). Markers are
written after the block's data, so a crash leaves at worst a block without
marker, which the next run recomputes (overwriting the same chunks).
Re-running the same command skips verified blocks. An unfinished store written before the
``(time, feature, y, x)`` layout (no ``embedding_dims`` attr) is not resumed: it
counts as made with other settings (``overwrite`` replaces it; an unfinished
``.nc`` work store is replaced automatically). A ``.nc`` output is assembled from a
sibling working Zarr store at the end and renamed into place atomically.

Multi-machine: block tasks carry file paths (not arrays) and load the model
from the checkpoint path once per worker (and device), so they run on any
``dask.distributed`` cluster whose workers see the same file system: create a
``Client`` before calling :func:`embed` (it is picked up automatically), or
use :func:`scheduler_client` (``ecoembed embed --scheduler ADDRESS``). The
cube does not depend on where blocks ran: a block writes only its own chunks,
so one worker or many give the same bytes.

Device: ``device="cuda"`` (or ``"auto"``) puts each worker's model on its GPU;
where a worker has none it runs on the CPU with a warning. The devices used
are recorded in attr ``device``, which is not part of the resume key: a cube
resumed on another device is the same cube up to float rounding (~1e-6 in
float32, below the ``int16`` quantisation step).

Storage encodings (``encoding="int16"`` by default, ``"int8"``, ``"float32"``)
and codecs: see :mod:`ecoembed.sources.embedding_cube` (the cube contract, its
decode errors and :func:`~ecoembed.sources.embedding_cube.open_embeddings`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
import zarr
from dask.delayed import delayed
from tqdm.auto import tqdm

from ecoembed.dates import daily_range, from_days, to_days
from ecoembed.embed.infer import check_model_inputs, contextualize_pixels, days_to_nearest, empty_pixels, model_series, query_contexts
from ecoembed.errors import InputError, OutputExistsError
from ecoembed.io_utils import atomic_path, atomic_write_text, check_output_location
from ecoembed.sources.cf import georeference
from ecoembed.sources.chips import PixelSeries
from ecoembed.sources.embedding_cube import (
    DEFAULT_ENCODING,
    MAX_ABS_ERROR,
    NO_OBSERVATION,
    QUALITY_LAYERS,
    STORED_DIMS,
    ZARR_CODEC,
    check_encoding,
    embedding_template,
    encode_int8,
    encode_int16,
    netcdf_encoding,
    zarr_encoding,
)
from ecoembed.sources.local import CubeRequest, PathLike
from ecoembed.weights.fusion_checkpoint import LoadedModel, load_fusion_checkpoint
from ecoembed.weights.shipped import load_fusion_model

log = logging.getLogger(__name__)

DEVICES: tuple[str, ...] = ("cpu", "cuda", "auto")
"""``device`` choices: ``auto`` is ``cuda`` where a GPU is available, else ``cpu``."""
CUDA_FALLBACK = "CUDA was asked for but torch.cuda.is_available() is False here; embedding on the CPU"
"""The warning (one line) when ``device="cuda"`` falls back to the CPU."""
_WARNED_FALLBACK: list[bool] = []


def resolve_device(device: str) -> str:
    """The torch device a block runs on in this process: ``cpu`` or ``cuda`` (``cuda`` without a GPU falls back, warning once).

    Raises:
        InputError: ``device`` is not one of :data:`DEVICES`.
    """
    if device not in DEVICES:
        raise InputError(f"--device {device!r}: choose one of {', '.join(DEVICES)}")
    if device == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda" and not _WARNED_FALLBACK:
        log.warning(CUDA_FALLBACK)
        _WARNED_FALLBACK.append(True)
    return "cpu"


_MODEL_CACHE: dict[tuple[str, float, str], LoadedModel] = {}


def cached_model(path: str, device: str = "cpu") -> LoadedModel:
    """One model per worker process and device (block tasks carry the path, not the weights), placed on ``device``."""
    key = (path, os.path.getmtime(path), device)
    if key not in _MODEL_CACHE:
        _MODEL_CACHE.clear()
        loaded = load_fusion_checkpoint(path)
        loaded.model.to(device)
        _MODEL_CACHE[key] = loaded
    return _MODEL_CACHE[key]


@dataclass(frozen=True)
class _BlockJob:
    """Everything a worker needs for one spatial block (paths only, picklable)."""

    iy: int
    ix: int
    y0: int
    y1: int
    x0: int
    x1: int
    s2: CubeRequest
    s1: CubeRequest | None
    model_path: str
    store: str
    markers: str
    first_day: int
    n_days: int
    days_per_chunk: int
    pixel_batch: int
    encoding: str
    """An ``--encoding`` choice (``int16``, ``int8``, ``float32``)."""
    device: str = "cpu"
    """The requested device (:data:`DEVICES`); each worker resolves it (:func:`resolve_device`)."""


@dataclass
class BlockResult:
    """Outcome of one block (also the content of its completion marker)."""

    iy: int
    ix: int
    n_pixels: int
    n_empty: int
    sha256: str = ""
    """Digest of every value the block wrote, in write order (:func:`block_digest`); a resume re-reads and compares it."""
    device: str = ""
    """The torch device the block ran on (empty in markers written before devices were recorded)."""


def _block_slabs(job: _BlockJob, group: Any) -> Iterator[tuple[Any, tuple[slice, ...]]]:
    """(array, region) of every write of a block, in the order :func:`_run_block` writes them."""
    for d0 in range(0, job.n_days, job.days_per_chunk):
        d1 = min(job.n_days, d0 + job.days_per_chunk)
        region = (slice(d0, d1), slice(job.y0, job.y1), slice(job.x0, job.x1))
        yield group["embedding"], (slice(d0, d1), slice(None), slice(job.y0, job.y1), slice(job.x0, job.x1))
        if job.encoding == "int8":
            yield group["embedding_scale"], region
        for q in QUALITY_LAYERS:
            if q in group:
                yield group[q], region


def block_digest(job: _BlockJob, group: Any | None = None) -> str:
    """SHA-256 of a block's stored values (embedding, scale, quality layers), read back from the store.

    A chunk file that is missing reads as the fill value and one that is
    truncated fails to decode: either way the digest no longer matches the marker.
    """
    g = group if group is not None else zarr.open_group(job.store, mode="r")
    h = hashlib.sha256()
    for arr, region in _block_slabs(job, g):
        h.update(np.ascontiguousarray(arr[region]).tobytes())
    return h.hexdigest()


def _marker_holds(job: _BlockJob, marker: Path) -> BlockResult | None:
    """The marker's result when the block's stored values still match its digest, else None (recompute the block)."""
    try:
        result = BlockResult(**json.loads(marker.read_text(encoding="utf-8")))
        if result.sha256 and result.sha256 == block_digest(job):
            return result
    except Exception as exc:  # an unreadable marker or an undecodable chunk: the block is not trusted
        log.info("block %s_%s: marker not trusted (%s); recomputing", job.iy, job.ix, exc)
        return None
    log.info("block %s_%s: stored values differ from the marker's digest; recomputing", job.iy, job.ix)
    return None


_CUBE_CACHE: dict[tuple[CubeRequest, tuple[float, ...]], xr.Dataset] = {}


def open_sensor_cube(request: CubeRequest) -> xr.Dataset:
    """The cube of ``request``, opened once per worker process and file version (a rewritten file is reopened)."""
    key = (request, tuple(os.path.getmtime(p) for p in request.paths))
    if key not in _CUBE_CACHE:
        if len(_CUBE_CACHE) > 8:
            _CUBE_CACHE.clear()
        like = open_sensor_cube(request.like) if request.like is not None else None
        _CUBE_CACHE[key] = request.open(like)
    return _CUBE_CACHE[key]


def _block_series(job: _BlockJob) -> dict[str, PixelSeries]:
    window = {"y": slice(job.y0, job.y1), "x": slice(job.x0, job.x1)}
    loaded = cached_model(job.model_path, resolve_device(job.device))  # the checkpoint's own band order and statistics
    series = {"s2": model_series(loaded, open_sensor_cube(job.s2).isel(window).load(), "s2")}
    if job.s1 is not None:
        series["s1"] = model_series(loaded, open_sensor_cube(job.s1).isel(window).load(), "s1")
    return series


def _run_block(job: _BlockJob) -> BlockResult:
    """Compute one block and write its chunks, then its marker (in this order).

    Gradients are off only inside this call: with the synchronous scheduler the
    block runs on the caller's thread, whose autograd state must not change.
    """
    device = resolve_device(job.device)
    with torch.no_grad():
        model = cached_model(job.model_path, device).model
        series = _block_series(job)
        by, bx = job.y1 - job.y0, job.x1 - job.x0
        yx = np.asarray(series["s2"].yx)
        rows, cols = yx[:, 0], yx[:, 1]  # pixel row/column inside the block
        empty = empty_pixels(series)
        contexts = contextualize_pixels(model, series, job.pixel_batch)
        group = zarr.open_group(job.store, mode="r+")
        emb_arr = group["embedding"]
        scale_arr = group["embedding_scale"] if job.encoding == "int8" else None
        assert isinstance(emb_arr, zarr.Array) and (scale_arr is None or isinstance(scale_arr, zarr.Array))
        # every quality layer is written: a sensor without input has no observation (NO_OBSERVATION), not distance 0
        layers = {q[len("days_to_"):]: group[q] for q in QUALITY_LAYERS if q in group}
        all_days = np.arange(job.first_day, job.first_day + job.n_days, dtype=np.int64)
        digest = hashlib.sha256()

        def put(arr: Any, region: tuple[slice, ...], values: np.ndarray) -> None:
            """Write and hash what the store will hold (its dtype; zarr is lossless), in :func:`_block_slabs` order."""
            stored = np.ascontiguousarray(values, dtype=arr.dtype)
            arr[region] = stored
            digest.update(stored.tobytes())

        full_grid = len(yx) == by * bx and np.array_equal(rows * bx + cols, np.arange(by * bx))  # every pixel, row-major

        def write(d0: int, d1: int, vals: np.ndarray) -> None:
            vals[empty] = np.nan
            region = (slice(d0, d1), slice(job.y0, job.y1), slice(job.x0, job.x1))
            emb_region = (slice(d0, d1), slice(None), slice(job.y0, job.y1), slice(job.x0, job.x1))  # STORED_DIMS
            if scale_arr is not None:
                slab = np.full((d1 - d0, by, bx, vals.shape[-1]), np.nan, dtype=np.float32)
                slab[:, rows, cols, :] = vals.transpose(1, 0, 2)
                qv, sc = encode_int8(slab)  # per (day, pixel) vector, on the feature-last slab
                put(emb_arr, emb_region, qv.transpose(0, 3, 1, 2))
                put(scale_arr, region, sc)
                write_layers(d0, d1, region)
                return
            if full_grid:  # [N, Q, E] -> (Q, E, y, x) in one copy
                stored = np.ascontiguousarray(vals.transpose(1, 2, 0)).reshape(d1 - d0, vals.shape[-1], by, bx)
            else:
                stored = np.full((d1 - d0, vals.shape[-1], by, bx), np.nan, dtype=np.float32)
                stored[:, :, rows, cols] = vals.transpose(1, 2, 0)
            put(emb_arr, emb_region, encode_int16(stored, inplace=True) if job.encoding == "int16" else stored)
            write_layers(d0, d1, region)

        def write_layers(d0: int, d1: int, region: tuple[slice, ...]) -> None:
            for name, layer in layers.items():
                grid = np.full((d1 - d0, by, bx), NO_OBSERVATION, dtype=np.int16)
                if name in series:
                    grid[:, rows, cols] = days_to_nearest(series[name], all_days[d0:d1]).T
                assert isinstance(layer, zarr.Array)
                put(layer, region, grid)

        # Slab k is encoded, compressed and written on a writer thread while slab k+1 is queried (numpy, blosc and
        # torch release the GIL); at most one slab waits, so memory holds two slabs, and the block's marker is
        # written only after every write has finished (and is re-read by the digest).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecoembed-write") as writer:
            pending: Future[None] | None = None
            for d0 in range(0, job.n_days, job.days_per_chunk):
                d1 = min(job.n_days, d0 + job.days_per_chunk)
                vals = query_contexts(model, contexts, len(yx), torch.arange(job.first_day + d0, job.first_day + d1, dtype=torch.int64))
                if pending is not None:
                    pending.result()
                pending = writer.submit(write, d0, d1, vals)
            if pending is not None:
                pending.result()
    # the digest of the values as written (the bytes block_digest reads back from a sound store); every resume re-reads
    # the store and compares (_marker_holds), so a chunk damaged later is still caught
    result = BlockResult(iy=job.iy, ix=job.ix, n_pixels=len(yx), n_empty=int(empty.sum()), sha256=digest.hexdigest(),
                         device=device)
    atomic_write_text(Path(job.markers) / f"{job.iy}_{job.ix}.json", json.dumps(asdict(result)))
    return result


@dataclass
class EmbedResult:
    """Summary of an :func:`embed` run."""

    path: Path
    blocks_total: int
    blocks_computed: int
    blocks_skipped: int
    n_pixels: int
    n_empty_pixels: int
    n_days: int
    checkpoint_sha256: str
    blocks: list[BlockResult] = field(default_factory=list)
    encoding: str = DEFAULT_ENCODING
    device: str = ""
    """The devices blocks ran on, comma-separated (attr ``device`` of the cube)."""


EXTRAPOLATION_MARGIN_DAYS = 60
"""Days before the first / after the last valid S2 acquisition that are embedded without ``allow_extrapolation``."""
MAX_EXTRAPOLATION_DAYS = 366
"""The farthest any day may be from the acquisitions, even with ``allow_extrapolation``."""


def query_range(s2: xr.Dataset, start: str | None, end: str | None, *, allow_extrapolation: bool = False) -> np.ndarray:
    """The days to embed: ``start``..``end`` (default the S2 acquisition span), checked against the valid acquisitions.

    Raises:
        InputError: days too far from any valid acquisition (the message names the option), or no valid acquisition.
    """
    days = daily_range(s2["time"].values, start, end)
    any_valid = np.asarray(s2["valid"].any(("y", "x")).values, bool)
    if not any_valid.any():
        raise InputError(f"S2 cube {s2.encoding.get('source', '')} has no valid observation at all; nothing to embed")
    obs = to_days(s2["time"].values[any_valid])
    lo, hi = int(obs.min()), int(obs.max())
    margin = MAX_EXTRAPOLATION_DAYS if allow_extrapolation else EXTRAPOLATION_MARGIN_DAYS
    if days[0] < lo - margin or days[-1] > hi + margin:
        span = f"{from_days(lo).astype('datetime64[D]')}..{from_days(hi).astype('datetime64[D]')}"
        hint = "" if allow_extrapolation else "; pass --allow-extrapolation to go up to a year beyond them (flagged by the quality layers)"
        raise InputError(f"the days {from_days(days[0]).astype('datetime64[D]')}..{from_days(days[-1]).astype('datetime64[D]')} reach "
                         f"more than {margin} days beyond the valid S2 acquisitions ({span}){hint}")
    return days


def _store_state(store: Path, attrs: Mapping[str, Any]) -> str:
    """``"complete"``, ``"resumable"`` (unfinished, same settings) or ``"foreign"`` (other settings / unreadable)."""
    try:
        existing = xr.open_zarr(store, consolidated=False).attrs
    except Exception:
        return "foreign"
    keys = ("checkpoint_sha256", "s2_source", "s1_source", "start", "end", "chunk_px", "days_per_chunk", "embedding_encoding",
            "embedding_codec", "embedding_dims")  # a store of the older (time, y, x, feature) layout has no embedding_dims: foreign
    # not "device": a block computed on a GPU equals the CPU one up to float rounding
    if not all(existing.get(k) == attrs.get(k) for k in keys):
        return "foreign"
    return "complete" if existing.get("complete") else "resumable"


def embed(
    s2: PathLike | Sequence[PathLike],
    out: str | os.PathLike[str],
    *,
    s1: PathLike | Sequence[PathLike] | None = None,
    model: str | os.PathLike[str] | None = None,
    s2_values: str | None = None,
    s1_values: str | None = None,
    s1_orbit: str | None = None,
    point: tuple[float, float] | None = None,
    start: str | None = None,
    end: str | None = None,
    chunk_px: int = 64,
    days_per_chunk: int = 64,
    pixel_batch: int = 256,
    encoding: str = DEFAULT_ENCODING,
    int8: bool = False,
    device: str = "cpu",
    allow_extrapolation: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_block_done: Callable[[BlockResult], None] | None = None,
) -> EmbedResult:
    """Write the daily embedding cube of an S2 (+ optional S1) scene to ``out`` (.zarr or .nc).

    Args:
        s2: Sentinel-2 file(s) (NetCDF/Zarr; e.g. a 10 m and a 20 m file, merged on the 10 m grid);
            any band subset with a visible and a NIR band, missing bands are masked.
        out: output path ending in ``.zarr`` or ``.nc``.
        s1: Sentinel-1 file(s), resampled onto the S2 grid when coarser (optional; S2-only fusion otherwise).
        model: fusion checkpoint (default: the shipped one).
        s2_values, s1_values: what the numbers are when the files' metadata cannot say
            (``reflectance``/``dn``; ``db``/``linear``), see :mod:`ecoembed.sensors.values`.
        s1_orbit: S1 orbit direction for files that do not record it.
        point: (lat, lon), WGS84 degrees, of point tables (``.csv``/``.parquet`` series at a tower,
            :mod:`ecoembed.sources.points`) without position columns; they embed as a 1 x 1 cube.
        start, end: first/last day (YYYY-MM-DD, inclusive) of the daily output; default
            the S2 cube's first/last acquisition day.
        chunk_px: block edge (pixels): one dask task and one Zarr chunk in y/x.
        days_per_chunk: Zarr chunk length in time (days) and query slab size.
        pixel_batch: pixels contextualised together inside a block.
        encoding: how ``embedding`` is stored (decoded by :func:`open_embeddings` to float32):
            ``int16`` (default) CF-packed steps of 1/32, max abs error 1/64 = 0.015625 per component,
            ~25 bytes per pixel-day (E = 64); ``int8`` per-pixel-day scale ``s``, max abs error ``s / 2``;
            ``float32`` lossless, ~194 bytes per pixel-day. A resume with another encoding is refused
            (the store counts as made with other settings).
        int8: deprecated, the same as ``encoding="int8"``.
        device: ``cpu`` (default), ``cuda`` or ``auto`` (cuda where available): where each worker's model runs;
            ``cuda`` without a GPU falls back to the CPU with a warning. Recorded in attr ``device``, not part
            of the resume key.
        allow_extrapolation: embed days more than :data:`EXTRAPOLATION_MARGIN_DAYS` before the first or
            after the last valid S2 acquisition (at most :data:`MAX_EXTRAPOLATION_DAYS`); the quality
            layers say how far each day is from an observation.
        overwrite: replace an existing output (or an unfinished one made with other settings).
        progress: tqdm progress bar over blocks.
        on_block_done: called after each block is durably written (monitoring; tests).

    Returns:
        :class:`EmbedResult` (blocks computed/skipped, empty pixels).

    Raises:
        InputError / CubeError: bad paths, dates or cubes (S1 not on the S2 grid).
        OutputExistsError: ``out`` exists (complete, or unfinished with other settings) and not ``overwrite``.
        CheckpointError: bad ``model``.
    """
    out = Path(out)
    if out.suffix not in (".zarr", ".nc"):
        raise InputError(f"--out {out} must end in .zarr or .nc")
    check_output_location(out)
    if chunk_px < 1 or days_per_chunk < 1:
        raise InputError("--chunk-px and days per chunk must be positive")
    if int8:
        warnings.warn("embed(int8=True) is deprecated; use encoding='int8'", DeprecationWarning, stacklevel=2)
        encoding = "int8"
    encoding_attr = check_encoding(encoding)
    if device not in DEVICES:
        raise InputError(f"--device {device!r}: choose one of {', '.join(DEVICES)}")
    s2_req = CubeRequest.of(s2, "s2", values=s2_values, point=point)
    s1_req = (CubeRequest.of(s1, "s1", values=s1_values, orbit=s1_orbit, like=s2_req, point=point)
              if s1 is not None else None)
    loaded = load_fusion_model(model)
    if s1_req is not None and "s1" not in loaded.model.fusion.modalities:
        raise InputError(f"model {loaded.path} was trained without Sentinel-1; drop --s1 or use a model with S1")
    s2_cube = open_sensor_cube(s2_req)
    synthetic = bool(s2_cube.attrs.get("synthetic", False))
    s1_bands = ""
    if s1_req is not None:
        s1_cube = open_sensor_cube(s1_req)
        synthetic = synthetic or bool(s1_cube.attrs.get("synthetic", False))
        s1_bands = str(s1_cube.attrs.get("bands", ""))
    check_model_inputs(loaded, {"s2": s2_cube, **({"s1": s1_cube} if s1_req is not None else {})})
    days = query_range(s2_cube, start, end, allow_extrapolation=allow_extrapolation)
    first, last = int(days[0]), int(days[-1])

    attrs: dict[str, Any] = {
        "checkpoint_sha256": loaded.sha256,
        "model": str(loaded.path.name),
        "model_trained_on_synthetic": loaded.synthetic,
        "synthetic": synthetic,
        "crs": s2_cube.attrs.get("crs", ""),
        "resolution_m": s2_cube.attrs.get("resolution_m", 10.0),
        "s2_source": s2_req.describe(),
        "s1_source": s1_req.describe() if s1_req is not None else "",
        "bands_s2": str(s2_cube.attrs.get("bands", "")),
        "bands_s1": s1_bands,
        "values_s2": str(s2_cube.attrs.get("values", "")),
        "validity_s2": str(s2_cube.attrs.get("validity", "")),
        "start": str(from_days(first).astype("datetime64[D]")),
        "end": str(from_days(last).astype("datetime64[D]")),
        "chunk_px": chunk_px,
        "days_per_chunk": days_per_chunk,
        "embedding_encoding": encoding_attr,
        "embedding_codec": ZARR_CODEC,
        "embedding_max_abs_error": MAX_ABS_ERROR[encoding],
        "embedding_dims": " ".join(STORED_DIMS),
        "modalities": ",".join(["s2"] + (["s1"] if s1_req is not None else [])),
        "extrapolation_allowed": allow_extrapolation,
        "quality_layers": "days_to_s2, days_to_s1: days from each day to the pixel's nearest valid observation "
                          f"({NO_OBSERVATION} = none)",
        "complete": False,
    }
    # --overwrite of a finished .zarr builds the new cube beside it and swaps them at the end: the old output is
    # deleted only once the new one is complete (as for .nc, assembled from a sibling work store)
    replace_zarr = out.suffix == ".zarr" and overwrite and out.exists() and _store_state(out, attrs) != "resumable"
    partial = out.suffix == ".nc" or replace_zarr
    store = out.with_name(f".{out.name}.partial.zarr") if partial else out
    markers = store.with_name(store.name + ".blocks")
    if out.suffix == ".nc" and out.exists() and not overwrite:
        raise OutputExistsError(f"output {out} exists; pass --overwrite to replace it")
    if store.exists():
        state = _store_state(store, attrs)
        if (overwrite and not (partial and state == "resumable")) or (out.suffix == ".nc" and state != "resumable"):
            shutil.rmtree(store)
            shutil.rmtree(markers, ignore_errors=True)
        elif state == "complete":
            raise OutputExistsError(f"output {out} exists; pass --overwrite to replace it")
        elif state == "foreign":
            raise OutputExistsError(
                f"output {out} exists and was made by another model/inputs/settings; pass --overwrite to replace it"
            )
        else:
            log.info("resuming unfinished embedding cube %s", store)
    if not store.exists():
        shutil.rmtree(markers, ignore_errors=True)
        tmpl = embedding_template(s2_cube, days, loaded.model.fusion.embed_dim, chunk_px, days_per_chunk, encoding, attrs)
        tmpl.to_zarr(store, mode="w", compute=False, consolidated=False, encoding=zarr_encoding(tmpl), zarr_format=3)
    markers.mkdir(parents=True, exist_ok=True)

    ny, nx = s2_cube.sizes["y"], s2_cube.sizes["x"]
    jobs = [
        _BlockJob(
            iy=iy, ix=ix, y0=iy * chunk_px, y1=min(ny, (iy + 1) * chunk_px), x0=ix * chunk_px, x1=min(nx, (ix + 1) * chunk_px),
            s2=s2_req, s1=s1_req, model_path=str(loaded.path), store=str(store), markers=str(markers),
            first_day=first, n_days=len(days), days_per_chunk=days_per_chunk, pixel_batch=pixel_batch, encoding=encoding,
            device=device,
        )
        for iy in range((ny + chunk_px - 1) // chunk_px)
        for ix in range((nx + chunk_px - 1) // chunk_px)
    ]
    done: list[BlockResult] = []
    pending = []
    for job in jobs:
        marker = markers / f"{job.iy}_{job.ix}.json"
        held = _marker_holds(job, marker) if marker.is_file() else None
        if held is not None:
            done.append(held)
        else:
            pending.append(job)
    log.info("embed %s: %d blocks, %d already complete, %d to compute", out, len(jobs), len(done), len(pending))
    computed: list[BlockResult] = []
    bar = tqdm(total=len(jobs), initial=len(done), disable=not progress, desc="embed", unit="block")
    for result in _execute(pending):
        computed.append(result)
        bar.update(1)
        if on_block_done is not None:
            on_block_done(result)
    bar.close()
    results = done + computed
    n_empty = sum(r.n_empty for r in results)
    n_pixels = sum(r.n_pixels for r in results)
    if n_empty:
        log.warning("embed %s: %d of %d pixels have no usable observation; their embeddings are NaN", out, n_empty, n_pixels)
    used = ", ".join(sorted({r.device for r in results if r.device}))
    if device == "cuda" and "cpu" in used:
        log.warning("embed %s: --device cuda, but blocks ran on: %s", out, used)
    group = zarr.open_group(str(store), mode="r+")
    group.attrs.update({"complete": True, "n_empty_pixels": n_empty, "device": used})
    if out.suffix == ".nc":
        ds = xr.open_zarr(store, consolidated=False)
        ds.attrs = {k: (int(v) if isinstance(v, bool) else v) for k, v in ds.attrs.items()}
        ds = georeference(ds)  # already in the store; refreshed so the NetCDF carries it whatever the zarr reader decoded
        with atomic_path(out) as tmp:
            ds.to_netcdf(tmp, engine="netcdf4", encoding=netcdf_encoding(ds))
        shutil.rmtree(store)
    elif replace_zarr:
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(store, out)
        shutil.rmtree(old)
    shutil.rmtree(markers, ignore_errors=True)
    return EmbedResult(
        path=out, blocks_total=len(jobs), blocks_computed=len(computed), blocks_skipped=len(done),
        n_pixels=n_pixels, n_empty_pixels=n_empty, n_days=len(days), checkpoint_sha256=loaded.sha256, blocks=results,
        encoding=encoding, device=used,
    )


SCHEDULER_TIMEOUT_S = 10.0
"""Seconds :func:`scheduler_client` waits for a scheduler address to answer."""


@contextmanager
def scheduler_client(scheduler: str | None, timeout_s: float | None = None) -> Iterator[Any]:
    """A ``dask.distributed`` client for :func:`embed` to run its blocks on, for the ``with`` block (None: in-process).

    Args:
        scheduler: ``tcp://host:port`` (or any address ``distributed.Client`` takes) of a running
            scheduler (e.g. ``SLURMCluster(...).scheduler_address``), or ``local:N`` for a
            ``LocalCluster`` of N single-threaded worker processes on this machine.
        timeout_s: how long to wait for the scheduler to answer (default :data:`SCHEDULER_TIMEOUT_S`).

    Raises:
        InputError: ``distributed`` is not installed, ``local:N`` is malformed, or the scheduler does not answer.
    """
    if scheduler is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise InputError("--scheduler needs dask.distributed: pip install 'ecoembed[distributed]'") from exc
    if scheduler.startswith("local:"):
        n = scheduler.removeprefix("local:")
        if not n.isdigit() or int(n) < 1:
            raise InputError(f"--scheduler {scheduler}: local:N needs a positive number of workers N")
        cluster = LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True, dashboard_address=None)  # type: ignore[no-untyped-call]
        with cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
            yield client
        return
    timeout = SCHEDULER_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        client = Client(scheduler, timeout=timeout)  # type: ignore[no-untyped-call]
    except (OSError, ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot reach the dask scheduler at {scheduler} ({first}); start it (e.g. `dask scheduler`, "
                         "a dask-jobqueue SLURMCluster) and pass its address, or use local:N") from exc
    with client:
        yield client


def _execute(jobs: list[_BlockJob]) -> Iterator[BlockResult]:
    """Yield block results as they finish: on the active dask.distributed client if any, else in-process."""
    if not jobs:
        return
    try:  # distributed is an optional extra (ecoembed[distributed]): imported only when embed runs
        from distributed import as_completed, default_client

        client = default_client()  # type: ignore[no-untyped-call]
    except (ImportError, ValueError):
        client = None
    tasks = [delayed(_run_block, pure=False)(job) for job in jobs]
    if client is None:
        for task in tasks:
            yield task.compute(scheduler="synchronous")
        return
    futures = client.compute(tasks)
    for fut in as_completed(futures):  # type: ignore[no-untyped-call]
        yield fut.result()


