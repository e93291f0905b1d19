"""Single-file Sentinel-1 time-series encoder of ecoembed (imports only torch and math).

Numerically identical to ``ecoembed.models.encoders.S1Encoder`` (same state-dict
keys; tested in tests/models/test_standalone.py): copy this file anywhere, load
the weights with ``safetensors`` or ``torch.load(weights_only=True)``::

    from safetensors.torch import load_file
    enc = S1Encoder()
    enc.load_state_dict({k[8:]: v for k, v in load_file("s1_encoder.safetensors").items() if k.startswith("encoder.")})
    out = enc(x, days, mask, orbit)  # x [B,T,2], days [B,T] int64, mask [B,T] bool, orbit [B,T] int64

Input: BANDS in this order, backscatter in dB normalised per polarisation as
(value - mean) / std with the statistics stored in the checkpoint metadata
(``normalisation``); ``orbit`` 0 ascending / 1 descending; ``days`` since 1970-01-01; ``mask`` True where the date is
usable (valid, cloud-free, not padding). Values at unusable steps are ignored
exactly. A pixel with no usable date gets the learned ``no_observation_embedding``.
Output: ``tokens`` [B,T,d_model] (0 at unusable steps), ``embedding`` [B,embed_dim],
``attn`` [B,n_heads,T] (pooling weights).
"""

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

DAYS_PER_YEAR = 365.2425
SEASONAL_HARMONICS = 3
N_DATE_FEATURES = 2 * SEASONAL_HARMONICS + 1


def date_features(days: Tensor, ref_days: Tensor) -> Tensor:
    """Day-of-year harmonics k = 1..3 (sin, cos) and (days - ref_days) in years clipped to +-4 -> float32 [..., 7]."""
    d = days.to(torch.float64)
    phase = 2 * math.pi * torch.remainder(d, DAYS_PER_YEAR) / DAYS_PER_YEAR
    harmonics = phase.unsqueeze(-1) * torch.arange(1, SEASONAL_HARMONICS + 1, dtype=torch.float64, device=days.device)
    rel = torch.clamp((d - ref_days.to(torch.float64)) / DAYS_PER_YEAR, -4.0, 4.0)
    return torch.cat([torch.sin(harmonics), torch.cos(harmonics), rel.unsqueeze(-1)], dim=-1).to(torch.float32)


def reference_day(days: Tensor, mask: Tensor) -> Tensor:
    """Rounded mean of each row's usable days (int64 [B]; 0 for a row without any)."""
    total = torch.where(mask, days.to(torch.float64), torch.zeros((), dtype=torch.float64, device=days.device)).sum(-1)
    n = mask.to(torch.float64).sum(-1)
    return torch.where(n > 0, torch.round(total / n.clamp(min=1)), torch.zeros_like(total)).to(torch.int64)


def masked_softmax(logits: Tensor, key_mask: Tensor) -> Tensor:
    """Softmax over usable keys only; a row without usable keys gives zeros (never NaN)."""
    key_mask = key_mask.expand_as(logits)
    has_key = key_mask.any(-1, keepdim=True)
    logits = torch.where(key_mask, logits, torch.full((), -math.inf, dtype=logits.dtype, device=logits.device))
    logits = torch.where(has_key, logits, torch.zeros((), dtype=logits.dtype, device=logits.device))
    weights = torch.softmax(logits, dim=-1)
    return torch.where(has_key, weights, torch.zeros((), dtype=weights.dtype, device=weights.device))


class EncoderOutput:
    """tokens [B, T, d_model] (0 at unusable steps), embedding [B, embed_dim], attn [B, n_heads, T], ref_days [B]."""

    def __init__(self, tokens: Tensor, embedding: Tensor, attn: Tensor, ref_days: Tensor) -> None:
        self.tokens, self.embedding, self.attn, self.ref_days = tokens, embedding, attn, ref_days


def key_bias(mask: Tensor) -> Tensor:
    """Additive attention bias [B, T]: 0 usable, -inf not; all 0 for a row without usable keys."""
    has_key = mask.any(-1, keepdim=True)
    blocked = ~mask & has_key
    return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_fill(blocked, -math.inf)


class MaskedSelfAttentionBlock(nn.Module):
    """Pre-norm transformer block over time, keys restricted to usable steps."""

    def __init__(self, d_model: int, n_heads: int, ff_mult: int = 2) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm_attn = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff_mult * d_model), nn.GELU(), nn.Linear(ff_mult * d_model, d_model))

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        b, t, d = h.shape
        q, k, v = self.qkv(self.norm_attn(h)).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=key_bias(mask)[:, None, None, :])
        h = h + self.out_proj(ctx.transpose(1, 2).reshape(b, t, d))
        return h + self.ff(self.norm_ff(h))


class TemporalAttentionEncoder(nn.Module):
    """LTAE-style encoder: value + date embedding, masked self-attention, master-query pooling."""

    def __init__(self, n_channels: int, d_model: int = 64, embed_dim: int = 64, n_heads: int = 4,
                 n_context_layers: int = 1, ff_mult: int = 2, n_conditions: int = 0) -> None:
        super().__init__()
        self.n_channels, self.d_model, self.embed_dim, self.n_heads = n_channels, d_model, embed_dim, n_heads
        self.value_proj = nn.Linear(2 * n_channels, d_model)  # values and band-presence mask
        self.date_proj = nn.Linear(N_DATE_FEATURES, d_model)
        self.condition_embedding = nn.Embedding(n_conditions, d_model) if n_conditions else None
        self.context = nn.ModuleList(MaskedSelfAttentionBlock(d_model, n_heads, ff_mult) for _ in range(n_context_layers))
        self.token_norm = nn.LayerNorm(d_model)
        self.key_proj = nn.Linear(d_model, d_model)
        self.master_query = nn.Parameter(torch.randn(n_heads, d_model // n_heads) * 0.02)
        self.output = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, embed_dim))
        self.no_observation_embedding = nn.Parameter(torch.zeros(embed_dim))

    def encode(self, x: Tensor, days: Tensor, mask: Tensor, condition: Tensor | None = None,
               band_mask: Tensor | None = None, ref_days: Tensor | None = None) -> EncoderOutput:
        b, t, c = x.shape
        mask = mask.to(torch.bool)
        if days.dim() == 1:
            days = days.unsqueeze(0).expand(b, t)
        keep = mask.unsqueeze(-1)
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        present = torch.ones((b, t, c), dtype=torch.bool, device=x.device)
        if band_mask is not None:  # [C], [B, C] or [B, T, C]: True where the band is there
            bm = band_mask.to(torch.bool)
            present = (bm.view(1, 1, c) if bm.dim() == 1 else bm.view(b, 1, c) if bm.dim() == 2 else bm).expand(b, t, c)
        # values at unusable steps and missing bands (even NaN) are replaced before any arithmetic
        x = torch.where(keep & present, x, zero)
        days = torch.where(mask, days.to(torch.int64), torch.zeros((), dtype=torch.int64, device=days.device))
        ref = reference_day(days, mask) if ref_days is None else ref_days.to(torch.int64)
        values = torch.cat([x, torch.where(keep, present.to(x.dtype), zero)], dim=-1)
        h = self.value_proj(values) + self.date_proj(date_features(days, ref.unsqueeze(-1)))
        if self.condition_embedding is not None:
            if condition.dim() == 1:
                condition = condition.unsqueeze(0).expand(b, t)
            condition = torch.where(mask, condition.to(torch.int64), torch.zeros((), dtype=torch.int64, device=x.device))
            h = h + self.condition_embedding(condition)
        h = torch.where(keep, h, zero)
        for block in self.context:
            h = torch.where(keep, block(h, mask), zero)
        tokens = torch.where(keep, self.token_norm(h), zero)
        dh = self.d_model // self.n_heads
        keys = self.key_proj(tokens).view(b, t, self.n_heads, dh)
        attn = masked_softmax(torch.einsum("bthd,hd->bht", keys, self.master_query) / math.sqrt(dh), mask[:, None, :])
        pooled = torch.einsum("bht,bthd->bhd", attn, tokens.view(b, t, self.n_heads, dh)).reshape(b, self.d_model)
        embedding = self.output(pooled)
        embedding = torch.where(mask.any(1, keepdim=True), embedding, self.no_observation_embedding.to(embedding.dtype))
        return EncoderOutput(tokens, embedding, attn, ref)


BANDS = ("VV", "VH")


class S1Encoder(TemporalAttentionEncoder):
    """Sentinel-1 encoder: VV, VH (dB) + a learned orbit-direction embedding (0 asc, 1 desc)."""

    BANDS = BANDS

    def __init__(self, d_model: int = 64, embed_dim: int = 64, n_heads: int = 4, n_context_layers: int = 1, ff_mult: int = 2) -> None:
        super().__init__(len(BANDS), d_model, embed_dim, n_heads, n_context_layers, ff_mult, n_conditions=2)

    def forward(self, x: Tensor, days: Tensor, mask: Tensor, orbit: Tensor, *,
                band_mask: Tensor | None = None, ref_days: Tensor | None = None) -> EncoderOutput:
        return self.encode(x, days, mask, orbit, band_mask, ref_days)
