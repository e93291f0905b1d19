"""Cross-validation splitters for site-level GPP models and out-of-fold predictions.

* ``loso``: leave one site out (every site is a fold).
* ``groupkfold``: K folds of whole sites; stratified by IGBP class when an
  ``igbp`` column is given (StratifiedGroupKFold, shuffled with the seed).
* ``year``: leave one calendar year out (for one site, or for all sites at once).
* ``month``: leave one calendar month (YYYY-MM) out, for a single site-year.
* ``holdout``: one split by years at the same sites: train on ``train_years`` (default every
  year not tested), test on ``test_years`` (e.g. train 2017-2019, test 2020). Not site-level:
  it measures skill in unseen years at known sites.

Out-of-fold tables have the columns ``site_id, date, observed, predicted,
fold, head, features`` (GPP in gC m-2 d-1).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, StratifiedGroupKFold

from ecoembed.errors import InputError
from ecoembed.gpp.options import CV_SCHEMES

OOF_COLUMNS: tuple[str, ...] = ("site_id", "date", "observed", "predicted", "fold", "head", "features")


def parse_years(spec: str | Sequence[int] | None) -> list[int]:
    """Years of ``"2017-2019,2021"`` (ranges inclusive), a sequence of ints, or ``[]`` for None.

    Raises:
        InputError: not a year list.
    """
    if spec is None:
        return []
    if not isinstance(spec, str):
        return sorted({int(y) for y in spec})
    years: set[int] = set()
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise InputError(f"years {spec!r}: write years as 2020 or ranges as 2017-2019, comma-separated") from None
        if not (1900 <= a <= b <= 2200):
            raise InputError(f"years {spec!r}: {part} is not a year or an increasing range of years")
        years.update(range(a, b + 1))
    return sorted(years)


def cv_splits(table: pd.DataFrame, scheme: str = "loso", *, k: int = 5, seed: int = 0,
              stratify_igbp: bool = True, test_years: str | Sequence[int] | None = None,
              train_years: str | Sequence[int] | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Train/test row positions of each fold.

    Args:
        table: joined table with ``site_id`` and ``date`` (and ``igbp`` for stratification).
        scheme: one of :data:`CV_SCHEMES`.
        k: folds for ``groupkfold`` (at most the number of sites).
        seed: shuffling seed of the stratified split.
        stratify_igbp: use IGBP-stratified folds when ``igbp`` is present.
        test_years, train_years: the years of ``holdout`` (``"2020"``, ``"2017-2019"``).

    Returns:
        ``[(fold_label, train_positions, test_positions), ...]``.

    Raises:
        InputError: unknown scheme or too few groups for it.
    """
    if scheme not in CV_SCHEMES:
        raise InputError(f"unknown cv scheme {scheme!r}; choose from {', '.join(CV_SCHEMES)}")
    X = np.zeros((len(table), 1))
    dates = pd.to_datetime(table["date"])
    if scheme == "loso":
        groups = table["site_id"].astype(str).to_numpy()
        if len(np.unique(groups)) < 2:
            raise InputError("leave-one-site-out needs at least 2 sites; use --cv year (or month) for one site")
        splitter = LeaveOneGroupOut().split(X, groups=groups)
        return [(str(groups[te[0]]), tr, te) for tr, te in splitter]
    if scheme == "groupkfold":
        groups = table["site_id"].astype(str).to_numpy()
        n = len(np.unique(groups))
        if n < 2:
            raise InputError("groupkfold needs at least 2 sites; use --cv year for one site")
        kk = min(int(k), n)
        if kk < 2:
            raise InputError(f"--folds {k}: need at least 2 folds")
        if stratify_igbp and "igbp" in table.columns and table["igbp"].notna().any():
            strat = table["igbp"].fillna("unknown").astype(str).to_numpy()
            it = StratifiedGroupKFold(n_splits=kk, shuffle=True, random_state=seed).split(X, strat, groups)
        else:
            it = GroupKFold(n_splits=kk).split(X, groups=groups)
        return [(f"fold{i + 1}", tr, te) for i, (tr, te) in enumerate(it)]
    if scheme == "holdout":
        test = parse_years(test_years)
        if not test:
            raise InputError("--cv holdout needs --test-years (e.g. 2020; train on --train-years, default the other years)")
        train = [y for y in (parse_years(train_years) or sorted(set(dates.dt.year))) if y not in test]
        year = dates.dt.year.to_numpy()
        tr, te = np.flatnonzero(np.isin(year, train)), np.flatnonzero(np.isin(year, test))
        if not len(tr) or not len(te):
            which = f"training years {train}" if not len(tr) else f"test years {test}"
            raise InputError(f"--cv holdout: no day in the {which} (the data cover {int(year.min())}-{int(year.max())})")
        label = f"test {','.join(map(str, test))}"
        return [(label, tr, te)]
    key = dates.dt.year.astype(str).to_numpy() if scheme == "year" else dates.dt.strftime("%Y-%m").to_numpy()
    if len(np.unique(key)) < 2:
        raise InputError(f"--cv {scheme} needs data in at least 2 {'years' if scheme == 'year' else 'months'}; "
                         "use --cv month for a single year")
    return [(str(key[te[0]]), tr, te) for tr, te in LeaveOneGroupOut().split(X, groups=key)]


def fit_head(est: BaseEstimator, X: pd.DataFrame, y: np.ndarray, sites: np.ndarray) -> BaseEstimator:
    """Fit ``est`` on ``X``/``y``; heads that tune on inner site folds (``RidgeHead``) also get the rows' ``sites``."""
    if "groups" in inspect.signature(est.fit).parameters:
        est.fit(X, y, groups=sites)
    else:
        est.fit(X, y)
    return est


def out_of_fold(
    table: pd.DataFrame,
    feature_columns: Sequence[str],
    make: Callable[[], BaseEstimator],
    splits: Sequence[tuple[str, np.ndarray, np.ndarray]],
    *,
    head: str,
    features: str,
    target: str = "GPP",
    on_fit: Callable[[str, BaseEstimator], None] | None = None,
) -> pd.DataFrame:
    """Fit a fresh head per fold on the training rows and predict the held-out rows.

    Args:
        table: joined table (``site_id``, ``date``, target, feature columns).
        feature_columns: the inputs of the head.
        make: returns a fresh unfitted estimator.
        splits: from :func:`cv_splits`.
        head, features: labels written into the result.
        target: target column (gC m-2 d-1).
        on_fit: called with ``(fold, fitted_estimator)`` after each fit (e.g. to keep coefficients).

    Returns:
        The out-of-fold table (:data:`OOF_COLUMNS`), one row per held-out row.
    """
    cols = list(feature_columns)
    X = table[cols].to_numpy(dtype=float)
    y = table[target].to_numpy(dtype=float)
    parts = []
    sites = table["site_id"].astype(str).to_numpy()
    for fold, tr, te in splits:
        est = fit_head(make(), pd.DataFrame(X[tr], columns=cols), y[tr], sites[tr])
        if on_fit is not None:
            on_fit(fold, est)
        pred = est.predict(pd.DataFrame(X[te], columns=cols))
        parts.append(pd.DataFrame({"site_id": table["site_id"].to_numpy()[te], "date": pd.to_datetime(table["date"].to_numpy()[te]),
                                   "observed": y[te], "predicted": np.asarray(pred, dtype=float), "fold": fold,
                                   "head": head, "features": features}))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(OOF_COLUMNS))
    return out.sort_values(["site_id", "date"], kind="stable").reset_index(drop=True)
