"""The weights shipped in ``ecoembed/weights/data`` (a torchgeo-style registry).

Each entry names the file, its sha256 (verified before loading), the band
order and normalisation the model expects, and where the weights come from;
a JSON sidecar beside each file (same stem) holds the full provenance
(training data, command, losses). The current defaults were pretrained
(self-supervised, no labels, no GPP) on **real Sentinel-2 and Sentinel-1
data** by ``experiments/pretrain_real.py``: three WorldCereal S1 + S2
patches, openEO monthly composites, WorldCereal point extractions and the
S2 band means of eight ICOS towers, plus four small synthetic scenes (so
that the synthetic demo stays in distribution). The WorldCereal patch
0000280849BAC91C is held out of every stage (the test patch of
``experiments/eval_real_patch.py``). They are small (d_model 64) CPU-trained
models: pretrain your own on your region with ``ecoembed pretrain``.
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


_S2_TRAINED_ON = (
    "REAL Sentinel-2 L2A (self-supervised): WorldCereal patches 00002806639B424A, 000028085BF08E7E, "
    "2021_TZA_COPERNICUS-GEOGLAM_POLY_1101950; openEO monthly composites (Flanders 101x101 px); WorldCereal "
    "point extractions (France 2022/2023, Canada 2017, Flanders 2021); S2 band means of 8 ICOS towers; plus "
    "SYNTHETIC make_scene seeds 0-3; held out: WorldCereal 0000280849BAC91C; by experiments/pretrain_real.py"
)
_S1_TRAINED_ON = (
    "REAL Sentinel-1 GRD ascending, dB (self-supervised): WorldCereal patches 00002806639B424A, "
    "000028085BF08E7E, 2021_TZA_COPERNICUS-GEOGLAM_POLY_1101950 on their 10 m S2 grids; plus SYNTHETIC "
    "make_scene seeds 0-3; held out: WorldCereal 0000280849BAC91C; by experiments/pretrain_real.py"
)
_FUSION_TRAINED_ON = (
    "REAL S2 + S1 pairs of the same three WorldCereal patches plus SYNTHETIC make_scene seeds 0-3, on the "
    "frozen shipped encoders; held out: WorldCereal 0000280849BAC91C; by experiments/pretrain_real.py"
)

SHIPPED: dict[str, ShippedWeights] = {
    "s2": ShippedWeights("s2", "s2_encoder.safetensors", "7dddbc37330f78e65930c5c253e886326193cb21b7cf3434e2e1f428e7e9c2da",
                         S2_ENCODER_BANDS, S2_NORMALISATION, _S2_TRAINED_ON, "run experiments/pretrain_real.py"),
    "s1": ShippedWeights("s1", "s1_encoder.safetensors", "a1aa02b80c063f7e87c246ba948a77f866ca0b502cdebc4cbe0274a9898b2068",
                         S1_ENCODER_BANDS, S1_NORMALISATION, _S1_TRAINED_ON, "run experiments/pretrain_real.py"),
    "fusion": ShippedWeights("fusion", "fusion.safetensors", "fa4ccc601506f97640263144a2e11826f7eb2563d6514e714a740d849a896887",
                             (*S2_ENCODER_BANDS, *S1_ENCODER_BANDS), f"S2: {S2_NORMALISATION} S1: {S1_NORMALISATION}",
                             _FUSION_TRAINED_ON, "run experiments/pretrain_real.py or pass --model"),
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
