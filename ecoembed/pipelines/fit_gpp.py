"""``ecoembed fit-gpp``: join sites, cross-validate heads per feature set, compute every analysis, write the run folder.

Output folder (written to a temporary sibling and renamed at the end, so a
failed run leaves no partial output):

* ``predictions.csv`` / ``.parquet``: out-of-fold rows ``site_id, date, observed,
  predicted, fold, head, features`` (gC m-2 d-1) plus ``igbp``, ``synthetic``
* ``metrics_pooled.csv/.md``, ``metrics_per_site.csv/.md`` (see :mod:`ecoembed.gpp.metrics`)
* ``days_lost.csv``: per site and feature set, flux days dropped and why
* ``coefficients_<features>.csv``: linear-head coefficients per fold (standardised
  inputs) and ``coefficients_<features>_summary.csv`` (mean over folds)
* ``decomposition.csv``, ``daily_vs_8day.csv`` (:mod:`ecoembed.gpp.decomposition`),
  ``phenology.csv``, ``phenology_summary.csv``, ``lags.csv``, ``lags_summary.csv``
  (:mod:`ecoembed.gpp.phenology`)
* ``interpret_*`` (:mod:`ecoembed.gpp.interpret`)
* ``joined.parquet``: the joined daily table (features + flux) of every site
* ``provenance.json``: versions, inputs with sha256, seeds, options, ``synthetic``
* ``figures/``, ``index.html`` (self-contained), ``report.md`` (:mod:`ecoembed.report`)
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import io
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ecoembed.errors import CubeError, InputError, OutputExistsError
from ecoembed.escaping import guard_csv_formulas
from ecoembed.gpp.bootstrap import bootstrap_intervals, paired_differences
from ecoembed.gpp.cv import cv_splits, fit_head, out_of_fold, parse_years
from ecoembed.gpp.decomposition import aggregate_table_8day, daily_vs_8day, decompose_skill
from ecoembed.gpp.features import (
    DAYS_TO_OBS,
    columns_for,
    embedding_variant,
    parse_feature_set,
    site_features,
    variant_path_column,
)
from ecoembed.gpp.footprint import FOOTPRINT_METHODS
from ecoembed.gpp.heads import LinearHead, coefficient_summary, make_head
from ecoembed.gpp.interpret import interpret_out_of_fold, pca_rgb
from ecoembed.gpp.join import LOSS_REASONS, join_site
from ecoembed.gpp.metrics import per_site_metrics, pooled_metrics, skill_by_support
from ecoembed.gpp.options import (
    BASELINES,
    DEFAULT_FOLDS,
    DEFAULT_HEADS,
    DEFAULT_MAX_GAP_DAYS,
    DEFAULT_WINDOW_PX,
    FIXED_HEAD,
    HEADS,
)
from ecoembed.gpp.phenology import MAX_GAP_DAYS, MIN_COVERAGE, lag_analysis, lag_summary, phenology_summary, phenology_table
from ecoembed.gpp.saved import MODELS_DIR, model_dir_name, save_model, write_index
from ecoembed.io_utils import atomic_path, atomic_write_text
from ecoembed.pipelines.parallel import Call, run_calls, section_renderer
from ecoembed.report.common import md_table
from ecoembed.report.html import build_report
from ecoembed.sources.embedding_cube import embedding_chip, open_embeddings
from fluxnet import DEFAULT_QC_MIN, FluxDataError, read_flux, read_sites_csv, split_path_list

VERSIONED_PACKAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("numpy", ("numpy",)), ("pandas", ("pandas",)), ("torch", ("torch",)), ("xgboost", ("xgboost-cpu", "xgboost")),
    ("scikit-learn", ("scikit-learn",)), ("statsmodels", ("statsmodels",)), ("xarray", ("xarray",)), ("ecoembed", ("ecoembed",)),
)
"""(package, distributions that provide it, tried in order) recorded in provenance."""


@dataclass
class RunResult:
    """What :func:`run_fit_gpp` wrote and measured."""

    out_dir: Path
    predictions: pd.DataFrame
    pooled: pd.DataFrame
    per_site: pd.DataFrame
    days_lost: pd.DataFrame
    synthetic: bool
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["site_id", "reason"]))

    @property
    def n_skipped(self) -> int:
        """Sites skipped for unusable input (``skipped_sites.csv``)."""
        return len(self.skipped)


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, or of every file of a folder (sorted relative paths + contents, e.g. Zarr)."""
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    for q in files:
        if p.is_dir():
            h.update(str(q.relative_to(p)).encode())
        with open(q, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    """Python and package versions; a package provided by another distribution says which (``2.1.4 (xgboost-cpu)``)."""
    out = {"python": platform.python_version()}
    for pkg, dists in VERSIONED_PACKAGES:
        out[pkg] = "not installed"
        for dist in dists:
            try:
                version = md.version(dist)
            except md.PackageNotFoundError:
                continue
            out[pkg] = version if dist == pkg else f"{version} ({dist})"
            break
    return out


GPP_TARGET_RULES: dict[str, str] = {
    "mean": "mean of night-time (NT) and day-time (DT) partitioned GPP where both exist, else the one that exists",
    "NT": "night-time partitioned GPP (NT) only",
    "DT": "day-time partitioned GPP (DT) only",
}
"""How the target is made from the flux files, per ``gpp_method`` (stated in provenance and the report)."""


def write_csv(table: pd.DataFrame, path: Path, **to_csv: Any) -> None:
    """``table`` as CSV without its index, text cells guarded against spreadsheet formulas (:func:`guard_csv_formulas`)."""
    guard_csv_formulas(table).to_csv(path, index=False, **to_csv)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def load_sites(sites_csv: str | os.PathLike[str], *, allow_absolute_paths: bool = False,
               allow_shared_flux: bool = False) -> pd.DataFrame:
    """``read_sites_csv`` with its errors turned into :class:`InputError` (one-line CLI message).

    Site ids are checked there, once (safe characters, unique also ignoring case); two sites naming
    the same flux file are refused unless ``allow_shared_flux`` (site-level CV would leak).
    """
    try:
        return read_sites_csv(sites_csv, allow_absolute_paths=allow_absolute_paths, allow_shared_flux=allow_shared_flux)
    except FluxDataError as exc:
        raise InputError(str(exc)) from None


SKIP_ERRORS = (InputError, CubeError, FluxDataError)
"""Per-site input problems that skip the site (named in ``skipped_sites.csv`` and the report) unless ``strict``."""


def build_table(sites: pd.DataFrame, feature_sets: Sequence[str], *, window_px: int = DEFAULT_WINDOW_PX,
                qc_min: float = DEFAULT_QC_MIN, max_gap_days: int = DEFAULT_MAX_GAP_DAYS, gpp_method: str = "mean",
                qc_missing: str = "nan", strict: bool = False, progress: bool = True, footprint: str = "window",
                optional_sets: Sequence[str] = (), workers: int = 1,
                ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, list[str]], dict[str, Any]]:
    """Joined daily table of every site, days lost, columns of each feature set, and input info.

    ``workers``: processes joining sites side by side (:func:`ecoembed.pipelines.parallel.run_calls`).

    ``optional_sets`` (the baselines) are joined where a site's inputs allow; a set that
    some site cannot have is left out of the result (``info["optional_missing"]``: set ->
    the reason), never the site.

    A site whose inputs are unusable (no flux file, unreadable flux or cube, tower outside
    the cube, no overlapping days, a feature set without columns) is skipped: one line on
    stderr (by :func:`run_fit_gpp`, once the run can go on), and ``info["skipped"]`` (``site_id, reason``)
    names it; so is a site left with no usable day. With ``strict`` the first such problem raises instead.

    Raises:
        InputError/CubeError: ``strict`` and a site's input is unusable, or no site is usable.
    """
    tables: dict[str, pd.DataFrame] = {}
    lost: list[pd.DataFrame] = []
    skipped: list[dict[str, str]] = []
    site_cols: dict[str, dict[str, list[str]]] = {}
    footprints: list[dict[str, object]] = []
    info: dict[str, Any] = {"synthetic": False, "inputs": []}
    rows = [site for _, site in sites.iterrows()]
    options = {"window_px": window_px, "qc_min": qc_min, "max_gap_days": max_gap_days, "gpp_method": gpp_method,
               "qc_missing": qc_missing, "footprint": footprint, "optional_sets": optional_sets}
    joined = run_calls([(_join_or_reason, (site, feature_sets), options) for site in rows], workers=workers,
                       desc="join sites" if progress else None)
    for site, (result, message) in zip(rows, joined, strict=True):
        sid = str(site["site_id"])
        if result is None:
            if strict:
                raise InputError(message)
            skipped.append({"site_id": sid, "reason": message})
            continue
        table, dl, cols, finfo, paths = result
        site_cols[sid] = cols
        if "footprint" in finfo:
            footprints.append(finfo["footprint"])
        info["inputs"] += paths + finfo["inputs"]
        info["synthetic"] |= finfo["synthetic"] or bool(site.get("synthetic", False) is True) or any(
            "synthetic" in Path(p).name.lower() for p in paths)
        table = table.assign(igbp=site.get("igbp", np.nan) if "igbp" in sites.columns else np.nan)
        tables[sid] = table
        lost.append(dl)
    info["skipped"] = pd.DataFrame(skipped, columns=["site_id", "reason"])
    info["footprint"] = pd.DataFrame(footprints, columns=["site_id", "method", "extent_80_m", "n_halfhours", "fallback_reason"])
    if not tables:
        first_reason = skipped[0]["reason"] if skipped else "sites.csv has no rows"
        raise InputError(f"no usable site: all {len(skipped)} were skipped (first: {first_reason})")
    info["optional_missing"] = {}
    for fs in optional_sets:
        lacking = [sid for sid, cols in site_cols.items() if not cols.get(fs)]
        if lacking:
            info["optional_missing"][fs] = (f"{len(lacking)} of {len(site_cols)} sites lack its inputs "
                                            f"(first: {lacking[0]})")
            for cols in site_cols.values():
                cols.pop(fs, None)
    kept = [*feature_sets, *[fs for fs in optional_sets if fs not in info["optional_missing"] and fs not in feature_sets]]
    set_cols, info["dropped_columns"] = common_columns(site_cols, kept)
    table, days_lost = pd.concat(tables.values(), ignore_index=True), pd.concat(lost, ignore_index=True)
    # a baseline must not shrink the paired evaluation of the sets asked for: it runs only where its inputs
    # cover (nearly) every day those sets share
    def finite(cols: Sequence[str]) -> np.ndarray:
        return np.isfinite(table[list(cols)].to_numpy(float)).all(axis=1) if cols else np.ones(len(table), bool)

    asked = finite(sorted({c for fs in feature_sets for c in set_cols.get(fs, [])}))
    for fs in [f for f in optional_sets if f in set_cols and f not in feature_sets]:
        share = float((finite(set_cols[fs]) & asked).sum() / max(int(asked.sum()), 1))
        if share < BASELINE_MIN_COVERAGE:
            info["optional_missing"][fs] = (f"its inputs exist on {share:.0%} of the site-days the requested sets share "
                                            f"(< {BASELINE_MIN_COVERAGE:.0%}); left out so the paired evaluation keeps them")
            del set_cols[fs]
            days_lost = days_lost[days_lost["features"] != fs]
    return table, days_lost.reset_index(drop=True), set_cols, info


BASELINE_MIN_COVERAGE = 0.95
"""A default baseline runs only when its inputs are finite on this share of the site-days the requested sets share."""


def common_columns(site_cols: dict[str, dict[str, list[str]]], feature_sets: Sequence[str],
                   ) -> tuple[dict[str, list[str]], dict[str, dict[str, list[str]]]]:
    """Columns of each feature set that every site has, and the dropped ones with the sites that lack them.

    Sites may differ in optional inputs (an index table with PPI and LAI at some towers,
    only bands at others): a model needs one column list, so it uses what all sites share
    and the run says what it left out.

    Raises:
        InputError: the sites share no column of a feature set.
    """
    out: dict[str, list[str]] = {}
    dropped: dict[str, dict[str, list[str]]] = {}
    for fs in feature_sets:
        per_site = [(sid, cols[fs]) for sid, cols in site_cols.items()]
        union = list(dict.fromkeys(c for _, cols in per_site for c in cols))
        common = [c for c in union if all(c in cols for _, cols in per_site)]
        if not common:
            raise InputError(f"feature set {fs!r}: the sites share none of its columns ({union[:6]}...); give every site "
                             "the same kind of input (band cube, index table or embedding)")
        out[fs] = common
        lacking = {c: [sid for sid, cols in per_site if c not in cols] for c in union if c not in common}
        if lacking:
            dropped[fs] = lacking
    return out, dropped


JoinedSite = tuple[pd.DataFrame, pd.DataFrame, dict[str, list[str]], dict[str, Any], list[str]]
"""What :func:`_join_one` returns: table, days lost, feature columns, feature info, flux paths."""


def _join_or_reason(site: pd.Series, feature_sets: Sequence[str], **options: Any) -> tuple[JoinedSite | None, str]:
    """:func:`_join_one`, or None and the one-line reason the site is skipped (an input problem, or no usable day)."""
    sid = str(site["site_id"])
    try:
        joined = _join_one(site, feature_sets, **options)
        dl = joined[1]
        if (dl["n_used"] == 0).all():
            first = dl.iloc[0]
            counts = ", ".join(f"{r} {int(first[r])}" for r in LOSS_REASONS if int(first[r]))
            raise InputError(f"site {sid}: no usable day ({int(first['n_flux_days'])} flux days: {counts}); check "
                             "--qc-min / --qc-missing, the flux and cube periods, and days_lost.csv")
    except SKIP_ERRORS as exc:
        return None, str(exc) if str(exc).startswith(f"site {sid}") else f"site {sid}: {exc}"
    return joined, ""


def _join_one(site: pd.Series, feature_sets: Sequence[str], *, window_px: int, qc_min: float,
              max_gap_days: int, gpp_method: str, qc_missing: str, footprint: str = "window",
              optional_sets: Sequence[str] = (),
              ) -> JoinedSite:
    """One site's joined table, days lost, feature columns, feature info and flux paths (errors name the site).

    ``optional_sets`` the site cannot have (an input missing) get no entry in the columns; the site is kept.
    """
    sid = str(site["site_id"])
    fp = site.get("flux_path")
    if not isinstance(fp, str) or not fp:
        raise InputError(f"site {sid}: flux_path is empty in sites.csv; every site needs its tower file")
    for column in ("lat", "lon"):
        if not np.isfinite(float(site.get(column, np.nan))):
            raise InputError(f"site {sid}: no {column} in sites.csv; give the tower's coordinates (WGS84 degrees)")
    paths = split_path_list(fp)
    try:
        flux = read_flux(paths, site_id=sid, gpp_method=gpp_method, qc_missing=qc_missing)
    except FluxDataError as exc:
        raise InputError(f"site {sid}: {exc}") from None
    optional = [fs for fs in optional_sets if fs not in feature_sets]
    try:
        feats, finfo = site_features(site, flux, [*feature_sets, *optional], window_px=window_px,
                                     max_gap_days=max_gap_days, footprint=footprint)
    except InputError:
        if not optional:
            raise
        optional = []  # an input only a baseline needs is missing here: the site goes on without the baselines
        feats, finfo = site_features(site, flux, feature_sets, window_px=window_px, max_gap_days=max_gap_days, footprint=footprint)
    cols = {fs: columns_for(fs, list(feats.columns)) for fs in feature_sets}
    for fs in optional:
        try:
            cols[fs] = columns_for(fs, list(feats.columns))
        except InputError:
            continue
    table, dl = join_site(flux, feats, qc_min=qc_min, feature_sets=cols, site_id=sid, source=f"site {sid}")
    return table, dl, cols, finfo, paths


def _window_comparison(sites: pd.DataFrame, feature_sets: Sequence[str], heads: Sequence[str], *, cv: str, folds: int,
                       seed: int, n_jobs: int, window_px: int, qc_min: float, max_gap_days: int, gpp_method: str,
                       qc_missing: str, test_years: str | None, train_years: str | None, sites_used: set[str]) -> pd.DataFrame:
    """Pooled skill of the same models with the Gaussian window instead of the footprint (same sites, same folds rule)."""
    table, _, set_cols, _ = build_table(sites[sites["site_id"].astype(str).isin(sites_used)], feature_sets, window_px=window_px,
                                        qc_min=qc_min, max_gap_days=max_gap_days, gpp_method=gpp_method, qc_missing=qc_missing,
                                        progress=False)
    preds = []
    for fs in feature_sets:
        cols = set_cols[fs]
        sub = table[np.isfinite(table[cols].to_numpy(float)).all(axis=1)].reset_index(drop=True)
        splits = cv_splits(sub, cv, k=folds, seed=seed, test_years=test_years, train_years=train_years)
        for h in heads:
            def new_head(name: str = h) -> BaseEstimator:
                return make_head(name, seed=seed, n_jobs=n_jobs)

            preds.append(out_of_fold(sub, cols, new_head, splits, head=h, features=fs))
    return pooled_metrics(pd.concat(preds, ignore_index=True))


def paired_loss(table: pd.DataFrame, set_cols: dict[str, list[str]]) -> pd.DataFrame:
    """Per feature set: QC-passed days it could use, days all sets share, days lost to the pairing and to which sets.

    Returns:
        ``features, n_usable, n_paired, n_lost_to_pairing, limited_by`` (``limited_by``: the other sets
        without features on the lost days, with day counts, most first).
    """
    ok = {fs: np.isfinite(table[cols].to_numpy(float)).all(axis=1) for fs, cols in set_cols.items()}
    every = np.logical_and.reduce(list(ok.values())) if ok else np.zeros(len(table), bool)
    rows = []
    for fs, mask in ok.items():
        lost = mask & ~every
        blame = sorted(((int((lost & ~m).sum()), g) for g, m in ok.items() if g != fs), reverse=True)
        rows.append({"features": fs, "n_usable": int(mask.sum()), "n_paired": int(every.sum()),
                     "n_lost_to_pairing": int(lost.sum()),
                     "limited_by": "; ".join(f"{g} ({n} days)" for n, g in blame if n) or "-"})
    return pd.DataFrame(rows, columns=["features", "n_usable", "n_paired", "n_lost_to_pairing", "limited_by"])


def _add_not_paired(days_lost: pd.DataFrame, table: pd.DataFrame, set_cols: dict[str, list[str]], keep: np.ndarray) -> pd.DataFrame:
    """``days_lost`` with ``not_paired`` (usable days dropped because another set lacks features) and ``n_scored``."""
    out = days_lost.copy()
    out["not_paired"] = 0
    sites = table["site_id"].astype(str).to_numpy()
    for fs, cols in set_cols.items():
        lost = np.isfinite(table[cols].to_numpy(float)).all(axis=1) & ~keep
        counts = pd.Series(sites[lost]).value_counts()
        hit = out["features"] == fs
        out.loc[hit, "not_paired"] = out.loc[hit, "site_id"].astype(str).map(counts).fillna(0).astype(int).to_numpy()
    out["n_scored"] = np.where(out["features"].isin(list(set_cols)), out["n_used"] - out["not_paired"], 0)
    return out


def with_intervals(pooled: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """Pooled metrics with each ``<metric>_lo``/``_hi`` placed right after its metric."""
    merged = pooled.merge(intervals, on=["features", "head"], how="left")
    order: list[str] = []
    for c in pooled.columns:
        order.append(c)
        order += [f"{c}_{s}" for s in ("lo", "hi") if f"{c}_{s}" in merged.columns]
    return merged[order + [c for c in merged.columns if c not in order]]


def comparison_pairs(pooled: pd.DataFrame, reference: tuple[str, str] | None) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """Which paired differences a run reports.

    Every model vs the reference (LUE) baseline, each embedding variant
    (``embeddings:NAME``) vs ``embeddings`` with the same head and extras, and the best embedding model vs the best model
    without embeddings (by pooled r2).
    """
    models = [(str(f), str(h)) for f, h in zip(pooled["features"], pooled["head"], strict=True)]
    pairs = [(m, reference) for m in models if reference and m != reference]
    for f, h in models:
        comps = f.split("+")
        if any(embedding_variant(c) for c in comps):
            base = "+".join("embeddings" if embedding_variant(c) else c for c in comps)
            if (base, h) in models:
                pairs.append(((f, h), (base, h)))
    r2 = dict(zip(models, pooled["r2"].astype(float), strict=True))
    with_emb = [m for m in models if any(embedding_variant(c) is not None for c in m[0].split("+"))]
    without = [m for m in models if m not in with_emb]
    if with_emb and without:
        best_e = max(with_emb, key=lambda m: r2[m] if np.isfinite(r2[m]) else -np.inf)
        best_o = max(without, key=lambda m: r2[m] if np.isfinite(r2[m]) else -np.inf)
        if (best_e, best_o) not in pairs:
            pairs.append((best_e, best_o))
    return pairs


def skill_with_intervals(predictions: pd.DataFrame, reference: tuple[str, str] | None,
                         seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pooled metrics with bootstrap-over-sites intervals, and the paired differences of :func:`comparison_pairs`."""
    pooled = with_intervals(pooled_metrics(predictions), bootstrap_intervals(predictions, seed=seed))
    return pooled, paired_differences(predictions, comparison_pairs(pooled, reference), seed=seed)


def _phenology_tables(predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    pheno = phenology_table(predictions)
    return pheno, phenology_summary(pheno) if not pheno.empty else pd.DataFrame()


def _lag_tables(predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    lags = lag_analysis(predictions)
    return lags, lag_summary(lags) if not lags.empty else pd.DataFrame()


def analysis_calls_of(predictions: pd.DataFrame, eight_day_models: pd.DataFrame | None = None,
                      ) -> tuple[list[tuple[str, ...]], list[Call]]:
    """The independent computations of :func:`write_analysis`: the file stems each one gives, and the calls."""
    return ([("decomposition",), ("daily_vs_8day",), ("phenology", "phenology_summary"), ("lags", "lags_summary")],
            [(decompose_skill, (predictions,), {}), (daily_vs_8day, (predictions,), {"eight_day_models": eight_day_models}),
             (_phenology_tables, (predictions,), {}), (_lag_tables, (predictions,), {})])


def analysis_tables(stems: Sequence[tuple[str, ...]], parts: Sequence[Any],
                    eight_day_models: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """File stem -> table from the results of :func:`analysis_calls_of` (and ``predictions_8day``)."""
    tables: dict[str, pd.DataFrame] = {}
    for names, part in zip(stems, parts, strict=True):
        tables.update(zip(names, part if len(names) > 1 else (part,), strict=True))
    if eight_day_models is not None:
        tables["predictions_8day"] = eight_day_models
    order = ["decomposition", "daily_vs_8day", "predictions_8day", "phenology", "phenology_summary", "lags", "lags_summary"]
    return {k: tables[k] for k in order if k in tables}


def write_analysis_tables(run_dir: Path, tables: dict[str, pd.DataFrame]) -> None:
    """Each table as ``<stem>.csv`` in ``run_dir`` (text cells guarded against spreadsheet formulas)."""
    for stem, df in tables.items():
        atomic_write_text(run_dir / f"{stem}.csv", guard_csv_formulas(df).to_csv(index=False))


def write_analysis(run_dir: Path, predictions: pd.DataFrame, eight_day_models: pd.DataFrame | None = None, *,
                   workers: int = 1) -> None:
    """Skill decomposition, daily vs 8-day skill, phenology and lags of the out-of-fold predictions, as CSV files.

    ``eight_day_models``: out-of-fold predictions of the models refitted on 8-day means (also ``predictions_8day.csv``).
    ``workers``: processes computing the tables side by side.
    """
    stems, calls = analysis_calls_of(predictions, eight_day_models)
    write_analysis_tables(run_dir, analysis_tables(stems, run_calls(calls, workers=workers), eight_day_models))


def write_interpretation(
    out_dir: str | os.PathLike[str],
    table: pd.DataFrame,
    feature_columns: Sequence[str],
    *,
    target: str = "GPP",
    chip: np.ndarray | None = None,
    chip_dates: np.ndarray | None = None,
    chip_site: str | None = None,
    seed: int = 0,
    progress: bool = False,
    n_jobs: int | None = None,
) -> dict[str, Path]:
    """Compute :func:`~ecoembed.gpp.interpret.interpret_out_of_fold` (and the PCA RGB of ``chip``) into ``out_dir``.

    ``n_jobs``: xgboost threads (None: the interpretation's default).

    Writes ``interpret_*.csv`` (see :meth:`~ecoembed.gpp.interpret.Interpretation.tables`),
    ``interpret_notes.txt`` and, with a chip, ``interpret_pca_rgb.npz`` (``rgb``, ``dates``,
    ``explained``, ``site``), which the report's interpretability section reads.

    Returns:
        Name -> path of every file written.
    """
    out = Path(out_dir)
    res = interpret_out_of_fold(table, feature_columns, target=target, seed=seed, progress=progress,
                                xgb_params={"n_jobs": n_jobs} if n_jobs is not None else None)
    written: dict[str, Path] = {}
    for stem, df in res.tables().items():
        atomic_write_text(out / f"{stem}.csv", guard_csv_formulas(df).to_csv(index=False))
        written[stem] = out / f"{stem}.csv"
    atomic_write_text(out / "interpret_notes.txt", "\n".join(res.notes) + "\n")
    written["interpret_notes"] = out / "interpret_notes.txt"
    if chip is not None:
        pr = pca_rgb(chip, seed=seed)
        buf = io.BytesIO()
        dates = np.asarray(chip_dates if chip_dates is not None else np.arange(pr.rgb.shape[0])).astype(str)
        np.savez_compressed(buf, rgb=pr.rgb.astype(np.float32), dates=dates, explained=pr.explained_variance_ratio,
                            site=np.asarray(str(chip_site or "")))
        with atomic_path(out / "interpret_pca_rgb.npz") as tmp:
            tmp.write_bytes(buf.getvalue())
        written["interpret_pca_rgb"] = out / "interpret_pca_rgb.npz"
    return written


def _interpret(tmp: Path, table: pd.DataFrame, sites: pd.DataFrame, feature_sets: Sequence[str],
               set_cols: dict[str, list[str]], *, seed: int, progress: bool,
               n_jobs: int | None = None) -> tuple[str | None, float]:
    """Write the interpretation files of one feature set into ``tmp``: the set's name (None when skipped), seconds.

    ``n_jobs``: xgboost threads of the interpretation (None: its default).
    """
    t = time.perf_counter()
    with_emb = [f for f in feature_sets if "embeddings" in f.split("+")]
    # a combined set (embeddings+meteo) shows how the families share the work; else the first embedding set
    fs = next((f for f in with_emb if "+" in f), with_emb[0] if with_emb else feature_sets[0])
    cols = set_cols[fs]
    sub = table[np.isfinite(table[cols].to_numpy(float)).all(axis=1)]
    if sub["site_id"].nunique() < 2:
        return None, time.perf_counter() - t  # site-level folds need two sites; the report names what is missing
    chip = dates = chip_site = None
    if fs in with_emb and "features_path" in sites.columns:
        first = sites[sites["features_path"].map(lambda v: isinstance(v, str) and bool(v))].head(1)
        for site_id, fp in zip(first["site_id"], first["features_path"], strict=True):
            try:
                chip, dates = embedding_chip(fp)
                chip_site = str(site_id)
            except (OSError, ValueError, CubeError):
                chip = None
    write_interpretation(tmp, sub, cols, chip=chip, chip_dates=dates, chip_site=chip_site, seed=seed, progress=progress,
                         n_jobs=n_jobs)
    return fs, time.perf_counter() - t


def default_feature_sets(sites: pd.DataFrame) -> tuple[list[str], str]:
    """Feature sets used when none are given, from what sites.csv provides, and the one-line reason.

    Embedding cubes (``features_path``) -> ``embeddings``; else S2 cubes/tables (``s2_path``,
    ``indices_path``) -> ``indices_x_potrad`` and ``indices+potrad``; else (tower files only) -> ``meteo``.
    """
    def given(column: str) -> bool:
        return bool(column in sites.columns and sites[column].astype(str).str.strip().replace("nan", "").str.len().gt(0).any())

    if given("features_path"):
        return ["embeddings"], "sites.csv names embedding cubes (features_path): using the feature set embeddings"
    if given("s2_path") or given("indices_path"):
        return (["indices_x_potrad", "indices+potrad"],
                "sites.csv names S2 inputs but no embedding cube: using indices_x_potrad and indices+potrad")
    return ["meteo"], ("sites.csv names no cube or table (tower files only): using the tower-only feature set meteo "
                       "(TA, SW_IN, VPD from the flux files)")


def embedding_sources(sites: pd.DataFrame, feature_set: str) -> dict[str, dict[str, Any]]:
    """What the training embedding cubes of a feature set were: per variant, checkpoints, CRSs, grid spacing, width.

    Kept with each model so ``predict-gpp`` refuses a cube from another encoder or grid.
    """
    out: dict[str, dict[str, Any]] = {}
    for comp in parse_feature_set(feature_set):
        variant = embedding_variant(comp)
        column = variant_path_column(variant) if variant is not None else None
        if column is None or column not in sites.columns:
            continue
        sha, crs, res, width = set(), set(), set(), set()
        for cell in sites[column]:
            for path in split_path_list(cell):
                try:
                    with open_embeddings(path) as ds:
                        sha.add(str(ds.attrs.get("checkpoint_sha256", "")))
                        crs.add(str(ds.attrs.get("crs", "")))
                        width.add(int(ds.sizes["feature"]))
                        if ds.sizes["x"] > 1:
                            res.add(round(abs(float(ds["x"][1] - ds["x"][0])), 6))
                        elif "resolution_m" in ds.attrs:
                            res.add(round(float(ds.attrs["resolution_m"]), 6))
                except (CubeError, OSError):
                    continue  # the site was skipped for it; nothing to record
        out[variant or ""] = {"column": column, "checkpoint_sha256": sorted(sha), "crs": sorted(crs),
                              "resolution_m": sorted(res), "n_features": sorted(width)}
    return out


def keep_model(root: Path, sub: pd.DataFrame, cols: Sequence[str], features: str, head: str, oof: pd.DataFrame, *,
               seed: int, n_jobs: int, extra: dict[str, Any]) -> dict[str, Any]:
    """Refit ``head`` on every row of ``sub`` (all sites) and keep it under ``root`` (see :mod:`ecoembed.gpp.saved`)."""
    X = sub[list(cols)].to_numpy(float)
    est = fit_head(make_head(head, seed=seed, n_jobs=n_jobs), pd.DataFrame(X, columns=list(cols)),
                   sub["GPP"].to_numpy(float), sub["site_id"].astype(str).to_numpy())
    name = model_dir_name(features, head)
    save_model(est, root / name, features=features, head=head, columns=cols, X_train=X, dates=sub["date"],
               sites=sub["site_id"].astype(str), oof=oof, extra=extra)
    meta = json.loads((root / name / "model.json").read_text(encoding="utf-8"))
    cov = meta["coverage_held_out_sites"]
    at90 = next((c["coverage"] for c in cov if abs(c["level"] - 0.9) < 1e-9), float("nan"))
    return {"model": name, "features": features, "head": head, "n_train": len(sub), "sites": sub["site_id"].nunique(),
            "coverage_90_held_out": at90, "coverage": cov}


@dataclass(frozen=True)
class CvSettings:
    """How :func:`cv_job` splits and fits (the run's options)."""

    cv: str
    folds: int
    seed: int
    n_jobs: int
    test_years: str | None = None
    train_years: str | None = None


@dataclass
class CvJobResult:
    """What :func:`cv_job` computed for one model: daily and 8-day out-of-fold rows, linear coefficients, kept model."""

    oof: pd.DataFrame
    oof8: pd.DataFrame | None
    coefs: pd.DataFrame | None
    kept: dict[str, Any] | None
    seconds: dict[str, float]


def cv_job(sub: pd.DataFrame, cols: Sequence[str], fs: str, h: str, settings: CvSettings, *,
           keep_root: Path | None = None, keep_extra: dict[str, Any] | None = None) -> CvJobResult:
    """Cross-validate one head on one feature set (daily, then refitted on 8-day means) and keep it when asked.

    ``sub``: the joined rows where every column of the set is finite (``site_id, date, GPP, igbp``,
    the columns, ``days_to_obs`` when the run has it). ``keep_root``: refit on every site and keep the
    model there (:func:`keep_model`, with ``keep_extra``). One model's whole work, so models run on
    worker processes independently (:func:`ecoembed.pipelines.parallel.run_calls`).
    """
    seconds: dict[str, float] = {}
    cv, folds, seed = settings.cv, settings.folds, settings.seed
    splits = cv_splits(sub, cv, k=folds, seed=seed, test_years=settings.test_years, train_years=settings.train_years)
    fold_coefs: list[pd.DataFrame] = []

    def keep_coefs(fold: str, est: object) -> None:
        if isinstance(est, LinearHead):
            fold_coefs.append(est.coef_table().assign(fold=fold))

    def new_head() -> BaseEstimator:
        return make_head(h, seed=seed, n_jobs=settings.n_jobs)

    t = time.perf_counter()
    oof = out_of_fold(sub, cols, new_head, splits, head=h, features=fs, on_fit=keep_coefs)
    seconds[f"cv {fs} / {h}"] = time.perf_counter() - t
    oof["igbp"] = oof["site_id"].map(sub.drop_duplicates("site_id").set_index("site_id")["igbp"])
    if DAYS_TO_OBS in sub.columns:
        key = sub.assign(date=pd.to_datetime(sub["date"])).drop_duplicates(["site_id", "date"])
        oof = oof.merge(key[["site_id", "date", DAYS_TO_OBS]], on=["site_id", "date"], how="left")
    t = time.perf_counter()
    oof8 = None
    table8 = aggregate_table_8day(sub, cols)
    if table8["site_id"].nunique() >= (2 if cv in ("loso", "groupkfold") else 1) and len(table8) >= 10:
        try:
            splits8 = cv_splits(table8, cv, k=folds, seed=seed, test_years=settings.test_years,
                                train_years=settings.train_years)
            oof8 = out_of_fold(table8, cols, new_head, splits8, head=h, features=fs)
        except InputError:
            pass  # too few 8-day periods for this scheme: the 8-day model column stays empty
    seconds[f"cv 8-day {fs} / {h}"] = time.perf_counter() - t
    kept = None
    if keep_root is not None:
        t = time.perf_counter()
        kept = keep_model(keep_root, sub, cols, fs, h, oof, seed=seed, n_jobs=settings.n_jobs, extra=keep_extra or {})
        seconds[f"keep {fs} / {h}"] = time.perf_counter() - t
    return CvJobResult(oof, oof8, pd.concat(fold_coefs, ignore_index=True) if fold_coefs else None, kept, seconds)


HEAD_COST: dict[str, float] = {"mlp": 3.0, "xgboost": 2.0, "ridge": 1.0, "linear": 0.05, FIXED_HEAD: 0.0}
"""Rough relative cost of a head's cross-validation (per feature column), to hand the workers the longest calls first."""


def _cost_guess(head: str, n_columns: int) -> float:
    return HEAD_COST.get(head, 1.0) * (n_columns + 8)


def run_fit_gpp(
    sites_csv: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    feature_sets: Sequence[str] | None = ("embeddings",),
    heads: Sequence[str] = DEFAULT_HEADS,
    cv: str = "loso",
    window_px: int = DEFAULT_WINDOW_PX,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    *,
    folds: int = DEFAULT_FOLDS,
    qc_min: float = DEFAULT_QC_MIN,
    max_gap_days: int = DEFAULT_MAX_GAP_DAYS,
    allow_absolute_paths: bool = False,
    allow_shared_flux: bool = False,
    n_jobs: int = 1,
    interpret: bool = True,
    gpp_method: str = "mean",
    qc_missing: str = "nan",
    strict: bool = False,
    paired: bool = True,
    baselines: bool = True,
    test_years: str | None = None,
    train_years: str | None = None,
    max_days_to_obs: int | None = None,
    footprint: str = "window",
    keep_models: bool | Sequence[str] = True,
    workers: int = 1,
    report: bool = True,
) -> RunResult:
    """Fit every head on every feature set with site-level cross-validation and write the run folder.

    Args:
        sites_csv: ``site_id,lat,lon[,igbp,flux_path,features_path,s2_path,s1_path,synthetic]`` (paths relative to it).
        out_dir: output folder (must be absent or empty unless ``overwrite``).
        feature_sets: specs such as ``"embeddings"``, ``"indices+meteo"`` (see :mod:`ecoembed.gpp.features`);
            None: :func:`default_feature_sets` (tower-only files get ``meteo``), said in one line on stderr.
        heads: ``linear``, ``xgboost``, ``mlp``.
        cv: ``loso``, ``groupkfold`` (``folds``), ``year``, ``month`` or ``holdout`` (``test_years``, ``train_years``).
        window_px: tower window edge in pixels (Gaussian weights).
        seed: seeds heads and fold shuffling.
        overwrite: replace a non-empty ``out_dir`` (the old one is removed only after the new one is complete).
        progress: tqdm bars.
        folds: K for ``groupkfold``.
        qc_min: minimum GPP QC fraction of a day (0..1).
        max_gap_days: longest gap (days) bridged when interpolating non-daily cubes.
        allow_absolute_paths: let sites.csv use absolute / escaping paths.
        allow_shared_flux: let two sites name the same flux file (an archive holding each site's own
            tables); refused by default, as leave-one-site-out would then test a tower on its own data.
        n_jobs: threads per head fit.
        interpret: also explain the first combined embedding set (``embeddings+...``), else the
            first embedding set, else the first set (:func:`write_interpretation`; site-level
            folds, needs >= 2 sites) and keep a PCA-RGB chip of the first site's embedding cube.
        gpp_method: the target: ``mean`` of the NT and DT partitionings where both exist (else the
            one that exists), ``NT`` or ``DT``.
        qc_missing: days without a QC value: ``nan`` (fail the QC test), ``pass`` (files their source
            already QC-filtered, with days missing rather than flagged) or ``fail``.
        strict: stop at the first site with unusable input instead of skipping it.
        paired: every feature set uses the same site-days (those where all sets have every feature),
            so their skills compare like with like; ``paired_days.csv`` and the
            ``not_paired`` column of ``days_lost.csv`` say what each set lost to the pairing and to which set.
        baselines: also score the light-use-efficiency baselines (:data:`~ecoembed.gpp.options.BASELINES`)
            where every site has their inputs; the first LUE baseline is the reference of
            ``skill_differences.csv`` and of the report's ranking.
        test_years, train_years: years of ``cv="holdout"`` (``"2020"``, ``"2017-2019"``).
        footprint: ``window`` (Gaussian, ``window_px``) or ``ffp`` (Kljun et al. 2015 footprint climatology
            per site, :mod:`ecoembed.gpp.footprint`; the run also scores the window weighting on the
            same options and writes both in ``footprint_vs_window.csv``).
        max_days_to_obs: use only days at most this many days from a valid satellite observation at
            the tower (``days_to_obs``: the embedding cube's quality layers, else the band/index dates).
        keep_models: refit each requested head (of every requested feature set, or of the sets listed) on every
            site after the cross-validation and keep it under
            ``models/`` (no pickle; :mod:`ecoembed.gpp.saved`) for ``predict-gpp``, with conformal intervals
            calibrated on the out-of-fold residuals.
        workers: processes that cross-validate the models (and interpret, join sites, draw report
            sections) side by side, each with ``n_jobs`` threads (:mod:`ecoembed.pipelines.parallel`);
            1: everything in this process. The numbers do not depend on it.
        report: write ``index.html``/``report.md`` (False: the caller builds them later with
            :func:`ecoembed.report.html.build_report`, e.g. the demo once its map is in).

    Returns:
        :class:`RunResult`.

    Raises:
        OutputExistsError, InputError, CubeError (messages name the file/site).
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not overwrite)):
        raise OutputExistsError(f"output folder {out} exists and is not empty; pass --overwrite or choose another --out")
    heads = list(dict.fromkeys(heads))
    for fs in feature_sets or []:
        parse_feature_set(fs)
    bad = [h for h in heads if h not in HEADS]
    if bad or not heads or (feature_sets is not None and not feature_sets):
        raise InputError(f"heads {bad or '(none)'} / feature sets {list(feature_sets or []) or '(none)'}: choose heads from "
                         f"{', '.join(HEADS)} and at least one feature set")
    if cv == "holdout" and not parse_years(test_years):
        raise InputError("--cv holdout needs --test-years (e.g. 2020; train on --train-years, default the other years)")
    parse_years(train_years)
    if footprint not in FOOTPRINT_METHODS:
        raise InputError(f"footprint {footprint!r}: choose {' or '.join(FOOTPRINT_METHODS)}")
    sites = load_sites(sites_csv, allow_absolute_paths=allow_absolute_paths, allow_shared_flux=allow_shared_flux)
    note = None
    if feature_sets is None:
        feature_sets, why = default_feature_sets(sites)
        note = f"note: no --features given: {why}"
    feature_sets = list(dict.fromkeys(feature_sets))
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    optional = [fs for _, fs, _ in BASELINES] if baselines else []
    table, days_lost, set_cols, info = build_table(sites, feature_sets, window_px=window_px, qc_min=qc_min,
                                                   max_gap_days=max_gap_days, gpp_method=gpp_method, qc_missing=qc_missing,
                                                   strict=strict, progress=progress, footprint=footprint, optional_sets=optional,
                                                   workers=workers)
    baseline_info = [{"label": label, "features": fs, "head": h, "run": fs in set_cols,
                      "why_not": "" if fs in set_cols else info["optional_missing"].get(fs, "")}
                     for label, fs, h in (BASELINES if baselines else ())]
    reference = next(((str(b["features"]), str(b["head"])) for b in baseline_info if b["run"] and str(b["label"]).startswith("LUE")), None)
    skipped: pd.DataFrame = info["skipped"]
    n_sites = table["site_id"].nunique()
    if cv in ("loso", "groupkfold") and n_sites < 2 and len(skipped):
        raise InputError(f"only {n_sites} usable site left for site-level CV ({len(skipped)} skipped; first: "
                         f"{skipped['reason'].iloc[0]})")
    if max_days_to_obs is not None:
        if DAYS_TO_OBS not in table.columns:
            raise InputError("--max-days-to-obs needs satellite inputs (an embedding cube, s2_path or indices_path)")
        table = table[table[DAYS_TO_OBS].to_numpy(float) <= max_days_to_obs].reset_index(drop=True)
        if table.empty:
            raise InputError(f"--max-days-to-obs {max_days_to_obs}: no day is that close to an observation; raise it")
    if note:  # said once the run goes on (otherwise the one error line says why)
        print(note, file=sys.stderr)
    for reason in skipped["reason"]:
        print(f"warning: skipped {reason}", file=sys.stderr)
    paired_days = paired_loss(table, set_cols)
    if paired:
        every = sorted({c for cols in set_cols.values() for c in cols})
        keep = np.isfinite(table[every].to_numpy(float)).all(axis=1)
        days_lost = _add_not_paired(days_lost, table, set_cols, keep)
        table = table[keep].reset_index(drop=True)
        if table.empty:
            raise InputError("no site-day has every feature of every set (the paired evaluation needs the intersection); "
                             "see paired_days.csv or pass --unpaired")
    synthetic = bool(info["synthetic"] or ("synthetic" in sites.columns and sites["synthetic"].astype(bool).any()))
    seconds["join"] = time.perf_counter() - t

    with atomic_path(out) as tmp:
        tmp.mkdir()
        preds, coefs = [], {}
        jobs = [(fs, h) for fs in feature_sets for h in heads]
        jobs += [(str(b["features"]), str(b["head"])) for b in baseline_info
                 if b["run"] and (b["features"], b["head"]) not in jobs]
        preds8: list[pd.DataFrame] = []
        kept: list[dict[str, Any]] = []
        settings = CvSettings(cv=cv, folds=folds, seed=seed, n_jobs=n_jobs, test_years=test_years, train_years=train_years)
        subs: dict[str, pd.DataFrame] = {}
        extras: dict[str, dict[str, Any]] = {}
        calls: list[Call] = []
        for fs, h in jobs:
            cols = set_cols[fs]
            if fs not in subs:
                keep_cols = list(dict.fromkeys(["site_id", "date", "GPP", "igbp", *cols,
                                                *([DAYS_TO_OBS] if DAYS_TO_OBS in table.columns else [])]))
                subs[fs] = table.loc[np.isfinite(table[cols].to_numpy(float)).all(axis=1), keep_cols].reset_index(drop=True)
            sub = subs[fs]
            if sub.empty:
                raise InputError(f"feature set {fs!r}: no day has GPP and all features; see days_lost (try a larger "
                                 "--window-px or check the cube period)")
            keep_root = None
            if fs in feature_sets and (keep_models is True or (not isinstance(keep_models, bool) and fs in keep_models)):
                keep_root = tmp / MODELS_DIR
                if fs not in extras:
                    used = sites[sites["site_id"].astype(str).isin(set(sub["site_id"]))]
                    extras[fs] = {"embedding_sources": embedding_sources(used, fs), "window_px": window_px,
                                  "footprint": footprint, "gpp_method": gpp_method, "synthetic": synthetic, "cv": cv}
            calls.append((cv_job, (sub, cols, fs, h, settings), {"keep_root": keep_root, "keep_extra": extras.get(fs)}))
        interpret_call: list[Call] = [(_interpret, (tmp, table, sites, feature_sets, set_cols),
                                       {"seed": seed, "progress": progress and workers <= 1,
                                        "n_jobs": n_jobs if workers > 1 else None})] if interpret else []
        # the longest calls first, so that the workers finish together; results are used in the jobs' order
        order = sorted(range(len(calls)), key=lambda i: -_cost_guess(jobs[i][1], len(set_cols[jobs[i][0]])))
        t = time.perf_counter()
        done = run_calls(interpret_call + [calls[i] for i in order], workers=workers, desc="fit-gpp CV" if progress else None)
        seconds["cv (all models)"] = time.perf_counter() - t
        interpreted = None
        if interpret:
            interpreted, seconds["interpret"] = done.pop(0)
        results: list[CvJobResult] = [done[order.index(i)] for i in range(len(calls))]
        for (fs, _h), res in zip(jobs, results, strict=True):
            seconds.update(res.seconds)
            preds.append(res.oof)
            if res.oof8 is not None:
                preds8.append(res.oof8)
            if res.coefs is not None:
                coefs[fs] = res.coefs
            if res.kept is not None:
                kept.append(res.kept)
        if kept:
            write_index(tmp, kept)
        predictions = pd.concat(preds, ignore_index=True)
        predictions["synthetic"] = synthetic
        eight_day = pd.concat(preds8, ignore_index=True) if preds8 else None
        t = time.perf_counter()
        # the bootstrap and the analysis tables are independent: computed side by side, written below
        stems, analysis_calls = analysis_calls_of(predictions, eight_day)
        (pooled, differences), *parts = run_calls([(skill_with_intervals, (predictions, reference, seed), {}),
                                                   *analysis_calls], workers=workers)
        seconds["bootstrap + analysis"] = time.perf_counter() - t
        per_site = per_site_metrics(predictions)
        write_csv(differences, tmp / "skill_differences.csv")
        write_csv(paired_days, tmp / "paired_days.csv")
        write_csv(pd.DataFrame(baseline_info, columns=["label", "features", "head", "run", "why_not"]), tmp / "baselines.csv")
        write_csv(predictions, tmp / "predictions.csv", date_format="%Y-%m-%d")
        predictions.to_parquet(tmp / "predictions.parquet", index=False)
        table.to_parquet(tmp / "joined.parquet", index=False)
        write_csv(pooled, tmp / "metrics_pooled.csv")
        write_csv(per_site, tmp / "metrics_per_site.csv")
        write_csv(skill_by_support(predictions), tmp / "skill_by_support.csv")
        write_csv(info["footprint"], tmp / "footprint.csv")
        if footprint == "ffp":
            t = time.perf_counter()
            window_pooled = _window_comparison(sites, feature_sets, heads, cv=cv, folds=folds, seed=seed, n_jobs=n_jobs,
                                               window_px=window_px, qc_min=qc_min, max_gap_days=max_gap_days,
                                               gpp_method=gpp_method, qc_missing=qc_missing, test_years=test_years,
                                               train_years=train_years, sites_used=set(table["site_id"]))
            both = pooled[["features", "head", "n", "r2", "rmse"]].merge(
                window_pooled[["features", "head", "n", "r2", "rmse"]], on=["features", "head"], suffixes=("_ffp", "_window"))
            both["r2_change"] = both["r2_ffp"] - both["r2_window"]
            write_csv(both, tmp / "footprint_vs_window.csv")
            seconds["footprint comparison"] = time.perf_counter() - t
        banner = "**SYNTHETIC DATA**\n\n" if synthetic else ""
        (tmp / "metrics_pooled.md").write_text(f"{banner}# Pooled out-of-fold skill (GPP, gC m-2 d-1)\n\n{md_table(pooled)}\n",
                                               encoding="utf-8")
        (tmp / "metrics_per_site.md").write_text(f"{banner}# Per-site out-of-fold skill (GPP, gC m-2 d-1)\n\n{md_table(per_site)}\n",
                                                 encoding="utf-8")
        write_csv(days_lost, tmp / "days_lost.csv")
        write_csv(skipped, tmp / "skipped_sites.csv")
        for fs, c in coefs.items():
            write_csv(c, tmp / f"coefficients_{_safe(fs)}.csv")
            write_csv(coefficient_summary(c), tmp / f"coefficients_{_safe(fs)}_summary.csv")
        write_analysis_tables(tmp, analysis_tables(stems, parts, eight_day))
        seconds["total_before_report"] = time.perf_counter() - t_start
        prov = {
            "command": "fit-gpp",
            "synthetic": synthetic,
            "versions": package_versions(),
            "inputs": {"sites_csv": {"path": str(Path(sites_csv).resolve()), "sha256": sha256_of(sites_csv)},
                       **{str(p): {"sha256": sha256_of(p)} for p in dict.fromkeys(info["inputs"])}},
            "seeds": {"seed": seed},
            "options": {"feature_sets": feature_sets, "heads": heads, "cv": cv, "folds": folds, "window_px": window_px,
                        "qc_min": qc_min, "max_gap_days": max_gap_days, "n_jobs": n_jobs, "workers": workers, "interpret": interpret,
                        "gpp_method": gpp_method, "qc_missing": qc_missing, "strict": strict, "paired": paired,
                        "test_years": test_years, "train_years": train_years, "max_days_to_obs": max_days_to_obs,
                        "footprint": footprint, "baselines": baselines, "allow_shared_flux": allow_shared_flux,
                        "keep_models": keep_models if isinstance(keep_models, bool) else list(keep_models)},
            "kept_models": [k["model"] for k in kept],
            "baselines": baseline_info,
            "reference_model": list(reference) if reference else None,
            "gpp_target": GPP_TARGET_RULES[gpp_method],
            "phenology_rule": {"min_coverage": MIN_COVERAGE, "max_gap_days": MAX_GAP_DAYS},
            "skipped_sites": skipped.to_dict(orient="records"),
            "dropped_columns": info["dropped_columns"],
            "interpreted_feature_set": interpreted,
            "feature_columns": set_cols,
            "sites": sites[[c for c in ("site_id", "lat", "lon", "igbp") if c in sites.columns]].astype(str).to_dict(orient="records"),
            "seconds": seconds,
            "units": {"GPP": "gC m-2 d-1", "PAR": "mol m-2 d-1", "TA": "degC", "SW_IN": "W m-2", "VPD": "hPa",
                      "SW_IN_POT": "W m-2 (daily mean, top of atmosphere)"},
        }
        (tmp / "provenance.json").write_text(json.dumps(prov, indent=2, default=str), encoding="utf-8")
        if report:
            t = time.perf_counter()
            build_report(tmp, render=section_renderer(workers))
            seconds["report"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_start
    return RunResult(out, predictions, pooled, per_site, days_lost, synthetic, seconds, skipped)
