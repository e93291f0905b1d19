"""One flux table -> its records with tidy names and units (before days are formed).

:func:`inspect_source` probes a table (layout, family, timestamp
convention, column plan) without reading it all; :func:`read_records` reads
the planned columns, parses the time, converts units as the metadata states
and turns the QC column into what :func:`~fluxnet.aggregate.aggregate_to_daily`
(or the daily path) expects. Every unit decision is recorded in words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from fluxnet.aggregate import MEASURED_COLUMN, QC_FLAG_COLUMN, UMOL_S_TO_GC_DAY
from fluxnet.errors import FluxDataError, Location
from fluxnet.families import ColumnPlan, Family, QcKind, detect_family
from fluxnet.layout import Layout, probe_layout, read_columns
from fluxnet.sources import Source
from fluxnet.table import RELEASE_COLUMN
from fluxnet.timestamps import TimeReference, TimeSpec, detect_time_spec, parse_times, read_type
from fluxnet.units import (
    CARBON_FLUX,
    FRACTION,
    IRRADIANCE,
    PHOTON_FLUX,
    PRECIPITATION,
    TEMPERATURE,
    VAPOUR_PRESSURE_DEFICIT,
    Quantity,
    UnitChoice,
    choose_unit,
)

QUANTITY_OF: dict[str, Quantity] = {
    "GPP_NT": CARBON_FLUX,
    "GPP_DT": CARBON_FLUX,
    "GPP_PI": CARBON_FLUX,
    "TA": TEMPERATURE,
    "SW_IN": IRRADIANCE,
    "VPD": VAPOUR_PRESSURE_DEFICIT,
    "P": PRECIPITATION,
    "PPFD_IN": PHOTON_FLUX,
}
"""Tidy value column -> the quantity it holds."""

_SITE_IN_NAME = (
    re.compile(r"^(?:FLX|ICOSETC|AMF|EUF)_(?P<site>[^_]+)_"),  # FLUXNET, ICOS, AmeriFlux product names: any site token
    re.compile(r"^(?P<site>[A-Z]{2}-[A-Za-z0-9]{2,5})(?=[_.\-]|$)"),  # a leading FLUXNET-style id: AT-Neu_ICOS_GPP_DD_...
)
_RESOLUTION_IN_NAME = re.compile(r"(?:^|_)(?P<resolution>HH|HR|DD|WW|MM|YY)(?=[_.]|$)")


def site_in_name(name: str) -> str | None:
    """Site id a file name starts with: ``FLX_CH-Cha_...``, ``ICOSETC_BE-Bra_...``, ``AMF_US-Ha1_...``, ``AT-Neu_...``."""
    match = next((m for pattern in _SITE_IN_NAME if (m := pattern.match(name))), None)
    return match["site"] if match else None


def resolution_in_name(name: str) -> str | None:
    """Resolution token of a file name (``..._HH_...``, ``..._DD_...``), or None."""
    match = _RESOLUTION_IN_NAME.search(name)
    return match["resolution"] if match else None


@dataclass(frozen=True)
class ReadOptions:
    """The caller's choices that shape how one table is read (see :func:`fluxnet.read.read_flux`)."""

    gpp_method: str = "mean"
    gpp_variant: str | None = None
    resolution: str | None = None
    time_reference: TimeReference | None = None
    units: Mapping[str, str] | None = None
    flip_gpp_sign: bool = False


@dataclass(frozen=True)
class Inspection:
    """A table probed but not yet read.

    Attributes:
        source: The table.
        layout: Its layout.
        family: Its variable-name family.
        time: Its timestamp convention (file column names).
        plan: The columns to read (base names).
        resolution: ``HH``/``HR``/``DD`` from the sample rows, else from the name, else None.
        site: Site id from the file name or header comments, or None.
        site_from_name: Whether ``site`` comes from the file name (checked against ``site_id=``).
    """

    source: Source
    layout: Layout
    family: Family
    time: TimeSpec
    plan: ColumnPlan
    resolution: str | None
    site: str | None
    site_from_name: bool

    @property
    def where(self) -> Location:
        """The table's records, for messages."""
        return Location(self.source.label, self.layout.first_data_line, self.layout.row_word)


def inspect_source(source: Source, options: ReadOptions, *, archive_name: str | None = None) -> Inspection:
    """Probe a table: layout, family, timestamps, column plan, sampled resolution.

    Args:
        source: The table.
        options: The caller's choices.
        archive_name: Name of the archive holding it, a fallback hint for the site.

    Returns:
        The :class:`Inspection`.

    Raises:
        FluxDataError: Any problem the header already shows (unknown layout,
            wrong delimiter, no timestamp, no GPP: see the messages).
    """
    layout = probe_layout(source)
    family = detect_family(layout, source.name, source.label)
    family.check_delimiter(layout, source.label)
    spec = detect_time_spec(layout.base_names, family_reference=family.time_reference, family_name=family.name,
                            time_reference=options.time_reference, label=source.label)
    spec = replace(spec, columns=tuple(layout.column(name) for name in spec.columns))
    plan = family.plan(layout.base_names, gpp_method=options.gpp_method, gpp_variant=options.gpp_variant, label=source.label)
    where = Location(source.label, layout.first_data_line, layout.row_word)
    name_resolution = resolution_in_name(source.name)
    sampled: str | None = None
    sample = layout.sample(spec.columns)
    if sample.num_rows:
        try:
            sampled = parse_times(sample, spec, where, resolution_hint=options.resolution or name_resolution).resolution
        except FluxDataError:
            sampled = None  # the full read reports it with the right line
    named_site = site_in_name(source.name) or (site_in_name(archive_name) if archive_name else None)
    return Inspection(
        source=source, layout=layout, family=family, time=spec, plan=plan,
        resolution=sampled or name_resolution, site=named_site or layout.site_hint, site_from_name=named_site is not None,
    )


@dataclass(frozen=True)
class Records:
    """One table's records, tidy.

    Attributes:
        inspection: How the table was probed.
        resolution: ``HH``, ``HR`` or ``DD``.
        frame: ``TIMESTAMP_START`` (sub-daily) or ``date`` (daily), then the
            tidy value columns present (``GPP_NT``, ``GPP_DT``, ``GPP_PI`` in
            umol m-2 s-1 per record or gC m-2 d-1 per day, drivers in tidy
            units), the QC column for aggregation (``NEE_QC`` flags,
            ``MEASURED`` 0/1, or ``GPP_qc`` fractions per day) and ``release``.
        qc_kind: What the QC column was (None when the table has none usable).
        qc_note: Why the QC column is what it is (empty when obvious).
        units_in: Tidy column -> ``"<column>: <unit> (<origin>)"``.
        units_converted: Tidy column -> conversion statement, for values changed.
        columns: Tidy key -> the file's column.
    """

    inspection: Inspection
    resolution: str
    frame: pd.DataFrame
    qc_kind: QcKind | None
    qc_note: str
    units_in: dict[str, str]
    units_converted: dict[str, str]
    columns: dict[str, str]


def _check_resolution(inspection: Inspection, resolution: str, options: ReadOptions) -> None:
    named = resolution_in_name(inspection.source.name)
    label = inspection.source.label
    if named is not None and named != resolution:
        if named not in ("HH", "HR", "DD"):
            raise FluxDataError(f"flux file {label}: resolution {named} is not supported; read the HH, HR or DD file of the release")
        raise FluxDataError(f"flux file {label}: the name says {named} but the records are {resolution}")
    if options.resolution is not None and options.resolution != resolution:
        raise FluxDataError(f"flux file {label}: resolution={options.resolution!r} but its records are {resolution}")


def _explicit_unit(options: ReadOptions, column: str, base: str) -> str | None:
    units = options.units or {}
    return units.get(column, units.get(base))


def read_records(inspection: Inspection, options: ReadOptions) -> Records:
    """Read a probed table's planned columns into tidy records.

    Args:
        inspection: From :func:`inspect_source`.
        options: The caller's choices (units, GPP sign).

    Returns:
        The :class:`Records`.

    Raises:
        FluxDataError: Parse errors, bad timestamps, a resolution contradicting
            the name or ``resolution=``, unknown units, a daily QC fraction
            outside [0, 1], or GPP missing on every record.
    """
    layout, family, plan, where = inspection.layout, inspection.family, inspection.plan, inspection.where
    label = inspection.source.label
    values = {key: layout.column(base) for key, base in plan.value_columns().items()}
    release = layout.column(plan.release) if plan.release is not None else None
    sample = layout.sample(inspection.time.columns)
    types: dict[str, pa.DataType] = {column: read_type(sample.column(column)) for column in inspection.time.columns}
    types.update(dict.fromkeys(values.values(), pa.float64()))
    if release is not None:
        types[release] = pa.string()
    table = read_columns(inspection.source, layout, types)
    times = parse_times(table, inspection.time, where, resolution_hint=options.resolution or inspection.resolution)
    _check_resolution(inspection, times.resolution, options)
    daily = times.resolution == "DD"
    data: dict[str, object] = {"date" if daily else "TIMESTAMP_START": times.start}
    units_in: dict[str, str] = {}
    converted: dict[str, str] = {}
    bases = plan.value_columns()
    for key, column in values.items():
        if key != "QC":
            choice = choose_unit(QUANTITY_OF[key], column, explicit=_explicit_unit(options, column, bases[key]),
                                 stated=layout.stated_units.get(column),
                                 documented=family.documented_unit(QUANTITY_OF[key].name, daily=daily),
                                 family=family.name, daily=daily, label=label)
            array = choice.conversion.apply(table.column(column).to_numpy(zero_copy_only=False).astype(float, copy=True))
            data[key] = -array if options.flip_gpp_sign and key in plan.gpp else array
            units_in[key] = f"{column}: {choice.unit} ({choice.origin})"
            statement = _conversion_statement(column, choice, QUANTITY_OF[key], daily=daily)
            if statement:
                converted[key] = statement
    qc_kind, qc_note = family.naming.qc_kind(daily=daily) if plan.qc is not None else (None, "")
    if qc_kind is not None:
        data[_qc_target(qc_kind)] = _qc_values(table.column(values["QC"]), qc_kind, inspection, values["QC"], times.start, units_in,
                                               converted, options)
    if release is not None:
        data[RELEASE_COLUMN] = pd.Series(table.column(release).to_pylist(), dtype=object)
    frame = pd.DataFrame(data)
    gpp_keys = list(plan.gpp)
    if not np.isfinite(frame[gpp_keys].to_numpy(dtype=float)).any():
        raise FluxDataError(
            f"flux file {label}: every value of the GPP column(s) {', '.join(values[k] for k in gpp_keys)} is missing "
            f"(-9999/NaN); nothing to use"
        )
    notes = "; ".join(n for n in (plan.qc_note, qc_note) if n)
    columns = {**values, **({RELEASE_COLUMN: release} if release else {})}
    if qc_kind is None:
        columns.pop("QC", None)
    return Records(inspection, times.resolution, frame, qc_kind, notes, units_in, converted, columns)


def _conversion_statement(column: str, choice: UnitChoice, quantity: Quantity, *, daily: bool) -> str:
    """How a column's values were converted to the tidy unit, in words (empty when they were not)."""
    steps = [] if choice.conversion.is_identity else [f"{choice.unit} {choice.conversion.describe()}"]
    if quantity is CARBON_FLUX and not daily:
        steps.append(f"daily mean of umol m-2 s-1 x {UMOL_S_TO_GC_DAY:.8g} = gC m-2 d-1")
    if quantity is PRECIPITATION and not daily:
        steps.append("daily sum of mm per record = mm d-1")
    return f"{column}: " + ", then ".join(steps) + f" (unit from the {choice.origin})" if steps else ""


def _qc_target(kind: QcKind) -> str:
    return {"fraction": "GPP_qc", "flags": QC_FLAG_COLUMN, "measured": MEASURED_COLUMN}[kind]


def _qc_values(
    column: pa.ChunkedArray,
    kind: QcKind,
    inspection: Inspection,
    name: str,
    dates: np.ndarray,
    units_in: dict[str, str],
    converted: dict[str, str],
    options: ReadOptions,
) -> np.ndarray:
    """The QC column as :func:`~fluxnet.aggregate.aggregate_to_daily` (flags, measured) or the daily table (fraction) wants it."""
    values: np.ndarray = column.to_numpy(zero_copy_only=False).astype(float, copy=True)
    if kind == "measured":
        measured: np.ndarray = np.isfinite(values).astype(float)
        return measured
    if kind == "flags":
        return values
    base = inspection.plan.qc or name
    choice = choose_unit(FRACTION, name, explicit=_explicit_unit(options, name, base),
                         stated=inspection.layout.stated_units.get(name),
                         documented=inspection.family.documented_unit(FRACTION.name, daily=True),
                         family=inspection.family.name, daily=True, label=inspection.source.label)
    fraction = choice.conversion.apply(values)
    units_in["GPP_qc"] = f"{name}: {choice.unit} ({choice.origin})"
    if not choice.conversion.is_identity:
        converted["GPP_qc"] = f"{name}: {choice.unit} {choice.conversion.describe()} (unit from the {choice.origin})"
    outside = np.isfinite(fraction) & ((fraction < 0) | (fraction > 1))
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise FluxDataError(
            f"flux file {inspection.source.label}: {name} is {fraction[row]} on {pd.Timestamp(dates[row]).date()}; in daily "
            f"files it must be a fraction in [0, 1]"
        )
    return fraction
