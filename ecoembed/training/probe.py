"""Linear-probe evaluation of frozen stage-1 encoders (how much a ridge regression can read off).

Used by the tests of the shipped weights: a ridge regression, cross-validated over pixels, from the frozen
embedding (or from a baseline feature set, e.g. the per-band mean over valid
dates) to a per-pixel target such as the mean-season LAI.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ecoembed.models.ltae import TemporalAttentionEncoder


def encode_series(
    encoder: TemporalAttentionEncoder,
    values: np.ndarray,
    days: np.ndarray,
    valid: np.ndarray,
    orbit: np.ndarray | None = None,
    batch_size: int = 512,
) -> np.ndarray:
    """Embeddings ``[N, E]`` (float32) of pixel series with a frozen encoder (inference mode).

    Args:
        encoder: stage-1 encoder (``S2Encoder``/``S1Encoder``).
        values: float32 ``[N, T, C]`` normalised values.
        days: int64 ``[T]`` or ``[N, T]`` days since 1970-01-01.
        valid: bool ``[N, T]`` usable dates.
        orbit: int ``[T]``/``[N, T]`` (S1) or None.
        batch_size: series per forward pass.
    """
    encoder.eval()
    n, t = valid.shape
    days_t = torch.as_tensor(np.broadcast_to(np.asarray(days, np.int64), (n, t)).copy())
    orbit_t = None if orbit is None else torch.as_tensor(np.broadcast_to(np.asarray(orbit, np.int64), (n, t)).copy())
    out = []
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            s = slice(i, i + batch_size)
            args = [torch.as_tensor(values[s]), days_t[s], torch.as_tensor(valid[s])]
            if orbit_t is not None:
                args.append(orbit_t[s])
            out.append(encoder(*args).embedding.numpy())
    return np.concatenate(out).astype(np.float32)


def mean_of_valid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-pixel, per-channel mean over valid dates ``[N, C]`` (NaN where a pixel has none)."""
    w = valid[..., None].astype(np.float64)
    total = np.where(valid[..., None], values, 0.0).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / w.sum(1)).astype(np.float32)


def ridge_probe_r2(features: np.ndarray, target: np.ndarray, folds: int = 5, seed: int = 0,
                   alphas: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)) -> float:
    """Cross-validated R² (pooled out-of-fold predictions) of a standardised ridge probe.

    The regularisation strength is chosen by inner generalised CV
    (``RidgeCV``) within each training fold. Rows with a non-finite feature or
    target are dropped.
    """
    ok = np.isfinite(features).all(1) & np.isfinite(target)
    x, y = features[ok], target[ok]
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas))
    pred = cross_val_predict(model, x, y, cv=KFold(folds, shuffle=True, random_state=seed))
    return float(r2_score(y, pred))
