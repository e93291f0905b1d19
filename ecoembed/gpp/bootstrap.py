"""Uncertainty of skill: block bootstrap over sites (or site-years) of pooled metrics and of paired differences.

Daily rows of one tower are not independent, so the resampling unit is a
block: a site when the run has at least :data:`MIN_SITE_BLOCKS` sites, else a
site-year (single-site or few-site runs, e.g. ``--cv year``). Each replicate
draws as many blocks as there are, with replacement, and recomputes the
pooled metric from the blocks' sufficient statistics (sums of o, p, o², p², op,
|p - o|), so 2000 replicates of every model cost one matrix product.

Intervals are percentile intervals (``level`` = 0.95 gives the 2.5 and 97.5 %
quantiles). A paired difference ``A - B`` uses the same resampled blocks for
both models, which is valid only when they are scored on the same rows
(``fit-gpp`` pairs them by default); ``p_not_better`` is the share of
replicates in which A is not better than B (a one-sided bootstrap p-value).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ecoembed.errors import InputError

MIN_SITE_BLOCKS = 5
"""Fewer sites than this and the bootstrap resamples site-years instead."""
DEFAULT_N_BOOT = 2000
INTERVAL_METRICS: tuple[str, ...] = ("r2", "nse", "rmse", "bias")
"""Metrics that get ``<metric>_lo`` / ``<metric>_hi`` columns."""
HIGHER_IS_BETTER: dict[str, bool] = {"r2": True, "nse": True, "rmse": False, "bias": False}
_SUMS = 7  # n, so, sp, soo, spp, sop, sabs


def block_labels(oof: pd.DataFrame, unit: str | None = None) -> tuple[np.ndarray, str]:
    """Block id of each row and the unit used (``site`` or ``site-year``).

    ``unit=None`` chooses ``site`` with >= :data:`MIN_SITE_BLOCKS` sites, else ``site-year``.
    """
    sites = oof["site_id"].astype(str).to_numpy()
    if unit is None:
        unit = "site" if len(np.unique(sites)) >= MIN_SITE_BLOCKS else "site-year"
    if unit == "site":
        return sites, unit
    if unit != "site-year":
        raise InputError(f"bootstrap unit {unit!r}: use 'site' or 'site-year'")
    years = pd.to_datetime(oof["date"]).dt.year.astype(str).to_numpy()
    return np.char.add(np.char.add(sites.astype(str), "/"), years.astype(str)), unit


def _block_sums(observed: np.ndarray, predicted: np.ndarray, codes: np.ndarray, n_blocks: int) -> np.ndarray:
    """(n_blocks, 7) sums of the finite pairs of each block."""
    ok = np.isfinite(observed) & np.isfinite(predicted)
    o, p, c = observed[ok], predicted[ok], codes[ok]
    cols = [np.ones_like(o), o, p, o * o, p * p, o * p, np.abs(p - o)]
    out = np.zeros((n_blocks, _SUMS))
    for j, v in enumerate(cols):
        out[:, j] = np.bincount(c, weights=v, minlength=n_blocks)
    return out


def metrics_from_sums(sums: np.ndarray) -> dict[str, np.ndarray]:
    """``r2, nse, rmse, mae, bias, n`` from sufficient statistics ``(..., 7)``.

    Same definitions as :func:`ecoembed.gpp.metrics.compute_metrics`; NaN where undefined.
    """
    n, so, sp, soo, spp, sop, sabs = (sums[..., j] for j in range(_SUMS))
    with np.errstate(invalid="ignore", divide="ignore"):
        mo, mp = so / n, sp / n
        vo = np.maximum(soo / n - mo * mo, 0.0)
        vp = np.maximum(spp / n - mp * mp, 0.0)
        cov = sop / n - mo * mp
        sse = soo + spp - 2 * sop
        r = cov / np.sqrt(vo * vp)
        out = {
            "r2": np.where((vo > 1e-18) & (vp > 1e-18), r * r, np.nan),
            "nse": np.where(vo > 1e-18, 1.0 - sse / (n * vo), np.nan),
            "rmse": np.sqrt(np.maximum(sse / n, 0.0)),
            "mae": sabs / n,
            "bias": mp - mo,
            "n": n,
        }
    return out


def _resample_counts(n_blocks: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_blocks) multinomial counts: how often each block is drawn in each replicate."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_blocks, size=(n_boot, n_blocks))
    counts = np.zeros((n_boot, n_blocks))
    np.add.at(counts, (np.repeat(np.arange(n_boot), n_blocks), draws.ravel()), 1.0)
    return counts


def bootstrap_replicates(oof: pd.DataFrame, model_cols: Sequence[str] = ("features", "head"), *, unit: str | None = None,
                         n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> tuple[dict[tuple[object, ...], dict[str, np.ndarray]], str, int]:
    """Bootstrap replicates of the pooled metrics of every model, all drawn from the same block resamples.

    Returns:
        ``(replicates, unit, n_blocks)``: model key -> metric -> array (n_boot,).
    """
    cols = [c for c in model_cols if c in oof.columns]
    labels, unit = block_labels(oof, unit)
    uniq, codes = np.unique(labels, return_inverse=True)
    counts = _resample_counts(len(uniq), n_boot, seed)
    out: dict[tuple[object, ...], dict[str, np.ndarray]] = {}
    groups = oof.groupby(cols, sort=True).indices if cols else {(): np.arange(len(oof))}
    obs, pred = oof["observed"].to_numpy(float), oof["predicted"].to_numpy(float)
    for key, idx in groups.items():
        k = key if isinstance(key, tuple) else (key,)
        sums = _block_sums(obs[idx], pred[idx], codes[idx], len(uniq))
        out[k] = metrics_from_sums(counts @ sums)
    return out, unit, len(uniq)


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size < 10:
        return float("nan"), float("nan")
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(v, [a, 1.0 - a])
    return float(lo), float(hi)


def bootstrap_intervals(oof: pd.DataFrame, model_cols: Sequence[str] = ("features", "head"), *, unit: str | None = None,
                        n_boot: int = DEFAULT_N_BOOT, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Percentile intervals of each model's pooled metrics (:data:`INTERVAL_METRICS`).

    Returns:
        One row per model: the ``model_cols``, ``<metric>_lo``, ``<metric>_hi``, ``ci_unit``
        (``site`` or ``site-year``), ``ci_blocks`` (blocks resampled) and ``ci_level``.
    """
    cols = [c for c in model_cols if c in oof.columns]
    reps, unit, n_blocks = bootstrap_replicates(oof, cols, unit=unit, n_boot=n_boot, seed=seed)
    rows = []
    for key, m in reps.items():
        row: dict[str, object] = dict(zip(cols, key, strict=True))
        for name in INTERVAL_METRICS:
            row[f"{name}_lo"], row[f"{name}_hi"] = _interval(m[name], level)
        row.update({"ci_unit": unit, "ci_blocks": n_blocks, "ci_level": level})
        rows.append(row)
    return pd.DataFrame(rows, columns=[*cols, *[f"{n}_{s}" for n in INTERVAL_METRICS for s in ("lo", "hi")],
                                       "ci_unit", "ci_blocks", "ci_level"])


def paired_differences(oof: pd.DataFrame, pairs: Sequence[tuple[tuple[str, str], tuple[str, str]]], *,
                       unit: str | None = None, n_boot: int = DEFAULT_N_BOOT, seed: int = 0, level: float = 0.95,
                       ) -> pd.DataFrame:
    """Difference ``A - B`` of pooled r2, NSE and RMSE for each pair of models ``((features, head), (features, head))``.

    Both models are resampled with the same blocks. The point estimate is the
    difference on all rows; ``n_a``/``n_b`` count each model's scored rows (equal when
    paired; a pair whose row sets differ is still reported, with ``paired`` False).

    Returns:
        ``features, head, vs_features, vs_head, n_a, n_b, paired``, then per metric
        ``d_<m>``, ``d_<m>_lo``, ``d_<m>_hi``, ``p_not_better_<m>``, and ``ci_unit``.
    """
    reps, unit_used, _ = bootstrap_replicates(oof, ("features", "head"), unit=unit, n_boot=n_boot, seed=seed)
    full = {k: metrics_from_sums(v) for k, v in _full_sums(oof).items()}
    keys = {(str(k[0]), str(k[1])): k for k in reps}
    rows = []
    for a, b in pairs:
        if a not in keys or b not in keys or a == b:
            continue
        ka, kb = keys[a], keys[b]
        ga = oof[(oof["features"] == a[0]) & (oof["head"] == a[1])]
        gb = oof[(oof["features"] == b[0]) & (oof["head"] == b[1])]
        same = len(ga) == len(gb) and set(zip(ga["site_id"], ga["date"], strict=True)) == set(zip(gb["site_id"], gb["date"], strict=True))
        row: dict[str, object] = {"features": a[0], "head": a[1], "vs_features": b[0], "vs_head": b[1],
                                  "n_a": int(full[ka]["n"]), "n_b": int(full[kb]["n"]), "paired": same}
        for m in ("r2", "nse", "rmse"):
            d = reps[ka][m] - reps[kb][m]
            row[f"d_{m}"] = float(full[ka][m] - full[kb][m])
            row[f"d_{m}_lo"], row[f"d_{m}_hi"] = _interval(d, level)
            finite = d[np.isfinite(d)]
            worse = finite <= 0 if HIGHER_IS_BETTER[m] else finite >= 0
            row[f"p_not_better_{m}"] = float(np.mean(worse)) if finite.size else float("nan")
        row["ci_unit"] = unit_used
        rows.append(row)
    return pd.DataFrame(rows)


def _full_sums(oof: pd.DataFrame) -> dict[tuple[object, ...], np.ndarray]:
    """Sufficient statistics of every model on all its rows, plus ``n``."""
    out = {}
    obs, pred = oof["observed"].to_numpy(float), oof["predicted"].to_numpy(float)
    for key, idx in oof.groupby(["features", "head"], sort=True).indices.items():
        k = key if isinstance(key, tuple) else (key,)
        s = _block_sums(obs[idx], pred[idx], np.zeros(len(idx), dtype=int), 1)[0]
        out[k] = s
    return {k: np.asarray(v) for k, v in out.items()}
