"""Interpretability figures (plots only; the tables come from the run folder, see :mod:`ecoembed.gpp.interpret`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from ecoembed.report.common import GPP_UNIT, save_figure

FAMILY_COLORS = {"embedding": "#4c72b0", "indices": "#55a868", "meteo": "#dd8452", "bands": "#8172b3", "other": "#937860"}


def _barh(ax: Axes, labels: Sequence[str], values: np.ndarray, colors: Sequence[str], err: np.ndarray | None = None) -> None:
    y = np.arange(len(labels))
    ax.barh(y, values, xerr=err, color=colors, capsize=2)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.6)


def plot_importance(contrib_family: pd.DataFrame, perm_family: pd.DataFrame, contrib_feature: pd.DataFrame,
                    perm_feature: pd.DataFrame, path: str | os.PathLike[str], *, top: int = 15,
                    synthetic: bool = False) -> Path:
    """2x2 bars: xgboost contributions and permutation importance, per family and per feature (top ``top``)."""
    fig, axes = plt.subplots(2, 2, figsize=(13, 4 + 0.28 * min(top, max(len(contrib_feature), len(perm_feature)))))
    cf = contrib_family
    _barh(axes[0, 0], cf["family"].tolist(), cf["mean_abs_contribution"].to_numpy(),
          [FAMILY_COLORS.get(f, "0.5") for f in cf["family"]])
    axes[0, 0].set_xlabel(f"mean |contribution| ({GPP_UNIT})")
    axes[0, 0].set_title("xgboost exact contributions (pred_contribs), per family")
    pf = perm_family
    _barh(axes[0, 1], pf["group"].tolist(), pf["importance_rmse"].to_numpy(),
          [FAMILY_COLORS.get(f, "0.5") for f in pf["group"]], pf["importance_rmse_std"].to_numpy())
    axes[0, 1].set_xlabel(f"RMSE increase when permuted ({GPP_UNIT})")
    axes[0, 1].set_title("Permutation importance, per family (held-out sites)")
    cft = contrib_feature.head(top)
    _barh(axes[1, 0], cft["feature"].tolist(), cft["mean_abs_contribution"].to_numpy(),
          [FAMILY_COLORS.get(f, "0.5") for f in cft["family"]])
    axes[1, 0].set_xlabel(f"mean |contribution| ({GPP_UNIT})")
    axes[1, 0].set_title(f"Per feature (top {len(cft)})")
    pft = perm_feature.head(top)
    _barh(axes[1, 1], pft["group"].tolist(), pft["importance_rmse"].to_numpy(),
          [FAMILY_COLORS.get(f, "0.5") for f in pft.get("family", pd.Series(["other"] * len(pft)))],
          pft["importance_rmse_std"].to_numpy())
    axes[1, 1].set_xlabel(f"RMSE increase when permuted ({GPP_UNIT})")
    axes[1, 1].set_title(f"Per feature (top {len(pft)})")
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in FAMILY_COLORS.values()]
    fig.legend(handles, list(FAMILY_COLORS), loc="lower center", ncol=len(FAMILY_COLORS), fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return save_figure(fig, path, synthetic=synthetic)


def plot_linear_coefficients(lin: pd.DataFrame, path: str | os.PathLike[str], *, top: int = 20,
                             synthetic: bool = False) -> Path:
    """Standardised OLS coefficients (GPP per SD of the feature) with their confidence intervals (top by |coef|)."""
    t = lin.head(top)
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.3 * len(t)))
    y = np.arange(len(t))
    err = np.vstack([t["coef"] - t["ci_low"], t["ci_high"] - t["coef"]]).astype(float)
    ax.errorbar(t["coef"], y, xerr=err, fmt="o", color="k", ecolor="0.4", capsize=3)
    for yi, fam in zip(y, t["family"], strict=True):
        ax.axhspan(yi - 0.4, yi + 0.4, color=FAMILY_COLORS.get(fam, "0.5"), alpha=0.15, lw=0)
    ax.set_yticks(y, t["feature"].tolist(), fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel(f"coefficient ({GPP_UNIT} per SD of the feature), 95 % CI")
    ax.set_title(f"Linear head: standardised OLS coefficients (top {len(t)} by |coef|)")
    fig.tight_layout()
    return save_figure(fig, path, synthetic=synthetic)


def plot_correlation_heatmap(corr: pd.DataFrame, path: str | os.PathLike[str], *, max_dims: int = 64,
                             synthetic: bool = False) -> Path:
    """Heatmap of embedding dimension (rows) vs index/band/driver (columns) correlations, diverging -1..1."""
    c = corr.iloc[:max_dims]
    fig, ax = plt.subplots(figsize=(1.6 + 0.55 * c.shape[1], 1.5 + 0.16 * c.shape[0]))
    im = ax.imshow(c.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xticks(np.arange(c.shape[1]), [str(x) for x in c.columns], rotation=45, ha="right", fontsize=8)
    step = max(1, c.shape[0] // 32)
    ax.set_yticks(np.arange(0, c.shape[0], step), [str(x) for x in c.index[::step]], fontsize=7)
    fig.colorbar(im, ax=ax, label="Pearson r", shrink=0.8)
    ax.set_title("Embedding dimensions vs indices, S1 dB, drivers")
    fig.tight_layout()
    return save_figure(fig, path, synthetic=synthetic)


def plot_pca_strip(rgb: np.ndarray, dates: Sequence[object], path: str | os.PathLike[str], *,
                   explained: Sequence[float] | None = None, site: str = "", pixel_m: float = 10.0,
                   synthetic: bool = False) -> Path:
    """One RGB tile per date: the first three embedding principal components (shared colour scale)."""
    n = rgb.shape[0]
    fig, axes = plt.subplots(1, n, figsize=(1.9 * n + 0.5, 2.5), squeeze=False)
    for i in range(n):
        ax = axes[0, i]
        img = np.nan_to_num(np.asarray(rgb[i], dtype=float), nan=1.0)  # invalid pixels white
        ax.imshow(img, interpolation="nearest")
        ax.set_title(str(dates[i])[:10], fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    h, w = rgb.shape[1:3]
    axes[0, 0].set_ylabel(f"{h * pixel_m:.0f} m x {w * pixel_m:.0f} m", fontsize=8)
    ev = "" if explained is None else " (variance explained: " + ", ".join(f"{100 * e:.0f} %" for e in explained) + ")"
    fig.suptitle(f"Embedding PCA as RGB over the season{', ' + site if site else ''}{ev}", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, synthetic=synthetic)
