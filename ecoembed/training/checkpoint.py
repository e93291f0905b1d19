"""Safe stage-1 checkpoints: safetensors only (never pickle), atomic writes, clear errors.

One file holds everything needed to resume or to use an encoder:

* tensors: ``encoder.*`` (the model), ``decoder.*`` (pretraining head) and
  ``optim.<param index>.<name>`` (AdamW moments and step counts);
* safetensors metadata key ``ecoembed`` = JSON with the format tag, sensor,
  encoder class and constructor config, band order, normalisation
  statistics, training config, step, loss history, optimizer hyper-parameters
  and ``weights_sha256`` (provenance hash of the encoder weights only).

Files are written to a temporary sibling and renamed into place
(:func:`ecoembed.io_utils.atomic_path`), so a crash never leaves a half
checkpoint. Reading uses :mod:`safetensors` only, so a checkpoint cannot run
code. Every problem (missing, truncated/corrupt, wrong format, wrong sensor,
band order or shapes) raises :class:`~ecoembed.errors.CheckpointError`
naming the file and the mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ecoembed.errors import CheckpointError
from ecoembed.io_utils import atomic_path
from ecoembed.models.encoders import ENCODER_CLASSES
from ecoembed.models.ltae import TemporalAttentionEncoder

STAGE1_FORMAT = "ecoembed.stage1.v1"
"""Format tag stored in every stage-1 checkpoint."""

METADATA_KEY = "ecoembed"


def weights_sha256(state: Mapping[str, Tensor]) -> str:
    """Content hash of a state dict: sha256 over sorted names, dtypes, shapes and raw bytes.

    Independent of file layout and metadata, so it identifies the weights themselves.
    """
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes (for registries of shipped weights)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], list[dict[str, Any]]]:
    sd = optimizer.state_dict()
    tensors: dict[str, Tensor] = {}
    for index, state in sd["state"].items():
        for key, value in state.items():
            t = value if isinstance(value, Tensor) else torch.tensor(value)
            tensors[f"optim.{index}.{key}"] = t.detach().cpu().contiguous()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, groups


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: Mapping[str, Tensor], groups: Sequence[Mapping[str, Any]], path: Path) -> None:
    state: dict[int, dict[str, Tensor]] = {}
    for name, t in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = t
    restored = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in groups]
    try:
        optimizer.load_state_dict({"state": state, "param_groups": restored})
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: optimizer state does not fit the model ({exc}); use --no-resume") from exc


optimizer_tensors = _optimizer_tensors
"""Public name: optimizer state -> (flat tensors ``optim.<index>.<name>``, JSON param groups)."""

restore_optimizer = _restore_optimizer
"""Public name: inverse of :data:`optimizer_tensors` (raises CheckpointError naming the file)."""


def save_checkpoint(
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
    from safetensors.torch import save_file

    enc_state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    sha = weights_sha256(enc_state)
    tensors = {f"encoder.{k}": v for k, v in enc_state.items()}
    if decoder is not None:
        tensors.update({f"decoder.{k}": v.detach().cpu().contiguous() for k, v in decoder.state_dict().items()})
    meta: dict[str, Any] = {
        **dict(metadata),
        "format": STAGE1_FORMAT,
        "sensor": type(encoder).SENSOR if hasattr(type(encoder), "SENSOR") else None,
        "encoder": {"class": type(encoder).__name__, "config": encoder.config()},
        "bands": list(getattr(type(encoder), "BANDS", ())),
        "expected_input": getattr(type(encoder), "NORMALISATION", ""),
        "weights_sha256": sha,
        "torch_version": torch.__version__,
    }
    if optimizer is not None:
        optim_tensors, groups = _optimizer_tensors(optimizer)
        tensors.update(optim_tensors)
        meta["optimizer"] = {"class": type(optimizer).__name__, "param_groups": groups}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})
    return sha


def not_safetensors_hint(path: str | os.PathLike[str]) -> str:
    """A hint when ``path`` looks like a pickle or ``torch.save`` file (never unpickled here), else ''."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return ""
    if head[:1] == b"\x80" or head.startswith(b"PK\x03\x04"):
        return ("; it looks like a pickle/torch.save (.pt) file, which ecoembed never loads (unpickling can run code): "
                "use an ecoembed .safetensors checkpoint")
    return ""


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read tensors and metadata of a stage-1 checkpoint (safetensors only).

    Raises:
        CheckpointError: missing, unreadable/truncated, or not a stage-1 checkpoint.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist; train one with `ecoembed pretrain` or check the path")
    try:
        from safetensors import safe_open

        with safe_open(str(p), framework="pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
        tensors = load_file(str(p))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"checkpoint {p} is corrupt or truncated ({exc}){not_safetensors_hint(p) or '; delete it and retrain, or restore a copy'}"
        ) from exc
    if raw is None:
        raise CheckpointError(f"checkpoint {p} has no '{METADATA_KEY}' metadata; it was not written by ecoembed")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint {p} has unreadable metadata ({exc})") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {p} has metadata of type {type(meta).__name__}, not an object; it was not written by ecoembed")
    if meta.get("format") != STAGE1_FORMAT:
        raise CheckpointError(f"checkpoint {p} has format {meta.get('format')!r}, expected {STAGE1_FORMAT!r} (a fusion checkpoint?)")
    return tensors, meta


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
    metadata: dict[str, Any]
    weights_sha256: str
    path: Path


def _prefixed(tensors: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def build_from_metadata(meta: Mapping[str, Any], path: Path) -> TemporalAttentionEncoder:
    """Rebuild the (untrained) encoder described by checkpoint metadata; only known classes."""
    spec = meta.get("encoder") or {}
    if not isinstance(spec, dict):
        raise CheckpointError(f"{path}: encoder spec {spec!r} is not an object; the checkpoint was not written by ecoembed")
    classes = {cls.__name__: cls for cls in ENCODER_CLASSES.values()}
    if spec.get("class") not in classes:
        raise CheckpointError(f"{path}: unknown encoder class {spec.get('class')!r} (known: {sorted(classes)})")
    try:
        return classes[spec["class"]](**spec.get("config", {}))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: encoder config {spec.get('config')} is invalid ({exc})") from exc


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
    tensors, meta = read_checkpoint(p)
    if sensor is not None and meta.get("sensor") != sensor:
        raise CheckpointError(f"{p} is a {meta.get('sensor')!r} encoder checkpoint, but a {sensor!r} encoder was asked for")
    encoder = build_from_metadata(meta, p)
    expected = list(bands) if bands is not None else list(type(encoder).BANDS)
    if list(meta.get("bands", [])) != expected:
        raise CheckpointError(f"{p}: band order {meta.get('bands')} does not match the expected {expected}")
    state = _prefixed(tensors, "encoder.")
    try:
        encoder.load_state_dict(state)
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


def export_encoder(
    source: str | os.PathLike[str], target: str | os.PathLike[str], extra_metadata: Mapping[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
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
    save_checkpoint(target, loaded.encoder, meta)
    _, written = read_checkpoint(target)
    os.chmod(target, 0o644)  # package data: readable by all (temporary files are created 0600)
    sha = file_sha256(target)
    sidecar = Path(target).with_suffix(".json")
    from ecoembed.io_utils import atomic_write_text

    atomic_write_text(sidecar, json.dumps({**written, "file": Path(target).name, "file_sha256": sha}, indent=1) + "\n")
    return sha, written


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
            module.load_state_dict(_prefixed(tensors, prefix))
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: {prefix[:-1]} weights do not fit ({str(exc).splitlines()[0]}); use --no-resume or another --out") from exc
    if "optimizer" in meta:
        _restore_optimizer(optimizer, tensors, meta["optimizer"]["param_groups"], path)
