"""Skill metrics of predicted against observed GPP (gC m-2 d-1), per site and pooled.

``r2`` is the squared Pearson correlation; ``nse`` the Nash-Sutcliffe
efficiency (1 - SSE / SS about the observed mean); ``rmse``, ``mae`` and
``bias`` (mean predicted - observed) are in the unit of the inputs; ``kge`` is
the Kling-Gupta efficiency (2009) with its components ``kge_r`` (Pearson r),
``kge_alpha`` (sd ratio pred/obs) and ``kge_beta`` (mean ratio pred/obs).
Only pairs where both values are finite are used; ``n`` counts them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ecoembed.errors import InputError

METRICS: tuple[str, ...] = ("n", "r2", "nse", "rmse", "mae", "bias", "kge", "kge_r", "kge_alpha", "kge_beta")
"""Column names of the metric tables, in order."""


def compute_metrics(observed: object, predicted: object) -> dict[str, float]:
    """All metrics of ``predicted`` vs ``observed`` (1-D, same length) on the pairs where both are finite.

    Edge cases (the one definition used by every table of the project):

    * ``n`` counts the finite pairs; with none, every score is NaN;
    * ``rmse``, ``mae`` and ``bias`` need one pair;
    * ``r2``, ``nse`` and ``kge`` need two pairs and an observed series that is
      not constant; ``r2`` (and ``kge``) also a predicted series that is not
      constant. "Constant" allows float round-off (a standard deviation below
      1e-9 of the series' magnitude), as after subtracting a mean.

    Raises:
        InputError: the two inputs differ in length.
    """
    o = np.asarray(observed, dtype=float).ravel()
    p = np.asarray(predicted, dtype=float).ravel()
    if o.shape != p.shape:
        raise InputError(f"observed ({o.size}) and predicted ({p.size}) differ in length")
    ok = np.isfinite(o) & np.isfinite(p)
    o, p = o[ok], p[ok]
    n = int(o.size)
    out = dict.fromkeys(METRICS, float("nan"))
    out["n"] = float(n)
    if n == 0:
        return out
    err = p - o
    out["rmse"] = float(np.sqrt(np.mean(err**2)))
    out["mae"] = float(np.mean(np.abs(err)))
    out["bias"] = float(np.mean(err))
    if n < 2:
        return out
    do, dp = o - o.mean(), p - p.mean()
    so, sp = float(np.sqrt(np.mean(do**2))), float(np.sqrt(np.mean(dp**2)))
    scale = so + sp + abs(float(o.mean())) + abs(float(p.mean())) or 1.0
    if so <= 1e-9 * scale:
        return out
    out["nse"] = 1.0 - float(np.sum(err**2)) / float(np.sum(do**2))
    out["kge_alpha"] = sp / so
    out["kge_beta"] = float(p.mean() / o.mean()) if o.mean() != 0 else float("nan")
    if sp <= 1e-9 * scale:
        return out
    r = float(np.sum(do * dp)) / (n * so * sp)
    out["r2"] = r * r
    out["kge_r"] = r
    out["kge"] = float(1.0 - np.sqrt((r - 1) ** 2 + (out["kge_alpha"] - 1) ** 2 + (out["kge_beta"] - 1) ** 2))
    return out


def r2(observed: object, predicted: object) -> float:
    """Squared Pearson correlation."""
    return compute_metrics(observed, predicted)["r2"]


def nse(observed: object, predicted: object) -> float:
    """Nash-Sutcliffe efficiency."""
    return compute_metrics(observed, predicted)["nse"]


def rmse(observed: object, predicted: object) -> float:
    """Root-mean-square error (unit of the inputs)."""
    return compute_metrics(observed, predicted)["rmse"]


def mae(observed: object, predicted: object) -> float:
    """Mean absolute error (unit of the inputs)."""
    return compute_metrics(observed, predicted)["mae"]


def bias(observed: object, predicted: object) -> float:
    """Mean of predicted - observed (unit of the inputs)."""
    return compute_metrics(observed, predicted)["bias"]


def kge(observed: object, predicted: object) -> float:
    """Kling-Gupta efficiency."""
    return compute_metrics(observed, predicted)["kge"]


def metrics_table(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Metrics of ``df`` (columns ``observed``, ``predicted``) for every group of ``by``.

    Returns:
        One row per group: the ``by`` columns then :data:`METRICS`.
    """
    rows = []
    for key, g in df.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key, strict=True)), **compute_metrics(g["observed"], g["predicted"])})
    out = pd.DataFrame(rows, columns=[*by, *METRICS])
    out["n"] = out["n"].astype(int)
    return out


def pooled_metrics(oof: pd.DataFrame, model_cols: Sequence[str] = ("features", "head")) -> pd.DataFrame:
    """Metrics over all sites' out-of-fold rows together, one row per model (``features``, ``head``)."""
    return metrics_table(oof, [c for c in model_cols if c in oof.columns])


def per_site_metrics(oof: pd.DataFrame, model_cols: Sequence[str] = ("features", "head")) -> pd.DataFrame:
    """Metrics per model and ``site_id``."""
    return metrics_table(oof, [*[c for c in model_cols if c in oof.columns], "site_id"])


SUPPORT_BINS: tuple[tuple[int, int], ...] = ((0, 0), (1, 2), (3, 5), (6, 10), (11, 20), (21, 30), (31, 32766))
"""Bins (inclusive, days) of ``days_to_obs``: how far each predicted day is from a valid satellite observation."""


def support_bin_label(lo: int, hi: int) -> str:
    """``"0"``, ``"1-2"`` ... ``">30"`` (days to the nearest observation)."""
    return str(lo) if lo == hi else (f">{lo - 1}" if hi >= 32766 else f"{lo}-{hi}")


def skill_by_support(oof: pd.DataFrame, model_cols: Sequence[str] = ("features", "head")) -> pd.DataFrame:
    """Metrics per model and bin of ``days_to_obs`` (:data:`SUPPORT_BINS`): does skill fall far from observations?

    Returns:
        Columns ``features, head, days_to_obs`` (bin label), then :data:`METRICS`; empty when the
        predictions carry no ``days_to_obs``.
    """
    if "days_to_obs" not in oof.columns:
        return pd.DataFrame(columns=[*model_cols, "days_to_obs", *METRICS])
    days = oof["days_to_obs"].to_numpy(float)
    labels = np.full(len(oof), "", dtype=object)
    for lo, hi in SUPPORT_BINS:
        labels[(days >= lo) & (days <= hi)] = support_bin_label(lo, hi)
    df = oof.assign(days_to_obs=labels)[labels != ""]
    out = metrics_table(df, [*[c for c in model_cols if c in oof.columns], "days_to_obs"])
    order = {support_bin_label(lo, hi): i for i, (lo, hi) in enumerate(SUPPORT_BINS)}
    return out.sort_values([*[c for c in model_cols if c in out.columns], "days_to_obs"],
                           key=lambda s: s.map(order) if s.name == "days_to_obs" else s).reset_index(drop=True)
