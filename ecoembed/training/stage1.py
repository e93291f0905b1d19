"""Stage-1 training: self-supervised pretraining of one sensor's encoder.

:func:`pretrain_stage1` samples pixel time series from sensor cubes (via
``ecoembed.sources.chips.cube_to_series``), and trains encoder + decoder on
the OmniSat-style masked-date reconstruction (+ optional temporal InfoNCE,
see :mod:`ecoembed.models.losses`) with AdamW.

**Resumable.** Every ``checkpoint_every`` steps (and at the end) the whole
training state (encoder, decoder, optimizer, step, config, band order,
normalisation statistics, loss history) is written atomically to ``out``
(safetensors, see :mod:`ecoembed.weights.encoder_checkpoint`). Re-running the same
call resumes from the last checkpoint: batches and random masks are derived
from ``(seed, step)``, so the resumed run draws what an uninterrupted run
would have drawn. Asking for more epochs than were trained extends training.

**Logged.** ``<out>.log.csv`` (beside the checkpoint) has one row per epoch:
the mean reconstruction error (MSE, normalised units) on the masked (hidden)
valid dates, the optimised reconstruction loss, the contrastive term and the
total; the per-step history is in the checkpoint metadata.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ecoembed.errors import CheckpointError, InputError
from ecoembed.io_utils import atomic_write_text
from ecoembed.models.encoders import ENCODER_CLASSES
from ecoembed.models.losses import ObjectiveConfig, Stage1Objective
from ecoembed.models.ltae import TemporalAttentionEncoder
from ecoembed.sensors import normalisation_stats
from ecoembed.sensors.registry import get_sensor
from ecoembed.sources.chips import cube_to_series
from ecoembed.sources.local import open_cube
from ecoembed.training.seed import seed_everything
from ecoembed.weights.encoder_checkpoint import read_encoder_checkpoint, restore_training_state, save_encoder_checkpoint

log = logging.getLogger(__name__)

ARCHITECTURE_KEYS = ("d_model", "embed_dim", "n_heads", "n_context_layers", "ff_mult")


@dataclass
class Stage1Config:
    """Hyper-parameters of stage-1 pretraining.

    Attributes:
        epochs: passes over all sampled pixels.
        batch_size: pixel series per step.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        seed: seeds python/numpy/torch and every per-step draw.
        d_model, embed_dim, n_heads, n_context_layers, ff_mult: encoder architecture.
        decoder_hidden: decoder MLP width.
        hide_fraction: fraction of usable dates hidden per pixel.
        attention_top_fraction: OmniSat target filter; None = 0.25 for S2, 1.0 for S1.
        contrastive_weight: temporal InfoNCE weight (0 = off).
        band_dropout: share of pixels whose encoder input keeps only one of the sensor's typical
            band subsets (registry ``typical_subsets``), so band-subset cubes are in-distribution.
        max_pixels_per_cube: random subsample of pixels per cube (None = all).
        checkpoint_every: steps between checkpoints.
    """

    epochs: int = 10
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.01
    seed: int = 0
    d_model: int = 64
    embed_dim: int = 64
    n_heads: int = 4
    n_context_layers: int = 1
    ff_mult: int = 2
    decoder_hidden: int = 64
    hide_fraction: float = 0.3
    attention_top_fraction: float | None = None
    contrastive_weight: float = 0.1
    band_dropout: float = 0.3
    max_pixels_per_cube: int | None = None
    checkpoint_every: int = 50

    def architecture(self) -> dict[str, int]:
        """Encoder constructor arguments."""
        return {k: int(getattr(self, k)) for k in ARCHITECTURE_KEYS}


@dataclass
class PixelArrays:
    """Pixel series of several cubes, padded to a common length.

    Attributes:
        values: float32 ``[N, T, C]`` normalised (0 where unusable).
        days: int64 ``[N, T]`` days since 1970-01-01 (0 at padding).
        valid: bool ``[N, T]`` usable (valid, not padding).
        band_mask: bool ``[N, C]`` bands each pixel's cube has.
        orbit: int64 ``[N, T]`` (S1) or None.
        normalisation: per-band statistics used, if the sensors room declares them.
        synthetic: True if every cube is labelled synthetic.
        sources: names of the cubes.
    """

    values: np.ndarray
    days: np.ndarray
    valid: np.ndarray
    band_mask: np.ndarray
    orbit: np.ndarray | None
    normalisation: dict[str, Any]
    synthetic: bool
    sources: list[str] = field(default_factory=list)


def _open(cube: Any, sensor: str) -> tuple[Any, str]:
    if isinstance(cube, (str, os.PathLike)):
        path = Path(cube)
        if not path.exists():
            raise InputError(f"cube {path} does not exist")
        return open_cube(path, sensor=sensor), str(path)
    return cube, cube_label(cube)


def cube_label(cube: Any) -> str:
    """A name for an in-memory cube in training metadata: its ``name`` attr, else [synthetic] sensor [seed], else its type."""
    attrs = dict(getattr(cube, "attrs", {}) or {})
    if attrs.get("name"):
        return str(attrs["name"])
    parts = ["synthetic" if attrs.get("synthetic") else "", str(attrs.get("sensor") or ""),
             f"seed {attrs['seed']}" if "seed" in attrs else ""]
    return " ".join(p for p in parts if p) or type(cube).__name__


def pixel_arrays(sensor: str, cubes: Sequence[Any], max_pixels_per_cube: int | None = None, seed: int = 0) -> PixelArrays:
    """Pixel series of all ``cubes`` in the encoder's band order, padded in time.

    Each item is a sensor cube (xarray Dataset or a path, converted with
    ``ecoembed.sources.chips.cube_to_series(normalize=True)``) or an already
    converted ``PixelSeries``-like object (``values``, ``days``, ``valid``,
    ``bands``, ``orbit``; optional ``normalisation`` dict and ``attrs``).

    Pixels without any valid date are dropped (they carry nothing to learn).

    Raises:
        InputError: unknown sensor, no cube, wrong bands, or no usable pixel at all.
    """
    if sensor not in ENCODER_CLASSES:
        raise InputError(f"unknown sensor {sensor!r}; use 's2' or 's1'")
    if not cubes:
        raise InputError("no cube given; pass at least one --data CUBE")
    bands = list(ENCODER_CLASSES[sensor].BANDS)
    rng = np.random.default_rng(seed)
    parts, names, synthetic = [], [], True
    series_norm: dict[str, Any] | None = None
    for cube in cubes:
        if _is_series(cube):  # already a PixelSeries (values/days/valid/bands)
            ds, name, series = cube, str(getattr(cube, "name", "pixel series")), cube
            series_norm = getattr(cube, "normalisation", None) or series_norm
        else:
            ds, name = _open(cube, sensor)
            series = cube_to_series(ds, bands=bands, normalize=True, missing="mask")
        if list(series.bands) != bands:
            raise InputError(f"cube {name}: bands {list(series.bands)} differ from the {sensor} encoder's {bands}")
        if sensor == "s1" and series.orbit is None:
            raise InputError(f"cube {name}: no orbit direction per acquisition; the S1 encoder needs it")
        keep = np.flatnonzero(np.asarray(series.valid).any(1))
        if max_pixels_per_cube is not None and keep.size > max_pixels_per_cube:
            keep = np.sort(rng.choice(keep, max_pixels_per_cube, replace=False))
        bm = np.asarray(getattr(series, "band_mask", np.ones(len(bands), bool)), bool)
        parts.append((np.asarray(series.values)[keep], np.asarray(series.days, np.int64), np.asarray(series.valid)[keep],
                      None if series.orbit is None else np.asarray(series.orbit, np.int64), bm))
        names.append(name)
        synthetic &= bool(getattr(ds, "attrs", {}).get("synthetic", False))
    n = sum(p[0].shape[0] for p in parts)
    if n == 0:
        raise InputError(f"no pixel with a valid date in {names}; nothing to train on")
    t = max(p[1].shape[0] for p in parts)
    values = np.zeros((n, t, len(bands)), np.float32)
    days = np.zeros((n, t), np.int64)
    valid = np.zeros((n, t), bool)
    band_mask = np.zeros((n, len(bands)), bool)
    orbit = np.zeros((n, t), np.int64) if sensor == "s1" else None
    i = 0
    for v, d, m, o, bm in parts:
        k, tt = v.shape[0], v.shape[1]
        values[i:i + k, :tt] = np.where(m[..., None], np.nan_to_num(v), 0.0)
        days[i:i + k, :tt] = d
        valid[i:i + k, :tt] = m
        band_mask[i:i + k] = bm
        if orbit is not None and o is not None:
            orbit[i:i + k, :tt] = o
        i += k
    norm = dict(series_norm) if series_norm else normalisation_stats(sensor, bands)
    return PixelArrays(values, days, valid, band_mask, orbit, norm, synthetic, names)


def _is_series(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("values", "days", "valid", "bands")) and not hasattr(obj, "data_vars")


@dataclass
class Stage1Result:
    """Outcome of :func:`pretrain_stage1`.

    Attributes:
        encoder: trained encoder (eval mode).
        checkpoint: path of the checkpoint.
        weights_sha256: provenance hash of the encoder weights.
        epoch_log: one dict per epoch (``recon_mse_masked_valid`` etc.).
        log_path: the CSV log beside the checkpoint.
    """

    encoder: TemporalAttentionEncoder
    checkpoint: Path
    weights_sha256: str
    epoch_log: list[dict[str, float]]
    log_path: Path


def log_path_for(checkpoint: str | os.PathLike[str]) -> Path:
    """``<checkpoint>.log.csv``: the per-epoch training log beside a checkpoint."""
    p = Path(checkpoint)
    return p.with_name(p.name + ".log.csv")


def epoch_summary(history: Sequence[dict[str, float]], steps_per_epoch: int) -> list[dict[str, float]]:
    """Per-epoch means of the per-step history."""
    rows: list[dict[str, float]] = []
    for start in range(0, len(history), steps_per_epoch):
        chunk = history[start:start + steps_per_epoch]
        row: dict[str, float] = {"epoch": start // steps_per_epoch + 1, "step": chunk[-1]["step"], "n_steps": len(chunk)}
        for key in ("recon_mse_masked_valid", "reconstruction", "contrastive", "total"):
            row[key] = float(np.mean([h[key] for h in chunk]))
        rows.append(row)
    return rows


def _write_log(path: Path, rows: Sequence[dict[str, float]]) -> None:
    buf = io.StringIO()
    fields = ["epoch", "step", "n_steps", "recon_mse_masked_valid", "reconstruction", "contrastive", "total"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def pretrain_stage1(
    sensor: str,
    cubes: Sequence[Any],
    out: str | os.PathLike[str],
    config: Stage1Config | None = None,
    *,
    resume: bool = True,
    progress: bool = True,
    extra_metadata: dict[str, Any] | None = None,
) -> Stage1Result:
    """Pretrain the ``sensor`` encoder on pixel series of ``cubes``; resumable.

    Args:
        sensor: "s2" or "s1".
        cubes: sensor cubes (xarray Datasets following the cube contract, or paths to them).
        out: checkpoint path (``.safetensors``); ``<out>.log.csv`` is written beside it.
        config: hyper-parameters (default :class:`Stage1Config`).
        resume: continue from ``out`` if it exists (else start afresh, replacing it).
        progress: show a tqdm progress bar.
        extra_metadata: merged into the checkpoint metadata (e.g. a description of the data).

    Returns:
        :class:`Stage1Result`.

    Raises:
        InputError: bad cubes or sensor.
        CheckpointError: ``out`` exists (with ``resume``) but is corrupt or was trained for
            another sensor, band order or architecture.
    """
    cfg = config or Stage1Config()
    out = Path(out)
    if sensor not in ENCODER_CLASSES:
        raise InputError(f"unknown sensor {sensor!r}; use 's2' or 's1'")
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise InputError(f"epochs ({cfg.epochs}) and batch_size ({cfg.batch_size}) must be >= 1")
    if cfg.attention_top_fraction is not None and not 0 < cfg.attention_top_fraction <= 1:
        raise InputError(f"attention_top_fraction must be in (0, 1], got {cfg.attention_top_fraction}")
    if not 0 < cfg.hide_fraction < 1:
        raise InputError(f"hide_fraction must be in (0, 1), got {cfg.hide_fraction}")
    seed_everything(cfg.seed)
    data = pixel_arrays(sensor, cubes, cfg.max_pixels_per_cube, cfg.seed)
    top = cfg.attention_top_fraction if cfg.attention_top_fraction is not None else (0.25 if sensor == "s2" else 1.0)
    try:
        encoder = ENCODER_CLASSES[sensor](**cfg.architecture())
    except ValueError as exc:
        raise InputError(f"invalid encoder architecture {cfg.architecture()}: {exc}") from exc
    objective = Stage1Objective(
        encoder,
        ObjectiveConfig(hide_fraction=cfg.hide_fraction, attention_top_fraction=top, contrastive_weight=cfg.contrastive_weight,
                        band_dropout=cfg.band_dropout, band_subsets=get_sensor(sensor).subset_indices()),
        decoder_hidden=cfg.decoder_hidden,
    )
    optimizer = torch.optim.AdamW(objective.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = data.values.shape[0]
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    step, history = 0, []
    if resume and out.exists():
        tensors, meta = read_encoder_checkpoint(out)
        _check_compatible(out, meta, sensor, cfg, n, data.normalisation)
        restore_training_state(out, encoder, objective.decoder, optimizer, tensors, meta)
        step, history = int(meta["step"]), list(meta.get("history", []))
        log.info("resuming %s pretraining from %s at step %d/%d", sensor, out, step, total_steps)
    base_meta = {
        "train_config": asdict(cfg),
        "attention_top_fraction": top,
        "normalisation": data.normalisation,
        "synthetic": data.synthetic,
        "data": data.sources,
        "n_pixels": n,
        "steps_per_epoch": steps_per_epoch,
        **(extra_metadata or {}),
    }
    values, days, valid = torch.from_numpy(data.values), torch.from_numpy(data.days), torch.from_numpy(data.valid)
    band_mask = torch.from_numpy(data.band_mask)
    orbit = torch.from_numpy(data.orbit) if data.orbit is not None else None
    sha = ""

    def checkpoint() -> str:
        meta = {**base_meta, "step": step, "total_steps": total_steps, "history": history}
        sha_ = save_encoder_checkpoint(out, encoder, meta, decoder=objective.decoder, optimizer=optimizer)
        _write_log(log_path_for(out), epoch_summary(history, steps_per_epoch))
        return sha_

    objective.train()
    bar = tqdm(total=total_steps, initial=step, disable=not progress, desc=f"pretrain {sensor}", unit="step")
    while step < total_steps:
        epoch, position = divmod(step, steps_per_epoch)
        order = np.random.default_rng([cfg.seed, epoch]).permutation(n)
        index = torch.from_numpy(order[position * cfg.batch_size:(position + 1) * cfg.batch_size])
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        losses = objective(values[index], days[index], valid[index], None if orbit is None else orbit[index], gen,
                           band_mask=band_mask[index])
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(objective.parameters(), 1.0)
        optimizer.step()
        step += 1
        record = {"step": step, **{k: float(v.detach()) for k, v in losses.items()}}
        history.append(record)
        bar.update(1)
        bar.set_postfix(recon=f"{record['recon_mse_masked_valid']:.3f}", epoch=epoch + 1)
        if step % cfg.checkpoint_every == 0 or step == total_steps:
            sha = checkpoint()
    bar.close()
    if not sha:  # already complete on entry
        sha = checkpoint()
    encoder.eval()
    return Stage1Result(encoder, out, sha, epoch_summary(history, steps_per_epoch), log_path_for(out))


def _check_compatible(path: Path, meta: dict[str, Any], sensor: str, cfg: Stage1Config, n_pixels: int,
                      normalisation: dict[str, Any] | None = None) -> None:
    """A checkpoint may be resumed only for the same sensor, architecture, data size and input normalisation."""
    if meta.get("sensor") != sensor:
        raise CheckpointError(f"{path} was trained for sensor {meta.get('sensor')!r}, not {sensor!r}; use another --out or --no-resume")
    old = {k: (meta.get("train_config") or {}).get(k) for k in ARCHITECTURE_KEYS}
    if old != cfg.architecture():
        raise CheckpointError(f"{path} has architecture {old}, but {cfg.architecture()} was asked for; use another --out or --no-resume")
    expected_bands = list(ENCODER_CLASSES[sensor].BANDS)
    if meta.get("bands") != expected_bands:
        raise CheckpointError(f"{path}: band order {meta.get('bands')} differs from {expected_bands}; use --no-resume")
    old_cfg = meta.get("train_config") or {}
    for key in ("seed", "batch_size"):
        if old_cfg.get(key) != getattr(cfg, key):
            raise CheckpointError(f"{path} was trained with {key}={old_cfg.get(key)}, not {getattr(cfg, key)}; "
                                  "resume with the same value or use --no-resume")
    if meta.get("n_pixels") != n_pixels:
        raise CheckpointError(f"{path} was trained on {meta.get('n_pixels')} pixels, these cubes give {n_pixels}; "
                              "same --data to resume, or --no-resume")
    recorded = meta.get("normalisation")
    if normalisation is not None and isinstance(recorded, dict) and recorded.get("bands"):
        try:
            same = (list(recorded["bands"]) == list(normalisation["bands"])
                    and np.allclose(np.asarray(recorded.get("mean"), float), np.asarray(normalisation["mean"], float))
                    and np.allclose(np.asarray(recorded.get("std"), float), np.asarray(normalisation["std"], float)))
        except (TypeError, ValueError):  # malformed or mismatched lists
            same = False
        if not same:
            raise CheckpointError(f"{path} was trained on inputs normalised with other band order/statistics "
                                  f"({recorded.get('bands')}); resuming would change what its encoder sees: use --no-resume")
