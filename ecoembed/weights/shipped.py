"""The weights shipped in ``ecoembed/weights/data`` (a torchgeo-style registry).

Each entry names the file, its sha256 (verified before loading), the band
order and normalisation the model expects, and where the weights come from;
a JSON sidecar beside each file (same stem) holds the full provenance
(training data, command, losses). The current defaults were trained on
**synthetic scenes** (``ecoembed.sources.synthetic.make_scene``) by
``experiments/pretrain_default.py`` (stage-1 encoders) and
``experiments/pretrain_fusion_default.py`` (fusion): they make the pipeline
run end to end out of the box; they are not a substitute for pretraining on
real Sentinel data (``ecoembed pretrain --data ...``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ecoembed.errors import CheckpointError
from ecoembed.models.encoders import S1_ENCODER_BANDS, S1_NORMALISATION, S2_ENCODER_BANDS, S2_NORMALISATION
from ecoembed.models.ltae import TemporalAttentionEncoder
from ecoembed.weights.encoder_checkpoint import load_encoder_checkpoint, read_encoder_checkpoint
from ecoembed.weights.format import Metadata, file_sha256
from ecoembed.weights.fusion_checkpoint import LoadedModel, load_fusion_checkpoint

DATA_DIR = Path(__file__).resolve().parent / "data"
"""Folder of the shipped weights (package data)."""


@dataclass(frozen=True)
class ShippedWeights:
    """One registry entry.

    Attributes:
        name: ``"s2"``, ``"s1"`` (stage-1 encoders) or ``"fusion"`` (encoders + fusion network).
        filename: file in :data:`DATA_DIR` (a JSON sidecar with the same stem describes it).
        sha256: sha256 of the file's bytes.
        bands: channel order the model expects (per modality for the fusion entry: S2 then S1).
        normalisation: what the input must be (the exact statistics are in the file's metadata).
        trained_on: provenance of the weights.
        remedy: how to re-create the file.
    """

    name: str
    filename: str
    sha256: str
    bands: tuple[str, ...]
    normalisation: str
    trained_on: str
    remedy: str

    @property
    def path(self) -> Path:
        """Location of the weights file."""
        return DATA_DIR / self.filename


_STAGE1_TRAINED_ON = (
    "SYNTHETIC scenes only: ecoembed.sources.synthetic.make_scene (seeds 0-3, 32x32 px, 2019-2020), "
    "by experiments/pretrain_default.py; not a substitute for pretraining on real Sentinel data"
)
_FUSION_TRAINED_ON = (
    "SYNTHETIC scenes only: ecoembed.sources.synthetic.make_scene (seeds 101-164, 12x12 px, 2019), "
    "on the shipped stage-1 encoders, by experiments/pretrain_fusion_default.py"
)

SHIPPED: dict[str, ShippedWeights] = {
    "s2": ShippedWeights("s2", "s2_encoder.safetensors", "7abb7817f7f757f3abad71df4920da0eea96a7070314f8352e4b95b6029b29e3",
                         S2_ENCODER_BANDS, S2_NORMALISATION, _STAGE1_TRAINED_ON, "run experiments/pretrain_default.py"),
    "s1": ShippedWeights("s1", "s1_encoder.safetensors", "5ca2661c5bbc1c72371f956c5a902e4b38529e26494024be35284865d5e77ee9",
                         S1_ENCODER_BANDS, S1_NORMALISATION, _STAGE1_TRAINED_ON, "run experiments/pretrain_default.py"),
    "fusion": ShippedWeights("fusion", "fusion.safetensors", "6d8e18e75dac28ee780b4b7875d8effd553fae58c78331cf937450ba195f3c2c",
                             (*S2_ENCODER_BANDS, *S1_ENCODER_BANDS), f"S2: {S2_NORMALISATION} S1: {S1_NORMALISATION}",
                             _FUSION_TRAINED_ON, "run experiments/pretrain_fusion_default.py or pass --model"),
}
"""Name -> shipped weights."""


def shipped_path(name: str) -> Path:
    """Path of the shipped file ``name`` after checking it exists and has the registered sha256.

    Raises:
        CheckpointError: unknown name, missing file or checksum mismatch.
    """
    if name not in SHIPPED:
        raise CheckpointError(f"no pretrained encoder or model {name!r}; available: {sorted(SHIPPED)}")
    entry = SHIPPED[name]
    if not entry.path.is_file():
        raise CheckpointError(f"shipped weights {entry.path} are missing; reinstall ecoembed or {entry.remedy}")
    sha = file_sha256(entry.path)
    if sha != entry.sha256:
        raise CheckpointError(f"shipped weights {entry.path} have sha256 {sha[:16]}..., the registry expects "
                              f"{entry.sha256[:16]}...; the file is damaged or was replaced")
    return entry.path


def load_pretrained(sensor: str) -> TemporalAttentionEncoder:
    """The shipped stage-1 encoder of ``sensor`` ("s2"/"s1"), frozen (no gradients) and in eval mode.

    The file's sha256 is checked against the registry, then the checkpoint's
    own weights hash, sensor and band order.

    Raises:
        CheckpointError: unknown sensor, missing file or checksum mismatch.
    """
    if sensor not in ("s2", "s1"):
        raise CheckpointError(f"no pretrained encoder for sensor {sensor!r}; available: ['s1', 's2']")
    return load_encoder_checkpoint(shipped_path(sensor), sensor=sensor, bands=SHIPPED[sensor].bands, freeze=True).encoder


def pretrained_metadata(name: str) -> Metadata:
    """Metadata of a shipped checkpoint (normalisation statistics, history, ``synthetic`` ...)."""
    if name == "fusion":
        return load_fusion_checkpoint(shipped_path(name)).metadata
    return read_encoder_checkpoint(shipped_path(name))[1]


def load_fusion_model(path: str | os.PathLike[str] | None = None) -> LoadedModel:
    """Encoders + fusion from ``path``, or the shipped default (checksum-verified) when ``path`` is None.

    Raises:
        CheckpointError: missing/corrupt/altered file or an architecture that cannot be rebuilt.
    """
    return load_fusion_checkpoint(shipped_path("fusion") if path is None else path)
