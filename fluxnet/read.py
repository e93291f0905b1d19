"""Read eddy-covariance files, as people download them, into the tidy daily flux table.

A flux file may be CSV-like text, Parquet or Feather; plain, gzip/bz2/xz
compressed, or in a ZIP archive (:mod:`fluxnet.sources`). What a table is
comes from its content, never from its name alone:

- its variable names select a family (:mod:`fluxnet.families`): FLUXNET2015/
  ONEFlux (incl. ICOS L2, Warm Winter 2020), REddyProc, AmeriFlux BASE,
  European Fluxes Database exports;
- its timestamp columns a convention (:mod:`fluxnet.timestamps`):
  ``TIMESTAMP`` (YYYYMMDD or ISO date), ``TIMESTAMP_START``/``_END``, only
  ``TIMESTAMP_END`` or ``TIMESTAMP_MIDDLE``, ISO date-times, ``Year/DoY/Hour``,
  ``DateTime``;
- units come from the file (a units row, Parquet/Feather field metadata, a
  unit in the column name), the family's documented convention or the
  caller's ``units=``, never from the values (:mod:`fluxnet.units`).

File names are hints for the site id (``FLX_<SITE>_...``, ``ICOSETC_<SITE>_...``,
``AMF_<SITE>_...``, ``<SITE>_...``) and the resolution (``..._HH_...``), checked
against the content. Sub-daily records become days with
:func:`~fluxnet.aggregate.aggregate_to_daily`; the result is checked for
plausibility (:mod:`fluxnet.plausibility`), which is reported, never applied.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fluxnet.aggregate import DEFAULT_MIN_DAY_COVERAGE, DEFAULT_QC_FLAG_MAX, aggregate_to_daily
from fluxnet.archives import inspect_paths
from fluxnet.errors import FluxDataError, FluxQCWarning
from fluxnet.families import FAMILIES
from fluxnet.layout import split_name_unit
from fluxnet.plausibility import check_plausibility
from fluxnet.records import Inspection, ReadOptions, Records, read_records
from fluxnet.sources import Source
from fluxnet.table import OPTIONAL_COLUMNS, RELEASE_COLUMN, TIDY_COLUMNS, UNITS
from fluxnet.timestamps import RESOLUTIONS, STEP_MINUTES, TIME_REFERENCES, TimeReference

GPP_METHODS: tuple[str, ...] = ("NT", "DT", "mean")
QC_MISSING: tuple[str, ...] = ("nan", "pass", "fail")
"""What ``GPP_qc`` becomes on days the file gives no QC for: NaN (default), 1 (pass) or 0 (fail)."""


@dataclass(frozen=True)
class FluxFileFormat:
    """What a flux file is, as detected from its content (and its name, for hints).

    Attributes:
        family: Variable-name family (:data:`fluxnet.families.FAMILIES`):
            ``"FLUXNET"``, ``"REDDYPROC"``, ``"AMERIFLUX_BASE"`` or ``"EFDC"``.
        resolution: ``"HH"``, ``"HR"`` or ``"DD"`` (``"HH/HR"`` when the first
            records cannot tell).
        site_id: Site id from the file name or header comments, or None.
        header_line: 0-based line number of the header (comment lines before it).
        columns: Column names of the header.
        timestamps: The timestamp convention (columns, and what a lone stamp marks).
        stated_units: Column -> unit as the file states it (units row, field
            metadata or column name).
        source: The table read (``path`` or ``archive.zip!member``).
    """

    family: str
    resolution: str
    site_id: str | None
    header_line: int
    columns: tuple[str, ...]
    timestamps: str = ""
    stated_units: Mapping[str, str] = field(default_factory=dict)
    source: str = ""


def _format_of(inspection: Inspection) -> FluxFileFormat:
    layout = inspection.layout
    return FluxFileFormat(
        family=inspection.family.name,
        resolution=inspection.resolution or "HH/HR",
        site_id=inspection.site,
        header_line=layout.header_line,
        columns=layout.columns,
        timestamps=inspection.time.describe(),
        stated_units={column: unit for column, (unit, _) in layout.stated_units.items()},
        source=inspection.source.label,
    )


def _options(
    gpp_method: str, gpp_variant: str | None, resolution: str | None, time_reference: str | None,
    units: Mapping[str, str] | None, flip_gpp_sign: bool,
) -> ReadOptions:
    if gpp_method not in GPP_METHODS:
        raise ValueError(f"gpp_method must be one of {', '.join(GPP_METHODS)}, got {gpp_method!r}")
    if resolution is not None and resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {', '.join(RESOLUTIONS)} or None, got {resolution!r}")
    if time_reference is not None and time_reference not in TIME_REFERENCES:
        raise ValueError(f"time_reference must be one of {', '.join(TIME_REFERENCES)} or None, got {time_reference!r}")
    reference: TimeReference | None = time_reference  # type: ignore[assignment]
    return ReadOptions(gpp_method, gpp_variant, resolution, reference, units, flip_gpp_sign)


def _as_paths(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def detect_format(
    path: str | os.PathLike[str],
    *,
    resolution: str | None = None,
    site_id: str | None = None,
    time_reference: str | None = None,
) -> FluxFileFormat:
    """Detect a flux file's family, resolution, site and timestamps from its content.

    Args:
        path: The flux file (any form :func:`read_flux` reads; for a ZIP
            archive, the first member :func:`read_flux` would read).
        resolution: As for :func:`read_flux` (chooses among archive members).
        site_id: As for :func:`read_flux` (chooses among archive members).
        time_reference: As for :func:`read_flux`.

    Returns:
        The detected :class:`FluxFileFormat`.

    Raises:
        FluxDataError: Not a regular file, empty, non-UTF-8, wrong delimiter,
            unknown layout, no timestamp column or no GPP (see the messages).
    """
    options = _options("mean", None, resolution, time_reference, None, False)
    inspections, _ = inspect_paths([Path(path)], options, site_id)
    return _format_of(inspections[0])


def _column_plan(fmt: FluxFileFormat, source: Path, gpp_method: str) -> dict[str, str]:
    """Tidy key -> the column of ``fmt`` that :func:`read_flux` reads (used by ``experiments/bench_flux_parse.py``)."""
    by_base = {split_name_unit(column)[0]: column for column in fmt.columns}
    plan = FAMILIES[fmt.family].plan(list(by_base), gpp_method=gpp_method, gpp_variant=None, label=str(source))
    return {key: by_base[base] for key, base in plan.value_columns().items()}


def _resolve_site_id(inspections: list[Inspection], site_id: str | None) -> str:
    named = {i.site for i in inspections if i.site is not None and i.site_from_name}
    if len(named) > 1:
        raise FluxDataError(f"the files name different sites ({', '.join(sorted(named))}); read one site at a time")
    from_names = named.pop() if named else None
    if site_id is not None and from_names is not None and site_id != from_names:
        raise FluxDataError(f"site_id={site_id!r} but the file name(s) say {from_names!r} ({inspections[0].source.name})")
    stated = next((i.site for i in inspections if i.site is not None), None)
    resolved = site_id or from_names or stated
    if resolved is None:
        raise FluxDataError(
            f"cannot tell the site of {inspections[0].source.label}: the name does not start with a site id "
            f"(FLX_<SITE>_..., ICOSETC_<SITE>_..., AMF_<SITE>_..., <SITE>_... with SITE like CH-Cha); pass site_id="
        )
    return resolved


def _check_no_overlap(parts: list[Records], time_column: str) -> None:
    if len(parts) < 2:
        return
    owner = np.concatenate([np.full(len(p.frame), i) for i, p in enumerate(parts)])
    times = np.concatenate([p.frame[time_column].to_numpy() for p in parts])
    order = np.argsort(times, kind="stable")
    repeated = np.flatnonzero(np.diff(times[order].astype(np.int64)) == 0)
    if len(repeated):
        first, second = (parts[owner[order[repeated[0] + k]]].inspection.source for k in (0, 1))
        hint = " (extract the one you want from the archive)" if first.member and first.path == second.path else ""
        raise FluxDataError(
            f"flux files {first.label} and {second.label} both hold {pd.Timestamp(times[order[repeated[0]]])}; "
            f"give each period once{hint}"
        )


def _check_consistent(parts: list[Records]) -> None:
    listing = ", ".join(f"{p.inspection.source.name} ({p.resolution})" for p in parts)
    if len({p.resolution for p in parts}) > 1:
        raise FluxDataError(
            f"cannot mix resolutions in one read: {listing}; read the daily (DD) files or the half-hourly/hourly ones, not both"
        )
    if len({p.inspection.family.name for p in parts}) > 1:
        families = ", ".join(f"{p.inspection.source.name} ({p.inspection.family.name})" for p in parts)
        raise FluxDataError(f"cannot mix flux-file families in one read: {families}; read each family separately")
    gpp = {tuple(sorted((k, v) for k, v in p.columns.items() if k.startswith("GPP_"))) for p in parts}
    if len(gpp) > 1:
        used = "; ".join(f"{p.inspection.source.name}: {', '.join(v for k, v in p.columns.items() if k.startswith('GPP_'))}" for p in parts)
        raise FluxDataError(f"the files hold different GPP columns ({used}); pass gpp_variant= to read the same variant from all")


def _joined(parts: list[Records], attribute: str) -> dict[str, str]:
    """Merge the per-file unit statements: one entry per tidy column, distinct statements joined by ``|``."""
    merged: dict[str, list[str]] = {}
    for part in parts:
        for key, text in getattr(part, attribute).items():
            merged.setdefault(key, [])
            if text not in merged[key]:
                merged[key].append(text)
    return {key: " | ".join(texts) for key, texts in merged.items()}


def read_flux(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    gpp_method: str = "mean",
    site_id: str | None = None,
    min_coverage: float = DEFAULT_MIN_DAY_COVERAGE,
    qc_flag_max: int = DEFAULT_QC_FLAG_MAX,
    gpp_variant: str | None = None,
    resolution: str | None = None,
    time_reference: str | None = None,
    units: Mapping[str, str] | None = None,
    flip_gpp_sign: bool = False,
    qc_missing: str = "nan",
    strict: bool = False,
) -> pd.DataFrame:
    """Read one site's flux file(s) into the tidy daily flux table.

    HH/HR records are aggregated to days with :func:`aggregate_to_daily`
    (GPP umol CO2 m-2 s-1 -> gC m-2 d-1; ``GPP_qc`` = fraction of the day's
    records with a gap-fill flag <= ``qc_flag_max``: ONEFlux ``NEE_*_QC``,
    REddyProc ``NEE_*_fqc``; AmeriFlux BASE: records with a measured NEE/FC).
    DD files are used as they are (``GPP_qc`` = their daily fraction, e.g.
    ``NEE_VUT_REF_QC``). Drivers prefer the gap-filled variables. Days are
    not dropped for QC here: use :func:`~fluxnet.table.qc_pass`.

    GPP target (``gpp_method``): ``"NT"`` (night-time partitioning),
    ``"DT"`` (day-time) or ``"mean"`` (their mean; where one is missing the
    other is used and ``attrs["gpp_fallback_days"]`` counts those days; where
    a file has only one, GPP is that one). ``GPP_unc`` = |NT - DT| / 2.
    AmeriFlux BASE files carry only the PI's GPP: with ``"mean"`` it becomes
    ``GPP`` (``attrs["gpp_method"] = "PI"``) and ``GPP_NT``/``GPP_DT``/
    ``GPP_unc`` are NaN. Variants: ONEFlux ``VUT_REF`` is preferred, then
    ``VUT_MEAN``, ``VUT_USTAR50``, the ``CUT_`` ones; REddyProc ``uStar``,
    then ``U50``, then no suffix; ``gpp_variant`` picks another.

    Args:
        paths: One file or a list of files of the same site and resolution
            (e.g. several years), in any order: CSV-like text, Parquet or
            Feather, optionally gzip/bz2/xz-compressed, or ZIP archives (their
            flux tables of one site are read together; when an archive holds
            the same data daily and sub-daily, the daily table is read unless
            ``resolution`` says otherwise).
        gpp_method: ``"NT"``, ``"DT"`` or ``"mean"``.
        site_id: Site id; needed when neither the file names nor header
            comments carry it, must match a name that does; selects a site's
            tables in an archive.
        min_coverage: HH/HR only: minimum fraction of finite records for a
            day's value (else NaN).
        qc_flag_max: HH/HR only: largest gap-fill flag counted as good (0
            measured, 1 good gap-fill, 2 medium, 3 poor).
        gpp_variant: GPP variant to read instead of the family's preference,
            e.g. ``"VUT_MEAN"``, ``"CUT_REF"`` (ONEFlux), ``"U50"`` (REddyProc),
            ``"PI_F_1_1_1"`` (AmeriFlux).
        resolution: ``"HH"``, ``"HR"`` or ``"DD"``: the records must be at
            this resolution; chooses among archive members; gives the length
            of a file's single record.
        time_reference: What a lone timestamp column marks when the file does
            not say (``"start"``, ``"middle"`` or ``"end"``); REddyProc files
            say ``end``, ``TIMESTAMP_START/_MIDDLE/_END`` say it by their name.
        units: Column name -> unit, overriding what the file and its family
            state (e.g. ``{"VPD_f": "kPa"}``); decisions are recorded in
            ``attrs["units_in"]`` and ``attrs["units_converted"]``.
        flip_gpp_sign: Multiply GPP by -1: for files whose convention is
            uptake-negative (``attrs["plausibility"]`` says when it looks so).
        qc_missing: ``GPP_qc`` on days the file gives no QC for (no QC column,
            or an empty cell): ``"nan"`` (default: unknown, so
            :func:`~fluxnet.table.qc_pass` fails those days, and a file with no
            QC at all raises a :class:`~fluxnet.errors.FluxQCWarning`),
            ``"pass"`` (1: e.g. a file already QC-filtered by its source) or
            ``"fail"`` (0).
        strict: Raise instead of reporting plausibility findings.

    Returns:
        Columns ``site_id, date, GPP, GPP_NT, GPP_DT, GPP_unc, GPP_qc, TA,
        SW_IN, VPD, P``, then ``PPFD_IN`` when a file has it and ``release``
        (the data release/database of each day) when a file has a
        ``release``/``database`` column; one row per day present, sorted.
        ``attrs``: ``site_id``, ``source_files``, ``family``, ``timestamps``,
        ``resolution_in``, ``gpp_method``, ``gpp_columns``, ``gpp_rule``,
        ``gpp_fallback_days``, ``gpp_sign``, ``qc_source``, ``qc_rule``,
        ``qc_missing``, ``qc_missing_days``, ``days_absent``, ``units``,
        ``units_in``, ``units_converted``, ``plausibility`` and, for
        archives, ``archive``.

    Raises:
        FluxDataError: Any malformed input (each message names the file and
            the remedy), or implausible GPP with ``strict=True``.
        ValueError: An option outside its allowed values.
    """
    options = _options(gpp_method, gpp_variant, resolution, time_reference, units, flip_gpp_sign)
    if qc_missing not in QC_MISSING:
        raise ValueError(f"qc_missing must be one of {', '.join(QC_MISSING)}, got {qc_missing!r}")
    sources = _as_paths(paths)
    if not sources:
        raise FluxDataError("read_flux needs at least one flux file")
    inspections, archive_notes = inspect_paths(sources, options, site_id)
    parts = [read_records(inspection, options) for inspection in inspections]
    _check_consistent(parts)
    resolved_site = _resolve_site_id(inspections, site_id)
    resolution_in = parts[0].resolution
    time_column = "date" if resolution_in == "DD" else "TIMESTAMP_START"
    _check_no_overlap(parts, time_column)
    records = parts[0].frame if len(parts) == 1 else pd.concat(
        [p.frame for p in parts], ignore_index=True
    ).sort_values(time_column, kind="stable", ignore_index=True)
    if resolution_in == "DD":
        daily = records
        if "GPP_qc" not in daily.columns:
            daily["GPP_qc"] = np.nan
    else:
        daily = aggregate_to_daily(records, step_minutes=STEP_MINUTES[resolution_in], min_coverage=min_coverage,
                                   qc_flag_max=qc_flag_max).drop(columns="n_records")
    qc_missing_days = int(np.isnan(daily["GPP_qc"].to_numpy(dtype=float)).sum())
    if qc_missing != "nan":
        daily["GPP_qc"] = daily["GPP_qc"].fillna(1.0 if qc_missing == "pass" else 0.0)
    table = _finish_table(daily, resolved_site, gpp_method)
    table.attrs.update(_gpp_attrs(parts, gpp_method))
    findings = check_plausibility(table)
    if strict and findings:
        raise FluxDataError(
            f"flux file(s) {', '.join(p.inspection.source.label for p in parts)}: implausible values: {'; '.join(findings)} "
            f"(strict=True; read with strict=False to get the table and these findings in attrs['plausibility'])"
        )
    qc_rule = _qc_rule(parts, qc_flag_max, qc_missing, qc_missing_days, len(table))
    days_absent = _days_absent(table) if resolution_in == "DD" else 0
    if days_absent:
        qc_rule += (
            f"; {days_absent} days between the first and last are not in the file(s) (a pre-filtered file has days missing, "
            f"not flagged)"
        )
    if qc_missing == "nan" and all(p.qc_kind is None for p in parts):
        warnings.warn(
            f"flux file(s) {', '.join(p.inspection.source.label for p in parts)} have no QC column: GPP_qc is NaN and "
            f"qc_pass() drops every day; pass qc_missing='pass' (pre-filtered data) or 'fail' to decide",
            FluxQCWarning,
            stacklevel=2,
        )
    table.attrs.update(
        {
            "site_id": resolved_site,
            "source_files": [_resolved_label(p.inspection.source) for p in parts],
            "family": parts[0].inspection.family.name,
            "timestamps": " | ".join(dict.fromkeys(p.inspection.time.describe() for p in parts)),
            "resolution_in": resolution_in,
            "gpp_sign": "flipped (flip_gpp_sign=True): the file's GPP is uptake-negative" if flip_gpp_sign
            else "as in the file (uptake positive)",
            "qc_source": _qc_source(parts),
            "qc_rule": qc_rule,
            "qc_missing": qc_missing,
            "qc_missing_days": qc_missing_days,
            "days_absent": days_absent,
            "units": {c: UNITS[c] for c in table.columns if c in UNITS},
            "units_in": _joined(parts, "units_in"),
            "units_converted": _joined(parts, "units_converted"),
            "plausibility": findings,
        }
    )
    if archive_notes:
        table.attrs["archive"] = archive_notes
    return table


def _resolved_label(source: Source) -> str:
    path = str(source.path.resolve())
    return path if source.member is None else f"{path}!{source.member}"


def _days_absent(table: pd.DataFrame) -> int:
    """Days between a daily table's first and last day that it does not hold."""
    if table.empty:
        return 0
    span = (table["date"].iloc[-1] - table["date"].iloc[0]).days + 1
    return int(span - len(table))


def _qc_source(parts: list[Records]) -> str:
    first = parts[0]
    if first.qc_kind is None:
        return "none"
    column = first.columns["QC"]
    return f"fraction of records with measured {column}" if first.qc_kind == "measured" else column


def _qc_rule(parts: list[Records], qc_flag_max: int, qc_missing: str, missing_days: int, n_days: int) -> str:
    """How ``GPP_qc`` was made, in words."""
    rules = []
    for part in parts:
        column = part.columns.get("QC")
        if part.qc_kind == "fraction":
            rule = f"GPP_qc = {column}, the file's daily fraction of measured or good-quality gap-filled records"
        elif part.qc_kind == "flags":
            per_day = 1440 // STEP_MINUTES[part.resolution]
            rule = (
                f"GPP_qc = share of the day's {per_day} records whose {column} flag is <= {qc_flag_max} "
                f"(0 measured, 1 good, 2 medium, 3 poor gap-fill; missing records count as not good)"
            )
        elif part.qc_kind == "measured":
            rule = f"GPP_qc = share of the day's records with a measured (not gap-filled) {column}"
        else:
            rule = "no usable QC column in the file" if part.qc_note else "no QC column in the file"
        if part.qc_note:
            rule += f" ({part.qc_note})"
        rules.append(rule)
    text = " | ".join(dict.fromkeys(rules))
    if missing_days:
        outcome = {"nan": "NaN, so qc_pass() fails them", "pass": "1 (qc_missing='pass')", "fail": "0 (qc_missing='fail')"}[qc_missing]
        text += f"; {missing_days} of {n_days} days have no QC value: GPP_qc is {outcome}"
        if qc_missing == "nan":
            text += " (qc_missing='pass' or 'fail' decides instead)"
    return text


def _gpp_attrs(parts: list[Records], gpp_method: str) -> dict[str, object]:
    """``gpp_columns`` and ``gpp_rule``: which file columns GPP comes from and how it was formed."""
    columns = {k: v for k, v in parts[0].columns.items() if k.startswith("GPP_")}
    if "GPP_PI" in columns:
        rule = f"GPP = the PI's GPP ({columns['GPP_PI']}); the file has no NT/DT partitioning (GPP_NT, GPP_DT, GPP_unc are NaN)"
    elif gpp_method != "mean":
        rule = f"GPP = GPP_{gpp_method} ({columns[f'GPP_{gpp_method}']}) (gpp_method={gpp_method!r})"
    elif len(columns) == 2:
        rule = (
            f"GPP = mean of GPP_NT ({columns['GPP_NT']}) and GPP_DT ({columns['GPP_DT']}) where both exist, "
            f"else the one that exists"
        )
    else:
        (key, column), = columns.items()
        rule = f"GPP = {key} ({column}): the file(s) have no {'day' if key == 'GPP_NT' else 'night'}-time GPP"
    return {"gpp_columns": columns, "gpp_rule": rule}


def _finish_table(daily: pd.DataFrame, site_id: str, gpp_method: str) -> pd.DataFrame:
    """Choose GPP, compute GPP_unc and order the tidy columns."""
    n = len(daily)
    nan = np.full(n, np.nan)
    fallback = {"NT_missing_used_DT": 0, "DT_missing_used_NT": 0}
    gpp_nt = daily["GPP_NT"].to_numpy(dtype=float) if "GPP_NT" in daily else nan
    gpp_dt = daily["GPP_DT"].to_numpy(dtype=float) if "GPP_DT" in daily else nan
    if "GPP_PI" in daily:
        gpp_method = "PI"
        gpp = daily["GPP_PI"].to_numpy(dtype=float)
    elif gpp_method == "NT":
        gpp = gpp_nt
    elif gpp_method == "DT":
        gpp = gpp_dt
    else:
        nt_ok, dt_ok = np.isfinite(gpp_nt), np.isfinite(gpp_dt)
        gpp = np.where(nt_ok & dt_ok, (gpp_nt + gpp_dt) / 2, np.where(nt_ok, gpp_nt, gpp_dt))
        fallback = {"NT_missing_used_DT": int((~nt_ok & dt_ok).sum()), "DT_missing_used_NT": int((nt_ok & ~dt_ok).sum())}
    columns: dict[str, object] = {
        "site_id": pd.Series([site_id] * n, dtype=object),
        "date": pd.to_datetime(daily["date"].to_numpy()).astype("datetime64[ns]"),
        "GPP": gpp,
        "GPP_NT": gpp_nt,
        "GPP_DT": gpp_dt,
        "GPP_unc": np.abs(gpp_nt - gpp_dt) / 2,
        "GPP_qc": daily["GPP_qc"].to_numpy(dtype=float),
    }
    for column in TIDY_COLUMNS[7:]:
        columns[column] = daily[column].to_numpy(dtype=float) if column in daily else nan
    for column in OPTIONAL_COLUMNS:
        if column in daily:
            columns[column] = daily[column].to_numpy(dtype=float)
    if RELEASE_COLUMN in daily:
        columns[RELEASE_COLUMN] = pd.Series(daily[RELEASE_COLUMN].to_numpy(dtype=object), dtype=object)
    table = pd.DataFrame(columns)
    table.attrs["gpp_method"] = gpp_method
    table.attrs["gpp_fallback_days"] = fallback
    return table
