"""Bootstrap intervals of skill (known answers), the MOD17 baseline and paired evaluation with baselines (SYNTHETIC)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecoembed.gpp.bootstrap import bootstrap_intervals, paired_differences
from ecoembed.gpp.lue import MOD17_BPLUT, mod17_gpp, mod17_parameters
from ecoembed.pipelines.fit_gpp import run_fit_gpp
from ecoembed.sources.synthetic import write_embedding_sites


def _sites_with_bias(n_sites: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for s in range(n_sites):
        o = rng.normal(5.0, 2.0, 10)
        parts.append(pd.DataFrame({"site_id": f"S{s:03d}", "date": pd.date_range("2020-01-01", periods=10),
                                   "observed": o, "predicted": o + rng.normal(0.5, 1.0), "features": "a", "head": "h"}))
    return pd.concat(parts, ignore_index=True)


def test_bootstrap_interval_of_pooled_bias_matches_normal_theory() -> None:
    df = _sites_with_bias(400)
    site_bias = df.groupby("site_id").apply(lambda g: float((g["predicted"] - g["observed"]).mean()), include_groups=False)
    half = 1.96 * site_bias.std(ddof=0) / np.sqrt(len(site_bias))  # equal rows per site: pooled bias = mean of site biases
    ci = bootstrap_intervals(df, n_boot=4000, seed=1).iloc[0]
    assert ci["ci_unit"] == "site" and ci["ci_blocks"] == 400
    assert abs((ci["bias_hi"] - ci["bias_lo"]) / 2 - half) < 0.1 * half
    assert abs((ci["bias_hi"] + ci["bias_lo"]) / 2 - site_bias.mean()) < 0.2 * half


def test_identical_sites_give_a_zero_width_interval_and_few_sites_resample_site_years() -> None:
    one = _sites_with_bias(1).drop(columns="site_id")
    df = pd.concat([one.assign(site_id=f"S{i}") for i in range(6)], ignore_index=True)
    ci = bootstrap_intervals(df, n_boot=500).iloc[0]
    r2 = np.corrcoef(df["observed"], df["predicted"])[0, 1] ** 2
    assert np.isclose(ci["r2_lo"], r2) and np.isclose(ci["r2_hi"], r2)
    assert bootstrap_intervals(_sites_with_bias(3), n_boot=200).iloc[0]["ci_unit"] == "site-year"


def test_paired_difference_of_a_better_model_excludes_zero() -> None:
    a = _sites_with_bias(60)
    rng = np.random.default_rng(3)
    b = a.assign(features="b", predicted=a["observed"] + rng.normal(0, 0.2, len(a)))
    d = paired_differences(pd.concat([a, b]), [(("b", "h"), ("a", "h"))], n_boot=1000).iloc[0]
    assert bool(d["paired"]) and d["d_rmse"] < 0 and d["d_rmse_hi"] < 0 and d["p_not_better_rmse"] < 0.01


def test_mod17_uses_biome_parameters_and_ramps() -> None:
    eps, tmin_lo, tmin_hi, vpd_lo, vpd_hi = MOD17_BPLUT["DBF"]
    ndvi, par = np.array([0.8]), np.array([40.0])  # mol m-2 d-1
    fpar = 1.1638 * 0.8 - 0.1426
    unlimited = mod17_gpp(ndvi, par, np.array([20.0]), np.array([vpd_lo / 100]), "DBF")
    assert np.isclose(unlimited[0], eps * fpar * 40.0 / 4.57)
    assert mod17_gpp(ndvi, par, np.array([tmin_lo - 1]), np.array([5.0]), "DBF")[0] == 0.0
    assert np.isclose(mod17_gpp(ndvi, par, np.array([tmin_hi]), np.array([vpd_lo / 100]), "DBF")[0], unlimited[0])
    assert mod17_gpp(ndvi, par, np.array([20.0]), np.array([vpd_hi / 100 + 1]), "DBF")[0] == 0.0
    assert mod17_parameters("XYZ")[1] == "mean" and mod17_parameters("WET")[1] == "GRA"


def test_paired_run_with_baselines_scores_every_model_on_the_same_days(tmp_path: Path) -> None:
    csv = write_embedding_sites(tmp_path / "d", n_sites=5, days=200)
    res = run_fit_gpp(csv, tmp_path / "run", feature_sets=["embeddings", "meteo"], heads=["linear"], progress=False,
                      interpret=False, paired=True, baselines=True)
    pooled = res.pooled
    assert pooled["n"].nunique() == 1  # paired: the same site-days for every model
    assert {"r2_lo", "r2_hi", "rmse_lo", "rmse_hi"} <= set(pooled.columns)
    assert (pooled["r2_lo"] <= pooled["r2"] + 1e-12).all() and (pooled["r2"] <= pooled["r2_hi"] + 1e-12).all()
    baselines = pd.read_csv(tmp_path / "run" / "baselines.csv")
    assert set(baselines["features"]) == {"indices_x_par+meteo", "indices_x_potrad", "mod17"}
    assert not baselines["run"].any() and baselines["why_not"].str.len().gt(0).all()  # these sites have no S2 input
    assert (tmp_path / "run" / "paired_days.csv").is_file() and (tmp_path / "run" / "skill_differences.csv").is_file()
    eight = pd.read_csv(tmp_path / "run" / "daily_vs_8day.csv")
    assert "r2_8day_model" in eight.columns and eight["n_8day_model"].gt(0).all()
