"""Write a flux table back out as a FLUXNET2015 SUBSET DD file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from fluxnet.errors import FluxDataError

MISSING_VALUE = -9999
"""FLUXNET's missing-value code in files (never in memory: there it is NaN)."""

# tidy column -> FLUXNET2015 DD column, in the order written
_DD_COLUMNS: dict[str, str] = {
    "GPP_NT": "GPP_NT_VUT_REF",
    "GPP_DT": "GPP_DT_VUT_REF",
    "GPP_qc": "NEE_VUT_REF_QC",
    "TA": "TA_F",
    "SW_IN": "SW_IN_F",
    "VPD": "VPD_F",
    "P": "P_F",
    "PPFD_IN": "PPFD_IN",
}


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``.

    A reader never sees a half-written file: ``os.replace`` is atomic on the
    same filesystem.
    """
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_fluxnet_dd(table: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a one-site flux table as a FLUXNET2015 SUBSET DD CSV.

    Columns written: ``TIMESTAMP`` (YYYYMMDD), ``GPP_NT_VUT_REF``,
    ``GPP_DT_VUT_REF`` (gC m-2 d-1), ``NEE_VUT_REF_QC`` (the table's
    ``GPP_qc`` fraction), ``TA_F`` (degC), ``SW_IN_F`` (W m-2), ``VPD_F``
    (hPa), ``P_F`` (mm d-1) and ``PPFD_IN`` (umol m-2 s-1) when the table has
    it; NaN becomes -9999. Floats are written with full precision so that
    ``read_flux(write_fluxnet_dd(table, path))`` returns the same values
    (``GPP`` is recomputed from NT/DT by the reader's ``gpp_method``, so it
    round-trips when the same method is used). A table without
    ``GPP_NT``/``GPP_DT`` columns (e.g. a synthetic one with only ``GPP``)
    has ``GPP`` written as both partitionings.

    The file is written atomically (temporary file + ``os.replace``). Name
    it ``FLX_<SITE>_FLUXNET2015_SUBSET_DD_<Y1>-<Y2>_<version>.csv`` so that
    ``read_flux`` finds the site id in the name; synthetic data should use
    the version token ``synthetic``.

    Args:
        table: Flux table for one site (``date`` and ``GPP`` or
            ``GPP_NT``/``GPP_DT`` required; other columns optional).
        path: Output file; its folder must exist.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        FluxDataError: Several sites, no dates, unsorted or duplicated dates,
            or no GPP column.
    """
    destination = Path(path)
    if "date" not in table.columns:
        raise FluxDataError(f"cannot write {destination}: the flux table has no 'date' column")
    if "site_id" in table.columns and table["site_id"].nunique() > 1:
        raise FluxDataError(
            f"cannot write {destination}: the table holds {table['site_id'].nunique()} sites; "
            f"a FLUXNET file holds one (write each site separately)"
        )
    if not {"GPP", "GPP_NT", "GPP_DT"} & set(table.columns):
        raise FluxDataError(f"cannot write {destination}: the flux table has no GPP column")
    if not destination.parent.is_dir():
        raise FluxDataError(f"cannot write {destination}: folder {destination.parent} does not exist")
    dates = pd.to_datetime(table["date"])
    if dates.isna().any():
        raise FluxDataError(f"cannot write {destination}: 'date' has missing values")
    if not dates.is_monotonic_increasing or dates.duplicated().any():
        raise FluxDataError(f"cannot write {destination}: dates must be unique and increasing")
    out = pd.DataFrame({"TIMESTAMP": dates.dt.strftime("%Y%m%d").to_numpy()})
    for tidy, fluxnet_name in _DD_COLUMNS.items():
        if tidy in table.columns:
            values = table[tidy]
        elif tidy in ("GPP_NT", "GPP_DT") and "GPP" in table.columns:
            values = table["GPP"]
        elif tidy == "PPFD_IN":
            continue
        else:
            values = pd.Series(np.nan, index=table.index)
        out[fluxnet_name] = values.to_numpy(dtype=float)
    text = out.to_csv(index=False, na_rep=str(MISSING_VALUE), float_format=None, lineterminator="\n")
    _atomic_write_text(destination, text)
    return destination
