"""Site tables: the project's ``sites.csv``, FLUXNET BIF metadata, site information.

The site-information table is the whitespace-separated FLUXNET list.

Every reader returns one row per site with at least ``site_id, lat, lon``
(decimal degrees, WGS84). Bad input raises :class:`~fluxnet.errors.FluxDataError`
naming the file, the site and the column.
"""

from __future__ import annotations

import io
import os
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


def _check_lat_lon(table: pd.DataFrame, source: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse lat/lon as floats and check their ranges, hinting at swapped columns.

    An empty cell stays NaN (the site has no position: the GPP join skips it and says so);
    text that is not a number is an error.
    """
    parsed: dict[str, np.ndarray] = {}
    for column in ("lat", "lon"):
        as_text = table[column].astype(str).str.strip()
        values = pd.to_numeric(as_text, errors="coerce")
        empty = table[column].isna() | as_text.isin(["", "nan", "NaN", "NA"])
        bad = values.isna() & ~empty
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise FluxDataError(
                f"{source}: {column} of site {table['site_id'].iloc[row]!r} is "
                f"{as_text.iloc[row]!r}, not a number (decimal degrees expected)"
            )
        parsed[column] = values.to_numpy(dtype=float)
    lat, lon = parsed["lat"], parsed["lon"]
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
            f"{source}: {column} of site {site!r} is {value}, outside {bounds}{hint}"
        )
    return lat, lon


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


def read_sites_csv(path: str | os.PathLike[str], *, allow_absolute_paths: bool = False) -> pd.DataFrame:
    """Read and validate the project's ``sites.csv``.

    The file has one row per site. Required columns: ``site_id`` (str),
    ``lat`` and ``lon`` (decimal degrees, WGS84). Optional: ``igbp`` (IGBP
    land-cover class), ``synthetic`` (bool; true/false, 1/0, yes/no, empty =
    false) and any number of ``*_path`` columns (``flux_path``,
    ``features_path``, ``s2_path``, ``s1_path``, ...). Other columns are kept
    as text.

    Path cells are resolved relative to the CSV's folder and returned as
    absolute strings; an empty cell means "not given" and becomes NaN.
    ``flux_path`` may list several files separated by ``;`` (returned joined
    by ``;``, each resolved; split with :func:`split_path_list`).

    Args:
        path: The ``sites.csv`` file (UTF-8, comma-separated).
        allow_absolute_paths: Accept absolute paths, ``~`` and paths that
            leave the CSV's folder via ``..``. Off by default so that a
            project folder stays self-contained and relocatable.

    Returns:
        One row per site, in file order: ``site_id`` (str), ``lat``, ``lon``
        (float), ``igbp`` (str or NaN, when present), ``synthetic`` (bool,
        when present), the path columns (absolute str or NaN) and any other
        columns as given.

    Raises:
        FluxDataError: Empty file, missing required columns (listing what was
            found), empty or duplicated ``site_id``, non-numeric or
            out-of-range lat/lon (with a hint when they look swapped), a bad
            ``synthetic`` value, an absolute or escaping path, or a referenced
            file that does not exist (naming site and column).
    """
    source = Path(path)
    text = _read_text(source, "sites file")
    folder = source.resolve().parent
    first_line = text.lstrip().splitlines()[0]
    if "," not in first_line and (";" in first_line or "\t" in first_line):
        raise FluxDataError(
            f"{source}: the header {first_line!r} is not comma-separated; sites.csv must use ','"
        )
    table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in REQUIRED_SITE_COLUMNS if c not in table.columns]
    if missing:
        raise FluxDataError(
            f"{source}: missing required column(s) {', '.join(missing)}; found columns: "
            f"{', '.join(table.columns)} (required: {', '.join(REQUIRED_SITE_COLUMNS)})"
        )
    if table.empty:
        raise FluxDataError(f"{source}: has a header but no site rows")
    table["site_id"] = table["site_id"].str.strip()
    empty_ids = table["site_id"] == ""
    if empty_ids.any():
        line = int(np.flatnonzero(empty_ids.to_numpy())[0]) + 2
        raise FluxDataError(f"{source}: site_id is empty on line {line}")
    duplicated = table["site_id"][table["site_id"].duplicated()].unique()
    if len(duplicated):
        raise FluxDataError(
            f"{source}: duplicated site_id {', '.join(map(repr, duplicated))}; each site must "
            f"appear once (list several flux files in one flux_path cell, separated by ';')"
        )
    table["lat"], table["lon"] = _check_lat_lon(table, source)
    if "igbp" in table.columns:
        igbp = table["igbp"].str.strip()
        table["igbp"] = igbp.where(igbp != "", np.nan)
    if "synthetic" in table.columns:
        table["synthetic"] = _parse_bool_column(table, "synthetic", source)
    for column in [c for c in table.columns if is_path_column(c)]:
        resolved_cells: list[object] = []
        for site, cell in zip(table["site_id"], table[column].str.strip(), strict=True):
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
