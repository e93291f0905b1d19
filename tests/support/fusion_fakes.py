"""Tiny stand-ins for the fusion/embed tests: a fake stage-1 encoder and toy pixel series.

The fake encoder has the stage-1 interface (``forward(x, days, mask[, orbit])``
returning an object with ``tokens`` [B,T,D], ``embedding`` [B,E], ``attn``),
so the fusion pipeline is tested without shipped weights (as Galileo does).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import Tensor, nn

from ecoembed.training.fusion_data import ArraySeries, FusionScene


class FakeEncoder(nn.Module):
    """Per-date tokens = tanh(linear(values) + orbit embedding); masked steps are zero."""

    def __init__(self, n_channels: int, d_model: int = 8, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.d_model = d_model
        self.proj = nn.Linear(n_channels, d_model)
        self.orbit_embedding = nn.Embedding(2, d_model)

    def forward(self, x: Tensor, days: Tensor, mask: Tensor, orbit: Tensor | None = None, *,
                band_mask: Tensor | None = None, ref_days: Tensor | None = None) -> SimpleNamespace:
        x = torch.where(mask.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype))
        if band_mask is not None:
            x = x * band_mask.to(x.dtype).view(*band_mask.shape[:-1], *([1] * (x.dim() - band_mask.dim())), band_mask.shape[-1])
        tokens = torch.tanh(self.proj(x) + (self.orbit_embedding(orbit) if orbit is not None else 0.0))
        tokens = tokens * mask.unsqueeze(-1)
        emb = tokens.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        ref = ref_days if ref_days is not None else torch.zeros(x.shape[0], dtype=torch.int64)
        return SimpleNamespace(tokens=tokens, embedding=emb, attn=mask.float().unsqueeze(1), ref_days=ref)


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


# --- tiny contract cubes, written by the tests ---------------------------------------------------

S2_BAND_NAMES = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


def tiny_cubes(size_y: int = 10, size_x: int = 12, n_days: int = 120, seed: int = 0, empty_pixels: int = 2):
    """A small synthetic S2 + S1 cube pair on one 10 m grid (contract-shaped, attrs synthetic=True).

    The first ``empty_pixels`` pixels of row 0 have no usable observation in either sensor (NaN).
    """
    import pandas as pd
    import xarray as xr

    rng = np.random.default_rng(seed)
    x = 500_000.0 + 5.0 + 10.0 * np.arange(size_x)
    y = 4_500_000.0 - 5.0 - 10.0 * np.arange(size_y)
    t2 = pd.date_range("2019-03-01", periods=n_days // 5, freq="5D") + pd.Timedelta(hours=10, minutes=30)
    t1 = pd.date_range("2019-03-03", periods=n_days // 6, freq="6D") + pd.Timedelta(hours=6)
    doy2 = np.asarray(t2.day_of_year, float)
    lai = 1 + 2 * np.exp(-((doy2[:, None, None] - 150 - rng.uniform(-20, 20, (1, size_y, size_x))) / 30.0) ** 2)
    valid2 = rng.random((len(t2), size_y, size_x)) > 0.3
    valid2[:, 0, :empty_pixels] = False
    s2 = xr.Dataset(coords={"time": t2, "y": y, "x": x})
    for i, b in enumerate(S2_BAND_NAMES):
        refl = (0.03 + 0.02 * i) + (0.05 * lai if b in ("B08", "B8A", "B07") else -0.005 * lai) + 0.005 * rng.normal(size=lai.shape)
        refl = np.clip(np.where(valid2, refl, 0.6), 0, 1).astype(np.float32)
        refl[:, 0, :empty_pixels] = np.nan
        s2[b] = (("time", "y", "x"), refl, {"units": "1", "long_name": f"surface reflectance {b}"})
    s2["valid"] = (("time", "y", "x"), valid2)
    s2.attrs = {"crs": "EPSG:32630", "sensor": "sentinel-2-l2a", "synthetic": True, "resolution_m": 10.0}
    doy1 = np.asarray(t1.day_of_year, float)
    vv = -14 + 2 * np.exp(-((doy1 - 150) / 30.0) ** 2)[:, None, None] + rng.normal(size=(len(t1), size_y, size_x))
    s1 = xr.Dataset(coords={"time": t1, "y": y, "x": x, "orbit": ("time", np.where(np.arange(len(t1)) % 2, "descending", "ascending"))})
    valid1 = np.ones(vv.shape, bool)
    valid1[:, 0, :empty_pixels] = False
    vv = np.where(valid1, vv, np.nan).astype(np.float32)
    s1["VV"] = (("time", "y", "x"), vv, {"units": "dB"})
    s1["VH"] = (("time", "y", "x"), (vv - 6).astype(np.float32), {"units": "dB"})
    s1["valid"] = (("time", "y", "x"), valid1)
    s1.attrs = {"crs": "EPSG:32630", "sensor": "sentinel-1-grd", "synthetic": True, "resolution_m": 10.0}
    return s2, s1


def write_cube(ds, path) -> None:
    """Write a test cube to NetCDF (bool attrs stored as 0/1, as NetCDF requires)."""
    ds = ds.copy()
    ds.attrs = {k: (int(v) if isinstance(v, bool) else v) for k, v in ds.attrs.items()}
    ds.to_netcdf(path)


def fake_fusion_checkpoint(path, embed_dim: int = 8, seed: int = 0):
    """A random-init encoders+fusion checkpoint whose encoders are :class:`FakeEncoder` (registered)."""
    from ecoembed.models.fusion import FusedEmbeddingModel, FusionNetwork, ModalityConfig
    from ecoembed.weights.builders import register_encoder_builder
    from ecoembed.weights.fusion_checkpoint import save_fusion_checkpoint

    register_encoder_builder("FakeEncoder", lambda cfg: FakeEncoder(**cfg))
    torch.manual_seed(seed)
    fusion = FusionNetwork({"s2": ModalityConfig(8, 10), "s1": ModalityConfig(8, 2, 2)}, d_model=16, embed_dim=embed_dim, n_heads=2, n_layers=1)
    model = FusedEmbeddingModel({"s2": FakeEncoder(10, seed=1), "s1": FakeEncoder(2, seed=2)}, fusion)
    specs = {"s2": {"class": "FakeEncoder", "config": {"n_channels": 10, "d_model": 8, "seed": 1}},
             "s1": {"class": "FakeEncoder", "config": {"n_channels": 2, "d_model": 8, "seed": 2}}}
    return save_fusion_checkpoint(path, model, specs, extra={
        "synthetic": True,
        "normalisation": {"s2": {"bands": list(S2_BAND_NAMES), "mean": [0.1] * 10, "std": [0.1] * 10},
                          "s1": {"bands": ["VV", "VH"], "mean": [-11.0, -17.5], "std": [3.0, 3.5]}},
    })


def write_tiny_scene(root: Path) -> dict[str, Path]:
    """The :func:`tiny_cubes` S2/S1 pair (SYNTHETIC) as NetCDF files plus a fake fusion checkpoint, under ``root``."""
    s2, s1 = tiny_cubes()
    write_cube(s2, root / "s2_synthetic.nc")
    write_cube(s1, root / "s1_synthetic.nc")
    fake_fusion_checkpoint(root / "fusion.safetensors")
    return {"s2": root / "s2_synthetic.nc", "s1": root / "s1_synthetic.nc", "model": root / "fusion.safetensors"}
