"""Stage-1 encoder checkpoints: write, read, load with checks, export for shipping.

One file holds everything needed to resume training or to use an encoder:
tensors ``encoder.*`` (the model), ``decoder.*`` (the pretraining head) and
``optim.*`` (AdamW state), and metadata (format :data:`~ecoembed.weights.format.STAGE1_FORMAT`)
with the sensor, encoder class and constructor config, band order,
normalisation statistics, training config, step, loss history and
``weights_sha256`` (provenance hash of the encoder weights only).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ecoembed.errors import CheckpointError
from ecoembed.io_utils import atomic_write_text
from ecoembed.models.ltae import TemporalAttentionEncoder
from ecoembed.weights.builders import build_encoder, encoder_spec
from ecoembed.weights.format import (
    STAGE1_FORMAT,
    Metadata,
    Tensors,
    file_sha256,
    prefixed,
    read_checkpoint,
    restore_optimizer,
    weights_sha256,
    write_checkpoint,
)

MISSING_HINT = "train one with `ecoembed pretrain` or check the path"


def save_encoder_checkpoint(
    path: str | os.PathLike[str],
    encoder: TemporalAttentionEncoder,
    metadata: Mapping[str, Any],
    *,
    decoder: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> str:
    """Write a stage-1 checkpoint atomically.

    Args:
        path: target ``.safetensors`` file.
        encoder: the stage-1 encoder (``S2Encoder``/``S1Encoder``).
        metadata: extra JSON-serialisable metadata (training config, history, normalisation, ...).
        decoder: pretraining decoder (needed to resume).
        optimizer: optimizer (needed to resume).

    Returns:
        ``weights_sha256`` of the encoder weights.
    """
    enc_state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    sha = weights_sha256(enc_state)
    tensors: Tensors = {f"encoder.{k}": v for k, v in enc_state.items()}
    if decoder is not None:
        tensors.update({f"decoder.{k}": v for k, v in decoder.state_dict().items()})
    meta: Metadata = {
        **dict(metadata),
        "format": STAGE1_FORMAT,
        "sensor": getattr(type(encoder), "SENSOR", None),
        "encoder": encoder_spec(encoder),
        "bands": list(getattr(type(encoder), "BANDS", ())),
        "expected_input": getattr(type(encoder), "NORMALISATION", ""),
        "weights_sha256": sha,
        "torch_version": torch.__version__,
    }
    write_checkpoint(path, tensors, meta, optimizer=optimizer)
    return sha


def read_encoder_checkpoint(path: str | os.PathLike[str]) -> tuple[Tensors, Metadata]:
    """Tensors and metadata of a stage-1 checkpoint (safetensors only).

    Raises:
        CheckpointError: missing, unreadable/truncated, or not a stage-1 checkpoint.
    """
    return read_checkpoint(path, STAGE1_FORMAT, missing_hint=MISSING_HINT)


@dataclass
class LoadedEncoder:
    """A stage-1 encoder read from a checkpoint.

    Attributes:
        encoder: the module (eval mode; frozen if requested).
        metadata: the checkpoint's JSON metadata.
        weights_sha256: provenance hash of the encoder weights (verified on load).
        path: the file.
    """

    encoder: TemporalAttentionEncoder
    metadata: Metadata
    weights_sha256: str
    path: Path

    def input_normalisation(self) -> dict[str, Any]:
        """The band order and statistics the encoder was trained with (its recorded ``normalisation``).

        Feed it with :func:`ecoembed.sources.chips.checkpoint_series`.

        Raises:
            CheckpointError: the checkpoint records no statistics, or statistics of another band order.
        """
        entry = self.metadata.get("normalisation")
        bands = list(self.metadata.get("bands", []))
        if not isinstance(entry, Mapping) or not entry.get("bands"):
            raise CheckpointError(f"{self.path} records no normalisation statistics, so its encoder's input is unknown; "
                                  "re-create it with `ecoembed pretrain` (which records them)")
        if bands and list(entry["bands"]) != bands:
            raise CheckpointError(f"{self.path}: normalisation band order {list(entry['bands'])} differs from the encoder's "
                                  f"{bands}; the checkpoint is inconsistent, re-create it")
        return dict(entry)


def build_from_metadata(meta: Mapping[str, Any], path: Path) -> TemporalAttentionEncoder:
    """Rebuild the (untrained) encoder described by checkpoint metadata; only registered classes."""
    encoder = build_encoder(meta.get("encoder") or {}, source=str(path))
    if not isinstance(encoder, TemporalAttentionEncoder):
        raise CheckpointError(f"{path}: encoder class {type(encoder).__name__} is not a stage-1 temporal encoder")
    return encoder


def load_encoder_checkpoint(
    path: str | os.PathLike[str],
    *,
    sensor: str | None = None,
    bands: Sequence[str] | None = None,
    freeze: bool = True,
) -> LoadedEncoder:
    """Load a stage-1 encoder, checking sensor, band order, shapes and the weights hash.

    Args:
        path: checkpoint file.
        sensor: expected sensor ("s2"/"s1"); None = any.
        bands: expected band order; None = the encoder class's declared order.
        freeze: set ``requires_grad=False`` on all parameters.

    Returns:
        :class:`LoadedEncoder` with the encoder in eval mode.

    Raises:
        CheckpointError: any mismatch, naming ``path`` and what differs.
    """
    p = Path(path)
    tensors, meta = read_encoder_checkpoint(p)
    if sensor is not None and meta.get("sensor") != sensor:
        raise CheckpointError(f"{p} is a {meta.get('sensor')!r} encoder checkpoint, but a {sensor!r} encoder was asked for")
    encoder = build_from_metadata(meta, p)
    expected = list(bands) if bands is not None else list(getattr(type(encoder), "BANDS", ()))
    if list(meta.get("bands", [])) != expected:
        raise CheckpointError(f"{p}: band order {meta.get('bands')} does not match the expected {expected}")
    try:
        encoder.load_state_dict(prefixed(tensors, "encoder."))
    except RuntimeError as exc:
        first = str(exc).splitlines()[1:3] or [str(exc)]
        raise CheckpointError(f"{p}: weights do not fit the encoder recorded in it ({' '.join(s.strip() for s in first)})") from exc
    sha = weights_sha256(encoder.state_dict())
    if meta.get("weights_sha256") and sha != meta["weights_sha256"]:
        raise CheckpointError(f"{p}: weights hash {sha[:12]} differs from the recorded {meta['weights_sha256'][:12]} (file altered?)")
    encoder.eval()
    if freeze:
        encoder.requires_grad_(False)
    return LoadedEncoder(encoder=encoder, metadata=meta, weights_sha256=sha, path=p)


def restore_training_state(
    path: Path,
    encoder: TemporalAttentionEncoder,
    decoder: nn.Module,
    optimizer: torch.optim.Optimizer,
    tensors: Mapping[str, Tensor],
    meta: Mapping[str, Any],
) -> None:
    """Load encoder, decoder and optimizer state from checkpoint tensors (for resuming)."""
    for module, prefix in ((encoder, "encoder."), (decoder, "decoder.")):
        try:
            module.load_state_dict(prefixed(tensors, prefix))
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: {prefix[:-1]} weights do not fit ({str(exc).splitlines()[0]}); "
                                  "use --no-resume or another --out") from exc
    if "optimizer" in meta:
        restore_optimizer(optimizer, tensors, meta["optimizer"]["param_groups"], path)


def export_encoder(
    source: str | os.PathLike[str], target: str | os.PathLike[str], extra_metadata: Mapping[str, Any] | None = None
) -> tuple[str, Metadata]:
    """Write an encoder-only copy of a training checkpoint (no decoder/optimizer: small, for shipping).

    Also writes a human-readable JSON sidecar ``<target minus suffix>.json`` with
    the same metadata plus the file's sha256.

    Returns:
        (file sha256 of ``target``, its metadata).
    """
    loaded = load_encoder_checkpoint(source, freeze=False)
    meta = {k: v for k, v in loaded.metadata.items() if k not in ("optimizer", "format", "encoder", "bands", "weights_sha256")}
    meta.update(extra_metadata or {})
    meta["exported_from_step"] = loaded.metadata.get("step")
    save_encoder_checkpoint(target, loaded.encoder, meta)
    _, written = read_encoder_checkpoint(target)
    os.chmod(target, 0o644)  # package data: readable by all (temporary files are created 0600)
    sha = file_sha256(target)
    sidecar = Path(target).with_suffix(".json")
    atomic_write_text(sidecar, json.dumps({**written, "file": Path(target).name, "file_sha256": sha}, indent=1) + "\n")
    return sha, written
