"""The report's sections, in one registry: each reads the run folder and renders ``(title, html, md)``.

A section is a callable ``(run_dir) -> (title, html, markdown)``. It draws its
figures into ``<run>/figures/`` (embedded as base64 PNG in the HTML so
``index.html`` stays self-contained) from tables that ``fit-gpp`` wrote
(:mod:`ecoembed.pipelines.fit_gpp`); it computes no score itself. A table a
run does not have (an older run, or an analysis that needs more sites) is
named in the section instead of failing the report.
"""

from __future__ import annotations

import html as html_lib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ecoembed.gpp.decomposition import COMPONENTS
from ecoembed.report.common import (
    best_model,
    html_table,
    img_html,
    is_synthetic,
    load_oof,
    md_table,
    model_label,
    read_provenance,
    read_table,
)
from ecoembed.report.figures import (
    plot_daily_vs_8day,
    plot_decomposition,
    plot_obs_vs_pred,
    plot_phenology_errors,
    plot_seasonal,
    plot_site_skill,
)
from ecoembed.report.interpret_figs import plot_correlation_heatmap, plot_importance, plot_linear_coefficients, plot_pca_strip

Section = Callable[[str | os.PathLike[str]], tuple[str, str, str]]
SECTIONS: list[Section] = []
"""Registered sections, in report order."""


def register_section(fn: Section, *, position: int | None = None) -> Section:
    """Add a section callable (once) to :data:`SECTIONS`; usable as a decorator."""
    if fn not in SECTIONS:
        SECTIONS.insert(len(SECTIONS) if position is None else position, fn)
    return fn


def _figures_dir(run: Path) -> Path:
    d = run / "figures"
    d.mkdir(exist_ok=True)
    return d


def _missing(what: str) -> tuple[str, str]:
    msg = f"Not available for this run: {what}."
    return f"<p><em>{html_lib.escape(msg)}</em></p>", f"*{msg}*"


def _pooled(run: Path) -> pd.DataFrame:
    pooled = read_table(run, "metrics_pooled.csv")
    if pooled is None:
        raise FileNotFoundError(f"{run} has no metrics_pooled.csv")
    return pooled


@register_section
def skill_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Pooled and per-site metric tables, hexbins and per-site skill bars."""
    run = Path(run_dir)
    oof = load_oof(run)
    syn = is_synthetic(run, oof)
    pooled = _pooled(run)
    per_site = read_table(run, "metrics_per_site.csv")
    figs = _figures_dir(run)
    cols = ["features", "head", "n", "r2", "nse", "rmse", "mae", "bias", "kge"]
    hex_png = plot_obs_vs_pred(oof, pooled, figs / "obs_vs_pred.png", synthetic=syn)
    h = (f"<h3>Pooled (all held-out days; RMSE/MAE/bias in gC m-2 d-1)</h3>{html_table(pooled[cols], table_id='pooled')}"
         f"{img_html(hex_png, 'Observed vs predicted daily GPP (gC m-2 d-1), 1:1 line')}")
    m = f"### Pooled (RMSE/MAE/bias in gC m-2 d-1)\n\n{md_table(pooled[cols])}\n\n![obs vs pred](figures/{hex_png.name})"
    if per_site is not None:
        bars_png = plot_site_skill(per_site, figs / "site_skill_r2.png", synthetic=syn)
        h += (f"<h3>Per site</h3>{html_table(per_site[['site_id', *cols]], table_id='per-site')}"
              f"{img_html(bars_png, 'Per-site r2 of each model')}")
        m += f"\n\n### Per site\n\n{md_table(per_site[['site_id', *cols]])}\n\n![per-site skill](figures/{bars_png.name})"
    return "Cross-validated skill", h, m


@register_section
def seasonal_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Observed vs predicted daily GPP per site with the mean seasonal cycle band (best model by pooled NSE)."""
    run = Path(run_dir)
    oof = load_oof(run)
    features, head = best_model(_pooled(run))
    png = plot_seasonal(oof, _figures_dir(run) / "seasonal_sites.png", features=features, head=head,
                        per_site=read_table(run, "metrics_per_site.csv"), synthetic=is_synthetic(run, oof))
    text = (f"Best model by pooled daily NSE: {model_label(features, head)}. "
            "`ecoembed plot-seasonal --run DIR --site ID` draws any site/model.")
    caption = "Daily and mean seasonal GPP (gC m-2 d-1), observed vs predicted, best model"
    return ("Seasonal GPP per site", f"<p>{html_lib.escape(text)}</p>" + img_html(png, caption),
            f"{text}\n\n![seasonal](figures/{png.name})")


@register_section
def support_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Skill by days to the nearest valid satellite observation (``skill_by_support.csv``), best model and all."""
    run = Path(run_dir)
    table = read_table(run, "skill_by_support.csv")
    title = "Skill by support (days to the nearest satellite observation)"
    if table is None or table.empty:
        return (title, *_missing("days to the nearest observation (the run has no satellite inputs, or predates it)"))
    features, head = best_model(_pooled(run))
    best = table[(table["features"] == features) & (table["head"] == head)]
    cols = ["features", "head", "days_to_obs", "n", "r2", "nse", "rmse", "bias"]
    text = (f"Days far from any valid observation rest on interpolation (bands, indices) or on the encoder's "
            f"temporal context (embeddings); `fit-gpp --max-days-to-obs N` drops them. Best model: {model_label(features, head)}.")
    return (title, f"<p>{html_lib.escape(text)}</p>{html_table(best[cols], table_id='support-best')}"
                   f"<details><summary>all models</summary>{html_table(table[cols], table_id='support-all')}</details>",
            f"{text}\n\n{md_table(best[cols])}")


@register_section
def decomposition_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """FLUXCOM skill decomposition (``decomposition.csv``), per IGBP class, and daily vs 8-day (``daily_vs_8day.csv``)."""
    run = Path(run_dir)
    decomp, scales = read_table(run, "decomposition.csv"), read_table(run, "daily_vs_8day.csv")
    if decomp is None or scales is None:
        h, m = _missing("skill decomposition (decomposition.csv, daily_vs_8day.csv)")
        return "Skill decomposition", h, m
    synthetic = is_synthetic(run)
    figs = _figures_dir(run)
    f1 = plot_decomposition(decomp, figs / "decomposition.png", synthetic=synthetic)
    f2 = plot_daily_vs_8day(scales, figs / "daily_vs_8day.png", synthetic=synthetic)
    best = best_model(_pooled(run))
    wide = (decomp[(decomp["features"] == best[0]) & (decomp["head"] == best[1])]
            .pivot_table(index="group", columns="component", values="nse", sort=False)
            .reindex(columns=list(COMPONENTS)).reset_index())
    wide.columns = ["IGBP class" if c == "group" else f"NSE {c}" for c in wide.columns]
    overview = decomp[decomp["group"] == "all"][["features", "head", "component", "n", "r2", "nse", "rmse", "unit"]]
    intro = ("Out-of-fold skill split into the across-site signal (site means), the mean seasonal cycle (per site, by "
             "day of year, 15-day circular smoothing, site mean removed), daily anomalies from it, and the inter-annual "
             "variability of annual sums (sites with >= 2 years of >= 80 % coverage). r² is the squared Pearson "
             "correlation, NSE the Nash-Sutcliffe efficiency; RMSE in gC m-2 d-1 (IAV: gC m-2 yr-1).")
    html = "\n".join([
        f"<p>{html_lib.escape(intro)}</p>",
        img_html(f1, "Skill decomposition per component (bars: models, best by daily NSE)"),
        f"<h3>Per IGBP class, best model ({html_lib.escape(model_label(*best))}), NSE</h3>",
        html_table(wide, table_id="decomposition-igbp"),
        "<h3>Daily vs 8-day aggregated skill</h3>",
        img_html(f2, "Daily vs 8-day skill"),
        html_table(scales, table_id="daily-vs-8day"),
        "<details><summary>All components, all models</summary>",
        html_table(overview, table_id="decomposition"),
        "</details>",
    ])
    md = "\n\n".join([
        intro, "![decomposition](figures/decomposition.png)",
        f"### Per IGBP class, best model ({model_label(*best)}), NSE", md_table(wide),
        "### Daily vs 8-day aggregated skill", "![daily vs 8-day](figures/daily_vs_8day.png)", md_table(scales),
        "### All components", md_table(overview),
    ])
    return "Skill decomposition", html, md


@register_section
def temporal_fidelity_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """SOS/EOS errors (``phenology*.csv``, threshold 50 % and derivative methods) and cross-correlation lags (``lags*.csv``)."""
    run = Path(run_dir)
    pheno, summary = read_table(run, "phenology.csv"), read_table(run, "phenology_summary.csv")
    lags, lag_summary = read_table(run, "lags.csv"), read_table(run, "lags_summary.csv")
    intro = ("Season start (SOS) and end (EOS) per site-year (>= 300 days) from observed and from out-of-fold predicted GPP, "
             "15-day smoothing: threshold at 50 % of the annual amplitude, and the extremes of the first derivative. "
             "Error = predicted - observed (days). Lag: cross-correlation peak within ±30 days (> 0: prediction late).")
    parts_h, parts_m = [f"<p>{html_lib.escape(intro)}</p>"], [intro]
    if pheno is None or summary is None:
        note = "No site-year has >= 300 days of out-of-fold predictions: SOS/EOS not computed."
        parts_h.append(f"<p><em>{note}</em></p>")
        parts_m.append(f"*{note}*")
    else:
        best = best_model(_pooled(run))
        sos_mae = dict(zip(zip(summary["features"].astype(str), summary["head"].astype(str), strict=True),
                           summary["sos_mae_days"], strict=True))
        others = sorted((m for m in sos_mae if m != best), key=lambda k: sos_mae[k] if np.isfinite(sos_mae[k]) else np.inf)
        f = plot_phenology_errors(pheno, lags, run / "figures" / "phenology.png", models=[best, *others[:4]],
                                  synthetic=is_synthetic(run))
        parts_h += [img_html(f, "SOS/EOS errors (days) and lags per site"),
                    "<h3>SOS/EOS error summary (days)</h3>", html_table(summary, table_id="phenology-summary")]
        parts_m += ["![phenology](figures/phenology.png)", "### SOS/EOS error summary (days)", md_table(summary)]
    if lag_summary is not None:
        parts_h += ["<h3>Cross-correlation lag (days)</h3>", html_table(lag_summary, table_id="lags")]
        parts_m += ["### Cross-correlation lag (days)", md_table(lag_summary)]
    return "Temporal fidelity", "\n".join(parts_h), "\n\n".join(parts_m)


@register_section
def interpretability_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Contributions, permutation importance, coefficients, correlations and PCA RGB from the ``interpret_*`` files.

    Missing parts are named in the text.
    """
    run = Path(run_dir)
    synthetic = is_synthetic(run)
    figs = _figures_dir(run)
    html_parts: list[str] = []
    md_parts: list[str] = []
    missing: list[str] = []
    cf, cfam = read_table(run, "interpret_contributions_feature.csv"), read_table(run, "interpret_contributions_family.csv")
    pf, pfam = read_table(run, "interpret_permutation_feature.csv"), read_table(run, "interpret_permutation_family.csv")
    intro = ("xgboost fitted per site-level fold and explained on the held-out sites: exact additive contributions "
             "(pred_contribs) and permutation importance (RMSE increase, features of one family permuted together). "
             "Families: embedding dims (emb_*), spectral indices, meteorological drivers, bands.")
    if cf is not None and cfam is not None and pf is not None and pfam is not None:
        f = plot_importance(cfam, pfam, cf, pf, figs / "importance.png", synthetic=synthetic)
        fam = cfam.merge(pfam.rename(columns={"group": "family"}), on="family", how="outer", suffixes=("", "_perm"))
        fam = fam[["family", "n_features", "mean_abs_contribution", "share", "importance_rmse", "importance_rmse_std"]]
        fam = fam.sort_values("mean_abs_contribution", ascending=False)
        html_parts += [f"<p>{html_lib.escape(intro)}</p>", img_html(f, "Contributions and permutation importance"),
                       html_table(fam, table_id="importance-family")]
        md_parts += [intro, "![importance](figures/importance.png)", md_table(fam)]
    else:
        missing.append("xgboost contributions / permutation importance")
    lin = read_table(run, "interpret_linear_coefficients.csv")
    if lin is not None:
        f = plot_linear_coefficients(lin, figs / "linear_coefficients.png", synthetic=synthetic)
        top = lin.head(15)[["feature", "family", "coef", "ci_low", "ci_high", "p_value"]]
        html_parts += ["<h3>Linear head coefficients (standardised, 95 % CI, cluster-robust by site)</h3>",
                       img_html(f, "Linear coefficients"), html_table(top, table_id="linear-coefficients")]
        md_parts += ["### Linear head coefficients (standardised, 95 % CI)", "![coefficients](figures/linear_coefficients.png)",
                     md_table(top)]
    else:
        missing.append("linear coefficients")
    corr, best = read_table(run, "interpret_embedding_correlations.csv"), read_table(run, "interpret_embedding_best.csv")
    if corr is not None and best is not None:
        mat = corr.set_index(corr.columns[0]).dropna(axis=1, how="all")  # a reference without variance (e.g. no rain)
        f = plot_correlation_heatmap(mat, figs / "embedding_correlations.png", synthetic=synthetic)
        html_parts += ["<h3>What the embedding dimensions track</h3>", img_html(f, "Embedding correlation matrix"),
                       html_table(best, table_id="embedding-correlations")]
        md_parts += ["### What the embedding dimensions track", "![correlations](figures/embedding_correlations.png)", md_table(best)]
    else:
        missing.append("embedding correlation matrix (needs embedding features)")
    npz = run / "interpret_pca_rgb.npz"
    if npz.is_file():
        with np.load(npz) as z:
            rgb, dates, explained, site = z["rgb"], z["dates"], z["explained"], str(z["site"])
        f = plot_pca_strip(rgb, list(dates), figs / "pca_rgb.png", explained=list(explained), site=site, synthetic=synthetic)
        html_parts += ["<h3>Embedding PCA over the season</h3>", img_html(f, "PCA of embeddings as RGB")]
        md_parts += ["### Embedding PCA over the season", "![pca](figures/pca_rgb.png)"]
    else:
        missing.append("PCA RGB chip (needs an embedding cube)")
    notes = run / "interpret_notes.txt"
    if notes.is_file():
        txt = notes.read_text(encoding="utf-8").strip()
        if txt:
            html_parts.append(f"<p><small>{html_lib.escape(txt)}</small></p>")
            md_parts.append(f"*{txt}*")
    if missing:
        h, m = _missing("; ".join(missing))
        html_parts.append(h)
        md_parts.append(m)
    return "Interpretability", "\n".join(html_parts), "\n\n".join(md_parts)


@register_section
def data_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Days lost per site and reason, linear coefficients (mean over folds), run options and provenance."""
    run = Path(run_dir)
    parts_h, parts_m = [], []
    prov = read_provenance(run)
    if prov and prov.get("gpp_target"):
        target = f"Target: {prov['gpp_target']} (gC m-2 d-1)."
        parts_h.append(f"<p>{html_lib.escape(target)}</p>")
        parts_m.append(target)
    dropped = (prov or {}).get("dropped_columns")
    for fs, lacking in (dropped.items() if isinstance(dropped, dict) else []):
        note = (f"Feature set {fs}: column(s) left out because some sites lack them: "
                + "; ".join(f"{c} (missing at {', '.join(map(str, sites))})" for c, sites in lacking.items()) + ".")
        parts_h.append(f"<p>{html_lib.escape(note)}</p>")
        parts_m.append(note)
    skipped = read_table(run, "skipped_sites.csv")
    if skipped is not None and len(skipped):
        parts_h.append(f"<h3>Sites skipped ({len(skipped)})</h3>{html_table(skipped, table_id='skipped-sites')}")
        parts_m.append(f"### Sites skipped ({len(skipped)})\n\n{md_table(skipped)}")
    fp = read_table(run, "footprint.csv")
    if fp is not None and len(fp) and (fp["method"] == "ffp").any() | fp["fallback_reason"].notna().any():
        parts_h.append(f"<h3>Footprint weighting per site (80 % source-area extent, m)</h3>{html_table(fp, table_id='footprint')}")
        parts_m.append(f"### Footprint weighting per site (80 % source-area extent, m)\n\n{md_table(fp)}")
    cmp_fp = read_table(run, "footprint_vs_window.csv")
    if cmp_fp is not None and len(cmp_fp):
        parts_h.append(f"<h3>Skill with footprint vs Gaussian-window weights</h3>{html_table(cmp_fp, table_id='footprint-vs-window')}")
        parts_m.append(f"### Skill with footprint vs Gaussian-window weights\n\n{md_table(cmp_fp)}")
    dl = read_table(run, "days_lost.csv")
    if dl is not None:
        parts_h.append(f"<h3>Days lost</h3>{html_table(dl, table_id='days-lost')}")
        parts_m.append(f"### Days lost\n\n{md_table(dl)}")
    for p in sorted(run.glob("coefficients_*_summary.csv")):
        agg = pd.read_csv(p).iloc[:25]
        name = p.stem[len("coefficients_"):-len("_summary")]
        parts_h.append(f"<h3>Linear coefficients, {html_lib.escape(name)} (per sd of input; mean over folds)</h3>{html_table(agg)}")
        parts_m.append(f"### Linear coefficients, {name} (per sd; mean over folds)\n\n{md_table(agg)}")
    if prov:
        text = json.dumps({k: prov.get(k) for k in ("options", "seeds", "versions", "seconds", "inputs")}, indent=1, default=str)
        parts_h.append(f"<h3>Provenance</h3><pre>{html_lib.escape(text)}</pre>")
        parts_m.append(f"### Provenance\n\n```json\n{text}\n```")
    return "Data and provenance", "\n".join(parts_h), "\n\n".join(parts_m)
