"""The embedded default: a synthetic multi-site GPP study, end to end, without any download.

``ecoembed demo --out DIR`` runs the whole product on synthetic towers:

1. :func:`ecoembed.sources.synthetic.write_demo_sites` writes ``n_sites`` small
   synthetic scenes (Sentinel-2 + Sentinel-1 cubes on a 10 m UTM grid) and their
   tower GPP (light-use efficiency: GPP = ε · fAPAR · PAR · f(T) · f(VPD), site-specific ε
   and phenology) as FLUXNET2015 SUBSET DD files, plus ``sites.csv``;
2. :func:`ecoembed.embed.pipeline.embed` turns each scene into daily 10 m embeddings with the
   shipped default model, once with both sensors (fused) and once S2-only: the first site's fused
   cube over its whole scene (mapped in step 4, and shown in PCA colours), every other cube over the
   tower neighbourhood that fit-gpp reads (:func:`_tower_chip`; each pixel is embedded from its own
   series, so the towers' features do not depend on how much scene is around them);
3. :func:`ecoembed.pipelines.fit_gpp.run_fit_gpp` fits the regression heads against the
   baselines (light-use efficiency with a fitted and a fixed MOD17 head, raw bands, NDVI/NIRv,
   meteorology only) with leave-one-site-out cross-validation on paired site-days and writes
   every table; the S2-only embeddings enter the same run as the variant ``embeddings:s2only``
   (sites.csv column ``features_path_s2only``), so fused and S2-only are compared on the same days;
4. :func:`ecoembed.pipelines.predict_gpp.predict_gpp` maps the first scene with the kept embedding
   models, and the report is drawn once, with the map in it.

Independent steps (the cubes, the site joins, the models' cross-validation beside the
interpretation, the analysis tables, the report's sections) run on one worker process per core
(:mod:`ecoembed.pipelines.parallel`, one thread each); the numbers do not depend on it.

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

import numpy as np
import pandas as pd
import xarray as xr

from ecoembed.embed.pipeline import embed
from ecoembed.errors import InputError, OutputExistsError
from ecoembed.gpp.join import window_indices
from ecoembed.gpp.options import DEFAULT_HEADS, DEFAULT_WINDOW_PX
from ecoembed.io_utils import atomic_write_text
from ecoembed.pipelines.fit_gpp import run_fit_gpp
from ecoembed.pipelines.parallel import Call, default_workers, run_calls, section_renderer
from ecoembed.report.common import md_table
from ecoembed.report.html import build_report
from ecoembed.sources.local import save_cube
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
    n_tower_chips: int = 0
    """Embedding cubes made from tower chips (:func:`_tower_chip`) instead of the whole scene."""
    pooled: pd.DataFrame | None = None
    fused_vs_s2only: pd.DataFrame | None = None


TOWER_CHIP_MARGIN_PX = 1
"""Pixels kept around the tower window (:data:`~ecoembed.gpp.options.DEFAULT_WINDOW_PX`) in the tower chips embedded
for sites that are not mapped."""


def _tower_chip(folder: Path, site: str, s2: Path, s1: Path, lat: float, lon: float) -> tuple[Path, Path]:
    """The S2 and S1 cubes cropped to the tower window plus :data:`TOWER_CHIP_MARGIN_PX` (the same pixels, times, attrs).

    The tower features of fit-gpp average only the window around the tower, and the encoder embeds every pixel
    from that pixel's own series, so a cube embedded from this chip gives the tower exactly what the whole
    scene would; written as ``<site>/s2_tower_chip.nc`` and ``s1_tower_chip.nc``.
    """
    with xr.open_dataset(s2) as a, xr.open_dataset(s1) as b:
        rows, cols, _ = window_indices(a, lat, lon, DEFAULT_WINDOW_PX + 2 * TOWER_CHIP_MARGIN_PX, source=str(s2))
        if not (np.array_equal(a["x"].values, b["x"].values) and np.array_equal(a["y"].values, b["y"].values)):
            raise InputError(f"site {site}: the synthetic S1 cube is not on the S2 grid")
        out2, out1 = folder / site / "s2_tower_chip.nc", folder / site / "s1_tower_chip.nc"
        save_cube(a.isel(y=rows, x=cols).load(), out2)
        save_cube(b.isel(y=rows, x=cols).load(), out1)
    return out2, out1


def _embed_one(s2: Path, out: Path, *, s1: Path | None, chip: tuple[Path, Path] | None, model: str | None,
               progress: bool) -> bool:
    """Embed ``s2`` (+ ``s1``) into ``out``, from the tower ``chip`` cubes when given; whether the chip was used.

    A chip that cannot be embedded on its own (no valid S2 acquisition near the span's ends inside it) falls
    back to the whole scene.
    """
    if chip is not None:
        try:
            embed(chip[0], out, s1=chip[1] if s1 is not None else None, model=model, progress=progress)
            return True
        except InputError:
            shutil.rmtree(out, ignore_errors=True)
    embed(s2, out, s1=s1, model=model, progress=progress)
    return False


def _embed_sites(sites_csv: Path, model: str | None, progress: bool, workers: int = 1) -> tuple[Path, int]:
    """Embed every site (fused S1+S2 and S2-only), the cubes side by side on ``workers`` processes.

    The first site's fused cube covers its whole scene (the demo maps it and shows its PCA colours); the
    other cubes cover the tower neighbourhood only (:func:`_tower_chip`), all fit-gpp reads from them.
    Rewrites ``sites.csv`` with ``features_path`` (fused) and ``features_path_s2only``; returns it and the
    number of cubes embedded from tower chips.
    """
    folder = sites_csv.parent
    sites = pd.read_csv(sites_csv)
    fused_paths, s2only_paths = [], []
    calls: list[Call] = []
    for i, (_, row) in enumerate(sites.iterrows()):
        s2 = folder / str(row["s2_path"])
        s1 = folder / str(row["s1_path"])
        chip = _tower_chip(folder, str(row["site_id"]), s2, s1, float(row["lat"]), float(row["lon"]))
        fused = Path(f"{row['site_id']}_embedding_fused_synthetic.zarr")
        s2only = Path(f"{row['site_id']}_embedding_s2only_synthetic.zarr")
        bar = progress and workers <= 1
        calls.append((_embed_one, (s2, folder / fused), {"s1": s1, "chip": None if i == 0 else chip, "model": model,
                                                         "progress": bar}))
        calls.append((_embed_one, (s2, folder / s2only), {"s1": None, "chip": chip, "model": model, "progress": bar}))
        fused_paths.append(str(fused))
        s2only_paths.append(str(s2only))
    chips = sum(run_calls(calls, workers=workers, desc="embed sites" if progress and workers > 1 else None))
    out = folder / "sites.csv"
    atomic_write_text(out, sites.assign(features_path=fused_paths, features_path_s2only=s2only_paths).to_csv(index=False))
    return out, chips


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

    sites = pd.read_csv(sites_csv)
    cube = sites_csv.parent / str(sites["features_path"].iloc[0])
    res = predict_gpp(run_dir, cube, map_dir, features=MAP_FEATURES, progress=progress)
    figures = {}
    (run_dir / "figures").mkdir(exist_ok=True)
    for name, caption in (("gpp_mean.png", f"SYNTHETIC scene of site {sites['site_id'].iloc[0]}: mean daily GPP (gC m-2 d-1) "
                                           f"mapped at 10 m with the kept model {res.model}; triangle: the tower"),
                          ("gpp_uncertainty.png", "Mean width of the 90 % split-conformal interval (gC m-2 d-1) of that map")):
        target = f"map_{name}"
        shutil.copyfile(map_dir / "figures" / name, run_dir / "figures" / target)
        figures[target] = caption
    atomic_write_text(run_dir / "maps.json", json.dumps([{"folder": os.path.relpath(map_dir, run_dir), "model": res.model,
                                                          "figures": figures}], indent=2))


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
        f"Embedded: {2 * n_sites - res.n_tower_chips} whole scene(s) (the mapped site's fused cube) and "
        f"{res.n_tower_chips} tower neighbourhoods of {DEFAULT_WINDOW_PX + 2 * TOWER_CHIP_MARGIN_PX}×"
        f"{DEFAULT_WINDOW_PX + 2 * TOWER_CHIP_MARGIN_PX} px (all the towers' {DEFAULT_WINDOW_PX}×{DEFAULT_WINDOW_PX} px "
        "windows read; each pixel is embedded from its own series, so the towers get the same values).",
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
    workers: int | None = None,
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
        workers: processes (one thread each) for the independent steps: the embedding cubes, the
            site joins, the models' cross-validation beside the interpretation, the analysis tables
            and the report's sections (default: the machine's usable cores; 1: all in this process).
            The results do not depend on it.

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
    n_workers = default_workers() if workers is None else max(1, int(workers))
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    sites_csv = Path(write_demo_sites(out / "data", n_sites=n_sites, size_px=size_px, seed=seed, progress=progress))
    seconds["synthetic scenes"] = time.perf_counter() - t0
    t = time.perf_counter()
    fused_csv, n_chips = _embed_sites(sites_csv, model, progress, workers=n_workers)
    seconds["embeddings (fused + S2-only)"] = time.perf_counter() - t
    t = time.perf_counter()
    run_dir = out / "run"
    mapped = [fs for fs in feature_sets if fs == MAP_FEATURES]
    # the report is drawn once, below, when the map is in (fit-gpp alone draws it at its end)
    fit = run_fit_gpp(fused_csv, run_dir, feature_sets=list(feature_sets), heads=list(heads), cv="loso", seed=seed,
                      progress=progress, keep_models=mapped, workers=n_workers, report=False)
    seconds["fit-gpp LOSO (paired, LUE baselines)"] = time.perf_counter() - t
    if "interpret" in fit.seconds:
        seconds["of which interpretation (beside the CV)"] = fit.seconds["interpret"]
    try:
        if mapped:
            t = time.perf_counter()
            _map_one_scene(fused_csv, run_dir, out / "map", progress=progress)
            seconds["predict-gpp map (one scene)"] = time.perf_counter() - t
    finally:  # the run keeps its report even when the map fails
        t = time.perf_counter()
        build_report(run_dir, render=section_renderer(n_workers))
        seconds["report (figures, HTML)"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0

    pooled = _pooled(run_dir)
    comparison = fused_vs_variant(pooled, "embeddings:s2only", list(heads))
    res = DemoResult(out, fused_csv, run_dir, out / "demo_summary.md", seconds, n_chips, pooled, comparison)
    atomic_write_text(res.summary_md, _summary_markdown(res, n_sites, size_px, seed))
    atomic_write_text(out / "demo_summary.json", json.dumps({
        "synthetic": True, "n_sites": n_sites, "size_px": size_px, "seed": seed, "seconds": seconds,
        "embedding_cubes": {"whole_scene": 2 * n_sites - n_chips, "tower_chip": n_chips,
                            "tower_chip_px": DEFAULT_WINDOW_PX + 2 * TOWER_CHIP_MARGIN_PX},
        "fused_vs_s2only": comparison.to_dict(orient="records"),
    }, indent=2))
    return res
