"""Regression heads with the scikit-learn estimator API (fit/predict/get_params).

Every head standardises its inputs inside :meth:`fit` (mean/sd of the
training rows only), so under cross-validation the scaling is learnt inside
each fold and never sees the held-out site. Targets are GPP in gC m-2 d-1;
predictions are in the same unit. Rows with a non-finite feature or target
are dropped in ``fit``; ``predict`` returns NaN for rows with a non-finite
feature (XGBHead handles NaN natively and predicts them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
import torch
import xgboost as xgb
from sklearn.base import BaseEstimator, RegressorMixin

from ecoembed.errors import InputError
from ecoembed.gpp.options import FIXED_HEAD, HEADS


def _as_array(X: object) -> tuple[np.ndarray, list[str]]:
    if isinstance(X, pd.DataFrame):
        return X.to_numpy(dtype=float), [str(c) for c in X.columns]
    a = np.asarray(X, dtype=float)
    if a.ndim != 2:
        raise InputError(f"features must be a 2-D table, got shape {a.shape}")
    return a, [f"x{i}" for i in range(a.shape[1])]


class _Scaled(BaseEstimator, RegressorMixin):  # type: ignore[misc]  # scikit-learn ships no type information
    """Shared standardisation (fitted in ``fit``) and finite-row handling."""

    def _fit_scaler(self, X: np.ndarray) -> np.ndarray:
        self.mean_ = np.nanmean(X, axis=0)
        sd = np.nanstd(X, axis=0)
        self.scale_ = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        self.mean_ = np.where(np.isfinite(self.mean_), self.mean_, 0.0)
        return (X - self.mean_) / self.scale_

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    @staticmethod
    def _finite_rows(X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        ok = np.isfinite(X).all(axis=1)
        if y is not None:
            ok &= np.isfinite(y)
        return ok


class LinearHead(_Scaled):
    """Ordinary least squares (statsmodels) on standardised features, optional ridge penalty.

    Args:
        alpha: ridge penalty on the standardised coefficients (0 = plain OLS;
            with ``alpha > 0`` the fit uses statsmodels' elastic net with L1 weight 0
            and the confidence intervals / p-values are NaN, as they are not defined).
    """

    def __init__(self, alpha: float = 0.0) -> None:
        self.alpha = alpha

    def fit(self, X: object, y: object) -> LinearHead:
        """Fit OLS (or ridge) on the finite rows of ``X`` (features) and ``y`` (GPP, gC m-2 d-1)."""
        A, self.feature_names_in_ = _as_array(X)
        t = np.asarray(y, dtype=float).ravel()
        ok = self._finite_rows(A, t)
        if ok.sum() < 2:
            raise InputError("LinearHead.fit: fewer than 2 rows with finite features and target")
        Z = sm.add_constant(self._fit_scaler(A[ok]), has_constant="add")
        model = sm.OLS(t[ok], Z)
        if self.alpha and self.alpha > 0:
            res = model.fit_regularized(alpha=float(self.alpha), L1_wt=0.0)
            self.params_ = np.asarray(res.params)
            nan = np.full_like(self.params_, np.nan)
            self.ci_low_, self.ci_high_, self.pvalues_ = nan, nan.copy(), nan.copy()
        else:
            res = model.fit()
            self.params_ = np.asarray(res.params)
            # nearly collinear features (e.g. 10 raw bands) can give a negative variance estimate:
            # that coefficient's CI and p-value are NaN (undefined), not a warning on the user's terminal
            with np.errstate(invalid="ignore"):
                ci = np.asarray(res.conf_int(alpha=0.05))
                self.pvalues_ = np.asarray(res.pvalues)
            self.ci_low_, self.ci_high_ = ci[:, 0], ci[:, 1]
        self.n_train_ = int(ok.sum())
        return self

    def predict(self, X: object) -> np.ndarray:
        """GPP (gC m-2 d-1) of the rows of ``X``; NaN where a feature is not finite."""
        A, _ = _as_array(X)
        return self.params_[0] + self._scale(A) @ self.params_[1:]

    def coef_table(self) -> pd.DataFrame:
        """Coefficients per standardised feature (gC m-2 d-1 per sd of the feature) with 95 % CI and p-value.

        Columns: ``term`` (``const`` then the features), ``coef``, ``ci_low``, ``ci_high``, ``p``.
        """
        return pd.DataFrame({"term": ["const", *self.feature_names_in_], "coef": self.params_,
                             "ci_low": self.ci_low_, "ci_high": self.ci_high_, "p": self.pvalues_})


RIDGE_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 4, 13))
"""Penalties (on standardised features, sklearn ``Ridge`` scale: sum of squares + alpha |w|^2) tried by :class:`RidgeHead`."""


class RidgeHead(_Scaled):
    """Ridge regression whose penalty is chosen by an inner cross-validation grouped by site.

    With many correlated inputs (64 embedding dimensions, 10 bands) and few training sites,
    OLS fits each site's offsets and extrapolates badly to a new site. The penalty is picked
    from :data:`RIDGE_ALPHAS` by mean squared error over inner folds of whole sites
    (``groups``, given by :func:`ecoembed.gpp.cv.out_of_fold`; at most 5 folds), so it is
    chosen for new sites, not for new days of known sites; without groups (or < 3 of them)
    by 5 contiguous blocks of rows.
    """

    def __init__(self, alphas: Sequence[float] = RIDGE_ALPHAS) -> None:
        self.alphas = alphas

    def fit(self, X: object, y: object, groups: object = None) -> RidgeHead:
        """Fit on the finite rows; ``groups`` (site ids per row) drive the inner choice of the penalty."""
        from sklearn.linear_model import Ridge
        from sklearn.model_selection import GroupKFold, KFold

        A, self.feature_names_in_ = _as_array(X)
        t = np.asarray(y, dtype=float).ravel()
        ok = self._finite_rows(A, t)
        if ok.sum() < 5:
            raise InputError("RidgeHead.fit: fewer than 5 rows with finite features and target")
        Z, t = self._fit_scaler(A[ok]), t[ok]
        g = None if groups is None else np.asarray(groups).ravel()[ok]
        if g is not None and len(np.unique(g)) >= 3:
            splits = list(GroupKFold(n_splits=min(5, len(np.unique(g)))).split(Z, t, g))
        else:
            splits = list(KFold(n_splits=5, shuffle=False).split(Z))
        errors = []
        for alpha in self.alphas:
            sse = 0.0
            for tr, te in splits:
                model = Ridge(alpha=float(alpha)).fit(Z[tr], t[tr])
                sse += float(np.sum((model.predict(Z[te]) - t[te]) ** 2))
            errors.append(sse)
        self.alpha_ = float(self.alphas[int(np.argmin(errors))])
        self.model_ = Ridge(alpha=self.alpha_).fit(Z, t)
        return self

    def predict(self, X: object) -> np.ndarray:
        """GPP (gC m-2 d-1) of the rows of ``X``; NaN where a feature is not finite."""
        A, _ = _as_array(X)
        ok = self._finite_rows(A)
        out = np.full(len(A), np.nan)
        if ok.any():
            out[ok] = self.model_.predict(self._scale(A[ok]))
        return out


def coefficient_summary(coefficients: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over folds of :meth:`LinearHead.coef_table` rows stacked with a ``fold`` column, and the median p."""
    return (coefficients.groupby("term", sort=False)
            .agg(coef=("coef", "mean"), coef_sd=("coef", "std"), p_median=("p", "median")).reset_index())


class XGBHead(_Scaled):
    """Gradient-boosted trees (xgboost ``hist``), deterministic for a given ``seed`` and ``n_jobs``."""

    def __init__(self, n_estimators: int = 300, max_depth: int = 4, learning_rate: float = 0.05,
                 subsample: float = 0.8, n_jobs: int = 1, seed: int = 0) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.n_jobs = n_jobs
        self.seed = seed

    def fit(self, X: object, y: object) -> XGBHead:
        """Fit the trees on the rows with a finite target (xgboost handles missing features)."""
        A, self.feature_names_in_ = _as_array(X)
        t = np.asarray(y, dtype=float).ravel()
        ok = np.isfinite(t)
        self.model_ = xgb.XGBRegressor(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                       learning_rate=self.learning_rate, subsample=self.subsample,
                                       n_jobs=self.n_jobs, random_state=self.seed, tree_method="hist")
        self.model_.fit(self._fit_scaler(A[ok]), t[ok])
        return self

    def predict(self, X: object) -> np.ndarray:
        """GPP (gC m-2 d-1) of the rows of ``X`` (missing features handled by the trees)."""
        A, _ = _as_array(X)
        return np.asarray(self.model_.predict(self._scale(A)), dtype=float)


class MLPHead(_Scaled):
    """Small fully-connected network (torch, CPU), seeded, early-stopped on an inner random split.

    Args:
        hidden: widths of the hidden layers (ReLU).
        lr: Adam learning rate.
        max_epochs: upper bound on epochs.
        patience: epochs without improvement of the inner-validation MSE before stopping.
        val_fraction: share of training rows held out for early stopping.
        batch_size: minibatch size.
        weight_decay: L2 penalty of Adam.
        seed: seeds the split, the initialisation and the batch order.
        n_threads: torch CPU threads during fit (1 is fastest for this size).
    """

    def __init__(self, hidden: Sequence[int] = (64, 32), lr: float = 1e-3, max_epochs: int = 150, patience: int = 10,
                 val_fraction: float = 0.15, batch_size: int = 256, weight_decay: float = 1e-4, seed: int = 0,
                 n_threads: int = 1) -> None:
        self.hidden = hidden
        self.lr = lr
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.seed = seed
        self.n_threads = n_threads

    def fit(self, X: object, y: object) -> MLPHead:
        """Fit the MLP with early stopping on a seeded validation share of the finite rows."""
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, int(self.n_threads)))
        try:
            return self._fit(X, y)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, X: object, y: object) -> MLPHead:
        A, self.feature_names_in_ = _as_array(X)
        t = np.asarray(y, dtype=float).ravel()
        ok = self._finite_rows(A, t)
        if ok.sum() < 10:
            raise InputError("MLPHead.fit: fewer than 10 rows with finite features and target")
        Z = self._fit_scaler(A[ok]).astype(np.float32)
        self.y_mean_, self.y_scale_ = float(t[ok].mean()), float(t[ok].std() or 1.0)
        ty = ((t[ok] - self.y_mean_) / self.y_scale_).astype(np.float32)
        rng = np.random.default_rng(self.seed)
        perm = rng.permutation(len(Z))
        n_val = max(1, round(self.val_fraction * len(Z)))
        va, tr = perm[:n_val], perm[n_val:]
        gen = torch.Generator().manual_seed(int(self.seed))
        torch.manual_seed(int(self.seed))
        layers: list[torch.nn.Module] = []
        width = Z.shape[1]
        for h in self.hidden:
            layers += [torch.nn.Linear(width, int(h)), torch.nn.ReLU()]
            width = int(h)
        layers.append(torch.nn.Linear(width, 1))
        net = torch.nn.Sequential(*layers)
        # foreach: one multi-tensor update per step (the same arithmetic as the per-tensor loop, about 25 % less time)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay, foreach=True)
        Xtr, ytr = torch.from_numpy(Z[tr]), torch.from_numpy(ty[tr])
        Xva, yva = torch.from_numpy(Z[va]), torch.from_numpy(ty[va])
        best, best_state, stale = np.inf, None, 0
        self.n_epochs_ = 0
        for _epoch in range(self.max_epochs):
            net.train()
            order = torch.randperm(len(Xtr), generator=gen)
            for i in range(0, len(order), self.batch_size):
                idx = order[i:i + self.batch_size]
                opt.zero_grad()
                loss = torch.mean((net(Xtr[idx]).squeeze(1) - ytr[idx]) ** 2)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
            net.eval()
            with torch.no_grad():
                v = float(torch.mean((net(Xva).squeeze(1) - yva) ** 2))
            self.n_epochs_ += 1
            if v < best - 1e-6:
                best, stale = v, 0
                best_state = {k: p.detach().clone() for k, p in net.state_dict().items()}
            else:
                stale += 1
                if stale >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        self.net_ = net.eval()
        self.val_mse_ = best
        return self

    def predict(self, X: object) -> np.ndarray:
        """GPP (gC m-2 d-1) of the rows of ``X``; NaN where a feature is not finite."""
        A, _ = _as_array(X)
        out = np.full(len(A), np.nan)
        ok = self._finite_rows(A)
        if ok.any():
            with torch.no_grad():
                z = torch.from_numpy(self._scale(A[ok]).astype(np.float32))
                out[ok] = self.net_(z).squeeze(1).numpy() * self.y_scale_ + self.y_mean_
        return out


class FixedHead(_Scaled):
    """A fixed-parameter model's output scored as it is: predicts its single input column (e.g. ``GPP_MOD17``).

    ``fit`` learns nothing (it only checks the shape), so cross-validation folds
    change nothing and the skill is that of the published parameters.
    """

    def fit(self, X: object, y: object) -> FixedHead:
        """Check that ``X`` has exactly one column (the model's GPP, gC m-2 d-1)."""
        A, self.feature_names_in_ = _as_array(X)
        if A.shape[1] != 1:
            raise InputError(f"the fixed head scores one model column (e.g. mod17); got {A.shape[1]} columns")
        return self

    def predict(self, X: object) -> np.ndarray:
        """The input column itself (NaN stays NaN)."""
        A, _ = _as_array(X)
        return A[:, 0].astype(float)


def make_head(name: str, seed: int = 0, n_jobs: int = 1) -> BaseEstimator:
    """A fresh head by name (``linear``, ``ridge``, ``xgboost``, ``mlp``), seeded.

    Raises:
        InputError: unknown name.
    """
    if name == "linear":
        return LinearHead()
    if name == "ridge":
        return RidgeHead()
    if name == "xgboost":
        return XGBHead(seed=seed, n_jobs=n_jobs)
    if name == "mlp":
        return MLPHead(seed=seed, n_threads=n_jobs)
    if name == FIXED_HEAD:
        return FixedHead()
    raise InputError(f"unknown head {name!r}; choose from {', '.join(HEADS)}")
