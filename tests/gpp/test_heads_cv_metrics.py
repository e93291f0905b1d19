"""Metrics (hand-computed), splitters and heads on small synthetic tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecoembed.errors import InputError
from ecoembed.gpp.cv import cv_splits, out_of_fold
from ecoembed.gpp.heads import LinearHead, MLPHead, XGBHead, make_head
from ecoembed.gpp.metrics import compute_metrics, per_site_metrics, pooled_metrics


def test_metrics_hand_computed() -> None:
    o = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.5, 5.0])
    m = compute_metrics(o, p)
    err = p - o
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)))
    assert m["mae"] == pytest.approx(0.5)
    assert m["bias"] == pytest.approx(0.25)
    assert m["nse"] == pytest.approx(1 - np.sum(err**2) / 5.0)
    r = np.corrcoef(o, p)[0, 1]
    assert m["r2"] == pytest.approx(r**2)
    alpha, beta = p.std() / o.std(), p.mean() / o.mean()
    assert m["kge"] == pytest.approx(1 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2))
    perfect = compute_metrics(o, o)
    assert perfect["nse"] == 1 and perfect["kge"] == pytest.approx(1) and perfect["rmse"] == 0


def test_metrics_ignore_nan_and_tables() -> None:
    m = compute_metrics([1, 2, np.nan, 4], [1, 2, 3, np.nan])
    assert m["n"] == 2 and m["rmse"] == 0
    assert np.isnan(compute_metrics([1.0], [1.0])["r2"])
    df = pd.DataFrame({"site_id": ["a"] * 3 + ["b"] * 3, "observed": [1, 2, 3, 1, 2, 3.0],
                       "predicted": [1, 2, 3, 2, 3, 4.0], "features": "f", "head": "h"})
    per = per_site_metrics(df).set_index("site_id")
    assert per.loc["a", "rmse"] == 0 and per.loc["b", "bias"] == pytest.approx(1)
    assert pooled_metrics(df)["n"].item() == 6


def _table(n_sites: int = 4, n_days: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for s in range(n_sites):
        d = pd.date_range("2019-01-01", periods=n_days, freq="D")
        x1, x2 = rng.normal(size=n_days), rng.normal(size=n_days)
        parts.append(pd.DataFrame({"site_id": f"S{s}", "date": d, "x1": x1, "x2": x2, "igbp": ["ENF", "DBF"][s % 2],
                                   "GPP": 3 + 2 * x1 - 0.5 * x2 + rng.normal(0, 0.1, n_days)}))
    return pd.concat(parts, ignore_index=True)


def test_splitters() -> None:
    t = _table()
    loso = cv_splits(t, "loso")
    assert [f for f, _, _ in loso] == ["S0", "S1", "S2", "S3"]
    for _, tr, te in loso:
        assert set(t["site_id"].iloc[te]).isdisjoint(t["site_id"].iloc[tr])
    gk = cv_splits(t, "groupkfold", k=2, seed=1)
    assert len(gk) == 2 and sum(len(te) for _, _, te in gk) == len(t)
    for _, tr, te in gk:
        assert set(t["site_id"].iloc[te]).isdisjoint(t["site_id"].iloc[tr])
    one = t[t["site_id"] == "S0"].reset_index(drop=True)
    months = cv_splits(one, "month")
    assert len(months) == len(pd.to_datetime(one["date"]).dt.strftime("%Y-%m").unique())
    with pytest.raises(InputError, match="at least 2 sites"):
        cv_splits(one, "loso")
    with pytest.raises(InputError, match="2 years"):
        cv_splits(one, "year")
    with pytest.raises(InputError, match="unknown cv"):
        cv_splits(t, "bogus")


def test_heads_recover_linear_signal_out_of_fold() -> None:
    t = _table()
    splits = cv_splits(t, "loso")
    for name in ("linear", "xgboost", "mlp"):
        oof = out_of_fold(t, ["x1", "x2"], lambda n=name: make_head(n, seed=0), splits, head=name, features="x")
        m = compute_metrics(oof["observed"], oof["predicted"])
        assert m["r2"] > 0.9, (name, m)
        assert list(oof.columns) == ["site_id", "date", "observed", "predicted", "fold", "head", "features"]


def test_linear_coef_table_and_determinism() -> None:
    t = _table(2)
    lin = LinearHead().fit(t[["x1", "x2"]], t["GPP"])
    ct = lin.coef_table().set_index("term")
    sd1 = t["x1"].std(ddof=0)
    assert ct.loc["x1", "coef"] == pytest.approx(2 * sd1, rel=0.02)
    assert ct.loc["x1", "ci_low"] < ct.loc["x1", "coef"] < ct.loc["x1", "ci_high"] and ct.loc["x1", "p"] < 1e-6
    ridge = LinearHead(alpha=0.5).fit(t[["x1", "x2"]], t["GPP"])
    assert abs(ridge.coef_table().set_index("term").loc["x1", "coef"]) < abs(ct.loc["x1", "coef"])
    a = XGBHead(seed=3, n_estimators=50).fit(t[["x1", "x2"]], t["GPP"]).predict(t[["x1", "x2"]])
    b = XGBHead(seed=3, n_estimators=50).fit(t[["x1", "x2"]], t["GPP"]).predict(t[["x1", "x2"]])
    np.testing.assert_array_equal(a, b)
    m1 = MLPHead(seed=1, max_epochs=20).fit(t[["x1", "x2"]], t["GPP"]).predict(t[["x1", "x2"]])
    m2 = MLPHead(seed=1, max_epochs=20).fit(t[["x1", "x2"]], t["GPP"]).predict(t[["x1", "x2"]])
    np.testing.assert_allclose(m1, m2)
    with pytest.raises(InputError, match="unknown head"):
        make_head("svm")


def test_ridge_head_tunes_its_penalty_on_inner_site_folds() -> None:
    """Many noise inputs and few days: OLS fits the noise, the grouped inner CV picks a penalty that does not."""
    from ecoembed.gpp.cv import cv_splits, out_of_fold
    from ecoembed.gpp.heads import RIDGE_ALPHAS, LinearHead, RidgeHead
    from ecoembed.gpp.metrics import compute_metrics

    rng = np.random.default_rng(0)
    n_sites, per_site, n_noise = 6, 12, 40
    site = np.repeat([f"S{i}" for i in range(n_sites)], per_site)
    signal = rng.normal(size=len(site))
    noise = rng.normal(size=(len(site), n_noise))
    X = pd.DataFrame(np.column_stack([signal, noise]), columns=[f"f{i}" for i in range(n_noise + 1)])
    y = 2.0 * signal + rng.normal(0, 0.5, len(site))
    table = X.assign(GPP=y, site_id=site, date=pd.Timestamp("2020-01-01"))
    splits = cv_splits(table, "loso")
    cols = list(X.columns)
    ridge = out_of_fold(table, cols, RidgeHead, splits, head="ridge", features="x")
    ols = out_of_fold(table, cols, LinearHead, splits, head="linear", features="x")
    r_ridge = compute_metrics(ridge["observed"], ridge["predicted"])
    r_ols = compute_metrics(ols["observed"], ols["predicted"])
    assert r_ridge["rmse"] < 0.9 * r_ols["rmse"]
    fitted = RidgeHead().fit(X, y, groups=site)
    assert fitted.alpha_ in RIDGE_ALPHAS and fitted.alpha_ > RIDGE_ALPHAS[0]
    assert np.isfinite(fitted.predict(X)).all()
