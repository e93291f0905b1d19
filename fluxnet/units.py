"""Units of flux-file variables: recognise a unit string, convert to the tidy unit.

A unit is never guessed from the values. It comes, in this order, from an
explicit ``units=`` option, from the file (a units row, Parquet/Feather field
metadata, or a unit written into the column name such as ``VPD_kPa`` or
``NEE [umol m-2 s-1]``), or from the documented convention of the file's
family (:mod:`fluxnet.families`). This module only knows how to read a unit
string and turn values into the tidy unit of their quantity.

Tidy units: carbon fluxes (GPP) in umol CO2 m-2 s-1 for sub-daily records and
gC m-2 d-1 for days (:data:`~fluxnet.aggregate.UMOL_S_TO_GC_DAY` apart),
temperature degC, VPD hPa, shortwave radiation W m-2, PPFD umol m-2 s-1,
precipitation mm per record (sub-daily) or mm d-1 (daily), QC fractions 0..1.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from fluxnet.aggregate import SECONDS_PER_DAY, UMOL_S_TO_GC_DAY
from fluxnet.errors import FluxDataError

CO2_G_PER_MOL = 44.0095
"""Molar mass of CO2 (g mol-1), for fluxes given as mg CO2 m-2 s-1."""

C_G_PER_MOL = 12.011
"""Molar mass of carbon (g mol-1)."""

UNSTATED: frozenset[str] = frozenset({"", "-", "--", "na", "nan", "none", "null", "?"})
"""Normalised unit strings that state no unit (REddyProc writes ``-`` for columns without one)."""


@dataclass(frozen=True)
class Conversion:
    """A linear unit conversion: ``tidy = value * scale + offset``.

    Attributes:
        scale: Multiplier.
        offset: Added after scaling (temperatures: K -> degC is -273.15).
    """

    scale: float
    offset: float = 0.0

    @property
    def is_identity(self) -> bool:
        """True when values are already in the tidy unit."""
        return self.scale == 1.0 and self.offset == 0.0

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Convert ``values`` (NaN stays NaN)."""
        if self.is_identity:
            return values
        converted: np.ndarray = values * self.scale + self.offset
        return converted

    def then(self, other: Conversion) -> Conversion:
        """This conversion followed by ``other``."""
        return Conversion(self.scale * other.scale, self.offset * other.scale + other.offset)

    def describe(self) -> str:
        """Short text such as ``x10`` or ``x1 - 273.15``."""
        text = f"x{self.scale:.10g}"
        if self.offset:
            text += f" {'+' if self.offset > 0 else '-'} {abs(self.offset):.10g}"
        return text


@dataclass(frozen=True)
class Quantity:
    """A physical quantity, its tidy unit and the spellings of units it accepts.

    Attributes:
        name: Human name, used in messages (``"VPD"``).
        tidy_unit: Unit of the tidy table (for carbon fluxes: of sub-daily records).
        spellings: Unit spelling -> conversion to ``tidy_unit``; spellings are
            compared after :func:`normalise_unit`.
        daily_only: Spellings that only make sense for daily values (``mm d-1``).
    """

    name: str
    tidy_unit: str
    spellings: dict[str, Conversion]
    daily_only: frozenset[str] = frozenset()

    def lookup(self, unit: str) -> Conversion | None:
        """Conversion of ``unit`` to the tidy unit, or None when not a unit of this quantity."""
        return self._normalised.get(normalise_unit(unit))

    @cached_property
    def _normalised(self) -> dict[str, Conversion]:
        return {normalise_unit(spelling): conversion for spelling, conversion in self.spellings.items()}

    def known(self) -> str:
        """A few accepted spellings, for messages."""
        return ", ".join(list(self.spellings)[:6])


_SUPERSCRIPTS = str.maketrans({"⁻": "-", "¹": "1", "²": "2", "³": "3", "µ": "u", "μ": "u", "°": "deg"})


def normalise_unit(unit: str) -> str:
    """Canonical form of a unit string for comparisons.

    Lower case, micro signs as ``u``, superscripts as plain characters, the
    degree sign as ``deg``, without brackets, spaces, ``^``, ``*`` or ``.``.

    Args:
        unit: Unit as written in a file (``"µmol m⁻² s⁻¹"``, ``"[hPa]"``).

    Returns:
        The normalised string (``"umolm-2s-1"``, ``"hpa"``).
    """
    text = unit.strip().translate(_SUPERSCRIPTS).lower()
    text = text.strip("[](){}")
    for character in " ^*.·_":
        text = text.replace(character, "")
    return text


def is_unstated(unit: str | None) -> bool:
    """True when ``unit`` states nothing (None, empty, ``-``, ``NA``)."""
    return unit is None or normalise_unit(unit) in UNSTATED


_ONE = Conversion(1.0)
_UMOL = ("umol m-2 s-1", "umol CO2 m-2 s-1", "umolCO2 m-2 s-1", "umol/m2/s", "umolCO2/m2/s", "umol/m2s", "umol m-2s-1",
         "mumol m-2 s-1", "micromol m-2 s-1", "umol s-1 m-2", "umolm2s")
_GC_DAY = ("gC m-2 d-1", "g C m-2 d-1", "gC m-2 day-1", "gC/m2/d", "gC/m2/day", "gCm2d")

CARBON_FLUX = Quantity(
    name="carbon flux",
    tidy_unit="umol m-2 s-1",
    spellings={
        **dict.fromkeys(_UMOL, _ONE),
        "mmol m-2 s-1": Conversion(1e3),
        "mol m-2 s-1": Conversion(1e6),
        "mg CO2 m-2 s-1": Conversion(1e3 / CO2_G_PER_MOL),
        "mgCO2/m2/s": Conversion(1e3 / CO2_G_PER_MOL),
        **dict.fromkeys(_GC_DAY, Conversion(1 / UMOL_S_TO_GC_DAY)),
        "mgC m-2 d-1": Conversion(1e-3 / UMOL_S_TO_GC_DAY),
        "kgC m-2 d-1": Conversion(1e3 / UMOL_S_TO_GC_DAY),
        "molC m-2 d-1": Conversion(C_G_PER_MOL / UMOL_S_TO_GC_DAY),
        "mol C m-2 d-1": Conversion(C_G_PER_MOL / UMOL_S_TO_GC_DAY),
    },
)
"""Carbon fluxes (GPP, NEE) as rates; daily values are these rates x ``UMOL_S_TO_GC_DAY``."""

TEMPERATURE = Quantity(
    name="temperature",
    tidy_unit="degC",
    spellings={
        **dict.fromkeys(("degC", "deg C", "°C", "C", "celsius", "degrees C", "oC"), _ONE),
        **dict.fromkeys(("K", "kelvin"), Conversion(1.0, -273.15)),
        **dict.fromkeys(("degF", "°F"), Conversion(5 / 9, -32 * 5 / 9)),
    },
)

VAPOUR_PRESSURE_DEFICIT = Quantity(
    name="VPD",
    tidy_unit="hPa",
    spellings={
        **dict.fromkeys(("hPa", "mbar", "mb", "hectopascal"), _ONE),
        "kPa": Conversion(10.0),
        "Pa": Conversion(0.01),
    },
)

IRRADIANCE = Quantity(
    name="shortwave radiation",
    tidy_unit="W m-2",
    spellings={
        **dict.fromkeys(("W m-2", "W/m2", "Wm2", "J m-2 s-1"), _ONE),
        "kW m-2": Conversion(1e3),
        **dict.fromkeys(("MJ m-2 d-1", "MJ/m2/d", "MJ m-2 day-1", "MJ/m2/day"), Conversion(1e6 / SECONDS_PER_DAY)),
    },
)

PHOTON_FLUX = Quantity(
    name="PPFD",
    tidy_unit="umol m-2 s-1",
    spellings={
        **dict.fromkeys(("umol m-2 s-1", "umol photons m-2 s-1", "umol photon m-2 s-1", "umol/m2/s", "umolm2s"), _ONE),
        **dict.fromkeys(("mol m-2 d-1", "mol/m2/d", "mol m-2 day-1", "mol photons m-2 d-1"), Conversion(1e6 / SECONDS_PER_DAY)),
    },
)

PRECIPITATION = Quantity(
    name="precipitation",
    tidy_unit="mm",
    spellings={
        **dict.fromkeys(("mm", "kg m-2", "mm d-1", "mm/d", "mm/day", "mm day-1"), _ONE),
        "cm": Conversion(10.0),
        "m": Conversion(1e3),
    },
    daily_only=frozenset(normalise_unit(s) for s in ("mm d-1", "mm/d", "mm/day", "mm day-1")),
)
"""Precipitation: a total per record (sub-daily) or per day (daily)."""

FRACTION = Quantity(
    name="QC fraction",
    tidy_unit="1",
    spellings={**dict.fromkeys(("1", "fraction", "0-1", "adimensional", "dimensionless", "nondimensional"), _ONE),
               "%": Conversion(0.01)},
)

NAME_UNIT_TOKENS: tuple[str, ...] = ("degC", "K", "hPa", "kPa", "Pa", "Wm-2", "Wm2", "umolm-2s-1", "umolm2s", "gCm-2d-1")
"""Units recognised as the last ``_`` token of a column name (``VPD_f_kPa``, ``NEE_f_umolm-2s-1``); case-sensitive."""


def convert_to_tidy(quantity: Quantity, unit: str, *, daily: bool) -> Conversion | None:
    """Conversion of values in ``unit`` to the tidy table's unit of ``quantity``.

    Args:
        quantity: What the values are.
        unit: Their unit as stated.
        daily: The values are daily (carbon fluxes then end in gC m-2 d-1).

    Returns:
        The conversion, or None when ``unit`` is not a unit of ``quantity``
        (or a daily-only unit given for sub-daily records).
    """
    conversion = quantity.lookup(unit)
    if conversion is None or (not daily and normalise_unit(unit) in quantity.daily_only):
        return None
    if daily and quantity is CARBON_FLUX:
        return conversion.then(Conversion(UMOL_S_TO_GC_DAY))
    return conversion


@dataclass(frozen=True)
class UnitChoice:
    """The unit a column's values are taken to be in, and why.

    Attributes:
        unit: The unit as stated.
        origin: Where it was stated: ``"units="``, ``"units row"``,
            ``"column name"``, ``"parquet field metadata"`` or ``"<FAMILY> convention"``.
        conversion: To the tidy unit.
    """

    unit: str
    origin: str
    conversion: Conversion


def choose_unit(
    quantity: Quantity,
    column: str,
    *,
    explicit: str | None,
    stated: tuple[str, str] | None,
    documented: str | None,
    family: str,
    daily: bool,
    label: str,
) -> UnitChoice:
    """Decide a column's unit from metadata, most specific first, never from its values.

    Args:
        quantity: What the column holds.
        column: Its name, for messages.
        explicit: The caller's ``units=`` entry for it.
        stated: ``(unit, where)`` as the file states it (units row, field metadata, column name).
        documented: The family's documented unit at this resolution.
        family: The family's name, for the origin.
        daily: The values are daily.
        label: The file, for messages.

    Returns:
        The :class:`UnitChoice`.

    Raises:
        FluxDataError: No unit anywhere, or one this module does not know
            for ``quantity``; the message says how to give it.
    """
    resolution = "daily" if daily else "sub-daily"
    if explicit is not None:
        unit, origin = explicit, "units="
    elif stated is not None:
        unit, origin = stated
    elif documented is not None:
        unit, origin = documented, f"{family} convention"
    else:
        raise FluxDataError(
            f"flux file {label}: no unit is known for {column} ({quantity.name}, {resolution} values): the file states "
            f"none and {family} documents none; pass units={{{column!r}: '<unit>'}} (e.g. {quantity.known()})"
        )
    conversion = convert_to_tidy(quantity, unit, daily=daily)
    if conversion is None:
        raise FluxDataError(
            f"flux file {label}: unit {unit!r} of {column} (from the {origin}) is not a unit of {resolution} "
            f"{quantity.name} values this reader knows ({quantity.known()}); pass units={{{column!r}: '<unit>'}}"
        )
    return UnitChoice(unit, origin, conversion)
