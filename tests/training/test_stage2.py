"""Stage-2 training: same-tile exclusion, cloud-blind loss, frozen encoders, resume, new modality."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from support.fusion_fakes import FakeEncoder, toy_scene, without

from ecoembed.errors import CheckpointError
from ecoembed.models.fusion import FusedEmbeddingModel, FusionNetwork, ModalityConfig
from ecoembed.models.losses import cross_modal_infonce, same_tile_exclusion_mask
from ecoembed.training.fusion_data import PixelSampler
from ecoembed.training.stage2 import FusionTrainConfig, learning_rate, pretrain_fusion, training_step
from ecoembed.weights.format import weights_sha256
from ecoembed.weights.fusion_checkpoint import read_fusion_checkpoint

TINY = {"d_model": 16, "embed_dim": 16, "n_heads": 2, "n_layers": 1, "batch_size": 32}


def _encoders() -> dict[str, FakeEncoder]:
    return {"s2": FakeEncoder(10, seed=1), "s1": FakeEncoder(2, seed=2)}


def test_same_tile_exclusion_mask() -> None:
    tiles = torch.tensor([0, 0, 1, 2, 1])
    mask = same_tile_exclusion_mask(tiles)
    expected = torch.zeros(5, 5, dtype=torch.bool)
    expected[0, 1] = expected[1, 0] = True
    expected[2, 4] = expected[4, 2] = True
    assert torch.equal(mask, expected)  # diagonal (the positive) is never excluded


def test_infonce_ignores_same_tile_pixels_entirely() -> None:
    torch.manual_seed(0)
    tiles = torch.tensor([0, 0, 1, 1, 2, 2])
    za, zb = torch.randn(6, 4), torch.randn(6, 4)
    ref = cross_modal_infonce(za, zb, tiles)
    # Making pixel 1's S1 summary identical to pixel 0's S2 summary would be a hard negative for
    # pixel 0 -- but pixel 1 shares pixel 0's tile, so the loss of pixel 0 must not change.
    zb2 = zb.clone()
    zb2[1] = za[0] * 10
    rows_ref = _row_losses(za, zb, tiles)
    rows_new = _row_losses(za, zb2, tiles)
    assert rows_new[0] == pytest.approx(rows_ref[0])
    # ...whereas a pixel from another tile is a real negative.
    zb3 = zb.clone()
    zb3[2] = za[0] * 10
    assert _row_losses(za, zb3, tiles)[0] > rows_ref[0] + 0.1
    # Single tile: no negatives at all -> loss of each row is log(1) = 0.
    assert float(cross_modal_infonce(za, zb, torch.zeros(6, dtype=torch.long))) == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(ref)


def _row_losses(za: torch.Tensor, zb: torch.Tensor, tiles: torch.Tensor) -> list[float]:
    a = torch.nn.functional.normalize(za, dim=-1)
    b = torch.nn.functional.normalize(zb, dim=-1)
    logits = (a @ b.T / 0.1).masked_fill(same_tile_exclusion_mask(tiles), float("-inf"))
    return (-torch.log_softmax(logits, dim=1).diagonal()).tolist()


def test_cloudy_dates_never_count_in_the_loss() -> None:
    scene = without(toy_scene(seed=3), "meteo")
    cfg = FusionTrainConfig(**TINY)
    torch.manual_seed(0)
    fusion = FusionNetwork({"s2": ModalityConfig(8, 10), "s1": ModalityConfig(8, 2, 2)}, d_model=16, embed_dim=16, n_heads=2, n_layers=1)
    model = FusedEmbeddingModel(_encoders(), fusion)
    sampler = PixelSampler([scene], ("s2", "s1"), tile_px=4)
    arrays, tiles = sampler.batch(np.arange(20))
    ref = training_step(model, arrays, tiles, cfg, torch.Generator().manual_seed(5))
    cloudy = ~arrays["s2"]["valid"]
    assert cloudy.any()
    arrays["s2"]["values"][cloudy] = 1e6  # arbitrary garbage under clouds
    out = training_step(model, arrays, tiles, cfg, torch.Generator().manual_seed(5))
    for k in ref:
        assert torch.equal(out[k], ref[k]), k


def test_reconstruction_weights_scale_each_modality_term() -> None:
    scene = without(toy_scene(seed=3), "meteo")
    torch.manual_seed(0)
    fusion = FusionNetwork({"s2": ModalityConfig(8, 10), "s1": ModalityConfig(8, 2, 2)}, d_model=16, embed_dim=16, n_heads=2, n_layers=1)
    model = FusedEmbeddingModel(_encoders(), fusion)
    arrays, tiles = PixelSampler([scene], ("s2", "s1"), tile_px=4).batch(np.arange(20))
    ref = training_step(model, arrays, tiles, FusionTrainConfig(**TINY), torch.Generator().manual_seed(5))
    low = training_step(model, arrays, tiles, FusionTrainConfig(**TINY, recon_weights={"s1": 0.25}), torch.Generator().manual_seed(5))
    assert torch.equal(low["recon_s1"], ref["recon_s1"])  # the term itself is unchanged ...
    expected = ref["total"] - 0.75 * ref["recon_s1"]  # ... its share of the total is scaled
    assert float(low["total"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_cosine_learning_rate_decays_to_five_percent() -> None:
    cfg = FusionTrainConfig(lr=1e-3, lr_schedule="cosine")
    rates = [learning_rate(cfg, s, 101) for s in range(101)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(5e-5)
    assert rates[50] == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5))
    assert all(a >= b for a, b in itertools.pairwise(rates))
    assert learning_rate(FusionTrainConfig(lr=1e-3), 100, 101) == pytest.approx(1e-3)


def _state_hash(module: torch.nn.Module) -> str:
    return weights_sha256(module.state_dict())


def test_training_freezes_encoders_learns_and_resumes(tmp_path: Path) -> None:
    scenes = [without(toy_scene(seed=s, size_px=6, n_days=120), "meteo") for s in (0, 1)]
    encoders = _encoders()
    enc_hashes = {k: _state_hash(e) for k, e in encoders.items()}
    out = tmp_path / "fusion.safetensors"
    cfg = FusionTrainConfig(epochs=10, checkpoint_every=4, **TINY)  # 72 px / 32 = 3 steps/epoch -> 30 steps
    res = pretrain_fusion(scenes, encoders, out, cfg, progress=False)
    assert {k: _state_hash(e) for k, e in encoders.items()} == enc_hashes
    assert all(not p.requires_grad for e in encoders.values() for p in e.parameters())
    hist = res.history
    assert len(hist) == 30
    first = np.mean([h["recon_s2"] for h in hist[:5]])
    last = np.mean([h["recon_s2"] for h in hist[-5:]])
    assert last < 0.7 * first, (first, last)
    assert "contrastive" in hist[0]
    _, meta = read_fusion_checkpoint(out)
    assert meta["step"] == 30 and meta["weights_sha256"] == res.weights_sha256
    assert (tmp_path / "fusion.safetensors.log.json").is_file()

    # Resume: more epochs continue from step 30 (history kept), same settings.
    cfg2 = FusionTrainConfig(epochs=11, checkpoint_every=4, **TINY)
    res2 = pretrain_fusion(scenes, _encoders(), out, cfg2, progress=False)
    assert len(res2.history) == 33 and res2.history[:30] == hist
    # Resume equals an uninterrupted run (deterministic per step).
    straight = pretrain_fusion(scenes, _encoders(), tmp_path / "straight.safetensors", cfg2, progress=False)
    assert straight.weights_sha256 == res2.weights_sha256

    # A different architecture on the same path is refused, not silently mixed.
    with pytest.raises(CheckpointError, match="config"):
        pretrain_fusion(scenes, _encoders(), out, FusionTrainConfig(epochs=11, **{**TINY, "embed_dim": 8}), progress=False)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        read_fusion_checkpoint(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_fusion_checkpoint(tmp_path / "missing.safetensors")


def test_new_modality_retrains_only_fusion(tmp_path: Path) -> None:
    """Adding daily meteorology: a new adapter in the fusion network, encoders bit-identical."""
    scenes2 = [without(toy_scene(seed=s, size_px=6, n_days=90), "meteo") for s in (0, 1)]
    encoders = _encoders()
    base = pretrain_fusion(scenes2, encoders, tmp_path / "base.safetensors", FusionTrainConfig(epochs=2, **TINY), progress=False)
    enc_hashes = {k: _state_hash(e) for k, e in encoders.items()}
    fusion = base.model.fusion
    fusion_before = _state_hash(fusion)
    fusion.add_modality("meteo", ModalityConfig(token_dim=4, n_channels=4))
    scenes3 = [toy_scene(seed=s, size_px=6, n_days=90) for s in (0, 1)]
    res = pretrain_fusion(scenes3, encoders, tmp_path / "meteo.safetensors", FusionTrainConfig(epochs=2, **TINY), fusion=fusion, progress=False)
    assert {k: _state_hash(e) for k, e in encoders.items()} == enc_hashes
    old_keys = set(base.model.fusion.state_dict())  # same object, now with meteo keys too
    assert _state_hash(res.model.fusion) != fusion_before
    assert any(k.startswith("adapters.meteo") for k in old_keys)
    assert "recon_meteo" in res.history[-1]
    _, meta = read_fusion_checkpoint(tmp_path / "meteo.safetensors")
    assert "meteo" in meta["fusion_config"]["modalities"]


def test_real_stage1_encoders_train_save_and_reload(tmp_path: Path) -> None:
    """With the real (tiny) S2Encoder/S1Encoder: train, save, rebuild from the checkpoint, same output."""
    from ecoembed.embed import embed_series
    from ecoembed.models.encoders import S1Encoder, S2Encoder
    from ecoembed.weights import load_fusion_model

    torch.manual_seed(0)
    encoders = {"s2": S2Encoder(d_model=16, embed_dim=16, n_heads=2), "s1": S1Encoder(d_model=16, embed_dim=16, n_heads=2)}
    specs = {k: {"class": type(e).__name__, "config": e.config()} for k, e in encoders.items()}
    hashes = {k: _state_hash(e) for k, e in encoders.items()}
    scenes = [without(toy_scene(seed=s, size_px=6), "meteo") for s in (0, 1)]
    out = tmp_path / "real.safetensors"
    res = pretrain_fusion(scenes, encoders, out, FusionTrainConfig(epochs=2, **TINY), encoder_specs=specs, progress=False)
    assert {k: _state_hash(e) for k, e in encoders.items()} == hashes
    loaded = load_fusion_model(out)
    assert loaded.sha256 == res.weights_sha256
    days = np.arange(17897, 17897 + 40)
    a, _ = embed_series(res.model.eval(), scenes[0].series, days)
    b, _ = embed_series(loaded.model, scenes[0].series, days)
    np.testing.assert_array_equal(a, b)
