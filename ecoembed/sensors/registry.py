"""The sensor registry: every sensor the package knows, by name or alias, and band-name resolution.

Adding a sensor means writing its :class:`~ecoembed.sensors.spec.SensorSpec`
(in its own module) and listing it in :data:`SENSORS`; sources, training,
encoders, embed and reconstruct find it here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ecoembed.errors import CubeError
from ecoembed.sensors import landsat, sentinel1, sentinel2
from ecoembed.sensors.spec import SensorSpec

SENSORS: dict[str, SensorSpec] = {spec.key: spec for spec in (sentinel2.SPEC, sentinel1.SPEC, landsat.SPEC)}
"""Key -> spec of every known sensor."""


def get_sensor(name: str) -> SensorSpec:
    """The spec of a sensor by key, canonical name or alias (case-insensitive).

    Raises:
        CubeError: unknown sensor (lists the known names).
    """
    key = str(name).strip().lower()
    for spec in SENSORS.values():
        if key in (spec.key, spec.name, *spec.aliases):
            return spec
    known = ", ".join(f"{s.name} ({s.key})" for s in SENSORS.values())
    raise CubeError(f"unknown sensor {name!r}; known: {known}")


def rename_map(spec: SensorSpec, names: Iterable[str]) -> dict[str, str]:
    """Exported name -> canonical name for each of ``names`` that is a band or mask of ``spec``.

    When two exported names map to one band (``B04`` and ``B4``), the first wins.
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for raw in names:
        canonical = spec.canonical_band(str(raw))
        if canonical is not None and canonical not in taken:
            out[str(raw)] = canonical
            taken.add(canonical)
    return out


def detect_sensor(names: Iterable[str], attrs: Mapping[str, object] | None = None) -> SensorSpec | None:
    """The sensor of a cube from its ``sensor`` attribute, else from its variable names (most matching bands wins).

    Returns None when nothing matches. A ``sensor`` attribute that names no known sensor is ignored.
    """
    if attrs and attrs.get("sensor"):
        try:
            return get_sensor(str(attrs["sensor"]))
        except CubeError:
            pass
    names = list(names)
    # the sensor whose band names fit best: a canonical name (B04, SR_B4, VV) counts 2, an alias (red, B4 for Landsat) 1;
    # ties go to the first sensor of SENSORS (S2, the default optical sensor)
    scores = {key: sum(spec.match_strength(n) for n in names) for key, spec in SENSORS.items()}
    best_key = max(scores, key=lambda k: scores[k])
    return SENSORS[best_key] if scores[best_key] else None
