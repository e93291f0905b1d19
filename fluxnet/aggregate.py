"""Half-hourly / hourly flux records -> daily values.

Unit conversion for GPP: a daily mean flux in umol CO2 m-2 s-1 times
86 400 s d-1 times 12.011e-6 gC umol-1 gives gC m-2 d-1 (a constant
10 umol m-2 s-1 day is 10.377 gC m-2 d-1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fluxnet.table import RELEASE_COLUMN

SECONDS_PER_DAY = 86_400
CARBON_G_PER_UMOL = 12.011e-6
"""Grams of carbon per micromole of CO2 (molar mass of C, 12.011 g mol-1)."""

UMOL_S_TO_GC_DAY = SECONDS_PER_DAY * CARBON_G_PER_UMOL
"""Factor from umol CO2 m-2 s-1 (daily mean) to gC m-2 d-1 (= 1.0377504)."""

DEFAULT_MIN_DAY_COVERAGE = 0.9
"""Default minimum fraction of a day's records with a finite value for the
daily value to be computed (else NaN). Applied per variable. FLUXNET GPP and
``_F`` drivers are gap-filled, so this mainly blanks partial days at file
edges; a mean over part of a day would be biased by the diurnal cycle."""

DEFAULT_QC_FLAG_MAX = 1
"""Largest NEE_VUT_REF_QC flag counted as good: 0 measured, 1 good-quality
gap-fill (2 medium, 3 poor)."""

GPP_COLUMNS: tuple[str, ...] = ("GPP_NT", "GPP_DT", "GPP_PI")
"""Flux columns converted umol CO2 m-2 s-1 -> gC m-2 d-1 (night-time, day-time, a PI's own GPP)."""

MEAN_COLUMNS: tuple[str, ...] = ("TA", "SW_IN", "VPD", "PPFD_IN")
"""Driver columns aggregated as daily means (units unchanged)."""

SUM_COLUMNS: tuple[str, ...] = ("P",)
"""Driver columns aggregated as daily sums (mm per record -> mm d-1)."""

TEXT_COLUMNS: tuple[str, ...] = (RELEASE_COLUMN,)
"""Text columns: a day gets its records' distinct values, sorted and joined by ``+``."""

QC_FLAG_COLUMN = "NEE_QC"
"""Input column with per-record gap-fill quality flags (ONEFlux NEE_VUT_REF_QC, REddyProc
NEE_uStar_fqc: 0 measured, 1 good, 2 medium, 3 poor gap-fill; NaN missing)."""

MEASURED_COLUMN = "MEASURED"
"""Alternative input (AmeriFlux BASE): 1 where the record's flux was measured,
0 where gap-filled or missing; used for GPP_qc when no QC flags exist."""


def _join_values(values: pd.Series) -> str | None:
    """Distinct non-missing values, sorted, joined by ``+`` (None when there are none)."""
    distinct = sorted({str(value) for value in values.dropna()})
    return "+".join(distinct) if distinct else None


def aggregate_to_daily(
    records: pd.DataFrame,
    *,
    step_minutes: int = 30,
    min_coverage: float = DEFAULT_MIN_DAY_COVERAGE,
    qc_flag_max: int = DEFAULT_QC_FLAG_MAX,
) -> pd.DataFrame:
    """Aggregate half-hourly (or hourly) records to days.

    Each record belongs to the day of its ``TIMESTAMP_START`` (local standard
    time): the record 23:30-24:00 belongs to that day, 00:00-00:30 to the next.

    Input columns: ``TIMESTAMP_START`` (datetime64) and any of ``GPP_NT``,
    ``GPP_DT``, ``GPP_PI`` (umol CO2 m-2 s-1), ``TA`` (degC), ``SW_IN`` (W m-2), ``VPD``
    (hPa), ``PPFD_IN`` (umol m-2 s-1), ``P`` (mm per record), ``NEE_QC``
    (gap-fill flags) or ``MEASURED`` (0/1), ``release`` (text). Other columns are ignored.
    Timestamps must be unique (the readers check this).

    Output, one row per distinct day present, sorted:

    - ``date``: midnight of the day (datetime64[ns]).
    - ``GPP_NT``, ``GPP_DT``, ``GPP_PI``: daily mean x 86 400 x 12.011e-6, gC m-2 d-1.
    - ``TA``, ``SW_IN``, ``VPD``, ``PPFD_IN``: daily means.
    - ``P``: daily sum in mm d-1, computed as mean x records per day so that
      a day with a few missing records is not biased low (equals the plain
      sum on complete days).
    - ``GPP_qc``: fraction of the day's expected records (1440 /
      ``step_minutes``) whose ``NEE_QC`` is <= ``qc_flag_max``; absent or
      missing records count as not good. From ``MEASURED`` when there are no
      flags; NaN when neither column is given.
    - ``release``: the distinct values of the day's records, sorted, joined by ``+``.
    - ``n_records``: number of records of the day in the input.

    A variable's daily value is NaN when fewer than ``min_coverage`` x
    records-per-day of its records are finite.

    Args:
        records: Sub-daily records as described above.
        step_minutes: Record length in minutes (30 for HH, 60 for HR).
        min_coverage: Minimum fraction (0..1] of finite records per day.
        qc_flag_max: Largest gap-fill flag that counts as good.

    Returns:
        The daily table described above (only columns whose inputs exist,
        plus ``date``, ``GPP_qc`` and ``n_records``).

    Raises:
        ValueError: Bad ``step_minutes``/``min_coverage``, or no
            ``TIMESTAMP_START`` column.
    """
    if step_minutes <= 0 or 1440 % step_minutes:
        raise ValueError(f"step_minutes must divide a day (1440 min), got {step_minutes}")
    if not 0.0 < min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be within (0, 1], got {min_coverage}")
    if "TIMESTAMP_START" not in records.columns:
        raise ValueError("records need a TIMESTAMP_START column (datetime64)")
    records_per_day = 1440 // step_minutes
    start = pd.to_datetime(records["TIMESTAMP_START"]).to_numpy()
    day_codes, days = pd.factorize(start.astype("datetime64[D]"), sort=True)
    n_days = len(days)
    counts_all = np.bincount(day_codes, minlength=n_days)
    out: dict[str, np.ndarray] = {"date": np.asarray(days, dtype="datetime64[ns]")}
    min_finite = min_coverage * records_per_day - 1e-9

    def daily_mean(column: str) -> np.ndarray:
        values = records[column].to_numpy(dtype=float)
        finite = np.isfinite(values)
        n_finite = np.bincount(day_codes, weights=finite, minlength=n_days)
        total = np.bincount(day_codes, weights=np.where(finite, values, 0.0), minlength=n_days)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / n_finite
        return np.where(n_finite >= min_finite, mean, np.nan)

    for column in GPP_COLUMNS:
        if column in records.columns:
            out[column] = daily_mean(column) * UMOL_S_TO_GC_DAY
    for column in MEAN_COLUMNS:
        if column in records.columns:
            out[column] = daily_mean(column)
    for column in SUM_COLUMNS:
        if column in records.columns:
            out[column] = daily_mean(column) * records_per_day
    if QC_FLAG_COLUMN in records.columns:
        flags = records[QC_FLAG_COLUMN].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            good = np.isfinite(flags) & (flags <= qc_flag_max)
        out["GPP_qc"] = np.bincount(day_codes, weights=good, minlength=n_days) / records_per_day
    elif MEASURED_COLUMN in records.columns:
        measured = records[MEASURED_COLUMN].to_numpy(dtype=float) == 1.0
        out["GPP_qc"] = np.bincount(day_codes, weights=measured, minlength=n_days) / records_per_day
    else:
        out["GPP_qc"] = np.full(n_days, np.nan)
    daily = pd.DataFrame(out)
    for column in TEXT_COLUMNS:
        if column in records.columns:
            joined = records[column].groupby(day_codes).apply(_join_values).reindex(range(n_days))
            daily[column] = pd.Series(joined.to_numpy(dtype=object), dtype=object)
    daily["n_records"] = counts_all
    return daily
