"""The shipped pretrained S2/S1 encoders: registry, checksum, provenance, and a linear-probe check."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ecoembed.errors import CheckpointError
from ecoembed.models.encoders import ENCODER_CLASSES, S1Encoder, S2Encoder
from ecoembed.sources.chips import cube_to_series
from ecoembed.sources.synthetic import make_scene
from ecoembed.training.probe import encode_series, mean_of_valid, ridge_probe_r2
from ecoembed.weights import shipped as pretrained
from ecoembed.weights.format import file_sha256
from ecoembed.weights.shipped import SHIPPED as PRETRAINED
from ecoembed.weights.shipped import load_pretrained, pretrained_metadata

HELDOUT_SEED = 100
"""Synthetic scene never trained on (the shipped weights saw make_scene seeds 0-3 only)."""


def _heldout_scene(size_px: int = 24):
    return make_scene(size_px=size_px, start="2019-01-01", end="2020-12-31", seed=HELDOUT_SEED)


@pytest.mark.parametrize(("sensor", "cls"), [("s2", S2Encoder), ("s1", S1Encoder)])
def test_shipped_default_is_frozen_checked_and_names_its_real_training_data(sensor, cls):
    entry = PRETRAINED[sensor]
    assert entry.path.stat().st_size < 1_000_000  # tiny (both files together well under 5 MB)
    assert file_sha256(entry.path) == entry.sha256
    enc = load_pretrained(sensor)
    assert isinstance(enc, cls) and not enc.training
    assert not any(p.requires_grad for p in enc.parameters())
    meta = pretrained_metadata(sensor)
    assert meta["real_data"] is True and meta["synthetic"] is False and "REAL" in entry.trained_on
    assert any("worldcereal/" in name for name in meta["trained_on"])  # the sidecar names each real input
    assert meta["held_out"] == "worldcereal/0000280849BAC91C" and "0000280849BAC91C" in entry.trained_on
    assert not any("0000280849BAC91C" in name for name in meta["trained_on"])
    assert meta["bands"] == list(cls.BANDS) == list(entry.bands)
    assert len(meta["normalisation"]["mean"]) == len(cls.BANDS)
    curve = meta["reconstruction_mse_per_epoch"]
    assert curve[-1] < curve[0]  # the shipped training reduced the masked-date reconstruction error


def test_registry_refuses_a_damaged_file(monkeypatch, tmp_path):
    damaged = tmp_path / "s2_encoder.safetensors"
    data = bytearray(PRETRAINED["s2"].path.read_bytes())
    data[-5] ^= 0xFF
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "DATA_DIR", tmp_path)
    with pytest.raises(CheckpointError, match="sha256"):
        load_pretrained("s2")
    monkeypatch.setitem(PRETRAINED, "s2", replace(PRETRAINED["s2"], filename="absent.safetensors"))
    with pytest.raises(CheckpointError, match="missing"):
        load_pretrained("s2")
    with pytest.raises(CheckpointError, match="no pretrained encoder"):
        load_pretrained("landsat")


@pytest.mark.parametrize("sensor", ["s2", "s1"])
def test_frozen_embedding_probe_beats_raw_mean_on_heldout_scene(sensor):
    """Ridge probe (5-fold CV R²) on a held-out synthetic scene (seed 100, never trained on):
    per-pixel mean LAI over 2019-2020 from the shipped frozen embedding vs from the
    per-band mean of valid dates (S2: reflectance; S1: dB)."""
    scene = _heldout_scene()
    series = cube_to_series(getattr(scene, sensor), bands=list(ENCODER_CLASSES[sensor].BANDS), normalize=True)
    target = scene.truth["lai"].mean("time").transpose("y", "x").values.reshape(-1).astype(np.float64)
    emb = encode_series(load_pretrained(sensor), series.values, series.days, series.valid, series.orbit)
    r2_embedding = ridge_probe_r2(emb, target)
    r2_raw = ridge_probe_r2(mean_of_valid(series.values, series.valid), target)
    print(f"{sensor}: R2 embedding {r2_embedding:.3f} vs raw mean {r2_raw:.3f}")
    assert np.isfinite(emb).all()
    assert r2_embedding > r2_raw
