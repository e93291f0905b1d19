"""Synthetic scenes for the fusion experiments, as pixel series + daily truth.

Uses ``ecoembed.sources.synthetic.make_scene`` + ``cube_to_series`` when the
sources room provides them. Until then it falls back to the stand-in scene of
``experiments/pretrain_default.py`` (the same stand-in the shipped stage-1
encoders were trained on), and every result says which one was used.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
USE_SOURCES = (
    importlib.util.find_spec("ecoembed.sources.synthetic") is not None and importlib.util.find_spec("ecoembed.sources.chips") is not None
)
SOURCE_NAME = "ecoembed.sources.synthetic.make_scene" if USE_SOURCES else "stand-in fallback_scene of experiments/pretrain_default.py"


@dataclass
class SeriesScene:
    """One synthetic scene: per-modality pixel series, daily LAI truth ``[N, D]`` on ``days`` ``[D]``."""

    series: dict[str, Any]
    lai: np.ndarray
    days: np.ndarray
    yx: np.ndarray
    name: str


def _fallback_module() -> Any:
    spec = importlib.util.spec_from_file_location("ecoembed_pretrain_default", HERE / "pretrain_default.py")
    assert spec is not None and spec.loader is not None
    if spec.name in sys.modules:
        return sys.modules[spec.name]
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def make_series_scene(size_px: int, seed: int, start: str = "2019-01-01", end: str = "2019-12-31") -> SeriesScene:
    """A synthetic scene (labelled synthetic in its name) as series + daily LAI truth."""
    from ecoembed.dates import to_days
    from ecoembed.training.fusion_data import ArraySeries

    if USE_SOURCES:
        from ecoembed.sources.chips import cube_to_series
        from ecoembed.sources.synthetic import make_scene

        sc = make_scene(size_px=size_px, start=start, end=end, seed=seed)
        s2, s1 = cube_to_series(sc.s2), cube_to_series(sc.s1)
        yx = np.asarray(s2.yx)
        lai_cube = sc.truth["lai"].transpose("y", "x", "time").values
        lai = lai_cube[yx[:, 0], yx[:, 1]]
        days = to_days(sc.truth["time"].values)
        return SeriesScene({"s2": s2, "s1": s1}, lai.astype(np.float32), days, yx, f"synthetic-{seed}")
    fb = _fallback_module().fallback_scene(size_px, seed)
    first = int(to_days(np.datetime64("2019-01-01")))  # the stand-in always covers 2019-2020
    all_days = first + np.arange(fb.lai.shape[1])
    keep = (all_days >= int(to_days(np.datetime64(start)))) & (all_days <= int(to_days(np.datetime64(end))))
    yx = np.stack(np.divmod(np.arange(size_px * size_px), size_px), axis=1)
    lo, hi = all_days[keep][0], all_days[keep][-1]
    series = {}
    for name, ser in (("s2", fb.s2), ("s1", fb.s1)):
        t = (ser.days >= lo) & (ser.days <= hi)
        series[name] = ArraySeries(ser.values[:, t], ser.days[t], ser.valid[:, t], None if ser.orbit is None else ser.orbit[t])
    return SeriesScene(series, fb.lai[:, keep].astype(np.float32), all_days[keep], yx, f"fallback-synthetic-{seed}")


def normalisation() -> dict[str, Any]:
    """Band order + statistics the series were normalised with (stored in the fusion checkpoint)."""
    if USE_SOURCES:
        from ecoembed.sensors import normalisation_metadata

        return normalisation_metadata()
    fb = _fallback_module().fallback_scene(8, 0)
    return {"s2": fb.s2.normalisation, "s1": fb.s1.normalisation}
