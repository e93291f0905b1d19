"""Peer pixel time-series encoders for the inference-cost benchmark (``experiments/bench_peers.py``).

Written here from the papers (and checked against the public configurations),
not copied; they are untrained: only their inference cost is measured.

* :class:`PrestoEncoder`: a Presto-class transformer (Tseng et al. 2023,
  arXiv 2304.14065; nasaharvest/presto ``Presto.construct()``): embedding
  128, depth 2, 8 heads, MLP ratio 4, qkv bias, pre-norm blocks, GELU. One
  token per (timestep, channel group) with Presto's own S1/S2/NDVI groups:
  S1 (VV, VH), S2_RGB (B2, B3, B4), S2_Red_Edge (B5, B6, B7), S2_NIR_10m (B8),
  S2_NIR_20m (B8A), S2_SWIR (B11, B12), NDVI; plus Presto's one location
  token. Each token = linear projection of its group + [month encoding (32,
  sinusoid of the month) | channel-group embedding (32, learned) | timestep
  encoding (64, sinusoid of the index)]. The output is LayerNorm(mean of the
  encoder tokens). Presto's ERA5, SRTM and Dynamic World groups are left out
  (the other models see none of them). Masked tokens are removed as Presto's
  ``mask_tokens`` does, generalised to unequal counts: each pixel's usable
  tokens are packed to the front, the batch is cut to its longest pixel and
  the padding is excluded with a key mask (``drop_masked=True``), so the peer
  does not pay for cloudy dates.
* :class:`LTAEEncoder`: the L-TAE (Garnot & Landrieu 2020) with OmniSat's
  per-modality projector configuration (Astruc et al. 2024,
  gastruc/OmniSat ``configs/model/network/encoder/Omni.yaml``, ``LTAE2d``):
  input MLP [C, 32, 128, 256] (Linear + BatchNorm + ReLU), GroupNorm(16),
  + sinusoidal day-of-year encoding (T = 367, 16 dims repeated over the 16
  heads), 16 heads with one learned master query each (d_k 8, keys
  Linear(256, 128), values = the input split into 16 x 16), one attention
  pooling over time, output MLP [256, 512, 256] (Linear + BatchNorm + ReLU),
  GroupNorm(16). OmniSat runs one per modality: :class:`LTAEPair` pools S2
  and S1 separately and concatenates them (512 per pixel).

Both use ``torch.nn.functional.scaled_dot_product_attention``.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PRESTO_INPUT_BANDS: tuple[str, ...] = ("VV", "VH", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12", "NDVI")
"""Channel order of :class:`PrestoEncoder`'s input (Presto's S1_S2 order without B9, then NDVI)."""

PRESTO_GROUPS: dict[str, tuple[int, ...]] = {
    "S1": (0, 1),
    "S2_RGB": (2, 3, 4),
    "S2_Red_Edge": (5, 6, 7),
    "S2_NIR_10m": (8,),
    "S2_NIR_20m": (9,),
    "S2_SWIR": (10, 11),
    "NDVI": (12,),
}
"""Presto's channel groups present in S1 + S2 (indices into :data:`PRESTO_INPUT_BANDS`)."""


def sinusoid_table(positions: Tensor, dim: int, period: float) -> Tensor:
    """``[..., dim]`` sine/cosine encoding of ``positions`` (even dims sine, odd cosine; Vaswani et al.)."""
    exponent = 2 * (torch.arange(dim, dtype=torch.float32) // 2) / dim
    angles = positions.to(torch.float32).unsqueeze(-1) / torch.pow(torch.tensor(period), exponent)
    return torch.where(torch.arange(dim) % 2 == 0, torch.sin(angles), torch.cos(angles))


def month_table(dim: int) -> Tensor:
    """``[12, dim]``: Presto's month encoding, [sin | cos] of the month's angle on the annual circle."""
    angles = torch.arange(12, dtype=torch.float32) * (2 * math.pi / 12)
    return torch.cat([torch.sin(angles)[:, None].expand(12, dim // 2), torch.cos(angles)[:, None].expand(12, dim // 2)], dim=1)


class _Block(nn.Module):
    """Pre-norm ViT block (qkv bias, GELU MLP) with SDPA attention and an optional usable-key mask."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, x: Tensor, key_mask: Tensor | None) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class PrestoEncoder(nn.Module):
    """Presto-class encoder: ``forward(x [B,T,13], months [T], latlon [B,2], usable [B,T,G] | None) -> [B,128]``.

    Args:
        dim: token width (Presto: 128).
        depth: transformer blocks (Presto: 2).
        heads: attention heads (Presto: 8).
        mlp_ratio: MLP hidden width / dim (Presto: 4).
        max_timesteps: length of the timestep encoding table.
        drop_masked: pack usable tokens and cut each batch to its longest pixel (else all tokens, masked keys).
    """

    def __init__(self, dim: int = 128, depth: int = 2, heads: int = 8, mlp_ratio: float = 4.0, max_timesteps: int = 128,
                 drop_masked: bool = True) -> None:
        super().__init__()
        self.groups = list(PRESTO_GROUPS.values())
        self.drop_masked = drop_masked
        self.group_proj = nn.ModuleList([nn.Linear(len(g), dim) for g in self.groups])
        self.latlon_proj = nn.Linear(3, dim)
        channel_dim = month_dim = dim // 4
        self.channel_embed = nn.Embedding(len(self.groups), channel_dim)
        self.register_buffer("month_embed", month_table(month_dim), persistent=False)
        self.register_buffer("pos_embed", sinusoid_table(torch.arange(max_timesteps), dim - channel_dim - month_dim, 1000.0), persistent=False)
        self.blocks = nn.ModuleList([_Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, months: Tensor, latlon: Tensor, usable: Tensor | None = None) -> Tensor:
        b, t, _ = x.shape
        time_code = torch.cat([self.month_embed[months], self.pos_embed[:t]], dim=-1)  # [T, month + pos]
        m = self.month_embed.shape[1]
        tokens = []
        for g, (idx, proj) in enumerate(zip(self.groups, self.group_proj, strict=True)):
            code = torch.cat([time_code[:, :m], self.channel_embed.weight[g].expand(t, -1), time_code[:, m:]], dim=-1)
            tokens.append(proj(x[:, :, list(idx)]) + code)
        lat, lon = torch.deg2rad(latlon).unbind(-1)
        xyz = torch.stack([torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon), torch.sin(lat)], dim=-1)
        h = torch.cat([self.latlon_proj(xyz).unsqueeze(1), *tokens], dim=1)  # [B, 1 + G*T, D]
        key_mask = None
        if usable is not None:
            key_mask = torch.cat([torch.ones(b, 1, dtype=torch.bool), usable.permute(0, 2, 1).reshape(b, -1)], dim=1)
            if self.drop_masked:
                keep = int(key_mask.sum(1).max())
                order = torch.argsort((~key_mask).to(torch.int8), dim=1, stable=True)[:, :keep]
                h = torch.gather(h, 1, order.unsqueeze(-1).expand(-1, -1, h.shape[-1]))
                key_mask = torch.gather(key_mask, 1, order)
        for block in self.blocks:
            h = block(h, key_mask)
        if key_mask is None:
            return self.norm(h.mean(1))
        w = key_mask.unsqueeze(-1).to(h.dtype)
        return self.norm((h * w).sum(1) / w.sum(1))


class _MasterQueryAttention(nn.Module):
    """L-TAE attention: one learned query per head pools the sequence (keys ``Linear(d_in, heads*d_k)``)."""

    def __init__(self, d_in: int, heads: int, d_k: int) -> None:
        super().__init__()
        self.heads, self.d_k = heads, d_k
        self.query = nn.Parameter(torch.randn(heads, d_k) * math.sqrt(2.0 / d_k))
        self.key = nn.Linear(d_in, heads * d_k)

    def forward(self, x: Tensor, usable: Tensor | None) -> Tensor:
        b, t, d = x.shape
        k = self.key(x).view(b, t, self.heads, self.d_k).transpose(1, 2)  # [B, H, T, dk]
        v = x.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # [B, H, T, d/H]
        q = self.query[None, :, None, :].expand(b, -1, -1, -1)  # [B, H, 1, dk]
        attn_mask = None if usable is None else usable[:, None, None, :]
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask).reshape(b, d)


def _mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
    return nn.Sequential(*layers)


class LTAEEncoder(nn.Module):
    """L-TAE, OmniSat projector configuration: ``forward(x [B,T,C], doy [T], usable [B,T] | None) -> [B, 256]``.

    Args:
        in_channels: bands of the modality.
        mlp_in: widths of the per-date input MLP (OmniSat: 32, 128, 256; the last is d_model).
        heads: attention heads = master queries (OmniSat: 16).
        d_k: key/query width per head (OmniSat: 8).
        mlp_out: widths of the output MLP after d_model (OmniSat: 512, 256).
        period: period of the day-of-year encoding (OmniSat: T = 367).
    """

    def __init__(self, in_channels: int, mlp_in: tuple[int, ...] = (32, 128, 256), heads: int = 16, d_k: int = 8,
                 mlp_out: tuple[int, ...] = (512, 256), period: float = 367.0) -> None:
        super().__init__()
        d_model = mlp_in[-1]
        self.heads, self.period = heads, period
        self.inconv = _mlp([in_channels, *mlp_in])
        self.in_norm = nn.GroupNorm(heads, d_model)
        self.attention = _MasterQueryAttention(d_model, heads, d_k)
        self.mlp = _mlp([d_model, *mlp_out])
        self.out_norm = nn.GroupNorm(heads, mlp_out[-1])

    def forward(self, x: Tensor, doy: Tensor, usable: Tensor | None = None) -> Tensor:
        b, t, c = x.shape
        h = self.inconv(x.reshape(b * t, c)).view(b, t, -1)
        h = self.in_norm(h.transpose(1, 2)).transpose(1, 2)
        h = h + sinusoid_table(doy, h.shape[-1] // self.heads, self.period).repeat(1, self.heads)
        return self.out_norm(self.mlp(self.attention(h, usable)))


class LTAEPair(nn.Module):
    """OmniSat-style: one :class:`LTAEEncoder` per modality (S2 10 bands, S1 2 bands), embeddings concatenated."""

    def __init__(self, s2_channels: int = 10, s1_channels: int = 2) -> None:
        super().__init__()
        self.s2 = LTAEEncoder(s2_channels)
        self.s1 = LTAEEncoder(s1_channels)

    def forward(self, s2: Tensor, s2_doy: Tensor, s2_usable: Tensor | None, s1: Tensor, s1_doy: Tensor, s1_usable: Tensor | None) -> Tensor:
        return torch.cat([self.s2(s2, s2_doy, s2_usable), self.s1(s1, s1_doy, s1_usable)], dim=-1)


def n_parameters(module: nn.Module) -> int:
    """Trainable parameters of ``module`` (buffers such as fixed encodings excluded)."""
    return sum(p.numel() for p in module.parameters())
