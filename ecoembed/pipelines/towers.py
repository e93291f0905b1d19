"""``ecoembed pipeline``: towers -> (fetch) -> embed each site's chips -> fit-gpp, one resumable command.

Output folder layout (each step resumes on its own):

* ``imagery/``: ``ecoembed fetch`` output, only when sites lack ``s2_path`` and
  fetching is allowed (verified finished cubes are kept on a re-run);
* ``embeddings/<site>_emb.zarr``: daily embedding cubes (``ecoembed embed``; a
  complete cube made with the same inputs and model is kept, an unfinished one
  resumes block by block);
* ``sites_embedded.csv``: the sites with ``features_path`` added (absolute
  paths, written by this command from its own validated inputs);
* ``run/``: the ``fit-gpp`` run (published atomically; kept on a re-run, so a
  finished pipeline re-runs in seconds; ``overwrite`` refits it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ecoembed.embed.pipeline import embed
from ecoembed.errors import CubeError, EcoembedError, InputError
from ecoembed.io_utils import atomic_write_text, check_output_location
from ecoembed.outputs import check_no_overlap
from ecoembed.pipelines.fit_gpp import RunResult, load_sites, run_fit_gpp
from ecoembed.sources.embedding_cube import open_embeddings
from fluxnet import split_path_list


@dataclass
class PipelineResult:
    """Outcome of :func:`run_pipeline`: paths, what each step did, and the fit-gpp result (None when kept)."""

    out_dir: Path
    sites_csv: Path
    run_dir: Path
    fetched: bool
    embedded: list[str]
    embeddings_kept: list[str]
    skipped: dict[str, str]
    fit: RunResult | None


def _paths(site: pd.Series, column: str) -> list[str]:
    value = site.get(column)
    return split_path_list(value) if isinstance(value, str) and value.strip() else []


def _complete_cube(path: Path) -> bool:
    """Whether ``path`` is a complete embedding cube (an unfinished or unreadable one is not)."""
    if not path.exists():
        return False
    try:
        with open_embeddings(path):
            return True
    except CubeError:
        return False


def run_pipeline(sites_csv: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, fetch: bool = False,
                 start: str | None = None, end: str | None = None, catalog: str = "earth-search", size_px: int = 64,
                 sensors: Sequence[str] | None = None, model: str | os.PathLike[str] | None = None,
                 fit_options: dict[str, Any] | None = None, overwrite: bool = False, progress: bool = True) -> PipelineResult:
    """Fetch (if asked and needed), embed every site's chips and cross-validate GPP heads, into ``out_dir``.

    Args:
        sites_csv: ``site_id, lat, lon, flux_path[, s2_path, s1_path, igbp, ...]`` (paths relative to it).
        out_dir: the pipeline's folder (see the module docstring); created, resumed, never outside.
        fetch: fetch S2/S1 chips from ``catalog`` for sites without ``s2_path`` (needs ``start``/``end``).
        start, end: the fetch period (YYYY-MM-DD).
        catalog, size_px, sensors: passed to :func:`ecoembed.sources.fetch.fetch_sites`.
        model: fusion checkpoint for ``embed`` (default: the shipped one).
        fit_options: keyword arguments of :func:`~ecoembed.pipelines.fit_gpp.run_fit_gpp` (features, heads, cv, ...).
        overwrite: refit ``run/`` and re-embed every site (fetched cubes are kept when verified).
        progress: progress bars.

    Raises:
        InputError: sites without imagery and fetching not allowed, or no site left to embed.
    """
    out = Path(out_dir)
    src = Path(sites_csv)
    check_no_overlap(out, [src])  # the shared rule: never an output that holds (and could overwrite) the sites file
    check_output_location(out)
    sites = load_sites(src)
    missing = [str(s) for s, p in zip(sites["site_id"], sites.get("s2_path", pd.Series([None] * len(sites))), strict=True)
               if not (isinstance(p, str) and p.strip())]
    fetched = False
    if missing:
        if not fetch:
            raise InputError(f"{len(missing)} site(s) have no s2_path (first: {missing[0]}); add the imagery paths to "
                             f"{src.name} or pass --fetch --start --end to fetch chips from a STAC catalog")
        if not start or not end:
            raise InputError("--fetch needs --start and --end (YYYY-MM-DD): the period of the imagery to fetch")
        from ecoembed.sources.fetch import fetch_sites

        res = fetch_sites(src, out / "imagery", start=start, end=end, catalog=catalog, size_px=size_px,
                          sensors=list(sensors) if sensors else None, overwrite=False, progress=progress)
        sites = load_sites(res.sites_csv, allow_absolute_paths=True)
        fetched = True
    emb_dir = out / "embeddings"
    emb_dir.mkdir(parents=True, exist_ok=True)
    embedded, kept, skipped, features = [], [], {}, []
    for _, site in sites.iterrows():
        sid = str(site["site_id"])
        s2, s1 = _paths(site, "s2_path"), _paths(site, "s1_path")
        if not s2:
            skipped[sid] = "no Sentinel-2 imagery (fetch found no items, or s2_path is empty)"
            features.append("")
            continue
        target = emb_dir / f"{''.join(c if c.isalnum() or c in '-_' else '_' for c in sid)}_emb.zarr"
        if _complete_cube(target) and not overwrite:
            kept.append(sid)
            features.append(str(target.resolve()))
            continue
        try:
            embed(s2, target, s1=s1 or None, model=model, overwrite=overwrite, progress=progress)
        except EcoembedError as exc:
            skipped[sid] = f"embed failed: {exc}"
            features.append("")
            print(f"warning: site {sid} skipped: {exc}", file=sys.stderr)
            continue
        embedded.append(sid)
        features.append(str(target.resolve()))
    sites = sites.assign(features_path=features)
    sites = sites[sites["features_path"] != ""].reset_index(drop=True)
    if sites.empty:
        raise InputError(f"no site could be embedded ({'; '.join(f'{k}: {v}' for k, v in list(skipped.items())[:3])})")
    for col in [c for c in sites.columns if c.endswith("_path") or "_path_" in c]:
        sites[col] = sites[col].map(lambda v: v if not isinstance(v, str) else ";".join(str(Path(p).resolve()) for p in
                                                                                         split_path_list(v)))
    sites_out = out / "sites_embedded.csv"
    atomic_write_text(sites_out, sites.to_csv(index=False))
    run_dir = out / "run"
    fit = None
    if overwrite or not (run_dir / "provenance.json").is_file():
        opts = dict(fit_options or {})
        opts.setdefault("feature_sets", None)
        fit = run_fit_gpp(sites_out, run_dir, overwrite=overwrite or run_dir.exists(), progress=progress,
                          allow_absolute_paths=True, **opts)
    return PipelineResult(out, sites_out, run_dir, fetched, embedded, kept, skipped, fit)
