"""Shared helpers of the report: reading a run folder, saving figures, HTML/Markdown tables.

The report only reads what ``fit-gpp`` wrote into its run folder and renders
it; every number it shows comes from those files.
"""

from __future__ import annotations

import base64
import html as html_lib
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the report is written to files, never shown on a screen
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ecoembed.errors import InputError
from ecoembed.escaping import escape_markdown
from ecoembed.io_utils import atomic_path

GPP_UNIT = "gC m$^{-2}$ d$^{-1}$"
"""GPP unit in matplotlib mathtext (axes of every GPP figure)."""
OOF_CANDIDATES: tuple[str, ...] = (
    "oof_predictions.parquet", "oof_predictions.csv", "predictions_oof.parquet", "predictions_oof.csv",
    "predictions.parquet", "predictions.csv",
)
"""File names of the out-of-fold predictions in a run folder, tried in order."""
ID_COLUMNS: tuple[str, ...] = ("site_id",)
"""Columns read back as text exactly as written (a site ``NA`` or ``001`` stays itself)."""
NA_WORDS: tuple[str, ...] = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                             "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
"""What pandas reads as missing by default: still missing in every other column."""


def find_oof(run_dir: str | os.PathLike[str]) -> Path:
    """Path of a run's out-of-fold predictions table.

    Raises:
        InputError: none of :data:`OOF_CANDIDATES` exists in ``run_dir``.
    """
    run = Path(run_dir)
    for name in OOF_CANDIDATES:
        if (run / name).is_file():
            return run / name
    raise InputError(f"{run} holds no out-of-fold predictions ({', '.join(OOF_CANDIDATES[:2])}); "
                     "point --run at a folder written by `ecoembed fit-gpp`")


def load_oof(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a run's out-of-fold predictions (CSV or Parquet) with ``date`` parsed and ids as strings."""
    path = find_oof(run_dir)
    df = pd.read_parquet(path) if path.suffix == ".parquet" else read_csv_ids_as_text(path)
    if "date" in df.columns:
        df["date"] = pd.to_datetime(df["date"])
    return df


def read_csv_ids_as_text(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A CSV the run wrote, with :data:`ID_COLUMNS` as text exactly as written and the usual NaN everywhere else."""
    names = list(pd.read_csv(path, nrows=0).columns)
    ids = [c for c in names if c in ID_COLUMNS]
    return pd.read_csv(path, dtype=dict.fromkeys(ids, str), keep_default_na=False,
                       na_values={c: list(NA_WORDS) for c in names if c not in ids})


def read_table(run_dir: str | os.PathLike[str], name: str) -> pd.DataFrame | None:
    """A CSV table of the run folder (``name`` with suffix), or None when absent or empty."""
    p = Path(run_dir) / name
    if not p.is_file():
        return None
    try:
        df = read_csv_ids_as_text(p)
    except pd.errors.EmptyDataError:  # an analysis with no rows (e.g. no site-year long enough for SOS/EOS)
        return None
    return None if df.empty else df


def read_provenance(run_dir: str | os.PathLike[str]) -> dict[str, object]:
    """The run's ``provenance.json`` (empty when absent)."""
    p = Path(run_dir) / "provenance.json"
    if not p.is_file():
        return {}
    data = json.loads(p.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def is_synthetic(run_dir: str | os.PathLike[str], oof: pd.DataFrame | None = None) -> bool:
    """True when the run says any input was synthetic (an OOF ``synthetic`` column or provenance flags)."""
    if oof is not None and "synthetic" in oof.columns and bool(pd.Series(oof["synthetic"]).astype(bool).any()):
        return True
    try:
        return _any_true_key(read_provenance(run_dir), "synthetic")
    except (OSError, ValueError):
        return False


def _any_true_key(obj: object, key: str) -> bool:
    if isinstance(obj, dict):
        return any((k == key and bool(v) is True) or _any_true_key(v, key) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_any_true_key(v, key) for v in obj)
    return False


def save_figure(fig: Figure, path: str | os.PathLike[str], *, synthetic: bool = False) -> Path:
    """Save ``fig`` as PNG atomically (with a SYNTHETIC DATA stamp when asked) and close it."""
    if synthetic:
        fig.text(0.995, 0.005, "SYNTHETIC DATA", ha="right", va="bottom", fontsize=9, color="#b00020", weight="bold")
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return out


def img_html(path: str | os.PathLike[str], alt: str) -> str:
    """``<figure>`` with the PNG embedded as base64 (self-contained HTML) and ``alt`` as its caption."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html_lib.escape(alt)}" src="data:image/png;base64,{data}" style="max-width:100%">'
            f"<figcaption>{html_lib.escape(alt)}</figcaption></figure>")


def _fmt(v: object) -> str:
    if isinstance(v, float | np.floating):
        return "" if not np.isfinite(v) else f"{v:.3f}"
    return str(v)


def _md_cell(v: object) -> str:
    """A number as :func:`_fmt` writes it; anything else as Markdown-escaped text (:func:`escape_markdown`)."""
    return _fmt(v) if isinstance(v, int | float | np.number | np.bool_) else escape_markdown(_fmt(v), line_start=False)


def md_table(df: pd.DataFrame) -> str:
    """Markdown table (floats with 3 decimals, NaN as empty; text escaped so a cell renders as itself)."""
    head = "| " + " | ".join(escape_markdown(c, line_start=False) for c in df.columns) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(_md_cell(v) for v in rec) + " |" for rec in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def html_table(df: pd.DataFrame, *, table_id: str = "") -> str:
    """HTML table (floats with 3 decimals, NaN as empty), with an id tests and readers can find."""
    ident = f' id="{html_lib.escape(table_id)}"' if table_id else ""
    head = "".join(f"<th>{html_lib.escape(str(c))}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html_lib.escape(_fmt(v))}</td>" for v in rec) + "</tr>"
                   for rec in df.itertuples(index=False))
    return f'<table class="metrics"{ident}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def model_label(features: object, head: object) -> str:
    """``features / head`` (or the one that is set)."""
    parts = [str(x) for x in (features, head) if str(x) not in ("-", "nan", "None")]
    return " / ".join(parts) or "model"


def best_model(pooled: pd.DataFrame) -> tuple[str, str]:
    """``(features, head)`` with the highest pooled daily NSE in a ``metrics_pooled`` table.

    Raises:
        InputError: the table is empty.
    """
    if pooled.empty:
        raise InputError("the pooled metrics table is empty: no model to choose")
    score = pd.to_numeric(pooled["nse"], errors="coerce").fillna(-np.inf)
    row = pooled.iloc[int(np.argmax(score.to_numpy()))]
    return str(row.get("features", "-")), str(row.get("head", "-"))


def top_models(table: pd.DataFrame, score: pd.Series, k: int) -> list[tuple[str, str]]:
    """The ``k`` best distinct ``(features, head)`` of ``table`` by ``score`` (aligned with its rows), best first."""
    order = table.assign(_s=score.to_numpy()).sort_values("_s", ascending=False)
    return [(str(f), str(h)) for f, h in order[["features", "head"]].drop_duplicates().head(k).to_numpy()]
