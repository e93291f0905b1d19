"""Training data of stage 2: scenes as per-modality pixel series, and the batch sampler.

A :class:`FusionScene` holds every modality of one scene on one pixel grid
(``s2``, ``s1`` and optionally daily ``meteo``), as pixel series with the
``PixelSeries`` contract of :func:`ecoembed.sources.chips.cube_to_series`.
:class:`PixelSampler` draws batches of pixels across scenes and pads each
modality to a common number of dates; tile ids (scene x ``tile_px`` blocks)
let the cross-modal contrastive loss exclude same-tile negatives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from ecoembed.dates import to_days
from ecoembed.errors import InputError
from ecoembed.sensors.cube import require_same_grid
from ecoembed.sources.chips import PixelSeries, checkpoint_series, encoder_series


class SeriesLike(Protocol):
    """The ``PixelSeries`` contract of ``ecoembed.sources.chips.cube_to_series`` (read-only)."""

    @property
    def values(self) -> np.ndarray:
        """Normalised values, float32 [N, T, C], 0 where invalid or missing."""

    @property
    def days(self) -> np.ndarray:
        """Days since 1970-01-01, int64 [T]."""

    @property
    def valid(self) -> np.ndarray:
        """Usable steps, bool [N, T]."""

    @property
    def orbit(self) -> np.ndarray | None:
        """Orbit direction per step, int8 [T] (S1), or None."""

    @property
    def band_mask(self) -> np.ndarray | None:
        """Bands present, bool [C] (None = all)."""


@dataclass
class ArraySeries:
    """A plain implementation of :class:`SeriesLike` (e.g. for meteorology, or in tests)."""

    values: np.ndarray
    days: np.ndarray
    valid: np.ndarray
    orbit: np.ndarray | None = None
    band_mask: np.ndarray | None = None
    bands: tuple[str, ...] = ()


@dataclass
class FusionScene:
    """All modalities of one scene on one pixel grid.

    Attributes:
        series: modality name -> pixel series (same ``N`` pixels, same order, for all).
        yx: int ``[N, 2]`` pixel row/column in the scene (defines the tiles).
        name: scene label (logs only).
    """

    series: dict[str, SeriesLike]
    yx: np.ndarray
    name: str = "scene"

    def __post_init__(self) -> None:
        n = len(self.yx)
        for mod, s in self.series.items():
            if s.values.shape[0] != n or s.valid.shape != s.values.shape[:2] or s.days.shape[0] != s.values.shape[1]:
                raise InputError(
                    f"scene {self.name!r}: modality {mod!r} has values {s.values.shape}, valid {s.valid.shape}, "
                    f"days {s.days.shape}; expected {n} pixels with matching dates"
                )


# Meteorology as a third modality (no stage-1 encoder: raw daily values are the tokens).
METEO_VARIABLES = ("TA", "SW_IN", "VPD", "P")
"""Daily meteorological drivers used as the example third modality (order of channels)."""
METEO_NORM_MEAN = np.array([10.0, 150.0, 6.0, 2.0], dtype=np.float32)
"""Rough mid-latitude daily means: TA degC, SW_IN W m-2, VPD hPa, P mm d-1."""
METEO_NORM_STD = np.array([8.0, 90.0, 5.0, 4.0], dtype=np.float32)
"""Rough spreads of the same variables (units as :data:`METEO_NORM_MEAN`)."""


def meteo_series(meteo: Any, n_pixels: int) -> ArraySeries:
    """Daily meteorology table -> a pixel series shared by every pixel of the scene.

    Args:
        meteo: DataFrame with a ``date`` column and :data:`METEO_VARIABLES` columns (daily).
        n_pixels: number of pixels of the scene (the series is broadcast, not copied).
    """
    missing = [v for v in ("date", *METEO_VARIABLES) if v not in meteo.columns]
    if missing:
        raise InputError(f"meteorology table lacks columns {missing}; expected date + {list(METEO_VARIABLES)}")
    raw = meteo[list(METEO_VARIABLES)].to_numpy(dtype=np.float32)
    ok = np.isfinite(raw).all(axis=1)
    norm = np.where(ok[:, None], (raw - METEO_NORM_MEAN) / METEO_NORM_STD, 0.0).astype(np.float32)
    days = to_days(meteo["date"].to_numpy())
    return ArraySeries(
        values=np.broadcast_to(norm, (n_pixels, *norm.shape)),
        days=days.astype(np.int64),
        valid=np.broadcast_to(ok, (n_pixels, ok.shape[0])),
    )


def scene_from_cubes(s2: Any, s1: Any | None = None, *, meteo: Any | None = None, name: str = "scene",
                     normalisation: Mapping[str, Any] | None = None, checkpoint: str = "the stage-1 checkpoints") -> FusionScene:
    """Pixel series of an S2 cube (and optionally an S1 cube on the same grid, and daily meteorology).

    Args:
        s2, s1: contract cubes.
        meteo: daily meteorology table.
        name: the scene's name.
        normalisation: ``modality -> {"bands", "mean", "std"}`` recorded by the (frozen) encoders'
            checkpoints: their band order and statistics are used
            (:func:`ecoembed.sources.chips.checkpoint_series`). None: the registry's (encoders
            that do not come from a checkpoint).
        checkpoint: what ``normalisation`` comes from (named in messages).

    Raises:
        InputError: the S1 cube is not on the S2 grid.
        CubeError: a cube lacks a band the checkpoints need.
        CheckpointError: ``normalisation`` lacks a modality or is malformed.
    """
    def to_series(cube: Any, modality: str) -> PixelSeries:
        if normalisation is None:
            return encoder_series(cube, modality)
        return checkpoint_series(cube, modality, normalisation.get(modality), checkpoint=checkpoint)

    s2_series = to_series(s2, "s2")
    series: dict[str, SeriesLike] = {"s2": s2_series}
    yx = np.asarray(s2_series.yx)
    if s1 is not None:
        require_same_grid(s1, s2, what=f"scene {name!r}: the S1 cube")
        s1_series = to_series(s1, "s1")
        if not np.array_equal(np.asarray(s1_series.yx), yx):
            raise InputError(f"scene {name!r}: S1 and S2 pixel orders differ")
        series["s1"] = s1_series
    if meteo is not None:
        series["meteo"] = meteo_series(meteo, len(yx))
    return FusionScene(series=series, yx=yx, name=name)



@dataclass
class _PaddedModality:
    values: np.ndarray  # [N, Tmax, C]
    days: np.ndarray  # [Tmax]
    valid: np.ndarray  # [N, Tmax]
    orbit: np.ndarray  # [Tmax]
    band_mask: np.ndarray  # [C] bands the scene has


class PixelSampler:
    """Draws batches of pixels from several scenes; pads each modality to a common length."""

    def __init__(self, scenes: Sequence[FusionScene], modalities: Sequence[str], tile_px: int) -> None:
        if not scenes:
            raise InputError("stage-2 training needs at least one scene")
        self.modalities = tuple(modalities)
        for sc in scenes:
            absent = [m for m in self.modalities if m not in sc.series]
            if absent:
                raise InputError(f"scene {sc.name!r} lacks modalities {absent}; every training scene needs {self.modalities}")
        self.tmax = {m: max(sc.series[m].values.shape[1] for sc in scenes) for m in self.modalities}
        self.scenes: list[dict[str, _PaddedModality]] = []
        for sc in scenes:
            padded = {}
            for m in self.modalities:
                s = sc.series[m]
                t = s.values.shape[1]
                pad = self.tmax[m] - t
                padded[m] = _PaddedModality(
                    values=np.pad(np.asarray(s.values, dtype=np.float32), ((0, 0), (0, pad), (0, 0))),
                    days=np.pad(np.asarray(s.days, dtype=np.int64), (0, pad)),
                    valid=np.pad(np.asarray(s.valid, dtype=bool), ((0, 0), (0, pad))),
                    orbit=np.pad(np.zeros(t, np.int64) if s.orbit is None else np.asarray(s.orbit, np.int64), (0, pad)),
                    band_mask=np.ones(s.values.shape[-1], bool) if s.band_mask is None else np.asarray(s.band_mask, bool),
                )
            self.scenes.append(padded)
        self.n_pixels = [len(sc.yx) for sc in scenes]
        self.offsets = np.cumsum([0, *self.n_pixels])
        yx = np.concatenate([np.asarray(sc.yx) for sc in scenes])
        scene_idx = np.repeat(np.arange(len(scenes)), self.n_pixels)
        self.tile_ids = scene_idx * 1_000_000 + (yx[:, 0] // tile_px) * 1000 + yx[:, 1] // tile_px
        self.total = int(self.offsets[-1])

    def batch(self, index: np.ndarray) -> tuple[dict[str, dict[str, Tensor]], Tensor]:
        """Arrays of the pixels at global ``index``: {modality: {values, days, valid, orbit, band_mask}} and tile ids."""
        scene_of = np.searchsorted(self.offsets, index, side="right") - 1
        out: dict[str, dict[str, Tensor]] = {}
        for m in self.modalities:
            vals, days, valid, orbit, bands = [], [], [], [], []
            for g, s in zip(index, scene_of, strict=True):
                p = self.scenes[s][m]
                local = g - self.offsets[s]
                vals.append(p.values[local])
                valid.append(p.valid[local])
                days.append(p.days)
                orbit.append(p.orbit)
                bands.append(p.band_mask)
            out[m] = {
                "values": torch.from_numpy(np.stack(vals)),
                "days": torch.from_numpy(np.stack(days)),
                "valid": torch.from_numpy(np.stack(valid)),
                "orbit": torch.from_numpy(np.stack(orbit)),
                "band_mask": torch.from_numpy(np.stack(bands)),
            }
        return out, torch.from_numpy(self.tile_ids[index])
