"""Self-contained HTML (figures embedded as base64) and Markdown report of a fit-gpp run folder.

The report is rebuilt from saved files only (``predictions.*``,
``metrics_*.csv``, the analysis tables, ``provenance.json``), so
``ecoembed cv-report --run DIR`` redraws it without refitting. Its content is
the section registry of :mod:`ecoembed.report.sections`; a section that
fails is reported as a short note and does not stop the report.
"""

from __future__ import annotations

import html as html_lib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ecoembed.errors import InputError
from ecoembed.escaping import escape_markdown
from ecoembed.io_utils import atomic_write_text
from ecoembed.report.common import is_synthetic, load_oof, read_provenance
from ecoembed.report.sections import SECTIONS, Section

BANNER_HTML = ('<div class="banner" style="background:#b00020;color:#fff;padding:10px;font-weight:bold;font-size:1.3em">'
               "SYNTHETIC DATA: inputs were generated, results say nothing about real ecosystems</div>")
BANNER_MD = "> **SYNTHETIC DATA**: inputs were generated, results say nothing about real ecosystems"
CSS = ("body{font-family:sans-serif;max-width:1200px;margin:auto;color:#111;background:#fff}"
       "table.metrics{border-collapse:collapse;font-size:12px}table.metrics td,table.metrics th{border:1px solid #ccc;padding:2px 6px}")


SectionRenderer = Callable[[Sequence[Section], Path], list[tuple[str, str, str]]]
"""Renders sections of a run folder, in order, as :func:`render_section` does (e.g. on worker processes)."""


def render_section(fn: Section, run: Path) -> tuple[str, str, str]:
    """``fn(run)``; a section that fails becomes a short note (title, html, markdown), not a failed report."""
    try:
        return fn(run)
    except Exception as exc:
        t = getattr(fn, "__name__", "section")
        return t, f"<p><em>section skipped: {html_lib.escape(str(exc))}</em></p>", f"*section skipped: {escape_markdown(exc)}*"


def build_report(run_dir: str | os.PathLike[str], *, render: SectionRenderer | None = None) -> tuple[Path, Path]:
    """(Re)write ``index.html`` and ``report.md`` of a fit-gpp run folder from its saved files.

    ``render`` draws the sections (default: one after the other here); each section writes
    its own figures, so they can be drawn side by side.

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
    prov = read_provenance(run)
    opts = prov.get("options", {})
    opts = opts if isinstance(opts, dict) else {}
    seeds = prov.get("seeds", {})
    seed = seeds.get("seed", "?") if isinstance(seeds, dict) else "?"
    title = "ecoembed fit-gpp report" + (" (SYNTHETIC DATA)" if syn else "")
    sub = (f"CV: {opts.get('cv', '?')}, window {opts.get('window_px', '?')} px, seed {seed}, "
           f"{oof['site_id'].nunique()} sites, GPP in gC m-2 d-1")
    body_h, body_m = [], []
    rendered = render(list(SECTIONS), run) if render is not None else [render_section(fn, run) for fn in SECTIONS]
    for t, h, m in rendered:
        if not h and not m:
            continue  # an optional section with nothing for this run (e.g. a single embedding product) is left out
        body_h.append(f"<section><h2>{html_lib.escape(t)}</h2>{h}</section>")
        body_m.append(f"## {t}\n\n{m}")
    banner_h = BANNER_HTML if syn else ""
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html_lib.escape(title)}</title><style>{CSS}</style></head>"
            f"<body>{banner_h}<h1>{html_lib.escape(title)}</h1><p>{html_lib.escape(sub)}</p>{''.join(body_h)}{banner_h}</body></html>")
    md = "\n\n".join([*([BANNER_MD] if syn else []), f"# {title}", escape_markdown(sub), *body_m]) + "\n"
    atomic_write_text(run / "index.html", page)
    atomic_write_text(run / "report.md", md)
    return run / "index.html", run / "report.md"
