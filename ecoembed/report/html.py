"""Self-contained HTML (figures embedded as base64) and Markdown report of a fit-gpp run folder.

The report is rebuilt from saved files only (``predictions.*``,
``metrics_*.csv``, ``days_lost.csv``, ``coefficients_*.csv``,
``provenance.json``), so ``ecoembed cv-report --run DIR`` redraws it without
refitting. Content comes from a section registry: each section is a callable
``(run_dir) -> (title, html, md)``; :func:`register_section` adds one (the
skill-decomposition, temporal and interpretability sections of
:mod:`ecoembed.report.temporal` / :mod:`ecoembed.report.interpret_figs` are
added automatically when present). A section that raises is reported as a
short note and does not stop the report.
"""

from __future__ import annotations

import html as html_lib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ecoembed.errors import InputError
from ecoembed.io_utils import atomic_write_text
from ecoembed.report.temporal import html_table, img_html, is_synthetic, load_oof, md_table

Section = Callable[[str | os.PathLike[str]], tuple[str, str, str]]
SECTIONS: list[Section] = []
"""Registered sections, in report order (core sections first)."""

BANNER_HTML = ('<div class="banner" style="background:#b00020;color:#fff;padding:10px;font-weight:bold;font-size:1.3em">'
               "SYNTHETIC DATA: inputs were generated, results say nothing about real ecosystems</div>")
BANNER_MD = "> **SYNTHETIC DATA**: inputs were generated, results say nothing about real ecosystems"


def register_section(fn: Section, *, position: int | None = None) -> Section:
    """Add a section callable (once) to :data:`SECTIONS`; usable as a decorator."""
    if fn not in SECTIONS:
        SECTIONS.insert(len(SECTIONS) if position is None else position, fn)
    return fn


def _provenance(run: Path) -> dict:
    p = run / "provenance.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}


def _figures_dir(run: Path) -> Path:
    d = run / "figures"
    d.mkdir(exist_ok=True)
    return d


@register_section
def skill_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Pooled and per-site metric tables, hexbins and per-site skill bars."""
    from ecoembed.report.figures import plot_obs_vs_pred, plot_site_skill

    run = Path(run_dir)
    oof = load_oof(run)
    syn = is_synthetic(run, oof)
    pooled = pd.read_csv(run / "metrics_pooled.csv")
    per_site = pd.read_csv(run / "metrics_per_site.csv")
    figs = _figures_dir(run)
    hex_png = plot_obs_vs_pred(oof, figs / "obs_vs_pred.png", synthetic=syn)
    bars_png = plot_site_skill(per_site, figs / "site_skill_r2.png", synthetic=syn)
    cols = ["features", "head", "n", "r2", "nse", "rmse", "mae", "bias", "kge"]
    h = (f"<h3>Pooled (all held-out days; RMSE/MAE/bias in gC m-2 d-1)</h3>{html_table(pooled[cols], table_id='pooled')}"
         f"{img_html(hex_png, 'Observed vs predicted daily GPP (gC m-2 d-1), 1:1 line')}"
         f"<h3>Per site</h3>{html_table(per_site[['site_id', *cols]], table_id='per-site')}"
         f"{img_html(bars_png, 'Per-site r2 of each model')}")
    m = (f"### Pooled (RMSE/MAE/bias in gC m-2 d-1)\n\n{md_table(pooled[cols])}\n\n![obs vs pred](figures/{hex_png.name})\n\n"
         f"### Per site\n\n{md_table(per_site[['site_id', *cols]])}\n\n![per-site skill](figures/{bars_png.name})")
    return "Cross-validated skill", h, m


@register_section
def seasonal_gpp_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Observed vs predicted daily GPP per site with the mean seasonal cycle band (best model)."""
    from ecoembed.report.figures import plot_seasonal

    run = Path(run_dir)
    oof = load_oof(run)
    png = plot_seasonal(oof, _figures_dir(run) / "seasonal_sites.png", synthetic=is_synthetic(run, oof))
    return ("Seasonal GPP per site", img_html(png, "Daily and mean seasonal GPP (gC m-2 d-1), observed vs predicted, best model"),
            f"![seasonal](figures/{png.name})")


@register_section
def data_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Days lost per site and reason, linear coefficients (mean over folds), run options and provenance."""
    run = Path(run_dir)
    parts_h, parts_m = [], []
    if (run / "days_lost.csv").is_file():
        dl = pd.read_csv(run / "days_lost.csv")
        parts_h.append(f"<h3>Days lost</h3>{html_table(dl, table_id='days-lost')}")
        parts_m.append(f"### Days lost\n\n{md_table(dl)}")
    for p in sorted(run.glob("coefficients_*.csv")):
        c = pd.read_csv(p)
        agg = c.groupby("term", sort=False).agg(coef=("coef", "mean"), coef_sd=("coef", "std"), p_median=("p", "median")).reset_index()
        agg = agg.iloc[:25]
        parts_h.append(f"<h3>Linear coefficients, {html_lib.escape(p.stem[13:])} (per sd of input; mean over folds)</h3>"
                       f"{html_table(agg)}")
        parts_m.append(f"### Linear coefficients, {p.stem[13:]} (per sd; mean over folds)\n\n{md_table(agg)}")
    prov = _provenance(run)
    if prov:
        text = json.dumps({k: prov.get(k) for k in ("options", "seeds", "versions", "seconds", "inputs")}, indent=1, default=str)
        parts_h.append(f"<h3>Provenance</h3><pre>{html_lib.escape(text)}</pre>")
        parts_m.append(f"### Provenance\n\n```json\n{text}\n```")
    return "Data and provenance", "\n".join(parts_h), "\n\n".join(parts_m)


def _all_sections() -> list[Section]:
    sections = list(SECTIONS)
    try:
        from ecoembed.report.interpret_figs import report_sections

        for fn in report_sections():
            if fn not in sections:
                sections.insert(len(sections) - 1, fn)
    except ImportError:  # pragma: no cover - issue-6 sections absent
        pass
    return sections


def build_report(run_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(Re)write ``index.html`` and ``report.md`` of a fit-gpp run folder from its saved files.

    Returns:
        ``(index_html, report_md)``.

    Raises:
        InputError: the folder holds no fit-gpp predictions/metrics.
    """
    run = Path(run_dir)
    if not run.is_dir() or not (run / "metrics_pooled.csv").is_file():
        raise InputError(f"{run} is not a fit-gpp run folder (no metrics_pooled.csv); run `ecoembed fit-gpp` first")
    oof = load_oof(run)
    syn = is_synthetic(run, oof)
    prov = _provenance(run)
    opts = prov.get("options", {})
    title = "ecoembed fit-gpp report" + (" (SYNTHETIC DATA)" if syn else "")
    sub = (f"CV: {opts.get('cv', '?')}, window {opts.get('window_px', '?')} px, seed {prov.get('seeds', {}).get('seed', '?')}, "
           f"{oof['site_id'].nunique()} sites, GPP in gC m-2 d-1")
    body_h, body_m = [], []
    for fn in _all_sections():
        try:
            t, h, m = fn(run)
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
            t, h, m = getattr(fn, "__name__", "section"), f"<p><em>section skipped: {html_lib.escape(str(exc))}</em></p>", f"*section skipped: {exc}*"
        body_h.append(f"<section><h2>{html_lib.escape(t)}</h2>{h}</section>")
        body_m.append(f"## {t}\n\n{m}")
    banner_h = BANNER_HTML if syn else ""
    css = ("body{font-family:sans-serif;max-width:1200px;margin:auto;color:#111;background:#fff}"
           "table.metrics{border-collapse:collapse;font-size:12px}table.metrics td,table.metrics th{border:1px solid #ccc;padding:2px 6px}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html_lib.escape(title)}</title><style>{css}</style></head>"
            f"<body>{banner_h}<h1>{html_lib.escape(title)}</h1><p>{html_lib.escape(sub)}</p>{''.join(body_h)}{banner_h}</body></html>")
    md = "\n\n".join([*([BANNER_MD] if syn else []), f"# {title}", sub, *body_m]) + "\n"
    atomic_write_text(run / "index.html", page)
    atomic_write_text(run / "report.md", md)
    return run / "index.html", run / "report.md"
