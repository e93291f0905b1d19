"""Per-band normalisation statistics, read from the sensor registry.

The encoders see ``(value - mean) / std`` per band: surface reflectance for
Sentinel-2, backscatter in dB for Sentinel-1. The statistics are the numbers
the shipped encoders were trained with (:class:`~ecoembed.sensors.spec.BandSpec`);
every checkpoint records the ones it used (:func:`normalisation_metadata`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ecoembed.errors import InputError
from ecoembed.sensors.registry import SENSORS, get_sensor

ENCODED_SENSORS: tuple[str, ...] = ("s2", "s1")
"""Sensors with a stage-1 encoder (and so normalisation statistics)."""


def band_statistics(band: str) -> tuple[float, float, str]:
    """``(mean, std, sensor key)`` of a canonical band name of an encoded sensor.

    Raises:
        InputError: no sensor declares statistics for ``band``.
    """
    for key in ENCODED_SENSORS:
        spec = SENSORS[key]
        if band in spec.band_names:
            b = spec.band(band)
            if b.mean is not None and b.std is not None:
                return b.mean, b.std, key
    known = [b for key in ENCODED_SENSORS for b in SENSORS[key].band_names]
    raise InputError(f"no normalisation statistics for band {band!r}; known: {known}")


def normalisation_stats(sensor: str, bands: Sequence[str] | None = None) -> dict[str, Any]:
    """``{"bands", "mean", "std", "source"}`` of ``sensor`` for ``bands`` (default all, in order)."""
    spec = get_sensor(sensor)
    if spec.key not in ENCODED_SENSORS:
        raise InputError(f"sensor {spec.name} has no encoder and no normalisation statistics")
    names = list(bands) if bands is not None else list(spec.band_names)
    stats = [band_statistics(b) for b in names]
    return {"bands": names, "mean": [s[0] for s in stats], "std": [s[1] for s in stats],
            "source": f"ecoembed.sensors registry ({spec.name})"}


def normalisation_metadata() -> dict[str, dict[str, Any]]:
    """Band order and statistics of every encoded sensor (stored in checkpoints so reconstruction can denormalise)."""
    return {key: {k: v for k, v in normalisation_stats(key).items() if k != "source"} for key in ENCODED_SENSORS}
