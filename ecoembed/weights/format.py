"""The checkpoint file format: safetensors tensors plus one JSON metadata entry, never pickle.

Every ecoembed checkpoint is a ``.safetensors`` file whose header metadata has
one key, :data:`METADATA_KEY`, holding a JSON object with a ``format`` tag
(:data:`STAGE1_FORMAT` for a stage-1 encoder, :data:`FUSION_FORMAT` for
encoders + fusion network), the architecture needed to rebuild the modules,
the band order and normalisation statistics, provenance and, for training
checkpoints, the optimizer's hyper-parameters. Optimizer moments are stored as
plain tensors ``optim.<param index>.<name>``.

Files are written to a temporary sibling and renamed into place
(:func:`ecoembed.io_utils.atomic_path`), so a crash never leaves half a
checkpoint. Reading goes through :mod:`safetensors` only, so a checkpoint
cannot run code; every problem (missing, truncated, crafted header, wrong
format, unreadable metadata) raises :class:`~ecoembed.errors.CheckpointError`
naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from ecoembed.errors import CheckpointError
from ecoembed.io_utils import atomic_path

METADATA_KEY = "ecoembed"
"""Key of the JSON metadata in the safetensors header."""
STAGE1_FORMAT = "ecoembed.stage1.v1"
"""Format tag of stage-1 encoder checkpoints."""
FUSION_FORMAT = "ecoembed.fusion.v1"
"""Format tag of fusion checkpoints (stage-1 encoders + fusion network)."""

Tensors = dict[str, Tensor]
Metadata = dict[str, Any]


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
    """sha256 of a file's bytes (registries of shipped weights)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def write_checkpoint(path: str | os.PathLike[str], tensors: Mapping[str, Tensor], metadata: Mapping[str, Any], *,
                     optimizer: torch.optim.Optimizer | None = None) -> None:
    """Write ``tensors`` and the JSON ``metadata`` as one safetensors file, atomically.

    With ``optimizer``, its state is stored too (:func:`optimizer_tensors`, metadata key ``optimizer``)
    so that training can resume.
    """
    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = dict(metadata)
    if optimizer is not None:
        optim, groups = optimizer_tensors(optimizer)
        flat.update(optim)
        meta["optimizer"] = {"class": type(optimizer).__name__, "param_groups": groups}
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})


def read_checkpoint(path: str | os.PathLike[str], expected_format: str, *, missing_hint: str) -> tuple[Tensors, Metadata]:
    """Tensors and metadata of an ecoembed checkpoint of ``expected_format`` (safetensors only; never unpickles).

    Args:
        path: the ``.safetensors`` file.
        expected_format: :data:`STAGE1_FORMAT` or :data:`FUSION_FORMAT`.
        missing_hint: what to do when the file does not exist (appended to the message).

    Raises:
        CheckpointError: missing, truncated/corrupt or crafted file, no or unreadable metadata, another format.
    """
    p = Path(path)
    what = "fusion checkpoint" if expected_format == FUSION_FORMAT else "checkpoint"
    if not p.is_file():
        raise CheckpointError(f"{what} {p} does not exist; {missing_hint}")
    try:
        with safe_open(str(p), framework="pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has keys(), not iteration
    except Exception as exc:
        hint = not_safetensors_hint(p) or "; delete it and retrain, or restore a copy"
        raise CheckpointError(f"{what} {p} is corrupt or truncated ({exc}){hint}") from exc
    if raw is None:
        raise CheckpointError(f"{what} {p} has no '{METADATA_KEY}' metadata; it was not written by ecoembed")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{what} {p} has unreadable metadata ({exc}); re-create it") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{what} {p} has metadata of type {type(meta).__name__}, not an object; it was not written by ecoembed")
    if meta.get("format") != expected_format:
        other = "a stage-1 encoder checkpoint?" if expected_format == FUSION_FORMAT else "a fusion checkpoint?"
        raise CheckpointError(f"{p} has format {meta.get('format')!r}, expected {expected_format!r} ({other})")
    return tensors, meta


def prefixed(tensors: Mapping[str, Tensor], prefix: str) -> Tensors:
    """The tensors whose names start with ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[Tensors, list[dict[str, Any]]]:
    """Optimizer state -> (flat tensors ``optim.<index>.<name>``, JSON-serialisable param groups)."""
    sd = optimizer.state_dict()
    tensors: Tensors = {}
    for index, state in sd["state"].items():
        for key, value in state.items():
            t = value if isinstance(value, Tensor) else torch.tensor(value)
            tensors[f"optim.{index}.{key}"] = t.detach().cpu().contiguous()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, groups


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: Mapping[str, Tensor], groups: Sequence[Mapping[str, Any]],
                      path: Path) -> None:
    """Inverse of :func:`optimizer_tensors`.

    Raises:
        CheckpointError: the saved state does not fit ``optimizer`` (names the file).
    """
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
