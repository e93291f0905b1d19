"""FusionNetwork: shapes, masking, missing modalities, relative-time interpolation."""

from __future__ import annotations

import torch

from ecoembed.models.fusion import FusionNetwork, ModalityConfig, ModalityTokens


def _net(**kw: int) -> FusionNetwork:
    torch.manual_seed(0)
    return FusionNetwork(
        {"s2": ModalityConfig(8, 10), "s1": ModalityConfig(6, 2, n_conditions=2)},
        d_model=16,
        embed_dim=12,
        n_heads=2,
        n_layers=2,
        **kw,
    ).eval()


def _inputs(b: int = 3, t2: int = 7, t1: int = 5, seed: int = 1) -> dict[str, ModalityTokens]:
    g = torch.Generator().manual_seed(seed)
    days2 = torch.arange(t2) * 5 + 18000
    days1 = torch.arange(t1) * 12 + 18002
    m2 = torch.rand(b, t2, generator=g) > 0.3
    m1 = torch.rand(b, t1, generator=g) > 0.2
    return {
        "s2": ModalityTokens(torch.randn(b, t2, 8, generator=g), days2, m2),
        "s1": ModalityTokens(torch.randn(b, t1, 6, generator=g), days1.expand(b, t1), m1),
    }


def test_output_shape_and_query_many_days() -> None:
    net = _net()
    inputs = _inputs()
    q = torch.arange(18000, 18040)
    out = net(inputs, q)
    assert out.shape == (3, 40, 12)
    assert torch.isfinite(out).all()
    # Querying in two slabs gives the same answer as all at once (contextualise once, query many).
    ctx = net.contextualize(inputs)
    halves = torch.cat([net.query(ctx, q[:17]), net.query(ctx, q[17:])], dim=1)
    torch.testing.assert_close(halves, out, rtol=0, atol=1e-6)


def _per_row_days(inputs: dict[str, ModalityTokens]) -> dict[str, ModalityTokens]:
    return {k: ModalityTokens(v.tokens, v.days.expand_as(v.mask).clone(), v.mask) for k, v in inputs.items()}


def test_masked_tokens_never_influence_output() -> None:
    net = _net()
    inputs = _per_row_days(_inputs())  # poisoned dates are per row: compare on the per-row path, bit for bit
    q = torch.tensor([18001, 18020, 18033])
    ref = net(inputs, q)
    poisoned = {}
    for name, item in inputs.items():
        tok = item.tokens.clone()
        tok[~item.mask] = torch.tensor(float("nan"))
        tok[~item.mask, 0] = float("inf")
        days = item.days.expand_as(item.mask).clone()
        days[~item.mask] = 99999  # a masked step's date must not matter either
        poisoned[name] = ModalityTokens(tok, days, item.mask)
    out = net(poisoned, q)
    assert torch.equal(out, ref)


def test_missing_modality_and_empty_pixel_are_finite() -> None:
    net = _net()
    inputs = _inputs()
    q = torch.tensor([18010, 18030])
    s2_only = net({"s2": inputs["s2"]}, q)
    s1_only = net({"s1": inputs["s1"]}, q)
    both = net(inputs, q)
    assert torch.isfinite(s2_only).all() and torch.isfinite(s1_only).all()
    assert not torch.allclose(s2_only, both) and not torch.allclose(s1_only, both)
    # A pixel with no usable token at all: learned "no observation" answer, finite and identical across pixels.
    empty = {k: ModalityTokens(v.tokens, v.days, torch.zeros_like(v.mask)) for k, v in inputs.items()}
    out = net(empty, q)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0], out[1])


def test_pixels_are_independent() -> None:
    net = _net()
    inputs = _inputs(b=4)
    q = torch.tensor([18005, 18025])
    full = net(inputs, q)
    single = net({k: ModalityTokens(v.tokens[2:3], v.days if v.days.dim() == 1 else v.days[2:3], v.mask[2:3]) for k, v in inputs.items()}, q)
    torch.testing.assert_close(single, full[2:3], rtol=1e-5, atol=1e-6)


def test_relative_time_bias_prefers_nearest_observation() -> None:
    net = _net()
    inputs = _inputs(b=1)
    inputs["s2"].mask[:] = True
    ctx = net.contextualize({"s2": inputs["s2"]})
    day_of_token_3 = int(inputs["s2"].days[3])
    _, attn = net.query(ctx, torch.tensor([day_of_token_3]), return_attention=True)
    # At initialisation the bias decays with |dt|, so the token at the query day gets the most weight
    # among dated tokens for most heads (content logits are small at init).
    dated_attn = attn[0, :, 0, 1:]  # heads x tokens (drop global token)
    assert (dated_attn.argmax(-1) == 3).float().mean() >= 0.5


def test_add_modality_keeps_existing_parameters() -> None:
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.add_modality("meteo", ModalityConfig(token_dim=5, n_channels=5))
    after = net.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v)
    assert any(k.startswith("adapters.meteo") for k in after)
    rebuilt = FusionNetwork(**net.config())
    rebuilt.load_state_dict(after)  # config round-trips, including the new modality
    assert rebuilt.modalities == ("s2", "s1", "meteo")


def test_reconstruct_selects_condition() -> None:
    net = _net()
    emb = torch.randn(2, 3, 12)
    asc = net.reconstruct(emb, "s1", torch.zeros(2, 3, dtype=torch.long))
    desc = net.reconstruct(emb, "s1", torch.ones(2, 3, dtype=torch.long))
    assert asc.shape == (2, 3, 2)
    assert not torch.allclose(asc, desc)
    torch.testing.assert_close(net.reconstruct(emb, "s1"), asc)
    assert net.reconstruct(emb, "s2").shape == (2, 3, 10)


def test_fused_embeddings_are_year_stationary() -> None:
    """Identical observations shifted by two whole years: the same embeddings at the shifted query days."""
    net = _net().eval()
    inputs = _inputs()
    q = torch.arange(17990, 18050, 7)
    shifted = {k: ModalityTokens(v.tokens, v.days + 730, v.mask) for k, v in inputs.items()}
    with torch.no_grad():
        a, b = net(inputs, q), net(shifted, q + 730)
    assert torch.allclose(a, b, atol=0.05 * float(a.std()))


def test_fused_attention_kernel_matches_explicit_softmax() -> None:
    net = _net()
    ctx = net.contextualize(_inputs())
    q = torch.arange(17990, 18050, 7)
    fast = net.query(ctx, q)
    explicit, attn = net.query(ctx, q, return_attention=True)
    torch.testing.assert_close(fast, explicit, rtol=1e-5, atol=1e-5)
    # Unusable tokens get exactly zero attention.
    assert (attn * (~ctx.mask)[:, None, None, :] == 0).all() and (~ctx.mask).any()


def test_shared_dates_fast_path_equals_per_row_path() -> None:
    """Dates shared by the batch ([T]: date features once per date, batch-wide time bias, key mask in the keys)
    give the per-row path's numbers (float rounding only), at every query day, with and without attention weights."""
    net = _net()
    shared = _inputs(b=6)
    shared["s1"] = ModalityTokens(shared["s1"].tokens, torch.arange(5) * 12 + 18002, shared["s1"].mask)
    shared["s2"].mask[2] = False  # a pixel with S1 only
    shared["s2"].mask[4] = False
    shared["s1"].mask[4] = False  # ... and one with no usable token at all (global token only)
    q = torch.arange(17990, 18080, 7)
    fast_ctx = net.contextualize(shared)
    slow_ctx = net.contextualize(_per_row_days(shared))
    assert fast_ctx.shared_days is not None and slow_ctx.shared_days is None
    fast = net.query(fast_ctx, q)
    torch.testing.assert_close(fast, net.query(slow_ctx, q), rtol=0, atol=2e-6)
    torch.testing.assert_close(net.query(fast_ctx.without_tokens(), q), fast, rtol=0, atol=0)
    out, attn = net.query(fast_ctx, q, return_attention=True)
    torch.testing.assert_close(out, fast, rtol=0, atol=2e-6)
    assert attn.shape == (6, 2, len(q), 1 + 7 + 5)
    blocked = ~fast_ctx.mask[:, None, None, :].expand_as(attn)
    assert torch.all(attn[blocked] == 0)  # unusable keys get exactly zero weight
    torch.testing.assert_close(attn.sum(-1), torch.ones(attn.shape[:-1]), rtol=0, atol=1e-5)


def test_fusion_blocks_match_torch_transformer_layer() -> None:
    """The written-out pre-norm block (fused attention, additive key mask) is nn.TransformerEncoderLayer's maths."""
    from ecoembed.models.fusion import _self_attention_layer
    from ecoembed.models.ltae import key_bias

    net = _net()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 9, 16, generator=g)
    usable = torch.rand(4, 9, generator=g) > 0.4
    usable[:, 0] = True
    layer = net.blocks[0]
    for train in (False, True):  # inference fast path and the training path of torch's layer
        layer.train(train)
        ref = layer(x, src_key_padding_mask=~usable)
        mine = _self_attention_layer(layer, x, key_bias(usable)[:, None, None, :])
        torch.testing.assert_close(mine[usable], ref[usable], rtol=0, atol=2e-6)


def test_encoder_tokens_only_gives_the_same_tokens() -> None:
    from ecoembed.models.encoders import S2Encoder

    torch.manual_seed(0)
    enc = S2Encoder(d_model=16, embed_dim=8, n_heads=2).eval()
    g = torch.Generator().manual_seed(5)
    x, days, mask = torch.randn(4, 9, 10, generator=g), 18000 + 4 * torch.arange(9), torch.rand(4, 9, generator=g) > 0.3
    full, short = enc(x, days, mask), enc(x, days, mask, tokens_only=True)
    assert torch.equal(full.tokens, short.tokens) and torch.equal(full.ref_days, short.ref_days)
    assert short.embedding.shape == (4, 0)


def test_inference_packs_usable_tokens_with_the_same_numbers() -> None:
    """Without gradients the blocks run on each pixel's usable tokens only (packed): the same embeddings, and
    masked tokens still cannot leak into them (bit for bit)."""
    from ecoembed.models.encoders import S2Encoder
    from ecoembed.models.fusion import FusedEmbeddingModel, SensorBatch

    torch.manual_seed(0)
    fusion = FusionNetwork({"s2": ModalityConfig(16, 10)}, d_model=16, embed_dim=12, n_heads=2)
    model = FusedEmbeddingModel({"s2": S2Encoder(d_model=16, embed_dim=8, n_heads=2)}, fusion).eval()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 11, 10, generator=g)
    mask = torch.rand(5, 11, generator=g) > 0.5
    mask[0] = True  # a nearly clear pixel: the others are packed to the batch's largest usable count (10 of 11)
    mask[:, 3] = False
    mask[1, :] = False
    days = 18000 + 6 * torch.arange(11)
    q = torch.arange(17990, 18090, 9)
    with torch.enable_grad():
        ref = model(({"s2": SensorBatch(x, days, mask)}), q).detach()
    with torch.no_grad():
        got = model({"s2": SensorBatch(x, days, mask)}, q)
        poisoned = x.clone()
        poisoned[~mask] = float("nan")
        again = model({"s2": SensorBatch(poisoned, days, mask)}, q)
    torch.testing.assert_close(got, ref, rtol=0, atol=2e-6)
    assert torch.equal(again, got)
    from ecoembed.models.ltae import pack_usable

    packing = pack_usable(mask)
    assert packing is not None and packing[0].shape == (5, 10)  # the packed path did run
