"""Variable-name families of flux files: a registry mapping a table's columns to the tidy variables.

A family is a naming scheme (which columns hold night-time and day-time GPP,
their variants, the QC, NEE and the drivers) plus what its documentation
says: units, field separator, what a lone timestamp marks, and how to
partition NEE when GPP is missing. :data:`FAMILIES` holds, in order of
preference:

- ``FLUXNET``: FLUXNET2015/ONEFlux names, also used by ICOS L2 (FLUXNET
  files), Warm Winter 2020, the AmeriFlux FLUXNET product and tables derived
  from them. GPP ``GPP_{NT,DT}_{VUT,CUT}_{REF,MEAN,USTAR50,<percentile>}``,
  QC ``NEE_<variant>_QC`` (per record a flag 0-3, per day the fraction of
  measured or good gap-filled records), drivers ``TA_F``, ``SW_IN_F``,
  ``VPD_F`` (hPa), ``P_F``, ``PPFD_IN``.
- ``REDDYPROC``: REddyProc inputs and outputs, and chains built on it.
  Night-time GPP ``GPP_f`` / ``GPP_<scenario>_f``, day-time ``GPP_DT`` /
  ``GPP_DT_<scenario>``, u* scenarios ``uStar``, ``U05``, ``U50``, ``U95``...;
  QC ``NEE_<scenario>_fqc`` (MDS flags 0-3); drivers ``Tair_f`` (degC),
  ``VPD_f`` (hPa), ``Rg_f`` (W m-2); stamps mark the end of each record.
- ``AMERIFLUX_BASE``: FP-standard names with ``_PI``, ``_F`` and position
  (``_1_1_1``) qualifiers; GPP only as the PI's (``GPP_PI_F``...), QC as the
  share of records with a measured NEE/FC.
- ``EFDC``: European Fluxes Database exports and other FP-standard tables
  (typically only ``TIMESTAMP_END`` and a units row, often NEE only).

A table's family is the one whose marker patterns match most of its
columns (the file name only breaks ties).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

from fluxnet.errors import FluxDataError
from fluxnet.layout import DELIMITERS, Layout
from fluxnet.timestamps import TimeReference

QcKind = Literal["fraction", "flags", "measured"]
"""What a QC column holds: a daily share of good records (0..1), per-record gap-fill flags
(0 measured, 1 good, 2 medium, 3 poor), or a measured flux (a record is good where it is present)."""
GPP_PARTS: dict[str, str] = {"NT": "GPP_NT", "DT": "GPP_DT", "PI": "GPP_PI"}
"""Partitioning -> tidy key: night-time, day-time, or the PI's own (AmeriFlux BASE)."""

RELEASE_ALIASES: tuple[str, ...] = ("release", "database", "data_release")
"""Column names (case-insensitive) read as the tidy ``release`` column."""

PARTITION_HOWTO = (
    "partition NEE into GPP first - with ONEFlux (GPP_NT_VUT_REF / GPP_DT_VUT_REF), or with REddyProc: "
    "sEddyProc$sMRFluxPartition() (night-time, GPP_<suffix>_f) and/or sGLFluxPartition() (day-time, GPP_DT_<suffix>) "
    "after gap-filling - and read the partitioned output"
)


class NotPartitionedError(FluxDataError):
    """A flux table has NEE but no partitioned GPP; the message says how to partition it."""


@dataclass(frozen=True)
class ColumnPlan:
    """What to read from a table, by tidy meaning.

    Attributes:
        gpp: ``GPP_NT``/``GPP_DT``/``GPP_PI`` -> (base) column name.
        qc: The column ``GPP_qc`` comes from, or None.
        qc_note: How the QC column was chosen (empty when obvious).
        drivers: Tidy driver (``TA``, ``SW_IN``, ``VPD``, ``P``, ``PPFD_IN``) -> column.
        release: The release/database column, or None.
    """

    gpp: Mapping[str, str]
    qc: str | None
    qc_note: str
    drivers: Mapping[str, str]
    release: str | None

    def value_columns(self) -> dict[str, str]:
        """Tidy key -> column for every numeric column to read (GPP, ``QC``, drivers)."""
        columns = dict(self.gpp)
        if self.qc is not None:
            columns["QC"] = self.qc
        columns.update(self.drivers)
        return columns


class Naming(Protocol):
    """A naming scheme: finds GPP, QC, NEE and driver columns among base names."""

    def gpp_candidates(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        """Partitioning (``NT``/``DT``/``PI``) -> {variant: column}, preferred variant first."""
        ...

    def qc(self, names: Sequence[str], variant: str) -> tuple[str | None, str]:
        """The QC column matching GPP ``variant`` (or None), and a note on the choice."""
        ...

    def qc_kind(self, *, daily: bool) -> tuple[QcKind | None, str]:
        """What the QC column means at that resolution; None (and why) when it cannot be used."""
        ...

    def nee(self, names: Sequence[str]) -> str | None:
        """A (net) CO2 flux column, when the table has one."""
        ...

    def driver(self, names: Sequence[str], tidy: str) -> str | None:
        """The best column for tidy driver ``tidy`` (``TA``, ``SW_IN``, ``VPD``, ``P``, ``PPFD_IN``)."""
        ...


def _first(names: Sequence[str], candidates: Sequence[str]) -> str | None:
    present = set(names)
    return next((c for c in candidates if c in present), None)


def _ordered(found: dict[str, str], order: Sequence[str]) -> dict[str, str]:
    """``found`` with the variants of ``order`` first (in that order), the rest after, as found."""
    rank = {variant: i for i, variant in enumerate(order)}
    return dict(sorted(found.items(), key=lambda item: rank.get(item[0], len(rank))))


class OneFluxNaming:
    """FLUXNET2015/ONEFlux names (``GPP_NT_VUT_REF``, ``NEE_VUT_REF_QC``, ``TA_F``)."""

    GPP: ClassVar[re.Pattern[str]] = re.compile(r"^GPP_(?P<part>NT|DT)_(?P<variant>(?:VUT|CUT)_(?:REF|MEAN|USTAR50|\d\d))$")
    VARIANTS: ClassVar[tuple[str, ...]] = ("VUT_REF", "VUT_MEAN", "VUT_USTAR50", "CUT_REF", "CUT_MEAN", "CUT_USTAR50", "VUT_50", "CUT_50")
    """GPP variants, preferred first: u* filtering VUT (variable) before CUT (constant threshold),
    the reference (model-efficiency) version before the ensemble mean and the median threshold."""
    DRIVERS: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "TA": ("TA_F", "TA_F_MDS", "TA"),
        "SW_IN": ("SW_IN_F", "SW_IN_F_MDS", "SW_IN"),
        "VPD": ("VPD_F", "VPD_F_MDS", "VPD"),
        "P": ("P_F", "P"),
        "PPFD_IN": ("PPFD_IN_F", "PPFD_IN"),
    }

    def gpp_candidates(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        """See :class:`Naming`."""
        found: dict[str, dict[str, str]] = {"NT": {}, "DT": {}}
        for name in names:
            match = self.GPP.match(name)
            if match:
                found[match["part"]][match["variant"]] = name
        return {part: _ordered(variants, self.VARIANTS) for part, variants in found.items() if variants}

    def qc(self, names: Sequence[str], variant: str) -> tuple[str | None, str]:
        """See :class:`Naming`."""
        column = _first(names, [f"NEE_{v}_QC" for v in (variant, *self.VARIANTS)])
        if column is None or column == f"NEE_{variant}_QC":
            return column, ""
        return column, f"NEE_{variant}_QC is absent, {column} is used"

    def qc_kind(self, *, daily: bool) -> tuple[QcKind | None, str]:
        """See :class:`Naming`: per day a fraction, per record a flag."""
        return ("fraction" if daily else "flags"), ""

    def nee(self, names: Sequence[str]) -> str | None:
        """See :class:`Naming`."""
        return _first(names, [f"NEE_{v}" for v in self.VARIANTS]) or next((n for n in names if re.match(r"^NEE_(VUT|CUT)_", n)), None)

    def driver(self, names: Sequence[str], tidy: str) -> str | None:
        """See :class:`Naming`."""
        return _first(names, self.DRIVERS.get(tidy, ()))


class REddyProcNaming:
    """REddyProc names (``GPP_uStar_f``, ``GPP_DT_uStar``, ``NEE_uStar_fqc``, ``Tair_f``)."""

    NIGHT: ClassVar[re.Pattern[str]] = re.compile(r"^GPP(?:_(?P<variant>[A-Za-z0-9]+))?_f$")
    DAY: ClassVar[re.Pattern[str]] = re.compile(r"^GPP_DT(?:_(?P<variant>[A-Za-z0-9]+))?$")
    VARIANTS: ClassVar[tuple[str, ...]] = ("uStar", "U50", "")
    """u* scenarios, preferred first: the single threshold estimate, the median of the bootstrap, none."""
    DRIVERS: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "TA": ("Tair_f", "Tair"),
        "SW_IN": ("Rg_f", "Rg"),
        "VPD": ("VPD_f", "VPD"),
        "PPFD_IN": ("PPFD_f", "PPFD"),
    }

    def gpp_candidates(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        """See :class:`Naming`."""
        found: dict[str, dict[str, str]] = {"NT": {}, "DT": {}}
        for name in names:
            night, day = self.NIGHT.match(name), self.DAY.match(name)
            if night:
                found["NT"][night["variant"] or ""] = name
            elif day and day["variant"] != "SD":
                found["DT"][day["variant"] or ""] = name
        return {part: _ordered(variants, self.VARIANTS) for part, variants in found.items() if variants}

    @staticmethod
    def _with(prefix: str, variant: str, suffix: str) -> str:
        return f"{prefix}_{variant}_{suffix}" if variant else f"{prefix}_{suffix}"

    def qc(self, names: Sequence[str], variant: str) -> tuple[str | None, str]:
        """See :class:`Naming`."""
        return _first(names, [self._with("NEE", variant, "fqc"), self._with("GPP", variant, "fqc")]), ""

    def qc_kind(self, *, daily: bool) -> tuple[QcKind | None, str]:
        """See :class:`Naming`: ``_fqc`` MDS flags are per record; a daily ``_fqc`` has no documented meaning."""
        if daily:
            return None, "REddyProc _fqc flags are per record; in a daily table they have no documented meaning and are not used"
        return "flags", ""

    def nee(self, names: Sequence[str]) -> str | None:
        """See :class:`Naming`."""
        scenarios = [v for v in self.VARIANTS if v]
        candidates = [f"NEE_{v}_f" for v in scenarios] + ["NEE_f"] + [f"NEE_{v}_orig" for v in scenarios] + ["NEE_orig", "NEE"]
        return _first(names, candidates) or next((n for n in names if re.match(r"^NEE_[A-Za-z0-9]+_f$", n)), None)

    def driver(self, names: Sequence[str], tidy: str) -> str | None:
        """See :class:`Naming`."""
        return _first(names, self.DRIVERS.get(tidy, ()))


class FpStandardNaming:
    """FP-standard names with qualifiers (AmeriFlux BASE, European Fluxes Database: ``GPP_PI_F_1_1_1``, ``FC``)."""

    QUALIFIED: ClassVar[re.Pattern[str]] = re.compile(r"^(?P<base>[A-Z0-9_]+?)(?P<pi>_PI)?(?P<filled>_F)?(?P<pos>(?:_\d+)+)?$")
    MEASURED_BASES: ClassVar[tuple[str, ...]] = ("NEE", "FC")

    def pick(self, names: Sequence[str], base: str, *, want_filled: bool) -> str | None:
        """The best column for variable ``base``.

        Gap-filled (``_F``) before not (or, with ``want_filled`` False, only
        not gap-filled), then ``_PI``, then the lowest position qualifier
        (``_1_1_1`` before ``_2_1_1``).
        """
        return next(iter(self._ranked(names, base, want_filled=want_filled).values()), None)

    def _ranked(self, names: Sequence[str], base: str, *, want_filled: bool) -> dict[str, str]:
        candidates = []
        for name in names:
            match = self.QUALIFIED.match(name)
            if not match or match["base"] != base:
                continue
            filled = match["filled"] is not None
            if not want_filled and filled:
                continue
            position = tuple(int(p) for p in (match["pos"] or "").split("_") if p)
            candidates.append((not filled if want_filled else False, match["pi"] is None, position, name))
        return {name.removeprefix(base).lstrip("_"): name for *_, name in sorted(candidates)}

    def gpp_candidates(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        """See :class:`Naming`; the variant is the qualifier (``PI_F_1_1_1``)."""
        found = self._ranked(names, "GPP", want_filled=True)
        return {"PI": found} if found else {}

    def qc(self, names: Sequence[str], variant: str) -> tuple[str | None, str]:
        """See :class:`Naming`: the measured (not gap-filled) NEE or FC."""
        return next((m for base in self.MEASURED_BASES if (m := self.pick(names, base, want_filled=False))), None), ""

    def qc_kind(self, *, daily: bool) -> tuple[QcKind | None, str]:
        """See :class:`Naming`: a record is good where NEE/FC was measured; days carry no such information."""
        if daily:
            return None, "a daily FP-standard table has no per-day quality fraction"
        return "measured", ""

    def nee(self, names: Sequence[str]) -> str | None:
        """See :class:`Naming`."""
        return next((m for base in self.MEASURED_BASES if (m := self.pick(names, base, want_filled=True))), None)

    def driver(self, names: Sequence[str], tidy: str) -> str | None:
        """See :class:`Naming`."""
        return self.pick(names, tidy, want_filled=True)


@dataclass(frozen=True)
class Family:
    """One flux-file family of the registry.

    Attributes:
        name: Registry name (``attrs["family"]``).
        description: What files it covers, for messages and docs.
        naming: Its naming scheme.
        markers: Column-name patterns typical of it; a table's family is the
            one matching most of its columns.
        delimiters: Field separators its text files use.
        units: Documented units of sub-daily records, by quantity name
            (:class:`~fluxnet.units.Quantity` ``name``).
        daily_units: Documented units of daily values (a quantity absent
            here and in ``units`` must be stated by the file or the caller).
        time_reference: What a lone timestamp marks, when documented.
        file_names: File names that hint at it (breaks ties only).
        layout_rule: Layouts it accepts.
        remedy: Added to the message for a table with NEE but no GPP.
        expected_gpp: GPP column names to suggest in messages.
    """

    name: str
    description: str
    naming: Naming
    markers: tuple[re.Pattern[str], ...]
    delimiters: tuple[str, ...]
    units: Mapping[str, str]
    daily_units: Mapping[str, str]
    time_reference: TimeReference | None = None
    file_names: re.Pattern[str] | None = None
    layout_rule: Callable[[Layout], bool] = field(default=lambda layout: True)
    remedy: str = ""
    expected_gpp: str = ""

    def score(self, names: Sequence[str]) -> int:
        """How many columns match the family's markers."""
        return sum(any(marker.search(name) for marker in self.markers) for name in names)

    def documented_unit(self, quantity: str, *, daily: bool) -> str | None:
        """The family's documented unit of ``quantity`` at that resolution, or None."""
        if daily:
            return self.daily_units.get(quantity)
        return self.units.get(quantity)

    def check_delimiter(self, layout: Layout, label: str) -> None:
        """Refuse a text file whose separator the family does not use."""
        if layout.delimiter is None or layout.delimiter in self.delimiters:
            return
        expected = " or ".join(DELIMITERS[d] for d in self.delimiters)
        header = layout.delimiter.join(layout.columns)
        raise FluxDataError(
            f"flux file {label}: the header is separated by {DELIMITERS[layout.delimiter]}, not {expected}; "
            f"{self.name} files are {expected}-separated CSV (header starts {header[:60]!r})"
        )

    def plan(self, names: Sequence[str], *, gpp_method: str, gpp_variant: str | None, label: str) -> ColumnPlan:
        """Choose the columns to read.

        Args:
            names: The table's (base) column names.
            gpp_method: ``"NT"``, ``"DT"`` or ``"mean"``.
            gpp_variant: A GPP variant to use instead of the family's
                preference (``"VUT_MEAN"``, ``"U50"``, ``"PI_F_1_1_1"``).
            label: The file, for messages.

        Returns:
            The :class:`ColumnPlan`.

        Raises:
            NotPartitionedError: NEE but no GPP (the message says how to partition it).
            FluxDataError: No GPP, the partitioning ``gpp_method`` needs is
                missing, or ``gpp_variant`` is not in the table.
        """
        candidates = self.naming.gpp_candidates(names)
        if not candidates:
            nee = self.naming.nee(names)
            if nee is not None:
                raise NotPartitionedError(
                    f"flux file {label} has NEE ({nee}) but no GPP column ({self.expected_gpp}): the flux is not "
                    f"partitioned; {PARTITION_HOWTO}{self.remedy}"
                )
            raise FluxDataError(f"flux file {label} has no GPP column: expected {self.expected_gpp}{self.remedy}")
        if gpp_variant is not None:
            candidates = {part: {gpp_variant: v[gpp_variant]} for part, v in candidates.items() if gpp_variant in v}
            if not candidates:
                raise FluxDataError(
                    f"flux file {label}: gpp_variant={gpp_variant!r} is not in it; its GPP variants are "
                    f"{', '.join(sorted({v for c in self.naming.gpp_candidates(names).values() for v in c}))}"
                )
        if "PI" in candidates and gpp_method != "mean":
            raise FluxDataError(
                f"flux file {label} ({self.name}) has only the PI's GPP ({next(iter(candidates['PI'].values()))}), not "
                f"the {gpp_method} partitioning; use gpp_method='mean', which takes the PI's GPP"
            )
        if gpp_method in ("NT", "DT") and gpp_method not in candidates:
            raise FluxDataError(
                f"flux file {label} has no {'night' if gpp_method == 'NT' else 'day'}-time GPP column (e.g. "
                f"{'GPP_NT_VUT_REF' if gpp_method == 'NT' else 'GPP_DT_VUT_REF'}), needed for gpp_method={gpp_method!r}; "
                f"use gpp_method='mean' to take what is there"
            )
        gpp = {GPP_PARTS[part]: next(iter(variants.values())) for part, variants in candidates.items()}
        variant = next(iter(candidates[next(iter(candidates))]))
        qc, qc_note = self.naming.qc(names, variant)
        drivers = {tidy: column for tidy in ("TA", "SW_IN", "VPD", "P", "PPFD_IN") if (column := self.naming.driver(names, tidy))}
        release = next((n for n in names if n.lower() in RELEASE_ALIASES), None)
        return ColumnPlan(gpp=gpp, qc=qc, qc_note=qc_note, drivers=drivers, release=release)


_ONEFLUX_SUB_DAILY = {"carbon flux": "umol m-2 s-1", "temperature": "degC", "VPD": "hPa", "shortwave radiation": "W m-2",
                      "PPFD": "umol m-2 s-1", "precipitation": "mm"}
_STATES = {"temperature": "degC", "VPD": "hPa", "shortwave radiation": "W m-2", "PPFD": "umol m-2 s-1"}
"""Means whose unit does not depend on the averaging period."""

FLUXNET = Family(
    name="FLUXNET",
    description="FLUXNET2015/ONEFlux names, also ICOS L2, Warm Winter 2020 and AmeriFlux FLUXNET: GPP_NT_VUT_REF, "
                "GPP_DT_VUT_REF, NEE_VUT_REF_QC, TA_F",
    naming=OneFluxNaming(),
    markers=tuple(re.compile(p) for p in (
        r"^(GPP|RECO|NEE)_(NT_|DT_)?(VUT|CUT)_", r"^(TA|SW_IN|LW_IN|VPD|PA|P|WS|CO2|TS|SWC|G|LE|H)_F(_MDS)?(_\d+)?(_QC)?$",
        r"^SW_IN_POT$", r"^(NIGHT|DAY)_D$", r"^(LE|H)_CORR", r"_ERA$",
    )),
    delimiters=(",",),
    units=_ONEFLUX_SUB_DAILY,
    daily_units={**_STATES, "carbon flux": "gC m-2 d-1", "precipitation": "mm d-1", "QC fraction": "1"},
    file_names=re.compile(r"^(FLX|ICOSETC|EUF)_|_FLUXNET(2015)?_|^AMF_.*_FLUXNET_"),
    expected_gpp="GPP_NT_VUT_REF and/or GPP_DT_VUT_REF (FLUXNET2015/ONEFlux/ICOS partitioned GPP)",
)

REDDYPROC = Family(
    name="REDDYPROC",
    description="REddyProc outputs and tools built on it: GPP_f, GPP_<uStar scenario>_f, GPP_DT_<scenario>, "
                "NEE_<scenario>_fqc, Tair_f, VPD_f, Rg_f",
    naming=REddyProcNaming(),
    markers=tuple(re.compile(p) for p in (
        r"^(NEE|GPP|LE|H|Rg|Tair|Tsoil|VPD|rH|Ustar|Reco)(_[A-Za-z0-9]+)?_(f|fqc|fall|fsd|fmeth|fwin|fnum|orig)$",
        r"^Reco(_DT)?(_[A-Za-z0-9]+)?(_SD)?$", r"^GPP_DT(_[A-Za-z0-9]+)?(_SD)?$", r"^(Rg|Tair|Tsoil|rH|Ustar|DoY)$",
        r"^Ustar_(Thres|uStar|U\d\d)",
    )),
    delimiters=("\t", ","),
    units={"carbon flux": "umol m-2 s-1", **_STATES},
    daily_units=_STATES,
    time_reference="end",
    file_names=re.compile(r"(?i)reddy"),
    remedy="; with REddyProc: after sMDSGapFillUStar(), call sMRFluxPartition() and/or sGLFluxPartition() and export "
           "sExportResults() with the input data",
    expected_gpp="GPP_uStar_f, GPP_f or GPP_DT_uStar",
)

_FP_MARKERS = tuple(re.compile(p) for p in (
    r"^(FC|NEE|GPP|RECO|SC|TA|T_SONIC|SW_IN|SW_OUT|LW_IN|LW_OUT|NETRAD|PPFD_IN|PPFD_OUT|VPD|RH|P|PA|WS|WD|USTAR|LE|H|G|"
    r"SWC|TS|CO2|H2O|ZL|TAU)(_PI)?(_F)?(_\d+_\d+_\d+|_\d+)?$",
))


def _is_base_shaped(layout: Layout) -> bool:
    return "TIMESTAMP_START" in layout.columns and not layout.has_units_row


AMERIFLUX_BASE = Family(
    name="AMERIFLUX_BASE",
    description="AmeriFlux BASE, FP-standard names with _PI/_F/_1_1_1 qualifiers: GPP_PI_F, FC, TA_1_1_1",
    naming=FpStandardNaming(),
    markers=_FP_MARKERS,
    delimiters=(",",),
    units=_ONEFLUX_SUB_DAILY,
    daily_units=_STATES,
    file_names=re.compile(r"^AMF_.*_BASE_"),
    layout_rule=_is_base_shaped,
    remedy="; AmeriFlux BASE files usually carry no partitioning: a PI-provided GPP_PI_F, GPP_PI, GPP_F or GPP column "
           "(optionally with a _1_1_1 position) is read when present, or use the AmeriFlux FLUXNET (ONEFlux) product, "
           "which has GPP_NT_VUT_REF/GPP_DT_VUT_REF",
    expected_gpp="GPP_PI_F, GPP_PI, GPP_F or GPP",
)

EFDC = Family(
    name="EFDC",
    description="European Fluxes Database exports and other FP-standard tables, often only TIMESTAMP_END and a units "
                "row: NEE, GPP, TA, SW_IN, VPD",
    naming=FpStandardNaming(),
    markers=_FP_MARKERS,
    delimiters=(",",),
    units=_ONEFLUX_SUB_DAILY,
    daily_units=_STATES,
    file_names=re.compile(r"EFDC|CEIP"),
    layout_rule=lambda layout: not _is_base_shaped(layout),
    remedy="; or download the site's partitioned FLUXNET (ONEFlux) product",
    expected_gpp="GPP, GPP_F or GPP_PI",
)

FAMILIES: dict[str, Family] = {family.name: family for family in (FLUXNET, REDDYPROC, AMERIFLUX_BASE, EFDC)}
"""The registry, in order of preference (ties go to the earlier one)."""


def detect_family(layout: Layout, file_name: str, label: str) -> Family:
    """The family whose markers match most of a table's columns.

    Args:
        layout: The table's layout (its base names are matched).
        file_name: The file (or member) name; a family it hints at wins ties.
        label: The file, for messages.

    Returns:
        The family.

    Raises:
        FluxDataError: No family matches any column; the message lists the
            columns found and the families accepted.
    """
    names = layout.base_names
    scored = [(family.score(names), family) for family in FAMILIES.values() if family.layout_rule(layout)]
    best = max((score for score, _ in scored), default=0)
    if best == 0:
        shown = ", ".join(layout.columns[:15]) + (", ..." if len(layout.columns) > 15 else "")
        accepted = "; ".join(f"{family.name} ({family.description})" for family in FAMILIES.values())
        raise FluxDataError(
            f"flux file {label}: unknown layout, no flux-file family matches its columns ({shown}); accepted families: {accepted}"
        )
    tied = [family for score, family in scored if score == best]
    hinted = [family for family in tied if family.file_names is not None and family.file_names.search(file_name)]
    return (hinted or tied)[0]
