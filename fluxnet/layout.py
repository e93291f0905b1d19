"""How a flux table is laid out: header, delimiter, units row, stated units; reading its columns.

Text files are probed from their first 64 KiB: comment lines (``#``) before
the header (AmeriFlux BASE), the header line and its delimiter, and an
optional units row right after the header (REddyProc, European Fluxes
Database exports), recognised by its content: most of its non-empty cells are
not numbers, where data rows are numbers. Units are also read from
Parquet/Feather field metadata (``units``/``unit``) and from column names
(``NEE [umol m-2 s-1]``, ``TA (degC)``, ``VPD_f_kPa``). Nothing here decides
what a column means; :mod:`fluxnet.families` does.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

from fluxnet.errors import FluxDataError
from fluxnet.sources import Source, buffer_of
from fluxnet.units import NAME_UNIT_TOKENS, is_unstated

HEADER_PROBE_BYTES = 1 << 16
"""Bytes read to find the header, the delimiter, a units row and sample rows."""

SAMPLE_ROWS = 64
"""Data rows kept in :attr:`Layout.sample` (timestamps and record length are sniffed from them)."""

NULL_VALUES: tuple[str, ...] = ("", "NA", "NaN", "nan", "NAN", "-9999", "-9999.0", "-9999.00", "-9999.000")
"""Cells read as missing. -9999 is the missing-value code of FLUXNET, AmeriFlux, ICOS, EFDC and REddyProc."""

DELIMITERS: dict[str, str] = {",": "commas", "\t": "tabs", ";": "semicolons", "|": "pipes"}
"""Field separators recognised in a header, with their names for messages."""

_UNIT_METADATA_KEYS = (b"units", b"unit", b"UNITS", b"UNIT", b"Units", b"Unit")
_BRACKETED_UNIT = re.compile(r"^(?P<base>.+?)\s*[\[(](?P<unit>[^\])]+)[\])]\s*$")
_SITE_COMMENT = re.compile(r"^#\s*site(?:_id)?\s*[:=]\s*(?P<site>\S+)", re.IGNORECASE)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Layout:
    """The physical layout of one flux table.

    Attributes:
        columns: Column names as written (stripped; duplicates numbered ``.1``).
        base_names: The same names without a unit annotation (``VPD_kPa`` -> ``VPD``).
        delimiter: Field separator of a text file; None for Parquet/Feather.
        header_line: 0-based line of the header (comment lines come before it).
        has_units_row: A units row follows the header.
        stated_units: Column -> (unit, where it was stated) for units given by the file.
        sample_lines: The first data lines of a text file (parsed on demand by :meth:`sample`).
        sample_table: The first rows of a Parquet/Feather table, or None.
        site_hint: Site id stated in header comments (``# Site: US-Ha1``), or None.
        row_word: ``"line"`` (text) or ``"row"`` (tables), for messages.
    """

    columns: tuple[str, ...]
    base_names: tuple[str, ...]
    delimiter: str | None
    header_line: int
    has_units_row: bool
    stated_units: Mapping[str, tuple[str, str]]
    sample_lines: tuple[str, ...]
    sample_table: pa.Table | None
    site_hint: str | None = None
    row_word: str = "line"
    _by_base: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for column, base in zip(self.columns, self.base_names, strict=True):
            self._by_base.setdefault(base, column)

    @property
    def skip_rows(self) -> int:
        """Physical lines before the first data line (comments, header, units row)."""
        return self.header_line + 1 + int(self.has_units_row) if self.delimiter is not None else 0

    @property
    def first_data_line(self) -> int:
        """1-based line (or row) number of the first data record, for messages."""
        return self.skip_rows + 1

    def column(self, base: str) -> str:
        """The file's column whose base name is ``base``."""
        return self._by_base[base]

    def sample(self, columns: Sequence[str]) -> pa.Table:
        """The first data rows of ``columns``: text (text files) or as stored (tables); empty when they do not parse."""
        if self.sample_table is not None:
            return self.sample_table.select(list(columns))
        empty = pa.table({c: pa.array([], pa.string()) for c in columns})
        if not self.sample_lines or self.delimiter is None:
            return empty
        try:
            return pacsv.read_csv(
                pa.BufferReader("\n".join(self.sample_lines).encode()),
                read_options=pacsv.ReadOptions(column_names=list(self.columns)),
                parse_options=pacsv.ParseOptions(delimiter=self.delimiter),
                convert_options=pacsv.ConvertOptions(include_columns=list(columns), column_types=dict.fromkeys(columns, pa.string()),
                                                     null_values=list(NULL_VALUES), strings_can_be_null=True),
            )
        except pa.ArrowInvalid:
            return empty  # the full read reports why, with the line


def _not_utf8_error(label: str, data: bytes, err: UnicodeDecodeError) -> FluxDataError:
    line = data[: err.start].count(b"\n") + 1
    return FluxDataError(
        f"flux file {label} is not UTF-8 text: byte 0x{data[err.start]:02x} on line {line} "
        f"(offset {err.start}); FLUXNET files are ASCII/UTF-8 CSV - re-save it as UTF-8"
    )


def _unique(names: list[str]) -> tuple[str, ...]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}.{count}")
    return tuple(out)


def split_name_unit(name: str) -> tuple[str, str | None]:
    """Split a unit annotation off a column name.

    Args:
        name: A column name: ``NEE [umol m-2 s-1]``, ``TA (degC)``,
            ``VPD_f_kPa`` (last ``_`` token in :data:`~fluxnet.units.NAME_UNIT_TOKENS`) or plain.

    Returns:
        ``(base name, unit)``; the unit is None when the name states none.
    """
    bracketed = _BRACKETED_UNIT.match(name)
    if bracketed:
        return bracketed["base"], bracketed["unit"].strip()
    base, _, token = name.rpartition("_")
    if base and token in NAME_UNIT_TOKENS:
        return base, token
    return name, None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _is_units_row(cells: list[str]) -> bool:
    """A row right after the header whose non-missing cells are mostly not numbers."""
    filled = [cell.strip() for cell in cells if cell.strip() not in NULL_VALUES]
    if not filled:
        return False
    numbers = sum(_is_number(cell) for cell in filled)
    return numbers < len(filled) / 2


def _stated_units(columns: tuple[str, ...], units_row: list[str] | None) -> tuple[tuple[str, ...], dict[str, tuple[str, str]]]:
    bases = []
    stated: dict[str, tuple[str, str]] = {}
    for position, column in enumerate(columns):
        base, unit = split_name_unit(column)
        bases.append(base)
        if unit is not None:
            stated[column] = (unit, "column name")
        if units_row is not None and position < len(units_row) and not is_unstated(units_row[position]):
            stated[column] = (units_row[position].strip(), "units row")
    return tuple(bases), stated


def _probe_text(source: Source) -> Layout:
    with source.open() as stream:
        probe = stream.read(HEADER_PROBE_BYTES + 1)
    whole_file = len(probe) <= HEADER_PROBE_BYTES
    probe = probe[:HEADER_PROBE_BYTES]
    if not probe.strip():
        raise FluxDataError(f"flux file {source.label} is empty; expected a flux table (CSV) with a header line")
    try:
        text = probe.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        if whole_file or err.start < len(probe) - 4:  # not a character cut by the probe
            raise _not_utf8_error(source.label, probe, err) from None
        text = probe[: err.start].decode("utf-8-sig")
    lines = _LINE_BREAK.split(text)
    if not whole_file:
        lines = lines[:-1]  # possibly cut by the probe
    header_index = next((i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")), None)
    if header_index is None:
        raise FluxDataError(f"flux file {source.label} holds only comment lines, no header")
    site_hint = next((m["site"] for line in lines[:header_index] if (m := _SITE_COMMENT.match(line.strip()))), None)
    header = lines[header_index]
    delimiter = max(DELIMITERS, key=header.count) if any(d in header for d in DELIMITERS) else ","
    columns = _unique([name.strip() for name in next(csv.reader([header], delimiter=delimiter))])
    body = [line for line in lines[header_index + 1 :] if line.strip()][: SAMPLE_ROWS + 1]
    units_cells = next(csv.reader([body[0]], delimiter=delimiter)) if body else None
    has_units_row = units_cells is not None and _is_units_row(units_cells)
    if has_units_row:
        body = body[1:]
    bases, stated = _stated_units(columns, units_cells if has_units_row else None)
    return Layout(
        columns=columns,
        base_names=bases,
        delimiter=delimiter,
        header_line=header_index,
        has_units_row=has_units_row,
        stated_units=stated,
        sample_lines=tuple(body[:SAMPLE_ROWS]),
        sample_table=None,
        site_hint=site_hint,
    )


def _field_unit(schema_field: pa.Field) -> str | None:
    metadata = schema_field.metadata or {}
    for key in _UNIT_METADATA_KEYS:
        if key in metadata:
            unit: str = metadata[key].decode("utf-8", "replace")
            return unit
    return None


def _read_table_file(source: Source, columns: list[str] | None) -> pa.Table:
    buffer = buffer_of(source)
    try:
        if source.kind == "parquet":
            return pq.read_table(buffer, columns=columns)
        return feather.read_table(buffer, columns=columns)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as err:
        raise FluxDataError(f"flux file {source.label}: could not read the {source.kind} table: {err}") from None


def _probe_table(source: Source) -> Layout:
    table = _read_table_file(source, None) if source.kind == "feather" else None
    if table is None:
        try:
            parquet = pq.ParquetFile(buffer_of(source))
            schema = parquet.schema_arrow
            batches = parquet.iter_batches(batch_size=SAMPLE_ROWS)
            sample = pa.Table.from_batches([next(batches)], schema=schema) if parquet.metadata.num_rows else schema.empty_table()
        except (pa.ArrowInvalid, OSError) as err:
            raise FluxDataError(f"flux file {source.label}: could not read the Parquet table: {err}") from None
    else:
        schema, sample = table.schema, table.slice(0, SAMPLE_ROWS)
    columns = tuple(schema.names)
    bases, stated = _stated_units(columns, None)
    for schema_field in schema:
        unit = _field_unit(schema_field)
        if not is_unstated(unit):
            stated[schema_field.name] = (str(unit).strip(), f"{source.kind} field metadata")
    return Layout(columns, bases, None, 0, False, stated, (), sample, row_word="row")


def probe_layout(source: Source) -> Layout:
    """Probe a flux table's layout without reading all of it.

    Args:
        source: The table (see :func:`fluxnet.sources.open_sources`).

    Returns:
        Its :class:`Layout`.

    Raises:
        FluxDataError: Empty, not UTF-8, only comments, or an unreadable
            Parquet/Feather table.
    """
    return _probe_text(source) if source.kind == "text" else _probe_table(source)


def _parse_error(source: Source, layout: Layout, err: Exception) -> FluxDataError:
    """One-line message for a CSV parse failure: the column by name and the probable cause."""
    data = source.read_bytes()  # error path only: name a non-UTF-8 byte precisely
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as decode_error:
        return _not_utf8_error(source.label, data, decode_error)
    message = str(err).splitlines()[0]
    column_number = re.search(r"CSV column #(\d+)", message)
    if column_number and int(column_number[1]) < len(layout.columns):
        name = layout.columns[int(column_number[1])]
        message = message.replace(column_number[0], f"CSV column {name!r}")
    hint = ""
    if "Expected" in message and "columns, got" in message:
        hint = (
            " (a row has another number of fields than the header: a truncated download or a stray "
            f"{DELIMITERS.get(layout.delimiter or ',', 'delimiter').rstrip('s')}; re-download or fix that row)"
        )
    return FluxDataError(f"flux file {source.label}: could not parse: {message}{hint}")


def read_columns(source: Source, layout: Layout, types: Mapping[str, pa.DataType]) -> pa.Table:
    """Read some columns of a flux table.

    Args:
        source: The table.
        layout: Its layout (from :func:`probe_layout`).
        types: Column -> arrow type to read it as (text files; Parquet/Feather
            columns are cast to it).

    Returns:
        The columns, in the order of ``types``; cells in :data:`NULL_VALUES` are null.

    Raises:
        FluxDataError: A row with another number of fields, a value that is
            not a number, non-UTF-8 bytes, or a table without data rows.
    """
    if source.kind == "text":
        read_options = pacsv.ReadOptions(column_names=list(layout.columns), skip_rows=layout.skip_rows)
        parse_options = pacsv.ParseOptions(delimiter=layout.delimiter)
        convert_options = pacsv.ConvertOptions(include_columns=list(types), column_types=dict(types),
                                               null_values=list(NULL_VALUES), strings_can_be_null=True,
                                               quoted_strings_can_be_null=True)
        try:
            if source.is_plain_file:
                table = pacsv.read_csv(str(source.path), read_options=read_options, parse_options=parse_options,
                                       convert_options=convert_options)
            else:
                with source.open() as stream:
                    table = pacsv.read_csv(stream, read_options=read_options, parse_options=parse_options,
                                           convert_options=convert_options)
        except (pa.ArrowInvalid, pa.ArrowKeyError, UnicodeDecodeError) as err:
            raise _parse_error(source, layout, err) from None
    else:
        raw = _read_table_file(source, list(types))
        try:
            table = pa.table({name: _cast(raw.column(name), kind) for name, kind in types.items()})
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            raise FluxDataError(f"flux file {source.label}: could not read its columns as numbers: {err}") from None
    if table.num_rows == 0:
        raise FluxDataError(f"flux file {source.label} has a header but no data rows")
    return table


def _cast(column: pa.ChunkedArray, kind: pa.DataType) -> pa.ChunkedArray:
    """Cast a stored column; time columns (read as strings from text) keep their stored type."""
    if kind == pa.string() and not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        return column
    return column.cast(kind)
