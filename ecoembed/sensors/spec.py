"""What a sensor is, as data: its bands (name, resolution, wavelength, role, normalisation) and naming rules.

A :class:`SensorSpec` is the one description every room reads: sources rename
and scale bands with it, the encoders take their channel order and
normalisation statistics from it, embed and reconstruct record the bands used.
The specs of the shipped sensors live in their modules
(:mod:`ecoembed.sensors.sentinel2`, :mod:`~ecoembed.sensors.sentinel1`,
:mod:`~ecoembed.sensors.landsat`) and are collected by
:mod:`ecoembed.sensors.registry`.

Band names as exported by openEO/CDSE, Earth Engine, Sentinel Hub, odc-stac or
Planetary Computer are matched by :meth:`SensorSpec.canonical_band`: case is
ignored, a known product prefix (``S2-L2A-``, ``SR_`` ...) and a resolution
suffix (``_10m``) are removed, and a band number is zero-padded (``B2`` ->
``B02``), before the name is looked up among the bands and their aliases.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

BandRole = Literal["reflectance", "backscatter", "mask"]


@dataclass(frozen=True)
class BandSpec:
    """One band of a sensor.

    Attributes:
        name: canonical name (``"B04"``, ``"VV"``, ``"SCL"``).
        resolution_m: native pixel size (m).
        role: ``reflectance`` (surface reflectance 0-1), ``backscatter`` (sigma0/gamma0, dB)
            or ``mask`` (a class or quality layer: resampled by nearest neighbour, never normalised).
        wavelength_nm: central wavelength (nm) of an optical band.
        mean, std: normalisation statistics (in the band's physical unit: reflectance, dB)
            the encoders were trained with; None for masks.
        aliases: further names of the band (upper case, after prefix/suffix removal).
    """

    name: str
    resolution_m: float
    role: BandRole
    wavelength_nm: float | None = None
    mean: float | None = None
    std: float | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class SensorSpec:
    """Everything the package knows about one sensor.

    Attributes:
        key: short name used in models and checkpoints (``"s2"``).
        name: canonical sensor name stored in cube attributes (``"sentinel-2-l2a"``).
        aliases: other names accepted for the sensor (lower case).
        bands: the data bands, in the order every array of this sensor uses (the encoder's channel order).
        masks: quality/class layers (e.g. S2 ``SCL``).
        required: groups of band names; a cube needs at least one band of every group
            (S2: a red and a near-infrared band) to be used at all.
        prefixes: product prefixes removed from band names (upper case, e.g. ``"S2-L2A-"``).
        unit: physical unit of the data bands after scaling (``"1"`` reflectance, ``"dB"``).
        dn_scale, dn_offset: ``physical = DN * dn_scale + dn_offset`` for integer digital numbers
            (time-dependent offsets, e.g. the S2 processing baseline, are applied by the sensor module).
        nodata_dn: digital numbers that mean "no data" in integer bands even when a file does not
            declare them (0 and 65535 in S2 L2A products).
        typical_subsets: band subsets that exports commonly carry (the 10 m bands, red + NIR ...):
            encoders are trained with these as band dropout, so such a cube is in-distribution.
    """

    key: str
    name: str
    aliases: tuple[str, ...]
    bands: tuple[BandSpec, ...]
    masks: tuple[BandSpec, ...] = ()
    required: tuple[tuple[str, ...], ...] = ()
    prefixes: tuple[str, ...] = ()
    unit: str = "1"
    dn_scale: float = 1.0
    dn_offset: float = 0.0
    nodata_dn: tuple[float, ...] = ()
    typical_subsets: tuple[tuple[str, ...], ...] = ()
    _lookup: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lookup: dict[str, str] = {}
        for band in (*self.bands, *self.masks):
            for alias in (band.name, *band.aliases):
                lookup[alias.upper()] = band.name
        object.__setattr__(self, "_lookup", lookup)

    @property
    def band_names(self) -> tuple[str, ...]:
        """Names of the data bands, in array order."""
        return tuple(b.name for b in self.bands)

    @property
    def mask_names(self) -> tuple[str, ...]:
        """Names of the mask layers."""
        return tuple(b.name for b in self.masks)

    def band(self, name: str) -> BandSpec:
        """The spec of a data band or mask by canonical name.

        Raises:
            KeyError: not a band of this sensor.
        """
        for b in (*self.bands, *self.masks):
            if b.name == name:
                return b
        raise KeyError(f"{name!r} is not a band of {self.name}")

    def _normalise(self, raw: str) -> str:
        key = str(raw).strip().upper()
        for prefix in sorted(self.prefixes, key=len, reverse=True):
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        key = re.sub(r"[_-](\d+M)$", "", key)  # B02_10m -> B02
        match = re.fullmatch(r"B(\d{1,2})(A?)", key)
        if match:
            key = f"B{int(match.group(1)):02d}{match.group(2)}"
        return key

    def canonical_band(self, raw: str) -> str | None:
        """The canonical name of an exported band name, or None when it is not a band of this sensor."""
        return self._lookup.get(self._normalise(raw))

    def match_strength(self, raw: str) -> int:
        """2 when ``raw`` is one of this sensor's band names (up to case, prefix, suffix, zero padding), 1 when it is an alias, else 0."""
        key = self._normalise(raw)
        if key in (*self.band_names, *self.mask_names):
            return 2
        return 1 if key in self._lookup else 0

    def accepted_names(self) -> list[str]:
        """Examples of accepted band names (for error messages)."""
        names = [*self.band_names, *self.mask_names]
        extra = [f"{p}{names[0]}" for p in self.prefixes[:2]]
        return [*names, *extra]

    def mean(self, bands: Sequence[str] | None = None) -> np.ndarray:
        """float32 normalisation means of ``bands`` (default all data bands)."""
        return np.array([self.band(b).mean for b in (bands or self.band_names)], np.float32)

    def std(self, bands: Sequence[str] | None = None) -> np.ndarray:
        """float32 normalisation standard deviations of ``bands`` (default all data bands)."""
        return np.array([self.band(b).std for b in (bands or self.band_names)], np.float32)

    def subset_indices(self) -> tuple[tuple[int, ...], ...]:
        """:attr:`typical_subsets` as channel indices of :attr:`bands` (for band dropout)."""
        return tuple(tuple(self.band_names.index(b) for b in subset) for subset in self.typical_subsets)

    def missing_required(self, present: Sequence[str]) -> list[tuple[str, ...]]:
        """The required band groups of which ``present`` has no band."""
        have = set(present)
        return [group for group in self.required if not have & set(group)]
