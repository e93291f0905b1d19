"""Per-band normalisation statistics of every sensor, in one place.

The encoders see ``(value - mean) / std`` per band: surface reflectance for
Sentinel-2, backscatter in dB for Sentinel-1. The statistics are the numbers
the shipped encoders were trained with; every checkpoint records the ones it
used (:func:`normalisation_metadata`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ecoembed.errors import InputError
from ecoembed.sensors.sentinel1 import S1_NORM_MEAN, S1_NORM_STD, S1_POLARISATIONS
from ecoembed.sensors.sentinel2 import S2_BANDS, S2_NORM_MEAN, S2_NORM_STD

_TABLES: dict[str, tuple[tuple[str, ...], np.ndarray, np.ndarray, str]] = {
    "s2": (S2_BANDS, S2_NORM_MEAN, S2_NORM_STD, "ecoembed.sensors.sentinel2"),
    "s1": (S1_POLARISATIONS, S1_NORM_MEAN, S1_NORM_STD, "ecoembed.sensors.sentinel1"),
}


def band_statistics(band: str) -> tuple[float, float, str]:
    """``(mean, std, source module)`` of one band or polarisation.

    Raises:
        InputError: no sensor declares statistics for ``band``.
    """
    for names, mean, std, source in _TABLES.values():
        if band in names:
            i = names.index(band)
            return float(mean[i]), float(std[i]), source
    raise InputError(f"no normalisation statistics for band {band!r}; known: {[b for t in _TABLES.values() for b in t[0]]}")


def normalisation_stats(sensor: str, bands: Sequence[str] | None = None) -> dict[str, Any]:
    """``{"bands", "mean", "std", "source"}`` of ``sensor`` ("s2"/"s1") for ``bands`` (default all, in order)."""
    if sensor not in _TABLES:
        raise InputError(f"unknown sensor {sensor!r}; use one of {sorted(_TABLES)}")
    names = list(bands) if bands is not None else list(_TABLES[sensor][0])
    stats = [band_statistics(b) for b in names]
    return {"bands": names, "mean": [s[0] for s in stats], "std": [s[1] for s in stats], "source": _TABLES[sensor][3]}


def normalisation_metadata() -> dict[str, dict[str, Any]]:
    """Band order and statistics of every sensor (stored in checkpoints so reconstruction can denormalise)."""
    return {sensor: {k: v for k, v in normalisation_stats(sensor).items() if k != "source"} for sensor in _TABLES}
