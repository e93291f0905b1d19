"""Site tables: the project's ``sites.csv``, FLUXNET BIF metadata, site information.

The site-information table is the whitespace-separated FLUXNET list.

Every reader returns one row per site with at least ``site_id, lat, lon``
(decimal degrees, WGS84). Bad input raises :class:`~fluxnet.errors.FluxDataError`
naming the file, the site and the column.

``sites.csv`` ids are checked once, here (:func:`site_id_problem`): they name
files, folders, CV folds and report rows, so they are read as text (``NA``,
``001`` and ``1e3`` stay what they are), kept to a safe character set and
unique regardless of case.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from fluxnet.errors import FluxDataError

REQUIRED_SITE_COLUMNS: tuple[str, ...] = ("site_id", "lat", "lon")
"""Columns every ``sites.csv`` must have."""

PATH_COLUMN_SUFFIX = "_path"
"""Any column ending in this suffix (or with ``_path_NAME``) names a file (or folder) relative to the CSV."""

MULTI_PATH_COLUMNS: frozenset[str] = frozenset({"flux_path", "indices_path", "s2_path", "s1_path"})
"""Path columns whose cells may list several files separated by ``;``."""

PATH_LIST_SEPARATOR = ";"

SITE_ID_MAX_LENGTH = 64
SITE_ID_CHARACTERS = "letters A-Z/a-z, digits, '-', '_' and '.'"
_SITE_ID = re.compile(r"[A-Za-z0-9_-](?:[A-Za-z0-9._-]*[A-Za-z0-9_-])?")

HEIGHT_COLUMNS: tuple[str, ...] = ("measurement_height", "canopy_height")
"""Optional tower heights (m) of ``sites.csv`` (the footprint model needs them)."""
NUMERIC_SITE_COLUMNS: tuple[str, ...] = ("lat", "lon", *HEIGHT_COLUMNS)
"""Columns of ``sites.csv`` read as numbers (every other column stays text)."""

MISSING_WORDS: frozenset[str] = frozenset({"", "na", "n/a", "nan", "null"})
"""Cells of a numeric column that mean "not given" (compared lower-cased); text columns keep them as text."""


def is_path_column(column: str) -> bool:
    """Whether a sites-table column holds paths: ``*_path`` or a named variant ``*_path_NAME`` (``features_path_s2only``)."""
    return column.endswith(PATH_COLUMN_SUFFIX) or (PATH_COLUMN_SUFFIX + "_") in column


_TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
_FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", ""})


def split_path_list(cell: object) -> list[str]:
    """Split a ``flux_path`` cell (``;``-separated) into a list of paths.

    Args:
        cell: A value of a path column as returned by :func:`read_sites_csv`
            (a string, or NaN when not given).

    Returns:
        The paths in file order; an empty list when the cell is NaN or empty.
    """
    if not isinstance(cell, str):
        return []
    return [part.strip() for part in cell.split(PATH_LIST_SEPARATOR) if part.strip()]


def _read_text(path: Path, what: str) -> str:
    """Read a small text table as UTF-8 with errors naming the file."""
    if not path.is_file():
        raise FluxDataError(f"{what} {path} does not exist (or is not a file)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise FluxDataError(
            f"{what} {path} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset "
            f"{err.start}); re-save it as UTF-8"
        ) from None
    if not text.strip():
        raise FluxDataError(f"{what} {path} is empty; expected a header line and one row per site")
    return text


def _where(source: Path, lines: np.ndarray | None, row: int) -> str:
    """``"<file>: line 7"`` (or ``"<file>"`` when the table has no line numbers)."""
    return f"{source}: line {int(lines[row])}" if lines is not None else str(source)


def _numeric_column(table: pd.DataFrame, column: str, source: Path, lines: np.ndarray | None, expected: str) -> np.ndarray:
    """Parse a text column as floats: :data:`MISSING_WORDS` (and NaN) become NaN, other text is an error naming the row."""
    as_text = table[column].fillna("").astype(str).str.strip()
    values = pd.to_numeric(as_text, errors="coerce")
    bad = values.isna() & ~as_text.str.lower().isin(MISSING_WORDS)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        text = as_text.iloc[row]
        hint = f"; a decimal comma? write {text.replace(',', '.')}" if "," in text else ""
        raise FluxDataError(
            f"{_where(source, lines, row)}: {column} of site {table['site_id'].iloc[row]!r} is "
            f"{text!r}, not a number ({expected} expected{hint})"
        )
    return values.to_numpy(dtype=float)


def _check_lat_lon(
    table: pd.DataFrame, source: Path, lines: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse lat/lon as floats and check their ranges, hinting at swapped columns.

    An empty cell stays NaN (the site has no position: the GPP join skips it and says so);
    text that is not a number is an error. ``lines``: the 1-based line of each row, for messages.
    """
    lat = _numeric_column(table, "lat", source, lines, "decimal degrees")
    lon = _numeric_column(table, "lon", source, lines, "decimal degrees")
    with np.errstate(invalid="ignore"):
        bad_lat = (lat < -90) | (lat > 90)
        bad_lon = (lon < -180) | (lon > 180)
    out_of_range = bad_lat | bad_lon
    if out_of_range.any():
        row = int(np.flatnonzero(out_of_range)[0])
        site = table["site_id"].iloc[row]
        column, value, bounds = (
            ("lat", lat[row], "[-90, 90]") if bad_lat[row] else ("lon", lon[row], "[-180, 180]")
        )
        swapped_fits = -90 <= lon[row] <= 90 and -180 <= lat[row] <= 180
        hint = " (lat/lon swapped? swapping them would give a valid position)" if swapped_fits else ""
        raise FluxDataError(
            f"{_where(source, lines, row)}: {column} of site {site!r} is {value}, outside {bounds}{hint}"
        )
    return lat, lon


def site_id_problem(site_id: str) -> str | None:
    """Why ``site_id`` is not a safe identifier, or None when it is.

    Safe: 1-64 ASCII letters, digits, ``-``, ``_`` and ``.``, neither starting nor ending
    with ``.``. Ids name files, folders and CV folds, and appear in HTML, Markdown and CSV
    outputs: so no path separators, no ``..`` prefix, no whitespace, no markup.
    """
    if not site_id:
        return "is empty"
    if len(site_id) > SITE_ID_MAX_LENGTH:
        return f"has {len(site_id)} characters (at most {SITE_ID_MAX_LENGTH})"
    if _SITE_ID.fullmatch(site_id):
        return None
    if site_id.startswith(".") or site_id.endswith("."):
        return "starts or ends with '.' (a hidden file, '..' or a name Windows shortens)"
    bad = next(c for c in site_id if not (c.isascii() and (c.isalnum() or c in "-_.")))
    what = {"/": "a path separator '/'", "\\": "a path separator '\\'"}.get(
        bad, "whitespace" if bad.isspace() else f"the character {bad!r}"
    )
    return f"contains {what}"


def _read_rows(text: str, source: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, rows (text cells, short rows padded with ``""``) and the 1-based first line of each row.

    Blank lines are skipped. A row with more fields than the header is refused: pandas would
    shift its cells (or the whole table, when every row has one more) into the wrong columns.
    """
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    last = 0
    try:
        for record in reader:
            first, last = last + 1, reader.line_num
            cells = [cell.strip() for cell in record]
            if not any(cells):
                continue
            if header is None:
                header = cells
                continue
            if len(cells) > len(header):
                raise FluxDataError(
                    f"{source}: line {first} has {len(cells)} fields but the header has {len(header)} "
                    f"({', '.join(header)}); a decimal comma (45,1) or an unquoted ',' splits a cell: "
                    f"write decimals with '.' or quote the cell (\"...\")"
                )
            rows.append(cells + [""] * (len(header) - len(cells)))
            lines.append(first)
    except csv.Error as err:
        raise FluxDataError(
            f"{source}: line {reader.line_num} is not valid CSV ({err}); close the quote or remove the stray '\"'"
        ) from None
    if header is None:
        raise FluxDataError(f"sites file {source} is empty; expected a header line and one row per site")
    return header, rows, lines


def _named_columns(header: list[str], rows: list[list[str]], source: Path) -> tuple[list[str], list[list[str]]]:
    """Refuse repeated column names; drop columns without a name whose cells are all empty (a trailing ',')."""
    seen = {name for name in header if name and header.count(name) > 1}
    if seen:
        raise FluxDataError(
            f"{source}: the header names column(s) {', '.join(sorted(seen))} more than once; give each column one name"
        )
    keep = []
    for i, name in enumerate(header):
        if name:
            keep.append(i)
        elif any(row[i] for row in rows):
            raise FluxDataError(
                f"{source}: column {i + 1} has no name in the header but holds values; name it or remove it"
            )
    return [header[i] for i in keep], [[row[i] for i in keep] for row in rows]


def _check_site_ids(ids: pd.Series, lines: np.ndarray, source: Path) -> None:
    """Every id safe (:func:`site_id_problem`) and unique, also ignoring case."""
    seen: dict[str, int] = {}
    for row, sid in enumerate(ids):
        line = int(lines[row])
        if sid == "":
            raise FluxDataError(f"{source}: site_id is empty on line {line}")
        problem = site_id_problem(sid)
        if problem:
            raise FluxDataError(
                f"{source}: line {line}: site_id {sid!r} {problem}; use 1-{SITE_ID_MAX_LENGTH} "
                f"{SITE_ID_CHARACTERS}, not starting or ending with '.'"
            )
        key = sid.lower()
        if key in seen:
            other = ids.iloc[seen[key]]
            if other == sid:
                raise FluxDataError(
                    f"{source}: duplicated site_id {sid!r} (lines {int(lines[seen[key]])} and {line}); each site "
                    f"must appear once (list several flux files in one flux_path cell, separated by ';')"
                )
            raise FluxDataError(
                f"{source}: site_ids {other!r} (line {int(lines[seen[key]])}) and {sid!r} (line {line}) differ "
                f"only in case, so they would be two sites of a site-level CV: use one spelling for one site, "
                f"or distinct ids for distinct sites"
            )
        seen[key] = row


def _check_shared_flux(table: pd.DataFrame, lines: np.ndarray, source: Path) -> None:
    """Refuse two sites whose flux files overlap (the same file, also via a link or another spelling)."""
    owner: dict[tuple[int, int], int] = {}
    for row, cell in enumerate(table["flux_path"]):
        for path in split_path_list(cell):
            info = os.stat(path)
            key = (info.st_dev, info.st_ino)
            first = owner.setdefault(key, row)
            if first != row:
                raise FluxDataError(
                    f"{source}: sites {table['site_id'].iloc[first]!r} (line {int(lines[first])}) and "
                    f"{table['site_id'].iloc[row]!r} (line {int(lines[row])}) share the flux file {path}, so "
                    f"leave-one-site-out would test a tower on its own data: give each tower one row (several "
                    f"files go in one flux_path cell, separated by ';'), or pass --allow-shared-flux "
                    f"(allow_shared_flux=True) when the file is an archive holding each site's own tables"
                )


def _parse_bool_column(table: pd.DataFrame, column: str, source: Path) -> np.ndarray:
    words = table[column].astype(str).str.strip().str.lower()
    unknown = ~words.isin(_TRUE_WORDS | _FALSE_WORDS)
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise FluxDataError(
            f"{source}: {column} of site {table['site_id'].iloc[row]!r} is "
            f"{table[column].iloc[row]!r}; expected true/false (or 1/0, yes/no, empty = false)"
        )
    return words.isin(_TRUE_WORDS).to_numpy()


def _resolve_one_path(
    raw: str, folder: Path, site: str, column: str, source: Path, allow_absolute_paths: bool
) -> str:
    """Resolve one path cell relative to the CSV folder and check it exists."""
    expanded = os.path.expanduser(raw)
    is_absolute = os.path.isabs(expanded) or expanded != raw
    if is_absolute and not allow_absolute_paths:
        raise FluxDataError(
            f"{source}: {column} of site {site!r} is the absolute path {raw!r}; paths must be "
            f"relative to the CSV's folder (pass allow_absolute_paths=True to accept it)"
        )
    resolved = (folder / expanded).resolve()
    if not allow_absolute_paths and not resolved.is_relative_to(folder):
        raise FluxDataError(
            f"{source}: {column} of site {site!r} is {raw!r}, which leaves the CSV's folder "
            f"{folder} (via '..'); move the file below that folder or pass "
            f"allow_absolute_paths=True"
        )
    if not resolved.exists():
        raise FluxDataError(
            f"{source}: {column} of site {site!r} names {raw!r}, but {resolved} does not exist"
        )
    return str(resolved)


def read_sites_csv(
    path: str | os.PathLike[str], *, allow_absolute_paths: bool = False, allow_shared_flux: bool = False
) -> pd.DataFrame:
    """Read and validate the project's ``sites.csv``.

    The file has one row per site. Required columns: ``site_id`` (str),
    ``lat`` and ``lon`` (decimal degrees, WGS84). Optional: ``igbp`` (IGBP
    land-cover class), ``synthetic`` (bool; true/false, 1/0, yes/no, empty =
    false), ``measurement_height`` and ``canopy_height`` (m) and any number of
    ``*_path`` columns (``flux_path``, ``features_path``, ``s2_path``,
    ``s1_path``, ...). Other columns are kept as text.

    Every cell is read as text first, so ids such as ``NA``, ``001`` or
    ``1e3`` stay as written; only :data:`NUMERIC_SITE_COLUMNS` become numbers
    (:data:`MISSING_WORDS` there mean "not given" and become NaN). Site ids
    are checked once (:func:`site_id_problem`): a safe character set, and
    unique also when case is ignored (``US-Ha1`` and ``us-ha1`` would be two
    sites of a leave-one-site-out CV although they are one tower).

    Path cells are resolved relative to the CSV's folder and returned as
    absolute strings; an empty cell means "not given" and becomes NaN.
    ``flux_path`` may list several files separated by ``;`` (returned joined
    by ``;``, each resolved; split with :func:`split_path_list`).

    Args:
        path: The ``sites.csv`` file (UTF-8, comma-separated).
        allow_absolute_paths: Accept absolute paths, ``~`` and paths that
            leave the CSV's folder via ``..``. Off by default so that a
            project folder stays self-contained and relocatable.
        allow_shared_flux: Accept two sites naming the same flux file (an
            archive holding each site's own tables). Off by default: two rows
            on one tower's records make site-level CV test a tower on its own data.

    Returns:
        One row per site, in file order: ``site_id`` (str), ``lat``, ``lon``
        (float), ``igbp`` (str or NaN, when present), ``synthetic`` (bool,
        when present), ``measurement_height``/``canopy_height`` (float, when
        present), the path columns (absolute str or NaN) and any other
        columns as text.

    Raises:
        FluxDataError: Empty file, a row with more fields than the header (a
            decimal comma), a repeated or unnamed column, missing required
            columns (listing what was found), an empty, unsafe or duplicated
            ``site_id`` (also one differing only in case), non-numeric or
            out-of-range lat/lon (with a hint when they look swapped), a bad
            ``synthetic`` value, an absolute or escaping path, a referenced
            file that does not exist, or two sites sharing a flux file. Each
            message is one line naming the file, the line or site and the remedy.
    """
    source = Path(path)
    text = _read_text(source, "sites file")
    folder = source.resolve().parent
    first_line = text.lstrip().splitlines()[0]
    if "," not in first_line and (";" in first_line or "\t" in first_line):
        raise FluxDataError(
            f"{source}: the header {first_line!r} is not comma-separated; sites.csv must use ','"
        )
    header, rows, line_numbers = _read_rows(text, source)
    header, rows = _named_columns(header, rows, source)
    missing = [c for c in REQUIRED_SITE_COLUMNS if c not in header]
    if missing:
        raise FluxDataError(
            f"{source}: missing required column(s) {', '.join(missing)}; found columns: "
            f"{', '.join(header)} (required: {', '.join(REQUIRED_SITE_COLUMNS)})"
        )
    if not rows:
        raise FluxDataError(f"{source}: has a header but no site rows")
    table = pd.DataFrame(rows, columns=header, dtype=object)
    lines = np.asarray(line_numbers)
    _check_site_ids(table["site_id"], lines, source)
    table["lat"], table["lon"] = _check_lat_lon(table, source, lines)
    for column in [c for c in HEIGHT_COLUMNS if c in table.columns]:
        table[column] = _numeric_column(table, column, source, lines, "metres")
    if "igbp" in table.columns:
        table["igbp"] = table["igbp"].where(table["igbp"] != "", np.nan)
    if "synthetic" in table.columns:
        table["synthetic"] = _parse_bool_column(table, "synthetic", source)
    for column in [c for c in table.columns if is_path_column(c)]:
        resolved_cells: list[object] = []
        for site, cell in zip(table["site_id"], table[column], strict=True):
            if cell == "":
                resolved_cells.append(np.nan)
                continue
            parts = split_path_list(cell) if column in MULTI_PATH_COLUMNS else [cell]
            resolved = [
                _resolve_one_path(p, folder, site, column, source, allow_absolute_paths)
                for p in parts
            ]
            resolved_cells.append(PATH_LIST_SEPARATOR.join(resolved))
        table[column] = pd.Series(resolved_cells, index=table.index, dtype=object)
    if "flux_path" in table.columns and not allow_shared_flux:
        _check_shared_flux(table, lines, source)
    table.attrs["source_file"] = str(source.resolve())
    return table


# --- FLUXNET BIF ---------------------------------------------------------

BIF_COLUMNS: tuple[str, ...] = ("SITE_ID", "GROUP_ID", "VARIABLE_GROUP", "VARIABLE", "DATAVALUE")
_BIF_VARIABLES = {
    "LOCATION_LAT": "lat",
    "LOCATION_LONG": "lon",
    "IGBP": "igbp",
    "UTC_OFFSET": "utc_offset",
}


def read_bif(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read FLUXNET BADM Interchange Format (BIF) site metadata.

    The BIF is a long table (``SITE_ID, GROUP_ID, VARIABLE_GROUP, VARIABLE,
    DATAVALUE``); this pivots the variables ``LOCATION_LAT``,
    ``LOCATION_LONG``, ``IGBP`` and ``UTC_OFFSET`` to one row per site. When
    a variable is reported more than once for a site, the first value wins.
    Files in the ``.xlsx`` release must be exported to CSV first.

    Args:
        path: BIF file as CSV (UTF-8).

    Returns:
        ``site_id`` (str), ``lat``, ``lon`` (decimal degrees), ``igbp`` (str),
        ``utc_offset`` (hours from UTC of the local standard time used by the
        flux timestamps), sorted by ``site_id``; missing values NaN.

    Raises:
        FluxDataError: Missing BIF columns, no location variables, or
            non-numeric / out-of-range coordinates.
    """
    source = Path(path)
    text = _read_text(source, "BIF file")
    long = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    long.columns = [str(c).strip().upper() for c in long.columns]
    missing = [c for c in BIF_COLUMNS if c not in long.columns]
    if missing:
        raise FluxDataError(
            f"{source}: not a BIF table, missing column(s) {', '.join(missing)}; found "
            f"{', '.join(long.columns)}"
        )
    long = long[long["VARIABLE"].str.strip().isin(_BIF_VARIABLES)]
    if long.empty:
        raise FluxDataError(
            f"{source}: no {', '.join(_BIF_VARIABLES)} rows; cannot locate any site"
        )
    long = long.assign(
        SITE_ID=long["SITE_ID"].str.strip(),
        VARIABLE=long["VARIABLE"].str.strip(),
        DATAVALUE=long["DATAVALUE"].str.strip(),
    )
    wide = long.drop_duplicates(["SITE_ID", "VARIABLE"]).pivot(
        index="SITE_ID", columns="VARIABLE", values="DATAVALUE"
    )
    wide = wide.rename(columns=_BIF_VARIABLES).reset_index().rename(columns={"SITE_ID": "site_id"})
    for column in _BIF_VARIABLES.values():
        if column not in wide.columns:
            wide[column] = np.nan
    wide = wide[["site_id", "lat", "lon", "igbp", "utc_offset"]].copy()
    wide["lat"], wide["lon"] = _check_lat_lon(wide.fillna({"lat": "", "lon": ""}), source)
    wide["utc_offset"] = pd.to_numeric(wide["utc_offset"], errors="coerce")
    wide["igbp"] = wide["igbp"].replace("", np.nan)
    wide.columns.name = None
    return wide.sort_values("site_id", ignore_index=True)


# --- whitespace site-information table ----------------------------------

_SITE_INFO_COLUMNS = {
    "Site_name": "site_id",
    "IGBP": "igbp",
    "LAT": "lat",
    "LONG": "lon",
    "Year": "years",
    "measurement_height": "measurement_height_m",
    "canopy_height": "canopy_height_m",
}


def read_site_infos(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read the whitespace-separated FLUXNET site-information table.

    Format (as in ``fluxnet_site_infos.txt``): a header ``Site_name IGBP LAT
    LONG Year measurement_height canopy_height ...`` then one line per site.
    Only the leading columns are used (the trailing header names contain a
    stray space, so later columns are not aligned by name). Site names are
    cleaned of trailing dots (``CN-Gebi.`` -> ``CN-Gebi``).

    Args:
        path: The table (ASCII/UTF-8, whitespace-separated).

    Returns:
        ``site_id``, ``igbp``, ``lat``, ``lon`` (decimal degrees) and, when
        present, ``years`` (text such as ``2004~2014``),
        ``measurement_height_m`` and ``canopy_height_m`` (metres).

    Raises:
        FluxDataError: Header without Site_name/IGBP/LAT/LONG, short lines,
            non-numeric or out-of-range coordinates.
    """
    source = Path(path)
    text = _read_text(source, "site-information table")
    lines = [line.split() for line in text.splitlines() if line.strip()]
    header = lines[0]
    wanted = [name for name in _SITE_INFO_COLUMNS if name in header]
    missing = [n for n in ("Site_name", "IGBP", "LAT", "LONG") if n not in header]
    if missing:
        raise FluxDataError(
            f"{source}: header lacks {', '.join(missing)}; found {' '.join(header)}"
        )
    positions = [header.index(name) for name in wanted]
    rows = []
    for number, fields in enumerate(lines[1:], start=2):
        if len(fields) <= max(positions):
            raise FluxDataError(
                f"{source}: line {number} has {len(fields)} fields, expected at least "
                f"{max(positions) + 1}"
            )
        rows.append([fields[i] for i in positions])
    table = pd.DataFrame(rows, columns=[_SITE_INFO_COLUMNS[n] for n in wanted])
    table["site_id"] = table["site_id"].str.rstrip(".")
    table["lat"], table["lon"] = _check_lat_lon(table, source)
    for column in ("measurement_height_m", "canopy_height_m"):
        if column in table.columns:
            table[column] = pd.to_numeric(table[column], errors="coerce")
    ordered = ["site_id", "lat", "lon", "igbp"] + [
        c for c in ("years", "measurement_height_m", "canopy_height_m") if c in table.columns
    ]
    return table[ordered]
