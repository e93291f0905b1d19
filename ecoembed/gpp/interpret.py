"""What the GPP heads use: contributions, permutation importance, coefficients, embedding meaning.

Pure computation on tables and arrays (figures: :mod:`ecoembed.report.interpret_figs`).

* :func:`xgb_contributions`: exact per-sample additive contributions of an
  xgboost model (``pred_contribs=True``, TreeSHAP), summarised per feature and
  per feature family (contributions of a family add up exactly).
* :func:`permutation_importance_grouped`: increase of RMSE (gC m-2 d-1) when
  the columns of one feature or one family are permuted together (seeded).
* :func:`linear_coefficients`: OLS on standardised features with
  statsmodels confidence intervals (cluster-robust by site when sites are
  given: daily rows of one tower are not independent).
* :func:`embedding_correlations`: correlation of each embedding dimension
  with spectral indices (NDVI, NIRv, kNDVI), S1 backscatter (dB) and
  meteorological drivers.
* :func:`pca_rgb`: first three principal components of an embedding chip
  ``(time, y, x, feature)`` as RGB in [0, 1] with one colour scale for all dates.
* :func:`interpret_out_of_fold`: all of the above, fitted per site-level fold
  and evaluated on held-out sites only.

Feature families come from names (:func:`feature_family`): ``emb_*`` are
embedding dimensions; NDVI/NIRv/kNDVI/EVI/fAPAR-like columns are indices;
TA/SW_IN/VPD/PAR/... are meteo; S2 ``B..`` bands and S1 ``VV``/``VH`` are bands.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
import xgboost as xgb
from sklearn.model_selection import GroupKFold
from tqdm.auto import tqdm

from ecoembed.errors import InputError

log = logging.getLogger(__name__)

FAMILIES: tuple[str, ...] = ("embedding", "indices", "meteo", "bands", "other")
DEFAULT_FAMILY_RULES: tuple[tuple[str, str], ...] = (
    ("embedding", r"^(emb|embedding)_?\d+$|^emb_"),
    ("indices", r"(^|_)(ndvi|nirv|kndvi|evi2?|ndwi|ndmi|savi|fapar|fpar|lai|gcc|cire)(_|$)"),
    ("meteo", r"^(ta|t_?air|tmean|tmin|tmax|sw_in|sw_in_pot|par|ppfd|ppfd_in|vpd|p|precip|prec|pa|ws|ts|swc|lw_in|rh|co2|"
              r"netrad|temp|rad|srad|patm|elev)(_.*)?$"),
    ("bands", r"^(s2_)?b\d{1,2}a?$|^(s2_)?b\d{1,2}a?_|^(s1_)?(vv|vh|hh|hv)(_db)?$|_db$|^s1_|^s2_"),
)
"""(family, regex) checked in order on the lower-cased feature name; no match -> ``other``."""


def feature_family(name: str, rules: Sequence[tuple[str, str]] = DEFAULT_FAMILY_RULES) -> str:
    """Family of a feature column from its name (see :data:`DEFAULT_FAMILY_RULES`)."""
    low = name.lower()
    for fam, pattern in rules:
        if re.search(pattern, low):
            return fam
    return "other"


def family_groups(columns: Sequence[str], families: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Family -> its columns (in column order). ``families`` maps a column to its family (overrides the rules)."""
    out: dict[str, list[str]] = {}
    for c in columns:
        fam = (families or {}).get(c) or feature_family(c)
        out.setdefault(fam, []).append(c)
    return out


def _as_frame(X: pd.DataFrame | np.ndarray, feature_names: Sequence[str] | None) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X, dtype=float)
    if arr.ndim != 2:
        raise InputError(f"features must be a 2-D table (rows, features); got shape {arr.shape}")
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(arr.shape[1])]
    if len(names) != arr.shape[1]:
        raise InputError(f"{len(names)} feature names for {arr.shape[1]} columns")
    return pd.DataFrame(arr, columns=names)


def _unwrap_xgboost(model: Any, X: pd.DataFrame) -> tuple[Any, np.ndarray]:
    """Find the xgboost Booster inside ``model`` (sklearn wrapper, Pipeline, or an ecoembed head) and the matrix it sees."""
    arr = X.to_numpy(dtype=float)
    seen = 0
    obj = model
    while seen < 6:
        seen += 1
        if isinstance(obj, xgb.Booster):
            return obj, arr
        if hasattr(obj, "get_booster"):
            return obj.get_booster(), arr
        if hasattr(obj, "steps"):  # sklearn Pipeline: transform by all but the last step
            for _, step in obj.steps[:-1]:
                if step is not None and step != "passthrough":
                    arr = np.asarray(step.transform(arr), dtype=float)
            obj = obj.steps[-1][1]
            continue
        scaler = getattr(obj, "scaler_", None)
        if scaler is not None and hasattr(scaler, "transform"):
            arr = np.asarray(scaler.transform(arr), dtype=float)
        inner = next((getattr(obj, a) for a in ("model_", "estimator_", "booster_", "regressor_", "model", "estimator")
                      if getattr(obj, a, None) is not None), None)
        if inner is None:
            break
        obj = inner
    raise InputError(f"{type(model).__name__} holds no xgboost model: pred_contribs needs an xgboost head")


def xgb_contributions(
    model: Any,
    X: pd.DataFrame | np.ndarray,
    *,
    feature_names: Sequence[str] | None = None,
    families: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exact xgboost contributions (TreeSHAP, ``pred_contribs=True``) summarised per feature and per family.

    Args:
        model: a fitted xgboost model (``XGBRegressor``, ``Booster``, a Pipeline
            or head wrapping one; a wrapper's ``scaler_`` is applied first).
        X: rows to explain (ideally held-out rows), features as columns.
        feature_names: column names when ``X`` is an array.
        families: column -> family overrides.

    Returns:
        ``(per_feature, per_family)``. ``per_feature``: ``feature, family,
        mean_abs_contribution, mean_contribution`` (gC m-2 d-1), sorted by the
        first. ``per_family``: ``family, n_features, mean_abs_contribution``
        (mean over rows of |sum of the family's contributions|) and ``share``
        of the total, sorted. The bias term is left out.
    """
    frame = _as_frame(X, feature_names)
    booster, arr = _unwrap_xgboost(model, frame)
    dmat = xgb.DMatrix(arr, feature_names=booster.feature_names) if booster.feature_names else xgb.DMatrix(arr)
    contrib = booster.predict(dmat, pred_contribs=True)[:, : frame.shape[1]]
    names = list(frame.columns)
    fam_of = {c: (families or {}).get(c) or feature_family(c) for c in names}
    per_feature = pd.DataFrame({
        "feature": names,
        "family": [fam_of[c] for c in names],
        "mean_abs_contribution": np.abs(contrib).mean(axis=0),
        "mean_contribution": contrib.mean(axis=0),
    }).sort_values("mean_abs_contribution", ascending=False, ignore_index=True)
    rows = []
    for fam, cols in family_groups(names, families).items():
        idx = [names.index(c) for c in cols]
        rows.append({"family": fam, "n_features": len(cols), "mean_abs_contribution": float(np.abs(contrib[:, idx].sum(axis=1)).mean())})
    per_family = pd.DataFrame(rows)
    per_family["share"] = per_family["mean_abs_contribution"] / per_family["mean_abs_contribution"].sum()
    return per_feature, per_family.sort_values("mean_abs_contribution", ascending=False, ignore_index=True)


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(p, float) - y) ** 2)))


def _array_predictor(estimator: Any, columns: Sequence[str]) -> Callable[[np.ndarray], np.ndarray]:
    """``f(array) -> predictions``, without a DataFrame per call for xgboost models.

    xgboost models go straight to the booster; others get their ``predict`` on a DataFrame with ``columns``.
    """
    probe = pd.DataFrame(np.zeros((1, len(columns))), columns=list(columns))
    try:
        booster, _ = _unwrap_xgboost(estimator, probe)
    except InputError:
        booster = None
    if booster is not None and isinstance(estimator, xgb.XGBModel):
        return lambda arr: np.asarray(booster.inplace_predict(np.ascontiguousarray(arr, dtype=np.float32)), dtype=float).ravel()
    return lambda arr: np.asarray(estimator.predict(pd.DataFrame(arr, columns=list(columns))), dtype=float).ravel()


PERMUTATION_BATCH_ROWS = 200_000
"""Rows per prediction call when permuting (several groups x repeats stacked; about 50 MB for 64 float32 columns)."""


def permutation_importance_grouped(
    estimator: Any,
    X: pd.DataFrame | np.ndarray,
    y: object,
    *,
    by: str = "family",
    groups: Mapping[str, Sequence[str]] | None = None,
    families: Mapping[str, str] | None = None,
    feature_names: Sequence[str] | None = None,
    n_repeats: int = 5,
    seed: int = 0,
    predict: Callable[[Any, pd.DataFrame], np.ndarray] | None = None,
) -> pd.DataFrame:
    """Permutation importance: RMSE increase when a feature (or a whole family) is shuffled.

    The columns of a group are permuted with the same row permutation, so
    correlated features of one family lose their information together.

    Args:
        estimator: fitted model with ``predict(X)`` (DataFrame in, array out).
        X, y: held-out rows and their observed GPP (gC m-2 d-1).
        by: ``"family"`` or ``"feature"`` (ignored when ``groups`` is given).
        groups: explicit group -> columns.
        families: column -> family overrides.
        n_repeats: permutations per group.
        seed: seed of the permutations.
        predict: custom ``predict(estimator, X)``.

    Returns:
        ``group, n_features, importance_rmse, importance_rmse_std, baseline_rmse``
        (gC m-2 d-1), sorted by importance (largest first).
    """
    frame = _as_frame(X, feature_names)
    yy = np.asarray(y, dtype=float).ravel()
    if len(yy) != len(frame):
        raise InputError(f"y has {len(yy)} rows, X {len(frame)}")
    if by not in ("family", "feature"):
        raise InputError(f"by={by!r}: use 'family' or 'feature'")
    if groups is None:
        groups = family_groups(list(frame.columns), families) if by == "family" else {c: [c] for c in frame.columns}
    columns = list(frame.columns)
    custom = predict
    if custom is not None:
        def pred_array(arr: np.ndarray) -> np.ndarray:
            return np.asarray(custom(estimator, pd.DataFrame(arr, columns=columns)), dtype=float).ravel()
    else:
        pred_array = _array_predictor(estimator, columns)  # type: ignore[assignment]
    base_arr = frame.to_numpy(dtype=np.float32)
    base = _rmse(yy, pred_array(base_arr))
    rng = np.random.default_rng(seed)
    rows = []
    n = len(frame)
    for name, cols in groups.items():
        unknown = [c for c in cols if c not in frame.columns]
        if unknown:
            raise InputError(f"group {name!r} names columns {unknown} absent from the feature table")
    names = list(groups)
    # every repeat of several groups in one prediction call: chunks of about PERMUTATION_BATCH_ROWS rows
    per_call = max(1, PERMUTATION_BATCH_ROWS // max(n * n_repeats, 1))
    for start in range(0, len(names), per_call):
        chunk = names[start:start + per_call]
        stacked = np.tile(base_arr, (n_repeats * len(chunk), 1))
        for j, name in enumerate(chunk):
            idx = [columns.index(c) for c in groups[name]]
            for r in range(n_repeats):
                lo = (j * n_repeats + r) * n
                stacked[lo:lo + n][:, idx] = base_arr[rng.permutation(n)][:, idx]
        preds = pred_array(stacked).reshape(len(chunk), n_repeats, n)
        for j, name in enumerate(chunk):
            scores = [_rmse(yy, preds[j, r]) - base for r in range(n_repeats)]
            rows.append({"group": name, "n_features": len(groups[name]), "importance_rmse": float(np.mean(scores)),
                         "importance_rmse_std": float(np.std(scores)), "baseline_rmse": base})
    return pd.DataFrame(rows).sort_values("importance_rmse", ascending=False, ignore_index=True)


def linear_coefficients(
    X: pd.DataFrame | np.ndarray,
    y: object,
    *,
    sites: object | None = None,
    alpha: float = 0.05,
    standardize: bool = True,
    feature_names: Sequence[str] | None = None,
    families: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """OLS coefficients with (1 - alpha) confidence intervals (statsmodels).

    Args:
        X, y: features and GPP (gC m-2 d-1).
        sites: per-row site ids; when given the covariance is cluster-robust by
            site, else heteroscedasticity-robust (HC3).
        alpha: 0.05 gives 95 % intervals.
        standardize: z-score the features first, so a coefficient is the GPP
            change (gC m-2 d-1) per standard deviation and magnitudes compare.
        families: column -> family overrides.

    Returns:
        ``feature, family, coef, std_err, ci_low, ci_high, t, p_value`` sorted by
        ``|coef|`` (effect per SD with ``standardize``; largest first); the intercept is left out.
    """
    frame = _as_frame(X, feature_names).astype(float)
    yy = np.asarray(y, dtype=float).ravel()
    ok = np.isfinite(yy) & np.all(np.isfinite(frame.to_numpy()), axis=1)
    frame, yy = frame[ok], yy[ok]
    sd = frame.std(ddof=0)
    const = sd[sd == 0].index.tolist()
    frame = frame.drop(columns=const)
    if frame.shape[1] == 0 or len(frame) <= frame.shape[1] + 1:
        raise InputError(f"{len(frame)} complete rows for {frame.shape[1]} non-constant features: too few for OLS")
    if standardize:
        frame = (frame - frame.mean()) / frame.std(ddof=0)
    design = sm.add_constant(frame, has_constant="add")
    if sites is not None:
        codes = pd.factorize(np.asarray(sites)[ok])[0]
        fit = sm.OLS(yy, design).fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)  # t with G-1 df: few towers
    else:
        fit = sm.OLS(yy, design).fit(cov_type="HC3")
    n_sites = int(codes.max()) + 1 if sites is not None else 0
    if sites is not None and design.shape[1] > n_sites:
        # a cluster-robust covariance has rank <= number of sites: with more coefficients some variances
        # come out negative, and those standard errors / CIs are left NaN (not identified), not invented
        log.warning("OLS with %d coefficients and %d sites: the site-clustered covariance has rank <= %d, so the "
                    "coefficients' standard errors and CIs are not identified (NaN where negative); read the "
                    "coefficient signs and sizes, not their CIs", design.shape[1], n_sites, n_sites)
    with np.errstate(invalid="ignore"):
        ci = np.asarray(fit.conf_int(alpha=alpha))
        names = list(design.columns)
        tab = pd.DataFrame({
            "feature": names, "coef": np.asarray(fit.params), "std_err": np.asarray(fit.bse),
            "ci_low": ci[:, 0], "ci_high": ci[:, 1], "t": np.asarray(fit.tvalues), "p_value": np.asarray(fit.pvalues),
        })
    tab = tab[tab["feature"] != "const"].copy()
    tab.insert(1, "family", [(families or {}).get(c) or feature_family(c) for c in tab["feature"]])
    tab["method"] = "OLS, cluster-robust by site" if sites is not None else "OLS, HC3"
    return tab.reindex(tab["coef"].abs().sort_values(ascending=False).index).reset_index(drop=True)


def ridge_coefficients(
    X: pd.DataFrame | np.ndarray,
    y: object,
    *,
    sites: object,
    alpha: float = 0.05,
    n_boot: int = 500,
    seed: int = 0,
    feature_names: Sequence[str] | None = None,
    families: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Ridge coefficients on standardised features with intervals from a bootstrap over sites.

    For many collinear inputs (64 embedding dimensions) and few sites, OLS
    coefficients are not identified (any of thousands of combinations fits) and a
    site-clustered covariance has rank <= the number of sites. The ridge solution
    is unique for a penalty > 0: the penalty is chosen by site-grouped inner CV
    (:class:`ecoembed.gpp.heads.RidgeHead`); the intervals come from refitting at
    that penalty on sites drawn with replacement (``n_boot`` times), so they say how
    much each coefficient depends on which towers were measured.

    Returns:
        The columns of :func:`linear_coefficients` (``t`` = coef / bootstrap sd, ``p_value``:
        two-sided bootstrap sign test) plus ``method`` and ``alpha``.
    """
    from ecoembed.gpp.heads import RidgeHead

    frame = _as_frame(X, feature_names).astype(float)
    yy = np.asarray(y, dtype=float).ravel()
    g = np.asarray(sites).astype(str)
    ok = np.isfinite(yy) & np.all(np.isfinite(frame.to_numpy()), axis=1)
    frame, yy, g = frame[ok], yy[ok], g[ok]
    sd = frame.std(ddof=0)
    frame = frame.drop(columns=sd[sd == 0].index.tolist())
    if frame.shape[1] == 0 or len(frame) < 5:
        raise InputError(f"{len(frame)} complete rows for {frame.shape[1]} non-constant features: too few for ridge")
    Z = ((frame - frame.mean()) / frame.std(ddof=0)).to_numpy()
    lam = RidgeHead().fit(Z, yy, groups=g).alpha_
    uniq, codes = np.unique(g, return_inverse=True)
    p = Z.shape[1]
    A = np.hstack([np.ones((len(Z), 1)), Z])
    # per-site normal-equation pieces: the fit of any resample is one small solve
    xtx = np.zeros((len(uniq), p + 1, p + 1))
    xty = np.zeros((len(uniq), p + 1))
    for k in range(len(uniq)):
        a = A[codes == k]
        xtx[k], xty[k] = a.T @ a, a.T @ yy[codes == k]
    pen = lam * np.eye(p + 1)
    pen[0, 0] = 0.0  # the intercept is not penalised

    def solve(w: np.ndarray) -> np.ndarray:
        """Coefficients (no intercept) for site weights ``w`` (sites,) or a batch of them (b, sites)."""
        ww = np.atleast_2d(w)
        lhs = np.einsum("bk,kij->bij", ww, xtx) + pen
        rhs = ww @ xty
        try:
            sol = np.linalg.solve(lhs, rhs[..., None])[..., 0]  # one batched solve for every resample
        except np.linalg.LinAlgError:  # a resample without the variance some column needs: least squares
            sol = np.array([np.linalg.lstsq(m, r, rcond=None)[0] for m, r in zip(lhs, rhs, strict=True)])
        return np.asarray(sol[:, 1:] if np.ndim(w) == 2 else sol[0, 1:])

    coef = solve(np.ones(len(uniq)))
    rng = np.random.default_rng(seed)
    draws = np.stack([np.bincount(rng.integers(0, len(uniq), len(uniq)), minlength=len(uniq)) for _ in range(n_boot)])
    boots = solve(draws.astype(float))
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2], axis=0)
    bsd = boots.std(axis=0)
    pos = (boots > 0).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tab = pd.DataFrame({"feature": list(frame.columns), "coef": coef, "std_err": bsd, "ci_low": lo, "ci_high": hi,
                            "t": coef / bsd, "p_value": np.minimum(1.0, 2 * np.minimum(pos, 1 - pos))})
    tab.insert(1, "family", [(families or {}).get(c) or feature_family(c) for c in tab["feature"]])
    tab["method"] = f"ridge (penalty by site-grouped CV), {len(uniq)}-site bootstrap intervals"
    tab["alpha"] = lam
    return tab.reindex(tab["coef"].abs().sort_values(ascending=False).index).reset_index(drop=True)


def embedding_correlations(
    table: pd.DataFrame,
    *,
    embedding_columns: Sequence[str] | None = None,
    reference_columns: Sequence[str] | None = None,
    method: str = "pearson",
) -> pd.DataFrame:
    """Correlation of each embedding dimension with reference variables.

    Args:
        table: rows (site-days or pixels) with embedding and reference columns.
        embedding_columns: default: columns of the ``embedding`` family.
        reference_columns: default: every numeric column of the indices, bands
            (S1 dB included) and meteo families.
        method: ``"pearson"`` or ``"spearman"``.

    Returns:
        Matrix (rows: embedding dims, columns: references) of pairwise-complete
        correlations.
    """
    if method not in ("pearson", "spearman"):
        raise InputError(f"method={method!r}: use 'pearson' or 'spearman'")
    numeric = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])]
    emb = list(embedding_columns) if embedding_columns is not None else [c for c in numeric if feature_family(c) == "embedding"]
    ref = list(reference_columns) if reference_columns is not None else [
        c for c in numeric if feature_family(c) in ("indices", "bands", "meteo") and table[c].nunique(dropna=True) > 1]
    if not emb or not ref:
        raise InputError(f"need embedding and reference columns; found embedding {emb[:3]}..., references {ref}")
    missing = [c for c in [*emb, *ref] if c not in table.columns]
    if missing:
        raise InputError(f"columns {missing} are not in the table")
    both = table[emb + ref].astype(float)
    if method == "spearman":
        both = both.rank()
    arr = both.to_numpy()
    if np.isfinite(arr).all() and len(arr) > 1:  # complete rows: the cross block only, in one product
        z = arr - arr.mean(axis=0)
        norm = np.sqrt((z**2).sum(axis=0))
        with np.errstate(divide="ignore", invalid="ignore"):
            block = (z[:, : len(emb)].T @ z[:, len(emb):]) / np.outer(norm[: len(emb)], norm[len(emb):])
        block[~np.isfinite(block)] = np.nan  # a constant column has no correlation (as pandas)
        return pd.DataFrame(block, index=emb, columns=ref)
    corr = both.corr()  # gaps: pairwise-complete correlations
    return corr.loc[emb, ref]


def most_correlated(correlations: pd.DataFrame) -> pd.DataFrame:
    """For each reference column of :func:`embedding_correlations`: the embedding dimension with the largest |r|, and r."""
    mat = correlations.dropna(axis=1, how="all")  # a reference without variance (e.g. no rain) has no correlation
    best = [str(mat[c].abs().idxmax()) for c in mat.columns]
    return pd.DataFrame({"reference": mat.columns, "most correlated dim": best,
                         "r": [float(mat.at[b, c]) for c, b in zip(mat.columns, best, strict=True)]})  # type: ignore[arg-type]


@dataclass
class PcaRgb:
    """RGB rendering of an embedding chip: ``rgb`` (time, y, x, 3) in [0, 1] (NaN where invalid)."""

    rgb: np.ndarray
    explained_variance_ratio: np.ndarray
    components: np.ndarray
    """(3, feature) principal axes."""
    mean: np.ndarray


def pca_rgb(chip: np.ndarray, *, percentiles: tuple[float, float] = (2.0, 98.0), max_samples: int = 200_000, seed: int = 0) -> PcaRgb:
    """First three principal components of an embedding chip as RGB, one colour scale for all dates.

    Args:
        chip: embeddings ``(time, y, x, feature)`` (or ``(y, x, feature)``); rows with
            any NaN are invalid.
        percentiles: each component is stretched linearly from these percentiles
            (over all dates and pixels) to [0, 1] and clipped, so colours are
            comparable across the season.
        max_samples: valid rows used to fit the PCA (random subsample, ``seed``).

    Returns:
        :class:`PcaRgb`.
    """
    arr = np.asarray(chip, dtype=float)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] < 3:
        raise InputError(f"embedding chip must be (time, y, x, feature>=3); got shape {np.shape(chip)}")
    flat = arr.reshape(-1, arr.shape[-1])
    valid = np.all(np.isfinite(flat), axis=1)
    if valid.sum() < 3:
        raise InputError("embedding chip has fewer than 3 valid pixel-dates: nothing to project")
    sample = flat[valid]
    if len(sample) > max_samples:
        sample = sample[np.random.default_rng(seed).choice(len(sample), max_samples, replace=False)]
    mean = sample.mean(axis=0)
    _, s, vt = np.linalg.svd(sample - mean, full_matrices=False)
    comps = vt[:3]
    # sign convention: the largest-magnitude loading of each axis is positive (deterministic colours)
    comps = comps * np.sign(comps[np.arange(3), np.argmax(np.abs(comps), axis=1)])[:, None]
    var = s**2
    proj = np.full((flat.shape[0], 3), np.nan)
    proj[valid] = (flat[valid] - mean) @ comps.T
    lo, hi = np.nanpercentile(proj[valid], percentiles, axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    rgb = np.clip((proj - lo) / span, 0.0, 1.0)
    rgb[~valid] = np.nan
    return PcaRgb(rgb.reshape(*arr.shape[:-1], 3), var[:3] / var.sum(), comps, mean)


@dataclass
class Interpretation:
    """Out-of-fold interpretation tables (see :func:`interpret_out_of_fold`)."""

    contributions_feature: pd.DataFrame
    contributions_family: pd.DataFrame
    permutation_family: pd.DataFrame
    permutation_feature: pd.DataFrame
    linear_coefficients: pd.DataFrame
    correlations: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, pd.DataFrame]:
        """File stem -> table (what :func:`write_interpretation` writes)."""
        out = {
            "interpret_contributions_feature": self.contributions_feature,
            "interpret_contributions_family": self.contributions_family,
            "interpret_permutation_family": self.permutation_family,
            "interpret_permutation_feature": self.permutation_feature,
            "interpret_linear_coefficients": self.linear_coefficients,
        }
        if self.correlations is not None:
            out["interpret_embedding_correlations"] = self.correlations.rename_axis("embedding_dim").reset_index()
            out["interpret_embedding_best"] = most_correlated(self.correlations)
        return out


def _weighted_mean_tables(parts: list[pd.DataFrame], key: str, value_cols: Sequence[str], weights: list[int]) -> pd.DataFrame:
    stacked = pd.concat([p.assign(_w=w) for p, w in zip(parts, weights, strict=True)], ignore_index=True)
    keep = [c for c in stacked.columns if c not in value_cols and c not in ("_w",)]
    for c in value_cols:
        stacked[c] = stacked[c] * stacked["_w"]
    agg = stacked.groupby(keep, sort=False)[[*value_cols, "_w"]].sum()
    for c in value_cols:
        agg[c] = agg[c] / agg["_w"]
    return agg.drop(columns="_w").reset_index().sort_values(value_cols[0], ascending=False, ignore_index=True)


def interpret_out_of_fold(
    table: pd.DataFrame,
    feature_columns: Sequence[str],
    *,
    target: str = "GPP",
    site_column: str = "site_id",
    n_folds: int = 5,
    n_repeats: int = 3,
    seed: int = 0,
    families: Mapping[str, str] | None = None,
    xgb_params: Mapping[str, Any] | None = None,
    reference_columns: Sequence[str] | None = None,
    progress: bool = False,
    max_explain_rows: int = 1000,
) -> Interpretation:
    """Fit xgboost per site-level fold and explain it on the held-out sites; OLS coefficients on all rows.

    Args:
        table: joined daily table: ``site_id``, target GPP (gC m-2 d-1), feature columns.
        feature_columns: the model's inputs.
        n_folds: GroupKFold folds over sites (capped at the number of sites).
        n_repeats, seed: permutation repeats (their sd is the error bar) and seed (also the xgboost seed).
        max_explain_rows: held-out rows per fold explained (a fixed seeded sample when there are more).
        families: column -> family overrides.
        xgb_params: extra ``XGBRegressor`` parameters.
        reference_columns: columns for the embedding correlation matrix (default:
            indices/bands/meteo columns of ``table``); skipped without embedding columns.

    Returns:
        :class:`Interpretation` whose importances are averaged over folds,
        weighted by held-out rows.
    """
    cols = list(feature_columns)
    missing = [c for c in [site_column, target, *cols] if c not in table.columns]
    if missing:
        raise InputError(f"joined table lacks column(s) {missing}")
    data = table.dropna(subset=[target, *cols]).reset_index(drop=True)
    sites = data[site_column].to_numpy()
    k = min(n_folds, len(np.unique(sites)))
    if k < 2:
        raise InputError(f"interpretation needs >= 2 sites for site-level folds; got {k}")
    params = {"n_estimators": 120, "max_depth": 4, "learning_rate": 0.12, "subsample": 0.8, "random_state": seed,
              "n_jobs": 2, "tree_method": "hist", "max_bin": 64}
    params.update(xgb_params or {})
    parts: dict[str, list[pd.DataFrame]] = {"cf": [], "cfam": [], "pfam": [], "pfeat": []}
    weights: list[int] = []
    splits = list(GroupKFold(n_splits=k).split(data, groups=sites))
    for tr, te in tqdm(splits, desc="interpret folds", disable=not progress):
        model = xgb.XGBRegressor(**params).fit(data.loc[tr, cols].to_numpy(np.float32), data.loc[tr, target].to_numpy())
        if len(te) > max_explain_rows:
            te = np.sort(np.random.default_rng([seed, len(weights)]).choice(te, max_explain_rows, replace=False))
        X_te, y_te = data.loc[te, cols].reset_index(drop=True), data.loc[te, target].to_numpy()
        cf, cfam = xgb_contributions(model, X_te, families=families)
        parts["cf"].append(cf)
        parts["cfam"].append(cfam.drop(columns="share"))
        parts["pfam"].append(permutation_importance_grouped(model, X_te, y_te, by="family", families=families,
                                                            n_repeats=n_repeats, seed=seed))
        parts["pfeat"].append(permutation_importance_grouped(model, X_te, y_te, by="feature", families=families,
                                                             n_repeats=n_repeats, seed=seed))
        weights.append(len(te))
    cf = _weighted_mean_tables(parts["cf"], "feature", ["mean_abs_contribution", "mean_contribution"], weights)
    cfam = _weighted_mean_tables(parts["cfam"], "family", ["mean_abs_contribution"], weights)
    cfam["share"] = cfam["mean_abs_contribution"] / cfam["mean_abs_contribution"].sum()
    value = ["importance_rmse", "importance_rmse_std", "baseline_rmse"]
    pfam = _weighted_mean_tables(parts["pfam"], "group", value, weights)
    pfeat = _weighted_mean_tables(parts["pfeat"], "group", value, weights)
    pfeat.insert(1, "family", [(families or {}).get(c) or feature_family(c) for c in pfeat["group"]])
    notes = [f"xgboost fitted on {k} GroupKFold site folds; importances on held-out sites (at most {max_explain_rows} "
             f"rows per fold), averaged weighted by rows; permutation importance over {n_repeats} repeats (± sd)"]
    n_sites = len(np.unique(sites))
    try:
        if len(cols) + 1 < n_sites:  # identified: fewer coefficients than site clusters
            lin = linear_coefficients(data[cols], data[target], sites=sites, families=families)
        else:
            lin = ridge_coefficients(data[cols], data[target], sites=sites, families=families, seed=seed)
            notes.append(f"coefficients: {len(cols)} features and {n_sites} sites leave OLS coefficients unidentified; "
                         f"ridge with the penalty chosen on site folds (alpha {float(lin['alpha'].iloc[0]):g}) and "
                         "bootstrap-over-sites intervals instead")
    except Exception as exc:  # a singular design must not sink the other tables
        lin = pd.DataFrame(columns=["feature", "family", "coef", "std_err", "ci_low", "ci_high", "t", "p_value", "method"])
        notes.append(f"linear coefficients skipped: {exc}")
    corr = None
    emb = [c for c in data.columns if feature_family(c) == "embedding" and pd.api.types.is_numeric_dtype(data[c])]
    if emb:
        try:
            corr = embedding_correlations(data, embedding_columns=emb, reference_columns=reference_columns)
        except InputError as exc:
            notes.append(f"embedding correlations skipped: {exc}")
    return Interpretation(cf, cfam, pfam, pfeat, lin, corr, notes)
