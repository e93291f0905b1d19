"""Stage 2: fuse frozen per-sensor tokens into a daily embedding at any query date.

The stage-1 encoders (``S2Encoder``, ``S1Encoder``) turn each sensor's pixel
time series into per-date tokens ``[B, T, D]`` (meaningful at usable steps
only). :class:`FusionNetwork` consumes those tokens, from any subset of the
registered modalities, and answers "what does this pixel look like on day
*d*?" for many days at once:

1. **Tokenise.** Each modality has its own *adapter* (a linear map from its
   token width to ``d_model``) and a learned *modality embedding*; every token
   also gets the date encoding of its day (:func:`~ecoembed.models.ltae.date_features`:
   day-of-year harmonics and the time relative to the pixel's reference day, the
   mean of its usable days over all modalities; nothing faster than a third of a
   year, and invariant to shifting the whole series by whole years).
2. **Contextualise** once per pixel: residual self-attention blocks over all
   tokens of all modalities together. A learned *global token* (no date) is
   always present, so a pixel with no usable token at all still has one key
   and never yields NaN (its embedding is then the learned "no observation"
   answer; the embed pipeline writes NaN for such pixels instead).
   Unusable or absent tokens are excluded with a key-padding mask AND zeroed
   with ``torch.where`` before any arithmetic, so their values (even NaN/inf)
   never influence anything.
3. **Query** many days cheaply: a learned *combining token* placed at the
   query day (its own date encoding) cross-attends to the contextualised
   tokens. The attention logits get a learned *relative-time bias*, a function
   of ``|query day - token day|`` per head (initialised to decay like
   ``-log(1 + |dt|)``), so a query inside a cloudy gap leans on the nearest
   observations of any sensor and interpolates sensibly.

Adding a sensor = :meth:`FusionNetwork.add_modality` (a new adapter, modality
embedding and reconstruction head); the stage-1 encoders are untouched and
only the fusion network is retrained. A modality without a stage-1 encoder
(e.g. daily meteorology) simply feeds its raw per-day values as tokens.

Shapes: ``B`` pixels, ``T`` dates of one modality, ``L`` tokens of all
modalities plus the global token, ``Q`` query days, ``E`` embedding size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ecoembed.models.ltae import (
    DAYS_PER_YEAR,
    N_DATE_FEATURES,
    TemporalAttentionEncoder,
    key_bias,
    pack_usable,
    project_dates,
    reference_day,
    unpack,
)

# One date encoding for the whole project: the stage-1 one (seasonal harmonics + time relative to the pixel).


@dataclass
class ModalityTokens:
    """One modality's per-date tokens for a batch of pixels.

    Attributes:
        tokens: float ``[B, T, D]`` per-date tokens (stage-1 encoder ``tokens``, or raw
            normalised values for a modality without an encoder).
        days: int64 ``[B, T]`` or ``[T]`` days since 1970-01-01.
        mask: bool ``[B, T]``; True = usable (observed, valid, not held out).
        ref_days: int64 ``[B]`` reference day the tokens' relative dates were taken from (the
            encoders' joint reference), or None to let the fusion network compute it.
    """

    tokens: Tensor
    days: Tensor
    mask: Tensor
    ref_days: Tensor | None = None


@dataclass
class FusionContext:
    """Contextualised tokens of a batch of pixels, ready to be queried at any day.

    Attributes:
        tokens: float ``[B, L, d_model]``; position 0 is the global token.
        days: int64 ``[B, L]`` token days (0 for the global token).
        mask: bool ``[B, L]`` True = usable key (the global token always is).
        dated: bool ``[B, L]`` True for tokens that carry a date (not the global token).
        ref_days: int64 ``[B]`` the pixels' reference days (relative date features of queries).
        shared_days: int64 ``[L]`` token days common to every row (position 0, the global token, is 0)
            when the inputs had one set of dates for the batch (a cube block), else None. Lets
            :meth:`FusionNetwork.query` build the time bias once per (query, token) for the batch.
        keys, values: float ``[B, H, L, d_model / H + 1]`` the cross-attention keys and values
            (:meth:`_CrossAttentionBlock.keys_values`), projected once per pixel here rather than
            once per query slab (None: computed by ``query``).
    """

    tokens: Tensor
    days: Tensor
    mask: Tensor
    dated: Tensor
    ref_days: Tensor
    shared_days: Tensor | None = None
    keys: Tensor | None = None
    values: Tensor | None = None

    def without_tokens(self) -> FusionContext:
        """This context without its ``[B, L, d]`` tokens (kept as ``[B, 0, d]``), once keys and values are projected.

        :meth:`FusionNetwork.query` reads only the keys and values then, so a block's contexts held
        for all its query slabs take ~2/3 of the memory.
        """
        if self.keys is None or self.values is None:
            raise ValueError("without_tokens needs the projected keys and values (a context from FusionNetwork.contextualize)")
        return FusionContext(self.tokens[:, :0], self.days, self.mask, self.dated, self.ref_days,
                             shared_days=self.shared_days, keys=self.keys, values=self.values)

    def select(self, index: slice | Tensor) -> FusionContext:
        """Sub-batch of pixels (rows)."""
        return FusionContext(
            self.tokens[index], self.days[index], self.mask[index], self.dated[index], self.ref_days[index],
            shared_days=self.shared_days,
            keys=None if self.keys is None else self.keys[index],
            values=None if self.values is None else self.values[index],
        )


def joint_reference_day(inputs: Mapping[str, ModalityTokens]) -> Tensor:
    """int64 ``[B]`` reference day of a pixel: the encoders' one if the tokens carry it, else the mean usable day."""
    given = [item.ref_days for item in inputs.values() if item.ref_days is not None]
    if given:
        return given[0].to(torch.int64)
    days, masks = [], []
    for item in inputs.values():
        mask = item.mask.to(torch.bool)
        d = item.days.to(torch.int64)
        days.append(d.unsqueeze(0).expand(*mask.shape) if d.dim() == 1 else d)
        masks.append(mask)
    return reference_day(torch.cat(days, 1), torch.cat(masks, 1))


@dataclass(frozen=True)
class ModalityConfig:
    """What the fusion network needs to know about one modality.

    Attributes:
        token_dim: width ``D`` of the modality's tokens.
        n_channels: channels reconstructed by its head (e.g. 10 S2 bands, 2 S1 polarisations).
        n_conditions: acquisition conditions with their own reconstruction (S1: 2 orbit
            directions, 0 ascending / 1 descending); 1 otherwise.
    """

    token_dim: int
    n_channels: int
    n_conditions: int = 1


_BLOCKED_LOGIT = -1e30
"""Key-mask channel of a blocked key (:meth:`_CrossAttentionBlock.keys_values`): finite, so never inf - inf = NaN, and
far enough below any real logit that its softmax weight underflows to exactly 0."""


class _CrossAttentionBlock(nn.Module):
    """Queries attend to context tokens with an additive per-head bias; pre-norm residual."""

    def __init__(self, d_model: int, n_heads: int, ff_mult: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm_q = nn.LayerNorm(d_model)
        self.norm_kv = nn.LayerNorm(d_model)
        self.q_proj = nn.Linear(d_model, d_model)
        self.kv_proj = nn.Linear(d_model, 2 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff_mult * d_model), nn.GELU(), nn.Linear(ff_mult * d_model, d_model))

    def keys_values(self, context: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Keys and values ``[B, H, L, d/H + 1]`` of context tokens ``[B, L, d]`` (one projection for both).

        The extra last channel carries the usable-key mask (``mask`` bool ``[B, L]``, None = all
        usable) into the logits: it is 0 for a usable key and :data:`_BLOCKED_LOGIT` for an unusable
        one in the keys, and 0 in the values; :meth:`attend` gives every query a 1 there. A blocked
        key's weight is then ``exp(-1e30)`` = exactly 0 (the same numbers as a −inf mask), without a
        per-pixel ``[B, H, Q, L]`` mask: the time bias can stay one ``[1, H, Q, L]`` tensor
        broadcast over the batch.
        """
        b, length, d = context.shape
        kv = self.kv_proj(self.norm_kv(context)).view(b, length, 2, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        gate = torch.zeros((b, 1, length, 1), dtype=kv.dtype, device=kv.device)
        if mask is not None:
            gate = gate.masked_fill(~mask.view(b, 1, length, 1), _BLOCKED_LOGIT)
        k = torch.cat([kv[0], gate.expand(b, self.n_heads, length, 1)], dim=-1)
        v = torch.cat([kv[1], torch.zeros_like(gate).expand(b, self.n_heads, length, 1)], dim=-1)
        return k, v

    def forward(self, queries: Tensor, context: Tensor, bias: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """``queries [B,Q,d]``, ``context [B,L,d]``, ``bias [B,H,Q,L]`` (−inf = excluded) -> (``[B,Q,d]``, attn ``[B,H,Q,L]``)."""
        k, v = self.keys_values(context)
        return self.attend(queries, k, v, bias, need_weights)

    def attend(self, queries: Tensor, k: Tensor, v: Tensor, bias: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """As :meth:`forward` with the context's keys and values ``[B, H, L, d/H + 1]`` from :meth:`keys_values`.

        ``bias`` is anything broadcastable to ``[B, H, Q, L]`` (a batch-wide ``[1, H, Q, L]`` time bias
        when the keys carry the usable-key mask).
        """
        b, q_len, d = queries.shape
        h = self.n_heads
        dh = d // h
        # q_proj with one extra output per head that is always 1 (the key-mask channel's partner):
        # a [H*(dh+1), d] weight with a zero row and bias 1 per head, so no [B,H,Q,dh+1] concatenation
        w = self.q_proj.weight.view(h, dh, d)
        w_ext = torch.cat([w, torch.zeros((h, 1, d), dtype=w.dtype, device=w.device)], dim=1).view(h * (dh + 1), d)
        bias_q = self.q_proj.bias.view(h, dh)
        b_ext = torch.cat([bias_q, torch.ones((h, 1), dtype=bias_q.dtype, device=bias_q.device)], dim=1).view(-1)
        q = F.linear(self.norm_q(queries), w_ext, b_ext).view(b, q_len, h, dh + 1).transpose(1, 2)
        scale = 1.0 / math.sqrt(dh)
        if need_weights:
            attn = torch.softmax((q @ k.transpose(-1, -2)) * scale + bias, dim=-1)
            mixed = attn @ v
        else:  # fused kernel, same maths, no [B,H,Q,L] weights kept
            attn = None
            mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
        mixed = mixed[..., :dh].transpose(1, 2).reshape(b, q_len, d)
        out = queries + self.out_proj(mixed)
        out = out + self.ff(self.norm_ff(out))
        return out, attn


class FusionNetwork(nn.Module):
    """Fuse per-date tokens of several sensors into embeddings at query days.

    Args:
        modalities: name -> :class:`ModalityConfig` (or a dict of its fields), e.g.
            ``{"s2": ModalityConfig(64, 10), "s1": ModalityConfig(64, 2, 2)}``.
        d_model: internal token width.
        embed_dim: output embedding size ``E`` (default 64).
        n_heads: attention heads (must divide ``d_model``).
        n_layers: residual self-attention blocks over all tokens.
        ff_mult: feed-forward expansion factor.
        proj_dim: width of the per-modality summary projection used by the
            cross-modal contrastive loss of stage-2 training.
    """

    def __init__(
        self,
        modalities: Mapping[str, ModalityConfig | Mapping[str, int]],
        *,
        d_model: int = 64,
        embed_dim: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        ff_mult: int = 2,
        proj_dim: int = 32,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.d_model = d_model
        self.embed_dim = embed_dim
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.ff_mult = ff_mult
        self.proj_dim = proj_dim
        self.modality_configs: dict[str, ModalityConfig] = {}
        self.adapters = nn.ModuleDict()
        self.modality_embeddings = nn.ParameterDict()
        self.reconstruction_heads = nn.ModuleDict()

        self.date_proj = nn.Linear(N_DATE_FEATURES, d_model)
        self.global_token = nn.Parameter(torch.randn(d_model) * 0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model, n_heads, dim_feedforward=ff_mult * d_model, dropout=0.0, batch_first=True, norm_first=True
            )
            for _ in range(n_layers)
        )
        self.context_norm = nn.LayerNorm(d_model)
        self.combining_token = nn.Parameter(torch.randn(d_model) * 0.02)
        self.cross = _CrossAttentionBlock(d_model, n_heads, ff_mult)
        # Relative-time bias: -softplus(slope_h) * log1p(|dt|) + small MLP correction; a learned bias for the global token.
        self.time_slope = nn.Parameter(torch.full((n_heads,), math.log(math.e - 1)))  # softplus -> 1.0
        time_hidden, time_out = nn.Linear(2, 16), nn.Linear(16, n_heads)  # created in this order: same init as before
        nn.init.zeros_(time_out.weight)
        nn.init.zeros_(time_out.bias)
        self.time_mlp = nn.Sequential(time_hidden, nn.GELU(), time_out)
        self.global_bias = nn.Parameter(torch.zeros(n_heads))
        self.output = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, embed_dim))
        self.summary_head = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, proj_dim))
        for name, cfg in modalities.items():
            if not isinstance(cfg, ModalityConfig):
                cfg = ModalityConfig(**cfg)
            self.add_modality(name, cfg)

    # -- modalities ---------------------------------------------------------------------------

    def add_modality(self, name: str, config: ModalityConfig) -> None:
        """Register a new modality: adapter, modality embedding and reconstruction head.

        Only these new parameters (and whatever fusion parameters the caller
        chooses to fine-tune) need training; the stage-1 encoders are untouched.
        """
        if name in self.modality_configs:
            raise ValueError(f"modality {name!r} is already registered")
        self.modality_configs[name] = config
        self.adapters[name] = nn.Linear(config.token_dim, self.d_model)
        self.modality_embeddings[name] = nn.Parameter(torch.randn(self.d_model) * 0.02)
        self.reconstruction_heads[name] = nn.Sequential(
            nn.Linear(self.embed_dim, 2 * self.embed_dim),
            nn.GELU(),
            nn.Linear(2 * self.embed_dim, config.n_channels * config.n_conditions),
        )

    @property
    def modalities(self) -> tuple[str, ...]:
        """Registered modality names, in registration order."""
        return tuple(self.modality_configs)

    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments (to rebuild the module from a checkpoint)."""
        return {
            "modalities": {
                k: {"token_dim": c.token_dim, "n_channels": c.n_channels, "n_conditions": c.n_conditions}
                for k, c in self.modality_configs.items()
            },
            "d_model": self.d_model,
            "embed_dim": self.embed_dim,
            "n_heads": self.n_heads,
            "n_layers": self.n_layers,
            "ff_mult": self.ff_mult,
            "proj_dim": self.proj_dim,
        }

    # -- stage A: contextualise once per pixel -----------------------------------------------

    def _tokenise(self, name: str, item: ModalityTokens, ref_days: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if name not in self.modality_configs:
            raise KeyError(f"modality {name!r} is not registered in this fusion network (have {self.modalities})")
        tokens, mask = item.tokens, item.mask.to(torch.bool)
        b, t, _ = tokens.shape
        raw_days = item.days.to(torch.int64)
        days = raw_days.unsqueeze(0).expand(b, t) if raw_days.dim() == 1 else raw_days
        # Zero unusable steps before any arithmetic: their values (even NaN/inf) must not leak.
        tokens = torch.where(mask.unsqueeze(-1), tokens, torch.zeros((), dtype=tokens.dtype))
        days = torch.where(mask, days, torch.zeros((), dtype=days.dtype))
        # shared dates: date features once per date (an unusable step's token is zeroed after each block and masked as a key)
        x = self.adapters[name](tokens) + self.modality_embeddings[name] + project_dates(
            self.date_proj, raw_days if raw_days.dim() == 1 else days, ref_days)
        return x, days, mask

    def contextualize(self, inputs: Mapping[str, ModalityTokens]) -> FusionContext:
        """Run the self-attention blocks over all tokens of the given modalities.

        Args:
            inputs: modality name -> :class:`ModalityTokens`; any non-empty subset of
                the registered modalities (missing modalities are simply absent).

        Returns:
            :class:`FusionContext` for :meth:`query`.
        """
        if not inputs:
            raise ValueError("contextualize needs at least one modality")
        ref = joint_reference_day(inputs)
        parts = [self._tokenise(name, item, ref) for name, item in inputs.items()]
        b = parts[0][0].shape[0]
        glob = self.global_token.expand(b, 1, self.d_model)
        x = torch.cat([glob] + [p[0] for p in parts], dim=1)
        days = torch.cat([torch.zeros(b, 1, dtype=torch.int64, device=x.device)] + [p[1] for p in parts], dim=1)
        usable = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=x.device)] + [p[2] for p in parts], dim=1)
        dated = usable.clone()
        dated[:, 0] = False
        packing = pack_usable(usable) if not torch.is_grad_enabled() else None
        order = None
        if packing is not None:  # inference: the blocks see each pixel's usable tokens only; scattered back afterwards
            order, work_mask = packing
            x = torch.gather(x, 1, order.unsqueeze(-1).expand(b, order.shape[1], self.d_model))
        else:
            work_mask = usable
        attn_mask = key_bias(work_mask)[:, None, None, :]  # [B,1,1,L]: the global token is always a key, so never all -inf
        for block in self.blocks:
            assert isinstance(block, nn.TransformerEncoderLayer)
            x = _self_attention_layer(block, x, attn_mask)
            # Keep unusable positions at exactly zero so nothing downstream depends on them.
            x = torch.where(work_mask.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype))
        if order is not None:
            x = unpack(x, order, usable.shape[1])
        x = self.context_norm(x)
        shared = None
        if all(item.days.dim() == 1 for item in inputs.values()):
            shared = torch.cat([torch.zeros(1, dtype=torch.int64, device=x.device)]
                               + [item.days.to(torch.int64) for item in inputs.values()])
        k, v = self.cross.keys_values(x, usable)
        return FusionContext(tokens=x, days=days, mask=usable, dated=dated, ref_days=ref, shared_days=shared, keys=k, values=v)

    # -- stage B: query many days -------------------------------------------------------------

    def relative_time_bias(self, abs_delta_days: Tensor) -> Tensor:
        """Learned attention-logit bias ``[..., H]`` for ``|query day - token day|`` (int days)."""
        delta = abs_delta_days.to(torch.float32)
        log_dt = torch.log1p(delta)
        feats = torch.stack([log_dt / 5.0, torch.clamp(delta / DAYS_PER_YEAR, max=4.0)], dim=-1)
        return -F.softplus(self.time_slope) * log_dt.unsqueeze(-1) + self.time_mlp(feats)

    def _time_bias(self, context: FusionContext, query_days: Tensor) -> Tensor:
        """Additive attention bias ``[B, H, Q, L]`` from ``|query day - token day|`` (days); −inf at unusable tokens."""
        delta = (query_days.unsqueeze(-1) - context.days.unsqueeze(1)).abs()  # [B,Q,L] int64 days
        n_dt = int(delta.max()) + 1
        # The bias depends on the integer |dt| only: evaluate it once per distinct |dt| (a small table,
        # plus a row for the global token and a −inf row for unusable tokens) and gather, instead of
        # running the MLP and masking on every (pixel, query, token) triple.
        table = torch.cat(
            [
                self.relative_time_bias(torch.arange(n_dt, device=delta.device)),
                self.global_bias.unsqueeze(0),
                torch.full((1, self.n_heads), float("-inf"), device=delta.device),
            ]
        )  # [n_dt + 2, H]
        special = torch.where(context.mask, torch.full_like(context.days, n_dt), torch.full_like(context.days, n_dt + 1))
        index = torch.where(context.dated.unsqueeze(1), delta, special.unsqueeze(1))  # [B,Q,L]
        return F.embedding(index, table).permute(0, 3, 1, 2)  # [B,H,Q,L]

    def _shared_time_bias(self, context: FusionContext, query_days: Tensor) -> Tensor:
        """:meth:`_time_bias` for token days shared by every row and query days ``[Q]``: ``[1, H, Q, L]`` without the key mask.

        The time bias is then the same for the whole batch; the usable-key mask, the only
        per-pixel part, travels in the keys' extra channel (:meth:`_CrossAttentionBlock.keys_values`).
        """
        assert context.shared_days is not None
        delta = (query_days.unsqueeze(-1) - context.shared_days.unsqueeze(0)).abs()  # [Q,L]
        bias = self.relative_time_bias(delta)  # [Q,L,H]: evaluated directly (Q x L is small), no data-dependent table size
        bias = torch.cat([self.global_bias.expand(bias.shape[0], 1, self.n_heads), bias[:, 1:]], dim=1)  # position 0: global token
        return bias.permute(2, 0, 1).unsqueeze(0)  # [1,H,Q,L]

    def query(self, context: FusionContext, query_days: Tensor, *, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Fused embeddings at query days.

        Args:
            context: from :meth:`contextualize`.
            query_days: int64 ``[Q]`` (same days for every pixel) or ``[B, Q]``, days since 1970-01-01.
            return_attention: also return the cross-attention weights ``[B, H, Q, L]``.

        Returns:
            float ``[B, Q, E]`` embeddings (and the attention weights if asked).
        """
        b = context.tokens.shape[0]
        qd = query_days.to(torch.int64)
        queries = self.combining_token + project_dates(self.date_proj, qd, context.ref_days)  # [B,Q,d]
        if qd.dim() == 1 and context.shared_days is not None:
            bias = self._shared_time_bias(context, qd)
        else:
            bias = self._time_bias(context, qd.unsqueeze(0).expand(b, -1) if qd.dim() == 1 else qd)
        if context.keys is not None and context.values is not None:
            k, v = context.keys, context.values
        else:
            k, v = self.cross.keys_values(context.tokens, context.mask)
        fused, attn = self.cross.attend(queries, k, v, bias, need_weights=return_attention)
        out = self.output(fused)
        if return_attention:
            assert attn is not None
            return out, attn
        return out

    def forward(self, inputs: Mapping[str, ModalityTokens], query_days: Tensor) -> Tensor:
        """``contextualize`` then ``query``: fused embeddings ``[B, Q, E]``."""
        result = self.query(self.contextualize(inputs), query_days)
        assert isinstance(result, Tensor)
        return result

    # -- training heads -----------------------------------------------------------------------

    def summary(self, inputs: Mapping[str, ModalityTokens]) -> Tensor:
        """Pooled projection ``[B, proj_dim]`` of the *adapted* tokens, before cross-modal attention.

        Called with one modality at a time, it gives the per-modality summaries that
        the cross-modal contrastive loss aligns (S1 vs S2 of the same pixel), as
        OmniSat aligns modality-specific tokens before fusion: it shapes the
        adapters so that the modalities share one token space, which is what lets
        a single modality stand in for a missing one. Pixels without usable tokens
        get the pooled global token.
        """
        ref = joint_reference_day(inputs)
        parts = [self._tokenise(name, item, ref) for name, item in inputs.items()]
        x = torch.cat([p[0] for p in parts], dim=1)
        w = torch.cat([p[2] for p in parts], dim=1).to(x.dtype).unsqueeze(-1)
        pooled = (x * w).sum(1) + self.global_token
        return self.summary_head(pooled / (w.sum(1) + 1.0))

    def reconstruct(self, embedding: Tensor, modality: str, condition: Tensor | None = None) -> Tensor:
        """Decode a modality's (normalised) channels from fused embeddings.

        Args:
            embedding: ``[B, Q, E]`` fused embeddings at the days to reconstruct.
            modality: registered modality name.
            condition: int64 ``[B, Q]`` acquisition condition (S1 orbit: 0 asc, 1 desc);
                None = condition 0.

        Returns:
            ``[B, Q, n_channels]`` reconstructed values (normalised like the stage-1 inputs).
        """
        cfg = self.modality_configs[modality]
        out = self.reconstruction_heads[modality](embedding)
        out = out.view(*embedding.shape[:-1], cfg.n_conditions, cfg.n_channels)
        if condition is None:
            return out[..., 0, :]
        idx = condition.to(torch.int64).clamp(0, cfg.n_conditions - 1)
        return torch.gather(out, -2, idx[..., None, None].expand(*idx.shape, 1, cfg.n_channels)).squeeze(-2)


def _self_attention_layer(layer: nn.TransformerEncoderLayer, x: Tensor, attn_mask: Tensor) -> Tensor:
    """``layer(x, src_key_padding_mask=...)`` of a pre-norm layer (dropout 0), with fused attention and an additive key mask.

    The same maths as :class:`torch.nn.TransformerEncoderLayer` (``norm_first=True``), written out
    so that attention runs in ``scaled_dot_product_attention`` with the ``[B, 1, 1, L]`` key bias
    broadcast over heads and queries; the module's own inference fast path builds and softmaxes a
    ``[B, H, L, L]`` masked tensor instead, several times slower on CPU.
    """
    assert layer.norm_first, "fusion blocks are pre-norm"
    attn = layer.self_attn
    b, length, d = x.shape
    h = attn.num_heads
    qkv = F.linear(layer.norm1(x), attn.in_proj_weight, attn.in_proj_bias).view(b, length, 3, h, d // h).permute(2, 0, 3, 1, 4)
    mixed = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=attn_mask)
    x = x + attn.out_proj(mixed.transpose(1, 2).reshape(b, length, d))
    return x + layer.linear2(layer.activation(layer.linear1(layer.norm2(x))))


@dataclass
class SensorBatch:
    """Raw (normalised) per-date inputs of one modality for a batch of pixels.

    Attributes:
        values: float ``[B, T, C]`` normalised values (0 where invalid, as ``cube_to_series`` gives).
        days: int64 ``[T]`` or ``[B, T]`` days since 1970-01-01.
        mask: bool ``[B, T]`` True = usable.
        orbit: int64 ``[T]`` or ``[B, T]`` (S1: 0 ascending, 1 descending) or None.
        band_mask: bool ``[C]`` or ``[B, C]`` bands present (None = all).
    """

    values: Tensor
    days: Tensor
    mask: Tensor
    orbit: Tensor | None = None
    band_mask: Tensor | None = None


class FusedEmbeddingModel(nn.Module):
    """Frozen stage-1 encoders + a trainable :class:`FusionNetwork`.

    Modalities listed in ``encoders`` are tokenised by their (frozen) stage-1
    encoder's ``tokens`` output; any other modality registered in the fusion
    network feeds its raw normalised values as tokens (e.g. daily meteorology).

    Args:
        encoders: modality name -> stage-1 encoder with
            ``forward(x [B,T,C], days [B,T], mask [B,T][, orbit [B,T]]) -> EncoderOutput``.
        fusion: the fusion network; every encoder's modality must be registered in it.
    """

    def __init__(self, encoders: Mapping[str, nn.Module], fusion: FusionNetwork) -> None:
        super().__init__()
        missing = set(encoders) - set(fusion.modalities)
        if missing:
            raise ValueError(f"encoders {sorted(missing)} have no adapter in the fusion network")
        self.encoders = nn.ModuleDict(dict(encoders))
        self.fusion = fusion
        self.freeze_encoders()

    def freeze_encoders(self) -> None:
        """Stage-1 encoders: no gradients, eval mode (no dropout / batch statistics)."""
        for enc in self.encoders.values():
            enc.requires_grad_(False)
            enc.eval()

    def train(self, mode: bool = True) -> FusedEmbeddingModel:
        """Train mode for the fusion network only; encoders stay in eval mode."""
        super().train(mode)
        self.freeze_encoders()
        return self

    def tokens(self, batch: Mapping[str, SensorBatch]) -> dict[str, ModalityTokens]:
        """Per-modality tokens ``{name: ModalityTokens}`` (encoders run without gradients).

        Every encoder takes its relative dates from the same reference day: the mean
        of the pixel's usable days over all modalities of ``batch``.
        """
        shaped: dict[str, tuple[Tensor, Tensor]] = {}  # days as given ([T] shared by the batch, or [B, T]), mask
        for name, item in batch.items():
            shaped[name] = (item.days.to(torch.int64), item.mask.to(torch.bool))
        ref = reference_day(torch.cat([d.unsqueeze(0).expand(*m.shape) if d.dim() == 1 else d for d, m in shaped.values()], 1),
                            torch.cat([m for _, m in shaped.values()], 1))
        out: dict[str, ModalityTokens] = {}
        for name, item in batch.items():
            days, mask = shaped[name]
            b, t = mask.shape
            if name in self.encoders:
                values = torch.where(mask.unsqueeze(-1), item.values, torch.zeros((), dtype=item.values.dtype))
                orbit = None
                if item.orbit is not None:
                    orbit = item.orbit.to(torch.int64)
                    orbit = orbit.unsqueeze(0).expand(b, t) if orbit.dim() == 1 else orbit
                encoder = self.encoders[name]
                extra = {"tokens_only": True} if isinstance(encoder, TemporalAttentionEncoder) else {}  # the pooled embedding is not used
                with torch.no_grad():
                    tokens = encoder(values, days, mask, orbit, band_mask=item.band_mask, ref_days=ref, **extra).tokens
            else:
                tokens = item.values
            out[name] = ModalityTokens(tokens=tokens, days=days, mask=mask, ref_days=ref)
        return out

    def forward(self, batch: Mapping[str, SensorBatch], query_days: Tensor) -> Tensor:
        """Fused embeddings ``[B, Q, E]`` at ``query_days`` from raw modality inputs."""
        return self.fusion(self.tokens(batch), query_days)
