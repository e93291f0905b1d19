"""Inference: sensor cubes -> daily 10 m embedding cube, chunked over space, resumable.

``embed(s2, out, s1=..., model=...)`` writes the embedding cube contract: an
``xarray.Dataset`` with variable ``embedding`` dims ``(time, y, x, feature)``,
daily ``time``, the S2 cube's ``x``/``y``/``crs``, and attrs
``checkpoint_sha256``, ``model`` and ``synthetic``.

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
   time, and writes each ``(days_per_chunk, chunk_px, chunk_px, E)`` slab
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

Resumability: a block is complete iff its marker exists; markers are written
after the block's data, so a crash leaves at worst a block without marker,
which the next run recomputes (overwriting the same chunks). Re-running the
same command skips completed blocks. A ``.nc`` output is assembled from a
sibling working Zarr store at the end and renamed into place atomically.

Multi-machine: block tasks carry file paths (not arrays) and load the model
from the checkpoint path once per worker, so they run on any
``dask.distributed`` cluster whose workers see the same file system: create a
``Client`` before calling :func:`embed` (it is picked up automatically).

int8 storage (TESSERA-style): with ``int8=True`` each (pixel, day) vector is
stored as ``round(e / s)`` in int8 with ``s = max|e| / 127`` in the float32
variable ``embedding_scale`` (time, y, x); :func:`open_embeddings` decodes it
back to float transparently (max abs error ``s / 2`` per component).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from ecoembed.dates import from_days, to_days
from ecoembed.errors import CheckpointError, CubeError, InputError, OutputExistsError
from ecoembed.io_utils import atomic_path, atomic_write_text
from ecoembed.models.fusion import FusedEmbeddingModel, FusionNetwork, SensorBatch

log = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = Path(__file__).parent / "data" / "fusion.safetensors"
"""The shipped tiny fusion default (stage-1 encoders + fusion, trained on synthetic scenes)."""

INT8_ENCODING = "int8_scaled"
FLOAT_ENCODING = "float32"

# --- model loading -------------------------------------------------------------------------------

EncoderBuilder = Callable[[Mapping[str, Any]], torch.nn.Module]
_ENCODER_BUILDERS: dict[str, EncoderBuilder] = {}


def register_encoder_builder(name: str, builder: EncoderBuilder) -> None:
    """Allow checkpoints whose encoder spec says ``{"class": name, "config": {...}}`` to be rebuilt.

    Only registered names are instantiated: a checkpoint cannot make the loader
    import or call arbitrary code.
    """
    _ENCODER_BUILDERS[name] = builder


def _builder(name: str) -> EncoderBuilder:
    if name not in _ENCODER_BUILDERS and name in ("S2Encoder", "S1Encoder"):
        from ecoembed.models import encoders

        cls = getattr(encoders, name)
        register_encoder_builder(name, lambda cfg, _cls=cls: _cls(**cfg))
    if name not in _ENCODER_BUILDERS:
        raise CheckpointError(f"checkpoint names encoder class {name!r}, which is not registered (known: {sorted(_ENCODER_BUILDERS)})")
    return _ENCODER_BUILDERS[name]


@dataclass
class LoadedModel:
    """A fusion checkpoint ready for inference."""

    model: FusedEmbeddingModel
    path: Path
    sha256: str
    metadata: dict[str, Any]

    @property
    def synthetic(self) -> bool:
        """Whether the weights were trained on synthetic data."""
        return bool(self.metadata.get("synthetic", False))


def load_fusion_model(path: str | os.PathLike[str] | None = None) -> LoadedModel:
    """Load encoders + fusion from a fusion checkpoint (default: the shipped one), eval mode.

    Raises:
        CheckpointError: missing/corrupt file, unknown encoder class, or shape mismatch.
    """
    from ecoembed.training.stage2 import read_fusion_checkpoint

    p = Path(path) if path is not None else DEFAULT_MODEL_PATH
    if path is None and not p.is_file():
        raise CheckpointError(
            f"the shipped fusion default {p} is missing; re-create it with "
            "`python experiments/pretrain_fusion_default.py` or pass --model"
        )
    tensors, meta = read_fusion_checkpoint(p)
    sidecar = p.with_suffix(".json")
    if sidecar.is_file():  # registry entry (torchgeo-style): the expected checksum of these weights
        expected = json.loads(sidecar.read_text()).get("weights_sha256")
        if expected and expected != meta["weights_sha256"]:
            raise CheckpointError(f"{p}: weights sha256 {meta['weights_sha256'][:12]}... differs from {sidecar.name} ({expected[:12]}...)")
    try:  # metadata is data from the file: any malformed field is a CheckpointError, never a crash
        fusion = FusionNetwork(**meta["fusion_config"])
        encoders: dict[str, torch.nn.Module] = {}
        for name, spec in meta.get("encoders", {}).items():
            if "class" not in spec:
                raise CheckpointError(f"{p}: encoder {name!r} has no class in its spec; it cannot be rebuilt")
            encoders[name] = _builder(spec["class"])(spec.get("config", {}))
        model = FusedEmbeddingModel(encoders, fusion)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise CheckpointError(f"{p}: the architecture recorded in it cannot be rebuilt ({type(exc).__name__}: {exc}); re-create it") from exc
    except CheckpointError as exc:
        if str(p) in str(exc):
            raise
        raise CheckpointError(f"{p}: {exc}") from exc
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{p}: weights do not fit the architecture recorded in it ({str(exc).splitlines()[0]})") from exc
    model.eval()
    return LoadedModel(model=model, path=p.resolve(), sha256=meta["weights_sha256"], metadata=meta)


_MODEL_CACHE: dict[tuple[str, float], LoadedModel] = {}


def _cached_model(path: str) -> LoadedModel:
    """One model per worker process (block tasks carry the path, not the weights)."""
    key = (path, os.path.getmtime(path))
    if key not in _MODEL_CACHE:
        _MODEL_CACHE.clear()
        _MODEL_CACHE[key] = load_fusion_model(path)
    return _MODEL_CACHE[key]


# --- per-pixel inference -------------------------------------------------------------------------


def _series_batch(series: Mapping[str, Any], index: np.ndarray) -> dict[str, SensorBatch]:
    out = {}
    for name, s in series.items():
        orbit = None if getattr(s, "orbit", None) is None else torch.as_tensor(np.asarray(s.orbit, dtype=np.int64))
        out[name] = SensorBatch(
            values=torch.as_tensor(np.ascontiguousarray(s.values[index], dtype=np.float32)),
            days=torch.as_tensor(np.asarray(s.days, dtype=np.int64)),
            mask=torch.as_tensor(np.asarray(s.valid[index], dtype=bool)),
            orbit=orbit,
        )
    return out


@torch.no_grad()
def embed_series(
    model: FusedEmbeddingModel,
    series: Mapping[str, Any],
    query_days: np.ndarray,
    *,
    pixel_batch: int = 256,
    days_per_slab: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Daily fused embeddings of pixel series (all in memory; for blocks and small areas).

    Args:
        model: encoders + fusion (eval mode).
        series: modality -> ``PixelSeries`` (same pixels in the same order); a subset of
            the model's modalities is fine (S2 only, S1 only).
        query_days: int64 ``[Q]`` days since 1970-01-01.
        pixel_batch: pixels contextualised together.
        days_per_slab: query days per cross-attention call (default all).

    Returns:
        (embeddings float32 ``[N, Q, E]`` with NaN rows for empty pixels, empty bool ``[N]``):
        a pixel is empty when no modality has a usable observation.
    """
    unknown = set(series) - set(model.fusion.modalities)
    if unknown:
        raise InputError(f"the model has no adapter for modalities {sorted(unknown)} (it knows {model.fusion.modalities})")
    n = next(iter(series.values())).values.shape[0]
    empty = np.ones(n, dtype=bool)
    for s in series.values():
        empty &= ~np.asarray(s.valid).any(axis=1)
    q = torch.as_tensor(np.asarray(query_days, dtype=np.int64))
    slab = days_per_slab or len(q)
    out = np.full((n, len(q), model.fusion.embed_dim), np.nan, dtype=np.float32)
    for lo in range(0, n, pixel_batch):
        idx = np.arange(lo, min(n, lo + pixel_batch))
        ctx = model.fusion.contextualize(model.tokens(_series_batch(series, idx)))
        for d0 in range(0, len(q), slab):
            emb = model.fusion.query(ctx, q[d0 : d0 + slab])
            assert isinstance(emb, torch.Tensor)
            out[idx, d0 : d0 + slab] = emb.numpy()
    out[empty] = np.nan
    return out, empty


def encode_int8(embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantise ``[..., E]`` float embeddings to int8 with a per-vector scale (NaN vectors -> 0, scale NaN)."""
    finite = np.isfinite(embedding).all(axis=-1)
    safe = np.where(finite[..., None], embedding, 0.0)
    amax = np.abs(safe).max(axis=-1, initial=0.0)
    scale = np.where(finite, np.maximum(amax, 1e-12) / 127.0, np.nan).astype(np.float32)
    safe = safe / np.where(finite, scale, 1.0)[..., None]
    q = np.clip(np.rint(safe), -127, 127).astype(np.int8)
    return q, scale


def decode_int8(quantised: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_int8`: ``[..., E]`` int8 and ``[...]`` scales -> float32 (NaN where scale is NaN)."""
    return quantised.astype(np.float32) * scale[..., None]


# --- the cube pipeline ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _BlockJob:
    """Everything a worker needs for one spatial block (paths only, picklable)."""

    iy: int
    ix: int
    y0: int
    y1: int
    x0: int
    x1: int
    s2_path: str
    s1_path: str | None
    model_path: str
    store: str
    markers: str
    first_day: int
    n_days: int
    days_per_chunk: int
    pixel_batch: int
    int8: bool


@dataclass
class BlockResult:
    """Outcome of one block (also the content of its completion marker)."""

    iy: int
    ix: int
    n_pixels: int
    n_empty: int


_CUBE_CACHE: dict[tuple[str, str, float], xr.Dataset] = {}


def _open_cube(path: str, sensor: str) -> xr.Dataset:
    from ecoembed.sources.local import open_cube

    key = (path, sensor, os.path.getmtime(path))  # a rewritten file is reopened
    if key not in _CUBE_CACHE:
        if len(_CUBE_CACHE) > 8:
            _CUBE_CACHE.clear()
        _CUBE_CACHE[key] = open_cube(path, sensor=sensor)
    return _CUBE_CACHE[key]


def _block_series(job: _BlockJob) -> dict[str, Any]:
    from ecoembed.sources.chips import cube_to_series

    window = {"y": slice(job.y0, job.y1), "x": slice(job.x0, job.x1)}
    series = {"s2": cube_to_series(_open_cube(job.s2_path, "sentinel-2-l2a").isel(window).load())}
    if job.s1_path is not None:
        series["s1"] = cube_to_series(_open_cube(job.s1_path, "sentinel-1-grd").isel(window).load())
    return series


def _run_block(job: _BlockJob) -> BlockResult:
    """Compute one block and write its chunks, then its marker (in this order).

    Gradients are off only inside this call: with the synchronous scheduler the
    block runs on the caller's thread, whose autograd state must not change.
    """
    with torch.no_grad():
        return _run_block_no_grad(job)


def _run_block_no_grad(job: _BlockJob) -> BlockResult:
    import zarr

    loaded = _cached_model(job.model_path)
    model = loaded.model
    series = _block_series(job)
    by, bx = job.y1 - job.y0, job.x1 - job.x0
    yx = np.asarray(series["s2"].yx)
    rows, cols = yx[:, 0], yx[:, 1]  # pixel row/column inside the block
    n = len(yx)
    empty = np.ones(n, dtype=bool)
    for s in series.values():
        empty &= ~np.asarray(s.valid).any(axis=1)
    contexts = []
    for lo in range(0, n, job.pixel_batch):
        idx = np.arange(lo, min(n, lo + job.pixel_batch))
        contexts.append((idx, model.fusion.contextualize(model.tokens(_series_batch(series, idx)))))
    group = zarr.open_group(job.store, mode="r+")
    emb_arr = group["embedding"]
    scale_arr = group["embedding_scale"] if job.int8 else None
    e = model.fusion.embed_dim
    for d0 in range(0, job.n_days, job.days_per_chunk):
        d1 = min(job.n_days, d0 + job.days_per_chunk)
        q = torch.arange(job.first_day + d0, job.first_day + d1, dtype=torch.int64)
        slab = np.full((d1 - d0, by, bx, e), np.nan, dtype=np.float32)
        for idx, ctx in contexts:
            emb = model.fusion.query(ctx, q)
            assert isinstance(emb, torch.Tensor)
            vals = emb.numpy()
            vals[empty[idx]] = np.nan
            slab[:, rows[idx], cols[idx], :] = vals.transpose(1, 0, 2)
        region = (slice(d0, d1), slice(job.y0, job.y1), slice(job.x0, job.x1))
        if scale_arr is not None:
            qv, sc = encode_int8(slab)
            emb_arr[region] = qv
            scale_arr[region] = sc
        else:
            emb_arr[region] = slab
    result = BlockResult(iy=job.iy, ix=job.ix, n_pixels=n, n_empty=int(empty.sum()))
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


def check_output_location(out: Path) -> None:
    """Refuse an ``--out`` whose nearest existing ancestor is not a writable folder (before any work).

    Raises:
        InputError: naming the ancestor that blocks the write.
    """
    ancestor = out.parent.absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"cannot write --out {out}: {ancestor} is not a writable folder; choose another --out")


def _as_day(value: Any, name: str) -> int:
    try:
        return int(to_days(np.datetime64(str(value)[:10], "D")))
    except (ValueError, TypeError) as exc:
        raise InputError(f"--{name} {value!r} is not a date (use YYYY-MM-DD)") from exc


def _template(
    s2: xr.Dataset, days: np.ndarray, embed_dim: int, chunk_px: int, days_per_chunk: int, int8: bool, attrs: dict[str, Any]
) -> xr.Dataset:
    import dask.array as da

    shape = (len(days), s2.sizes["y"], s2.sizes["x"], embed_dim)
    chunks = (days_per_chunk, chunk_px, chunk_px, embed_dim)
    data_vars: dict[str, Any] = {
        "embedding": (("time", "y", "x", "feature"), da.zeros(shape, chunks=chunks, dtype=np.int8 if int8 else np.float32))
    }
    if int8:
        data_vars["embedding_scale"] = (("time", "y", "x"), da.zeros(shape[:3], chunks=chunks[:3], dtype=np.float32))
    coords = {"time": from_days(days), "y": s2["y"].values, "x": s2["x"].values, "feature": np.arange(embed_dim)}
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    ds["embedding"].attrs = {"long_name": "fused daily embedding", "units": "1"}
    if int8:
        ds["embedding"].attrs["encoding"] = "embedding_float = embedding_int8 * embedding_scale"
        ds["embedding_scale"].attrs = {"long_name": "per-pixel-per-day int8 scale", "units": "1"}
    for c in ("x", "y"):
        ds[c].attrs = dict(s2[c].attrs)
    return ds


def _store_state(store: Path, attrs: Mapping[str, Any]) -> str:
    """``"complete"``, ``"resumable"`` (unfinished, same settings) or ``"foreign"`` (other settings / unreadable)."""
    try:
        existing = xr.open_zarr(store, consolidated=False).attrs
    except Exception:  # an unreadable or foreign store is not ours to resume
        return "foreign"
    keys = ("checkpoint_sha256", "s2_source", "s1_source", "start", "end", "chunk_px", "days_per_chunk", "embedding_encoding")
    if not all(existing.get(k) == attrs.get(k) for k in keys):
        return "foreign"
    return "complete" if existing.get("complete") else "resumable"


def embed(
    s2: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    s1: str | os.PathLike[str] | None = None,
    model: str | os.PathLike[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    chunk_px: int = 64,
    days_per_chunk: int = 64,
    pixel_batch: int = 256,
    int8: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_block_done: Callable[[BlockResult], None] | None = None,
) -> EmbedResult:
    """Write the daily embedding cube of an S2 (+ optional S1) scene to ``out`` (.zarr or .nc).

    Args:
        s2: Sentinel-2 cube file (NetCDF/Zarr, sensor cube contract); defines the grid.
        out: output path ending in ``.zarr`` or ``.nc``.
        s1: Sentinel-1 cube on the same grid (optional; S2-only fusion otherwise).
        model: fusion checkpoint (default: the shipped synthetic-trained default).
        start, end: first/last day (YYYY-MM-DD, inclusive) of the daily output; default
            the S2 cube's first/last acquisition day.
        chunk_px: block edge (pixels): one dask task and one Zarr chunk in y/x.
        days_per_chunk: Zarr chunk length in time (days) and query slab size.
        pixel_batch: pixels contextualised together inside a block.
        int8: store int8 with a per-pixel-per-day scale (decode with :func:`open_embeddings`).
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
    from tqdm.auto import tqdm

    out = Path(out)
    if out.suffix not in (".zarr", ".nc"):
        raise InputError(f"--out {out} must end in .zarr or .nc")
    check_output_location(out)
    if chunk_px < 1 or days_per_chunk < 1:
        raise InputError("--chunk-px and days per chunk must be positive")
    s2_path = str(Path(s2).resolve())
    s1_path = str(Path(s1).resolve()) if s1 is not None else None
    loaded = load_fusion_model(model)
    if s1_path is not None and "s1" not in loaded.model.fusion.modalities:
        raise InputError(f"model {loaded.path} was trained without Sentinel-1; drop --s1 or use a model with S1")
    s2_cube = _open_cube(s2_path, "sentinel-2-l2a")
    synthetic = bool(s2_cube.attrs.get("synthetic", False))
    if s1_path is not None:
        s1_cube = _open_cube(s1_path, "sentinel-1-grd")
        if s1_cube.sizes["y"] != s2_cube.sizes["y"] or s1_cube.sizes["x"] != s2_cube.sizes["x"] or not (
            np.allclose(s1_cube["x"].values, s2_cube["x"].values) and np.allclose(s1_cube["y"].values, s2_cube["y"].values)
        ):
            raise CubeError(f"S1 cube {s1} is not on the grid of the S2 cube {s2} (x/y differ); resample it first")
        synthetic = synthetic or bool(s1_cube.attrs.get("synthetic", False))
    s2_days = to_days(s2_cube["time"].values)
    first = _as_day(start, "start") if start else int(s2_days.min())
    last = _as_day(end, "end") if end else int(s2_days.max())
    if last < first:
        raise InputError(f"--end {end} is before --start {start}")
    days = np.arange(first, last + 1, dtype=np.int64)

    attrs: dict[str, Any] = {
        "checkpoint_sha256": loaded.sha256,
        "model": str(loaded.path.name),
        "model_trained_on_synthetic": loaded.synthetic,
        "synthetic": synthetic,
        "crs": s2_cube.attrs.get("crs", ""),
        "resolution_m": s2_cube.attrs.get("resolution_m", 10.0),
        "s2_source": s2_path,
        "s1_source": s1_path or "",
        "start": str(from_days(first).astype("datetime64[D]")),
        "end": str(from_days(last).astype("datetime64[D]")),
        "chunk_px": chunk_px,
        "days_per_chunk": days_per_chunk,
        "embedding_encoding": INT8_ENCODING if int8 else FLOAT_ENCODING,
        "modalities": ",".join(["s2"] + (["s1"] if s1_path else [])),
        "complete": False,
    }
    store = out if out.suffix == ".zarr" else out.with_name(f".{out.name}.partial.zarr")
    markers = store.with_name(store.name + ".blocks")
    if out.suffix == ".nc" and out.exists() and not overwrite:
        raise OutputExistsError(f"output {out} exists; pass --overwrite to replace it")
    if store.exists():
        state = _store_state(store, attrs)
        if overwrite or (out.suffix == ".nc" and state != "resumable"):
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
        tmpl = _template(s2_cube, days, loaded.model.fusion.embed_dim, chunk_px, days_per_chunk, int8, attrs)
        encoding: dict[str, Any] = {"embedding": {"fill_value": None if int8 else np.nan}}
        tmpl.to_zarr(store, mode="w", compute=False, consolidated=False, encoding=encoding)
    markers.mkdir(parents=True, exist_ok=True)

    ny, nx = s2_cube.sizes["y"], s2_cube.sizes["x"]
    jobs = [
        _BlockJob(
            iy=iy, ix=ix, y0=iy * chunk_px, y1=min(ny, (iy + 1) * chunk_px), x0=ix * chunk_px, x1=min(nx, (ix + 1) * chunk_px),
            s2_path=s2_path, s1_path=s1_path, model_path=str(loaded.path), store=str(store), markers=str(markers),
            first_day=first, n_days=len(days), days_per_chunk=days_per_chunk, pixel_batch=pixel_batch, int8=int8,
        )
        for iy in range((ny + chunk_px - 1) // chunk_px)
        for ix in range((nx + chunk_px - 1) // chunk_px)
    ]
    done: list[BlockResult] = []
    pending = []
    for job in jobs:
        marker = markers / f"{job.iy}_{job.ix}.json"
        if marker.is_file():
            done.append(BlockResult(**json.loads(marker.read_text())))
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
    import zarr

    group = zarr.open_group(str(store), mode="r+")
    group.attrs.update({"complete": True, "n_empty_pixels": n_empty})
    if out.suffix == ".nc":
        ds = xr.open_zarr(store, consolidated=False)
        ds.attrs = {k: (int(v) if isinstance(v, bool) else v) for k, v in ds.attrs.items()}
        with atomic_path(out) as tmp:
            ds.to_netcdf(tmp, engine="netcdf4")
        shutil.rmtree(store)
    shutil.rmtree(markers, ignore_errors=True)
    return EmbedResult(
        path=out, blocks_total=len(jobs), blocks_computed=len(computed), blocks_skipped=len(done),
        n_pixels=n_pixels, n_empty_pixels=n_empty, n_days=len(days), checkpoint_sha256=loaded.sha256, blocks=results,
    )


def _execute(jobs: list[_BlockJob]) -> Any:
    """Yield block results as they finish: on the active dask.distributed client if any, else in-process."""
    import dask

    if not jobs:
        return
    try:
        from distributed import as_completed, default_client

        client = default_client()
    except (ImportError, ValueError):
        client = None
    tasks = [dask.delayed(_run_block, pure=False)(job) for job in jobs]
    if client is None:
        for task in tasks:
            yield task.compute(scheduler="synchronous")
        return
    futures = client.compute(tasks)
    for fut in as_completed(futures):
        yield fut.result()


def open_embeddings(path: str | os.PathLike[str]) -> xr.Dataset:
    """Open an embedding cube (.zarr or .nc) lazily; int8 storage is decoded to float32.

    Raises:
        CubeError: the file is not an embedding cube or was left unfinished.
    """
    p = Path(path)
    if not p.exists():
        raise CubeError(f"embedding cube {p} does not exist")
    try:
        ds = xr.open_zarr(p, consolidated=False) if p.suffix == ".zarr" else xr.open_dataset(p, engine="netcdf4", chunks={})
    except Exception as exc:  # backend-specific errors for unreadable files
        raise CubeError(f"cannot open embedding cube {p}: {exc}") from exc
    if "embedding" not in ds or ds["embedding"].dims != ("time", "y", "x", "feature"):
        raise CubeError(f"{p} has no variable 'embedding' with dims (time, y, x, feature)")
    if not bool(ds.attrs.get("complete", True)):
        raise CubeError(f"embedding cube {p} is unfinished; re-run `ecoembed embed` with the same arguments to complete it")
    for key in ("synthetic", "complete", "model_trained_on_synthetic"):
        if key in ds.attrs:
            ds.attrs[key] = bool(ds.attrs[key])
    if ds.attrs.get("embedding_encoding") == INT8_ENCODING:
        decoded = ds["embedding"].astype("float32") * ds["embedding_scale"]
        decoded.attrs = {k: v for k, v in ds["embedding"].attrs.items() if k != "encoding"}
        ds = ds.drop_vars("embedding_scale").assign(embedding=decoded.transpose("time", "y", "x", "feature"))
        ds.attrs["embedding_encoding"] = f"{INT8_ENCODING} (decoded)"
    return ds
