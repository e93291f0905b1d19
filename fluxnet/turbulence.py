"""Half-hourly turbulence records for footprints: u*, wind, heat flux and stability as FLUXNET files give them.

:func:`read_turbulence` reads the columns :func:`fluxnet.footprint.footprint_weights`
needs from a half-hourly (HH) or hourly (HR) FLUXNET/ONEFlux, ICOS or AmeriFlux
file (plain or gzip/bz2/xz CSV, single-member ZIP, Parquet), under the names the
footprint module uses:

=============  ==========================================  ============
name           accepted columns (first present wins)        unit
=============  ==========================================  ============
``USTAR``      USTAR, USTAR_1_1_1                            m s-1
``WD``         WD, WD_1_1_1                                  degrees (from)
``WS``         WS, WS_F, WS_1_1_1                            m s-1
``H``          H, H_F_MDS, H_F, H_1_1_1                      W m-2
``TA``         TA, TA_F, TA_F_MDS, TA_1_1_1                  degC
``PA``         PA, PA_F, PA_1_1_1                            kPa
``MO_LENGTH``  MO_LENGTH, MO_LENGTH_1_1_1                    m
``V_SIGMA``    V_SIGMA, V_SIGMA_1_1_1                        m s-1
``PBLH``       PBLH                                          m
=============  ==========================================  ============

``-9999`` (the FLUXNET missing value) becomes NaN. Daily files hold no
turbulence: the message says to give the half-hourly file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fluxnet.errors import FluxDataError

TURBULENCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "USTAR": ("USTAR", "USTAR_1_1_1"),
    "WD": ("WD", "WD_1_1_1"),
    "WS": ("WS", "WS_F", "WS_1_1_1"),
    "H": ("H", "H_F_MDS", "H_F", "H_1_1_1"),
    "TA": ("TA", "TA_F", "TA_F_MDS", "TA_1_1_1"),
    "PA": ("PA", "PA_F", "PA_1_1_1"),
    "MO_LENGTH": ("MO_LENGTH", "MO_LENGTH_1_1_1"),
    "V_SIGMA": ("V_SIGMA", "V_SIGMA_1_1_1"),
    "PBLH": ("PBLH",),
}
"""Footprint input name -> accepted file columns, in order of preference."""
MISSING = -9999.0
TIME_COLUMNS: tuple[str, ...] = ("TIMESTAMP_START", "TIMESTAMP_END", "TIMESTAMP")


def _read_one(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FluxDataError(f"{path} does not exist (half-hourly file for the footprint)")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, compression="infer", low_memory=False, comment=None)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise FluxDataError(f"cannot read {path} for the footprint ({type(exc).__name__}: {str(exc)[:120]}); give the "
                            "half-hourly FLUXNET/AmeriFlux CSV (plain, gzip or single-member zip) or Parquet") from None


def read_turbulence(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Half-hourly turbulence table (``TIMESTAMP_START`` + the :data:`TURBULENCE_COLUMNS` found).

    Raises:
        FluxDataError: unreadable file, no timestamp column, or a daily file (no sub-daily timestamps).
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    frames = []
    for item in items:
        path = Path(item)
        raw = _read_one(path)
        time_col = next((c for c in TIME_COLUMNS if c in raw.columns), None)
        if time_col is None:
            raise FluxDataError(f"{path}: no TIMESTAMP_START column; the footprint needs the half-hourly file")
        stamps = pd.to_numeric(raw[time_col], errors="coerce")
        if stamps.notna().any() and float(stamps.dropna().iloc[0]) < 1e11:
            raise FluxDataError(f"{path} is a daily file (timestamps YYYYMMDD); the footprint needs the half-hourly (HH) "
                                "or hourly (HR) file of the site: give it in sites.csv as halfhourly_path")
        out = pd.DataFrame({"TIMESTAMP_START": pd.to_datetime(stamps.astype("Int64").astype(str), format="%Y%m%d%H%M",
                                                              errors="coerce")})
        for name, candidates in TURBULENCE_COLUMNS.items():
            column = next((c for c in candidates if c in raw.columns), None)
            if column is not None:
                values = pd.to_numeric(raw[column], errors="coerce").to_numpy(dtype=float)
                out[name] = np.where(values == MISSING, np.nan, values)
        frames.append(out)
    table = pd.concat(frames, ignore_index=True)
    return table.dropna(subset=["TIMESTAMP_START"]).sort_values("TIMESTAMP_START").reset_index(drop=True)
