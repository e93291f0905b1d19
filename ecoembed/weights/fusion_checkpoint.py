"""Fusion checkpoints: stage-1 encoders + fusion network (+ optimizer state) in one safetensors file.

Metadata (format :data:`~ecoembed.weights.format.FUSION_FORMAT`): the fusion
config, the encoder specs (how to rebuild each stage-1 encoder, see
:mod:`ecoembed.weights.builders`), ``weights_sha256`` over the model tensors
(encoders + fusion, optimizer excluded), the band order and normalisation
statistics of each modality, and training provenance.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecoembed.errors import CheckpointError
from ecoembed.models.fusion import FusedEmbeddingModel, FusionNetwork
from ecoembed.weights.builders import build_encoder
from ecoembed.weights.format import (
    FUSION_FORMAT,
    Metadata,
    Tensors,
    prefixed,
    read_checkpoint,
    weights_sha256,
    write_checkpoint,
)

MISSING_HINT = "train one with `ecoembed pretrain --stage fusion` or omit --model"


def save_fusion_checkpoint(
    path: str | os.PathLike[str],
    model: FusedEmbeddingModel,
    encoder_specs: Mapping[str, Mapping[str, Any]],
    *,
    optimizer: torch.optim.Optimizer | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Write encoders + fusion (+ optimizer state) atomically as one safetensors file.

    Args:
        path: target ``.safetensors`` file.
        model: the encoders and fusion network.
        encoder_specs: modality -> ``{"class", "config"}`` to rebuild each encoder when loading.
        optimizer: stored to resume training.
        extra: more metadata (step, history, training config, normalisation ...).

    Returns:
        sha256 of the model weights (encoders + fusion, optimizer excluded).
    """
    state: Tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    sha = weights_sha256(state)
    meta: Metadata = {
        "format": FUSION_FORMAT,
        "fusion_config": model.fusion.config(),
        "encoders": {k: dict(v) for k, v in encoder_specs.items()},
        "weights_sha256": sha,
        **(dict(extra) if extra else {}),
    }
    write_checkpoint(path, state, meta, optimizer=optimizer)
    return sha


def read_fusion_checkpoint(path: str | os.PathLike[str]) -> tuple[Tensors, Metadata]:
    """Tensors and metadata of a fusion checkpoint whose model weights match their recorded sha256.

    Raises:
        CheckpointError: missing, truncated/corrupt, not a fusion checkpoint, or altered weights.
    """
    p = Path(path)
    tensors, meta = read_checkpoint(p, FUSION_FORMAT, missing_hint=MISSING_HINT)
    model_state = {k: v for k, v in tensors.items() if k.startswith("model.")}
    if weights_sha256(model_state) != meta.get("weights_sha256"):
        raise CheckpointError(f"fusion checkpoint {p}: weights do not match their recorded sha256 (corrupt file)")
    return tensors, meta


@dataclass
class LoadedModel:
    """A fusion checkpoint ready for inference.

    Attributes:
        model: encoders + fusion network, eval mode.
        path: the file (resolved).
        sha256: the model weights' hash (verified).
        metadata: the checkpoint's metadata.
    """

    model: FusedEmbeddingModel
    path: Path
    sha256: str
    metadata: Metadata

    @property
    def synthetic(self) -> bool:
        """Whether the weights were trained on synthetic data only."""
        return bool(self.metadata.get("synthetic", False))

    def normalisation(self, modality: str) -> dict[str, Any] | None:
        """The band order and normalisation statistics the checkpoint records for ``modality`` (None if absent)."""
        norm = self.metadata.get("normalisation")
        entry = norm.get(modality) if isinstance(norm, Mapping) else None
        return dict(entry) if isinstance(entry, Mapping) else None

    def input_normalisation(self, modality: str) -> dict[str, Any]:
        """What the checkpoint's ``modality`` encoder takes: its recorded band order and statistics (never defaults).

        Feed it with :func:`ecoembed.sources.chips.checkpoint_series` (``embed.infer.model_series``).

        Raises:
            CheckpointError: the model has no such modality, records no band order / statistics for
                it, or records a band order whose length differs from the channels of its head.
        """
        if modality not in self.model.fusion.modalities:
            raise CheckpointError(f"{self.path} has no {modality!r} modality (it has {', '.join(self.model.fusion.modalities)})")
        entry = self.normalisation(modality)
        if not entry or not isinstance(entry.get("bands"), (list, tuple)) or not entry["bands"]:
            raise CheckpointError(f"{self.path} records no {modality} band order/normalisation statistics, so its encoder's "
                                  "input is unknown; re-create it with `ecoembed pretrain --stage fusion` (which records them)")
        channels = self.model.fusion.modality_configs[modality].n_channels
        if len(entry["bands"]) != channels:
            raise CheckpointError(f"{self.path}: its {modality} band order {list(entry['bands'])} has {len(entry['bands'])} bands, "
                                  f"its network {channels} channels; the checkpoint is inconsistent, re-create it")
        return entry


def load_fusion_checkpoint(path: str | os.PathLike[str]) -> LoadedModel:
    """Load encoders + fusion from a fusion checkpoint, eval mode.

    A JSON sidecar beside the file (``<stem>.json``, as shipped weights have)
    must agree on ``weights_sha256``.

    Raises:
        CheckpointError: missing/corrupt file, unregistered encoder class, or shape mismatch.
    """
    p = Path(path)
    tensors, meta = read_fusion_checkpoint(p)
    sidecar = p.with_suffix(".json")
    if sidecar.is_file():
        try:
            expected = json.loads(sidecar.read_text(encoding="utf-8")).get("weights_sha256")
        except (OSError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{sidecar}: unreadable sidecar of {p.name} ({exc}); remove or restore it") from exc
        if expected and expected != meta["weights_sha256"]:
            raise CheckpointError(f"{p}: weights sha256 {meta['weights_sha256'][:12]}... differs from {sidecar.name} ({expected[:12]}...)")
    try:  # metadata is data from the file: any malformed field is a CheckpointError, never a crash
        fusion = FusionNetwork(**meta["fusion_config"])
        encoders: dict[str, nn.Module] = {}
        specs = meta.get("encoders", {})
        for name, spec in specs.items():
            encoders[name] = build_encoder(spec, source=str(p))
        model = FusedEmbeddingModel(encoders, fusion)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise CheckpointError(f"{p}: the architecture recorded in it cannot be rebuilt ({type(exc).__name__}: {exc}); "
                              "re-create it") from exc
    try:
        model.load_state_dict(prefixed(tensors, "model."))
    except RuntimeError as exc:
        raise CheckpointError(f"{p}: weights do not fit the architecture recorded in it ({str(exc).splitlines()[0]})") from exc
    model.eval()
    return LoadedModel(model=model, path=p.resolve(), sha256=meta["weights_sha256"], metadata=meta)
