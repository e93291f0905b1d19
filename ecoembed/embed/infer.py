"""Per-pixel inference: pixel series -> daily fused embeddings, all in memory.

:func:`embed_series` contextualises each batch of pixels once (stage-1
encoders + the fusion network's self-attention) and then queries any number
of days from that context, so the cost of a day is one cross-attention. It
serves the block tasks of :mod:`ecoembed.embed.pipeline`, the S2
reconstruction, and probes of small areas.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from ecoembed.errors import InputError
from ecoembed.models.fusion import FusedEmbeddingModel, FusionContext, SensorBatch
from ecoembed.sources.chips import PixelSeries, checkpoint_series, require_checkpoint_bands
from ecoembed.weights.fusion_checkpoint import LoadedModel

log = logging.getLogger(__name__)

QueryFn = Callable[[FusionContext, torch.Tensor], Any]
_COMPILED: dict[int, tuple[Any, QueryFn | None]] = {}


def query_function(model: FusedEmbeddingModel, compile: bool = False) -> QueryFn:
    """``model.fusion.query``, or its ``torch.compile``d version (fixed shapes; compiled once per model and process).

    The compiled query fuses the element-wise work around the cross-attention (LayerNorms,
    residuals, GELU, bias adds) into a few kernels; it is the same maths (differences at float
    rounding, ~1e-6). Compiling costs tens of seconds once per process (inductor caches to disk),
    so it pays on large jobs. Where compilation is impossible (no C/C++ compiler, an unsupported
    device) the eager query is used, with a warning.
    """
    eager: QueryFn = model.fusion.query
    if not compile:
        return eager
    key = id(model.fusion)
    if key not in _COMPILED or _COMPILED[key][0] is not model.fusion:
        if len(_COMPILED) > 4:
            _COMPILED.clear()
        try:
            compiled: QueryFn | None = torch.compile(model.fusion.query, dynamic=False)
        except Exception as exc:  # torch.compile itself unavailable
            log.warning("torch.compile unavailable (%s); queries run eagerly", exc)
            compiled = None
        _COMPILED[key] = (model.fusion, compiled)
    fn = _COMPILED[key][1]
    if fn is None:
        return eager

    def run(ctx: FusionContext, days: torch.Tensor) -> Any:
        if _COMPILED.get(key, (None, None))[1] is None:  # failed earlier in this job
            return eager(ctx, days)
        try:
            return fn(ctx, days)
        except Exception as exc:  # compilation happens at the first call: no compiler, unsupported op...
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            log.warning("torch.compile failed (%s: %s); queries run eagerly", type(exc).__name__, first_line)
            _COMPILED[key] = (model.fusion, None)
            return eager(ctx, days)

    return run


def model_series(loaded: LoadedModel, cube: xr.Dataset, modality: str) -> PixelSeries:
    """Pixel series of ``cube`` in the band order and with the normalisation statistics ``loaded`` records.

    Every path that feeds a cube to a loaded fusion checkpoint (embed blocks, reconstruction,
    probes) goes through here, so none falls back on the registry's defaults.

    Raises:
        CheckpointError: the checkpoint records no (or an inconsistent) band order / statistics for ``modality``.
        CubeError: the cube lacks a band the checkpoint needs.
    """
    return checkpoint_series(cube, modality, loaded.input_normalisation(modality), checkpoint=str(loaded.path))


def check_model_inputs(loaded: LoadedModel, cubes: Mapping[str, xr.Dataset]) -> None:
    """Refuse, before any work, cubes that lack a band the checkpoint needs (``modality -> cube``; reads no pixel).

    Raises:
        CheckpointError / CubeError: as :func:`model_series`.
    """
    for modality, cube in cubes.items():
        require_checkpoint_bands(cube, modality, loaded.input_normalisation(modality), checkpoint=str(loaded.path))


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's parameters (where inference inputs go)."""
    return next(model.parameters()).device


def series_batch(series: Mapping[str, Any], index: np.ndarray, device: torch.device | str = "cpu",
                 *, drop_unusable: bool = True) -> dict[str, SensorBatch]:
    """Tensors of the pixels ``index`` of each modality's pixel series (the fusion model's input), on ``device``.

    With ``drop_unusable`` the dates that no pixel of the batch can use (a scene-wide cloudy
    acquisition, a gap shared by the batch) are left out of the tensors: an unusable date never
    changes any output (masked keys, zeroed tokens), so this removes work, not information. A
    modality keeps at least one date.
    """
    out = {}
    for name, s in series.items():
        valid = np.asarray(s.valid[index], dtype=bool)
        keep = np.asarray(valid.any(axis=0) if drop_unusable else np.ones(valid.shape[1], bool), dtype=bool)
        if not keep.any():
            keep[:1] = True
        cols = np.flatnonzero(keep) if not keep.all() else slice(None)
        orbit = None if getattr(s, "orbit", None) is None else torch.as_tensor(np.asarray(s.orbit, dtype=np.int64)[cols])
        bands = getattr(s, "band_mask", None)
        values = np.asarray(s.values[index], dtype=np.float32)[:, cols]
        out[name] = SensorBatch(
            values=torch.as_tensor(np.ascontiguousarray(values)).to(device),
            days=torch.as_tensor(np.asarray(s.days, dtype=np.int64)[cols]).to(device),
            mask=torch.as_tensor(np.ascontiguousarray(valid[:, cols])).to(device),
            orbit=None if orbit is None else orbit.to(device),
            band_mask=None if bands is None else torch.as_tensor(np.asarray(bands, dtype=bool)).to(device),
        )
    return out


def days_to_nearest(series: Any, query_days: np.ndarray, cap: int = 32767) -> np.ndarray:
    """int16 ``[N, Q]``: days from each query day to the pixel's nearest valid observation (``cap`` when it has none).

    Vectorised over pixels: for each query day, the last valid date at or before it and the
    first at or after it come from running maxima/minima of valid date indices along time.
    """
    days = np.asarray(series.days, np.int64)
    valid = np.asarray(series.valid, bool)
    q = np.asarray(query_days, np.int64)
    n, t = valid.shape
    if t == 0 or n == 0:
        return np.full((n, len(q)), cap, dtype=np.int16)
    order = np.argsort(days, kind="stable")
    days, valid = days[order], valid[:, order]
    pos = np.arange(t)
    last = np.maximum.accumulate(np.where(valid, pos, -1), axis=1)  # [N, T] last valid index <= t, or -1
    first = np.minimum.accumulate(np.where(valid, pos, t)[:, ::-1], axis=1)[:, ::-1]  # first valid index >= t, or T
    after = np.searchsorted(days, q, side="left")  # first date >= query
    before = np.searchsorted(days, q, side="right") - 1  # last date <= query
    prev = np.where(before >= 0, last[:, np.clip(before, 0, t - 1)], -1)  # [N, Q]
    nxt = np.where(after < t, first[:, np.clip(after, 0, t - 1)], t)
    big = np.int64(1) << 40
    d_prev = np.where(prev >= 0, q - days[np.clip(prev, 0, t - 1)], big)
    d_next = np.where(nxt < t, days[np.clip(nxt, 0, t - 1)] - q, big)
    return np.minimum(np.minimum(d_prev, d_next), cap).astype(np.int16)


def empty_pixels(series: Mapping[str, Any]) -> np.ndarray:
    """Bool ``[N]``: pixels without a usable observation in any modality."""
    first = next(iter(series.values()))
    empty = np.ones(first.values.shape[0], dtype=bool)
    for s in series.values():
        empty &= ~np.asarray(s.valid).any(axis=1)
    return empty


@torch.no_grad()
def contextualize_pixels(model: FusedEmbeddingModel, series: Mapping[str, Any], pixel_batch: int) -> list[tuple[np.ndarray, FusionContext]]:
    """Fusion contexts of all pixels, ``pixel_batch`` at a time: ``[(pixel indices, context), ...]``.

    Computed on the model's device; each context keeps the cross-attention keys and values
    (projected once per pixel), not the tokens (:meth:`~ecoembed.models.fusion.FusionContext.without_tokens`).

    Raises:
        InputError: a modality the model has no adapter for.
    """
    unknown = set(series) - set(model.fusion.modalities)
    if unknown:
        raise InputError(f"the model has no adapter for modalities {sorted(unknown)} (it knows {model.fusion.modalities})")
    n = next(iter(series.values())).values.shape[0]
    device = model_device(model)
    out = []
    for lo in range(0, n, pixel_batch):
        idx = np.arange(lo, min(n, lo + pixel_batch))
        out.append((idx, model.fusion.contextualize(model.tokens(series_batch(series, idx, device))).without_tokens()))
    return out


@torch.no_grad()
def query_contexts(model: FusedEmbeddingModel, contexts: Sequence[tuple[np.ndarray, FusionContext]], n_pixels: int,
                   days: torch.Tensor, *, compile: bool = False, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Fused embeddings float32 ``[N, Q, E]`` of every contextualised pixel at ``days`` (int64 ``[Q]``), on the CPU.

    Args:
        compile: use the compiled query (:func:`query_function`).
        shape: (pixels, days) every query call is padded to (the last pixel batch repeats its first
            pixel, the last slab its last day; the padding is dropped): one compiled shape for a whole
            job instead of a recompilation for each remainder. Default: no padding.
    """
    out = np.empty((n_pixels, len(days), model.fusion.embed_dim), dtype=np.float32)
    query = query_function(model, compile)
    q = len(days)
    days = days.to(model_device(model))
    if shape is not None and shape[1] > q:
        days = torch.cat([days, days[-1:].expand(shape[1] - q)])
    for idx, ctx in contexts:
        b = len(idx)
        if shape is not None and shape[0] > b:
            ctx = ctx.select(torch.cat([torch.arange(b), torch.zeros(shape[0] - b, dtype=torch.int64)]))
        emb = query(ctx, days)
        assert isinstance(emb, torch.Tensor)
        out[idx] = emb[:b, :q].float().cpu().numpy()
    return out


def embed_series(
    model: FusedEmbeddingModel,
    series: Mapping[str, Any],
    query_days: np.ndarray,
    *,
    pixel_batch: int = 256,
    days_per_slab: int | None = None,
    compile: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Daily fused embeddings of pixel series (all in memory; for blocks and small areas).

    Args:
        model: encoders + fusion (eval mode).
        series: modality -> ``PixelSeries`` (same pixels in the same order); a subset of
            the model's modalities is fine (S2 only, S1 only).
        query_days: int64 ``[Q]`` days since 1970-01-01.
        pixel_batch: pixels contextualised together.
        days_per_slab: query days per cross-attention call (default all).
        compile: run the queries through ``torch.compile`` (:func:`query_function`; pays off from
            a few thousand pixel-years per process).

    Returns:
        (embeddings float32 ``[N, Q, E]`` with NaN rows for empty pixels, empty bool ``[N]``):
        a pixel is empty when no modality has a usable observation.
    """
    contexts = contextualize_pixels(model, series, pixel_batch)
    empty = empty_pixels(series)
    q = torch.as_tensor(np.asarray(query_days, dtype=np.int64))
    slab = days_per_slab or len(q)
    out = np.empty((len(empty), len(q), model.fusion.embed_dim), dtype=np.float32)
    shape = (pixel_batch, slab) if compile else None
    for d0 in range(0, len(q), slab):
        out[:, d0:d0 + slab] = query_contexts(model, contexts, len(empty), q[d0:d0 + slab], compile=compile, shape=shape)
    out[empty] = np.nan
    return out, empty
