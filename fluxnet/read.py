"""Read eddy-covariance files into the tidy daily flux table.

Supported (format detected from the file name, else from the header):

- FLUXNET2015 / ONEFlux (incl. Warm Winter 2020) FULLSET and SUBSET at HH,
  HR and DD: ``FLX_<SITE>_FLUXNET2015_<SET>_<RES>_<Y1>-<Y2>_<ver>.csv``.
- ICOS L2: ``ICOSETC_<SITE>_FLUXNET_{HH,DD}_L2.csv`` (FLUXNET conventions).
- AmeriFlux BASE: ``AMF_<SITE>_BASE_{HH,HR}_<ver>.csv`` (comment lines before
  the header, ``_PI``/``_F``/position qualifiers, GPP only as the PI's
  partitioning, if at all).

Files are parsed with pyarrow's CSV reader, converting only the needed
columns. -9999 becomes NaN on reading.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]

from fluxnet.aggregate import (
    DEFAULT_MIN_DAY_COVERAGE,
    DEFAULT_QC_FLAG_MAX,
    MEASURED_COLUMN,
    QC_FLAG_COLUMN,
    aggregate_to_daily,
)
from fluxnet.errors import FluxDataError
from fluxnet.table import OPTIONAL_COLUMNS, TIDY_COLUMNS, UNITS

MISSING_VALUE = -9999.0
GPP_METHODS: tuple[str, ...] = ("NT", "DT", "mean")
STEP_MINUTES = {"HH": 30, "HR": 60}
HEADER_PROBE_BYTES = 1 << 16

_FLUXNET_NAME = re.compile(
    r"^FLX_(?P<site>[^_]+)_FLUXNET(?:2015)?_(?P<set>[A-Z0-9]+)_(?P<res>[A-Z]{2})_"
    r"(?P<y1>\d{4})-(?P<y2>\d{4})_(?P<version>[^.]+)\.csv$",
    re.IGNORECASE,
)
_ICOS_NAME = re.compile(
    r"^ICOSETC_(?P<site>[^_]+)_FLUXNET_(?P<res>[A-Z]{2})_L2\.csv$", re.IGNORECASE
)
_AMERIFLUX_NAME = re.compile(
    r"^AMF_(?P<site>[^_]+)_BASE_(?P<res>[A-Z]{2})_(?P<version>[^.]+)\.csv$", re.IGNORECASE
)

# tidy driver -> candidate FLUXNET columns, preferred first (gap-filled first)
_FLUXNET_DRIVERS: dict[str, tuple[str, ...]] = {
    "TA": ("TA_F", "TA"),
    "SW_IN": ("SW_IN_F", "SW_IN"),
    "VPD": ("VPD_F", "VPD"),
    "P": ("P_F", "P"),
    "PPFD_IN": ("PPFD_IN_F", "PPFD_IN"),
}
_FLUXNET_GPP = {"GPP_NT": "GPP_NT_VUT_REF", "GPP_DT": "GPP_DT_VUT_REF"}
_FLUXNET_QC = "NEE_VUT_REF_QC"
_AMERIFLUX_GPP_BASES = ("GPP",)
_AMERIFLUX_MEASURED_BASES = ("NEE", "FC")


@dataclass(frozen=True)
class FluxFileFormat:
    """What a flux file is, as detected from its name and header.

    Attributes:
        family: ``"FLUXNET"`` (FLUXNET2015/ONEFlux and ICOS) or ``"AMERIFLUX_BASE"``.
        resolution: ``"HH"``, ``"HR"`` or ``"DD"``.
        site_id: Site id from the file name, or None.
        header_line: 0-based line number of the header (comment lines before it).
        columns: Column names of the header.
    """

    family: str
    resolution: str
    site_id: str | None
    header_line: int
    columns: tuple[str, ...]


def _not_utf8_error(path: Path, data: bytes, err: UnicodeDecodeError) -> FluxDataError:
    if data.startswith(b"\x1f\x8b"):
        return FluxDataError(f"flux file {path} is gzip-compressed, not CSV text; decompress it (gunzip) and read the .csv")
    if data.startswith(b"PK\x03\x04"):
        return FluxDataError(f"flux file {path} is a ZIP archive, not CSV text; extract the CSV files from it and read those")
    line = data[: err.start].count(b"\n") + 1
    return FluxDataError(
        f"flux file {path} is not UTF-8 text: byte 0x{data[err.start]:02x} on line {line} "
        f"(offset {err.start}); FLUXNET files are ASCII/UTF-8 CSV - re-save it as UTF-8"
    )


def _probe_header(path: Path) -> tuple[int, list[str], bytes]:
    """Return (header line number, header fields, probe bytes) with clear errors."""
    if not path.is_file():
        raise FluxDataError(f"flux file {path} does not exist (or is not a file)")
    with path.open("rb") as stream:
        probe = stream.read(HEADER_PROBE_BYTES)
    if not probe.strip():
        raise FluxDataError(f"flux file {path} is empty; expected a FLUXNET-style CSV")
    try:
        text = probe.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        whole_file = len(probe) < HEADER_PROBE_BYTES
        if whole_file or err.start < len(probe) - 4:  # not a character cut by the probe
            raise _not_utf8_error(path, probe, err) from None
        text = probe[: err.start].decode("utf-8-sig")
    lines = text.splitlines()
    number = next((i for i, line in enumerate(lines) if line.strip() and not line.strip().startswith("#")), None)
    if number is None:
        raise FluxDataError(f"flux file {path} holds only comment lines, no header")
    header = lines[number]
    if "," not in header:
        for delimiter, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if delimiter in header:
                raise FluxDataError(
                    f"flux file {path}: the header is separated by {name}, not commas; "
                    f"FLUXNET/ICOS/AmeriFlux files are comma-separated CSV "
                    f"(header starts {header[:60]!r})"
                )
    fields = [field.strip().strip('"') for field in header.split(",")]
    return number, fields, probe


def detect_format(path: str | os.PathLike[str]) -> FluxFileFormat:
    """Detect a flux file's family, resolution and site from its name and header.

    Args:
        path: The flux file.

    Returns:
        The detected :class:`FluxFileFormat`.

    Raises:
        FluxDataError: Empty, non-UTF-8, wrong delimiter, no recognisable
            timestamp column, or an unsupported resolution (WW/MM/YY).
    """
    source = Path(path)
    header_line, columns, _ = _probe_header(source)
    name = source.name
    site_id: str | None = None
    family: str | None = None
    resolution: str | None = None
    for pattern, pattern_family in (
        (_FLUXNET_NAME, "FLUXNET"),
        (_ICOS_NAME, "FLUXNET"),
        (_AMERIFLUX_NAME, "AMERIFLUX_BASE"),
    ):
        match = pattern.match(name)
        if match:
            site_id, family, resolution = match["site"], pattern_family, match["res"].upper()
            break
    if "TIMESTAMP" in columns:
        header_resolution = "DD"
    elif "TIMESTAMP_START" in columns and "TIMESTAMP_END" in columns:
        header_resolution = "HH/HR"
    else:
        raise FluxDataError(
            f"flux file {source} is not a FLUXNET-style CSV: no timestamp column. Expected "
            f"TIMESTAMP (daily, YYYYMMDD) or TIMESTAMP_START and TIMESTAMP_END (half-hourly/"
            f"hourly, YYYYMMDDHHMM); found columns: {', '.join(columns[:12])}"
            f"{', ...' if len(columns) > 12 else ''}"
        )
    if resolution is not None and resolution not in ("HH", "HR", "DD"):
        raise FluxDataError(
            f"flux file {source}: resolution {resolution} is not supported; read the HH, HR or "
            f"DD file of the release"
        )
    if resolution is not None and (resolution == "DD") != (header_resolution == "DD"):
        raise FluxDataError(
            f"flux file {source}: the name says {resolution} but the header has "
            f"{'TIMESTAMP' if header_resolution == 'DD' else 'TIMESTAMP_START/TIMESTAMP_END'}"
        )
    if family is None:
        has_fluxnet_gpp = any(c in columns for c in _FLUXNET_GPP.values())
        family = "FLUXNET" if has_fluxnet_gpp or header_resolution == "DD" else "AMERIFLUX_BASE"
    if resolution is None and header_resolution == "DD":
        resolution = "DD"
    return FluxFileFormat(
        family=family,
        resolution=resolution or "HH/HR",
        site_id=site_id,
        header_line=header_line,
        columns=tuple(columns),
    )


_AMERIFLUX_QUALIFIED = re.compile(r"^(?P<base>[A-Z0-9_]+?)(?P<pi>_PI)?(?P<filled>_F)?(?P<pos>(?:_\d+)+)?$")


def _pick_ameriflux_column(columns: Sequence[str], base: str, *, want_filled: bool) -> str | None:
    """Choose the best AmeriFlux column for variable ``base``.

    Ranks gap-filled (``_F``) before not (or the reverse when
    ``want_filled`` is False, which then excludes ``_F``), then ``_PI``, then
    the lowest position qualifier (``_1_1_1`` before ``_2_1_1``).
    """
    candidates = []
    for column in columns:
        match = _AMERIFLUX_QUALIFIED.match(column)
        if not match or match["base"] != base:
            continue
        filled = match["filled"] is not None
        if not want_filled and filled:
            continue
        position = tuple(int(p) for p in (match["pos"] or "").split("_") if p)
        candidates.append((not filled if want_filled else 0, match["pi"] is None, position, column))
    return min(candidates)[3] if candidates else None


def _column_plan(fmt: FluxFileFormat, source: Path, gpp_method: str) -> dict[str, str]:
    """Map tidy names (and NEE_QC/MEASURED) to the file's columns to read."""
    columns = fmt.columns
    plan: dict[str, str] = {}
    if fmt.family == "FLUXNET":
        for tidy, name in _FLUXNET_GPP.items():
            if name in columns:
                plan[tidy] = name
        if not plan:
            raise FluxDataError(
                f"flux file {source} has no GPP column: expected GPP_NT_VUT_REF and/or "
                f"GPP_DT_VUT_REF (FLUXNET2015/ONEFlux/ICOS partitioned GPP)"
            )
        needed = {"NT": "GPP_NT", "DT": "GPP_DT"}.get(gpp_method)
        if needed is not None and needed not in plan:
            raise FluxDataError(
                f"flux file {source} has no {_FLUXNET_GPP[needed]} column, needed for "
                f"gpp_method={gpp_method!r}; use gpp_method='mean' to take what is there"
            )
        if _FLUXNET_QC in columns:
            plan[QC_FLAG_COLUMN] = _FLUXNET_QC
        for tidy, candidates in _FLUXNET_DRIVERS.items():
            found = next((c for c in candidates if c in columns), None)
            if found is not None:
                plan[tidy] = found
    else:
        gpp = _pick_ameriflux_column(columns, "GPP", want_filled=True)
        if gpp is None:
            raise FluxDataError(
                f"flux file {source} (AmeriFlux BASE) has no GPP column: BASE files usually carry "
                f"no GPP partitioning; expected a PI-provided GPP_PI_F, GPP_PI, GPP_F or GPP "
                f"column (optionally with a _1_1_1 position), or use the AmeriFlux FLUXNET "
                f"(ONEFlux) product, which has GPP_NT_VUT_REF/GPP_DT_VUT_REF"
            )
        if gpp_method != "mean":
            raise FluxDataError(
                f"flux file {source} (AmeriFlux BASE) has only the PI's GPP ({gpp}), not the "
                f"{gpp_method} partitioning; use gpp_method='mean', which takes the PI's GPP"
            )
        plan["GPP_PI"] = gpp
        for base in _AMERIFLUX_MEASURED_BASES:
            measured = _pick_ameriflux_column(columns, base, want_filled=False)
            if measured is not None:
                plan[MEASURED_COLUMN] = measured
                break
        for tidy in ("TA", "SW_IN", "VPD", "P", "PPFD_IN"):
            found = _pick_ameriflux_column(columns, tidy, want_filled=True)
            if found is not None:
                plan[tidy] = found
    return plan


def _read_columns(source: Path, fmt: FluxFileFormat, wanted: dict[str, str]) -> pd.DataFrame:
    """Read the timestamp column(s) and ``wanted`` columns with pyarrow; -9999 -> NaN."""
    time_columns = ["TIMESTAMP"] if fmt.resolution == "DD" else ["TIMESTAMP_START", "TIMESTAMP_END"]
    value_columns = list(dict.fromkeys(wanted.values()))
    column_types: dict[str, pa.DataType] = {c: pa.int64() for c in time_columns}
    column_types.update({c: pa.float64() for c in value_columns})
    try:
        arrow_table = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(skip_rows=fmt.header_line),
            parse_options=pacsv.ParseOptions(delimiter=","),
            convert_options=pacsv.ConvertOptions(
                include_columns=time_columns + value_columns,
                column_types=column_types,
                null_values=["", "NA", "NaN", "nan", "-9999", "-9999.0"],
                strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError, UnicodeDecodeError) as err:
        data = source.read_bytes()  # error path only: name a non-UTF-8 byte precisely
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as decode_error:
            raise _not_utf8_error(source, data, decode_error) from None
        message = str(err).splitlines()[0]
        column_number = re.search(r"CSV column #(\d+)", message)
        if column_number and int(column_number[1]) < len(fmt.columns):
            name = fmt.columns[int(column_number[1])]
            message = message.replace(column_number[0], f"CSV column {name!r}")
        hint = ""
        if "conversion error" in message and any(t in message for t in ("int64",)):
            hint = " (timestamps must be integers YYYYMMDD for DD, YYYYMMDDHHMM for HH/HR)"
        elif "UTF8" in message.upper() or "utf-8" in message:
            hint = " (the file is not UTF-8 text)"
        elif "Expected" in message and "columns, got" in message:
            hint = (
                " (a row has another number of fields than the header: a truncated download or a stray comma; "
                "re-download or fix that row)"
            )
        raise FluxDataError(f"flux file {source}: could not parse: {message}{hint}") from None
    if arrow_table.num_rows == 0:
        raise FluxDataError(f"flux file {source} has a header but no data rows")
    frame = pd.DataFrame({name: arrow_table.column(name).to_numpy() for name in time_columns})
    if any(frame[c].isna().any() for c in time_columns):
        column = next(c for c in time_columns if frame[c].isna().any())
        row = int(np.flatnonzero(frame[column].isna().to_numpy())[0])
        raise FluxDataError(
            f"flux file {source}: {column} is missing on line {row + fmt.header_line + 2}"
        )
    for tidy, name in wanted.items():
        values = arrow_table.column(name).to_numpy(zero_copy_only=False).astype(float, copy=True)
        values[values == MISSING_VALUE] = np.nan
        frame[tidy] = values
    return frame


def _parse_timestamps(
    values: np.ndarray, with_time: bool, source: Path, column: str, line0: int
) -> np.ndarray:
    """Integer YYYYMMDD[HHMM] -> datetime64[ns], with an error naming the bad line."""
    values = values.astype(np.int64)
    if with_time:
        dates, clock = np.divmod(values, 10_000)
        hours, minutes = np.divmod(clock, 100)
    else:
        dates, hours, minutes = values, np.zeros_like(values), np.zeros_like(values)
    years, month_day = np.divmod(dates, 10_000)
    months, days = np.divmod(month_day, 100)
    parsed = pd.to_datetime(
        pd.DataFrame({"year": years, "month": months, "day": days}), errors="coerce"
    ).to_numpy()
    bad = np.isnat(parsed) | (hours > 24) | (minutes > 59) | (years < 1900)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        layout = "YYYYMMDDHHMM" if with_time else "YYYYMMDD"
        raise FluxDataError(
            f"flux file {source}: {column} {values[row]} on line {row + line0} is not a valid "
            f"{layout} timestamp"
        )
    shifted: np.ndarray = parsed + (hours * 60 + minutes).astype("timedelta64[m]")
    return shifted


def _check_order(times: np.ndarray, raw: np.ndarray, source: Path, column: str, line0: int) -> None:
    """Refuse duplicated or decreasing timestamps, naming the first offending line."""
    steps = np.diff(times.astype("datetime64[ns]").astype(np.int64))
    if (steps > 0).all():
        return
    row = int(np.flatnonzero(steps <= 0)[0]) + 1
    if steps[row - 1] == 0:
        raise FluxDataError(
            f"flux file {source}: duplicated timestamp {column}={raw[row]} on line {row + line0} "
            f"(same as line {row - 1 + line0}); each record must appear once"
        )
    raise FluxDataError(
        f"flux file {source}: timestamps are not sorted: {column}={raw[row]} on line "
        f"{row + line0} comes after {raw[row - 1]}; sort the file by time"
    )


@dataclass
class _ParsedFile:
    source: Path
    fmt: FluxFileFormat
    resolution: str
    frame: pd.DataFrame  # time column(s) as datetime64 + tidy columns


def _read_one(source: Path, gpp_method: str) -> _ParsedFile:
    fmt = detect_format(source)
    plan = _column_plan(fmt, source, gpp_method)
    frame = _read_columns(source, fmt, plan)
    line0 = fmt.header_line + 2  # 1-based line number of the first data row
    if fmt.resolution == "DD":
        raw = frame["TIMESTAMP"].to_numpy()
        frame["date"] = _parse_timestamps(raw, False, source, "TIMESTAMP", line0)
        _check_order(frame["date"].to_numpy(), raw, source, "TIMESTAMP", line0)
        resolution = "DD"
    else:
        raw = frame["TIMESTAMP_START"].to_numpy()
        start = _parse_timestamps(raw, True, source, "TIMESTAMP_START", line0)
        end = _parse_timestamps(frame["TIMESTAMP_END"].to_numpy(), True, source, "TIMESTAMP_END", line0)
        _check_order(start, raw, source, "TIMESTAMP_START", line0)
        lengths = np.unique((end - start).astype("timedelta64[m]").astype(np.int64))
        if len(lengths) != 1 or lengths[0] not in (30, 60):
            raise FluxDataError(
                f"flux file {source}: TIMESTAMP_END - TIMESTAMP_START must be 30 min (HH) or "
                f"60 min (HR) on every line; found {sorted(lengths.tolist())[:5]} min"
            )
        resolution = "HH" if lengths[0] == 30 else "HR"
        if fmt.resolution in STEP_MINUTES and fmt.resolution != resolution:
            raise FluxDataError(
                f"flux file {source}: the name says {fmt.resolution} but records are "
                f"{lengths[0]} min long ({resolution})"
            )
        frame["TIMESTAMP_START"] = start
        frame = frame.drop(columns="TIMESTAMP_END")
    gpp_columns = [c for c in ("GPP_NT", "GPP_DT", "GPP_PI") if c in frame.columns]
    if not np.isfinite(frame[gpp_columns].to_numpy(dtype=float)).any():
        raise FluxDataError(
            f"flux file {source}: every value of the GPP column(s) "
            f"{', '.join(plan[c] for c in gpp_columns)} is missing (-9999/NaN); nothing to use"
        )
    return _ParsedFile(source=source, fmt=fmt, resolution=resolution, frame=frame)


def _resolve_site_id(parsed: list[_ParsedFile], site_id: str | None) -> str:
    named = {p.fmt.site_id for p in parsed if p.fmt.site_id is not None}
    if len(named) > 1:
        raise FluxDataError(
            f"the files name different sites ({', '.join(sorted(named))}); read one site at a time"
        )
    from_names = named.pop() if named else None
    if site_id is not None and from_names is not None and site_id != from_names:
        raise FluxDataError(
            f"site_id={site_id!r} but the file name(s) say {from_names!r} "
            f"({parsed[0].source.name})"
        )
    resolved = site_id or from_names
    if resolved is None:
        raise FluxDataError(
            f"cannot tell the site of {parsed[0].source}: the name does not follow "
            f"FLX_<SITE>_..., ICOSETC_<SITE>_... or AMF_<SITE>_...; pass site_id="
        )
    return resolved


def _check_no_overlap(parsed: list[_ParsedFile], time_column: str) -> None:
    if len(parsed) < 2:
        return
    owner = np.concatenate([np.full(len(p.frame), i) for i, p in enumerate(parsed)])
    times = np.concatenate([p.frame[time_column].to_numpy() for p in parsed])
    order = np.argsort(times, kind="stable")
    repeated = np.flatnonzero(np.diff(times[order].astype(np.int64)) == 0)
    if len(repeated):
        first, second = owner[order[repeated[0]]], owner[order[repeated[0] + 1]]
        raise FluxDataError(
            f"flux files {parsed[first].source.name} and {parsed[second].source.name} both "
            f"hold {pd.Timestamp(times[order[repeated[0]]])}; give each period once"
        )


def read_flux(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    gpp_method: str = "mean",
    site_id: str | None = None,
    min_coverage: float = DEFAULT_MIN_DAY_COVERAGE,
    qc_flag_max: int = DEFAULT_QC_FLAG_MAX,
) -> pd.DataFrame:
    """Read one site's flux file(s) into the tidy daily flux table.

    HH/HR records are aggregated to days with :func:`aggregate_to_daily`
    (GPP umol CO2 m-2 s-1 -> gC m-2 d-1; ``GPP_qc`` = fraction of the day's
    records with NEE_VUT_REF_QC <= ``qc_flag_max``). DD files are used as
    they are (``GPP_qc`` = NEE_VUT_REF_QC, already a fraction). Drivers
    prefer the gap-filled ``_F`` variables. Days are not dropped for QC here:
    use :func:`~fluxnet.table.qc_pass`.

    GPP target (``gpp_method``): ``"NT"`` (GPP_NT_VUT_REF), ``"DT"``
    (GPP_DT_VUT_REF) or ``"mean"`` (their mean; where one is missing the
    other is used and ``attrs["gpp_fallback_days"]`` counts those days).
    ``GPP_unc`` = |NT - DT| / 2. AmeriFlux BASE files only carry the PI's
    GPP: with ``"mean"`` it becomes ``GPP`` (``attrs["gpp_method"] = "PI"``),
    ``GPP_NT``/``GPP_DT``/``GPP_unc`` are NaN and ``GPP_qc`` is the fraction
    of records with a measured (not gap-filled) NEE/FC.

    Args:
        paths: One file or a list of files of the same site and resolution
            (e.g. several years), in any order.
        gpp_method: ``"NT"``, ``"DT"`` or ``"mean"``.
        site_id: Site id; needed when the file names do not carry it, must
            match them when they do.
        min_coverage: HH/HR only: minimum fraction of finite records for a
            day's value (else NaN).
        qc_flag_max: HH/HR only: largest NEE_VUT_REF_QC flag counted as good
            (0 measured, 1 good gap-fill, 2 medium, 3 poor).

    Returns:
        Columns ``site_id, date, GPP, GPP_NT, GPP_DT, GPP_unc, GPP_qc, TA,
        SW_IN, VPD, P`` and ``PPFD_IN`` when a file has it; one row per day
        present, sorted. ``attrs``: ``units``, ``source_files``,
        ``resolution_in``, ``gpp_method``, ``site_id``, ``gpp_fallback_days``,
        ``qc_source``.

    Raises:
        FluxDataError: Any malformed input (see the module docstring and the
            messages: each names the file and the field).
    """
    if gpp_method not in GPP_METHODS:
        raise ValueError(f"gpp_method must be one of {', '.join(GPP_METHODS)}, got {gpp_method!r}")
    if isinstance(paths, (str, os.PathLike)):
        sources = [Path(paths)]
    else:
        sources = [Path(p) for p in paths]
    if not sources:
        raise FluxDataError("read_flux needs at least one flux file")
    parsed = [_read_one(source, gpp_method) for source in sources]
    resolutions = {p.resolution for p in parsed}
    if len(resolutions) > 1:
        listing = ", ".join(f"{p.source.name} ({p.resolution})" for p in parsed)
        raise FluxDataError(
            f"cannot mix resolutions in one read: {listing}; read the daily (DD) files or the "
            f"half-hourly/hourly ones, not both"
        )
    families = {p.fmt.family for p in parsed}
    if len(families) > 1:
        raise FluxDataError(
            f"cannot mix AmeriFlux BASE and FLUXNET-style files in one read: "
            f"{', '.join(p.source.name for p in parsed)}"
        )
    resolution = resolutions.pop()
    family = families.pop()
    resolved_site = _resolve_site_id(parsed, site_id)
    time_column = "date" if resolution == "DD" else "TIMESTAMP_START"
    _check_no_overlap(parsed, time_column)
    records = pd.concat([p.frame for p in parsed], ignore_index=True)
    records = records.sort_values(time_column, kind="stable", ignore_index=True)
    if family == "AMERIFLUX_BASE" and MEASURED_COLUMN in records.columns:
        records[MEASURED_COLUMN] = np.isfinite(records[MEASURED_COLUMN].to_numpy()).astype(float)
    if "GPP_PI" in records.columns:
        records = records.rename(columns={"GPP_PI": "GPP_NT"})  # aggregated like any GPP column

    if resolution == "DD":
        daily = records.drop(columns="TIMESTAMP")
        if QC_FLAG_COLUMN in daily.columns:
            qc = daily.pop(QC_FLAG_COLUMN).to_numpy(dtype=float)
            outside = np.isfinite(qc) & ((qc < 0) | (qc > 1))
            if outside.any():
                row = int(np.flatnonzero(outside)[0])
                raise FluxDataError(
                    f"flux files {', '.join(s.name for s in sources)}: NEE_VUT_REF_QC is "
                    f"{qc[row]} on {pd.Timestamp(daily['date'].iloc[row]).date()}; in DD files it "
                    f"must be a fraction in [0, 1]"
                )
            daily["GPP_qc"] = qc
        else:
            daily["GPP_qc"] = np.nan
    else:
        daily = aggregate_to_daily(
            records,
            step_minutes=STEP_MINUTES[resolution],
            min_coverage=min_coverage,
            qc_flag_max=qc_flag_max,
        ).drop(columns="n_records")

    table = _finish_table(daily, family, gpp_method, resolved_site)
    if table["GPP_qc"].isna().all():
        qc_source = "none"
    elif family == "FLUXNET":
        qc_source = _FLUXNET_QC
    else:
        qc_source = f"fraction of records with measured {_measured_column_name(parsed)}"
    table.attrs.update(
        {
            "site_id": resolved_site,
            "source_files": [str(s.resolve()) for s in sources],
            "resolution_in": resolution,
            "qc_source": qc_source,
            "units": {c: UNITS[c] for c in table.columns if c in UNITS},
        }
    )
    return table


def _measured_column_name(parsed: list[_ParsedFile]) -> str:
    """Name of the AmeriFlux column whose presence marks a measured record."""
    for base in _AMERIFLUX_MEASURED_BASES:
        found = _pick_ameriflux_column(parsed[0].fmt.columns, base, want_filled=False)
        if found is not None:
            return found
    return "flux"


def _finish_table(daily: pd.DataFrame, family: str, gpp_method: str, site_id: str) -> pd.DataFrame:
    """Choose GPP, compute GPP_unc and order the tidy columns."""
    n = len(daily)
    nan = np.full(n, np.nan)
    fallback = {"NT_missing_used_DT": 0, "DT_missing_used_NT": 0}
    if family == "AMERIFLUX_BASE":
        gpp = daily["GPP_NT"].to_numpy(dtype=float)
        gpp_nt = gpp_dt = nan
        method = "PI"
        note = "AmeriFlux BASE: GPP is the PI's partitioning; no NT/DT available"
    else:
        gpp_nt = daily["GPP_NT"].to_numpy(dtype=float) if "GPP_NT" in daily else nan
        gpp_dt = daily["GPP_DT"].to_numpy(dtype=float) if "GPP_DT" in daily else nan
        method = gpp_method
        note = None
        if gpp_method == "NT":
            gpp = gpp_nt
        elif gpp_method == "DT":
            gpp = gpp_dt
        else:
            nt_ok, dt_ok = np.isfinite(gpp_nt), np.isfinite(gpp_dt)
            gpp = np.where(nt_ok & dt_ok, (gpp_nt + gpp_dt) / 2, np.where(nt_ok, gpp_nt, gpp_dt))
            fallback = {
                "NT_missing_used_DT": int((~nt_ok & dt_ok).sum()),
                "DT_missing_used_NT": int((nt_ok & ~dt_ok).sum()),
            }
            if "GPP_NT" not in daily or "GPP_DT" not in daily:
                note = f"only {'GPP_NT' if 'GPP_NT' in daily else 'GPP_DT'} in the file(s); GPP is that one"
    table = pd.DataFrame(
        {
            "site_id": pd.Series([site_id] * n, dtype=object),
            "date": pd.to_datetime(daily["date"].to_numpy()).astype("datetime64[ns]"),
            "GPP": gpp,
            "GPP_NT": gpp_nt,
            "GPP_DT": gpp_dt,
            "GPP_unc": np.abs(gpp_nt - gpp_dt) / 2,
            "GPP_qc": daily["GPP_qc"].to_numpy(dtype=float),
        }
    )
    for column in TIDY_COLUMNS[7:]:
        table[column] = daily[column].to_numpy(dtype=float) if column in daily else nan
    for column in OPTIONAL_COLUMNS:
        if column in daily:
            table[column] = daily[column].to_numpy(dtype=float)
    table.attrs["gpp_method"] = method
    table.attrs["gpp_fallback_days"] = fallback
    if note:
        table.attrs["gpp_note"] = note
    return table
