"""Tiny stand-ins for the fusion/embed tests: a fake stage-1 encoder and toy pixel series.

The fake encoder has the stage-1 interface (``forward(x, days, mask[, orbit])``
returning an object with ``tokens`` [B,T,D], ``embedding`` [B,E], ``attn``),
so the fusion pipeline is tested without shipped weights (as Galileo does).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from torch import Tensor, nn

from ecoembed.training.stage2 import ArraySeries, FusionScene


class FakeEncoder(nn.Module):
    """Per-date tokens = tanh(linear(values) + orbit embedding); masked steps are zero."""

    def __init__(self, n_channels: int, d_model: int = 8, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.d_model = d_model
        self.proj = nn.Linear(n_channels, d_model)
        self.orbit_embedding = nn.Embedding(2, d_model)

    def forward(self, x: Tensor, days: Tensor, mask: Tensor, orbit: Tensor | None = None) -> SimpleNamespace:
        x = torch.where(mask.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype))
        tokens = torch.tanh(self.proj(x) + (self.orbit_embedding(orbit) if orbit is not None else 0.0))
        tokens = tokens * mask.unsqueeze(-1)
        emb = tokens.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return SimpleNamespace(tokens=tokens, embedding=emb, attn=mask.float().unsqueeze(1))


def toy_scene(size_px: int = 8, seed: int = 0, n_days: int = 180, start_day: int = 17897) -> FusionScene:
    """Toy pixel series: an LAI-like seasonal curve per pixel seen by 'S2' (10 ch) and 'S1' (2 ch).

    S2 every 5 days with ~30 % cloudy (invalid, values garbage), S1 every 6 days
    alternating orbits, plus daily 'meteo' (4 ch, no encoder).
    """
    rng = np.random.default_rng(seed)
    n = size_px * size_px
    yx = np.stack(np.divmod(np.arange(n), size_px), axis=1)
    amp = rng.uniform(0.5, 2.0, n)
    peak = rng.uniform(60, 120, n)

    def lai(days: np.ndarray) -> np.ndarray:
        return amp[:, None] * np.exp(-(((days - start_day)[None, :] - peak[:, None]) / 35.0) ** 2)

    d2 = start_day + np.arange(0, n_days, 5)
    m2 = rng.normal(size=(1, 1, 10)).astype(np.float32)
    v2 = (lai(d2)[..., None] * m2 + 0.05 * rng.normal(size=(n, len(d2), 10))).astype(np.float32)
    valid2 = rng.random((n, len(d2))) > 0.3
    v2[~valid2] = 0.0
    d1 = start_day + np.arange(2, n_days, 6)
    m1 = rng.normal(size=(1, 1, 2)).astype(np.float32)
    v1 = (lai(d1)[..., None] * m1 + 0.1 * rng.normal(size=(n, len(d1), 2))).astype(np.float32)
    valid1 = np.ones((n, len(d1)), bool)
    orbit1 = (np.arange(len(d1)) % 2).astype(np.int8)
    dm = start_day + np.arange(n_days)
    meteo = np.sin(2 * np.pi * (dm - start_day) / 365.0)[None, :, None] * np.ones((n, 1, 4), np.float32)
    return FusionScene(
        series={
            "s2": ArraySeries(v2, d2.astype(np.int64), valid2),
            "s1": ArraySeries(v1, d1.astype(np.int64), valid1, orbit1),
            "meteo": ArraySeries(meteo.astype(np.float32), dm.astype(np.int64), np.ones((n, n_days), bool)),
        },
        yx=yx,
        name=f"toy{seed}",
    )


def without(scene: FusionScene, *drop: str) -> FusionScene:
    """The same scene without some modalities."""
    return FusionScene({k: v for k, v in scene.series.items() if k not in drop}, scene.yx, scene.name)
