"""Checkpoint formats, the model registry, shipped weights and loading (no training here).

* :mod:`ecoembed.weights.format`: the safetensors + JSON metadata file format, hashes, optimizer state.
* :mod:`ecoembed.weights.builders`: which encoder classes a checkpoint may name (a registry, never arbitrary code).
* :mod:`ecoembed.weights.encoder_checkpoint`: stage-1 encoder checkpoints (save, load with checks, export).
* :mod:`ecoembed.weights.fusion_checkpoint`: encoders + fusion checkpoints (save, read, load for inference).
* :mod:`ecoembed.weights.shipped`: the registry of weights shipped in ``ecoembed/weights/data`` and their loaders.
"""

from ecoembed.weights.encoder_checkpoint import LoadedEncoder, load_encoder_checkpoint, save_encoder_checkpoint
from ecoembed.weights.fusion_checkpoint import LoadedModel, load_fusion_checkpoint, save_fusion_checkpoint
from ecoembed.weights.shipped import SHIPPED, load_fusion_model, load_pretrained, pretrained_metadata

__all__ = [
    "SHIPPED",
    "LoadedEncoder",
    "LoadedModel",
    "load_encoder_checkpoint",
    "load_fusion_checkpoint",
    "load_fusion_model",
    "load_pretrained",
    "pretrained_metadata",
    "save_encoder_checkpoint",
    "save_fusion_checkpoint",
]
