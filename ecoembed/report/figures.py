"""fit-gpp figures: observed vs predicted hexbins, per-site skill bars, seasonal GPP (gC m-2 d-1)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ecoembed.gpp.metrics import compute_metrics  # noqa: E402
from ecoembed.report.temporal import GPP_UNIT, model_label, plot_seasonal, save_figure  # noqa: E402

__all__ = ["plot_obs_vs_pred", "plot_site_skill", "plot_seasonal"]


def plot_obs_vs_pred(oof: pd.DataFrame, path: str | os.PathLike[str], *, synthetic: bool = False) -> Path:
    """One hexbin panel of observed vs out-of-fold predicted daily GPP per feature set x head, with the 1:1 line."""
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
        m = compute_metrics(g["observed"], g["predicted"])
        ax.set_title(f"{model_label(fs, h)}\nr² {m['r2']:.2f}  NSE {m['nse']:.2f}  RMSE {m['rmse']:.2f}", fontsize=9)
        ax.set_xlabel(f"observed GPP ({GPP_UNIT})")
        ax.set_ylabel(f"predicted GPP ({GPP_UNIT})")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.legend(loc="upper left", fontsize=8)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.suptitle("Observed vs out-of-fold predicted daily GPP")
    fig.tight_layout()
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
