"""Report sections (decomposition, temporal fidelity, interpretability), plot-seasonal CLI, browser rendering.

Runs on a small SYNTHETIC run folder made here (out-of-fold predictions of two
models at three towers over two years, plus interpretation files).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecoembed.cli import main as cli_main
from ecoembed.gpp.bootstrap import bootstrap_intervals, paired_differences
from ecoembed.gpp.metrics import per_site_metrics, pooled_metrics
from ecoembed.pipelines.fit_gpp import comparison_pairs, with_intervals, write_analysis, write_interpretation
from ecoembed.report.screenshot import find_chromium, render
from ecoembed.report.sections import (
    SECTIONS,
    decomposition_section,
    findings_section,
    interpretability_section,
    seasonal_section,
    temporal_fidelity_section,
)

SITES = {"SYN-A": "ENF", "SYN-B": "GRA", "SYN-C": "GRA"}
MODELS = (("embeddings", "xgboost"), ("meteo", "linear"))


def _gpp(doy: np.ndarray, sos: float, eos: float) -> np.ndarray:
    return 0.5 + 12 * (1 / (1 + np.exp(-(doy - sos) / 9)) - 1 / (1 + np.exp(-(doy - eos) / 9)))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fit-gpp-like run folder: SYNTHETIC out-of-fold predictions, their metrics and analyses, interpretation files."""
    rng = np.random.default_rng(0)
    run = tmp_path_factory.mktemp("run")
    dates = pd.date_range("2018-01-01", "2019-12-31", freq="D")
    doy = dates.day_of_year.to_numpy().astype(float)
    parts, table = [], []
    for i, (site, igbp) in enumerate(SITES.items()):
        obs = _gpp(doy, 110 + 10 * i, 270 - 5 * i) * (1 + 0.1 * (dates.year == 2019)) + rng.normal(0, 0.5, doy.size)
        for feats, head in MODELS:
            pred = obs + rng.normal(0, 0.8, doy.size) if feats == "embeddings" else np.full(doy.size, obs.mean())
            parts.append(pd.DataFrame({"site_id": site, "date": dates, "observed": obs, "predicted": pred, "fold": i,
                                       "features": feats, "head": head, "igbp": igbp, "synthetic": True}))
        fapar = (obs - 0.5) / 12 + rng.normal(0, 0.02, doy.size)
        table.append(pd.DataFrame({"site_id": site, "date": dates, "GPP": obs, "ndvi": fapar,
                                   "TA": 10 + 8 * np.sin(2 * np.pi * (doy - 110) / 365) + rng.normal(0, 2, doy.size),
                                   "emb_0": fapar + rng.normal(0, 0.05, doy.size), "emb_1": rng.normal(0, 1, doy.size)}))
    oof = pd.concat(parts, ignore_index=True)
    oof.to_csv(run / "oof_predictions.csv", index=False)
    pooled_metrics(oof).to_csv(run / "metrics_pooled.csv", index=False)
    per_site_metrics(oof).to_csv(run / "metrics_per_site.csv", index=False)
    write_analysis(run, oof)
    chip = rng.normal(size=(4, 8, 8, 6)) + np.linspace(0, 2, 4)[:, None, None, None]
    write_interpretation(run, pd.concat(table, ignore_index=True), ["ndvi", "TA", "emb_0", "emb_1"], chip=chip,
                         chip_dates=np.array(["2018-03-01", "2018-05-01", "2018-07-01", "2018-09-01"], dtype="datetime64[D]"),
                         chip_site="SYN-A")
    return run


def _table_rows(html: str, table_id: str) -> int:
    m = re.search(rf'<table class="metrics" id="{table_id}">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert m, f"table {table_id} missing"
    return m.group(1).count("<tr>")


def _figure_ok(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 10_000, path  # a real plot, not an empty canvas
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_decomposition_section(run_dir: Path) -> None:
    title, html, md = decomposition_section(run_dir)
    assert title == "Skill decomposition"
    _figure_ok(run_dir / "figures" / "decomposition.png")
    _figure_ok(run_dir / "figures" / "daily_vs_8day.png")
    decomp = pd.read_csv(run_dir / "decomposition.csv")
    # 2 models x (all + 2 IGBP classes) x 5 components
    assert len(decomp) == 2 * 3 * 5
    assert _table_rows(html, "decomposition-igbp") == 3  # all, ENF, GRA
    assert _table_rows(html, "daily-vs-8day") == 2 and _table_rows(html, "decomposition") == 2 * 5
    assert html.count("data:image/png;base64,") == 2 and "figures/decomposition.png" in md
    best = decomp[(decomp["features"] == "embeddings") & (decomp["group"] == "all")].set_index("component")
    worst = decomp[(decomp["features"] == "meteo") & (decomp["group"] == "all")].set_index("component")
    # a flat prediction has no seasonal cycle: NSE 0 (it predicts the MSC mean), r2 undefined
    assert best.loc["seasonal_cycle", "nse"] > 0.9 and worst.loc["seasonal_cycle", "nse"] == pytest.approx(0.0)
    assert np.isnan(worst.loc["seasonal_cycle", "r2"])
    assert best.loc["interannual", "n"] == 6  # 3 sites x 2 years


def test_temporal_fidelity_section(run_dir: Path) -> None:
    title, html, _md = temporal_fidelity_section(run_dir)
    assert title == "Temporal fidelity"
    _figure_ok(run_dir / "figures" / "phenology.png")
    pheno = pd.read_csv(run_dir / "phenology.csv")
    assert len(pheno) == 2 * 6 * 2  # models x site-years x methods
    emb = pheno[(pheno["features"] == "embeddings")]
    assert emb["sos_error_days"].abs().max() < 5
    assert _table_rows(html, "phenology-summary") == 4 and _table_rows(html, "lags") == 2
    lags = pd.read_csv(run_dir / "lags.csv")
    assert (lags[lags["features"] == "embeddings"]["lag_days"] == 0).all()


def test_interpretability_section(run_dir: Path) -> None:
    title, html, _md = interpretability_section(run_dir)
    assert title == "Interpretability"
    for name in ("importance", "linear_coefficients", "embedding_correlations", "pca_rgb"):
        _figure_ok(run_dir / "figures" / f"{name}.png")
    assert "Not available" not in html
    assert _table_rows(html, "importance-family") == 3  # indices, meteo, embedding
    assert _table_rows(html, "embedding-correlations") == 2  # ndvi, TA
    fam = pd.read_csv(run_dir / "interpret_contributions_family.csv")
    assert fam["family"].iloc[0] == "indices"


def test_report_sections_registry_order(run_dir: Path) -> None:
    titles = [section(run_dir)[0] for section in SECTIONS]
    assert titles == ["Findings", "Cross-validated skill", "Embedding products compared (e.g. fused S1+S2 vs S2-only)",
                      "Seasonal GPP per site", "Beyond the towers: kept models and GPP maps",
                      "Skill by support (days to the nearest satellite observation)",
                      "Skill decomposition", "Temporal fidelity",
                      "Interpretability", "Data and provenance"]


@pytest.fixture(scope="module")
def ranked_run(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run above plus an LUE reference model, intervals, paired differences and tower coordinates."""
    run = tmp_path_factory.mktemp("ranked")
    oof = pd.read_csv(run_dir / "oof_predictions.csv", parse_dates=["date"])
    rng = np.random.default_rng(1)
    lue = oof[oof["features"] == "meteo"].assign(features="indices_x_par+meteo", head="linear")
    emb = oof[oof["features"] == "embeddings"]
    lue["predicted"] = lue["observed"].to_numpy() + rng.normal(0, 1.6, len(lue))  # worse than embeddings (sd 0.8)
    oof = pd.concat([oof, lue], ignore_index=True)
    assert len(emb) == len(lue)
    oof.to_csv(run / "oof_predictions.csv", index=False)
    pooled = with_intervals(pooled_metrics(oof), bootstrap_intervals(oof, n_boot=200))
    pooled.to_csv(run / "metrics_pooled.csv", index=False)
    per_site_metrics(oof).to_csv(run / "metrics_per_site.csv", index=False)
    ref = ("indices_x_par+meteo", "linear")
    paired_differences(oof, comparison_pairs(pooled, ref), n_boot=200).to_csv(run / "skill_differences.csv", index=False)
    sites = [{"site_id": s, "lat": 40.0 + i, "lon": -3.0 + 2 * i} for i, s in enumerate(SITES)]
    (run / "provenance.json").write_text(json.dumps({"reference_model": list(ref), "sites": sites, "synthetic": True}))
    return run


def test_findings_box_ranks_against_the_reference(ranked_run: Path) -> None:
    title, html, md = findings_section(ranked_run)
    assert title == "Findings"
    assert html.startswith('<div class="findings" id="findings"')
    box = html[: html.index("</div>")]
    assert "Best model (pooled daily NSE): embeddings / xgboost" in box
    assert "Margin over the LUE reference indices_x_par+meteo / linear" in box and ": better." in box
    assert "every model scored on the same 2190 site-days (paired)" in box
    assert "SYNTHETIC DATA" in box
    assert _table_rows(html, "ranking") == 3
    assert "reference" in html and "**Findings**" in md
    _figure_ok(ranked_run / "figures" / "ranking_vs_reference.png")
    assert '<div id="site-map">' in html
    _figure_ok(ranked_run / "figures" / "site_map.png")


def test_embedding_products_section_only_when_there_are_two(run_dir: Path) -> None:
    from ecoembed.report.sections import embedding_products_section

    assert embedding_products_section(run_dir)[1:] == ("", "")  # one product: the report leaves the section out
    from ecoembed.report.html import build_report

    html_path, _ = build_report(run_dir)
    html = html_path.read_text()
    assert "<h2>Findings</h2>" in html and "Embedding products compared" not in html


def test_findings_without_a_reference_says_so(run_dir: Path) -> None:
    _, html, _ = findings_section(run_dir)
    assert "No LUE reference baseline in this run" in html
    assert '<div id="site-map">' not in html  # no coordinates in this run's provenance


def test_sections_name_analyses_a_run_does_not_have(tmp_path: Path) -> None:
    """An older run folder without the analysis tables: the sections say so instead of failing."""
    _, html, _ = decomposition_section(tmp_path)
    assert "Not available" in html and "decomposition.csv" in html
    _, html, _ = temporal_fidelity_section(tmp_path)
    assert "SOS/EOS not computed" in html


def test_interpretability_section_names_what_is_missing(tmp_path: Path) -> None:
    _, html, md = interpretability_section(tmp_path)
    assert "Not available" in html and "PCA" in md


def test_seasonal_section_and_cli(run_dir: Path, tmp_path: Path) -> None:
    _, html, _ = seasonal_section(run_dir)
    assert "embeddings / xgboost" in html
    out = tmp_path / "one_site.png"
    assert cli_main(["plot-seasonal", "--run", str(run_dir), "--site", "SYN-B", "--out", str(out)]) == 0
    _figure_ok(out)
    assert cli_main(["plot-seasonal", "--run", str(run_dir), "--features", "meteo", "--head", "linear"]) == 0
    _figure_ok(run_dir / "figures" / "seasonal_all.png")


def test_plot_seasonal_cli_errors(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["plot-seasonal", "--run", str(run_dir), "--site", "XX-Nope"]) == 2
    assert "XX-Nope" in capsys.readouterr().err
    assert cli_main(["plot-seasonal", "--run", str(tmp_path)]) == 2
    assert "out-of-fold" in capsys.readouterr().err


@pytest.mark.slow
def test_sections_render_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    if find_chromium() is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    body = "".join(f"<h2>{t}</h2>{h}" for t, h, _ in (decomposition_section(run_dir), interpretability_section(run_dir)))
    page = tmp_path / "index.html"
    page.write_text(f"<!doctype html><html><body><h1>SYNTHETIC DATA</h1>{body}</body></html>", encoding="utf-8")
    png = render(page, tmp_path / "shot.png", width=1200, height=2400)
    from PIL import Image

    with Image.open(png) as im:
        arr = np.asarray(im.convert("L"), dtype=float)
    assert im.size == (1200, 2400)
    assert arr.std() > 20  # figures drawn: far from a blank white page
    assert (arr < 128).mean() > 0.01  # and some dark ink (text, bars)
