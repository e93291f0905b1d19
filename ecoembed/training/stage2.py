"""Stage-2 training: the fusion network on top of frozen stage-1 encoders.

Objective (per step, a batch of pixels drawn from several scenes/tiles):

* **Multimodal masked reconstruction at the query date.** Some *valid* S2
  dates (random ones, and for half the pixels a contiguous window of 20-60
  days, imitating a long cloudy gap) and some S1 dates are held out: hidden
  from the stage-1 encoders *and* from the fusion network. The fused embedding
  queried at each held-out day must reconstruct that day's normalised values
  (a per-modality head; S1 per orbit direction). Cloudy/invalid S2 dates are
  never held out nor scored, so clouds are never reconstructed.
* **Cross-modal contrastive (InfoNCE)** between the S1-only and the S2-only
  pooled summaries of the same pixel, with OmniSat's rule (eq. 3): other
  pixels *of the same tile* are neither positives nor negatives (they look
  alike, and pushing them apart would teach noise); negatives come from other
  tiles. See :func:`same_tile_exclusion_mask`.
* **Modality dropout**: a random fraction of pixels sees only one modality,
  so S1-only and S2-only inference work.

The encoders are frozen (``requires_grad=False``, eval mode); only the fusion
network is optimised (AdamW). Checkpoints (safetensors + JSON metadata, never
pickle) are written atomically every ``checkpoint_every`` steps; re-running
the same call resumes from the last one.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ecoembed.errors import CheckpointError, InputError
from ecoembed.models.fusion import FusedEmbeddingModel, FusionNetwork, ModalityConfig, SensorBatch
from ecoembed.training.checkpoint import METADATA_KEY, not_safetensors_hint, optimizer_tensors, restore_optimizer, weights_sha256
from ecoembed.training.seed import seed_everything

log = logging.getLogger(__name__)


class SeriesLike(Protocol):
    """The ``PixelSeries`` contract of ``ecoembed.sources.chips.cube_to_series``."""

    values: np.ndarray  # float32 [N, T, C], normalised, 0 where invalid
    days: np.ndarray  # int64 [T], days since 1970-01-01
    valid: np.ndarray  # bool [N, T]
    orbit: np.ndarray | None  # int8 [T] (S1) or None


@dataclass
class ArraySeries:
    """A plain implementation of :class:`SeriesLike` (e.g. for meteorology, or in tests)."""

    values: np.ndarray
    days: np.ndarray
    valid: np.ndarray
    orbit: np.ndarray | None = None


@dataclass
class FusionScene:
    """All modalities of one scene on one pixel grid.

    Attributes:
        series: modality name -> pixel series (same ``N`` pixels, same order, for all).
        yx: int ``[N, 2]`` pixel row/column in the scene (defines the tiles).
        name: scene label (logs only).
    """

    series: dict[str, SeriesLike]
    yx: np.ndarray
    name: str = "scene"

    def __post_init__(self) -> None:
        n = len(self.yx)
        for mod, s in self.series.items():
            if s.values.shape[0] != n or s.valid.shape != s.values.shape[:2] or s.days.shape[0] != s.values.shape[1]:
                raise InputError(
                    f"scene {self.name!r}: modality {mod!r} has values {s.values.shape}, valid {s.valid.shape}, "
                    f"days {s.days.shape}; expected {n} pixels with matching dates"
                )


# Meteorology as a third modality (no stage-1 encoder: raw daily values are the tokens).
METEO_VARIABLES = ("TA", "SW_IN", "VPD", "P")
"""Daily meteorological drivers used as the example third modality (order of channels)."""
METEO_NORM_MEAN = np.array([10.0, 150.0, 6.0, 2.0], dtype=np.float32)
"""Rough mid-latitude daily means: TA degC, SW_IN W m-2, VPD hPa, P mm d-1."""
METEO_NORM_STD = np.array([8.0, 90.0, 5.0, 4.0], dtype=np.float32)
"""Rough spreads of the same variables (units as :data:`METEO_NORM_MEAN`)."""


def meteo_series(meteo: Any, n_pixels: int) -> ArraySeries:
    """Daily meteorology table -> a pixel series shared by every pixel of the scene.

    Args:
        meteo: DataFrame with a ``date`` column and :data:`METEO_VARIABLES` columns (daily).
        n_pixels: number of pixels of the scene (the series is broadcast, not copied).
    """
    from ecoembed.dates import to_days

    missing = [v for v in ("date", *METEO_VARIABLES) if v not in meteo.columns]
    if missing:
        raise InputError(f"meteorology table lacks columns {missing}; expected date + {list(METEO_VARIABLES)}")
    raw = meteo[list(METEO_VARIABLES)].to_numpy(dtype=np.float32)
    ok = np.isfinite(raw).all(axis=1)
    norm = np.where(ok[:, None], (raw - METEO_NORM_MEAN) / METEO_NORM_STD, 0.0).astype(np.float32)
    days = to_days(meteo["date"].to_numpy())
    return ArraySeries(
        values=np.broadcast_to(norm, (n_pixels, *norm.shape)),
        days=days.astype(np.int64),
        valid=np.broadcast_to(ok, (n_pixels, ok.shape[0])),
    )


def scene_from_cubes(s2: Any, s1: Any | None = None, *, meteo: Any | None = None, name: str = "scene") -> FusionScene:
    """Pixel series of an S2 cube (and optionally an S1 cube on the same grid, and daily meteorology).

    Raises:
        InputError: the S1 cube is not on the S2 grid.
    """
    from ecoembed.sources.chips import cube_to_series

    series: dict[str, SeriesLike] = {"s2": cube_to_series(s2)}
    yx = np.asarray(series["s2"].yx)
    if s1 is not None:
        if s1.sizes["y"] != s2.sizes["y"] or s1.sizes["x"] != s2.sizes["x"] or not (
            np.allclose(s1["x"].values, s2["x"].values) and np.allclose(s1["y"].values, s2["y"].values)
        ):
            raise InputError(f"scene {name!r}: the S1 cube is not on the S2 grid (x/y differ); resample S1 to the S2 grid first")
        s1_series = cube_to_series(s1)
        if not np.array_equal(np.asarray(s1_series.yx), yx):
            raise InputError(f"scene {name!r}: S1 and S2 pixel orders differ")
        series["s1"] = s1_series
    if meteo is not None:
        series["meteo"] = meteo_series(meteo, len(yx))
    return FusionScene(series=series, yx=yx, name=name)


LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")


@dataclass
class FusionTrainConfig:
    """Stage-2 hyper-parameters (all JSON-serialisable; stored in the checkpoint).

    Attributes:
        epochs: passes over all pixels of all scenes (steps = epochs * ceil(pixels / batch_size)).
        batch_size: pixels per step (drawn from all scenes, so several tiles per batch).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        seed: seed of python, numpy and torch generators.
        holdout_fraction: share of usable dates (per modality) hidden and reconstructed.
        gap_probability: share of pixels that additionally lose a contiguous S2 window.
        gap_days: (min, max) length of that window in days.
        modality_dropout: share of pixels that see a single modality.
        contrastive_weight: weight of the InfoNCE term.
        recon_weights: weight of each modality's reconstruction term (modalities not named: 1).
            S1 targets are mostly speckle (irreducible), so a lower S1 weight keeps
            the embedding from spending capacity on it.
        lr_schedule: ``"constant"`` or ``"cosine"`` (decay to 5 % of ``lr`` over all steps; the
            curve depends on ``epochs``, so resuming with more epochs under "cosine" is not the
            same as one longer run, as it is under "constant").
        temperature: InfoNCE temperature.
        tile_px: tile edge in pixels: pixels of the same scene tile are excluded as negatives.
        checkpoint_every: steps between checkpoints.
        d_model, embed_dim, n_heads, n_layers: fusion network size.
    """

    epochs: int = 5
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    holdout_fraction: float = 0.2
    gap_probability: float = 0.5
    gap_days: tuple[int, int] = (20, 60)
    modality_dropout: float = 0.2
    contrastive_weight: float = 0.2
    recon_weights: dict[str, float] = field(default_factory=dict)
    lr_schedule: str = "constant"
    temperature: float = 0.1
    tile_px: int = 8
    checkpoint_every: int = 50
    d_model: int = 64
    embed_dim: int = 64
    n_heads: int = 4
    n_layers: int = 2

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")


# --- losses --------------------------------------------------------------------------------------


def same_tile_exclusion_mask(tile_ids: Tensor) -> Tensor:
    """``[B, B]`` bool, True where pair (i, j) is excluded from the contrastive softmax.

    A pair is excluded when both pixels come from the same tile and ``i != j``:
    such a pixel is neither the positive (only ``j == i`` is) nor a negative.
    """
    same = tile_ids.unsqueeze(0) == tile_ids.unsqueeze(1)
    return same & ~torch.eye(len(tile_ids), dtype=torch.bool, device=tile_ids.device)


def cross_modal_infonce(
    z_a: Tensor, z_b: Tensor, tile_ids: Tensor, *, temperature: float = 0.1, usable: Tensor | None = None
) -> Tensor:
    """Symmetric InfoNCE between two modalities' summaries of the same pixels (OmniSat eq. 3).

    Args:
        z_a, z_b: ``[B, P]`` summaries of the same ``B`` pixels (row i of each is pixel i).
        tile_ids: int ``[B]`` tile of each pixel; same-tile pairs other than i==i are excluded.
        temperature: softmax temperature.
        usable: bool ``[B]`` pixels with observations in both modalities (others are
            dropped from rows and columns); None = all.

    Returns:
        Scalar loss (0 when fewer than 2 usable pixels).
    """
    if usable is not None:
        z_a, z_b, tile_ids = z_a[usable], z_b[usable], tile_ids[usable]
    if len(z_a) < 2:
        return z_a.sum() * 0.0
    a = nn.functional.normalize(z_a, dim=-1)
    b = nn.functional.normalize(z_b, dim=-1)
    logits = (a @ b.T) / temperature
    logits = logits.masked_fill(same_tile_exclusion_mask(tile_ids), float("-inf"))
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target))


def masked_mse(pred: Tensor, target: Tensor, scored: Tensor) -> Tensor:
    """Mean squared error over channels at ``scored`` [B, T] positions only (0 if none)."""
    w = scored.to(pred.dtype).unsqueeze(-1)
    n = w.sum() * pred.shape[-1]
    err = torch.where(scored.unsqueeze(-1), pred - target, torch.zeros((), dtype=pred.dtype))
    return (err.pow(2) * w).sum() / n.clamp(min=1.0)


# --- batching ------------------------------------------------------------------------------------


@dataclass
class _PaddedModality:
    values: np.ndarray  # [N, Tmax, C]
    days: np.ndarray  # [Tmax]
    valid: np.ndarray  # [N, Tmax]
    orbit: np.ndarray  # [Tmax]


class PixelSampler:
    """Draws batches of pixels from several scenes; pads each modality to a common length."""

    def __init__(self, scenes: Sequence[FusionScene], modalities: Sequence[str], tile_px: int) -> None:
        if not scenes:
            raise InputError("stage-2 training needs at least one scene")
        self.modalities = tuple(modalities)
        for sc in scenes:
            absent = [m for m in self.modalities if m not in sc.series]
            if absent:
                raise InputError(f"scene {sc.name!r} lacks modalities {absent}; every training scene needs {self.modalities}")
        self.tmax = {m: max(sc.series[m].values.shape[1] for sc in scenes) for m in self.modalities}
        self.scenes: list[dict[str, _PaddedModality]] = []
        for sc in scenes:
            padded = {}
            for m in self.modalities:
                s = sc.series[m]
                n, t, c = s.values.shape
                pad = self.tmax[m] - t
                padded[m] = _PaddedModality(
                    values=np.pad(np.asarray(s.values, dtype=np.float32), ((0, 0), (0, pad), (0, 0))),
                    days=np.pad(np.asarray(s.days, dtype=np.int64), (0, pad)),
                    valid=np.pad(np.asarray(s.valid, dtype=bool), ((0, 0), (0, pad))),
                    orbit=np.pad(np.zeros(t, np.int64) if s.orbit is None else np.asarray(s.orbit, np.int64), (0, pad)),
                )
            self.scenes.append(padded)
        self.n_pixels = [len(sc.yx) for sc in scenes]
        self.offsets = np.cumsum([0, *self.n_pixels])
        yx = np.concatenate([np.asarray(sc.yx) for sc in scenes])
        scene_idx = np.repeat(np.arange(len(scenes)), self.n_pixels)
        self.tile_ids = scene_idx * 1_000_000 + (yx[:, 0] // tile_px) * 1000 + yx[:, 1] // tile_px
        self.total = int(self.offsets[-1])

    def batch(self, index: np.ndarray) -> tuple[dict[str, dict[str, Tensor]], Tensor]:
        """Arrays of the pixels at global ``index``: {modality: {values, days, valid, orbit}} and tile ids."""
        scene_of = np.searchsorted(self.offsets, index, side="right") - 1
        out: dict[str, dict[str, Tensor]] = {}
        for m in self.modalities:
            vals, days, valid, orbit = [], [], [], []
            for g, s in zip(index, scene_of, strict=True):
                p = self.scenes[s][m]
                local = g - self.offsets[s]
                vals.append(p.values[local])
                valid.append(p.valid[local])
                days.append(p.days)
                orbit.append(p.orbit)
            out[m] = {
                "values": torch.from_numpy(np.stack(vals)),
                "days": torch.from_numpy(np.stack(days)),
                "valid": torch.from_numpy(np.stack(valid)),
                "orbit": torch.from_numpy(np.stack(orbit)),
            }
        return out, torch.from_numpy(self.tile_ids[index])


def _holdout(valid: Tensor, days: Tensor, cfg: FusionTrainConfig, gen: torch.Generator, *, gaps: bool) -> Tensor:
    """Held-out (hidden and scored) positions: random valid dates, plus contiguous gaps if asked."""
    held = valid & (torch.rand(valid.shape, generator=gen) < cfg.holdout_fraction)
    if gaps:
        b = valid.shape[0]
        has_gap = torch.rand(b, generator=gen) < cfg.gap_probability
        length = torch.randint(cfg.gap_days[0], cfg.gap_days[1] + 1, (b,), generator=gen)
        lo = torch.where(valid, days, torch.full_like(days, 2**40)).min(1).values
        hi = torch.where(valid, days, torch.full_like(days, -(2**40))).max(1).values
        span = (hi - lo - length).clamp(min=1)
        start = lo + (torch.rand(b, generator=gen) * span).long()
        in_gap = (days >= start[:, None]) & (days < (start + length)[:, None]) & has_gap[:, None]
        held = held | (valid & in_gap)
    return held


def training_step(
    model: FusedEmbeddingModel, arrays: Mapping[str, Mapping[str, Tensor]], tile_ids: Tensor, cfg: FusionTrainConfig, gen: torch.Generator
) -> dict[str, Tensor]:
    """One stage-2 loss evaluation. Returns the named loss terms and ``total``."""
    modalities = list(arrays)
    heldout = {
        m: _holdout(a["valid"], a["days"], cfg, gen, gaps=(m == "s2")) for m, a in arrays.items()
    }
    batch = {
        m: SensorBatch(values=a["values"], days=a["days"], mask=a["valid"] & ~heldout[m], orbit=a["orbit"] if m == "s1" else None)
        for m, a in arrays.items()
    }
    tokens = model.tokens(batch)
    b = tile_ids.shape[0]
    # Modality dropout: some pixels see a single (random) modality in the fused input.
    fused_inputs = dict(tokens)
    if len(modalities) > 1 and cfg.modality_dropout > 0:
        drop_pixel = torch.rand(b, generator=gen) < cfg.modality_dropout
        keep = torch.randint(0, len(modalities), (b,), generator=gen)
        for i, m in enumerate(modalities):
            off = drop_pixel & (keep != i)
            t = tokens[m]
            fused_inputs[m] = type(t)(t.tokens, t.days, t.mask & ~off[:, None])
    ctx = model.fusion.contextualize(fused_inputs)
    losses: dict[str, Tensor] = {}
    total = torch.zeros(())
    for m, a in arrays.items():
        emb = model.fusion.query(ctx, a["days"])
        assert isinstance(emb, Tensor)
        pred = model.fusion.reconstruct(emb, m, a["orbit"] if model.fusion.modality_configs[m].n_conditions > 1 else None)
        losses[f"recon_{m}"] = masked_mse(pred, a["values"], heldout[m] & a["valid"])
        total = total + cfg.recon_weights.get(m, 1.0) * losses[f"recon_{m}"]
    if "s1" in tokens and "s2" in tokens and cfg.contrastive_weight > 0:
        z2 = model.fusion.summary({"s2": tokens["s2"]})
        z1 = model.fusion.summary({"s1": tokens["s1"]})
        usable = tokens["s2"].mask.any(1) & tokens["s1"].mask.any(1)
        losses["contrastive"] = cross_modal_infonce(z2, z1, tile_ids, temperature=cfg.temperature, usable=usable)
        total = total + cfg.contrastive_weight * losses["contrastive"]
    losses["total"] = total
    return losses


# --- checkpoints ---------------------------------------------------------------------------------

FUSION_FORMAT = "ecoembed.fusion.v1"
"""Format tag of fusion checkpoints (stage-1 ones carry ``ecoembed.stage1.v1``)."""


def save_fusion_checkpoint(
    path: str | Path,
    model: FusedEmbeddingModel,
    encoder_specs: Mapping[str, Mapping[str, Any]],
    *,
    optimizer: torch.optim.Optimizer | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Write encoders + fusion (+ optimizer state) atomically as one safetensors file.

    The JSON metadata (in the safetensors header, key ``ecoembed``) holds the
    fusion config, the encoder specs (how to rebuild each stage-1 encoder), the
    weights' sha256 and ``extra`` (step, history, training config ...).

    Returns:
        sha256 of the model weights (encoders + fusion, optimizer excluded).
    """
    from safetensors.torch import save_file

    from ecoembed.io_utils import atomic_path

    state = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    sha = weights_sha256(state)
    meta: dict[str, Any] = {
        "format": FUSION_FORMAT,
        "fusion_config": model.fusion.config(),
        "encoders": {k: dict(v) for k, v in encoder_specs.items()},
        "weights_sha256": sha,
        **(dict(extra) if extra else {}),
    }
    if optimizer is not None:
        optim_tensors, groups = optimizer_tensors(optimizer)
        state.update(optim_tensors)
        meta["optimizer"] = {"class": type(optimizer).__name__, "param_groups": groups}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})
    return sha


def read_fusion_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Tensors and metadata of a fusion checkpoint (safetensors only; never unpickles).

    Raises:
        CheckpointError: missing, truncated/corrupt, or not a fusion checkpoint.
    """
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"fusion checkpoint {p} does not exist; train one with `ecoembed pretrain --stage fusion` or omit --model")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta_raw = (f.metadata() or {}).get(METADATA_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers/data
        raise CheckpointError(f"fusion checkpoint {p} is corrupt or truncated ({exc}){not_safetensors_hint(p) or '; re-create it'}") from exc
    if meta_raw is None:
        raise CheckpointError(f"{p} has no ecoembed metadata: not a fusion checkpoint")
    try:
        meta = json.loads(meta_raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"fusion checkpoint {p} has unreadable metadata ({exc}); re-create it") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"fusion checkpoint {p} has metadata of type {type(meta).__name__}, not an object; re-create it")
    if meta.get("format") != FUSION_FORMAT:
        raise CheckpointError(f"{p} has format {meta.get('format')!r}, expected {FUSION_FORMAT!r} (a stage-1 encoder checkpoint?)")
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    if weights_sha256({f"model.{k}": v for k, v in model_state.items()}) != meta.get("weights_sha256"):
        raise CheckpointError(f"fusion checkpoint {p}: weights do not match their recorded sha256 (corrupt file)")
    return tensors, meta


# --- the loop ------------------------------------------------------------------------------------


def build_fusion(encoder_token_dims: Mapping[str, int], scenes: Sequence[FusionScene], cfg: FusionTrainConfig) -> FusionNetwork:
    """A fusion network with one adapter per modality of the scenes (encoder token width, or raw channels)."""
    mods: dict[str, ModalityConfig] = {}
    for m, s in scenes[0].series.items():
        c = s.values.shape[-1]
        mods[m] = ModalityConfig(token_dim=encoder_token_dims.get(m, c), n_channels=c, n_conditions=2 if s.orbit is not None else 1)
    return FusionNetwork(mods, d_model=cfg.d_model, embed_dim=cfg.embed_dim, n_heads=cfg.n_heads, n_layers=cfg.n_layers)


@dataclass
class FusionTrainResult:
    """Outcome of :func:`pretrain_fusion`."""

    model: FusedEmbeddingModel
    checkpoint: Path
    weights_sha256: str
    history: list[dict[str, float]] = field(default_factory=list)


def pretrain_fusion(
    scenes: Sequence[FusionScene],
    encoders: Mapping[str, nn.Module],
    out: str | Path,
    config: FusionTrainConfig | None = None,
    *,
    encoder_specs: Mapping[str, Mapping[str, Any]] | None = None,
    fusion: FusionNetwork | None = None,
    resume: bool = True,
    progress: bool = True,
    extra_metadata: Mapping[str, Any] | None = None,
) -> FusionTrainResult:
    """Train the fusion network on frozen encoders; resumable, atomic checkpoints.

    Args:
        scenes: training scenes (each with every modality to fuse, e.g. ``s2``, ``s1``[, ``meteo``]).
        encoders: modality -> frozen stage-1 encoder (its ``tokens`` width must equal
            ``token_dim``); modalities without an encoder use raw values as tokens.
        out: checkpoint path (``.safetensors``); a JSON log ``<out>.log.json`` is written beside it.
        config: hyper-parameters (default :class:`FusionTrainConfig`).
        encoder_specs: how to rebuild each encoder when loading (stored in the checkpoint).
        fusion: start from this fusion network (e.g. a trained one with a new modality
            added); default a fresh one built from the scenes' modalities.
        resume: continue from ``out`` if it exists (its config must match).
        progress: show a tqdm bar.
        extra_metadata: stored in the checkpoint metadata (e.g. ``synthetic=True``).

    Raises:
        CheckpointError: ``out`` exists with an incompatible configuration.
    """
    cfg = config or FusionTrainConfig()
    out = Path(out)
    seed_everything(cfg.seed)
    token_dims = {m: _token_dim(e) for m, e in encoders.items()}
    fusion = fusion if fusion is not None else build_fusion(token_dims, scenes, cfg)
    model = FusedEmbeddingModel(encoders, fusion)
    sampler = PixelSampler(scenes, fusion.modalities, cfg.tile_px)
    params = [p for p in model.fusion.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, math.ceil(sampler.total / cfg.batch_size))
    total_steps = cfg.epochs * steps_per_epoch
    step, history = 0, []
    encoder_hashes = {m: weights_sha256(e.state_dict()) for m, e in encoders.items()}
    if resume and out.exists():
        step, history = _resume(out, model, optimizer, cfg, encoder_hashes)
        log.info("resuming stage-2 training from %s at step %d/%d", out, step, total_steps)
    specs = dict(encoder_specs or {m: {} for m in encoders})
    meta_base = {"train_config": asdict(cfg), "encoder_sha256": encoder_hashes, **(dict(extra_metadata) if extra_metadata else {})}
    sha = ""

    def checkpoint() -> str:
        return save_fusion_checkpoint(
            out, model, specs, optimizer=optimizer, extra={**meta_base, "step": step, "history": history}
        )

    model.train()
    bar = tqdm(total=total_steps, initial=step, disable=not progress, desc="fusion", unit="step")
    while step < total_steps:
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        rng = np.random.default_rng([cfg.seed, step])
        index = rng.choice(sampler.total, size=min(cfg.batch_size, sampler.total), replace=False)
        arrays, tiles = sampler.batch(index)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step, total_steps)
        losses = training_step(model, arrays, tiles, cfg, gen)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        step += 1
        record = {"step": step, **{k: float(v.detach()) for k, v in losses.items()}}
        history.append(record)
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k != "step"})
        if step % cfg.checkpoint_every == 0 or step == total_steps:
            sha = checkpoint()
            _write_log(out, history)
    bar.close()
    model.eval()
    if not sha:  # nothing left to train (already complete): make sure the checkpoint exists
        sha = checkpoint() if not out.exists() else read_fusion_checkpoint(out)[1]["weights_sha256"]
    return FusionTrainResult(model=model, checkpoint=out, weights_sha256=sha, history=history)


def learning_rate(cfg: FusionTrainConfig, step: int, total_steps: int) -> float:
    """Learning rate of ``step`` (0-based) under ``cfg.lr_schedule``."""
    if cfg.lr_schedule == "constant" or total_steps <= 1:
        return cfg.lr
    frac = min(1.0, step / (total_steps - 1))
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * frac)))


def _token_dim(encoder: nn.Module) -> int:
    for attr in ("d_model", "token_dim"):
        if isinstance(getattr(encoder, attr, None), int):
            return int(getattr(encoder, attr))
    raise InputError(f"cannot tell the token width of encoder {type(encoder).__name__} (no d_model/token_dim attribute)")


def _write_log(out: Path, history: list[dict[str, float]]) -> None:
    from ecoembed.io_utils import atomic_write_text

    atomic_write_text(out.with_name(out.name + ".log.json"), json.dumps(history, indent=0))


def _resume(
    out: Path, model: FusedEmbeddingModel, optimizer: torch.optim.Optimizer, cfg: FusionTrainConfig, encoder_hashes: Mapping[str, str]
) -> tuple[int, list[dict[str, float]]]:
    tensors, meta = read_fusion_checkpoint(out)
    if meta.get("encoder_sha256", dict(encoder_hashes)) != dict(encoder_hashes):
        raise CheckpointError(f"{out} was trained on other stage-1 encoder weights; use another --out or --no-resume")
    if meta.get("fusion_config") != model.fusion.config():
        raise CheckpointError(
            f"{out} holds a fusion network with config {meta.get('fusion_config')}, this run builds "
            f"{model.fusion.config()}; use another --out or --no-resume"
        )
    saved_cfg = dict(meta.get("train_config", {}))
    now = asdict(cfg)
    saved_cfg["gap_days"] = tuple(saved_cfg.get("gap_days", ()))
    for k, v in asdict(FusionTrainConfig()).items():  # settings added later keep their defaults in older checkpoints
        saved_cfg.setdefault(k, v)
    diff = {k for k in now if k not in ("epochs", "checkpoint_every") and saved_cfg.get(k) != now[k]}
    if diff:
        raise CheckpointError(f"{out} was trained with different settings ({sorted(diff)}); use another --out or --no-resume")
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    if "optimizer" in meta:
        restore_optimizer(optimizer, tensors, meta["optimizer"]["param_groups"], out)
    return int(meta.get("step", 0)), list(meta.get("history", []))


def pretrain_fusion_from_files(
    data: Sequence[str | Path],
    out: str | Path,
    *,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    embed_dim: int = 64,
    d_model: int = 64,
    n_heads: int = 4,
    checkpoint_every: int = 50,
    resume: bool = True,
    progress: bool = True,
    encoder_paths: Mapping[str, str | Path] | None = None,
) -> FusionTrainResult:
    """Stage-2 training from cube files (what ``ecoembed pretrain --stage fusion`` runs).

    Args:
        data: S2 and S1 cube files; each file's ``sensor`` attribute says which it is, and the
            i-th S2 cube is paired with the i-th S1 cube (same scene, same grid). S2 cubes
            without an S1 partner are not allowed (give S1 for every scene).
        out: fusion checkpoint (.safetensors).
        encoder_paths: stage-1 checkpoints ``{"s2": path, "s1": path}``; default the shipped
            pretrained encoders (``ecoembed.models.pretrained.load_pretrained``).
        Other arguments: see :class:`FusionTrainConfig`.

    Raises:
        InputError: unpaired cubes or cubes that are not S1/S2.
    """
    from ecoembed.sources.local import open_cube

    s2_cubes, s1_cubes = [], []
    for path in data:
        cube = open_cube(path)
        sensor = str(cube.attrs.get("sensor", ""))
        if sensor.startswith("sentinel-2"):
            s2_cubes.append((path, cube))
        elif sensor.startswith("sentinel-1"):
            s1_cubes.append((path, cube))
        else:
            raise InputError(f"--data {path}: attribute sensor={sensor!r} is neither Sentinel-2 nor Sentinel-1")
    if not s2_cubes or len(s2_cubes) != len(s1_cubes):
        raise InputError(
            f"--stage fusion needs S2 and S1 cubes in pairs (the i-th S2 with the i-th S1); got {len(s2_cubes)} S2 and {len(s1_cubes)} S1"
        )
    scenes = [scene_from_cubes(c2, c1, name=Path(p2).stem) for (p2, c2), (_, c1) in zip(s2_cubes, s1_cubes, strict=True)]
    synthetic = all(bool(c.attrs.get("synthetic", False)) for _, c in (*s2_cubes, *s1_cubes))
    encoders: dict[str, nn.Module] = {}
    for sensor in ("s2", "s1"):
        if encoder_paths and sensor in encoder_paths:
            from ecoembed.training.checkpoint import load_encoder_checkpoint

            encoders[sensor] = load_encoder_checkpoint(encoder_paths[sensor], sensor=sensor).encoder
        else:
            from ecoembed.models.pretrained import load_pretrained

            encoders[sensor] = load_pretrained(sensor)
    specs = {k: {"class": type(e).__name__, "config": e.config()} for k, e in encoders.items()}
    cfg = FusionTrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, embed_dim=embed_dim, d_model=d_model,
                            n_heads=n_heads, checkpoint_every=checkpoint_every)
    meta = {"synthetic": synthetic, "trained_on": [str(p) for p in data], "normalisation": normalisation_metadata()}
    return pretrain_fusion(scenes, encoders, out, cfg, encoder_specs=specs, resume=resume, progress=progress, extra_metadata=meta)


def normalisation_metadata() -> dict[str, dict[str, list[Any]]]:
    """Band order and normalisation statistics of S2/S1 (stored so reconstruction can denormalise)."""
    from ecoembed.sensors.sentinel1 import S1_NORM_MEAN, S1_NORM_STD, S1_POLARISATIONS
    from ecoembed.sensors.sentinel2 import S2_BANDS, S2_NORM_MEAN, S2_NORM_STD

    return {
        "s2": {"bands": list(S2_BANDS), "mean": np.asarray(S2_NORM_MEAN).tolist(), "std": np.asarray(S2_NORM_STD).tolist()},
        "s1": {"bands": list(S1_POLARISATIONS), "mean": np.asarray(S1_NORM_MEAN).tolist(), "std": np.asarray(S1_NORM_STD).tolist()},
    }
