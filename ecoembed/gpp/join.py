"""Per-site daily feature tables: tower window aggregation, daily interpolation, join with tower GPP.

A cube (dims ``time, y, x`` with band variables, or ``time, y, x, feature``)
is reduced to one value per time step and feature over a ``size_px`` x
``size_px`` window centred on the tower pixel, with Gaussian centre weights
(sigma = size_px / 3 pixels) renormalised over the pixels that are valid
(finite, and ``valid`` true when the cube has that mask) at each time step.
The tower position comes from lat/lon (WGS84) projected with pyproj into the
cube's ``crs`` attribute. Non-daily series (Sentinel-2 dates) are linearly
interpolated to days when the two surrounding observations are at most
``max_gap_days`` apart, else NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ecoembed.errors import CubeError, InputError
from ecoembed.gpp.options import DEFAULT_MAX_GAP_DAYS, DEFAULT_WINDOW_PX
from ecoembed.sources.chips import tower_pixel
from fluxnet import DEFAULT_QC_MIN, qc_pass

LOSS_REASONS: tuple[str, ...] = ("gpp_missing", "qc_failed", "outside_cube_period", "features_missing")
"""Reasons a flux day is not used, checked in this order (each day counts once)."""


def gaussian_weights(size_px: int, sigma_px: float | None = None) -> np.ndarray:
    """``size_px`` x ``size_px`` Gaussian weights centred on the middle pixel, summing to 1."""
    if size_px < 1:
        raise InputError(f"window size {size_px} px: must be >= 1")
    s = size_px / 3.0 if sigma_px is None else float(sigma_px)
    d = np.arange(size_px) - (size_px - 1) / 2.0
    w = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * s * s))
    return w / w.sum()


def window_indices(ds: xr.Dataset, lat: float, lon: float, size_px: int, *, source: str = "cube") -> tuple[slice, slice, np.ndarray]:
    """Row/column slices of the tower window and its weights (cropped at the cube edge).

    Raises:
        CubeError: no ``crs`` attribute, no x/y coordinates, or the tower lies outside the cube.
    """
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    row, col = tower_pixel(ds, lat, lon, source=source)
    half = size_px // 2
    r0, c0 = row - half, col - half
    w = gaussian_weights(size_px)
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + size_px, ny), min(c0 + size_px, nx)
    w = w[rs - r0:re - r0, cs - c0:ce - c0]
    return slice(rs, re), slice(cs, ce), w / w.sum()


def weighted_window_mean(values: np.ndarray, weights: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean over the window axes (1, 2) of ``values`` (time, wy, wx[, feature]).

    Weights are renormalised over the finite (and ``valid``) pixels of each time
    step (and feature); a step with no usable pixel gives NaN.
    """
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    if valid is not None:
        m = np.asarray(valid, dtype=bool)
        ok &= m if m.ndim == v.ndim else m[..., None]
    w = weights if v.ndim == 3 else weights[:, :, None]
    wt = np.where(ok, w, 0.0)
    num = np.where(ok, v, 0.0) * wt
    den = wt.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num.sum(axis=(1, 2)) / np.where(den > 0, den, 1.0), np.nan)


def to_daily(series: pd.DataFrame, *, max_gap_days: int = DEFAULT_MAX_GAP_DAYS,
             start: str | pd.Timestamp | None = None, end: str | pd.Timestamp | None = None) -> pd.DataFrame:
    """Linear interpolation of a dated table (index = dates) to every day, per column.

    A day is filled only when the observations before and after it (finite in
    that column) are at most ``max_gap_days`` apart; days before the first or
    after the last observation are NaN. Times are floored to the day; several
    observations on one day are averaged.

    Returns:
        Table indexed by daily ``date`` (``start``..``end``, default the observed span).
    """
    idx = pd.DatetimeIndex(series.index).floor("D")
    df = series.groupby(idx).mean()
    lo = pd.Timestamp(start) if start is not None else df.index.min()
    hi = pd.Timestamp(end) if end is not None else df.index.max()
    days = pd.date_range(lo, hi, freq="D", name="date")
    cols: dict[object, np.ndarray] = {c: np.full(len(days), np.nan) for c in df.columns}
    t_day = days.to_numpy().astype("datetime64[D]").astype(np.int64)
    for col in df.columns:
        s = df[col].dropna()
        if s.empty:
            continue
        t_obs = s.index.to_numpy().astype("datetime64[D]").astype(np.int64)
        vals = np.interp(t_day, t_obs, s.to_numpy(float), left=np.nan, right=np.nan)
        pos = np.searchsorted(t_obs, t_day, side="right")
        prev_t = np.where(pos > 0, t_obs[np.clip(pos - 1, 0, None)], np.iinfo(np.int64).min // 2)
        next_pos = np.searchsorted(t_obs, t_day, side="left")
        next_t = np.where(next_pos < t_obs.size, t_obs[np.clip(next_pos, None, t_obs.size - 1)], np.iinfo(np.int64).max // 2)
        exact = prev_t == t_day
        gap_ok = exact | ((next_t - prev_t) <= max_gap_days)
        cols[col] = np.where(gap_ok, vals, np.nan)
    return pd.DataFrame(cols, index=days, columns=df.columns, dtype=float)  # built at once: one block, not one per column


def aggregate_cube(ds: xr.Dataset, lat: float, lon: float, *, variables: Sequence[str] | None = None,
                   size_px: int = DEFAULT_WINDOW_PX, source: str = "cube",
                   window: tuple[slice, slice, np.ndarray] | None = None) -> pd.DataFrame:
    """Window-mean of a cube's per-time variables at the tower.

    ``variables`` (default all ``time, y, x`` variables except ``valid``/``SCL``)
    become columns; a variable ``embedding`` with a ``feature`` dim becomes
    ``emb_000``, ``emb_001``, ... A ``valid`` mask, when present, masks every variable.
    ``window`` (row slice, column slice, weights) replaces the Gaussian window, e.g. footprint
    weights (:mod:`ecoembed.gpp.footprint`).

    Returns:
        Table indexed by the cube's ``time`` (one row per time step).

    Raises:
        CubeError: tower outside the cube, or every window pixel invalid at every time.
    """
    rows, cols, w = window if window is not None else window_indices(ds, lat, lon, size_px, source=source)
    win = ds.isel(y=rows, x=cols)
    valid = None
    if "valid" in win:
        valid = np.asarray(win["valid"].transpose("time", "y", "x").values, dtype=bool)
    names = list(variables) if variables is not None else [
        str(v) for v in win.data_vars if v not in ("valid", "SCL") and {"time", "y", "x"} <= set(win[v].dims)]
    times = pd.DatetimeIndex(pd.to_datetime(win["time"].values))
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name not in win:
            raise CubeError(f"{source}: no variable {name!r}; it has {sorted(map(str, win.data_vars))}")
        da = win[name]
        if "feature" in da.dims:
            arr = np.asarray(da.transpose("time", "y", "x", "feature").values, dtype=np.float64)
            m = weighted_window_mean(arr, w, valid)
            for j in range(arr.shape[-1]):
                out[f"emb_{j:03d}" if name == "embedding" else f"{name}_{j:03d}"] = m[:, j]
        else:
            out[name] = weighted_window_mean(np.asarray(da.transpose("time", "y", "x").values, dtype=np.float64), w, valid)
    table = pd.DataFrame(out, index=times)
    if len(table) and not np.isfinite(table.to_numpy(dtype=float)).any():
        raise CubeError(f"{source}: every pixel of the {size_px}x{size_px} window around the tower is NaN/invalid at "
                        "every date; check the cube's valid mask and the site's lat/lon")
    return table


def join_site(flux: pd.DataFrame, features: pd.DataFrame, *, qc_min: float = DEFAULT_QC_MIN,
              feature_sets: dict[str, list[str]] | None = None, site_id: str | None = None,
              source: str = "site") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Inner join of QC-passed GPP days with a daily feature table, and the days-lost accounting.

    Args:
        flux: tidy daily flux table (``date``, ``GPP``, ``GPP_qc``, drivers).
        features: daily features indexed by date (NaN where missing).
        qc_min: minimum ``GPP_qc`` (0..1).
        feature_sets: set name -> its columns; the days-lost table has one row per set
            (default one row, ``all``, over every feature column).
        site_id: label (default ``flux['site_id']``).
        source: named in errors.

    Returns:
        ``(table, days_lost)``: ``table`` holds every flux column and feature column for
        the QC-passed days inside the feature period (rows may still have NaN features;
        each feature set drops its own); ``days_lost`` has ``site_id, features, n_flux_days,
        <LOSS_REASONS>, n_used``.

    Raises:
        InputError: the flux and feature dates do not overlap at all.
    """
    sid = site_id if site_id is not None else str(flux["site_id"].iloc[0])
    f = flux.copy()
    f["date"] = pd.to_datetime(f["date"]).dt.floor("D")
    feats = features.copy()
    feats.index = pd.DatetimeIndex(feats.index).floor("D")
    feats.index.name = "date"
    if feats.empty or f.empty:
        raise InputError(f"{source}: no {'feature' if feats.empty else 'flux'} days")
    lo, hi = feats.index.min(), feats.index.max()
    inside = (f["date"] >= lo) & (f["date"] <= hi)
    if not inside.any():
        raise InputError(f"{source}: flux days {f['date'].min().date()}..{f['date'].max().date()} do not overlap the "
                         f"feature cube's days {lo.date()}..{hi.date()}; give a cube covering the tower years")
    overlap = [c for c in feats.columns if c in f.columns]
    merged = f.merge(feats.drop(columns=overlap), left_on="date", right_index=True, how="left")
    gpp_ok = np.isfinite(merged["GPP"].to_numpy(float))
    qc_ok = qc_pass(merged, qc_min).to_numpy()
    sets = feature_sets or {"all": list(feats.columns)}
    rows = []
    for name, cols in sets.items():
        have = [c for c in cols if c in merged.columns]
        feat_ok = np.isfinite(merged[have].to_numpy(float)).all(axis=1) if have else np.ones(len(merged), bool)
        left = np.ones(len(merged), bool)
        counts = {}
        for reason, fails in (("gpp_missing", ~gpp_ok), ("qc_failed", ~qc_ok), ("outside_cube_period", ~inside.to_numpy()),
                              ("features_missing", ~feat_ok)):
            hit = left & fails
            counts[reason] = int(hit.sum())
            left &= ~hit
        rows.append({"site_id": sid, "features": name, "n_flux_days": len(merged), **counts, "n_used": int(left.sum())})
    table = merged[gpp_ok & qc_ok & inside.to_numpy()].reset_index(drop=True).copy()  # copy: one block per dtype
    table["site_id"] = sid
    return table, pd.DataFrame(rows)
