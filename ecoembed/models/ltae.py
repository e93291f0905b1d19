"""Lightweight temporal attention encoder (LTAE-style) for one pixel's time series.

A pixel is a sequence of ``T`` acquisitions with ``C`` channels. The encoder
turns it into

* ``tokens`` ``[B, T, D]``: one contextualised token per date (``D = d_model``),
  meaningful at *usable* steps only (exactly 0 elsewhere);
* ``embedding`` ``[B, E]``: one vector for the whole series (``E = embed_dim``),
  pooled over time by multi-head attention with a learned *master query*;
* ``attn`` ``[B, H, T]``: the pooling weights per head (0 at unusable steps).

Steps:

1. Per-step linear embedding of the channels (with the band-presence mask:
   a missing band is a zero value *and* a 0 in the mask, so a subset of bands
   is in-distribution for an encoder trained with band dropout), plus the date
   encoding of the step's day (:func:`date_features`): day-of-year harmonics
   (the season, the same every year) and the time relative to the series'
   reference day (the mean of its usable days; order and spacing, invariant to
   shifting the whole series). Nothing faster than a third of a year enters,
   so daily outputs cannot oscillate at sub-weekly periods, and shifting all
   dates by whole years leaves the input unchanged up to leap days.
2. Optionally ``n_context_layers`` pre-norm self-attention blocks over time
   (keys restricted to usable steps) contextualise the per-date tokens.
3. Master-query attention pooling (one query per head, LTAE) over the usable
   steps, then ``LayerNorm + Linear`` to ``embed_dim``.

**Masking guarantee.** ``mask`` is True where a step is usable (not padding,
and valid/cloud-free). Inputs (values, days, extra per-step conditions) at
unusable steps are replaced by zeros with :func:`torch.where` *before any
arithmetic*, and unusable keys get ``-inf`` attention logits. Hence values at
unusable steps (even NaN/inf) cannot change the embedding or the tokens at
usable steps: the output is bit-identical (tested).

**No usable step.** A row whose mask is all False returns the learned
``no_observation_embedding`` (a parameter) as its embedding, zero tokens and
zero attention weights, never NaN. Callers that want NaN for such pixels
(e.g. the embedding cube writer) test ``mask.any(1)`` themselves.

Shapes: ``B`` pixels, ``T`` dates, ``C`` channels, ``H`` heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

DAYS_PER_YEAR = 365.2425
"""Mean Gregorian year length in days (for the day-of-year phase)."""

SEASONAL_HARMONICS = 3
"""Day-of-year harmonics (periods 1 year, 1/2 and 1/3 of a year)."""
RELATIVE_SCALE_DAYS = DAYS_PER_YEAR
"""Relative time enters in years."""
RELATIVE_CLIP_YEARS = 4.0
"""Relative time is clipped to +-4 years (longer series are rare; a bounded input keeps the projection stable)."""

N_DATE_FEATURES = 2 * SEASONAL_HARMONICS + 1
"""Width of :func:`date_features` (sin/cos of each day-of-year harmonic + the relative time)."""


def date_features(days: Tensor, ref_days: Tensor) -> Tensor:
    """Seasonal and relative date features of integer days since 1970-01-01.

    Computed in float64 (days since the epoch reach ~2e4) and returned as float32.

    Args:
        days: int64 tensor of any shape, days since 1970-01-01.
        ref_days: int64 reference day(s) broadcastable to ``days`` (a pixel's reference day).

    Returns:
        float32 ``[*days.shape, N_DATE_FEATURES]``: sin/cos of ``k`` x the day-of-year phase for
        k = 1..:data:`SEASONAL_HARMONICS`, then ``(days - ref_days)`` in years, clipped to
        +-:data:`RELATIVE_CLIP_YEARS`.
    """
    d = days.to(torch.float64)
    phase = 2 * math.pi * torch.remainder(d, DAYS_PER_YEAR) / DAYS_PER_YEAR
    k = torch.arange(1, SEASONAL_HARMONICS + 1, dtype=torch.float64, device=days.device)
    harmonics = phase.unsqueeze(-1) * k
    rel = torch.clamp((d - ref_days.to(torch.float64)) / RELATIVE_SCALE_DAYS, -RELATIVE_CLIP_YEARS, RELATIVE_CLIP_YEARS)
    return torch.cat([torch.sin(harmonics), torch.cos(harmonics), rel.unsqueeze(-1)], dim=-1).to(torch.float32)


def project_dates(proj: nn.Linear, days: Tensor, ref_days: Tensor) -> Tensor:
    """``proj(date_features(days, ref_days))`` ``[B, T, D]``, computed once per date where the dates are shared.

    ``days`` int64 ``[T]`` (the same dates for every row: a cube's acquisitions, a block's query
    days) or ``[B, T]``; ``ref_days`` int64 ``[B]``. The projection is linear, so for shared dates
    the seasonal harmonics are evaluated and projected once per date (``[T, D]``) and only the
    relative-time feature, an exact integer difference ``days - ref`` in float32, varies per row:
    the same numbers as the per-row float64 path up to float32 rounding (~1e-7), at a fraction of
    the element-wise work.
    """
    if days.dim() == 2:
        return proj(date_features(days, ref_days.unsqueeze(-1)))
    d = days.to(torch.float64)
    phase = 2 * math.pi * torch.remainder(d, DAYS_PER_YEAR) / DAYS_PER_YEAR
    k = torch.arange(1, SEASONAL_HARMONICS + 1, dtype=torch.float64, device=days.device)
    harmonics = phase.unsqueeze(-1) * k
    seasonal = torch.cat([torch.sin(harmonics), torch.cos(harmonics)], dim=-1).to(proj.weight.dtype)  # [T, 2K]
    n_seasonal = 2 * SEASONAL_HARMONICS
    base = F.linear(seasonal, proj.weight[:, :n_seasonal], proj.bias)  # [T, D]
    rel = (days.unsqueeze(0) - ref_days.to(torch.int64).unsqueeze(-1)).to(proj.weight.dtype)
    rel = torch.clamp(rel / RELATIVE_SCALE_DAYS, -RELATIVE_CLIP_YEARS, RELATIVE_CLIP_YEARS)  # [B, T]
    return torch.addcmul(base.unsqueeze(0), rel.unsqueeze(-1), proj.weight[:, n_seasonal])


def reference_day(days: Tensor, mask: Tensor) -> Tensor:
    """int64 ``[B]``: the rounded mean of each row's usable days (0 for a row without any); ``days`` ``[B, T]`` or ``[T]``."""
    if days.dim() == 1:
        days = days.unsqueeze(0).expand(*mask.shape)
    used = mask.to(torch.float64)
    total = torch.where(mask, days.to(torch.float64), torch.zeros((), dtype=torch.float64, device=days.device)).sum(-1)
    n = used.sum(-1)
    return torch.where(n > 0, torch.round(total / n.clamp(min=1)), torch.zeros_like(total)).to(torch.int64)


@dataclass
class EncoderOutput:
    """What a stage-1 encoder returns (a stable interface: the fusion network consumes it).

    Attributes:
        tokens: float ``[B, T, D]`` contextualised per-date tokens; exactly 0 at unusable steps.
        embedding: float ``[B, E]`` whole-series embedding (learned "no observation"
            vector for rows without any usable step).
        attn: float ``[B, H, T]`` master-query pooling weights (sum to 1 over usable
            steps per head; all 0 for rows without usable steps).
        ref_days: int64 ``[B]`` the reference day the relative date features were taken from.
    """

    tokens: Tensor
    embedding: Tensor
    attn: Tensor
    ref_days: Tensor


def masked_softmax(logits: Tensor, key_mask: Tensor) -> Tensor:
    """Softmax over the last dim restricted to ``key_mask``; rows with no usable key give all zeros.

    Args:
        logits: float ``[..., T]``.
        key_mask: bool broadcastable to ``logits``; True = key may be attended.
    """
    key_mask = key_mask.expand_as(logits)
    has_key = key_mask.any(-1, keepdim=True)
    # Rows with no usable key: use zero logits (finite softmax), then zero the weights.
    logits = torch.where(key_mask, logits, torch.full((), -math.inf, dtype=logits.dtype, device=logits.device))
    logits = torch.where(has_key, logits, torch.zeros((), dtype=logits.dtype, device=logits.device))
    weights = torch.softmax(logits, dim=-1)
    return torch.where(has_key, weights, torch.zeros((), dtype=weights.dtype, device=weights.device))


def key_bias(mask: Tensor) -> Tensor:
    """Additive attention bias ``[B, T]`` from a usable-key mask: 0 usable, -inf not.

    A row without any usable key gets all zeros (finite softmax, never NaN);
    its outputs must be discarded by the caller.
    """
    has_key = mask.any(-1, keepdim=True)
    blocked = ~mask & has_key
    return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_fill(blocked, -math.inf)


def pack_usable(mask: Tensor) -> tuple[Tensor, Tensor] | None:
    """Per-row order that puts each row's usable steps first (in time order), cut to the batch's largest usable count.

    Returns ``(order [B, T'], packed_mask [B, T'])`` with ``T'`` = max usable steps per row (>= 1),
    or None when packing would not remove a step. Work on ``gather(x, 1, order)`` then scatter the
    result back with :func:`unpack`; every step left out is unusable, so outputs at usable steps
    are those of the unpacked computation (float rounding only: attention sums in another order).
    """
    b, t = mask.shape
    keep = max(int(mask.sum(1).max()) if b else 0, 1)
    if keep >= t:
        return None
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)[:, :keep]
    return order, torch.gather(mask, 1, order)


def unpack(packed: Tensor, order: Tensor, length: int) -> Tensor:
    """``[B, T', D]`` rows in :func:`pack_usable` order back to ``[B, length, D]`` (zeros at the steps left out).

    The packed rows must be zero at their unusable positions (they land on unusable steps).
    """
    b, _, d = packed.shape
    out = packed.new_zeros((b, length, d))
    return out.scatter(1, order.unsqueeze(-1).expand(b, order.shape[1], d), packed)


def _expand_band_mask(band_mask: Tensor, b: int, t: int, c: int) -> Tensor:
    """A band mask of shape ``[C]``, ``[B, C]`` or ``[B, T, C]`` as ``[B, T, C]``."""
    if band_mask.dim() == 1:
        return band_mask.view(1, 1, c).expand(b, t, c)
    if band_mask.dim() == 2:
        return band_mask.view(b, 1, c).expand(b, t, c)
    return band_mask.expand(b, t, c)


class MaskedSelfAttentionBlock(nn.Module):
    """Pre-norm transformer block over time; keys restricted to usable steps.

    Args:
        d_model: token width.
        n_heads: attention heads (must divide ``d_model``).
        ff_mult: hidden width of the feed-forward MLP as a multiple of ``d_model``.
    """

    def __init__(self, d_model: int, n_heads: int, ff_mult: int = 2) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm_attn = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff_mult * d_model), nn.GELU(), nn.Linear(ff_mult * d_model, d_model))

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        """Contextualise ``h`` ``[B, T, D]`` using only usable keys (``mask`` ``[B, T]``).

        Rows without any usable step attend to all (zeroed) steps instead of none
        (finite, never NaN); the caller discards their output.
        """
        b, t, d = h.shape
        q, k, v = self.qkv(self.norm_attn(h)).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=key_bias(mask)[:, None, None, :])
        h = h + self.out_proj(ctx.transpose(1, 2).reshape(b, t, d))
        return h + self.ff(self.norm_ff(h))


class TemporalAttentionEncoder(nn.Module):
    """LTAE-style encoder of one pixel's time series (see the module docstring).

    Args:
        n_channels: input channels ``C`` per date.
        d_model: token width ``D``.
        embed_dim: embedding width ``E``.
        n_heads: attention heads (divide ``d_model``).
        n_context_layers: self-attention blocks over time before pooling (0 = plain LTAE).
        ff_mult: feed-forward width multiple in the context blocks.
        n_conditions: number of per-step acquisition conditions with a learned
            additive embedding (S1: 2 orbit directions); 0 = none.
    """

    SENSOR: ClassVar[str] = ""
    """Sensor of a per-sensor subclass ("s2", "s1"); empty for the generic encoder."""
    BANDS: ClassVar[tuple[str, ...]] = ()
    """Channel order a per-sensor subclass expects."""
    NORMALISATION: ClassVar[str] = ""
    """What a per-sensor subclass expects its input to be."""

    def __init__(
        self,
        n_channels: int,
        d_model: int = 64,
        embed_dim: int = 64,
        n_heads: int = 4,
        n_context_layers: int = 1,
        ff_mult: int = 2,
        n_conditions: int = 0,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_channels = n_channels
        self.d_model = d_model
        self.embed_dim = embed_dim
        self.n_heads = n_heads
        self.n_context_layers = n_context_layers
        self.ff_mult = ff_mult
        self.n_conditions = n_conditions
        self.value_proj = nn.Linear(2 * n_channels, d_model)  # values and band-presence mask
        self.date_proj = nn.Linear(N_DATE_FEATURES, d_model)
        self.condition_embedding = nn.Embedding(n_conditions, d_model) if n_conditions else None
        self.context = nn.ModuleList(MaskedSelfAttentionBlock(d_model, n_heads, ff_mult) for _ in range(n_context_layers))
        self.token_norm = nn.LayerNorm(d_model)
        self.key_proj = nn.Linear(d_model, d_model)
        self.master_query = nn.Parameter(torch.randn(n_heads, d_model // n_heads) * 0.02)
        self.output = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, embed_dim))
        self.no_observation_embedding = nn.Parameter(torch.zeros(embed_dim))

    def forward(self, x: Tensor, days: Tensor, mask: Tensor, condition: Tensor | None = None, *,
                band_mask: Tensor | None = None, ref_days: Tensor | None = None, tokens_only: bool = False) -> EncoderOutput:
        """Encode a batch of pixel series.

        Args:
            x: float ``[B, T, C]`` normalised values (anything at unusable steps or missing bands, even NaN).
            days: int64 ``[B, T]`` (or ``[T]``) days since 1970-01-01.
            mask: bool ``[B, T]``; True = usable (not padded AND valid).
            condition: int64 ``[B, T]`` (or ``[T]``) acquisition condition in
                ``[0, n_conditions)``; required iff ``n_conditions > 0``.
            band_mask: bool, broadcastable to ``[B, T, C]`` (e.g. ``[C]`` for a cube's bands or
                ``[B, C]``); True = the band is there. Default: every band.
            ref_days: int64 ``[B]`` reference day of the relative date features; default the mean
                of each row's usable days (:func:`reference_day`).
            tokens_only: skip the pooled embedding (what the fusion network does not read): ``embedding``
                and ``attn`` are then empty ``[B, 0]`` / ``[B, H, 0]`` tensors; the tokens are the same.

        Returns:
            :class:`EncoderOutput`.
        """
        if x.dim() != 3 or x.shape[-1] != self.n_channels:
            raise ValueError(f"x must be [B, T, {self.n_channels}], got {tuple(x.shape)}")
        b, t, c = x.shape
        mask = mask.to(torch.bool)
        shared_days = days.dim() == 1  # one set of dates for the batch: date features computed once per date
        keep = mask.unsqueeze(-1)
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        present = torch.ones((b, t, c), dtype=torch.bool, device=x.device) if band_mask is None else \
            _expand_band_mask(band_mask.to(torch.bool), b, t, c)
        x = torch.where(keep & present, x, zero)
        days = days.to(torch.int64)
        if not shared_days:  # per-row dates: unusable steps' days zeroed before any arithmetic
            days = torch.where(mask, days, torch.zeros((), dtype=torch.int64, device=days.device))
        ref = reference_day(days, mask) if ref_days is None else ref_days.to(torch.int64)
        values = torch.cat([x, torch.where(keep, present.to(x.dtype), zero)], dim=-1)
        # shared dates: an unusable step gets its own day's features, and h is zeroed there just below
        h = self.value_proj(values) + project_dates(self.date_proj, days, ref)
        if self.condition_embedding is not None:
            if condition is None:
                raise ValueError("this encoder needs a per-step condition (S1: orbit direction 0/1)")
            if condition.dim() == 1:
                condition = condition.unsqueeze(0).expand(b, t)
            condition = torch.where(mask, condition.to(torch.int64), torch.zeros((), dtype=torch.int64, device=x.device))
            h = h + self.condition_embedding(condition)
        h = torch.where(keep, h, zero)
        packing = pack_usable(mask) if self.context and not torch.is_grad_enabled() else None
        if packing is not None:  # inference: the context blocks see each row's usable steps only (cloudy dates left out)
            order, packed_mask = packing
            hp = torch.gather(h, 1, order.unsqueeze(-1).expand(b, order.shape[1], h.shape[-1]))
            pkeep = packed_mask.unsqueeze(-1)
            for block in self.context:
                hp = torch.where(pkeep, block(hp, packed_mask), zero)
            tokens = unpack(torch.where(pkeep, self.token_norm(hp), zero), order, t)
        else:
            for block in self.context:
                h = torch.where(keep, block(h, mask), zero)
            tokens = torch.where(keep, self.token_norm(h), zero)
        if tokens_only:
            return EncoderOutput(tokens=tokens, embedding=tokens.new_zeros((b, 0)), attn=tokens.new_zeros((b, self.n_heads, 0)),
                                 ref_days=ref)
        dh = self.d_model // self.n_heads
        keys = self.key_proj(tokens).view(b, t, self.n_heads, dh)
        logits = torch.einsum("bthd,hd->bht", keys, self.master_query) / math.sqrt(dh)
        attn = masked_softmax(logits, mask[:, None, :])
        values = tokens.view(b, t, self.n_heads, dh)
        pooled = torch.einsum("bht,bthd->bhd", attn, values).reshape(b, self.d_model)
        embedding = self.output(pooled)
        has_obs = mask.any(1, keepdim=True)
        embedding = torch.where(has_obs, embedding, self.no_observation_embedding.to(embedding.dtype))
        return EncoderOutput(tokens=tokens, embedding=embedding, attn=attn, ref_days=ref)

    def config(self) -> dict[str, int]:
        """Constructor arguments (JSON-serialisable) to rebuild this module."""
        return {
            "d_model": self.d_model,
            "embed_dim": self.embed_dim,
            "n_heads": self.n_heads,
            "n_context_layers": self.n_context_layers,
            "ff_mult": self.ff_mult,
        }


__all__ = [
    "N_DATE_FEATURES",
    "EncoderOutput",
    "MaskedSelfAttentionBlock",
    "TemporalAttentionEncoder",
    "date_features",
    "masked_softmax",
    "pack_usable",
    "project_dates",
    "reference_day",
    "unpack",
]
