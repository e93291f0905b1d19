"""``predict-gpp``: a kept tower model applied to an embedding cube -> daily GPP maps with intervals.

Inputs: a ``fit-gpp`` run folder (its ``models/``, :mod:`ecoembed.gpp.saved`)
and a daily embedding cube (:mod:`ecoembed.sources.embedding_cube`). Each
pixel gets the features a tower saw: the embedding averaged over the run's
tower window (the same Gaussian weights, renormalised over finite pixels and
cropped at the cube edge, as :func:`ecoembed.gpp.join.aggregate_cube`), so at
a tower pixel the map reproduces the model's prediction from the tower table.
``potrad`` comes from each pixel's latitude and day; ``meteo`` from a daily
table given with ``meteo`` (the same series for every pixel, e.g. a tower's
or a reanalysis cell's); other feature sets (bands, indices) cannot be mapped
from an embedding cube and are refused.

Output folder (published by one rename when complete; ``.<name>.partial``
beside it while running, resumed by re-running the same command):

* ``gpp.nc`` (or ``gpp.zarr``): ``gpp`` (time, y, x) gC m-2 d-1, ``gpp_lower`` /
  ``gpp_upper`` (split-conformal interval at ``level``), ``outside_envelope``
  (features outside the training range), CF-1.8 georeferenced;
* ``gpp_<8D|month|year>.nc`` sums with ``--aggregate``; ``gpp_mean.tif`` and
  ``gpp_annual_<year>.tif`` (GeoTIFF); ``figures/``, ``index.html``,
  ``provenance.json``.

Resumability: the cube is written in blocks of ``chunk_px`` x ``chunk_px``
pixels (all days); each block's marker carries the SHA-256 of the block's
``gpp`` values as written, and a re-run re-reads and re-hashes a block before
trusting its marker.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from pyproj import Transformer
from tqdm.auto import tqdm

from ecoembed.dates import from_days, parse_day
from ecoembed.errors import CubeError, InputError, OutputExistsError
from ecoembed.gpp.features import METEO_COLUMNS, embedding_variant, parse_feature_set, variant_prefix
from ecoembed.gpp.join import gaussian_weights
from ecoembed.gpp.radiation import MJ_PER_DAY_TO_W, potential_radiation_mj
from ecoembed.gpp.saved import MODELS_DIR, KeptModel, kept_models, load_model, model_dir_name
from ecoembed.io_utils import atomic_path, atomic_write_text, check_output_location
from ecoembed.outputs import check_no_overlap
from ecoembed.sources.cf import georeference, transform_of
from ecoembed.sources.embedding_cube import open_embeddings

AGGREGATES: tuple[str, ...] = ("8D", "month", "year")
"""Periods of ``--aggregate`` sums: MODIS-style 8-day periods from 1 January, calendar months, calendar years."""
MAPPABLE: tuple[str, ...] = ("potrad", "meteo")
"""Feature-set components besides one embedding product that a map can supply."""
FORMATS: tuple[str, ...] = ("nc", "zarr")
DAYS_PER_CHUNK = 64
"""Zarr chunk length in time (days) of the GPP cube, and the days predicted together in a block."""
ANNUAL_MIN_DAYS = 365
"""Days of a calendar year a pixel needs for an annual sum (``gpp_annual_<year>.tif``)."""


@dataclass
class PredictResult:
    """Outcome of :func:`predict_gpp`."""

    out_dir: Path
    cube: Path
    model: str
    n_days: int
    n_pixels: int
    blocks_computed: int
    blocks_skipped: int
    synthetic: bool
    seconds: float


# --- choosing and checking the model ------------------------------------------------------------


def choose_model(run_dir: Path, features: str | None, head: str | None, *, have_meteo: bool) -> KeptModel:
    """The kept model asked for, or the best mappable one by pooled out-of-fold r2.

    Raises:
        InputError: the run keeps no models, the one asked for is absent, or none can be mapped.
    """
    names = kept_models(run_dir)
    if not names:
        raise InputError(f"run {run_dir} keeps no fitted models ({MODELS_DIR}/ is missing or empty): it was made before "
                         "models were kept or with --no-keep-models; re-run fit-gpp")
    if features is not None and head is not None:
        name = model_dir_name(features, head)
        if name not in names:
            raise InputError(f"run {run_dir} keeps no model {features} / {head}; kept: {', '.join(names)}")
        return load_model(run_dir / MODELS_DIR / name)
    metas = {n: json.loads((run_dir / MODELS_DIR / n / "model.json").read_text(encoding="utf-8")) for n in names}
    candidates = [n for n, m in metas.items() if (features is None or m["features"] == features)
                  and (head is None or m["head"] == head) and not unmappable(str(m["features"]), have_meteo=have_meteo)]
    if not candidates:
        why = "; ".join(f"{n}: {unmappable(str(m['features']), have_meteo=have_meteo)}" for n, m in metas.items()
                        if (features is None or m["features"] == features) and (head is None or m["head"] == head))
        raise InputError(f"no kept model of run {run_dir} can be mapped from an embedding cube ({why or 'none match'}); "
                         "refit with --features embeddings or embeddings+potrad, or pass --meteo")
    score: dict[str, float] = {}
    pooled_path = run_dir / "metrics_pooled.csv"
    if pooled_path.is_file():
        pooled = pd.read_csv(pooled_path)
        for n in candidates:
            m = metas[n]
            hit = pooled[(pooled["features"] == m["features"]) & (pooled["head"] == m["head"])]
            score[n] = float(hit["r2"].iloc[0]) if len(hit) else float("-inf")
    best = max(candidates, key=lambda n: score.get(n, float("-inf")))
    return load_model(run_dir / MODELS_DIR / best)


def unmappable(features: str, *, have_meteo: bool) -> str:
    """Why a feature set cannot be mapped from one embedding cube ('' when it can)."""
    comps = parse_feature_set(features)
    emb = [c for c in comps if embedding_variant(c) is not None]
    other = [c for c in comps if embedding_variant(c) is None and c not in MAPPABLE]
    if len(emb) != 1:
        return f"needs exactly one embedding product, has {len(emb)}"
    if other:
        return f"{'+'.join(other)} cannot be computed from an embedding cube"
    if "meteo" in comps and not have_meteo:
        return "uses meteo: pass --meteo with a daily TA, SW_IN, VPD table"
    return ""


def check_cube(model: KeptModel, ds: xr.Dataset, cube: Path) -> str:
    """Refuse a cube the model was not trained on (width, encoder, grid spacing, CRS); returns the embedding prefix.

    Raises:
        CubeError: one line naming what differs.
    """
    comps = parse_feature_set(model.features)
    variant = next(v for v in (embedding_variant(c) for c in comps) if v is not None)
    prefix = variant_prefix(variant)
    emb_cols = [c for c in model.columns if c.startswith(prefix) and c[len(prefix):].isdigit()]
    width = int(ds.sizes["feature"])
    if width != len(emb_cols):
        raise CubeError(f"cube {cube} has {width} embedding features, model {model.path.name} was fitted on {len(emb_cols)}; "
                        "embed with the checkpoint the run's cubes used")
    source = dict(model.meta.get("embedding_sources", {})).get(variant, {})
    trained_sha = [s for s in source.get("checkpoint_sha256", []) if s]
    sha = str(ds.attrs.get("checkpoint_sha256", ""))
    if trained_sha and sha not in trained_sha:
        raise CubeError(f"cube {cube} was embedded with checkpoint {sha[:12] or '(unknown)'}, the model's training cubes with "
                        f"{', '.join(s[:12] for s in trained_sha)}: its features mean something else; re-embed with that checkpoint")
    crs = str(ds.attrs.get("crs", ""))
    if not crs:
        raise CubeError(f"cube {cube} has no 'crs' attribute; it cannot be placed on a map")
    wkt = str(ds["spatial_ref"].attrs.get("crs_wkt", "")) if "spatial_ref" in ds.variables else ""
    if wkt:
        from pyproj import CRS

        if not CRS.from_user_input(crs).equals(CRS.from_user_input(wkt)):
            raise CubeError(f"cube {cube} states crs {crs} but its grid mapping is another CRS; fix the cube's metadata")
    from pyproj import CRS

    if not CRS.from_user_input(crs).is_projected:
        raise CubeError(f"cube {cube} is in a geographic CRS ({crs}); the tower window is in pixels of metres: "
                        "use the projected (UTM) cube that embed wrote")
    spacing = [abs(float(ds[c][1] - ds[c][0])) for c in ("x", "y") if ds.sizes[c] > 1]
    trained_res = [float(r) for r in source.get("resolution_m", [])]
    if trained_res and spacing and not any(abs(s - r) <= 0.01 * r for s in spacing for r in trained_res):
        raise CubeError(f"cube {cube} has {spacing[0]:g} m pixels, the model's training cubes {trained_res[0]:g} m: the "
                        f"{model.meta.get('window_px')}-pixel tower window would cover another area; use a cube on that grid")
    return prefix


def read_meteo(path: Path | None) -> pd.DataFrame | None:
    """A daily table ``date, TA, SW_IN, VPD`` (degC, W m-2, hPa) indexed by day, or None.

    Raises:
        InputError: unreadable, no date column, or a meteo column missing.
    """
    if path is None:
        return None
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"--meteo {path}: cannot read it ({exc}); give a CSV or Parquet table") from None
    col = next((c for c in df.columns if str(c).lower() in ("date", "time", "timestamp")), None)
    missing = [c for c in METEO_COLUMNS if c not in df.columns]
    if col is None or missing:
        raise InputError(f"--meteo {path}: needs a date column and {', '.join(METEO_COLUMNS)} (degC, W m-2, hPa); "
                         f"missing {missing or ['date']}")
    dates = pd.to_datetime(df[col], errors="coerce")
    if dates.isna().any():
        raise InputError(f"--meteo {path}: row {int(np.flatnonzero(dates.isna())[0]) + 2} has no readable date (YYYY-MM-DD)")
    return df[list(METEO_COLUMNS)].astype(float).set_index(dates.dt.floor("D")).groupby(level=0).mean()


# --- the per-pixel features ---------------------------------------------------------------------


def focal_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted window mean around every pixel of ``values`` (time, y, x, feature), NaN-aware, cropped at the edges.

    The window of pixel (r, c) spans rows ``r - k//2 .. r - k//2 + k - 1`` (as the tower window), and the
    weights are renormalised over the finite values, so a tower pixel gets exactly its tower-window mean.
    """
    v = np.asarray(values, dtype=np.float64)
    k = weights.shape[0]
    half = k // 2
    T, Y, X, F = v.shape
    pad = np.full((T, Y + k - 1, X + k - 1, F), np.nan)
    pad[:, half:half + Y, half:half + X] = v
    num = np.zeros_like(v)
    den = np.zeros_like(v)
    for i in range(k):
        for j in range(k):
            win = pad[:, i:i + Y, j:j + X]
            ok = np.isfinite(win)
            num += np.where(ok, win, 0.0) * weights[i, j]
            den += ok * weights[i, j]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def pixel_latitudes(ds: xr.Dataset, ys: slice, xs: slice) -> np.ndarray:
    """WGS84 latitude (degrees) of the pixel centres of a block, (y, x)."""
    xx, yy = np.meshgrid(ds["x"].values[xs], ds["y"].values[ys])
    _, lat = Transformer.from_crs(str(ds.attrs["crs"]), "EPSG:4326", always_xy=True).transform(xx, yy)
    return np.asarray(lat, dtype=float)


def block_features(model: KeptModel, emb: np.ndarray, prefix: str, days: np.ndarray, lat: np.ndarray,
                   meteo: pd.DataFrame | None) -> np.ndarray:
    """Rows (time x y x x) of the model's columns, in its order, for one block."""
    T, Y, X, F = emb.shape
    cols: dict[str, np.ndarray] = {f"{prefix}{i:03d}": emb[..., i].reshape(-1) for i in range(F)}
    if "SW_IN_POT" in model.columns:
        doy = pd.DatetimeIndex(days).day_of_year.to_numpy()
        ra = potential_radiation_mj(lat[None, :, :], doy[:, None, None]) * MJ_PER_DAY_TO_W
        cols["SW_IN_POT"] = np.broadcast_to(ra, (T, Y, X)).reshape(-1)
    if meteo is not None:
        table = meteo.reindex(pd.DatetimeIndex(days))
        for c in METEO_COLUMNS:
            cols[c] = np.repeat(table[c].to_numpy(float), Y * X)
    missing = [c for c in model.columns if c not in cols]
    if missing:
        raise CubeError(f"the cube gives no {', '.join(missing[:5])} for model {model.path.name} (its embedding "
                        f"columns are named {prefix}000...); embed with the run's checkpoint")
    return np.stack([cols[c] for c in model.columns], axis=1)


# --- the output store ---------------------------------------------------------------------------


def _template(ds: xr.Dataset, days: np.ndarray, chunk_px: int, attrs: dict[str, Any], level: float) -> xr.Dataset:
    shape = (len(days), ds.sizes["y"], ds.sizes["x"])
    chunks = (min(len(days), DAYS_PER_CHUNK), chunk_px, chunk_px)
    import dask.array as da

    def zeros(dtype: Any) -> Any:
        return da.full(shape, np.nan if np.dtype(dtype).kind == "f" else 0, chunks=chunks, dtype=dtype)  # type: ignore[no-untyped-call]

    pct = f"{100 * level:g} %"
    out = xr.Dataset(
        {"gpp": (("time", "y", "x"), zeros(np.float32)), "gpp_lower": (("time", "y", "x"), zeros(np.float32)),
         "gpp_upper": (("time", "y", "x"), zeros(np.float32)), "outside_envelope": (("time", "y", "x"), zeros(np.int16))},
        coords={"time": days, "y": ds["y"].values, "x": ds["x"].values}, attrs=attrs)
    out["gpp"].attrs = {"long_name": "gross primary production", "units": "gC m-2 d-1",
                        "standard_name": "gross_primary_productivity_of_biomass_expressed_as_carbon"}
    out["gpp_lower"].attrs = {"long_name": f"lower bound of the {pct} split-conformal interval of gpp", "units": "gC m-2 d-1"}
    out["gpp_upper"].attrs = {"long_name": f"upper bound of the {pct} split-conformal interval of gpp", "units": "gC m-2 d-1"}
    out["outside_envelope"].attrs = {"long_name": "number of model features outside their training range", "units": "1"}
    for c in ("x", "y"):
        out[c].attrs = dict(ds[c].attrs)
    return georeference(out, str(ds.attrs["crs"]))


def _block_digest(group: Any, ys: slice, xs: slice) -> str:
    return hashlib.sha256(np.ascontiguousarray(group["gpp"][:, ys, xs]).tobytes()).hexdigest()


def _settings(model: KeptModel, cube: Path, ds: xr.Dataset, level: float, window_px: int, days: np.ndarray,
              chunk_px: int, meteo: Path | None) -> dict[str, Any]:
    st = cube.stat()
    return {"model": model.path.name, "model_json_sha256": hashlib.sha256((model.path / "model.json").read_bytes()).hexdigest(),
            "cube": str(cube.resolve()), "cube_size": st.st_size, "cube_mtime_ns": st.st_mtime_ns, "level": level,
            "window_px": window_px, "first_day": str(days[0]), "last_day": str(days[-1]), "chunk_px": chunk_px,
            "meteo": str(meteo.resolve()) if meteo else "", "n_features": int(ds.sizes["feature"])}


# --- the command --------------------------------------------------------------------------------


def predict_gpp(run_dir: str | os.PathLike[str], cube: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                features: str | None = None, head: str | None = None, level: float = 0.9,
                meteo: str | os.PathLike[str] | None = None, window_px: int | None = None,
                start: str | None = None, end: str | None = None, aggregate: Sequence[str] = (),
                fmt: str = "nc", chunk_px: int = 64, overwrite: bool = False, progress: bool = True) -> PredictResult:
    """Daily GPP maps (gC m-2 d-1) with split-conformal intervals from a kept model and an embedding cube.

    Args:
        run_dir: a ``fit-gpp`` run folder with ``models/``.
        cube: daily embedding cube (.zarr / .nc) from ``ecoembed embed`` with the run's checkpoint.
        out_dir: output folder (absent, or replaced with ``overwrite`` once the new one is complete).
        features, head: the kept model [default: the best mappable one by pooled out-of-fold r2].
        level: interval level, one of the model's stored levels (0.5, 0.8, 0.9, 0.95).
        meteo: daily ``date, TA, SW_IN, VPD`` table for models with ``meteo`` (the same series for every pixel).
        window_px: feature window edge (pixels) [default: the run's tower window].
        start, end: first/last day (YYYY-MM-DD, inclusive) [default: the cube's period].
        aggregate: also write period sums (``8D``, ``month``, ``year``).
        fmt: ``nc`` (NetCDF-4, GDAL reads it) or ``zarr``.
        chunk_px: block edge (pixels): one Zarr chunk in y/x and one resumable unit.
        overwrite: replace an existing output folder.
        progress: tqdm bar over blocks.

    Raises:
        InputError / CubeError / CheckpointError / OutputExistsError: one line naming the problem.
    """
    t0 = time.perf_counter()
    run, cube_path, out = Path(run_dir), Path(cube), Path(out_dir)
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt}: choose {' or '.join(FORMATS)}")
    bad = [a for a in aggregate if a not in AGGREGATES]
    if bad:
        raise InputError(f"--aggregate {bad[0]}: choose from {', '.join(AGGREGATES)}")
    if chunk_px < 1:
        raise InputError("--chunk-px must be positive")
    if not (run / "provenance.json").is_file():
        raise InputError(f"--run {run} is not a fit-gpp run folder (no provenance.json)")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"output {out} exists; pass --overwrite to replace it (the old one goes once the new one is complete)")
    meteo_path = Path(meteo) if meteo is not None else None
    check_no_overlap(out, [p for p in (run, cube_path, meteo_path) if p is not None])
    check_output_location(out)
    meteo_table = read_meteo(meteo_path)
    model = choose_model(run, features, head, have_meteo=meteo_table is not None)
    why = unmappable(model.features, have_meteo=meteo_table is not None)
    if why:
        raise InputError(f"model {model.features} / {model.head} cannot be mapped: {why}")
    model.interval(np.zeros(1), level)  # refuses a level the model does not store, before any work
    ds = open_embeddings(cube_path)
    prefix = check_cube(model, ds, cube_path)
    win = int(window_px if window_px is not None else model.meta.get("window_px", 5))
    if win < 1:
        raise InputError("--window-px must be >= 1")
    days = pd.DatetimeIndex(ds["time"].values).floor("D")
    lo = pd.Timestamp(from_days(parse_day(start, "start")).item()) if start else days[0]
    hi = pd.Timestamp(from_days(parse_day(end, "end")).item()) if end else days[-1]
    if lo > hi or hi < days[0] or lo > days[-1]:
        raise InputError(f"--start/--end {lo.date()}..{hi.date()} lies outside the cube's period {days[0].date()}..{days[-1].date()}")
    tsel = np.flatnonzero((days >= lo) & (days <= hi))
    ds = ds.isel(time=tsel)
    days = days[tsel]
    synthetic = bool(ds.attrs.get("synthetic", False)) or bool(model.meta.get("synthetic", False))

    partial = out.with_name(f".{out.name}.partial")
    store = partial / "gpp.zarr"
    markers = partial / "blocks"
    settings = _settings(model, cube_path, ds, level, win, days.to_numpy().astype("datetime64[D]"), chunk_px, meteo_path)
    state_file = partial / "settings.json"
    if partial.exists():
        try:
            same = json.loads(state_file.read_text(encoding="utf-8")) == json.loads(json.dumps(settings, default=str))
        except (OSError, ValueError):
            same = False
        if not same and not overwrite:
            raise OutputExistsError(f"an unfinished predict-gpp output {partial} was made with other settings or inputs; "
                                    "pass --overwrite to start afresh, or re-run the original command to resume")
        if not same:
            shutil.rmtree(partial)
    if not partial.exists():
        partial.mkdir(parents=True)
        attrs = {"title": "Daily gross primary production from Sentinel embeddings (ecoembed predict-gpp)",
                 "synthetic": int(synthetic), "model": model.path.name, "model_features": model.features,
                 "model_head": model.head, "interval_level": level,
                 "interval_method": str(model.meta["conformal"]["method"]), "window_px": win,
                 "embedding_cube": str(cube_path.resolve()), "checkpoint_sha256": str(ds.attrs.get("checkpoint_sha256", "")),
                 "training_period": f"{model.meta['training']['first_day']}..{model.meta['training']['last_day']}",
                 "training_sites": ",".join(model.meta["training"]["sites"]), "crs": str(ds.attrs["crs"])}
        _template(ds, days.to_numpy().astype("datetime64[ns]"), chunk_px, attrs, level).to_zarr(
            store, mode="w", compute=False, consolidated=False)
        markers.mkdir()
        atomic_write_text(state_file, json.dumps(settings, default=str))

    ny, nx = ds.sizes["y"], ds.sizes["x"]
    blocks = [(iy, ix) for iy in range((ny + chunk_px - 1) // chunk_px) for ix in range((nx + chunk_px - 1) // chunk_px)]
    group: Any = zarr.open_group(str(store), mode="r+")  # typed per key by zarr; these are arrays
    weights = gaussian_weights(win)
    half = win // 2
    computed = skipped = 0
    emb_da = ds["embedding"]
    bar = tqdm(blocks, desc="predict-gpp", unit="block", disable=not progress)
    for iy, ix in bar:
        ys, xs = slice(iy * chunk_px, min(ny, (iy + 1) * chunk_px)), slice(ix * chunk_px, min(nx, (ix + 1) * chunk_px))
        marker = markers / f"{iy}_{ix}.json"
        if marker.is_file():
            try:
                if json.loads(marker.read_text(encoding="utf-8")).get("sha256") == _block_digest(group, ys, xs):
                    skipped += 1
                    continue
            except (OSError, ValueError):
                pass  # an unreadable marker is not trusted: the block is recomputed
        hy0, hy1 = max(0, ys.start - half), min(ny, ys.stop + (win - 1 - half))
        hx0, hx1 = max(0, xs.start - half), min(nx, xs.stop + (win - 1 - half))
        lat = pixel_latitudes(ds, ys, xs)
        for t0 in range(0, len(days), DAYS_PER_CHUNK):  # one time chunk at a time: memory bounded by the block, not the period
            ts = slice(t0, min(len(days), t0 + DAYS_PER_CHUNK))
            raw = np.asarray(emb_da.isel(time=ts, y=slice(hy0, hy1), x=slice(hx0, hx1)).values, dtype=np.float64)
            feats = focal_mean(raw, weights)[:, ys.start - hy0:ys.stop - hy0, xs.start - hx0:xs.stop - hx0]
            X = block_features(model, feats, prefix, days.to_numpy()[ts], lat, meteo_table)
            shape = feats.shape[:3]
            pred = model.predict(X)
            hw = model.interval(pred, level)
            group["gpp"][ts, ys, xs] = pred.reshape(shape).astype(np.float32)
            group["gpp_lower"][ts, ys, xs] = (pred - hw).reshape(shape).astype(np.float32)
            group["gpp_upper"][ts, ys, xs] = (pred + hw).reshape(shape).astype(np.float32)
            group["outside_envelope"][ts, ys, xs] = model.outside_envelope(X).reshape(shape)
        atomic_write_text(marker, json.dumps({"iy": iy, "ix": ix, "sha256": _block_digest(group, ys, xs)}))
        computed += 1
    bar.close()
    ds.close()

    products = partial / "products"
    if products.exists():
        shutil.rmtree(products)  # derived files are rebuilt from the verified cube on every completion
    products.mkdir()
    gpp_ds = xr.open_zarr(store, consolidated=False)
    final_cube = products / ("gpp.nc" if fmt == "nc" else "gpp.zarr")
    if fmt == "nc":
        gpp_ds.to_netcdf(final_cube, engine="netcdf4")
    else:
        shutil.copytree(store, final_cube)
    write_aggregates(gpp_ds, products, aggregate)
    write_geotiffs(gpp_ds, products)
    provenance = {"command": "predict-gpp", "synthetic": synthetic, "run": str(run.resolve()), "cube": str(cube_path.resolve()),
                  "model": model.meta | {"envelope": "(see the run's model.json)"}, "settings": settings,
                  "aggregate": list(aggregate), "format": fmt, "units": {"gpp": "gC m-2 d-1", "sums": "gC m-2 per period"},
                  "sites": _run_sites(run)}
    (products / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str), encoding="utf-8")
    from ecoembed.report.maps import build_map_report

    build_map_report(products)
    gpp_ds.close()
    n_pixels = ny * nx
    with atomic_path(out) as tmp:
        os.replace(products, tmp)
    shutil.rmtree(partial, ignore_errors=True)
    return PredictResult(out, out / final_cube.name, model.path.name, len(days), n_pixels, computed, skipped, synthetic,
                         time.perf_counter() - t0)


def _run_sites(run: Path) -> list[dict[str, Any]]:
    try:
        prov = json.loads((run / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return list(prov.get("sites", []))


def period_labels(days: pd.DatetimeIndex, period: str) -> np.ndarray:
    """First day of each day's period: 8-day periods from 1 January (MODIS), calendar months or years."""
    if period == "8D":
        doy0 = (days.day_of_year - 1) // 8 * 8
        return (days.to_period("Y").to_timestamp() + pd.to_timedelta(doy0, unit="D")).to_numpy()
    if period == "month":
        return days.to_period("M").to_timestamp().to_numpy()
    return days.to_period("Y").to_timestamp().to_numpy()


def write_aggregates(gpp: xr.Dataset, folder: Path, periods: Sequence[str]) -> list[Path]:
    """``gpp_<period>.nc``: sums (gC m-2 per period) of gpp and of its interval bounds, with the days counted."""
    written = []
    days = pd.DatetimeIndex(gpp["time"].values)
    for period in periods:
        labels = xr.DataArray(period_labels(days, period), dims="time", name="period")
        sums = gpp[["gpp", "gpp_lower", "gpp_upper"]].groupby(labels).sum(min_count=1)
        n = gpp["gpp"].notnull().groupby(labels).sum().astype(np.int16)
        agg = xr.Dataset({"gpp_sum": sums["gpp"], "gpp_sum_lower": sums["gpp_lower"], "gpp_sum_upper": sums["gpp_upper"],
                          "n_days": n}, attrs=dict(gpp.attrs) | {"period": period})
        agg["gpp_sum"].attrs = {"long_name": f"GPP summed over each {period} period", "units": "gC m-2"}
        agg["gpp_sum_lower"].attrs = {"long_name": "sum of the daily lower bounds (errors assumed fully correlated: "
                                                   "conservative)", "units": "gC m-2"}
        agg["gpp_sum_upper"].attrs = {"long_name": "sum of the daily upper bounds (conservative)", "units": "gC m-2"}
        agg["n_days"].attrs = {"long_name": "days with a prediction in the period", "units": "days"}
        agg = georeference(agg.transpose("period", "y", "x"), str(gpp.attrs["crs"]))
        path = folder / f"gpp_{period}.nc"
        agg.to_netcdf(path, engine="netcdf4")
        written.append(path)
    return written


def _write_tif(path: Path, bands: list[np.ndarray], names: list[str], gpp: xr.Dataset, units: str) -> None:
    import rasterio
    from rasterio.transform import Affine

    a, b, c, d, e, f = transform_of(gpp)
    with rasterio.open(path, "w", driver="GTiff", width=gpp.sizes["x"], height=gpp.sizes["y"], count=len(bands),
                       dtype="float32", crs=str(gpp.attrs["crs"]), transform=Affine(a, b, c, d, e, f), nodata=np.nan,
                       compress="deflate") as dst:
        for i, (band, name) in enumerate(zip(bands, names, strict=True), start=1):
            dst.write(np.asarray(band, dtype=np.float32), i)
            dst.set_band_description(i, name)
            dst.update_tags(i, units=units)
        dst.update_tags(synthetic=str(bool(gpp.attrs.get("synthetic", 0))), source="ecoembed predict-gpp")


def write_geotiffs(gpp: xr.Dataset, folder: Path) -> list[Path]:
    """``gpp_mean.tif`` (mean daily GPP, mean interval width, share of days outside the envelope) and annual sums."""
    mean = gpp["gpp"].mean("time").values
    width = (gpp["gpp_upper"] - gpp["gpp_lower"]).mean("time").values
    outside = (gpp["outside_envelope"] > 0).mean("time").values
    path = folder / "gpp_mean.tif"
    _write_tif(path, [mean, width, outside], ["mean daily GPP (gC m-2 d-1)", "mean interval width (gC m-2 d-1)",
                                              "share of days outside the training envelope (0-1)"], gpp, "see band description")
    written = [path]
    days = pd.DatetimeIndex(gpp["time"].values)
    for year in sorted(set(days.year)):
        sel = np.flatnonzero(days.year == year)
        if len(sel) < ANNUAL_MIN_DAYS:
            continue
        sub = gpp["gpp"].isel(time=sel)
        total = sub.sum("time", min_count=1).where(sub.notnull().sum("time") >= ANNUAL_MIN_DAYS).values
        if not np.isfinite(total).any():
            continue  # no pixel has a prediction on every day of that year: no annual sum to write
        p = folder / f"gpp_annual_{year}.tif"
        _write_tif(p, [total], [f"GPP {year} (gC m-2 yr-1)"], gpp, "gC m-2 yr-1")
        written.append(p)
    return written
