"""The shipped pretrained S2/S1 encoders: registry, checksum, provenance, and a linear-probe check."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ecoembed.errors import CheckpointError
from ecoembed.models.encoders import S1Encoder, S2Encoder
from ecoembed.training.probe import encode_series, mean_of_valid, ridge_probe_r2
from ecoembed.weights import shipped as pretrained
from ecoembed.weights.format import file_sha256
from ecoembed.weights.shipped import SHIPPED as PRETRAINED
from ecoembed.weights.shipped import load_pretrained, pretrained_metadata

REPO = Path(__file__).resolve().parents[2]


def _default_script():
    spec = importlib.util.spec_from_file_location("pretrain_default", REPO / "experiments" / "pretrain_default.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("pretrain_default", module)  # dataclasses need their module registered
    spec.loader.exec_module(module)
    return sys.modules["pretrain_default"]


@pytest.mark.parametrize(("sensor", "cls"), [("s2", S2Encoder), ("s1", S1Encoder)])
def test_shipped_default_is_frozen_checked_and_labelled_synthetic(sensor, cls):
    entry = PRETRAINED[sensor]
    assert entry.path.stat().st_size < 1_000_000  # tiny (both files together well under 5 MB)
    assert file_sha256(entry.path) == entry.sha256
    enc = load_pretrained(sensor)
    assert isinstance(enc, cls) and not enc.training
    assert not any(p.requires_grad for p in enc.parameters())
    meta = pretrained_metadata(sensor)
    assert meta["synthetic"] is True and "synthetic" in entry.trained_on.lower()
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
    script = _default_script()
    scene = script.scenes((script.HELDOUT_SEED,), size_px=24)[0]
    series = script.pixel_series(sensor, scene)
    target = script.probe_targets(scene)["lai"]
    emb = encode_series(load_pretrained(sensor), series.values, series.days, series.valid, series.orbit)
    r2_embedding = ridge_probe_r2(emb, target)
    r2_raw = ridge_probe_r2(mean_of_valid(series.values, series.valid), target)
    print(f"{sensor}: R2 embedding {r2_embedding:.3f} vs raw mean {r2_raw:.3f}")
    assert np.isfinite(emb).all()
    assert r2_embedding > r2_raw
