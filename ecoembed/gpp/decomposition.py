"""FLUXCOM-style skill decomposition of out-of-fold GPP predictions.

The pooled daily skill of a GPP model mixes several signals that matter in
different ways (Tramontana et al. 2016, Jung et al. 2020). This module splits
out-of-fold (OOF) predictions into

* **across-site**: each site's mean GPP (one value per site);
* **mean seasonal cycle (MSC)**: each site's mean GPP per day of year
  (circularly smoothed) or per 8-day period, minus the site mean (the offset
  is the across-site component);
* **anomalies**: daily value minus the site's MSC (its own MSC for the
  predictions, the observed one's for the observations);
* **inter-annual variability (IAV)**: annual GPP per site-year minus the
  site's mean annual GPP, only for sites with >= 2 sufficiently covered years,

and scores each with r2 (squared Pearson correlation), NSE and RMSE
(:func:`ecoembed.gpp.metrics.compute_metrics`), pooled
over sites, per ``(features, head)`` and optionally per IGBP class.

Input: the OOF predictions table of ``ecoembed fit-gpp`` (columns
``site_id, date, observed, predicted`` in gC m-2 d-1, plus optional
``fold, head, features``). Only rows where both observed and predicted are
finite are used, so observed and predicted components always cover the same
days. Pure computation; the figures live in :mod:`ecoembed.report.figures`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.ndimage import uniform_filter1d

from ecoembed.errors import InputError
from ecoembed.gpp.metrics import compute_metrics

REQUIRED_COLUMNS: tuple[str, ...] = ("site_id", "date", "observed", "predicted")
"""Columns an OOF predictions table must have."""
GROUP_COLUMNS: tuple[str, ...] = ("features", "head")
"""Optional columns that identify one model; skill is computed per combination present."""
COMPONENTS: tuple[str, ...] = ("daily", "across_site", "seasonal_cycle", "anomalies", "interannual")
"""Components of :func:`decompose_skill`, in report order."""


def clean_oof(oof: pd.DataFrame) -> pd.DataFrame:
    """Validate the OOF table; keep finite pairs; add ``doy``, ``year`` and missing group columns."""
    missing = [c for c in REQUIRED_COLUMNS if c not in oof.columns]
    if missing:
        raise InputError(
            f"out-of-fold predictions lack column(s) {missing}; expected {list(REQUIRED_COLUMNS)} "
            "(as written by `ecoembed fit-gpp`)"
        )
    df = oof.copy()
    df["date"] = pd.to_datetime(df["date"])
    df["observed"] = pd.to_numeric(df["observed"], errors="coerce")
    df["predicted"] = pd.to_numeric(df["predicted"], errors="coerce")
    df = df[np.isfinite(df["observed"]) & np.isfinite(df["predicted"])]
    for col in GROUP_COLUMNS:
        if col not in df.columns:
            df[col] = "-"
    df["doy"] = df["date"].dt.day_of_year.astype(np.int64)
    df["year"] = df["date"].dt.year.astype(np.int64)
    return df.reset_index(drop=True)


def _circular_nanmean(values: np.ndarray, window: int) -> np.ndarray:
    """Moving mean along the last axis (circular), ignoring NaN; NaN where the window holds none."""
    if window <= 1:
        return values
    finite = np.isfinite(values)
    filled = np.where(finite, values, 0.0)
    s = uniform_filter1d(filled, size=window, axis=-1, mode="wrap")
    c = uniform_filter1d(finite.astype(float), size=window, axis=-1, mode="wrap")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 1e-9, s / np.where(c > 1e-9, c, 1.0), np.nan)


def seasonal_cycle(
    df: pd.DataFrame, *, period: str = "doy", smooth_days: int = 15, value_columns: Sequence[str] = ("observed", "predicted")
) -> pd.DataFrame:
    """Mean seasonal cycle (MSC) of each site for each value column.

    Args:
        df: a cleaned table (``site_id``, ``date`` and the value columns, gC m-2 d-1).
        period: ``"doy"`` (day of year 1-366, then a circular moving mean of
            ``smooth_days``) or ``"8day"`` (periods 0-45 of 8 days starting on
            1 January, MODIS-style; no smoothing).
        smooth_days: window of the circular moving mean for ``period="doy"``
            (1 = none). With a single year per site, an unsmoothed MSC equals
            the data and leaves no anomalies.

    Returns:
        Long table ``site_id, period, <value columns>`` (mean of the column in
        that period over all years) for every period of 1..366 (``doy``) or
        0..45 (``8day``) that a window reaches; periods no window reaches are NaN.
    """
    if period not in ("doy", "8day"):
        raise InputError(f"period={period!r}: use 'doy' or '8day'")
    key = _period_of(df, period)
    n_periods = 366 if period == "doy" else 46
    offset = 1 if period == "doy" else 0
    sites = pd.Index(sorted(df["site_id"].unique()), name="site_id")
    out = pd.DataFrame({"site_id": np.repeat(sites.to_numpy(), n_periods),
                        "period": np.tile(np.arange(n_periods) + offset, len(sites))})
    for col in value_columns:
        means = df.assign(_p=key).groupby(["site_id", "_p"])[col].mean()
        grid = means.unstack("_p").reindex(index=sites, columns=np.arange(n_periods) + offset).to_numpy(dtype=float)
        if period == "doy":
            grid = _circular_nanmean(grid, int(smooth_days))
        out[col] = grid.ravel()
    return out


def _period_of(df: pd.DataFrame, period: str) -> np.ndarray:
    doy = df["date"].dt.day_of_year.to_numpy() if "doy" not in df.columns else df["doy"].to_numpy()
    return doy if period == "doy" else (doy - 1) // 8


def _components(df: pd.DataFrame, *, period: str, smooth_days: int, min_year_coverage: float) -> dict[str, pd.DataFrame]:
    """The observed/predicted pairs of each component for one model's rows."""
    comps: dict[str, pd.DataFrame] = {"daily": df[["site_id", "observed", "predicted"]]}
    site_means = df.groupby("site_id")[["observed", "predicted"]].mean()
    comps["across_site"] = site_means.reset_index()

    msc = seasonal_cycle(df, period=period, smooth_days=smooth_days)
    msc = msc.dropna(subset=["observed", "predicted"])
    centred = msc.copy()
    # only the periods that carry data count in the MSC component (smoothing fills gaps for anomalies only)
    have = df.assign(period=_period_of(df, period))[["site_id", "period"]].drop_duplicates()
    centred = centred.merge(have, on=["site_id", "period"], how="inner")
    for col in ("observed", "predicted"):
        centred[col] = centred[col] - centred.groupby("site_id")[col].transform("mean")
    comps["seasonal_cycle"] = centred

    keyed = df.assign(period=_period_of(df, period)).merge(msc, on=["site_id", "period"], how="left", suffixes=("", "_msc"))
    comps["anomalies"] = pd.DataFrame({
        "site_id": keyed["site_id"],
        "observed": keyed["observed"] - keyed["observed_msc"],
        "predicted": keyed["predicted"] - keyed["predicted_msc"],
    })
    comps["interannual"] = interannual_table(df, min_year_coverage=min_year_coverage)
    return comps


def annual_table(df: pd.DataFrame, *, min_year_coverage: float = 0.8) -> pd.DataFrame:
    """Annual GPP per site-year (gC m-2 yr-1): mean daily value over the covered days x days in the year.

    Observed and predicted use the same days, so gaps bias both alike. Years with
    fewer than ``min_year_coverage`` x days-in-year valid days are dropped.

    Returns:
        ``site_id, year, n_days, observed, predicted`` (gC m-2 yr-1).
    """
    if not 0.0 <= min_year_coverage <= 1.0:
        raise InputError(f"min_year_coverage={min_year_coverage}: must be a fraction in [0, 1]")
    g = df.groupby(["site_id", "year"])
    ann = g[["observed", "predicted"]].mean()
    ann["n_days"] = g.size()
    ann = ann.reset_index()
    days_in_year = np.where(pd.to_datetime(ann["year"].astype(str) + "-12-31").dt.is_leap_year, 366, 365)
    ann["observed"] *= days_in_year
    ann["predicted"] *= days_in_year
    ann = ann[ann["n_days"] >= min_year_coverage * days_in_year]
    return ann[["site_id", "year", "n_days", "observed", "predicted"]].reset_index(drop=True)


def interannual_table(df: pd.DataFrame, *, min_year_coverage: float = 0.8) -> pd.DataFrame:
    """Annual GPP anomalies (site-year minus the site's mean annual GPP, gC m-2 yr-1) for sites with >= 2 years."""
    ann = annual_table(df, min_year_coverage=min_year_coverage)
    ann = ann[ann.groupby("site_id")["year"].transform("size") >= 2].copy()
    for col in ("observed", "predicted"):
        ann[col] = ann[col] - ann.groupby("site_id")[col].transform("mean")
    return ann.reset_index(drop=True)


def _igbp_lookup(df: pd.DataFrame, igbp: Mapping[str, str] | pd.Series | None) -> pd.Series | None:
    if igbp is not None:
        return df["site_id"].map(dict(igbp)).fillna("unknown").astype(str)
    if "igbp" in df.columns:
        return df["igbp"].fillna("unknown").astype(str)
    return None


def decompose_skill(
    oof: pd.DataFrame,
    *,
    igbp: Mapping[str, str] | pd.Series | None = None,
    period: str = "doy",
    smooth_days: int = 15,
    min_year_coverage: float = 0.8,
) -> pd.DataFrame:
    """Skill of each FLUXCOM component, per model (``features``, ``head``) and IGBP class.

    Args:
        oof: out-of-fold predictions (``site_id, date, observed, predicted`` in
            gC m-2 d-1; optional ``features, head``, ``igbp``).
        igbp: site_id -> IGBP class (overrides an ``igbp`` column). When neither is
            given only the ``group="all"`` rows are produced.
        period: MSC resolution, ``"doy"`` or ``"8day"`` (see :func:`seasonal_cycle`).
        smooth_days: circular smoothing window of the day-of-year MSC (days).
        min_year_coverage: fraction of a year's days a site-year needs to enter the IAV.

    Returns:
        Tidy table ``features, head, group, component, n, r2, nse, rmse, unit``:
        ``group`` is ``"all"`` or an IGBP class; ``component`` one of
        :data:`COMPONENTS`; ``n`` the number of values scored (days, sites,
        site-periods or site-years); ``unit`` the unit of ``rmse``.
        Components with too few values have NaN scores (and their ``n``).
    """
    df = clean_oof(oof)
    if df.empty:
        raise InputError("out-of-fold predictions hold no row with both observed and predicted finite")
    classes = _igbp_lookup(df, igbp)
    if classes is not None:
        df["_igbp"] = classes.to_numpy()
    units = {"daily": "gC m-2 d-1", "across_site": "gC m-2 d-1", "seasonal_cycle": "gC m-2 d-1",
             "anomalies": "gC m-2 d-1", "interannual": "gC m-2 yr-1"}
    rows = []
    for (feat, head), model_df in df.groupby(list(GROUP_COLUMNS), sort=True):
        subsets = [("all", model_df)]
        if classes is not None:
            subsets += [(str(c), sub) for c, sub in model_df.groupby("_igbp", sort=True)]
        for group, sub in subsets:
            comps = _components(sub, period=period, smooth_days=smooth_days, min_year_coverage=min_year_coverage)
            for name in COMPONENTS:
                c = comps[name]
                s = compute_metrics(c["observed"], c["predicted"])
                rows.append({"features": feat, "head": head, "group": group, "component": name,
                             "n": int(s["n"]), "r2": s["r2"], "nse": s["nse"], "rmse": s["rmse"], "unit": units[name]})
    return pd.DataFrame(rows)


def aggregate_8day(oof: pd.DataFrame, *, min_days: int = 4) -> pd.DataFrame:
    """Mean observed and predicted GPP per site, model and 8-day period (MODIS calendar, restarting each 1 January).

    Args:
        oof: out-of-fold predictions (as for :func:`decompose_skill`).
        min_days: periods with fewer valid days are dropped (the last period of a
            year has 5 or 6 days).

    Returns:
        A table with the OOF schema (``date`` = first day of the period) plus
        ``n_days``; usable as input to :func:`decompose_skill`.
    """
    df = clean_oof(oof)
    start = pd.to_datetime(df["year"].astype(str) + "-01-01") + pd.to_timedelta((df["doy"] - 1) // 8 * 8, unit="D")
    df["date"] = start
    keys = ["site_id", *GROUP_COLUMNS, "date"]
    extra = [c for c in ("igbp", "fold") if c in df.columns]
    agg = df.groupby(keys, sort=True).agg(
        observed=("observed", "mean"), predicted=("predicted", "mean"), n_days=("observed", "size"),
        **{c: (c, "first") for c in extra},
    ).reset_index()
    return agg[agg["n_days"] >= min_days].reset_index(drop=True)


def period_8day(dates: object) -> pd.DatetimeIndex:
    """First day of each date's 8-day period (MODIS calendar: 1, 9, 17 ... 361 of each year)."""
    d = pd.DatetimeIndex(pd.to_datetime(pd.Series(dates)))
    start = pd.to_datetime(d.year.astype(str) + "-01-01")
    return pd.DatetimeIndex(start + pd.to_timedelta((d.day_of_year - 1) // 8 * 8, unit="D"))


def aggregate_table_8day(table: pd.DataFrame, columns: Sequence[str], *, target: str = "GPP", min_days: int = 4) -> pd.DataFrame:
    """A joined daily table (``site_id, date``, target, feature columns) as 8-day means, for models fitted at 8 days.

    Target and features are averaged over the same days of each period (the
    rows given); periods with fewer than ``min_days`` days are dropped. ``igbp``
    is carried when present; ``n_days`` counts the days averaged.
    """
    cols = list(dict.fromkeys([target, *columns]))
    df = table[["site_id", "date", *cols, *[c for c in ("igbp",) if c in table.columns]]].copy()
    df["date"] = period_8day(df["date"])
    agg = df.groupby(["site_id", "date"], sort=True).agg(
        **{c: (c, "mean") for c in cols}, n_days=(target, "size"),
        **({"igbp": ("igbp", "first")} if "igbp" in df.columns else {})).reset_index()
    return agg[agg["n_days"] >= min_days].reset_index(drop=True)


def daily_vs_8day(oof: pd.DataFrame, *, min_days: int = 4, eight_day_models: pd.DataFrame | None = None) -> pd.DataFrame:
    """Pooled skill of each model at daily and at 8-day resolution, side by side.

    Args:
        oof: daily out-of-fold predictions.
        min_days: fewest days of an 8-day period.
        eight_day_models: out-of-fold predictions of the same models fitted on 8-day means
            (:func:`aggregate_table_8day`), scored in the ``*_8day_model`` columns.

    Returns:
        One row per ``(features, head)`` with ``n_daily, r2_daily, nse_daily,
        rmse_daily, n_8day, r2_8day, nse_8day, rmse_8day`` (the daily predictions
        averaged to 8 days; RMSE in gC m-2 d-1) and, with ``eight_day_models``,
        ``n_8day_model, r2_8day_model, nse_8day_model, rmse_8day_model``.
    """
    daily = clean_oof(oof)
    eight = aggregate_8day(oof, min_days=min_days)
    rows = []
    for key, d in daily.groupby(list(GROUP_COLUMNS), sort=True):
        e = eight[(eight["features"] == key[0]) & (eight["head"] == key[1])]
        row: dict[str, object] = {"features": key[0], "head": key[1]}
        subsets = [("daily", d), ("8day", e)]
        if eight_day_models is not None:
            m = eight_day_models
            subsets.append(("8day_model", m[(m["features"] == key[0]) & (m["head"] == key[1])]))
        for label, sub in subsets:
            s = compute_metrics(sub["observed"], sub["predicted"])
            row.update({f"n_{label}": int(s["n"]), f"r2_{label}": s["r2"], f"nse_{label}": s["nse"], f"rmse_{label}": s["rmse"]})
        rows.append(row)
    return pd.DataFrame(rows)
