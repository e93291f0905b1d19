"""Stage-1 encoders: shapes, masking guarantees, empty rows, date encoding, objective."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ecoembed.models.encoders import S1_ENCODER_BANDS, S2_ENCODER_BANDS, S1Encoder, S2Encoder, build_encoder
from ecoembed.models.losses import ObjectiveConfig, Stage1Objective, hide_random_dates, info_nce, top_attention_dates
from ecoembed.models.ltae import N_DATE_FEATURES, date_features, masked_softmax


def _batch(b: int = 5, t: int = 24, c: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, c, generator=g)
    days = (17900 + 5 * torch.arange(t)).expand(b, t).clone()
    mask = torch.rand(b, t, generator=g) > 0.35
    mask[0, :3] = True
    return x, days, mask


def _tiny(sensor: str = "s2"):
    torch.manual_seed(0)
    return build_encoder(sensor, d_model=16, embed_dim=8, n_heads=2).eval()


def test_shapes_and_declared_bands():
    enc = _tiny("s2")
    x, days, mask = _batch()
    out = enc(x, days, mask)
    assert out.tokens.shape == (5, 24, 16)
    assert out.embedding.shape == (5, 8)
    assert out.attn.shape == (5, 2, 24)
    assert S2Encoder.BANDS == S2_ENCODER_BANDS and len(S2_ENCODER_BANDS) == 10
    assert S1Encoder.BANDS == S1_ENCODER_BANDS == ("VV", "VH")
    assert "dB" in S1Encoder.NORMALISATION and "reflectance" in S2Encoder.NORMALISATION
    # attention sums to one over usable steps, zero elsewhere
    assert torch.allclose(out.attn.sum(-1), torch.ones(5, 2))
    assert (out.attn[~mask.unsqueeze(1).expand_as(out.attn)] == 0).all()
    assert (out.tokens[~mask] == 0).all()


@pytest.mark.parametrize("sensor", ["s2", "s1"])
def test_masked_steps_cannot_change_output(sensor):
    enc = _tiny(sensor)
    c = 10 if sensor == "s2" else 2
    x, days, mask = _batch(c=c)
    orbit = (torch.arange(24) % 2).expand(5, 24).clone() if sensor == "s1" else None
    ref = enc(x, days, mask, orbit)
    x2, days2 = x.clone(), days.clone()
    x2[~mask] = torch.tensor([math.nan, math.inf, -math.inf, 1e30])[torch.arange(int((~mask).sum())) % 4].unsqueeze(-1)
    days2[~mask] = -999_999
    orbit2 = None
    if orbit is not None:
        orbit2 = orbit.clone()
        orbit2[~mask] = 1 - orbit2[~mask]
    out = enc(x2, days2, mask, orbit2)
    assert torch.equal(out.embedding, ref.embedding)
    assert torch.equal(out.tokens, ref.tokens)
    assert torch.equal(out.attn, ref.attn)
    # ... whereas a usable step does matter
    x3 = x.clone()
    x3[0, 0] += 1.0
    assert not torch.equal(enc(x3, days, mask, orbit).embedding[0], ref.embedding[0])


def test_row_without_usable_step_gives_learned_no_observation_embedding():
    enc = _tiny("s2")
    x, days, mask = _batch()
    mask[1] = False
    x[1] = math.nan
    with torch.no_grad():
        enc.no_observation_embedding.fill_(0.5)
    out = enc(x, days, mask)
    assert torch.isfinite(out.embedding).all() and torch.isfinite(out.tokens).all()
    assert torch.equal(out.embedding[1], torch.full((8,), 0.5))
    assert (out.attn[1] == 0).all() and (out.tokens[1] == 0).all()
    # gradients stay finite too
    enc.train()
    enc(x, days, mask).embedding.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)


def test_date_encoding_is_seasonal_relative_and_slow():
    ref = torch.tensor(18000)
    days = torch.tensor([18000, 18000 + 365, 18000 + 366, 18001])
    f = date_features(days, ref)
    assert f.shape == (4, N_DATE_FEATURES)
    # one year apart: the same season (day-of-year harmonics nearly equal); the relative time says "a year later"
    assert torch.allclose(f[0, :-1], f[1, :-1], atol=0.02)
    assert f[1, -1] == pytest.approx(365 / 365.2425)
    # float64 phases: a 1-day shift is resolved
    assert not torch.allclose(f[0], f[3])
    # shifting days and reference by whole years changes nothing beyond the leap-day drift
    shifted = date_features(days + 2 * 365, ref + 2 * 365)
    assert torch.allclose(f, shifted, atol=0.05)
    # no component varies faster than a third of a year: the daily spectrum has no power above 3 cycles per year
    daily = date_features(torch.arange(17000, 17000 + 4 * 365), torch.tensor(17730)).numpy()
    power = np.abs(np.fft.rfft(daily[:, :-1] - daily[:, :-1].mean(0), axis=0)) ** 2
    freq_per_year = np.fft.rfftfreq(daily.shape[0], d=1 / 365.0)
    assert power[freq_per_year > 3.5].sum() < 1e-3 * power.sum()  # spectral leakage only (4 years are not whole periods)


def test_a_band_subset_is_a_mask_and_nothing_leaks_from_missing_bands():
    enc = _tiny("s2")
    x, days, mask = _batch(c=10)
    keep = torch.zeros(10, dtype=torch.bool)
    keep[[2, 6]] = True  # B04, B08 only
    a = enc(x, days, mask, band_mask=keep)
    poisoned = x.clone()
    poisoned[..., ~keep] = float("nan")
    b = enc(poisoned, days, mask, band_mask=keep)
    assert torch.equal(a.embedding, b.embedding) and torch.isfinite(a.embedding).all()
    assert not torch.allclose(a.embedding, enc(x, days, mask).embedding)  # the mask itself is an input


def test_s1_needs_orbit_and_orbit_matters():
    enc = _tiny("s1")
    x, days, mask = _batch(c=2)
    with pytest.raises(ValueError, match="orbit"):
        enc(x, days, mask)
    asc = torch.zeros(5, 24, dtype=torch.int64)
    assert not torch.equal(enc(x, days, mask, asc).embedding, enc(x, days, mask, asc + 1).embedding)


def test_masked_softmax_all_masked_row_is_zero():
    w = masked_softmax(torch.randn(2, 4), torch.tensor([[True, False, True, False], [False] * 4]))
    assert torch.allclose(w[0].sum(), torch.tensor(1.0)) and (w[1] == 0).all() and w[0, 1] == 0


def test_hidden_dates_are_usable_and_leave_some_visible():
    usable = torch.rand(50, 30, generator=torch.Generator().manual_seed(1)) > 0.5
    usable[0] = False
    usable[1] = False
    usable[1, 3] = True  # a single usable date is never hidden
    hidden = hide_random_dates(usable, 0.3, torch.Generator().manual_seed(2))
    assert not (hidden & ~usable).any()
    assert not hidden[0].any() and not hidden[1].any()
    many = usable.sum(1) >= 2
    assert (hidden.sum(1)[many] >= 1).all() and ((usable & ~hidden).sum(1)[many] >= 1).all()


def test_top_attention_selects_highest():
    cand = torch.tensor([[True, True, True, True, False, True, True, True]])
    att = torch.tensor([[0.1, 0.5, 0.2, 0.05, 0.9, 0.3, 0.01, 0.02]])
    top = top_attention_dates(cand, att, 0.25)
    assert top.nonzero()[:, 1].tolist() == [1, 5]  # ceil(0.25*7)=2 best candidates, the masked 0.9 excluded


def test_info_nce_prefers_matching_pairs():
    z = torch.randn(8, 4)
    assert info_nce(z, z) < info_nce(z, z.roll(1, 0))


@pytest.mark.parametrize("top", [1.0, 0.25])
def test_cloudy_targets_do_not_change_the_loss(top):
    torch.manual_seed(0)
    obj = Stage1Objective(S2Encoder(d_model=16, embed_dim=8, n_heads=2), ObjectiveConfig(attention_top_fraction=top, contrastive_weight=0.5))
    x, days, valid = _batch(b=16)
    ref = obj(x, days, valid, generator=torch.Generator().manual_seed(3))
    cloudy = x.clone()
    cloudy[~valid] = 5.0 + 100 * torch.rand(int((~valid).sum()), 10)  # bright clouds, arbitrary
    idx = (~valid).nonzero()[::3]
    cloudy[idx[:, 0], idx[:, 1]] = math.nan
    out = obj(cloudy, days, valid, generator=torch.Generator().manual_seed(3))
    for key in ("total", "reconstruction", "recon_mse_masked_valid", "contrastive"):
        assert torch.equal(out[key], ref[key]), key
    assert ref["n_targets"] > 0 and torch.isfinite(ref["total"])
