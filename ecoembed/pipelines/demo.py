"""The embedded default: a synthetic multi-site GPP study, end to end, without any download.

``ecoembed demo --out DIR`` runs the whole product on synthetic towers:

1. :func:`ecoembed.sources.synthetic.write_demo_sites` writes ``n_sites`` small
   synthetic scenes (Sentinel-2 + Sentinel-1 cubes on a 10 m UTM grid) and their
   tower GPP (light-use efficiency: GPP = ε · fAPAR · PAR · f(T) · f(VPD), site-specific ε
   and phenology) as FLUXNET2015 SUBSET DD files, plus ``sites.csv``;
2. :func:`ecoembed.embed.pipeline.embed` turns each scene into daily 10 m embeddings with the
   shipped default model, once with both sensors (fused) and once S2-only;
3. :func:`ecoembed.pipelines.fit_gpp.run_fit_gpp` fits the regression heads against the
   baselines (light-use efficiency with a fitted and a fixed MOD17 head, raw bands, NDVI/NIRv,
   meteorology only) with leave-one-site-out cross-validation on paired site-days and writes
   the report; the S2-only embeddings enter the same run as the variant ``embeddings:s2only``
   (sites.csv column ``features_path_s2only``), so fused and S2-only are compared on the same days.

Everything written is labelled synthetic (file names, ``synthetic`` columns and
attributes, the report banner). Swapping in real data means giving ``fit-gpp`` a
real ``sites.csv``: nothing else changes.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ecoembed.embed.pipeline import embed
from ecoembed.errors import InputError, OutputExistsError
from ecoembed.gpp.options import DEFAULT_HEADS
from ecoembed.io_utils import atomic_write_text
from ecoembed.pipelines.fit_gpp import run_fit_gpp
from ecoembed.report.common import md_table
from ecoembed.sources.synthetic import write_demo_sites

DEFAULT_FEATURE_SETS: tuple[str, ...] = ("embeddings", "embeddings:s2only", "embeddings+meteo", "bands", "indices",
                                         "indices_x_par", "meteo")
"""Feature sets of the demo run: fused and S2-only embeddings against the classic baselines (the LUE baselines are added
by ``fit-gpp`` itself)."""


@dataclass
class DemoResult:
    """Where the demo wrote things and how long it took (seconds)."""

    out_dir: Path
    sites_csv: Path
    run_dir: Path
    summary_md: Path
    seconds: dict[str, float] = field(default_factory=dict)
    pooled: pd.DataFrame | None = None
    fused_vs_s2only: pd.DataFrame | None = None


def _embed_sites(sites_csv: Path, model: str | None, progress: bool) -> Path:
    """Embed every site (fused S1+S2 and S2-only).

    Rewrites ``sites.csv`` with ``features_path`` (fused) and ``features_path_s2only``.
    """
    folder = sites_csv.parent
    sites = pd.read_csv(sites_csv)
    fused_paths, s2only_paths = [], []
    for row in sites.itertuples(index=False):
        s2 = folder / str(row.s2_path)
        s1 = folder / str(row.s1_path)
        fused = Path(f"{row.site_id}_embedding_fused_synthetic.zarr")
        s2only = Path(f"{row.site_id}_embedding_s2only_synthetic.zarr")
        embed(s2, folder / fused, s1=s1, model=model, progress=progress)
        embed(s2, folder / s2only, s1=None, model=model, progress=progress)
        fused_paths.append(str(fused))
        s2only_paths.append(str(s2only))
    out = folder / "sites.csv"
    atomic_write_text(out, sites.assign(features_path=fused_paths, features_path_s2only=s2only_paths).to_csv(index=False))
    return out


def fused_vs_variant(pooled: pd.DataFrame, variant: str, heads: Sequence[str]) -> pd.DataFrame:
    """Pooled r2/RMSE of ``embeddings`` beside an embedding variant, per head (empty when a run lacks either)."""
    fused = pooled[pooled["features"] == "embeddings"].set_index("head")
    other = pooled[pooled["features"] == variant].set_index("head")
    hs = [h for h in heads if h in fused.index and h in other.index]
    return pd.DataFrame({
        "head": hs,
        "r2 fused S1+S2": fused.loc[hs, "r2"].astype(float).to_numpy(),
        "r2 S2-only": other.loc[hs, "r2"].astype(float).to_numpy(),
        "RMSE fused (gC m-2 d-1)": fused.loc[hs, "rmse"].astype(float).to_numpy(),
        "RMSE S2-only (gC m-2 d-1)": other.loc[hs, "rmse"].astype(float).to_numpy(),
    })


MAP_FEATURES = "embeddings"
"""Feature set whose kept models the demo maps (the fused embedding alone: every pixel has it)."""


def _map_one_scene(sites_csv: Path, run_dir: Path, map_dir: Path, *, progress: bool) -> None:
    """predict-gpp on the first site's fused cube into ``map_dir``; its maps go into the run's report (``maps.json``)."""
    from ecoembed.pipelines.predict_gpp import predict_gpp
    from ecoembed.report.html import build_report

    sites = pd.read_csv(sites_csv)
    cube = sites_csv.parent / str(sites["features_path"].iloc[0])
    res = predict_gpp(run_dir, cube, map_dir, features=MAP_FEATURES, progress=progress)
    figures = {}
    for name, caption in (("gpp_mean.png", f"SYNTHETIC scene of site {sites['site_id'].iloc[0]}: mean daily GPP (gC m-2 d-1) "
                                           f"mapped at 10 m with the kept model {res.model}; triangle: the tower"),
                          ("gpp_uncertainty.png", "Mean width of the 90 % split-conformal interval (gC m-2 d-1) of that map")):
        target = f"map_{name}"
        shutil.copyfile(map_dir / "figures" / name, run_dir / "figures" / target)
        figures[target] = caption
    atomic_write_text(run_dir / "maps.json", json.dumps([{"folder": os.path.relpath(map_dir, run_dir), "model": res.model,
                                                          "figures": figures}], indent=2))
    build_report(run_dir)


def _pooled(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "metrics_pooled.csv")


def _summary_markdown(res: DemoResult, n_sites: int, size_px: int, seed: int) -> str:
    assert res.pooled is not None and res.fused_vs_s2only is not None
    cols = [c for c in ("features", "head", "n", "r2", "r2_lo", "r2_hi", "nse", "rmse", "kge") if c in res.pooled.columns]
    lines = [
        "# ecoembed demo — SYNTHETIC DATA",
        "",
        f"{n_sites} synthetic towers ({size_px}×{size_px} px chips at 10 m, seed {seed}); tower GPP from a",
        "light-use-efficiency process (GPP = ε · fAPAR · PAR · f(T) · f(VPD)). Not real observations.",
        "",
        "## Leave-one-site-out skill (pooled over sites; GPP in gC m-2 d-1)",
        "",
        md_table(res.pooled[cols]),
        "",
        "## Fused (S1+S2) vs S2-only embeddings (LOSO, pooled, same site-days)",
        "",
        md_table(res.fused_vs_s2only),
        "",
        "## Wall time (s)",
        "",
        "| step | seconds |",
        "|---|---|",
        *[f"| {k} | {v:.1f} |" for k, v in res.seconds.items()],
        "",
        f"Full report: `{res.run_dir.name}/index.html`; GPP map of one scene (kept model, 90 % intervals): `map/index.html`.",
        "",
    ]
    return "\n".join(lines)


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    n_sites: int = 6,
    size_px: int = 16,
    seed: int = 0,
    feature_sets: Sequence[str] = DEFAULT_FEATURE_SETS,
    heads: Sequence[str] = DEFAULT_HEADS,
    model: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> DemoResult:
    """Run the synthetic end-to-end demo into ``out_dir``.

    Args:
        out_dir: output folder (``data/`` with the synthetic inputs and embeddings,
            ``run/`` with the fit-gpp report, ``demo_summary.md``).
        n_sites: synthetic towers (>= 3 so that leave-one-site-out means something).
        size_px: chip edge of each synthetic scene (pixels of 10 m).
        seed: seed of the scenes and the heads.
        feature_sets, heads: what the main run compares.
        model: fusion checkpoint (default: the shipped default).
        overwrite: replace an existing non-empty ``out_dir``.
        progress: progress bars.

    Returns:
        :class:`DemoResult` with paths, timings and the pooled metrics.

    Raises:
        OutputExistsError: ``out_dir`` is not empty and ``overwrite`` is false.
    """
    out = Path(out_dir)
    if n_sites < 3:
        raise InputError(f"n_sites={n_sites}: the demo needs at least 3 synthetic sites for leave-one-site-out")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{out} exists and is not empty; choose another --out or pass --overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    sites_csv = Path(write_demo_sites(out / "data", n_sites=n_sites, size_px=size_px, seed=seed, progress=progress))
    seconds["synthetic scenes"] = time.perf_counter() - t0
    t = time.perf_counter()
    fused_csv = _embed_sites(sites_csv, model, progress)
    seconds["embeddings (fused + S2-only)"] = time.perf_counter() - t
    t = time.perf_counter()
    run_dir = out / "run"
    mapped = [fs for fs in feature_sets if fs == MAP_FEATURES]
    run_fit_gpp(fused_csv, run_dir, feature_sets=list(feature_sets), heads=list(heads), cv="loso", seed=seed, progress=progress,
                keep_models=mapped)
    seconds["fit-gpp LOSO (paired, LUE baselines)"] = time.perf_counter() - t
    if mapped:
        t = time.perf_counter()
        _map_one_scene(fused_csv, run_dir, out / "map", progress=progress)
        seconds["predict-gpp map (one scene)"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0

    pooled = _pooled(run_dir)
    comparison = fused_vs_variant(pooled, "embeddings:s2only", list(heads))
    res = DemoResult(out, fused_csv, run_dir, out / "demo_summary.md", seconds, pooled, comparison)
    atomic_write_text(res.summary_md, _summary_markdown(res, n_sites, size_px, seed))
    atomic_write_text(out / "demo_summary.json", json.dumps({
        "synthetic": True, "n_sites": n_sites, "size_px": size_px, "seed": seed, "seconds": seconds,
        "fused_vs_s2only": comparison.to_dict(orient="records"),
    }, indent=2))
    return res
