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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ecoembed.errors import CheckpointError, InputError
from ecoembed.io_utils import atomic_write_text
from ecoembed.models.fusion import FusedEmbeddingModel, FusionNetwork, ModalityConfig, SensorBatch
from ecoembed.models.losses import cross_modal_infonce, drop_bands, masked_mse
from ecoembed.sensors.registry import SENSORS
from ecoembed.sources.local import open_cube
from ecoembed.training.fusion_data import FusionScene, PixelSampler, scene_from_cubes
from ecoembed.training.seed import seed_everything
from ecoembed.weights.builders import encoder_spec
from ecoembed.weights.encoder_checkpoint import load_encoder_checkpoint
from ecoembed.weights.format import restore_optimizer, weights_sha256
from ecoembed.weights.fusion_checkpoint import read_fusion_checkpoint, save_fusion_checkpoint
from ecoembed.weights.shipped import load_pretrained, pretrained_metadata

log = logging.getLogger(__name__)


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
        band_dropout: share of pixels whose sensor input keeps one of the sensor's typical band
            subsets (registry ``typical_subsets``); reconstruction still scores every band they have.
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
    band_dropout: float = 0.3
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


# --- objective ---------------------------------------------------------------------------------


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
    seen = {m: a["band_mask"] & drop_bands(a["values"].shape[0], a["values"].shape[-1], cfg.band_dropout,
                                            SENSORS[m].subset_indices() if m in SENSORS else (), gen) for m, a in arrays.items()}
    batch = {
        m: SensorBatch(values=a["values"], days=a["days"], mask=a["valid"] & ~heldout[m], orbit=a["orbit"] if m == "s1" else None,
                       band_mask=seen[m])
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
            fused_inputs[m] = replace(t, mask=t.mask & ~off[:, None])
    ctx = model.fusion.contextualize(fused_inputs)
    losses: dict[str, Tensor] = {}
    total = torch.zeros(())
    for m, a in arrays.items():
        emb = model.fusion.query(ctx, a["days"])
        assert isinstance(emb, Tensor)
        pred = model.fusion.reconstruct(emb, m, a["orbit"] if model.fusion.modality_configs[m].n_conditions > 1 else None)
        losses[f"recon_{m}"] = masked_mse(pred, a["values"], heldout[m] & a["valid"], a["band_mask"].unsqueeze(1))
        total = total + cfg.recon_weights.get(m, 1.0) * losses[f"recon_{m}"]
    if "s1" in tokens and "s2" in tokens and cfg.contrastive_weight > 0:
        z2 = model.fusion.summary({"s2": tokens["s2"]})
        z1 = model.fusion.summary({"s1": tokens["s1"]})
        usable = tokens["s2"].mask.any(1) & tokens["s1"].mask.any(1)
        losses["contrastive"] = cross_modal_infonce(z2, z1, tile_ids, temperature=cfg.temperature, usable=usable)
        total = total + cfg.contrastive_weight * losses["contrastive"]
    losses["total"] = total
    return losses


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
    step, history = 0, list[dict[str, float]]()
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
        losses["total"].backward()  # type: ignore[no-untyped-call]
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
    contrastive_weight: float = FusionTrainConfig.contrastive_weight,
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
            pretrained encoders (:func:`ecoembed.weights.shipped.load_pretrained`).
        Other arguments: see :class:`FusionTrainConfig`.

    Raises:
        InputError: unpaired cubes or cubes that are not S1/S2.
    """
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
    synthetic = all(bool(c.attrs.get("synthetic", False)) for _, c in (*s2_cubes, *s1_cubes))
    encoders: dict[str, nn.Module] = {}
    normalisation: dict[str, dict[str, Any]] = {}  # what each frozen encoder was trained with (its checkpoint's record)
    sources: list[str] = []
    for sensor in ("s2", "s1"):
        if encoder_paths and sensor in encoder_paths:
            loaded = load_encoder_checkpoint(encoder_paths[sensor], sensor=sensor)
            encoders[sensor], entry, source = loaded.encoder, loaded.input_normalisation(), str(loaded.path)
        else:
            encoders[sensor], source = load_pretrained(sensor), f"shipped {sensor} encoder"
            entry = dict(pretrained_metadata(sensor).get("normalisation") or {})
        normalisation[sensor] = {k: entry[k] for k in ("bands", "mean", "std", "required") if k in entry}
        sources.append(source)
    checkpoints = " and ".join(sources)
    scenes = [scene_from_cubes(c2, c1, name=Path(p2).stem, normalisation=normalisation, checkpoint=checkpoints)
              for (p2, c2), (_, c1) in zip(s2_cubes, s1_cubes, strict=True)]
    specs = {k: encoder_spec(e) for k, e in encoders.items()}
    cfg = FusionTrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, embed_dim=embed_dim, d_model=d_model,
                            n_heads=n_heads, checkpoint_every=checkpoint_every, contrastive_weight=contrastive_weight)
    meta = {"synthetic": synthetic, "trained_on": [str(p) for p in data], "normalisation": normalisation}
    return pretrain_fusion(scenes, encoders, out, cfg, encoder_specs=specs, resume=resume, progress=progress, extra_metadata=meta)
