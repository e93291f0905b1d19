"""Fitted GPP models kept on disk, without pickle, and split-conformal intervals.

After cross-validation ``fit-gpp`` refits every requested head on *all* sites
and keeps it under ``<run>/models/<features>__<head>/``:

* ``model.json``: the contract (:data:`MODEL_FORMAT`): feature set, column
  names in order, the standardisation learnt on the training rows, the
  training envelope (per-column min / max / 1st / 99th percentile and the
  training period), the conformal table, the embedding checkpoints and grid
  resolution of the training cubes, and the SHA-256 of each payload file;
* the payload: ``linear`` and ``ridge`` coefficients in ``model.json`` itself,
  ``xgboost.json`` (xgboost's own JSON model format), ``mlp.safetensors``
  (the network's tensors; the layer widths are in ``model.json``).

:func:`load_model` re-hashes every payload file before using it and refuses a
model whose files changed; nothing is unpickled.

Uncertainty: split-conformal intervals calibrated on the *out-of-fold*
residuals of the cross-validation (each residual is a prediction for a site
the model had not seen), made adaptive by binning on the predicted value
(Mondrian conformal: GPP errors grow with GPP). An interval at level ``p`` is
``prediction +- q_p(bin)`` with ``q_p`` the ``ceil((n + 1) p)``-th smallest
absolute residual of the bin. :func:`held_out_coverage` checks the promise
on whole held-out sites: each site's days are covered by intervals calibrated
on the other sites only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ecoembed.errors import CheckpointError, InputError
from ecoembed.io_utils import atomic_path, atomic_write_text

MODEL_FORMAT = "ecoembed-gpp-model/1"
"""``format`` field of ``model.json``; :func:`load_model` refuses other formats."""
CONFORMAL_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)
"""Interval levels stored with every model."""
CONFORMAL_BINS = 4
"""Bins of the predicted value (equal counts of out-of-fold days) for the adaptive intervals."""
MODELS_DIR = "models"
"""Folder of a run holding the kept models."""


def model_dir_name(features: str, head: str) -> str:
    """Folder name of a kept model: ``embeddings_meteo__xgboost`` for ``embeddings+meteo`` / ``xgboost``."""
    safe = "".join(ch if ch.isalnum() else "_" for ch in features)
    return f"{safe}__{head}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- conformal intervals -----------------------------------------------------------------------


def _quantile_rank(abs_residuals: np.ndarray, level: float) -> float:
    """The ``ceil((n + 1) level)``-th smallest value (finite-sample split-conformal quantile; the largest when n is small)."""
    r = np.sort(abs_residuals[np.isfinite(abs_residuals)])
    if r.size == 0:
        return float("nan")
    k = min(math.ceil((r.size + 1) * level), r.size)
    return float(r[k - 1])


def conformal_table(predicted: np.ndarray, observed: np.ndarray, *, levels: Sequence[float] = CONFORMAL_LEVELS,
                    n_bins: int = CONFORMAL_BINS) -> dict[str, Any]:
    """Half-widths of the conformal intervals per bin of the predicted value.

    Args:
        predicted, observed: out-of-fold predictions and observations (gC m-2 d-1).
        levels: interval levels (0-1).
        n_bins: bins of equal counts of ``predicted``.

    Returns:
        ``{"edges": inner bin edges (gC m-2 d-1), "levels": [...], "half_width": [[q per bin] per level],
        "n": [days per bin]}``.
    """
    p = np.asarray(predicted, dtype=float)
    o = np.asarray(observed, dtype=float)
    ok = np.isfinite(p) & np.isfinite(o)
    p, r = p[ok], np.abs(o[ok] - p[ok])
    if p.size < 2 * n_bins:
        n_bins = 1
    edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)[1:-1])) if n_bins > 1 and p.size else np.array([])
    b = np.searchsorted(edges, p, side="right")
    half = [[_quantile_rank(r[b == i], lv) for i in range(len(edges) + 1)] for lv in levels]
    return {"edges": [float(e) for e in edges], "levels": [float(lv) for lv in levels], "half_width": half,
            "n": [int((b == i).sum()) for i in range(len(edges) + 1)]}


def interval_half_width(table: dict[str, Any], predicted: np.ndarray, level: float) -> np.ndarray:
    """Half-width (gC m-2 d-1) of the ``level`` interval around each prediction (NaN where the prediction is).

    Raises:
        InputError: ``level`` is not one of the table's levels.
    """
    levels = [float(v) for v in table["levels"]]
    if not any(abs(level - lv) < 1e-9 for lv in levels):
        raise InputError(f"interval level {level}: the model stores {', '.join(f'{v:g}' for v in levels)}; choose one of them")
    row = np.asarray(table["half_width"][[abs(level - lv) < 1e-9 for lv in levels].index(True)], dtype=float)
    p = np.asarray(predicted, dtype=float)
    b = np.searchsorted(np.asarray(table["edges"], dtype=float), np.nan_to_num(p), side="right")
    return np.where(np.isfinite(p), row[b], np.nan)


def held_out_coverage(oof: pd.DataFrame, *, levels: Sequence[float] = CONFORMAL_LEVELS,
                      n_bins: int = CONFORMAL_BINS) -> pd.DataFrame:
    """Coverage of the conformal intervals on whole held-out sites.

    For each site the intervals are calibrated on the other sites' out-of-fold
    residuals and applied to that site's out-of-fold predictions; the pooled
    fraction of covered days is what a map pixel at a new site can expect.

    Args:
        oof: out-of-fold table of one model (``site_id``, ``observed``, ``predicted``).

    Returns:
        One row per level: ``level``, ``coverage`` (0-1), ``n`` (days), ``sites``,
        ``coverage_min_site`` (the worst site's coverage).
    """
    rows = []
    sites = oof["site_id"].astype(str).to_numpy()
    p, o = oof["predicted"].to_numpy(float), oof["observed"].to_numpy(float)
    ok = np.isfinite(p) & np.isfinite(o)
    for lv in levels:
        covered = np.zeros(len(oof), dtype=bool)
        per_site = []
        for s in np.unique(sites):
            here = (sites == s) & ok
            cal = (sites != s) & ok
            if not here.any() or cal.sum() < 2:
                continue
            table = conformal_table(p[cal], o[cal], levels=(lv,), n_bins=n_bins)
            hw = interval_half_width(table, p[here], lv)
            hit = np.abs(o[here] - p[here]) <= hw
            covered[here] = hit
            per_site.append(float(hit.mean()))
        n = int(ok.sum())
        rows.append({"level": lv, "coverage": float(covered[ok].mean()) if n else float("nan"), "n": n,
                     "sites": len(per_site), "coverage_min_site": min(per_site) if per_site else float("nan")})
    return pd.DataFrame(rows)


# --- saving ------------------------------------------------------------------------------------


def envelope(X: np.ndarray, columns: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per-column min / max / 1st / 99th percentile of the finite training values."""
    out = {}
    for j, c in enumerate(columns):
        v = X[:, j][np.isfinite(X[:, j])]
        if v.size == 0:
            out[str(c)] = {"min": float("nan"), "max": float("nan"), "p01": float("nan"), "p99": float("nan")}
            continue
        p01, p99 = np.percentile(v, [1, 99])
        out[str(c)] = {"min": float(v.min()), "max": float(v.max()), "p01": float(p01), "p99": float(p99)}
    return out


def _payload(est: Any, head: str, folder: Path) -> tuple[dict[str, Any], list[str]]:
    """The head's parameters (JSON) and the payload files written into ``folder``."""
    scaler = {"mean": [float(v) for v in est.mean_], "scale": [float(v) for v in est.scale_]}
    if head == "linear":
        return {"kind": "linear", "scaler": scaler, "intercept": float(est.params_[0]),
                "coef": [float(v) for v in est.params_[1:]]}, []
    if head == "ridge":
        return {"kind": "linear", "scaler": scaler, "intercept": float(est.model_.intercept_),
                "coef": [float(v) for v in np.ravel(est.model_.coef_)], "alpha": float(est.alpha_)}, []
    if head == "xgboost":
        est.model_.get_booster().save_model(str(folder / "xgboost.json"))
        return {"kind": "xgboost", "scaler": scaler, "file": "xgboost.json"}, ["xgboost.json"]
    if head == "mlp":
        from safetensors.torch import save_file

        tensors = {k: v.detach().cpu().contiguous() for k, v in est.net_.state_dict().items()}
        save_file(tensors, str(folder / "mlp.safetensors"))
        return {"kind": "mlp", "scaler": scaler, "file": "mlp.safetensors", "hidden": [int(h) for h in est.hidden],
                "y_mean": float(est.y_mean_), "y_scale": float(est.y_scale_)}, ["mlp.safetensors"]
    if head == "fixed":
        return {"kind": "fixed"}, []
    raise InputError(f"head {head!r} cannot be kept (no safe format for it)")


def save_model(est: Any, folder: str | os.PathLike[str], *, features: str, head: str, columns: Sequence[str],
               X_train: np.ndarray, dates: pd.Series | Sequence[object], sites: pd.Series | Sequence[str], oof: pd.DataFrame,
               extra: dict[str, Any] | None = None) -> Path:
    """Write a fitted head and its contract to ``folder`` (atomically; replaces nothing else).

    Args:
        est: the head fitted on all sites (:mod:`ecoembed.gpp.heads`).
        features, head: the model's labels.
        columns: feature columns, in the order ``est`` was fitted with.
        X_train: the training features (rows x columns) for the envelope.
        dates, sites: training days and site ids.
        oof: this model's out-of-fold predictions (calibrate the intervals).
        extra: more fields for ``model.json`` (embedding checkpoints, grid, window, synthetic, units).

    Returns:
        The folder.
    """
    target = Path(folder)
    with atomic_path(target) as tmp:
        tmp.mkdir()
        params, files = _payload(est, head, tmp)
        d = pd.to_datetime(pd.Series(list(dates)))
        meta: dict[str, Any] = {
            "format": MODEL_FORMAT, "features": features, "head": head, "columns": [str(c) for c in columns],
            "params": params, "units": {"GPP": "gC m-2 d-1"},
            "training": {"n": len(X_train), "sites": sorted({str(s) for s in sites}), "first_day": str(d.min().date()),
                         "last_day": str(d.max().date())},
            "envelope": envelope(np.asarray(X_train, dtype=float), columns),
            "conformal": {**conformal_table(oof["predicted"].to_numpy(float), oof["observed"].to_numpy(float)),
                          "method": "split conformal on out-of-fold (held-out site) absolute residuals, "
                                    f"{CONFORMAL_BINS} bins of the predicted value (Mondrian)"},
            "coverage_held_out_sites": held_out_coverage(oof).to_dict(orient="records"),
            "files": {f: _sha256(tmp / f) for f in files},
            **(extra or {}),
        }
        (tmp / "model.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return target


# --- loading -----------------------------------------------------------------------------------


@dataclass
class KeptModel:
    """A kept model, loaded: :meth:`predict` maps a rows x columns array to GPP (gC m-2 d-1)."""

    path: Path
    meta: dict[str, Any]
    _predict: Callable[[np.ndarray], np.ndarray]

    @property
    def features(self) -> str:
        """The feature-set spec the model was fitted on."""
        return str(self.meta["features"])

    @property
    def head(self) -> str:
        """The head name."""
        return str(self.meta["head"])

    @property
    def columns(self) -> list[str]:
        """Feature columns in the model's order."""
        return [str(c) for c in self.meta["columns"]]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """GPP (gC m-2 d-1) per row; NaN where a feature is not finite (xgboost: where every feature is)."""
        A = np.asarray(X, dtype=float)
        if A.ndim != 2 or A.shape[1] != len(self.columns):
            raise InputError(f"model {self.path.name} takes {len(self.columns)} features, got an array of shape {A.shape}")
        return self._predict(A)

    def interval(self, predicted: np.ndarray, level: float) -> np.ndarray:
        """Half-width of the ``level`` conformal interval around ``predicted`` (gC m-2 d-1)."""
        return interval_half_width(self.meta["conformal"], predicted, level)

    def outside_envelope(self, X: np.ndarray) -> np.ndarray:
        """Per row, how many features lie outside the training min-max range (NaN features do not count)."""
        env = self.meta["envelope"]
        lo = np.array([env[c]["min"] for c in self.columns], dtype=float)
        hi = np.array([env[c]["max"] for c in self.columns], dtype=float)
        A = np.asarray(X, dtype=float)
        with np.errstate(invalid="ignore"):
            return ((lo > A) | (hi < A)).sum(axis=1).astype(np.int16)


def _scaled(params: dict[str, Any], X: np.ndarray) -> np.ndarray:
    mean = np.asarray(params["scaler"]["mean"], dtype=float)
    scale = np.asarray(params["scaler"]["scale"], dtype=float)
    return (X - mean) / scale


def _predictor(params: dict[str, Any], folder: Path) -> Callable[[np.ndarray], np.ndarray]:
    kind = params["kind"]
    if kind == "linear":
        coef, b0 = np.asarray(params["coef"], dtype=float), float(params["intercept"])
        return lambda X: b0 + _scaled(params, X) @ coef
    if kind == "fixed":
        return lambda X: X[:, 0].astype(float)
    if kind == "xgboost":
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(folder / params["file"]))
        booster.set_param({"nthread": 1})

        def predict_xgb(X: np.ndarray) -> np.ndarray:
            Z = _scaled(params, X)
            if not len(Z):
                return np.zeros(0)
            return np.asarray(booster.inplace_predict(Z, missing=np.nan), dtype=float)

        return predict_xgb
    if kind == "mlp":
        from safetensors.torch import load_file

        state = load_file(str(folder / params["file"]))
        layers: list[torch.nn.Module] = []
        width = len(params["scaler"]["mean"])
        for h in params["hidden"]:
            layers += [torch.nn.Linear(width, int(h)), torch.nn.ReLU()]
            width = int(h)
        layers.append(torch.nn.Linear(width, 1))
        net = torch.nn.Sequential(*layers)
        net.load_state_dict(state)
        net.eval()
        y_mean, y_scale = float(params["y_mean"]), float(params["y_scale"])

        def predict_mlp(X: np.ndarray) -> np.ndarray:
            out = np.full(len(X), np.nan)
            ok = np.isfinite(X).all(axis=1)
            if ok.any():
                with torch.no_grad():
                    z = torch.from_numpy(_scaled(params, X[ok]).astype(np.float32))
                    out[ok] = net(z).squeeze(1).numpy() * y_scale + y_mean
            return out

        return predict_mlp
    raise CheckpointError(f"{folder / 'model.json'}: unknown model kind {kind!r}")


def load_model(folder: str | os.PathLike[str]) -> KeptModel:
    """Load a kept model after checking its format and the SHA-256 of every payload file.

    Raises:
        CheckpointError: missing or unreadable ``model.json``, another format, or a payload file that changed.
    """
    p = Path(folder)
    meta_path = p / "model.json"
    if not meta_path.is_file():
        raise CheckpointError(f"{p} holds no model.json; re-run fit-gpp to keep the fitted models")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{meta_path} is not readable JSON ({exc}); re-run fit-gpp") from exc
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{meta_path}: format {meta.get('format') if isinstance(meta, dict) else None!r}, "
                              f"expected {MODEL_FORMAT!r}; re-run fit-gpp with this version")
    for name, digest in dict(meta.get("files", {})).items():
        f = p / name
        if not f.is_file() or _sha256(f) != digest:
            raise CheckpointError(f"{f} is missing or differs from the file fit-gpp wrote (SHA-256); re-run fit-gpp")
    return KeptModel(p, meta, _predictor(meta["params"], p))


def kept_models(run_dir: str | os.PathLike[str]) -> list[str]:
    """Names of the model folders kept in a run (sorted); empty when there are none."""
    root = Path(run_dir) / MODELS_DIR
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if (d / "model.json").is_file())


def write_index(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """``models/index.csv`` (one row per kept model) and ``models/coverage.csv`` (held-out-site coverage per level)."""
    root = run_dir / MODELS_DIR
    index = pd.DataFrame([{k: v for k, v in r.items() if k != "coverage"} for r in rows])
    atomic_write_text(root / "index.csv", index.to_csv(index=False))
    cov = [pd.DataFrame(r["coverage"]).assign(features=r["features"], head=r["head"]) for r in rows if r.get("coverage")]
    if cov:
        atomic_write_text(root / "coverage.csv", pd.concat(cov, ignore_index=True).to_csv(index=False))
