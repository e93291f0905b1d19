"""Registry of the pretrained stage-1 encoders shipped in ``ecoembed/data`` (torchgeo-style).

Each entry says which file holds the weights, its sha256 (verified before
loading), the band order and normalisation the encoder expects, and where the
weights come from. The shipped defaults are **trained on synthetic scenes**
(``ecoembed.sources.synthetic.make_scene``) by ``experiments/pretrain_default.py``:
they make the pipeline run end to end out of the box and are a reasonable
initialisation, not a substitute for pretraining on real Sentinel data
(``ecoembed pretrain --sensor s2 --data ...``).

File reading is delegated to :mod:`ecoembed.training.checkpoint` (safetensors only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecoembed.errors import CheckpointError
from ecoembed.models.encoders import S1_ENCODER_BANDS, S1_NORMALISATION, S2_ENCODER_BANDS, S2_NORMALISATION
from ecoembed.models.ltae import TemporalAttentionEncoder

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
"""Folder of the shipped weights (package data)."""


@dataclass(frozen=True)
class PretrainedWeights:
    """One registry entry.

    Attributes:
        sensor: "s2" or "s1".
        filename: file in :data:`DATA_DIR` (a JSON sidecar with the same stem describes it).
        sha256: sha256 of the file's bytes.
        bands: channel order the encoder expects.
        normalisation: what the input must be (the exact statistics are in the file's metadata).
        trained_on: provenance of the weights.
    """

    sensor: str
    filename: str
    sha256: str
    bands: tuple[str, ...]
    normalisation: str
    trained_on: str

    @property
    def path(self) -> Path:
        """Location of the weights file."""
        return DATA_DIR / self.filename


_TRAINED_ON = (
    "SYNTHETIC scenes only: ecoembed.sources.synthetic.make_scene (seeds 0-3, 32x32 px, 2019-2020), "
    "by experiments/pretrain_default.py; not a substitute for pretraining on real Sentinel data"
)

PRETRAINED: dict[str, PretrainedWeights] = {
    "s2": PretrainedWeights("s2", "s2_encoder.safetensors", "7abb7817f7f757f3abad71df4920da0eea96a7070314f8352e4b95b6029b29e3", S2_ENCODER_BANDS, S2_NORMALISATION, _TRAINED_ON),
    "s1": PretrainedWeights("s1", "s1_encoder.safetensors", "5ca2661c5bbc1c72371f956c5a902e4b38529e26494024be35284865d5e77ee9", S1_ENCODER_BANDS, S1_NORMALISATION, _TRAINED_ON),
}
"""Sensor -> shipped weights."""


def load_pretrained(sensor: str) -> TemporalAttentionEncoder:
    """The shipped pretrained encoder for ``sensor``, frozen (no gradients) and in eval mode.

    The file's sha256 is checked against the registry, then the checkpoint's
    own weights hash, sensor and band order (see
    :func:`ecoembed.training.checkpoint.load_encoder_checkpoint`). The
    checkpoint metadata (normalisation statistics, training history,
    ``synthetic=True``) is available via :func:`pretrained_metadata`.

    Raises:
        CheckpointError: unknown sensor, missing file or checksum mismatch.
    """
    from ecoembed.training.checkpoint import file_sha256, load_encoder_checkpoint

    entry = _entry(sensor)
    if not entry.path.is_file():
        raise CheckpointError(f"shipped weights {entry.path} are missing; reinstall ecoembed or run experiments/pretrain_default.py")
    sha = file_sha256(entry.path)
    if sha != entry.sha256:
        raise CheckpointError(f"shipped weights {entry.path} have sha256 {sha[:16]}..., the registry expects {entry.sha256[:16]}...; "
                              "the file is damaged or was replaced")
    return load_encoder_checkpoint(entry.path, sensor=sensor, bands=entry.bands, freeze=True).encoder


def pretrained_metadata(sensor: str) -> dict[str, Any]:
    """Metadata of the shipped checkpoint (normalisation statistics, history, ``synthetic``...)."""
    from ecoembed.training.checkpoint import read_checkpoint

    return read_checkpoint(_entry(sensor).path)[1]


def _entry(sensor: str) -> PretrainedWeights:
    if sensor not in PRETRAINED:
        raise CheckpointError(f"no pretrained encoder for sensor {sensor!r}; available: {sorted(PRETRAINED)}")
    return PRETRAINED[sensor]
