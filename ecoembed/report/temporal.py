"""Figures and report sections for skill decomposition and temporal fidelity.

Plots only: every number comes from :mod:`ecoembed.gpp.decomposition` and
:mod:`ecoembed.gpp.phenology`. GPP axes are in gC m-2 d-1. Each section
function takes a fit-gpp run folder and returns ``(title, html, md)``; its
figures are written under ``<run>/figures/`` and embedded in the HTML as
base64 PNG so ``index.html`` stays self-contained; its tables are written as
CSV beside the other metrics.
"""

from __future__ import annotations

import base64
import html as html_lib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ecoembed.errors import InputError  # noqa: E402
from ecoembed.gpp.decomposition import COMPONENTS, _clean, daily_vs_8day, decompose_skill, skill_scores  # noqa: E402
from ecoembed.gpp.phenology import lag_analysis, phenology_summary, phenology_table  # noqa: E402
from ecoembed.io_utils import atomic_path, atomic_write_text  # noqa: E402

GPP_UNIT = "gC m$^{-2}$ d$^{-1}$"
COMPONENT_LABELS = {"daily": "daily", "across_site": "across\nsite", "seasonal_cycle": "seasonal\ncycle",
                    "anomalies": "anomalies", "interannual": "inter-\nannual"}
OOF_CANDIDATES: tuple[str, ...] = (
    "oof_predictions.parquet", "oof_predictions.csv", "predictions_oof.parquet", "predictions_oof.csv",
    "predictions.parquet", "predictions.csv",
)
"""File names of the out-of-fold predictions in a run folder, tried in order."""
MAX_MODELS_IN_BARS = 8


# ----------------------------------------------------------------------------------------- helpers

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
    """Read a run's out-of-fold predictions (CSV or Parquet) with ``date`` parsed."""
    path = find_oof(run_dir)
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if "date" in df.columns:
        df["date"] = pd.to_datetime(df["date"])
    return df


def is_synthetic(run_dir: str | os.PathLike[str], oof: pd.DataFrame | None = None) -> bool:
    """True when the run says any input was synthetic (an OOF ``synthetic`` column or provenance flags)."""
    if oof is not None and "synthetic" in oof.columns and bool(pd.Series(oof["synthetic"]).astype(bool).any()):
        return True
    for name in ("provenance.json", "config.json", "run.json"):
        p = Path(run_dir) / name
        if p.is_file():
            try:
                text = p.read_text(encoding="utf-8")
                data = json.loads(text)
            except (OSError, ValueError):
                continue
            if _any_true_key(data, "synthetic"):
                return True
    return False


def _any_true_key(obj: object, key: str) -> bool:
    if isinstance(obj, dict):
        return any((k == key and bool(v) is True) or _any_true_key(v, key) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_any_true_key(v, key) for v in obj)
    return False


def save_figure(fig: plt.Figure, path: str | os.PathLike[str], *, synthetic: bool = False) -> Path:
    """Save ``fig`` as PNG atomically (with a SYNTHETIC DATA stamp when asked) and close it."""
    if synthetic:
        fig.text(0.995, 0.005, "SYNTHETIC DATA", ha="right", va="bottom", fontsize=9, color="#b00020", weight="bold")
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return out


def img_html(path: str | os.PathLike[str], alt: str) -> str:
    """``<img>`` tag with the PNG embedded as base64 (self-contained HTML)."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<figure><img alt="{html_lib.escape(alt)}" src="data:image/png;base64,{data}" style="max-width:100%"><figcaption>{html_lib.escape(alt)}</figcaption></figure>'


def _fmt(v: object) -> str:
    if isinstance(v, float | np.floating):
        return "" if not np.isfinite(v) else f"{v:.3f}"
    return str(v)


def md_table(df: pd.DataFrame) -> str:
    """Markdown table (floats with 3 decimals, NaN as empty)."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(_fmt(v) for v in rec) + " |" for rec in df.itertuples(index=False)]
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


def best_model(oof: pd.DataFrame) -> tuple[object, object]:
    """``(features, head)`` with the highest pooled daily NSE."""
    df = _clean(oof)
    scores = {k: skill_scores(g["observed"], g["predicted"])["nse"] for k, g in df.groupby(["features", "head"])}
    finite = {k: v for k, v in scores.items() if np.isfinite(v)}
    pool = finite or scores
    return max(pool, key=lambda k: pool[k] if np.isfinite(pool[k]) else -np.inf)


def _top_models(table: pd.DataFrame, score: pd.Series, k: int) -> list[tuple[object, object]]:
    order = table.assign(_s=score.to_numpy()).sort_values("_s", ascending=False)
    return [tuple(x) for x in order[["features", "head"]].drop_duplicates().head(k).to_numpy()]


# ----------------------------------------------------------------------------------------- figures

def plot_decomposition(decomp: pd.DataFrame, path: str | os.PathLike[str], *, group: str = "all",
                       max_models: int = MAX_MODELS_IN_BARS, synthetic: bool = False) -> Path:
    """Bars of r2 and NSE per decomposition component, one bar per model (best ``max_models`` by daily NSE)."""
    d = decomp[decomp["group"] == group]
    if d.empty:
        raise InputError(f"decomposition table has no rows for group {group!r}")
    daily = d[d["component"] == "daily"]
    models = _top_models(daily, daily["nse"].fillna(-np.inf), max_models)
    comps = [c for c in COMPONENTS if c in set(d["component"])]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(comps))
    cmap = plt.get_cmap("tab10")
    for ax, metric, label in zip(axes, ("r2", "nse", "rmse"), ("r² (squared Pearson)", "NSE", "RMSE"), strict=True):
        for i, (feat, head) in enumerate(models):
            sub = d[(d["features"] == feat) & (d["head"] == head)].set_index("component").reindex(comps)
            vals = sub[metric].to_numpy(dtype=float)
            if metric == "rmse":  # the IAV is annual (gC m-2 yr-1): show it per day to share the axis
                vals = np.where(np.array(comps) == "interannual", vals / 365.25, vals)
            ax.bar(x + (i - (len(models) - 1) / 2) * width, np.nan_to_num(vals, nan=0.0), width,
                   label=model_label(feat, head), color=cmap(i % 10))
        ax.set_xticks(x, [COMPONENT_LABELS[c] for c in comps], fontsize=8)
        ax.axhline(0, color="k", lw=0.6)
        if metric == "rmse":
            ax.set_ylabel(f"RMSE ({GPP_UNIT}; IAV: annual / 365)")
        else:
            ax.set_ylabel(label)
            ax.set_ylim(min(-0.2, np.nanmin(np.r_[d[metric].to_numpy(dtype=float), 0]) - 0.05) if metric == "nse" else 0, 1.0)
        ax.set_title(label)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(models), 4), fontsize=8, bbox_to_anchor=(0.5, -0.02 - 0.05 * ((len(models) - 1) // 4)))
    fig.tight_layout(rect=(0, 0.08 + 0.05 * ((len(models) - 1) // 4), 1, 0.93))
    title = "Skill decomposition (out-of-fold)" + ("" if group == "all" else f", IGBP {group}")
    fig.suptitle(title)
    return save_figure(fig, path, synthetic=synthetic)


def plot_daily_vs_8day(table: pd.DataFrame, path: str | os.PathLike[str], *, max_models: int = 12,
                       synthetic: bool = False) -> Path:
    """Paired bars: r2 and RMSE at daily and 8-day resolution for each model."""
    t = table.copy()
    models = _top_models(t, t["nse_daily"].fillna(-np.inf), max_models)
    t = t.set_index(["features", "head"]).loc[models].reset_index()
    labels = [model_label(f, h) for f, h in zip(t["features"], t["head"], strict=True)]
    y = np.arange(len(t))
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(t) + 1.8), sharey=True)
    for ax, metric, xl in ((axes[0], "r2", "r² (squared Pearson)"), (axes[1], "rmse", f"RMSE ({GPP_UNIT})")):
        ax.barh(y - 0.2, t[f"{metric}_daily"], 0.4, label="daily", color="#4c72b0")
        ax.barh(y + 0.2, t[f"{metric}_8day"], 0.4, label="8-day mean", color="#dd8452")
        ax.set_xlabel(xl)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].invert_yaxis()
    axes[0].set_xlim(0, 1)
    axes[0].legend(fontsize=8)
    fig.suptitle("Daily vs 8-day aggregated skill (out-of-fold)")
    return save_figure(fig, path, synthetic=synthetic)


def plot_phenology_errors(pheno: pd.DataFrame, lags: pd.DataFrame | None, path: str | os.PathLike[str], *,
                          models: Sequence[tuple[object, object]] | None = None, synthetic: bool = False) -> Path:
    """SOS/EOS errors (days, predicted - observed) per method and model, and the cross-correlation lags."""
    if models is None:
        models = [tuple(x) for x in pheno[["features", "head"]].drop_duplicates().to_numpy()][:6]
    n_panels = 3 if lags is not None and not lags.empty else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(5 * n_panels, 4.2))
    for ax, ev in zip(axes[:2], ("sos", "eos"), strict=True):
        data, labels = [], []
        for feat, head in models:
            for m in ("threshold", "derivative"):
                e = pheno[(pheno["features"] == feat) & (pheno["head"] == head) & (pheno["method"] == m)][f"{ev}_error_days"]
                e = e.to_numpy(dtype=float)
                data.append(e[np.isfinite(e)])
                labels.append(f"{model_label(feat, head)}\n{m}")
        pos = np.arange(len(data))
        nonempty = [i for i, v in enumerate(data) if v.size]
        if nonempty:
            ax.boxplot([data[i] for i in nonempty], positions=pos[nonempty], orientation="horizontal", widths=0.6)
            for i in nonempty:
                ax.plot(data[i], np.full(data[i].size, pos[i]) + np.random.default_rng(i).uniform(-0.15, 0.15, data[i].size),
                        "o", ms=3, alpha=0.6, color="#4c72b0")
        ax.set_yticks(pos, labels, fontsize=7)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_xlabel("error (days, predicted - observed)")
        ax.set_title({"sos": "Start of season", "eos": "End of season"}[ev])
        ax.invert_yaxis()
    if n_panels == 3:
        ax = axes[2]
        assert lags is not None
        for i, (feat, head) in enumerate(models):
            lv = lags[(lags["features"] == feat) & (lags["head"] == head)]["lag_days"].to_numpy(dtype=float)
            ax.plot(lv, np.full(lv.size, i), "o", ms=5, alpha=0.7)
        ax.set_yticks(np.arange(len(models)), [model_label(f, h) for f, h in models], fontsize=7)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_xlabel("lag of peak cross-correlation (days; > 0: prediction late)")
        ax.set_title("Lag per site")
        ax.invert_yaxis()
    fig.suptitle("Temporal fidelity (out-of-fold)")
    fig.tight_layout()
    return save_figure(fig, path, synthetic=synthetic)


def _msc_with_band(df: pd.DataFrame, col: str, window: int = 15, q: tuple[float, float] = (0.1, 0.9)) -> pd.DataFrame:
    """Per day of year: mean of ``col`` and its q-quantile band over all values within ± window/2 days (circular)."""
    doy = df["date"].dt.day_of_year.to_numpy()
    vals = df[col].to_numpy(dtype=float)
    half = window // 2
    out = []
    for d in range(1, 367):
        dist = np.abs(doy - d)
        dist = np.minimum(dist, 366 - dist)
        v = vals[(dist <= half) & np.isfinite(vals)]
        out.append((d, v.mean() if v.size else np.nan, *(np.quantile(v, q) if v.size >= 3 else (np.nan, np.nan))))
    return pd.DataFrame(out, columns=["doy", "mean", "lo", "hi"])


def plot_seasonal(oof: pd.DataFrame, path: str | os.PathLike[str], *, site: str | None = None,
                  features: str | None = None, head: str | None = None, max_sites: int = 12,
                  synthetic: bool = False) -> Path:
    """Observed vs predicted daily GPP and the mean seasonal cycle with its spread, per site.

    Args:
        oof: out-of-fold predictions.
        path: PNG to write.
        site: one site (default: every site, up to ``max_sites`` panels).
        features, head: the model to show (default: best pooled daily NSE).

    Left of each row: the daily series; right: the mean seasonal cycle (15-day
    circular window) of observed and predicted GPP with the 10-90 % band of the
    daily values in that window.
    """
    df = _clean(oof)
    if features is None or head is None:
        bf, bh = best_model(df)
        features = bf if features is None else features
        head = bh if head is None else head
    sel = df[(df["features"].astype(str) == str(features)) & (df["head"].astype(str) == str(head))]
    if sel.empty:
        known = sorted({model_label(f, h) for f, h in df[["features", "head"]].drop_duplicates().to_numpy()})
        raise InputError(f"no out-of-fold predictions for features={features!r}, head={head!r}; runs hold {known}")
    sites = sorted(sel["site_id"].astype(str).unique())
    if site is not None:
        if str(site) not in sites:
            raise InputError(f"site {site!r} is not in the run's predictions; sites: {', '.join(sites)}")
        sites = [str(site)]
    sites = sites[:max_sites]
    fig, axes = plt.subplots(len(sites), 2, figsize=(14, 2.8 * len(sites) + 0.6), squeeze=False,
                             gridspec_kw={"width_ratios": [2.2, 1]})
    for row, s in enumerate(sites):
        g = sel[sel["site_id"].astype(str) == s].sort_values("date")
        sc = skill_scores(g["observed"], g["predicted"])
        ax = axes[row, 0]
        ax.plot(g["date"], g["observed"], ".", ms=2.5, color="0.35", label="observed (tower)")
        full = g.set_index("date")["predicted"].asfreq("D")
        ax.plot(full.index, full.to_numpy(), "-", marker=".", ms=2.5, lw=1.1, color="#dd5500",
                label="predicted (out-of-fold)")  # markers: days between gaps show too
        ax.set_ylabel(f"GPP ({GPP_UNIT})")
        ax.set_title(f"{s}: r² {sc['r2']:.2f}, NSE {sc['nse']:.2f}, RMSE {sc['rmse']:.2f} ({int(sc['n'])} days)", fontsize=9)
        ax2 = axes[row, 1]
        for col, color, lab in (("observed", "0.3", "observed"), ("predicted", "#dd5500", "predicted")):
            m = _msc_with_band(g, col)
            ax2.fill_between(m["doy"], m["lo"], m["hi"], color=color, alpha=0.18, lw=0)
            ax2.plot(m["doy"], m["mean"], color=color, lw=1.6, label=f"{lab} MSC (10-90 % band)")
        ax2.set_xlim(1, 366)
        ax2.set_ylabel(f"GPP ({GPP_UNIT})")
        if row == 0:
            ax.legend(fontsize=7, loc="upper left")
            ax2.legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("date")
    axes[-1, 1].set_xlabel("day of year")
    fig.suptitle(f"Seasonal GPP, {model_label(features, head)} (out-of-fold)")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))  # keep the title clear of the first panel's
    return save_figure(fig, path, synthetic=synthetic)


# ----------------------------------------------------------------------------------------- sections

def _igbp_of_run(run_dir: Path, oof: pd.DataFrame) -> dict[str, str] | None:
    """site -> IGBP from the OOF table or a sites table saved in the run folder."""
    if "igbp" in oof.columns:
        return None  # decompose_skill reads the column itself
    for name in ("sites.csv", "sites_used.csv", "metrics_per_site.csv"):
        p = run_dir / name
        if p.is_file():
            try:
                t = pd.read_csv(p)
            except (OSError, ValueError):
                continue
            col = next((c for c in t.columns if c.lower() == "igbp"), None)
            if col and "site_id" in t.columns:
                m = t.dropna(subset=[col]).drop_duplicates("site_id").set_index("site_id")[col].astype(str).to_dict()
                if m:
                    return m
    return None


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    atomic_write_text(path, df.to_csv(index=False))


def decomposition_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Report section: FLUXCOM skill decomposition, per IGBP class, daily vs 8-day.

    Writes ``decomposition.csv``, ``daily_vs_8day.csv`` and
    ``figures/decomposition.png``, ``figures/daily_vs_8day.png`` (and one
    decomposition figure per IGBP class with >= 2 sites).
    """
    run = Path(run_dir)
    oof = load_oof(run)
    synthetic = is_synthetic(run, oof)
    igbp = _igbp_of_run(run, oof)
    decomp = decompose_skill(oof, igbp=igbp)
    scales = daily_vs_8day(oof)
    _write_csv(decomp, run / "decomposition.csv")
    _write_csv(scales, run / "daily_vs_8day.csv")
    figs = run / "figures"
    f1 = plot_decomposition(decomp, figs / "decomposition.png", synthetic=synthetic)
    f2 = plot_daily_vs_8day(scales, figs / "daily_vs_8day.png", synthetic=synthetic)
    best = best_model(oof)
    wide = (decomp[(decomp["features"] == best[0]) & (decomp["head"] == best[1])]
            .pivot_table(index="group", columns="component", values="nse", sort=False)
            .reindex(columns=[c for c in COMPONENTS]).reset_index())
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


def temporal_fidelity_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Report section: SOS/EOS errors (threshold 50 % and derivative methods) and cross-correlation lags.

    Writes ``phenology.csv``, ``phenology_summary.csv``, ``lags.csv`` and ``figures/phenology.png``.
    """
    run = Path(run_dir)
    oof = load_oof(run)
    synthetic = is_synthetic(run, oof)
    pheno = phenology_table(oof)
    lags = lag_analysis(oof)
    summary = phenology_summary(pheno) if not pheno.empty else pd.DataFrame()
    _write_csv(pheno, run / "phenology.csv")
    _write_csv(summary, run / "phenology_summary.csv")
    _write_csv(lags, run / "lags.csv")
    lag_summary = (lags.groupby(["features", "head"], sort=False)
                   .agg(sites=("site_id", "size"), median_lag_days=("lag_days", "median"),
                        mean_abs_lag_days=("lag_days", lambda v: float(np.nanmean(np.abs(v)))),
                        r_at_zero=("r_at_zero", "mean")).reset_index())
    intro = ("Season start (SOS) and end (EOS) per site-year (>= 300 days) from observed and from out-of-fold predicted GPP, "
             "15-day smoothing: threshold at 50 % of the annual amplitude, and the extremes of the first derivative. "
             "Error = predicted - observed (days). Lag: cross-correlation peak within ±30 days (> 0: prediction late).")
    if pheno.empty:
        note = "No site-year has >= 300 days of out-of-fold predictions: SOS/EOS not computed."
        fig_html, fig_md = f"<p><em>{note}</em></p>", f"*{note}*"
        models = None
    else:
        scores = {tuple(k): v for k, v in zip(summary[["features", "head"]].to_numpy().tolist(), summary["sos_mae_days"], strict=True)}
        best = best_model(oof)
        models = [best] + [m for m in sorted(scores, key=lambda k: scores[k] if np.isfinite(scores[k]) else np.inf) if m != best][:4]
        fig_html, fig_md = "", ""
    f = plot_phenology_errors(pheno, lags, run / "figures" / "phenology.png", models=models, synthetic=synthetic) if not pheno.empty else None
    if f is not None:
        fig_html = img_html(f, "SOS/EOS errors (days) and lags per site")
        fig_md = "![phenology](figures/phenology.png)"
    html = "\n".join([f"<p>{html_lib.escape(intro)}</p>", fig_html,
                      "<h3>SOS/EOS error summary (days)</h3>", html_table(summary, table_id="phenology-summary"),
                      "<h3>Cross-correlation lag (days)</h3>", html_table(lag_summary, table_id="lags")])
    md = "\n\n".join([intro, fig_md, "### SOS/EOS error summary (days)", md_table(summary),
                      "### Cross-correlation lag (days)", md_table(lag_summary)])
    return "Temporal fidelity", html, md


def seasonal_section(run_dir: str | os.PathLike[str]) -> tuple[str, str, str]:
    """Report section: seasonal GPP (observed vs predicted, MSC and band) of the best model, every site."""
    run = Path(run_dir)
    oof = load_oof(run)
    best = best_model(oof)
    f = plot_seasonal(oof, run / "figures" / "seasonal_best.png", features=str(best[0]), head=str(best[1]),
                      synthetic=is_synthetic(run, oof))
    text = f"Best model by pooled daily NSE: {model_label(*best)}. `ecoembed plot-seasonal --run DIR --site ID` draws any site/model."
    return ("Seasonal GPP (best model)", f"<p>{html_lib.escape(text)}</p>" + img_html(f, "Seasonal GPP per site"),
            f"{text}\n\n![seasonal](figures/seasonal_best.png)")


SECTIONS = (decomposition_section, temporal_fidelity_section)
"""Section callables of this module, in report order."""
