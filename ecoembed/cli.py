"""The ``ecoembed`` command. Thin: parse options, call the pipelines and library entry points.

Every subcommand has ``--help``. Errors caused by input (``EcoembedError``,
``fluxnet.FluxDataError``) are printed as one line, without a traceback, and
exit with status 2.

Each command imports its pipeline inside its body: the pipelines pull torch,
xgboost, sklearn and matplotlib (about 4 s), which ``ecoembed --help`` and an
option error must not wait for. Everything the options need (choices,
defaults) comes from light modules imported here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from ecoembed import __version__
from ecoembed.errors import EcoembedError, InputError
from ecoembed.gpp.options import CV_SCHEMES, DEFAULT_FOLDS, DEFAULT_HEADS, DEFAULT_WINDOW_PX, FEATURE_SETS, HEADS
from ecoembed.outputs import describe_os_error, guarded_output, regular_input
from fluxnet import DEFAULT_QC_MIN, GPP_METHODS, QC_MISSING, FluxDataError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ecoembed")
def cli() -> None:
    r"""ecoembed: GPP modelling from Sentinel-1/Sentinel-2 embeddings.

    \b
    Typical use:
      ecoembed demo --out demo_out              # synthetic end-to-end run, no download
      ecoembed fit-gpp --sites sites.csv --out runs/gpp
      ecoembed plot-seasonal --run runs/gpp --site DE-Tha
    """


# --- output safety: every writing command declares its output and its inputs --------------------

_F = TypeVar("_F", bound=Callable[..., Any])

RESUMABLE: frozenset[str] = frozenset({"pretrain", "embed", "reconstruct", "predict-gpp", "fetch", "pipeline"})
"""Commands whose interrupted runs resume when re-run (the others publish nothing until they finish)."""


def _site_inputs(sites_csv: Path | None) -> list[Path]:
    """The sites file and every path it names (flux files, cubes, tables), for the output-overlap check."""
    if sites_csv is None:
        return []
    from fluxnet import read_sites_csv, split_path_list
    from fluxnet.sites import is_path_column

    try:
        table = read_sites_csv(sites_csv, allow_absolute_paths=True, allow_shared_flux=True)  # only the paths are wanted
    except FluxDataError:
        return [sites_csv, sites_csv.parent]  # the command itself reports what is wrong with the file
    paths: list[Path] = [sites_csv]
    for column in [c for c in table.columns if is_path_column(c)]:
        for p in (Path(p) for cell in table[column] for p in split_path_list(cell)):
            if os.path.lexists(p):  # a missing file is the command's to report (it may skip that site)
                regular_input(p, what=f"{sites_csv.name} {column}")  # a FIFO or device would block its reader
            paths.append(p)
    return paths


def writes(out: str, inputs: tuple[str, ...] = (), sites: str | None = None,
           default_out: Callable[[dict[str, Any]], Path] | None = None) -> Callable[[_F], _F]:
    """Decorate a command that writes its option ``out``.

    Its inputs (options ``inputs``, the sites file ``sites`` and every path it
    names) must be regular files or folders; the output must not overlap any of
    them nor be a symlink, and it is locked against a second writer for the
    command's life (:mod:`ecoembed.outputs`).
    """
    def wrap(fn: _F) -> _F:
        import functools

        @functools.wraps(fn)
        def run(**kwargs: Any) -> Any:
            given: list[Path] = []
            for name in inputs:
                value = kwargs.get(name)
                for v in (value if isinstance(value, tuple | list) else [value]):
                    if v is not None:
                        given.append(regular_input(v, what=f"--{name.replace('_', '-')}"))
            site_file = kwargs.get(sites) if sites else None
            target = kwargs.get(out)
            if target is None and default_out is not None:
                target = kwargs[out] = default_out(kwargs)
            with guarded_output(target, [*given, *_site_inputs(site_file)]):
                return fn(**kwargs)

        return cast(_F, run)

    return wrap


# --- commands are registered below, one function each; keep them thin -------------------------


@cli.command("pretrain")
@click.option("--stage", type=click.Choice(["encoder", "fusion"]), default="encoder", show_default=True,
              help="encoder: stage-1 self-supervised per-sensor encoder. fusion: stage 2 (see its own docs).")
@click.option("--sensor", type=click.Choice(["s2", "s1"]), help="Sensor of the stage-1 encoder (required with --stage encoder).")
@click.option("--data", "data", required=True, multiple=True, type=click.Path(path_type=Path),
              help="Sensor cube(s) (.nc/.zarr) to sample pixel series from; repeat the option for several cubes.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Checkpoint file (.safetensors); a <out>.log.csv per-epoch log is written beside it.")
@click.option("--epochs", default=10, show_default=True, help="Passes over all sampled pixels.")
@click.option("--batch-size", default=256, show_default=True, help="Pixel series per optimisation step.")
@click.option("--lr", default=2e-3, show_default=True, help="AdamW learning rate.")
@click.option("--seed", default=0, show_default=True, help="Random seed (python, numpy, torch, per-step masks).")
@click.option("--embed-dim", default=64, show_default=True, help="Embedding width (features per pixel series).")
@click.option("--d-model", default=64, show_default=True, help="Token width of the encoder.")
@click.option("--heads", default=4, show_default=True, help="Attention heads (must divide --d-model).")
@click.option("--max-pixels", type=int, help="Random subsample of pixels per cube [default: all].")
@click.option("--checkpoint-every", default=50, show_default=True, help="Steps between (atomic) checkpoints.")
@click.option("--target-top-fraction", type=float,
              help="Stage 1: reconstruct only this top fraction (by attention) of the hidden valid dates "
                   "(OmniSat's cloud guard) [default: 0.25 for s2, 1.0 for s1].")
@click.option("--contrastive-weight", type=float,
              help="Weight of the InfoNCE term: temporal (stage 1) or cross-modal S1 vs S2 (fusion) "
                   "[default: 0.1 for --stage encoder, 0.2 for --stage fusion].")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from --out if it exists (same sensor/architecture/data), or start afresh and replace it.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@writes("out", ("data",))
def pretrain_command(stage: str, sensor: str | None, data: tuple[Path, ...], out: Path, epochs: int, batch_size: int, lr: float,
                     seed: int, embed_dim: int, d_model: int, heads: int, max_pixels: int | None, checkpoint_every: int,
                     target_top_fraction: float | None, contrastive_weight: float | None, resume: bool, quiet: bool) -> None:
    """Self-supervised pretraining: a sensor's stage-1 encoder, or the stage-2 fusion network.

    Stage 1: masked-date reconstruction (OmniSat-style; S2 targets limited to
    valid, high-attention dates) + temporal InfoNCE. Fusion: multimodal masked
    reconstruction at held-out days + cross-modal InfoNCE on the shipped frozen
    encoders (--data: S2 and S1 cubes of the same scenes, paired in order).
    Writes a safetensors checkpoint atomically every --checkpoint-every steps;
    re-run the same command to resume after an interruption.
    """
    if stage == "fusion":
        stage1_only = {"--sensor": sensor, "--max-pixels": max_pixels, "--target-top-fraction": target_top_fraction}
        given = [name for name, value in stage1_only.items() if value is not None]
        if given:
            raise InputError(f"{', '.join(given)} apply to --stage encoder only; drop them for --stage fusion")
        from ecoembed.training.stage2 import FusionTrainConfig, pretrain_fusion_from_files

        weight = FusionTrainConfig().contrastive_weight if contrastive_weight is None else contrastive_weight
        res2 = pretrain_fusion_from_files(list(data), out, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, embed_dim=embed_dim,
                                          d_model=d_model, n_heads=heads, checkpoint_every=checkpoint_every,
                                          contrastive_weight=weight, resume=resume, progress=not quiet)
        last_losses = res2.history[-1] if res2.history else {}
        click.echo(f"wrote {res2.checkpoint} (weights sha256 {res2.weights_sha256[:16]}); losses {last_losses}")
        return
    if sensor is None:
        raise InputError("--sensor s2|s1 is required with --stage encoder")
    from ecoembed.training.stage1 import Stage1Config, pretrain_stage1

    cfg = Stage1Config(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, embed_dim=embed_dim, d_model=d_model, n_heads=heads,
                       max_pixels_per_cube=max_pixels, checkpoint_every=checkpoint_every,
                       attention_top_fraction=target_top_fraction,
                       contrastive_weight=0.1 if contrastive_weight is None else contrastive_weight)
    res = pretrain_stage1(sensor, list(data), out, cfg, resume=resume, progress=not quiet)
    last = res.epoch_log[-1] if res.epoch_log else {}
    click.echo(f"wrote {res.checkpoint} (weights sha256 {res.weights_sha256[:16]}); log {res.log_path}; "
               f"last epoch reconstruction MSE on masked valid dates {last.get('recon_mse_masked_valid', float('nan')):.4f}")


_S2_HELP = ("Sentinel-2 file (.nc/.zarr); repeat for several files of one scene (e.g. a 10 m and a 20 m file, merged "
            "on the 10 m grid). Any band subset with a visible and a NIR band.")
_S1_HELP = "Sentinel-1 file (.nc/.zarr), repeatable; resampled onto the S2 grid when coarser (optional)."
_VALUES_HELP = ("What the {} numbers are when the file's metadata does not say: {} "
                "[default: from units / scale_factor / product conventions / storage type].")


def _sensor_options(fn: Any) -> Any:
    """The input options shared by embed and reconstruct."""
    for option in reversed([
        click.option("--s2", "s2", required=True, multiple=True, type=click.Path(exists=True, path_type=Path), help=_S2_HELP),
        click.option("--s1", "s1", multiple=True, type=click.Path(exists=True, path_type=Path), help=_S1_HELP),
        click.option("--s2-values", type=click.Choice(["reflectance", "dn"]), help=_VALUES_HELP.format("S2", "reflectance | dn")),
        click.option("--s1-values", type=click.Choice(["db", "linear", "gfmap"]),
                     help=_VALUES_HELP.format("S1", "db | linear | gfmap (WorldCereal uint16)")),
        click.option("--s1-orbit", type=click.Choice(["ascending", "descending"]),
                     help="S1 orbit direction when the file does not record it (attribute, variable or file name)."),
        click.option("--model", type=click.Path(exists=True, path_type=Path), help="Fusion checkpoint [default: the shipped one]."),
        click.option("--lat", type=click.FloatRange(-90, 90),
                     help="Latitude (WGS84 degrees) of point-table inputs (.csv/.parquet series at one site) without lat/lon columns."),
        click.option("--lon", type=click.FloatRange(-180, 180), help="Longitude (WGS84 degrees) of point-table inputs; with --lat."),
        click.option("--start", help="First day, YYYY-MM-DD [default: first S2 date]."),
        click.option("--end", help="Last day, YYYY-MM-DD, inclusive [default: last S2 date]."),
        click.option("--chunk-px", default=64, show_default=True, help="Block edge in pixels (one dask task, one Zarr chunk)."),
        click.option("--overwrite", is_flag=True, help="Replace an existing output."),
    ]):
        fn = option(fn)
    return fn


def _point(lat: float | None, lon: float | None) -> tuple[float, float] | None:
    """(lat, lon) of point-table inputs, or None; one without the other is an input error."""
    if (lat is None) != (lon is None):
        raise InputError("--lat and --lon go together: give both (the site of a point-table input) or neither")
    return (lat, lon) if lat is not None and lon is not None else None


@cli.command("embed")
@_sensor_options
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output embedding cube, .zarr or .nc.")
@click.option("--encoding", type=click.Choice(["int16", "int8", "float32"]), default=None,  # = embedding_cube.ENCODINGS
              help="How embeddings are stored (read back as float32 by every ecoembed command): int16 = CF-packed steps of "
                   "1/32, max abs error 1/64 per component, ~25 bytes/pixel-day (~0.1 GB per km2 per year at 10 m); "
                   "int8 = per-pixel-day scale s, error <= s/2, ~34 bytes; float32 = lossless, ~194 bytes. [default: int16]")
@click.option("--int8", is_flag=True, help="Deprecated: the same as --encoding int8.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True,
              help="Where the model runs: cuda falls back to the CPU with a warning when no GPU is available; auto = cuda if "
                   "available. Recorded in the cube's attr 'device' (not part of the resume key).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run the blocks on a dask.distributed cluster: a scheduler address (tcp://host:8786, e.g. a dask-jobqueue "
                   "SLURMCluster's scheduler_address) or local:N (N worker processes on this machine). Workers must see "
                   "the input and output paths.")
@click.option("--allow-extrapolation", is_flag=True,
              help="Embed days more than 60 days beyond the valid S2 acquisitions (up to a year; flagged by the quality layers).")
@writes("out", ("s2", "s1", "model"))
def embed_command(s2: tuple[Path, ...], s1: tuple[Path, ...], s2_values: str | None, s1_values: str | None, s1_orbit: str | None,
                  model: Path | None, lat: float | None, lon: float | None, start: str | None, end: str | None, chunk_px: int,
                  overwrite: bool, out: Path, encoding: str | None, int8: bool, device: str, scheduler: str | None,
                  allow_extrapolation: bool) -> None:
    """Daily 10 m embedding cube (time, y, x, feature) from S2 [+ S1] files, with per-day quality layers.

    Resumable: re-run the same command after an interruption and completed
    blocks are skipped. Uses a dask.distributed cluster when one is active
    or named with --scheduler.
    """
    from ecoembed.embed.pipeline import embed, scheduler_client
    from ecoembed.sources.embedding_cube import DEFAULT_ENCODING

    if int8 and encoding not in (None, "int8"):
        raise InputError(f"--int8 (deprecated) means --encoding int8; it contradicts --encoding {encoding}")
    if int8:
        click.echo("warning: --int8 is deprecated; use --encoding int8", err=True)
    chosen = "int8" if int8 else encoding or DEFAULT_ENCODING
    with scheduler_client(scheduler):
        res = embed(list(s2), out, s1=list(s1) or None, model=model, s2_values=s2_values, s1_values=s1_values, s1_orbit=s1_orbit,
                    point=_point(lat, lon), start=start, end=end, chunk_px=chunk_px, encoding=chosen, device=device,
                    allow_extrapolation=allow_extrapolation, overwrite=overwrite)
    click.echo(
        f"wrote {res.path}: {res.n_days} days x {res.n_pixels} px ({res.encoding}, on {res.device}); blocks computed "
        f"{res.blocks_computed}, skipped {res.blocks_skipped}; {res.n_empty_pixels} px without any observation (NaN)"
    )
    if device == "cuda" and "cpu" in res.device:
        click.echo(f"warning: --device cuda: no GPU available, the blocks ran on: {res.device}", err=True)


@cli.command("reconstruct")
@_sensor_options
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output daily reflectance cube, .nc or .zarr.")
@writes("out", ("s2", "s1", "model"))
def reconstruct_command(s2: tuple[Path, ...], s1: tuple[Path, ...], s2_values: str | None, s1_values: str | None,
                        s1_orbit: str | None, model: Path | None, lat: float | None, lon: float | None, start: str | None,
                        end: str | None, chunk_px: int,
                        overwrite: bool, out: Path) -> None:
    """Cloud-free daily S2 reflectance (0-1) decoded from the fused embedding."""
    from ecoembed.embed.reconstruct import reconstruct_s2

    path = reconstruct_s2(list(s2), out, s1=list(s1) or None, model=model, s2_values=s2_values, s1_values=s1_values,
                          s1_orbit=s1_orbit, point=_point(lat, lon), start=start, end=end, chunk_px=chunk_px, overwrite=overwrite)
    click.echo(f"wrote {path}")


@cli.command("demo")
@click.option("--out", default="demo_out", show_default=True, type=click.Path(path_type=Path),
              help="Output folder: data/ (synthetic inputs, embeddings), run/ (report: run/index.html), demo_summary.md.")
@click.option("--sites", "n_sites", default=6, show_default=True, help="Number of synthetic towers (>= 3).")
@click.option("--size-px", default=16, show_default=True, help="Chip edge of each synthetic scene (10 m pixels).")
@click.option("--seed", default=0, show_default=True, help="Seed of the scenes and the heads.")
@click.option("--head", "heads", multiple=True, type=click.Choice(HEADS),
              help="Regression head(s) [default: all three].")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty --out folder.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Worker processes (one thread each) for the independent steps [default: one per CPU core]; the numbers "
                   "do not depend on it.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@writes("out")
def demo_command(out: Path, n_sites: int, size_px: int, seed: int, heads: tuple[str, ...], overwrite: bool, quiet: bool,
                 workers: int | None) -> None:
    """End-to-end demo on SYNTHETIC towers (no download, a few minutes on 2 cores).

    Writes synthetic S2/S1 scenes and light-use-efficiency tower GPP, embeds them
    daily at 10 m with the shipped default model, fits linear/xgboost/MLP heads
    against raw-band, NDVI/NIRv and meteorology-only baselines with
    leave-one-site-out cross-validation, and writes the report.
    """
    from ecoembed.pipelines.demo import run_demo

    res = run_demo(out, n_sites=n_sites, size_px=size_px, seed=seed, heads=heads or DEFAULT_HEADS,
                   overwrite=overwrite, progress=not quiet, workers=workers)
    click.echo(res.summary_md.read_text(encoding="utf-8"))
    click.echo(f"report: {res.run_dir / 'index.html'}   (SYNTHETIC DATA; total {res.seconds['total']:.0f} s)")


@cli.command("plot-seasonal")
@click.option("--run", "run_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A fit-gpp output folder (holds the out-of-fold predictions).")
@click.option("--site", help="One site_id [default: every site, one row each (up to 12)].")
@click.option("--features", help="Feature set of the model to show [default: best pooled daily NSE].")
@click.option("--head", help="Head of the model to show [default: best pooled daily NSE].")
@click.option("--out", type=click.Path(path_type=Path), help="PNG to write [default: <run>/figures/seasonal_<site|all>.png].")
@click.option("--overwrite", is_flag=True, help="Replace an existing PNG.")
def plot_seasonal_command(run_dir: Path, site: str | None, features: str | None, head: str | None, out: Path | None,
                          overwrite: bool) -> None:
    """Seasonal GPP from saved predictions: observed vs predicted daily series, mean seasonal cycle and spread."""
    from ecoembed.report.common import best_model, is_synthetic, load_oof, read_table
    from ecoembed.report.figures import plot_seasonal

    oof = load_oof(run_dir)
    pooled = read_table(run_dir, "metrics_pooled.csv")
    if features is None or head is None:
        if pooled is None:
            raise InputError(f"{run_dir} has no metrics_pooled.csv to choose the best model from; pass --features and --head")
        best_features, best_head = best_model(pooled)
        features, head = features or best_features, head or best_head
    target = out or run_dir / "figures" / f"seasonal_{site or 'all'}.png"
    if target.exists() and not overwrite:
        from ecoembed.errors import OutputExistsError

        raise OutputExistsError(f"{target} exists; pass --overwrite to replace it or choose another --out")
    path = plot_seasonal(oof, target, features=features, head=head, per_site=read_table(run_dir, "metrics_per_site.csv"),
                         site=site, synthetic=is_synthetic(run_dir, oof))
    click.echo(f"wrote {path}")


@cli.command("fit-gpp")
@click.option("--sites", "sites_csv", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="sites.csv: site_id,lat,lon[,igbp,flux_path,features_path,s2_path,s1_path,synthetic]; paths relative to it.")
@click.option("--out", default=None, type=click.Path(path_type=Path),
              help="Output run folder (must be absent or empty) [default: runs/<sites file stem>].")
@click.option("--features", "feature_sets", multiple=True,
              help=f"Feature set, repeatable: {' | '.join(FEATURE_SETS)}, combinable with '+' "
                   "(e.g. embeddings+meteo) [default: embeddings when sites.csv names embedding cubes, else "
                   "indices_x_potrad and indices+potrad with S2 inputs, else meteo for tower files alone].")
@click.option("--head", "heads", multiple=True, type=click.Choice(HEADS),
              help="Regression head, repeatable: linear (OLS, statsmodels), ridge (penalty chosen on inner site folds), "
                   "xgboost, mlp [default: linear, xgboost and mlp].")
@click.option("--cv", default=CV_SCHEMES[0], show_default=True, type=click.Choice(CV_SCHEMES),
              help="loso: leave one site out; groupkfold: K site folds (IGBP-stratified when igbp is given); "
                   "year / month: leave one year / month out (single-site data); holdout: train on --train-years, "
                   "test on --test-years at the same sites.")
@click.option("--test-years", help="Years tested by --cv holdout, e.g. 2020 or 2020-2021.")
@click.option("--train-years", help="Years trained on by --cv holdout, e.g. 2017-2019 [default: every other year].")
@click.option("--folds", default=DEFAULT_FOLDS, show_default=True, help="K for --cv groupkfold.")
@click.option("--window-px", default=DEFAULT_WINDOW_PX, show_default=True, help="Tower window edge in pixels (Gaussian centre weights).")
@click.option("--qc-min", default=DEFAULT_QC_MIN, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="Minimum daily GPP quality: fraction (0-1) of measured or good gap-filled records in the day.")
@click.option("--gpp", "gpp_method", default="mean", show_default=True, type=click.Choice(GPP_METHODS),
              help="Target GPP: mean of the night-time (NT) and day-time (DT) partitionings where both exist, or one of them.")
@click.option("--qc-missing", default="nan", show_default=True, type=click.Choice(QC_MISSING),
              help="Days the flux file gives no QC for: nan fails them; pass keeps them (files already QC-filtered by "
                   "their source, days missing rather than flagged); fail drops them.")
@click.option("--footprint", default="window", show_default=True, type=click.Choice(["window", "ffp"]),
              help="Pixel weights around the tower: window (Gaussian, --window-px) or ffp (Kljun et al. 2015 footprint "
                   "climatology from half-hourly u*, wind and heat flux: sites.csv needs measurement_height, canopy_height "
                   "and a half-hourly file, halfhourly_path or flux_path; else the window, with the reason).")
@click.option("--max-days-to-obs", type=click.IntRange(0), default=None,
              help="Use only days at most this many days from a valid satellite observation at the tower "
                   "(embedding quality layers, else band/index dates); the report shows skill by this distance.")
@click.option("--paired/--unpaired", default=True, show_default=True,
              help="Score every model on the same site-days (where all feature sets, baselines included, have every "
                   "feature); paired_days.csv says what each set lost to the pairing and to which set.")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Also score the light-use-efficiency baselines where every site has their inputs: index x tower PAR "
                   "with TA and VPD (linear), index x potential radiation (linear) and MOD17 with its biome parameters "
                   "(not fitted); the report ranks every model against the first LUE baseline.")
@click.option("--strict", is_flag=True, help="Stop at the first site with unusable input instead of skipping it (skips are listed "
                                             "in skipped_sites.csv and the report).")
@click.option("--seed", default=0, show_default=True, help="Seed of the heads and fold shuffling.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty --out folder (the old one goes only once the new one is complete).")
@click.option("--allow-absolute-paths", is_flag=True, help="Let sites.csv use absolute paths or paths outside its folder.")
@click.option("--allow-shared-flux", is_flag=True, help="Let two sites name the same flux file (an archive holding each "
                                                        "site's own tables); refused by default: site-level CV would leak.")
@click.option("--interpret/--no-interpret", default=True, show_default=True,
              help="Explain the first embedding feature set, preferring a combined one such as embeddings+meteo "
                   "(xgboost contributions, permutation importance, "
                   "linear coefficients, embedding-index correlations, PCA RGB) for the report.")
@click.option("--keep-models/--no-keep-models", default=True, show_default=True,
              help="Refit each requested head on all sites after the CV and keep it under <out>/models/ (JSON, xgboost "
                   "JSON, safetensors; no pickle) with its training envelope and conformal intervals, for predict-gpp.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Worker processes (one thread each): the models' cross-validation beside the interpretation, the site "
                   "joins, the analysis tables and report sections side by side; the numbers do not depend on it.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@writes("out", sites="sites_csv", default_out=lambda kw: Path("runs") / Path(kw["sites_csv"]).stem)
def fit_gpp_command(sites_csv: Path, out: Path | None, feature_sets: tuple[str, ...], heads: tuple[str, ...], cv: str, folds: int,
                    window_px: int, qc_min: float, seed: int, overwrite: bool, allow_absolute_paths: bool, interpret: bool,
                    quiet: bool, test_years: str | None, train_years: str | None, gpp_method: str, qc_missing: str,
                    paired: bool, baselines: bool, strict: bool, max_days_to_obs: int | None, footprint: str,
                    keep_models: bool, allow_shared_flux: bool, workers: int) -> None:
    """Cross-validate GPP heads on tower sites and write predictions, metrics and a report.

    Joins each site's QC-passed daily tower GPP with features averaged over a
    window around the tower, fits every head on every feature set with
    site-level cross-validation and writes predictions.csv/.parquet,
    metrics_pooled/per_site (.csv/.md), days_lost.csv, the skill decomposition,
    phenology and interpretation tables, provenance.json, figures/ and
    index.html (GPP in gC m-2 d-1).
    """
    from ecoembed.pipelines.fit_gpp import run_fit_gpp

    out = out if out is not None else Path("runs") / sites_csv.stem
    res = run_fit_gpp(sites_csv, out, feature_sets=list(feature_sets) or None, heads=list(heads) or list(DEFAULT_HEADS),
                      cv=cv, folds=folds, window_px=window_px, qc_min=qc_min, seed=seed, overwrite=overwrite,
                      progress=not quiet, allow_absolute_paths=allow_absolute_paths, allow_shared_flux=allow_shared_flux,
                      interpret=interpret,
                      gpp_method=gpp_method, qc_missing=qc_missing, paired=paired, baselines=baselines, strict=strict,
                      test_years=test_years,
                      train_years=train_years, max_days_to_obs=max_days_to_obs, footprint=footprint, keep_models=keep_models,
                      workers=workers)
    cols = ["features", "head", "n", "r2", "r2_lo", "r2_hi", "nse", "rmse", "mae", "kge"]
    click.echo(("SYNTHETIC DATA\n" if res.synthetic else "") + res.pooled[cols].to_string(index=False, float_format="%.3f"))
    if res.n_skipped:
        click.echo(f"{res.n_skipped} site(s) skipped: see {res.out_dir / 'skipped_sites.csv'}")
    click.echo(f"report: {res.out_dir / 'index.html'}")


@cli.command("predict-gpp")
@click.option("--run", "run_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A fit-gpp run folder that kept its models (models/).")
@click.option("--cube", required=True, type=click.Path(exists=True, path_type=Path),
              help="Daily embedding cube (.zarr/.nc) from `ecoembed embed` with the checkpoint of the run's cubes.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output folder: gpp.nc|gpp.zarr, GeoTIFFs, figures/, index.html, provenance.json.")
@click.option("--features", help="Feature set of the kept model [default: the best mappable one by pooled r2].")
@click.option("--head", type=click.Choice(HEADS), help="Head of the kept model [default: the best mappable one].")
@click.option("--level", default=0.9, show_default=True, type=float,
              help="Level of the split-conformal interval: 0.5, 0.8, 0.9 or 0.95 (calibrated on held-out-site "
                   "residuals of the CV).")
@click.option("--meteo", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Daily table date,TA,SW_IN,VPD (degC, W m-2, hPa) for models with meteo: the same series for every pixel.")
@click.option("--window-px", type=click.IntRange(1), help="Feature window edge in pixels [default: the run's tower window].")
@click.option("--start", help="First day, YYYY-MM-DD [default: the cube's first day].")
@click.option("--end", help="Last day, YYYY-MM-DD, inclusive [default: the cube's last day].")
@click.option("--aggregate", multiple=True, type=click.Choice(["8D", "month", "year"]),
              help="Also write period sums (gC m-2 per period), repeatable.")
@click.option("--format", "fmt", default="nc", show_default=True, type=click.Choice(["nc", "zarr"]),
              help="Cube format: NetCDF-4 (GDAL/QGIS read it) or Zarr.")
@click.option("--chunk-px", default=64, show_default=True, help="Block edge in pixels (one Zarr chunk, one resumable unit).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out (the old one goes once the new one is complete).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@writes("out", ("run_dir", "cube", "meteo"))
def predict_gpp_command(run_dir: Path, cube: Path, out: Path, features: str | None, head: str | None, level: float,
                        meteo: Path | None, window_px: int | None, start: str | None, end: str | None,
                        aggregate: tuple[str, ...], fmt: str, chunk_px: int, overwrite: bool, quiet: bool) -> None:
    """Daily GPP maps (gC m-2 d-1) with intervals: a kept tower model applied to every pixel of an embedding cube.

    Each pixel gets the features a tower saw (the embedding averaged over the
    run's tower window), so tower pixels reproduce the model's tower
    predictions. Writes the GPP cube with lower/upper interval bounds and an
    outside-the-training-envelope count, GeoTIFFs (mean, annual sums), maps
    and index.html. Resumable: re-run the same command after an interruption.
    """
    from ecoembed.pipelines.predict_gpp import predict_gpp

    res = predict_gpp(run_dir, cube, out, features=features, head=head, level=level, meteo=meteo, window_px=window_px,
                      start=start, end=end, aggregate=aggregate, fmt=fmt, chunk_px=chunk_px, overwrite=overwrite,
                      progress=not quiet)
    click.echo(("SYNTHETIC DATA\n" if res.synthetic else "")
               + f"wrote {res.cube}: {res.n_days} days x {res.n_pixels} px with model {res.model}; blocks computed "
                 f"{res.blocks_computed}, verified and kept {res.blocks_skipped}; report {res.out_dir / 'index.html'}")


@cli.command("pipeline")
@click.option("--sites", "sites_csv", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="sites.csv: site_id,lat,lon,flux_path[,s2_path,s1_path,igbp]; paths relative to it.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Pipeline folder: imagery/ (if fetched), embeddings/, sites_embedded.csv, run/ (the fit-gpp report).")
@click.option("--fetch", is_flag=True, help="Fetch S2/S1 chips from --catalog for sites without s2_path (internet).")
@click.option("--start", help="First day of the imagery to fetch, YYYY-MM-DD (with --fetch).")
@click.option("--end", help="Last day of the imagery to fetch, YYYY-MM-DD, inclusive (with --fetch).")
@click.option("--catalog", default="earth-search", show_default=True, help="STAC catalog for --fetch (see `ecoembed fetch --help`).")
@click.option("--size-px", default=64, show_default=True, help="Chip edge in 10 m pixels for --fetch.")
@click.option("--sensor", "sensors", multiple=True, type=click.Choice(["s2", "s1"]), help="Sensors to fetch [default: both].")
@click.option("--model", type=click.Path(exists=True, path_type=Path), help="Fusion checkpoint for embed [default: the shipped one].")
@click.option("--features", "feature_sets", multiple=True, help="fit-gpp feature sets [default: embeddings and the baselines].")
@click.option("--head", "heads", multiple=True, type=click.Choice(HEADS), help="fit-gpp heads [default: linear, xgboost, mlp].")
@click.option("--cv", default=CV_SCHEMES[0], show_default=True, type=click.Choice(CV_SCHEMES), help="fit-gpp cross-validation.")
@click.option("--overwrite", is_flag=True, help="Re-embed every site and refit run/ (verified fetched cubes are kept).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@writes("out", ("model",), sites="sites_csv")
def pipeline_command(sites_csv: Path, out: Path, fetch: bool, start: str | None, end: str | None, catalog: str, size_px: int,
                     sensors: tuple[str, ...], model: Path | None, feature_sets: tuple[str, ...], heads: tuple[str, ...], cv: str,
                     overwrite: bool, quiet: bool) -> None:
    """Towers to a GPP report in one resumable command: (fetch) -> embed each site -> fit-gpp (models kept).

    Re-run the same command after an interruption: finished fetches, embedding
    cubes and the run are kept, unfinished ones resume. Then map any embedding
    cube with `ecoembed predict-gpp --run <out>/run --cube CUBE --out MAP`.
    """
    from ecoembed.pipelines.towers import run_pipeline

    opts: dict[str, Any] = {"cv": cv, "heads": list(heads) or list(DEFAULT_HEADS)}
    if feature_sets:
        opts["feature_sets"] = list(feature_sets)
    res = run_pipeline(sites_csv, out, fetch=fetch, start=start, end=end, catalog=catalog, size_px=size_px,
                       sensors=list(sensors) or None, model=model, fit_options=opts, overwrite=overwrite, progress=not quiet)
    for sid, why in res.skipped.items():
        click.echo(f"site {sid} skipped: {why}", err=True)
    click.echo(f"embedded {len(res.embedded)} site(s), kept {len(res.embeddings_kept)} finished cube(s); sites: {res.sites_csv}")
    if res.fit is not None:
        cols = ["features", "head", "n", "r2", "r2_lo", "r2_hi", "rmse"]
        click.echo(("SYNTHETIC DATA\n" if res.fit.synthetic else "") + res.fit.pooled[cols].to_string(index=False, float_format="%.3f"))
    else:
        click.echo(f"run {res.run_dir} was already complete (kept; --overwrite refits it)")
    click.echo(f"report: {res.run_dir / 'index.html'}")


@cli.command("cv-report")
@click.option("--run", "run_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A fit-gpp output folder.")
def cv_report_command(run_dir: Path) -> None:
    """Rebuild index.html and report.md of a fit-gpp run from its saved files (no refitting)."""
    from ecoembed.report.html import build_report

    html, md = build_report(run_dir)
    click.echo(f"wrote {html} and {md}")


@cli.command("report-screenshot")
@click.option("--run", "run_dir", required=True, type=click.Path(exists=True, path_type=Path),
              help="A fit-gpp run folder (with index.html) or an HTML file.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="PNG to write.")
@click.option("--width", default=1400, show_default=True, help="Browser window width (pixels).")
@click.option("--height", default=4000, show_default=True, help="Browser window height (pixels): the page is cut there.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@writes("out", ("run_dir",))
def report_screenshot_command(run_dir: Path, out: Path, width: int, height: int, overwrite: bool) -> None:
    """Screenshot a run's index.html in headless Chromium (checks the self-contained report really renders)."""
    from ecoembed.report.screenshot import render

    png = render(run_dir, out, width=width, height=height, overwrite=overwrite)
    click.echo(f"wrote {png} ({png.stat().st_size / 1024:.0f} kB)")


@cli.command("fetch")
@click.option("--sites", "sites_csv", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="sites.csv with site_id,lat,lon (WGS84 decimal degrees); other columns are copied. Never written.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: <site_id>_s2.nc, <site_id>_s1.nc, a new sites.csv (input rows + s2_path/s1_path), "
                   "fetch_report.csv.")
@click.option("--start", required=True, help="First day, YYYY-MM-DD (UTC).")
@click.option("--end", required=True, help="Last day, YYYY-MM-DD, inclusive (at most 10 years after --start).")
@click.option("--catalog", default="earth-search", show_default=True,
              help="earth-search (S2 only), planetary-computer (S2 + S1 RTC; pip install planetary-computer), cdse (S2; "
                   "needs CDSE S3 keys), a STAC API URL or a local static catalog.json.")
@click.option("--size-px", default=64, show_default=True,
              help="Chip edge in 10 m pixels on the tower's UTM grid, tower at pixel size_px // 2 (64 px = 640 m).")
@click.option("--sensor", "sensors", multiple=True, type=click.Choice(["s2", "s1"]),
              help="Sensor to fetch, repeatable [default: s2 and s1, where the catalog has them].")
@click.option("--overwrite", is_flag=True, help="Fetch every site again, replacing finished cubes.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@writes("out", sites="sites_csv")
def fetch_command(sites_csv: Path, out: Path, start: str, end: str, catalog: str, size_px: int, sensors: tuple[str, ...],
                  overwrite: bool, quiet: bool) -> None:
    """Sentinel-2 L2A / Sentinel-1 cubes around each tower from a STAC catalog (internet, ecoembed[stac]).

    One NetCDF cube per site and sensor (S2 surface reflectance 0-1 with SCL,
    S1 backscatter in dB with the orbit direction), ready for
    `ecoembed fit-gpp --sites <out>/sites.csv` and `ecoembed embed`. Resumable:
    re-run the same command and verified finished cubes are kept; sites without
    items are reported in fetch_report.csv and skipped.
    """
    from ecoembed.sources.fetch import fetch_sites

    res = fetch_sites(sites_csv, out, start=start, end=end, catalog=catalog, size_px=size_px, sensors=list(sensors) or None,
                      overwrite=overwrite, progress=not quiet)
    click.echo(f"{res.count('fetched')} cube(s) fetched, {res.count('kept')} kept, {res.count('no_items')} without items, "
               f"{res.count('failed')} failed ({', '.join(res.sensors)} from {res.catalog}); see {res.report_csv}")
    click.echo(f"wrote {res.sites_csv}: ecoembed fit-gpp --sites {res.sites_csv}")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the CLI, turn input errors into one-line messages."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args if not a.startswith("-")), "")
    interrupted = ("interrupted; completed work is kept, re-run the same command to resume" if command in RESUMABLE else
                   f"interrupted; nothing was published ({command or 'this command'} does not resume: re-run it)")
    try:
        cli.main(args=argv, prog_name="ecoembed", standalone_mode=False)
    except click.exceptions.Abort:  # click turns Ctrl-C (KeyboardInterrupt) into Abort
        click.echo(interrupted, err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (EcoembedError, FluxDataError) as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo(interrupted, err=True)
        return 130
    except OSError as exc:  # disk full, name too long, permissions, ...: one line naming the path and the remedy
        click.echo(f"error: {describe_os_error(exc)}", err=True)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
