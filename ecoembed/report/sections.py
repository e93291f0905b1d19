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
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ecoembed.escaping import escape_markdown
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
    plot_site_map,
    plot_site_skill,
    plot_skill_ranking,
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


def _ci(v: object, lo: object, hi: object, fmt: str = ".3f") -> str:
    """``v [lo, hi]`` (the interval left out when it is missing)."""
    def num(x: object) -> float:
        out = pd.to_numeric(pd.Series([x]), errors="coerce").iloc[0]
        return float(out) if pd.notna(out) else float("nan")
    a, b, c = num(v), num(lo), num(hi)
    if not np.isfinite(a):
        return "n/a"
    return f"{a:{fmt}} [{b:{fmt}}, {c:{fmt}}]" if np.isfinite(b) and np.isfinite(c) else f"{a:{fmt}}"


def _diff_row(diffs: pd.DataFrame | None, a: tuple[str, str], b: tuple[str, str]) -> pd.Series | None:
    if diffs is None or diffs.empty:
        return None
    hit = diffs[(diffs["features"].astype(str) == a[0]) & (diffs["head"].astype(str) == a[1])
                & (diffs["vs_features"].astype(str) == b[0]) & (diffs["vs_head"].astype(str) == b[1])]
    return hit.iloc[0] if len(hit) else None


def _verdict(row: pd.Series) -> str:
    lo, hi = float(row["d_r2_lo"]), float(row["d_r2_hi"])
    return "better" if lo > 0 else "worse" if hi < 0 else "not resolved (interval spans 0)"


def _reference(prov: dict[str, object], pooled: pd.DataFrame) -> tuple[str, str] | None:
    ref = prov.get("reference_model")
    if isinstance(ref, list) and len(ref) == 2:
        key = (str(ref[0]), str(ref[1]))
        if ((pooled["features"].astype(str) == key[0]) & (pooled["head"].astype(str) == key[1])).any():
            return key
    return None


def _is_embedding_model(features: str) -> bool:
    return any(c == "embeddings" or c.startswith("embeddings:") for c in features.split("+"))


def _days_summary(run: Path, pooled: pd.DataFrame, prov: dict[str, object]) -> str:
    """Sites used/skipped and days scored/dropped, in one sentence."""
    sites = prov.get("sites")
    skipped = prov.get("skipped_sites")
    n_listed = len(sites) if isinstance(sites, list) else None
    n_skipped = len(skipped) if isinstance(skipped, list) else 0
    oof = load_oof(run)
    n_used = int(oof["site_id"].nunique())
    n = pd.to_numeric(pooled["n"], errors="coerce")
    same_n = bool(n.nunique() == 1)
    text = (f"{n_used} sites scored" + (f" of {n_listed} listed" if n_listed is not None else "")
            + (f" ({n_skipped} skipped, see Data and provenance)" if n_skipped else "") + "; ")
    text += (f"every model scored on the same {int(n.iloc[0])} site-days (paired)" if same_n
             else f"models scored on {int(n.min())}-{int(n.max())} site-days (unpaired: the sets differ in days)")
    dl = read_table(run, "days_lost.csv")
    if dl is not None and len(dl):
        first = dl[dl["features"] == dl["features"].iloc[0]]
        reasons = [c for c in first.columns if c not in ("site_id", "features", "n_flux_days", "n_used", "n_scored")]
        lost = {c: int(pd.to_numeric(first[c], errors="coerce").fillna(0).sum()) for c in reasons}
        total = int(pd.to_numeric(first["n_flux_days"], errors="coerce").sum())
        parts = [f"{c.replace('_', ' ')} {v}" for c, v in lost.items() if v]
        text += f"; of {total} tower days, dropped: " + (", ".join(parts) if parts else "none")
    return text + "."


@register_section
def findings_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """The findings box and the ranking of every model against the LUE reference.

    The box: best model with its interval, its margin over the reference, sites and days used; the ranking reads
    ``skill_differences.csv``.
    """
    run = Path(run_dir)
    pooled = _pooled(run)
    prov = read_provenance(run)
    diffs = read_table(run, "skill_differences.csv")
    syn = is_synthetic(run)
    best = best_model(pooled)
    row = pooled[(pooled["features"].astype(str) == best[0]) & (pooled["head"].astype(str) == best[1])].iloc[0]
    level = f"{float(row['ci_level']):.0%}" if "ci_level" in row and pd.notna(row.get("ci_level")) else "95%"
    unit = str(row.get("ci_unit", "sites")) if pd.notna(row.get("ci_unit", np.nan)) else "sites"
    items = [f"Best model (pooled daily NSE): {model_label(*best)}: r2 {_ci(row['r2'], row.get('r2_lo'), row.get('r2_hi'))}, "
             f"RMSE {_ci(row['rmse'], row.get('rmse_lo'), row.get('rmse_hi'), '.2f')} gC m-2 d-1 "
             f"({level} interval, bootstrap over {unit}), n = {int(row['n'])} site-days."]
    ref = _reference(prov, pooled)
    if ref is None:
        items.append("No LUE reference baseline in this run (fit-gpp --baselines adds it where every site has an index, PAR and meteo).")
    elif ref == best:
        items.append(f"The best model is the LUE reference itself ({model_label(*ref)}).")
    else:
        d = _diff_row(diffs, best, ref)
        if d is not None:
            items.append(f"Margin over the LUE reference {model_label(*ref)}: Δr2 {_ci(d['d_r2'], d['d_r2_lo'], d['d_r2_hi'])}, "
                         f"ΔRMSE {_ci(d['d_rmse'], d['d_rmse_lo'], d['d_rmse_hi'], '.2f')} gC m-2 d-1: {_verdict(d)}.")
    emb = [m for m in zip(pooled["features"].astype(str), pooled["head"].astype(str), strict=True) if _is_embedding_model(m[0])]
    if emb and diffs is not None and len(diffs):
        hit = diffs[diffs["features"].astype(str).map(_is_embedding_model) & ~diffs["vs_features"].astype(str).map(_is_embedding_model)]
        hit = hit[~hit.apply(lambda r: ref is not None and (str(r["vs_features"]), str(r["vs_head"])) == ref, axis=1)] if len(hit) else hit
        if len(hit):
            h0 = hit.iloc[0]
            items.append(f"Best embedding model {model_label(h0['features'], h0['head'])} vs best model without embeddings "
                         f"{model_label(h0['vs_features'], h0['vs_head'])}: Δr2 {_ci(h0['d_r2'], h0['d_r2_lo'], h0['d_r2_hi'])}: "
                         f"{_verdict(h0)}.")
    items.append(_days_summary(run, pooled, prov))
    if syn:
        items.append("SYNTHETIC DATA: these findings describe generated towers, not real ecosystems.")
    box_h = ('<div class="findings" id="findings" style="border:2px solid #1b4f72;background:#eef5fb;padding:8px 14px;'
             'margin:10px 0"><strong>Findings</strong><ul>' + "".join(f"<li>{html_lib.escape(t)}</li>" for t in items)
             + "</ul></div>")
    box_m = "**Findings**\n\n" + "\n".join(f"- {escape_markdown(t)}" for t in items)
    # the ranking table: every model against the reference
    rank = pooled.assign(_r2=pd.to_numeric(pooled["r2"], errors="coerce")).sort_values("_r2", ascending=False)
    rows: list[dict[str, object]] = []
    for r in rank.to_dict("records"):
        key = (str(r["features"]), str(r["head"]))
        d = _diff_row(diffs, key, ref) if ref is not None and key != ref else None
        rows.append({"rank": len(rows) + 1, "model": model_label(*key), "n": int(r["n"]),
                     "r2 [95% CI]": _ci(r["r2"], r.get("r2_lo"), r.get("r2_hi")),
                     "RMSE (gC m-2 d-1)": _ci(r["rmse"], r.get("rmse_lo"), r.get("rmse_hi"), ".2f"),
                     "Δr2 vs reference [95% CI]": ("reference" if key == ref else
                                                    _ci(d["d_r2"], d["d_r2_lo"], d["d_r2_hi"]) if d is not None else ""),
                     "P(not better)": (f"{float(d['p_not_better_r2']):.3f}" if d is not None else ""),
                     "verdict": (_verdict(d) if d is not None else "")})
    table = pd.DataFrame(rows)
    cap = (f"Every model ranked by pooled r2, with its paired difference from the LUE reference "
           f"{model_label(*ref) if ref else '(none in this run)'}; intervals: {level} bootstrap over {unit}; "
           "P(not better): share of bootstrap replicates where the model does not beat the reference.")
    h = box_h + f"<h3>Ranking against the reference</h3><p>{html_lib.escape(cap)}</p>{html_table(table, table_id='ranking')}"
    m = box_m + f"\n\n### Ranking against the reference\n\n{escape_markdown(cap)}\n\n{md_table(table)}"
    if ref is not None and diffs is not None:
        vs = diffs[(diffs["vs_features"].astype(str) == ref[0]) & (diffs["vs_head"].astype(str) == ref[1])]
        if len(vs):
            fig_df = pd.DataFrame({"model": [model_label(f, hh) for f, hh in zip(vs["features"], vs["head"], strict=True)],
                                   "d_r2": vs["d_r2"], "d_r2_lo": vs["d_r2_lo"], "d_r2_hi": vs["d_r2_hi"]})
            png = plot_skill_ranking(fig_df, _figures_dir(run) / "ranking_vs_reference.png", reference=model_label(*ref),
                                     synthetic=syn)
            cap2 = (f"Δr2 (dimensionless) of each model minus {model_label(*ref)} on the same {int(row['n'])} site-days, "
                    f"{level} interval over {unit}")
            h += img_html(png, cap2)
            m += f"\n\n![ranking](figures/{png.name})\n\n*{escape_markdown(cap2)}*"
    site_map = _site_map(run, pooled, prov, best, syn)
    if site_map is not None:
        h += site_map[0]
        m += "\n\n" + site_map[1]
    return "Findings", h, m


def _site_map(run: Path, pooled: pd.DataFrame, prov: dict[str, object], best: tuple[str, str],
              syn: bool) -> tuple[str, str] | None:
    """Map of the towers coloured by the best model's held-out r2 (None without coordinates or per-site metrics)."""
    sites = prov.get("sites")
    per_site = read_table(run, "metrics_per_site.csv")
    if not isinstance(sites, list) or not sites or per_site is None:
        return None
    coords = pd.DataFrame(sites)
    if not {"site_id", "lat", "lon"} <= set(coords.columns):
        return None
    sel = per_site[(per_site["features"].astype(str) == best[0]) & (per_site["head"].astype(str) == best[1])]
    df = coords.merge(sel[["site_id", "r2", "n"]].astype({"site_id": str}), on="site_id", how="left")
    png = plot_site_map(df, _figures_dir(run) / "site_map.png", title=f"Held-out r2 per site, {model_label(*best)}",
                        synthetic=syn)
    cap = (f"Tower locations (lat/lon, degrees) coloured by the held-out r2 of {model_label(*best)} "
           f"({int(df['r2'].notna().sum())} sites, {int(pd.to_numeric(df['n'], errors='coerce').fillna(0).sum())} site-days); "
           "hollow: no score")
    return (f'<div id="site-map">{img_html(png, cap)}</div>', f"![site map](figures/{png.name})\n\n*{escape_markdown(cap)}*")


@register_section
def skill_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Pooled and per-site metric tables, hexbins and per-site skill bars."""
    run = Path(run_dir)
    oof = load_oof(run)
    syn = is_synthetic(run, oof)
    pooled = _pooled(run)
    per_site = read_table(run, "metrics_per_site.csv")
    figs = _figures_dir(run)
    cols = [c for c in ("features", "head", "n", "r2", "r2_lo", "r2_hi", "nse", "rmse", "mae", "bias", "kge")
            if c in pooled.columns]
    hex_png = plot_obs_vs_pred(oof, pooled, figs / "obs_vs_pred.png", synthetic=syn)
    n_text = f"n = {int(pooled['n'].max())} site-days per model" if len(pooled) else ""
    h = (f"<h3>Pooled (all held-out days; RMSE/MAE/bias in gC m-2 d-1; r2_lo/r2_hi: 95 % interval over sites)</h3>"
         f"{html_table(pooled[cols], table_id='pooled')}"
         f"{img_html(hex_png, f'Observed vs predicted daily GPP (gC m-2 d-1), 1:1 line, {n_text}')}")
    m = f"### Pooled (RMSE/MAE/bias in gC m-2 d-1)\n\n{md_table(pooled[cols])}\n\n![obs vs pred](figures/{hex_png.name})"
    if per_site is not None:
        long_cols = [c for c in ("features", "head", "n", "r2", "nse", "rmse", "mae", "bias", "kge") if c in per_site.columns]
        labels = [model_label(f, hh) for f, hh in zip(per_site["features"], per_site["head"], strict=True)]
        order = [model_label(f, hh) for f, hh in zip(pooled["features"], pooled["head"], strict=True)]
        wide = (per_site.assign(model=labels).pivot_table(index="site_id", columns="model", values="r2", aggfunc="first")
                .reindex(columns=[o for o in order if o in set(labels)]))
        n_site = per_site.groupby("site_id")["n"].max()
        pivot = wide.reset_index().assign(n=lambda d: d["site_id"].map(n_site).astype(int))
        pivot = pivot[["site_id", "n", *wide.columns]]
        bars_png = plot_site_skill(per_site, figs / "site_skill_r2.png", synthetic=syn)
        h += (f"<h3>Per site: held-out r2 (sites x models; n = site-days of the site)</h3>"
              f"{html_table(pivot, table_id='per-site-pivot')}"
              f"<details><summary>all per-site metrics ({len(per_site)} rows)</summary>"
              f"{html_table(per_site[['site_id', *long_cols]], table_id='per-site')}</details>"
              f"{img_html(bars_png, f'Held-out r2 (dimensionless) per site and model, {len(wide)} sites')}")
        m += (f"\n\n### Per site: held-out r2 (sites x models)\n\n{md_table(pivot)}"
              f"\n\n![per-site skill](figures/{bars_png.name})")
    return "Cross-validated skill", h, m


@register_section
def embedding_products_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Embedding products of one run compared on the same days (``embeddings:NAME`` vs ``embeddings``).

    Empty (left out of the report) when the run has one product; a second comes from a sites.csv column
    ``features_path_NAME`` and the feature set ``embeddings:NAME``.
    """
    run = Path(run_dir)
    pooled = _pooled(run)
    diffs = read_table(run, "skill_differences.csv")
    title = "Embedding products compared (e.g. fused S1+S2 vs S2-only)"
    variants = pooled[pooled["features"].astype(str).str.contains("embeddings:", regex=False)]
    if variants.empty or diffs is None:
        return title, "", ""  # one product: nothing to compare, the report leaves the section out
    sel = diffs[diffs["features"].astype(str).str.contains("embeddings:", regex=False)
                & ~diffs["vs_features"].astype(str).str.contains("embeddings:", regex=False)
                & diffs["vs_features"].astype(str).str.contains("embeddings", regex=False)]
    rows = [{"model": model_label(r["features"], r["head"]), "vs": model_label(r["vs_features"], r["vs_head"]),
             "n": int(r["n_a"]), "paired": bool(r["paired"]), "Δr2 [95% CI]": _ci(r["d_r2"], r["d_r2_lo"], r["d_r2_hi"]),
             "ΔRMSE gC m-2 d-1 [95% CI]": _ci(r["d_rmse"], r["d_rmse_lo"], r["d_rmse_hi"], ".2f"),
             "verdict": _verdict(pd.Series(r))} for r in sel.to_dict("records")]
    table = pd.DataFrame(rows)
    cols = [c for c in ("features", "head", "n", "r2", "r2_lo", "r2_hi", "rmse") if c in pooled.columns]
    both = pooled[pooled["features"].astype(str).map(lambda f: "embeddings" in f)][cols]
    text = ("Each embedding product (sites.csv column features_path_NAME, feature set embeddings:NAME) against the "
            "default product (features_path) with the same head, on the same site-days; Δ = variant minus default.")
    return (title, f"<p>{html_lib.escape(text)}</p>{html_table(table, table_id='embedding-products')}"
                   f"{html_table(both, table_id='embedding-products-pooled')}",
            f"{text}\n\n{md_table(table)}\n\n{md_table(both)}")


@register_section
def seasonal_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Observed vs predicted daily GPP per site with the mean seasonal cycle band (best model by pooled NSE)."""
    run = Path(run_dir)
    oof = load_oof(run)
    features, head = best_model(_pooled(run))
    png = plot_seasonal(oof, _figures_dir(run) / "seasonal_sites.png", features=features, head=head,
                        per_site=read_table(run, "metrics_per_site.csv"), synthetic=is_synthetic(run, oof))
    text = "Best model by pooled daily NSE: {}. `ecoembed plot-seasonal --run DIR --site ID` draws any site/model."
    caption = "Daily and mean seasonal GPP (gC m-2 d-1), observed vs predicted, best model"
    label = model_label(features, head)
    return ("Seasonal GPP per site", f"<p>{html_lib.escape(text.format(label))}</p>" + img_html(png, caption),
            f"{text.format(escape_markdown(label))}\n\n![seasonal](figures/{png.name})")


@register_section
def models_and_maps_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Kept models (``models/index.csv``), their held-out-site interval coverage, and GPP maps made with them (``maps.json``)."""
    run = Path(run_dir)
    index = read_table(run, "models/index.csv")
    if index is None:
        return "Beyond the towers: kept models and GPP maps", "", ""
    cov = read_table(run, "models/coverage.csv")
    title = "Beyond the towers: kept models and GPP maps"
    text = ("Each requested model was refitted on all sites and kept in models/ (JSON / xgboost JSON / safetensors, no "
            "pickle). `ecoembed predict-gpp --run RUN --cube EMBEDDINGS.zarr --out MAP` applies one to every 10 m pixel of "
            "an embedding cube (features averaged over the tower window), with split-conformal intervals calibrated on "
            "the out-of-fold residuals. Coverage below: share of held-out-site days inside intervals calibrated on the "
            "other sites only.")
    parts_h = [f"<p>{html_lib.escape(text)}</p>"]
    parts_m = [text]
    if cov is not None and not cov.empty:
        piv = cov.pivot_table(index=["features", "head"], columns="level", values="coverage").reset_index()
        piv.columns = [c if isinstance(c, str) else f"coverage at {100 * float(c):g} %" for c in piv.columns]
        parts_h.append(html_table(piv, table_id="kept-models-coverage"))
        parts_m.append(md_table(piv))
    maps_json = run / "maps.json"
    if maps_json.is_file():
        for entry in json.loads(maps_json.read_text(encoding="utf-8")):
            for fig, caption in entry.get("figures", {}).items():
                png = run / "figures" / fig
                if Path(fig).name == fig and png.is_file():  # a plain name: maps.json cannot embed files from elsewhere
                    parts_h.append(img_html(png, caption))
                    parts_m.append(f"![{escape_markdown(caption)}](<figures/{fig}>)")
            note = f"Map folder: {entry.get('folder', '')} (its index.html has the monthly panels, envelope map and series)."
            parts_h.append(f"<p>{html_lib.escape(note)}</p>")
            parts_m.append(escape_markdown(note))
    return title, "".join(parts_h), "\n\n".join(parts_m)


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
    text = ("Days far from any valid observation rest on interpolation (bands, indices) or on the encoder's "
            "temporal context (embeddings); `fit-gpp --max-days-to-obs N` drops them. Best model: {}.")
    label = model_label(features, head)
    return (title, f"<p>{html_lib.escape(text.format(label))}</p>{html_table(best[cols], table_id='support-best')}"
                   f"<details><summary>all models</summary>{html_table(table[cols], table_id='support-all')}</details>",
            f"{text.format(escape_markdown(label))}\n\n{md_table(best[cols])}")


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
        f"### Per IGBP class, best model ({escape_markdown(model_label(*best))}), NSE", md_table(wide),
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
    rule = read_provenance(run).get("phenology_rule")
    cover, gap = (rule.get("min_coverage"), rule.get("max_gap_days")) if isinstance(rule, dict) else (None, None)
    rule_text = (f"valid days >= {float(cover):.0%} of the year, no gap > {gap} d" if cover is not None
                 else "rule not recorded by this run")
    intro = (f"Season start (SOS) and end (EOS) per site-year ({rule_text}) from observed and from out-of-fold predicted GPP, "
             "15-day smoothing: threshold at 50 % of the annual amplitude, and the extremes of the first derivative. "
             "Error = predicted - observed (days). Lag: cross-correlation peak within ±30 days (> 0: prediction late).")
    parts_h, parts_m = [f"<p>{html_lib.escape(intro)}</p>"], [escape_markdown(intro)]
    if pheno is None or summary is None:
        note = f"No site-year meets the coverage rule ({rule_text}): SOS/EOS not computed."
        parts_h.append(f"<p><em>{html_lib.escape(note)}</em></p>")
        parts_m.append(f"*{escape_markdown(note)}*")
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
            md_parts.append(f"*{escape_markdown(txt)}*")
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
        parts_m.append(escape_markdown(target))
    dropped = (prov or {}).get("dropped_columns")
    for fs, lacking in (dropped.items() if isinstance(dropped, dict) else []):
        note = (f"Feature set {fs}: column(s) left out because some sites lack them: "
                + "; ".join(f"{c} (missing at {', '.join(map(str, sites))})" for c, sites in lacking.items()) + ".")
        parts_h.append(f"<p>{html_lib.escape(note)}</p>")
        parts_m.append(escape_markdown(note))
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
    base = read_table(run, "baselines.csv")
    if base is not None and len(base):
        parts_h.append(f"<h3>Baselines (light-use efficiency)</h3>{html_table(base, table_id='baselines')}")
        parts_m.append(f"### Baselines (light-use efficiency)\n\n{md_table(base)}")
    pdays = read_table(run, "paired_days.csv")
    if pdays is not None and len(pdays):
        cap = ("Site-days each feature set could use, the days all sets share (the paired evaluation scores only those), "
               "and which sets limited the pairing")
        parts_h.append(f"<h3>Paired days</h3><p>{html_lib.escape(cap)}</p>{html_table(pdays, table_id='paired-days')}")
        parts_m.append(f"### Paired days\n\n{cap}\n\n{md_table(pdays)}")
    dl = read_table(run, "days_lost.csv")
    if dl is not None:
        parts_h.append(f"<h3>Days lost</h3>{html_table(dl, table_id='days-lost')}")
        parts_m.append(f"### Days lost\n\n{md_table(dl)}")
    for p in sorted(run.glob("coefficients_*_summary.csv")):
        agg = pd.read_csv(p).iloc[:25]
        name = p.stem[len("coefficients_"):-len("_summary")]
        parts_h.append(f"<h3>Linear coefficients, {html_lib.escape(name)} (per sd of input; mean over folds)</h3>{html_table(agg)}")
        parts_m.append(f"### Linear coefficients, {escape_markdown(name)} (per sd; mean over folds)\n\n{md_table(agg)}")
    if prov:
        text = json.dumps({k: prov.get(k) for k in ("options", "seeds", "versions", "seconds", "inputs")}, indent=1, default=str)
        parts_h.append(f"<h3>Provenance</h3><pre>{html_lib.escape(text)}</pre>")
        fence = "`" * max(3, 1 + max((len(run_) for run_ in re.findall(r"`+", text)), default=0))  # no value closes it
        parts_m.append(f"### Provenance\n\n{fence}json\n{text}\n{fence}")
    return "Data and provenance", "\n".join(parts_h), "\n\n".join(parts_m)
