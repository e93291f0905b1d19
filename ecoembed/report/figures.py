"""fit-gpp figures: observed vs predicted, per-site skill, seasonal GPP, skill decomposition, phenology.

Plots only: every number comes from a table of the run folder (passed in by
:mod:`ecoembed.report.sections`). GPP axes are in gC m-2 d-1.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ecoembed.errors import InputError
from ecoembed.gpp.decomposition import COMPONENTS
from ecoembed.report.common import GPP_UNIT, model_label, save_figure, top_models

COMPONENT_LABELS = {"daily": "daily", "across_site": "across\nsite", "seasonal_cycle": "seasonal\ncycle",
                    "anomalies": "anomalies", "interannual": "inter-\nannual"}
MAX_MODELS_IN_BARS = 8


def plot_obs_vs_pred(oof: pd.DataFrame, pooled: pd.DataFrame, path: str | os.PathLike[str], *, synthetic: bool = False) -> Path:
    """One hexbin panel of observed vs out-of-fold predicted daily GPP per feature set x head, with the 1:1 line.

    Panel titles show the pooled scores of ``pooled`` (``metrics_pooled.csv``).
    """
    scores = pooled.set_index(["features", "head"])
    models = [tuple(m) for m in oof[["features", "head"]].drop_duplicates().to_numpy()]
    n = len(models)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 4.0 * nrow), squeeze=False)
    ok = np.isfinite(oof["observed"]) & np.isfinite(oof["predicted"])
    lo = float(min(oof.loc[ok, "observed"].min(), oof.loc[ok, "predicted"].min(), 0))
    hi = float(max(oof.loc[ok, "observed"].max(), oof.loc[ok, "predicted"].max()))
    for ax, (fs, h) in zip(axes.ravel(), models, strict=False):
        g = oof[(oof["features"] == fs) & (oof["head"] == h)]
        g = g[np.isfinite(g["observed"]) & np.isfinite(g["predicted"])]
        ax.hexbin(g["observed"], g["predicted"], gridsize=35, extent=(lo, hi, lo, hi), mincnt=1, cmap="viridis", bins="log")
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="1:1")
        m = scores.loc[(fs, h)]
        ax.set_title(f"{model_label(fs, h)}\nr² {m['r2']:.2f}  NSE {m['nse']:.2f}  RMSE {m['rmse']:.2f}", fontsize=9)
        ax.set_xlabel(f"observed GPP ({GPP_UNIT})")
        ax.set_ylabel(f"predicted GPP ({GPP_UNIT})")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.legend(loc="upper left", fontsize=8)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.suptitle("Observed vs out-of-fold predicted daily GPP")
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.45 / fig.get_figheight()))  # keep the suptitle clear of the panels
    return save_figure(fig, path, synthetic=synthetic)


def plot_site_skill(per_site: pd.DataFrame, path: str | os.PathLike[str], *, metric: str = "r2",
                    synthetic: bool = False) -> Path:
    """Grouped bars of a per-site metric (default r²), one bar per feature set x head."""
    df = per_site.assign(model=[model_label(f, h) for f, h in zip(per_site["features"], per_site["head"], strict=True)])
    wide = df.pivot_table(index="site_id", columns="model", values=metric, aggfunc="first")
    sites, models = list(wide.index), list(wide.columns)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(sites) * max(1, len(models)) ** 0.5 + 2), 4.0))
    width = 0.8 / max(1, len(models))
    x = np.arange(len(sites))
    for i, mname in enumerate(models):
        ax.bar(x + i * width - 0.4 + width / 2, wide[mname].to_numpy(float), width, label=mname)
    ax.set_xticks(x, sites, rotation=30, ha="right")
    unit = f" ({GPP_UNIT})" if metric in ("rmse", "mae", "bias") else ""
    ax.set_ylabel(f"{metric}{unit}")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_title(f"Per-site out-of-fold {metric} (held-out site)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return save_figure(fig, path, synthetic=synthetic)


def plot_decomposition(decomp: pd.DataFrame, path: str | os.PathLike[str], *, group: str = "all",
                       max_models: int = MAX_MODELS_IN_BARS, synthetic: bool = False) -> Path:
    """Bars of r2 and NSE per decomposition component, one bar per model (best ``max_models`` by daily NSE)."""
    d = decomp[decomp["group"] == group]
    if d.empty:
        raise InputError(f"decomposition table has no rows for group {group!r}")
    daily = d[d["component"] == "daily"]
    models = top_models(daily, daily["nse"].fillna(-np.inf), max_models)
    comps = [c for c in COMPONENTS if c in set(d["component"])]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(comps))
    cmap = plt.get_cmap("tab10")
    for ax, metric, label in zip(axes, ("r2", "nse", "rmse"), ("r² (squared Pearson)", "NSE", "RMSE"), strict=True):
        for i, (feat, head) in enumerate(models):
            sub = d[(d["features"] == feat) & (d["head"] == head)].set_index("component").reindex(comps)
            vals = sub[metric].to_numpy(dtype=float)
            if metric == "rmse":  # the IAV is annual (gC m-2 yr-1): show it per day to share the axis
                vals = np.where(np.array(comps) == "interannual", vals / 365.25, vals)
            ax.bar(x + (i - (len(models) - 1) / 2) * width, np.nan_to_num(vals, nan=0.0), width,
                   label=model_label(feat, head), color=cmap(i % 10))
        ax.set_xticks(x, [COMPONENT_LABELS[c] for c in comps], fontsize=8)
        ax.axhline(0, color="k", lw=0.6)
        if metric == "rmse":
            ax.set_ylabel(f"RMSE ({GPP_UNIT}; IAV: annual / 365)")
        else:
            ax.set_ylabel(label)
            ax.set_ylim(min(-0.2, np.nanmin(np.r_[d[metric].to_numpy(dtype=float), 0]) - 0.05) if metric == "nse" else 0, 1.0)
        ax.set_title(label)
    handles, labels = axes[0].get_legend_handles_labels()
    rows_below = (len(models) - 1) // 4
    fig.legend(handles, labels, loc="lower center", ncol=min(len(models), 4), fontsize=8, bbox_to_anchor=(0.5, -0.02 - 0.05 * rows_below))
    fig.tight_layout(rect=(0, 0.08 + 0.05 * ((len(models) - 1) // 4), 1, 0.93))
    title = "Skill decomposition (out-of-fold)" + ("" if group == "all" else f", IGBP {group}")
    fig.suptitle(title)
    return save_figure(fig, path, synthetic=synthetic)


def plot_daily_vs_8day(table: pd.DataFrame, path: str | os.PathLike[str], *, max_models: int = 12,
                       synthetic: bool = False) -> Path:
    """Paired bars: r2 and RMSE at daily and 8-day resolution for each model."""
    t = table.copy()
    models = top_models(t, t["nse_daily"].fillna(-np.inf), max_models)
    t = t.set_index(["features", "head"]).loc[models].reset_index()
    labels = [model_label(f, h) for f, h in zip(t["features"], t["head"], strict=True)]
    y = np.arange(len(t))
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(t) + 1.8), sharey=True)
    for ax, metric, xl in ((axes[0], "r2", "r² (squared Pearson)"), (axes[1], "rmse", f"RMSE ({GPP_UNIT})")):
        ax.barh(y - 0.2, t[f"{metric}_daily"], 0.4, label="daily", color="#4c72b0")
        ax.barh(y + 0.2, t[f"{metric}_8day"], 0.4, label="8-day mean", color="#dd8452")
        ax.set_xlabel(xl)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].invert_yaxis()
    axes[0].set_xlim(0, 1)
    axes[0].legend(fontsize=8)
    fig.suptitle("Daily vs 8-day aggregated skill (out-of-fold)")
    return save_figure(fig, path, synthetic=synthetic)


def plot_phenology_errors(pheno: pd.DataFrame, lags: pd.DataFrame | None, path: str | os.PathLike[str], *,
                          models: Sequence[tuple[object, object]] | None = None, synthetic: bool = False) -> Path:
    """SOS/EOS errors (days, predicted - observed) per method and model, and the cross-correlation lags."""
    if models is None:
        models = [tuple(x) for x in pheno[["features", "head"]].drop_duplicates().to_numpy()][:6]
    n_panels = 3 if lags is not None and not lags.empty else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(5 * n_panels, 4.2))
    for ax, ev in zip(axes[:2], ("sos", "eos"), strict=True):
        data, labels = [], []
        for feat, head in models:
            for m in ("threshold", "derivative"):
                e = pheno[(pheno["features"] == feat) & (pheno["head"] == head) & (pheno["method"] == m)][f"{ev}_error_days"]
                e = e.to_numpy(dtype=float)
                data.append(e[np.isfinite(e)])
                labels.append(f"{model_label(feat, head)}\n{m}")
        pos = np.arange(len(data))
        nonempty = [i for i, v in enumerate(data) if v.size]
        if nonempty:
            ax.boxplot([data[i] for i in nonempty], positions=pos[nonempty], orientation="horizontal", widths=0.6)
            for i in nonempty:
                ax.plot(data[i], np.full(data[i].size, pos[i]) + np.random.default_rng(i).uniform(-0.15, 0.15, data[i].size),
                        "o", ms=3, alpha=0.6, color="#4c72b0")
        ax.set_yticks(pos, labels, fontsize=7)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_xlabel("error (days, predicted - observed)")
        ax.set_title({"sos": "Start of season", "eos": "End of season"}[ev])
        ax.invert_yaxis()
    if n_panels == 3:
        ax = axes[2]
        assert lags is not None
        for i, (feat, head) in enumerate(models):
            lv = lags[(lags["features"] == feat) & (lags["head"] == head)]["lag_days"].to_numpy(dtype=float)
            ax.plot(lv, np.full(lv.size, i), "o", ms=5, alpha=0.7)
        ax.set_yticks(np.arange(len(models)), [model_label(f, h) for f, h in models], fontsize=7)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_xlabel("lag of peak cross-correlation (days; > 0: prediction late)")
        ax.set_title("Lag per site")
        ax.invert_yaxis()
    fig.suptitle("Temporal fidelity (out-of-fold)")
    fig.tight_layout()
    return save_figure(fig, path, synthetic=synthetic)


def _msc_with_band(df: pd.DataFrame, col: str, window: int = 15, q: tuple[float, float] = (0.1, 0.9)) -> pd.DataFrame:
    """Per day of year: mean of ``col`` and its q-quantile band over all values within ± window/2 days (circular)."""
    doy = df["date"].dt.day_of_year.to_numpy()
    vals = df[col].to_numpy(dtype=float)
    half = window // 2
    out = []
    for d in range(1, 367):
        dist = np.abs(doy - d)
        dist = np.minimum(dist, 366 - dist)
        v = vals[(dist <= half) & np.isfinite(vals)]
        out.append((d, v.mean() if v.size else np.nan, *(np.quantile(v, q) if v.size >= 3 else (np.nan, np.nan))))
    return pd.DataFrame(out, columns=["doy", "mean", "lo", "hi"])


def plot_seasonal(oof: pd.DataFrame, path: str | os.PathLike[str], *, features: str, head: str,
                  per_site: pd.DataFrame | None = None, site: str | None = None, max_sites: int = 12,
                  synthetic: bool = False) -> Path:
    """Observed vs predicted daily GPP and the mean seasonal cycle with its spread, per site.

    Args:
        oof: out-of-fold predictions.
        path: PNG to write.
        features, head: the model to show.
        per_site: ``metrics_per_site.csv`` of the run: its scores go into the panel titles.
        site: one site (default: every site, up to ``max_sites`` panels).
        max_sites: most panels drawn.
        synthetic: stamp the figure SYNTHETIC DATA.

    Left of each row: the daily series; right: the mean seasonal cycle (15-day
    circular window) of observed and predicted GPP with the 10-90 % band of the
    daily values in that window.
    """
    df = oof.assign(date=pd.to_datetime(oof["date"]))
    df = df[np.isfinite(df["observed"].to_numpy(float)) & np.isfinite(df["predicted"].to_numpy(float))]
    scores = None if per_site is None else per_site.astype({"site_id": str}).set_index(["features", "head", "site_id"])
    sel = df[(df["features"].astype(str) == str(features)) & (df["head"].astype(str) == str(head))]
    if sel.empty:
        known = sorted({model_label(f, h) for f, h in df[["features", "head"]].drop_duplicates().to_numpy()})
        raise InputError(f"no out-of-fold predictions for features={features!r}, head={head!r}; runs hold {known}")
    sites = sorted(sel["site_id"].astype(str).unique())
    if site is not None:
        if str(site) not in sites:
            raise InputError(f"site {site!r} is not in the run's predictions; sites: {', '.join(sites)}")
        sites = [str(site)]
    sites = sites[:max_sites]
    fig, axes = plt.subplots(len(sites), 2, figsize=(14, 2.8 * len(sites) + 0.6), squeeze=False,
                             gridspec_kw={"width_ratios": [2.2, 1]})
    for row, s in enumerate(sites):
        g = sel[sel["site_id"].astype(str) == s].sort_values("date")
        ax = axes[row, 0]
        ax.plot(g["date"], g["observed"], ".", ms=2.5, color="0.35", label="observed (tower)")
        full = g.set_index("date")["predicted"].asfreq("D")
        ax.plot(full.index, full.to_numpy(), "-", marker=".", ms=2.5, lw=1.1, color="#dd5500",
                label="predicted (out-of-fold)")  # markers: days between gaps show too
        ax.set_ylabel(f"GPP ({GPP_UNIT})")
        key = (str(features), str(head), s)
        if scores is not None and key in scores.index:
            sc = scores.loc[key]  # type: ignore[index]  # a MultiIndex row
            ax.set_title(f"{s}: r² {sc['r2']:.2f}, NSE {sc['nse']:.2f}, RMSE {sc['rmse']:.2f} ({int(sc['n'])} days)", fontsize=9)
        else:
            ax.set_title(f"{s} ({len(g)} days)", fontsize=9)
        ax2 = axes[row, 1]
        for col, color, lab in (("observed", "0.3", "observed"), ("predicted", "#dd5500", "predicted")):
            m = _msc_with_band(g, col)
            ax2.fill_between(m["doy"], m["lo"], m["hi"], color=color, alpha=0.18, lw=0)
            ax2.plot(m["doy"], m["mean"], color=color, lw=1.6, label=f"{lab} MSC (10-90 % band)")
        ax2.set_xlim(1, 366)
        ax2.set_ylabel(f"GPP ({GPP_UNIT})")
        if row == 0:
            ax.legend(fontsize=7, loc="upper left")
            ax2.legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("date")
    axes[-1, 1].set_xlabel("day of year")
    fig.suptitle(f"Seasonal GPP, {model_label(features, head)} (out-of-fold)")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))  # keep the title clear of the first panel's
    return save_figure(fig, path, synthetic=synthetic)


def plot_site_map(sites: pd.DataFrame, path: str | os.PathLike[str], *, metric: str = "r2", title: str = "",
                  synthetic: bool = False) -> Path:
    """Towers at their lat/lon (degrees, WGS84), coloured by a per-site metric; no basemap (nothing is downloaded).

    ``sites``: ``site_id, lat, lon, <metric>``. The x axis is stretched by 1/cos(mean latitude) so distances
    look right near the sites; a site without a score is drawn hollow.
    """
    df = sites.assign(lat=pd.to_numeric(sites["lat"], errors="coerce"), lon=pd.to_numeric(sites["lon"], errors="coerce"),
                      value=pd.to_numeric(sites[metric], errors="coerce")).dropna(subset=["lat", "lon"])
    if df.empty:
        raise InputError("no site has finite lat/lon: nothing to map")
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    scored = df[np.isfinite(df["value"])]
    vmin = float(min(0.0, scored["value"].min())) if len(scored) else 0.0
    sc = ax.scatter(scored["lon"], scored["lat"], c=scored["value"], cmap="RdYlGn", vmin=vmin, vmax=1.0 if metric in
                    ("r2", "nse", "kge") else None, s=70, edgecolor="k", linewidth=0.6, zorder=3)
    unscored = df[~np.isfinite(df["value"])]
    ax.scatter(unscored["lon"], unscored["lat"], facecolor="none", edgecolor="grey", s=70, zorder=2,
               label="no score" if len(unscored) else None)
    for sid, lon, lat in zip(df["site_id"].astype(str), df["lon"].to_numpy(float), df["lat"].to_numpy(float), strict=True):
        ax.annotate(sid, (float(lon), float(lat)), xytext=(4, 4), textcoords="offset points", fontsize=7)
    pad_lat = max(0.05, 0.1 * float(df["lat"].max() - df["lat"].min()))
    pad_lon = max(0.05, 0.1 * float(df["lon"].max() - df["lon"].min()))
    ax.set_xlim(float(df["lon"].min()) - pad_lon, float(df["lon"].max()) + pad_lon)
    ax.set_ylim(float(df["lat"].min()) - pad_lat, float(df["lat"].max()) + pad_lat)
    ax.set_aspect(1.0 / max(np.cos(np.deg2rad(float(df["lat"].mean()))), 0.1))
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    ax.grid(alpha=0.3)
    fig.colorbar(sc, ax=ax, label=f"held-out site {metric}", shrink=0.8)
    if len(unscored):
        ax.legend(fontsize=7, loc="best")
    ax.set_title(title or f"Per-site {metric} ({len(scored)} of {len(df)} sites scored)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, synthetic=synthetic)


def plot_skill_ranking(diffs: pd.DataFrame, path: str | os.PathLike[str], *, reference: str,
                       synthetic: bool = False) -> Path:
    """Paired r2 difference of each model minus the reference, with its 95 % bootstrap interval (one row per model).

    ``diffs``: ``model, d_r2, d_r2_lo, d_r2_hi`` (a row per model, any order; drawn best on top).
    """
    df = diffs.sort_values("d_r2", ascending=True).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.0, 0.32 * len(df) + 1.4))
    y = np.arange(len(df))
    d = df["d_r2"].to_numpy(float)
    err = np.vstack([d - df["d_r2_lo"].to_numpy(float), df["d_r2_hi"].to_numpy(float) - d])
    colours = np.where(df["d_r2_lo"].to_numpy(float) > 0, "#1b7837", np.where(df["d_r2_hi"].to_numpy(float) < 0, "#b2182b", "#555555"))
    for colour in np.unique(colours):
        k = colours == colour
        ax.errorbar(d[k], y[k], xerr=np.nan_to_num(err[:, k]), fmt="none", ecolor=str(colour), elinewidth=1.4, capsize=3)
    ax.scatter(d, y, c=colours, zorder=3, s=25)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, df["model"].astype(str), fontsize=7)
    ax.set_xlabel(f"r² of model − r² of {reference} (paired site-days, 95 % interval over sites)")
    ax.set_title("Skill against the reference baseline: green = better, red = worse, grey = not resolved", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, synthetic=synthetic)
