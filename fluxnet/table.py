"""The tidy flux table: column names, units and the QC filter.

A flux table has one row per site and day: ``site_id`` (str), ``date``
(datetime64[ns] at midnight, local standard time of the tower), ``GPP``,
``GPP_NT``, ``GPP_DT``, ``GPP_unc`` (gC m-2 d-1), ``GPP_qc`` (0..1, fraction
of measured or good-quality gap-filled records), the drivers ``TA``,
``SW_IN``, ``VPD``, ``P`` and, where the source has it, ``PPFD_IN`` and
``release`` (str: the data release or database a day comes from, e.g.
``fluxnet_archive`` or ``ICOS_ETC_L2``, when the file has a ``release`` or
``database`` column; days aggregated from records of several releases join
them with ``+``). Missing values are NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULT_QC_MIN = 0.8
"""Default minimum ``GPP_qc`` for a day to count as usable (fraction 0..1)."""

TIDY_COLUMNS: tuple[str, ...] = (
    "site_id", "date", "GPP", "GPP_NT", "GPP_DT", "GPP_unc", "GPP_qc", "TA", "SW_IN", "VPD", "P",
)
"""Columns of every flux table, in order; ``PPFD_IN`` follows when available."""

OPTIONAL_COLUMNS: tuple[str, ...] = ("PPFD_IN",)
"""Numeric columns present only when a source has them."""

RELEASE_COLUMN = "release"
"""Text column, last, present only when a source names its release/database."""

UNITS: dict[str, str] = {
    "GPP": "gC m-2 d-1",
    "GPP_NT": "gC m-2 d-1",
    "GPP_DT": "gC m-2 d-1",
    "GPP_unc": "gC m-2 d-1",
    "GPP_qc": "1",
    "TA": "degC",
    "SW_IN": "W m-2",
    "VPD": "hPa",
    "P": "mm d-1",
    "PPFD_IN": "umol m-2 s-1",
}
"""Unit of each value column (daily means except ``P``, a daily sum)."""


def qc_pass(table: pd.DataFrame, qc_min: float = DEFAULT_QC_MIN) -> pd.Series:
    """Which days have a usable GPP: finite ``GPP`` and ``GPP_qc >= qc_min``.

    Args:
        table: A flux table (needs ``GPP`` and ``GPP_qc``).
        qc_min: Minimum fraction (0..1) of measured or good-quality
            gap-filled records in the day.

    Returns:
        Boolean Series aligned with ``table`` (NaN ``GPP_qc`` fails).

    Raises:
        ValueError: ``qc_min`` outside [0, 1].
        KeyError: ``GPP`` or ``GPP_qc`` missing.
    """
    if not 0.0 <= qc_min <= 1.0:
        raise ValueError(f"qc_min must be within [0, 1], got {qc_min}")
    missing = [c for c in ("GPP", "GPP_qc") if c not in table.columns]
    if missing:
        raise KeyError(f"flux table lacks column(s) {', '.join(missing)}")
    gpp = table["GPP"].to_numpy(dtype=float)
    qc = table["GPP_qc"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        passed = np.isfinite(gpp) & (qc >= qc_min)
    return pd.Series(passed, index=table.index, name="qc_pass")
