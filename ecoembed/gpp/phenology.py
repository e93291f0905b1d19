"""Temporal fidelity of predicted GPP: season start/end (SOS/EOS) and lag analysis.

For each site-year, the observed and the predicted daily GPP curves are
smoothed and their growing-season transitions extracted with

* the **threshold** method: SOS is where the curve rises through
  ``min_left + fraction x (max - min_left)`` on the way to the annual peak,
  EOS where it falls through ``min_right + fraction x (max - min_right)`` after
  it (``min_left``/``min_right``: minimum before/after the peak; ``fraction``
  defaults to 0.5, linear interpolation between days);
* the **derivative** method: SOS at the maximum of the first derivative
  before the peak, EOS at its minimum after it (parabolic sub-day refinement).

Dates are fractional days of year (1 = 1 January). Errors are predicted minus
observed, in days (positive: the model is late). The lag analysis finds the
lag (days, within ``±max_lag``) of the peak cross-correlation between the
predicted and observed daily series; positive means the prediction lags
behind the observation.

Limitation: site-years are calendar years, so a season that straddles
1 January (southern hemisphere, winter-active sites) is not resolved.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy.ndimage import uniform_filter1d
from tqdm.auto import tqdm

from ecoembed.errors import InputError
from ecoembed.gpp.decomposition import GROUP_COLUMNS, clean_oof

METHODS: tuple[str, ...] = ("threshold", "derivative")


MIN_COVERAGE = 0.7
"""Default fewest valid days of a site-year for SOS/EOS (fraction of the calendar year)."""
MAX_GAP_DAYS = 30
"""Default longest run of missing days in a site-year for SOS/EOS (days); equals the gap :func:`smooth_curve` fills."""


def smooth_curve(values: object, window_days: int = 15, max_gap_days: int = 30) -> np.ndarray:
    """Gap-fill (linear, gaps up to ``max_gap_days``) and smooth a daily series with a centred moving mean.

    Args:
        values: daily values on a continuous daily axis (NaN = missing).
        window_days: moving-mean window (days; 1 = no smoothing).
        max_gap_days: longer gaps stay NaN (and break the crossing search).

    Returns:
        The smoothed series, same length; NaN where a long gap was left.
    """
    y = pd.Series(np.asarray(values, dtype=float))
    if max_gap_days > 0 and y.isna().any():
        y = y.interpolate(limit=max_gap_days, limit_area="inside").bfill(limit=max_gap_days).ffill(limit=max_gap_days)
    arr = y.to_numpy()
    if window_days <= 1:
        return arr
    finite = np.isfinite(arr)
    s = uniform_filter1d(np.where(finite, arr, 0.0), size=window_days, mode="nearest")
    c = uniform_filter1d(finite.astype(float), size=window_days, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = s / c
    out[~finite] = np.nan
    return out


def _crossing(t: np.ndarray, y: np.ndarray, thr: float, i0: int, i1: int) -> float:
    """Interpolated time where ``y`` crosses ``thr`` between indices ``i0`` (one side) and ``i1`` (other side)."""
    y0, y1 = y[i0], y[i1]
    if y1 == y0:
        return float(t[i1])
    return float(t[i0] + (thr - y0) / (y1 - y0) * (t[i1] - t[i0]))


def _parabolic_peak(y: np.ndarray, i: int, half_width: int = 1) -> float:
    """Sub-sample offset of a maximum at index ``i``: vertex of a least-squares parabola on ``i ± half_width``.

    Fitting over several samples (not just 3) keeps noise from moving the vertex;
    the offset is clipped to ``± half_width``.
    """
    lo, hi = max(i - half_width, 0), min(i + half_width, len(y) - 1)
    x = np.arange(lo, hi + 1) - i
    v = y[lo:hi + 1]
    ok = np.isfinite(v)
    if ok.sum() < 3:
        return 0.0
    a, b, _ = np.polyfit(x[ok], v[ok], 2)
    if a >= 0:
        return 0.0
    return float(np.clip(-b / (2 * a), -half_width, half_width))


def season_transitions(
    doy: object,
    values: object,
    *,
    method: str = "threshold",
    fraction: float = 0.5,
    smooth_days: int = 15,
    min_amplitude: float = 0.5,
) -> tuple[float, float]:
    """Season start and end (fractional day of year) of one site-year's daily GPP curve.

    Args:
        doy: day of year of each value, consecutive days (1-366).
        values: daily GPP (gC m-2 d-1), NaN = missing (short gaps are filled).
        method: ``"threshold"`` or ``"derivative"`` (see the module docstring).
        fraction: threshold as a fraction of the annual amplitude (0 < f < 1).
        smooth_days: moving-mean window applied before the search (days).
        min_amplitude: below this peak-minus-minimum (gC m-2 d-1) the year has no
            resolvable season and both dates are NaN.

    Returns:
        ``(sos, eos)``; NaN where no transition is found (e.g. the curve is
        already above the threshold on 1 January).
    """
    if method not in METHODS:
        raise InputError(f"method={method!r}: use one of {list(METHODS)}")
    if not 0.0 < fraction < 1.0:
        raise InputError(f"fraction={fraction}: the threshold must be a fraction of the amplitude in (0, 1)")
    t = np.asarray(doy, dtype=float)
    y = smooth_curve(values, smooth_days)
    if t.shape != y.shape:
        raise InputError(f"doy ({t.size}) and values ({y.size}) differ in length")
    if not np.any(np.isfinite(y)):
        return np.nan, np.nan
    ip = int(np.nanargmax(y))
    ymax = y[ip]
    left, right = y[: ip + 1], y[ip:]
    lmin, rmin = np.nanmin(left), np.nanmin(right)
    nan = float("nan")
    if method == "threshold":
        sos = eos = nan
        if ymax - lmin >= min_amplitude:
            thr = lmin + fraction * (ymax - lmin)
            below = np.flatnonzero(~(left >= thr))  # NaN counts as a break
            if below.size:
                i = int(below[-1])
                sos = _crossing(t, y, thr, i, i + 1) if np.isfinite(y[i]) else nan
        if ymax - rmin >= min_amplitude:
            thr = rmin + fraction * (ymax - rmin)
            below = np.flatnonzero(~(right >= thr))
            if below.size:
                j = ip + int(below[0])
                eos = _crossing(t, y, thr, j - 1, j) if np.isfinite(y[j]) else nan
        return sos, eos
    # derivative of the smoothed curve, smoothed once more (a symmetric filter keeps the extremum in place)
    dy = smooth_curve(np.gradient(y, t), smooth_days, max_gap_days=0)
    half = max(smooth_days // 2, 1)
    sos = eos = nan
    if ymax - lmin >= min_amplitude and ip > 0:
        i = int(np.nanargmax(dy[: ip + 1]))
        sos = float(t[i] + _parabolic_peak(dy, i, half) * (t[1] - t[0]))
    if ymax - rmin >= min_amplitude and ip < len(y) - 1:
        j = ip + int(np.nanargmin(dy[ip:]))
        eos = float(t[j] + _parabolic_peak(-dy, j, half) * (t[1] - t[0]))
    return sos, eos


def longest_gap_days(valid: np.ndarray) -> int:
    """Longest run of ``False`` in a daily validity mask (days; leading and trailing runs count too)."""
    v = np.asarray(valid, dtype=bool)
    if v.all():
        return 0
    edges = np.diff(np.r_[0, (~v).astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max())


def _site_year_curves(df: pd.DataFrame, min_coverage: float, max_gap_days: int
                      ) -> Iterable[tuple[tuple[object, ...], pd.DataFrame]]:
    """Yield each (features, head, site, year) curve that passes the coverage rule, on the full calendar year.

    A site-year passes when its valid days cover ``min_coverage`` of the year with no gap longer than
    ``max_gap_days`` (the gap :func:`smooth_curve` bridges).
    """
    for key, g in df.groupby([*GROUP_COLUMNS, "site_id", "year"], sort=True):
        year = int(str(key[-1]))
        cal = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
        if len(g) < min_coverage * len(cal):
            continue
        full = g.set_index("date")[["observed", "predicted"]].groupby(level=0).mean().reindex(cal)
        valid = full["observed"].notna().to_numpy() & full["predicted"].notna().to_numpy()
        if valid.sum() < min_coverage * len(cal) or longest_gap_days(valid) > max_gap_days:
            continue
        full["doy"] = np.arange(1, len(cal) + 1)
        yield key, full


def phenology_table(
    oof: pd.DataFrame,
    *,
    methods: Iterable[str] = METHODS,
    fraction: float = 0.5,
    smooth_days: int = 15,
    min_coverage: float = MIN_COVERAGE,
    max_gap_days: int = MAX_GAP_DAYS,
    min_amplitude: float = 0.5,
    progress: bool = False,
) -> pd.DataFrame:
    """SOS/EOS of observed and predicted GPP per model, site-year and method, with errors in days.

    Args:
        oof: out-of-fold predictions (``site_id, date, observed, predicted``, gC m-2 d-1;
            optional ``features, head``).
        methods: subset of :data:`METHODS`.
        fraction, smooth_days, min_amplitude: see :func:`season_transitions`.
        min_coverage: fewest valid days of a site-year, as a fraction of its calendar days (ONEFlux towers lose
            ~10-20 % of days to QC, so a fixed day count would drop most real site-years).
        max_gap_days: a site-year with a longer run of missing days (the start of the year and its end included)
            is skipped: the smoother bridges gaps up to this length, longer ones would hide a transition.
        progress: show a progress bar over site-years.

    Returns:
        ``features, head, site_id, year, method, sos_obs, sos_pred, eos_obs, eos_pred,
        sos_error_days, eos_error_days`` (day of year; error = predicted - observed).
    """
    df = clean_oof(oof)
    methods = list(methods)
    rows = []
    for key, full in tqdm(list(_site_year_curves(df, min_coverage, max_gap_days)), desc="phenology", disable=not progress):
        feat, head, site, year = key
        for m in methods:
            so, eo = season_transitions(full["doy"], full["observed"], method=m, fraction=fraction,
                                        smooth_days=smooth_days, min_amplitude=min_amplitude)
            sp, ep = season_transitions(full["doy"], full["predicted"], method=m, fraction=fraction,
                                        smooth_days=smooth_days, min_amplitude=min_amplitude)
            rows.append({"features": feat, "head": head, "site_id": site, "year": int(str(year)), "method": m,
                         "sos_obs": so, "sos_pred": sp, "eos_obs": eo, "eos_pred": ep,
                         "sos_error_days": sp - so, "eos_error_days": ep - eo})
    cols = ["features", "head", "site_id", "year", "method", "sos_obs", "sos_pred", "eos_obs", "eos_pred",
            "sos_error_days", "eos_error_days"]
    return pd.DataFrame(rows, columns=cols)


def phenology_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model and method: site-years resolved, mean absolute error and bias of SOS and EOS (days)."""
    rows = []
    for key, g in table.groupby([*GROUP_COLUMNS, "method"], sort=True):
        row: dict[str, object] = dict(zip([*GROUP_COLUMNS, "method"], key, strict=True))
        for ev in ("sos", "eos"):
            e = g[f"{ev}_error_days"].to_numpy(dtype=float)
            e = e[np.isfinite(e)]
            row[f"n_{ev}"] = int(e.size)
            row[f"{ev}_mae_days"] = float(np.mean(np.abs(e))) if e.size else np.nan
            row[f"{ev}_bias_days"] = float(np.mean(e)) if e.size else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def cross_correlation(observed: object, predicted: object, max_lag: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of ``predicted(t)`` with ``observed(t - lag)`` for lag in ``-max_lag..max_lag`` days.

    Both series are on the same continuous daily axis (NaN = missing; each lag
    uses its complete pairs). A positive best lag means the prediction lags
    behind the observation.

    Returns:
        ``(lags, r)``: integer lags (days) and correlations (NaN with < 3 pairs).
    """
    o = np.asarray(observed, dtype=float)
    p = np.asarray(predicted, dtype=float)
    if o.shape != p.shape:
        raise InputError(f"observed ({o.size}) and predicted ({p.size}) differ in length")
    lags = np.arange(-max_lag, max_lag + 1)
    r = np.full(lags.size, np.nan)
    n = o.size
    for k, lag in enumerate(lags):
        if abs(lag) >= n:
            continue
        a = p[lag:] if lag >= 0 else p[: n + lag]
        b = o[: n - lag] if lag >= 0 else o[-lag:]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 3:
            continue
        a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
        den = np.sqrt(np.sum(a * a) * np.sum(b * b))
        if den > 0:
            r[k] = float(np.sum(a * b) / den)
    return lags, r


def lag_analysis(oof: pd.DataFrame, *, max_lag: int = 30) -> pd.DataFrame:
    """Peak cross-correlation lag between predicted and observed daily GPP, per model and site.

    Args:
        oof: out-of-fold predictions (see :func:`phenology_table`).
        max_lag: largest lag searched (days, each direction).

    Returns:
        ``features, head, site_id, n_days, lag_days, r_at_lag, r_at_zero`` (positive
        ``lag_days``: the prediction lags behind the observation).
    """
    if max_lag < 0:
        raise InputError(f"max_lag={max_lag}: must be >= 0 days")
    df = clean_oof(oof)
    rows = []
    for (feat, head, site), g in df.groupby([*GROUP_COLUMNS, "site_id"], sort=True):
        s = g.set_index("date")[["observed", "predicted"]].groupby(level=0).mean()
        s = s.reindex(pd.date_range(s.index.min(), s.index.max(), freq="D"))
        lags, r = cross_correlation(s["observed"], s["predicted"], max_lag=max_lag)
        best = int(lags[np.nanargmax(r)]) if np.any(np.isfinite(r)) else np.nan
        rows.append({"features": feat, "head": head, "site_id": site, "n_days": len(g),
                     "lag_days": best, "r_at_lag": float(np.nanmax(r)) if np.any(np.isfinite(r)) else np.nan,
                     "r_at_zero": float(r[max_lag])})
    return pd.DataFrame(rows)


def lag_summary(lags: pd.DataFrame) -> pd.DataFrame:
    """Per model: sites, median and mean absolute lag (days) and mean correlation at lag 0, from :func:`lag_analysis`."""
    return (lags.groupby(list(GROUP_COLUMNS), sort=False)
            .agg(sites=("site_id", "size"), median_lag_days=("lag_days", "median"),
                 mean_abs_lag_days=("lag_days", lambda v: float(np.nanmean(np.abs(v)))),
                 r_at_zero=("r_at_zero", "mean")).reset_index())
