"""Interpretability recovers a known driver on synthetic data (fAPAR-like first, pure noise last)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ecoembed.errors import InputError
from ecoembed.gpp.interpret import (
    embedding_correlations,
    family_groups,
    feature_family,
    interpret_out_of_fold,
    linear_coefficients,
    pca_rgb,
    permutation_importance_grouped,
    xgb_contributions,
)


def synthetic_lue_table(n_sites: int = 6, n_days: int = 365, seed: int = 0) -> pd.DataFrame:
    """SYNTHETIC light-use-efficiency towers: GPP = eps * fAPAR * PAR * f(T) (gC m-2 d-1) + noise.

    fAPAR carries the seasonal amplitude (0.05-0.85); PAR and temperature vary
    mildly; ``noise`` is pure noise; two embedding dims are noisy views of fAPAR
    and one is noise.
    """
    rng = np.random.default_rng(seed)
    parts = []
    doy = np.arange(n_days) % 365 + 1
    for s in range(n_sites):
        sos, eos = rng.uniform(100, 140), rng.uniform(250, 290)
        fapar = 0.05 + 0.8 * (1 / (1 + np.exp(-(doy - sos) / 10)) - 1 / (1 + np.exp(-(doy - eos) / 10)))
        par = 8 + 1.5 * np.sin(2 * np.pi * (doy - 80) / 365) + rng.normal(0, 0.8, n_days)  # MJ m-2 d-1
        ta = 12 + 3 * np.sin(2 * np.pi * (doy - 110) / 365) + rng.normal(0, 1.5, n_days)  # degC
        ft = np.clip((ta + 5) / 20, 0, 1)
        gpp = 1.8 * fapar * par * ft + rng.normal(0, 0.3, n_days)
        parts.append(pd.DataFrame({
            "site_id": f"SYN-{s}", "date": pd.date_range("2019-01-01", periods=n_days, freq="D"),
            "GPP": gpp, "fapar": fapar + rng.normal(0, 0.01, n_days), "PAR": par, "TA": ta,
            "noise": rng.normal(0, 1, n_days),
            "emb_0": 2 * fapar + rng.normal(0, 0.05, n_days), "emb_1": -fapar + rng.normal(0, 0.05, n_days),
            "emb_2": rng.normal(0, 1, n_days),
        }))
    return pd.concat(parts, ignore_index=True)


FEATURES = ["fapar", "PAR", "TA", "noise"]


def test_feature_families_from_names() -> None:
    assert feature_family("emb_12") == "embedding"
    assert feature_family("NDVI") == "indices" and feature_family("s2_kndvi") == "indices" and feature_family("fapar") == "indices"
    assert feature_family("TA_F") == "meteo" and feature_family("SW_IN") == "meteo" and feature_family("VPD") == "meteo"
    assert feature_family("B04") == "bands" and feature_family("VV_db") == "bands" and feature_family("VH") == "bands"
    assert feature_family("noise") == "other"
    synthetic_lue_table(n_sites=1, n_days=10)
    assert family_groups(["emb_0", "TA", "emb_1"]) == {"embedding": ["emb_0", "emb_1"], "meteo": ["TA"]}


def test_contributions_and_permutation_rank_the_known_driver() -> None:
    df = synthetic_lue_table()
    train, test = df[df["site_id"] != "SYN-5"], df[df["site_id"] == "SYN-5"]
    model = xgb.XGBRegressor(n_estimators=150, max_depth=4, learning_rate=0.1, random_state=0, n_jobs=2)
    model.fit(train[FEATURES], train["GPP"])
    per_feat, per_fam = xgb_contributions(model, test[FEATURES])
    assert per_feat["feature"].iloc[0] == "fapar" and per_feat["feature"].iloc[-1] == "noise"
    # contributions are exact: bias + sum of contributions = prediction
    contrib = model.get_booster().predict(xgb.DMatrix(test[FEATURES]), pred_contribs=True)
    assert np.allclose(contrib.sum(axis=1), model.predict(test[FEATURES]), atol=1e-3)
    assert per_fam["family"].iloc[0] == "indices" and per_fam["share"].sum() == pytest.approx(1.0)

    perm = permutation_importance_grouped(model, test[FEATURES], test["GPP"], by="feature", n_repeats=5, seed=0)
    assert perm["group"].iloc[0] == "fapar" and perm["group"].iloc[-1] == "noise"
    assert perm["importance_rmse"].iloc[0] > 1.0 and abs(perm["importance_rmse"].iloc[-1]) < 0.1
    fam = permutation_importance_grouped(model, test[FEATURES], test["GPP"], by="family", seed=0)
    assert fam["group"].iloc[0] == "indices" and fam["group"].iloc[-1] == "other"


def test_linear_coefficients_with_confidence_intervals() -> None:
    df = synthetic_lue_table()
    lin = linear_coefficients(df[FEATURES], df["GPP"], sites=df["site_id"])
    assert lin["feature"].iloc[0] == "fapar" and lin["feature"].iloc[-1] == "noise"
    top = lin.iloc[0]
    assert top["ci_low"] < top["coef"] < top["ci_high"] and top["ci_low"] > 0
    assert ((lin["ci_low"] <= lin["coef"]) & (lin["coef"] <= lin["ci_high"])).all()
    noise = lin.set_index("feature").loc["noise"]
    # standardised coefficients: the noise one is negligible next to fAPAR (gC m-2 d-1 per SD)
    assert abs(noise["coef"]) < 0.02 * top["coef"]
    hc3 = linear_coefficients(df[FEATURES], df["GPP"])  # without sites: HC3 covariance, same point estimates
    assert np.allclose(hc3.set_index("feature")["coef"], lin.set_index("feature")["coef"])


def test_more_coefficients_than_sites_warns_that_cluster_errors_are_not_identified(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    n, k = 120, 8
    X = pd.DataFrame(rng.normal(size=(n, k)), columns=[f"emb_{i:03d}" for i in range(k)])
    y = 2.0 * X["emb_000"] + rng.normal(0, 0.1, n)
    four_sites = np.repeat(["A", "B", "C", "D"], n // 4)  # 9 coefficients, 4 sites: cluster covariance rank <= 4
    with caplog.at_level("WARNING"):
        lin = linear_coefficients(X, y, sites=four_sites)
    assert "9 coefficients and 4 sites" in caplog.text and "rank <= 4" in caplog.text and "not identified" in caplog.text
    # standardised: GPP change per SD of emb_000
    assert lin.set_index("feature").loc["emb_000", "coef"] == pytest.approx(2.0 * X["emb_000"].std(ddof=0), rel=0.05)
    assert (lin["std_err"].isna() | (lin["std_err"] > 0)).all()  # a real variance or NaN, never a negative one
    caplog.clear()
    with caplog.at_level("WARNING"):
        linear_coefficients(X[["emb_000"]], y, sites=four_sites)  # 2 coefficients, 4 sites: identified
    assert "not identified" not in caplog.text


def test_out_of_fold_interpretation_recovers_truth() -> None:
    df = synthetic_lue_table()
    res = interpret_out_of_fold(df, [*FEATURES, "emb_2"], n_folds=3, n_repeats=3, seed=0)
    assert res.contributions_feature["feature"].iloc[0] == "fapar"
    assert res.permutation_feature["group"].iloc[0] == "fapar"
    assert set(res.permutation_feature["group"].iloc[-2:]) == {"noise", "emb_2"}  # the two pure-noise inputs
    assert res.linear_coefficients["feature"].iloc[0] == "fapar"
    # correlation matrix: emb_0 follows fAPAR, emb_1 is its negative, emb_2 is noise
    corr = res.correlations
    assert corr is not None and corr.loc["emb_0", "fapar"] > 0.9 and corr.loc["emb_1", "fapar"] < -0.9
    assert abs(corr.loc["emb_2", "fapar"]) < 0.1
    assert set(res.tables()) >= {"interpret_contributions_family", "interpret_linear_coefficients"}


def test_embedding_correlation_matrix_shape_and_errors() -> None:
    df = synthetic_lue_table(n_sites=2, n_days=100)
    c = embedding_correlations(df, method="spearman")
    assert list(c.index) == ["emb_0", "emb_1", "emb_2"] and list(c.columns) == ["fapar", "PAR", "TA"]
    with pytest.raises(InputError, match="embedding"):
        embedding_correlations(df[["fapar", "TA"]])
    # a reference without variance (no rain all year, a missing driver) is left out, not a column of NaN
    df2 = df.assign(P=0.0, SW_IN=np.nan)
    assert list(embedding_correlations(df2).columns) == ["fapar", "PAR", "TA"]


def test_pca_rgb_of_an_embedding_chip() -> None:
    rng = np.random.default_rng(0)
    t, h, w, f = 4, 6, 5, 8
    season = np.linspace(0, 1, t)[:, None, None, None]
    left_right = (np.arange(w) >= 2)[None, None, :, None].astype(float)
    axis1, axis2 = rng.normal(size=f), rng.normal(size=f)
    axis2 -= axis1 * (axis1 @ axis2) / (axis1 @ axis1)  # orthogonal axes: PC1 is the season
    chip = season * axis1 * 5 + left_right * axis2 * 2 + rng.normal(0, 0.01, (t, h, w, f))
    chip[0, 0, 0, 3] = np.nan
    res = pca_rgb(chip)
    assert res.rgb.shape == (t, h, w, 3)
    assert np.isnan(res.rgb[0, 0, 0]).all() and np.nanmin(res.rgb) >= 0 and np.nanmax(res.rgb) <= 1
    assert res.explained_variance_ratio[0] > 0.5 and res.explained_variance_ratio[:2].sum() > 0.99
    # the first component follows the season: the red channel moves monotonically across the dates
    red = np.array([np.nanmean(res.rgb[i, ..., 0]) for i in range(t)])
    assert np.all(np.diff(red) > 0.2) or np.all(np.diff(red) < -0.2)
    with pytest.raises(InputError, match="feature"):
        pca_rgb(np.zeros((3, 4, 2)))
