"""fit-gpp end to end through the CLI entry point on a SYNTHETIC multi-site fixture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecoembed.cli import main
from ecoembed.sources.synthetic import write_embedding_sites as make_sites


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int, str]:
    root = tmp_path_factory.mktemp("gpp")
    csv = make_sites(root / "data", n_sites=5, days=365)
    out = root / "run"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["fit-gpp", "--sites", str(csv), "--out", str(out), "--features", "embeddings", "--features", "meteo",
                   "--head", "linear", "--head", "xgboost", "--quiet"])
    return csv, out, rc, buf.getvalue()


def test_fit_gpp_outputs_and_embeddings_beat_meteo(synthetic_run: tuple[Path, Path, int, str]) -> None:
    _, out, rc, stdout = synthetic_run
    assert rc == 0, stdout
    assert "SYNTHETIC DATA" in stdout
    for name in ("predictions.csv", "predictions.parquet", "metrics_pooled.csv", "metrics_pooled.md", "metrics_per_site.csv",
                 "metrics_per_site.md", "days_lost.csv", "provenance.json", "coefficients_embeddings.csv", "index.html",
                 "report.md", "figures/obs_vs_pred.png", "figures/site_skill_r2.png", "figures/seasonal_sites.png"):
        assert (out / name).is_file(), name
    pred = pd.read_parquet(out / "predictions.parquet")
    assert {"site_id", "date", "observed", "predicted", "fold", "head", "features"} <= set(pred.columns)
    assert (pred["fold"] == pred["site_id"]).all()  # LOSO: each site predicted by the model that never saw it
    pooled = pd.read_csv(out / "metrics_pooled.csv").set_index(["features", "head"])
    print("\nSYNTHETIC LOSO pooled:\n", pooled[["n", "r2", "rmse"]].round(3).to_string())
    for head in ("linear", "xgboost"):
        assert pooled.loc[("embeddings", head), "r2"] > pooled.loc[("meteo", head), "r2"] + 0.1
        assert pooled.loc[("embeddings", head), "rmse"] < pooled.loc[("meteo", head), "rmse"]
    lost = pd.read_csv(out / "days_lost.csv")
    emb = lost[lost["features"] == "embeddings"]
    assert (emb["features_missing"] > 0).all() and (lost["qc_failed"] > 0).all()
    reasons = ["gpp_missing", "qc_failed", "outside_cube_period", "features_missing", "n_used"]
    assert (lost[reasons].sum(axis=1) == lost["n_flux_days"]).all()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["synthetic"] is True and len(prov["inputs"]) == 11
    assert all(len(v["sha256"]) == 64 for v in prov["inputs"].values())
    assert {"python", "numpy", "pandas", "torch", "xgboost", "scikit-learn", "statsmodels", "ecoembed"} <= set(prov["versions"])
    html = (out / "index.html").read_text()
    assert "SYNTHETIC DATA" in html and "data:image/png;base64," in html and 'src="figures/' not in html
    assert "SYNTHETIC DATA" in (out / "report.md").read_text()
    coefs = pd.read_csv(out / "coefficients_embeddings.csv")
    assert {"term", "coef", "ci_low", "ci_high", "p", "fold"} <= set(coefs.columns)
    assert not list(out.parent.glob(".run.*"))  # no temp folder left


def test_refuses_existing_output_and_cv_report_rebuilds(synthetic_run: tuple[Path, Path, int, str],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    csv, out, _, _ = synthetic_run
    before = (out / "metrics_pooled.csv").read_text()
    assert main(["fit-gpp", "--sites", str(csv), "--out", str(out), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "metrics_pooled.csv").read_text() == before
    (out / "index.html").unlink()
    (out / "report.md").unlink()
    assert main(["cv-report", "--run", str(out)]) == 0
    assert "SYNTHETIC DATA" in (out / "index.html").read_text()
    assert main(["cv-report", "--run", str(csv.parent)]) == 2
    assert "not a fit-gpp run folder" in capsys.readouterr().err


def test_tower_outside_cube_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = make_sites(tmp_path / "d", n_sites=2, days=40)
    t = pd.read_csv(csv)
    t.loc[1, "lat"] = 46.5
    t.to_csv(csv, index=False)
    out = tmp_path / "run"
    assert main(["fit-gpp", "--sites", str(csv), "--out", str(out), "--quiet", "--strict"]) == 2
    err = capsys.readouterr().err
    assert "ZZ-T1" in err and "outside the cube" in err and err.count("\n") == 1
    assert not out.exists()
    # without --strict the site is skipped; one site left cannot be cross-validated by site: one line says both
    assert main(["fit-gpp", "--sites", str(csv), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "only 1 usable site" in err and "ZZ-T1" in err and "outside the cube" in err and err.count("\n") == 1


def test_groupkfold_mlp_and_combined_sets(tmp_path: Path) -> None:
    from ecoembed.pipelines.fit_gpp import run_fit_gpp

    csv = make_sites(tmp_path / "d", n_sites=4, days=200, s2=True)
    res = run_fit_gpp(csv, tmp_path / "run", feature_sets=["indices_x_par", "embeddings+meteo"], heads=["mlp"],
                      cv="groupkfold", folds=2, progress=False)
    assert set(res.predictions["fold"]) == {"fold1", "fold2"}
    # the LUE baselines come by default beside the requested sets, all scored on the same days
    assert set(res.pooled["features"]) == {"indices_x_par", "embeddings+meteo", "indices_x_par+meteo", "indices_x_potrad", "mod17"}
    assert res.pooled["n"].nunique() == 1
    assert res.pooled.set_index("features").loc["indices_x_par", "r2"] > 0.8


def test_report_has_every_section_with_figures_and_tables(synthetic_run: tuple[Path, Path, int, str]) -> None:
    """Issue 6: each report section is there (none skipped), each figure file is a drawn PNG, tables have their rows."""
    import re

    from PIL import Image

    _, out, _, _ = synthetic_run
    md = (out / "report.md").read_text()
    titles = re.findall(r"^## (.+)$", md, re.M)
    assert titles == ["Findings", "Cross-validated skill", "Seasonal GPP per site", "Beyond the towers: kept models and GPP maps",
                      "Skill by support (days to the nearest satellite observation)",
                      "Skill decomposition", "Temporal fidelity",
                      "Interpretability", "Data and provenance"], titles
    assert "section skipped" not in md and "Not available for this run" not in md
    for name in ("obs_vs_pred", "site_skill_r2", "seasonal_sites", "decomposition", "daily_vs_8day", "phenology",
                 "importance", "linear_coefficients", "embedding_correlations", "pca_rgb"):
        png = out / "figures" / f"{name}.png"
        assert png.is_file(), name
        arr = np.asarray(Image.open(png).convert("L"), dtype=float)
        assert arr.shape[0] > 200 and arr.std() > 10, name  # not blank
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["interpreted_feature_set"] == "embeddings"
    n_emb = len(prov["feature_columns"]["embeddings"])
    assert len(pd.read_csv(out / "interpret_embedding_correlations.csv")) == n_emb
    assert len(pd.read_csv(out / "interpret_contributions_feature.csv")) == n_emb
    assert len(pd.read_csv(out / "interpret_linear_coefficients.csv")) == n_emb
    pooled = pd.read_csv(out / "metrics_pooled.csv")
    assert len(pooled) == 4  # 2 feature sets x 2 heads
    assert len(pd.read_csv(out / "metrics_per_site.csv")) == 4 * 5
    dec = pd.read_csv(out / "decomposition.csv")
    comps = {"daily", "seasonal_cycle", "anomalies", "across_site", "interannual"}
    whole = dec[dec["group"] == "all"]
    assert len(whole) == 4 * len(comps) and set(whole["component"]) == comps
    assert set(dec["group"]) == {"all", *pd.read_csv(out / "predictions.csv")["igbp"].dropna().unique()}


def test_fit_gpp_defaults_as_users_type_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ecoembed fit-gpp --sites fluxnet.csv`: no --out, no --head -> runs/fluxnet/ with all three heads."""
    csv = make_sites(tmp_path / "d", n_sites=3, days=120)
    user_csv = csv.rename(csv.with_name("fluxnet.csv"))
    monkeypatch.chdir(tmp_path)
    assert main(["fit-gpp", "--sites", str(user_csv), "--quiet", "--no-interpret"]) == 0
    out = tmp_path / "runs" / "fluxnet"
    assert (out / "index.html").is_file()
    pooled = pd.read_csv(out / "metrics_pooled.csv")
    assert sorted(pooled["head"]) == ["linear", "mlp", "xgboost"] and set(pooled["features"]) == {"embeddings"}
    assert not (out / "interpret_notes.txt").exists()
