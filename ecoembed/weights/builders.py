"""Which module classes a checkpoint may ask for: a registry of named builders.

A checkpoint's metadata says ``{"class": "S2Encoder", "config": {...}}`` for
each stage-1 encoder. Only names registered here are instantiated, with the
recorded constructor arguments: a checkpoint cannot make the loader import or
call arbitrary code. The shipped encoder classes are registered at import;
:func:`register_encoder_builder` adds others (a new sensor's encoder, or a
test's fake).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from ecoembed.errors import CheckpointError
from ecoembed.models.encoders import ENCODER_CLASSES

EncoderBuilder = Callable[[Mapping[str, Any]], nn.Module]
_BUILDERS: dict[str, EncoderBuilder] = {}


def register_encoder_builder(name: str, builder: EncoderBuilder) -> None:
    """Let checkpoints whose encoder spec says ``{"class": name, "config": {...}}`` be rebuilt with ``builder(config)``."""
    _BUILDERS[name] = builder


def registered_encoders() -> list[str]:
    """Names of the encoder classes a checkpoint may ask for."""
    return sorted(_BUILDERS)


def build_encoder(spec: object, *, source: str) -> nn.Module:
    """The (untrained) encoder described by a checkpoint's spec ``{"class": name, "config": {...}}``.

    Args:
        spec: the spec as read from the checkpoint (untrusted data).
        source: the checkpoint file, named in errors.

    Raises:
        CheckpointError: the spec is not an object, names an unregistered class, or has an invalid config.
    """
    if not isinstance(spec, Mapping):
        raise CheckpointError(f"{source}: encoder spec {spec!r} is not an object; the checkpoint was not written by ecoembed")
    name = spec.get("class")
    if not isinstance(name, str) or name not in _BUILDERS:
        raise CheckpointError(f"{source}: unknown encoder class {name!r}, which is not registered (known: {registered_encoders()})")
    config = spec.get("config", {})
    if not isinstance(config, Mapping):
        raise CheckpointError(f"{source}: encoder config {config!r} is invalid (not an object); the architecture cannot be rebuilt")
    try:
        return _BUILDERS[name](config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: encoder config {dict(config)} is invalid ({exc}); the architecture cannot be rebuilt") from exc


def encoder_spec(encoder: nn.Module) -> dict[str, Any]:
    """The spec that :func:`build_encoder` turns back into ``encoder``'s architecture."""
    config = getattr(encoder, "config", None)
    return {"class": type(encoder).__name__, "config": config() if callable(config) else {}}


def _class_builder(cls: type[nn.Module]) -> EncoderBuilder:
    def build(config: Mapping[str, Any]) -> nn.Module:
        return cls(**config)

    return build


for _cls in ENCODER_CLASSES.values():
    register_encoder_builder(_cls.__name__, _class_builder(_cls))
