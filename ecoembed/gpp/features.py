"""Feature sets for GPP heads and the per-site daily feature table.

Feature set names, combinable with ``+`` (``"embeddings+meteo"``):

* ``embeddings``: the embedding cube (``features_path``), columns ``emb_000`` ...;
  ``embeddings:NAME`` another embedding product of the same sites (column ``features_path_NAME``
  of sites.csv, e.g. ``embeddings:s2only``), columns ``emb_NAME_000`` ..., so products compare
  in one run on the same days
* ``bands``: Sentinel-2 reflectances (``s2_path``), columns ``B02`` ... (0..1)
* ``indices``: ``NDVI``, ``NIRv``, ``kNDVI``, ``EVI2`` (unitless), per pixel then window-averaged,
  from the bands of ``s2_path``; index tables (``indices_path``, ``;``-separated, e.g. HR-VPP
  NDVI/EVI2, PPI and LAI exports) add ``PPI`` and ``LAI`` and stand in for ``NDVI``/``EVI2``
  where the site has no band cube (where both exist the band-derived values are used)
* ``meteo``: ``TA`` (degC), ``SW_IN`` (W m-2), ``VPD`` (hPa) from the flux table
* ``indices_x_par``: ``NIRv_x_PAR``, ``NDVI_x_PAR`` with ``PAR`` in mol m-2 d-1
  (``PPFD_IN`` umol m-2 s-1 x 0.0864, else ``SW_IN`` W m-2 x 2.04 umol J-1 x 0.0864)
* ``potrad``: ``SW_IN_POT`` (W m-2, daily mean top-of-atmosphere shortwave from latitude and
  day of year, :mod:`ecoembed.gpp.radiation`): a light driver for towers without meteorology
* ``mod17``: ``GPP_MOD17`` (gC m-2 d-1), the MODIS MOD17 light-use-efficiency model with its
  fixed biome parameters (:mod:`ecoembed.gpp.lue`) from NDVI, SW_IN (or PPFD_IN), TA and VPD;
  scored as it is with the ``fixed`` head (no fitting)
* ``indices_x_potrad``: ``NDVI_x_SWPOT``, ``NIRv_x_SWPOT``, ``EVI2_x_SWPOT``, ``PPI_x_SWPOT``
  (index x ``SW_IN_POT``, W m-2; those whose index exists): light-use-efficiency style, meteo-free

``s2_path`` and ``indices_path`` take cubes (``.nc``/``.zarr``) or point tables (``.csv``,
``.parquet``: one row per acquisition at the tower, :mod:`ecoembed.sources.points`); a
``nodata`` column in sites.csv declares the fill value of a site's tables and cubes (e.g.
``-32768``; -9999 is always masked), an ``s2_values`` column what their band numbers are
(``reflectance`` or ``dn``) where the files' metadata does not say
(:mod:`ecoembed.sensors.values`: decided from metadata or these options, never from the values).

Every cube read here, embedding cubes included, is checked before its pixels are windowed
(:func:`ecoembed.sources.grid.require_metric_grid`, via the tower placement): a projected CRS
and an x/y spacing that agrees with its ``resolution_m``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ecoembed.dates import days_to_nearest, to_days
from ecoembed.errors import InputError
from ecoembed.gpp.footprint import TowerWindow, tower_window
from ecoembed.gpp.join import aggregate_cube, to_daily
from ecoembed.gpp.lue import mod17_gpp
from ecoembed.gpp.options import DEFAULT_MAX_GAP_DAYS, DEFAULT_WINDOW_PX, FEATURE_SETS
from ecoembed.gpp.radiation import potential_radiation
from ecoembed.sensors import indices as ix
from ecoembed.sensors.values import OPTICAL_VALUES
from ecoembed.sources.embedding_cube import NO_OBSERVATION, QUALITY_LAYERS, open_embeddings
from ecoembed.sources.local import open_cube
from ecoembed.sources.points import is_point_table, merge_point_cubes, point_cube
from fluxnet import split_path_list

METEO_COLUMNS: tuple[str, ...] = ("TA", "SW_IN", "VPD")
INDEX_COLUMNS: tuple[str, ...] = ("NDVI", "NIRv", "kNDVI", "EVI2", "PPI", "LAI")
PAR_PRODUCTS: tuple[str, ...] = ("NIRv_x_PAR", "NDVI_x_PAR")
POTRAD_INDICES: tuple[str, ...] = ("NDVI", "NIRv", "EVI2", "PPI")
"""Indices multiplied by ``SW_IN_POT`` for ``indices_x_potrad``."""
POTRAD_PRODUCTS: tuple[str, ...] = tuple(f"{i}_x_SWPOT" for i in POTRAD_INDICES)
UMOL_S_TO_MOL_D = 0.0864
"""umol m-2 s-1 (daily mean) -> mol m-2 d-1."""
SW_TO_PPFD = 2.04
"""umol J-1: PAR photons per joule of shortwave (0.45 PAR fraction x 4.57 umol J-1)."""


VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,31}$")
"""Names of embedding variants (``embeddings:NAME``): lower-case letters, digits, ``_``."""


def embedding_variant(component: str) -> str | None:
    """``"s2only"`` for ``"embeddings:s2only"``, ``""`` for ``"embeddings"``, None for other components."""
    if component == "embeddings":
        return ""
    if component.startswith("embeddings:"):
        return component.split(":", 1)[1]
    return None


def variant_path_column(variant: str) -> str:
    """sites.csv column of an embedding variant's cubes (``features_path`` or ``features_path_NAME``)."""
    return f"features_path_{variant}" if variant else "features_path"


def variant_prefix(variant: str) -> str:
    """Column prefix of an embedding variant's dimensions (``emb_`` or ``emb_NAME_``)."""
    return f"emb_{variant}_" if variant else "emb_"


def parse_feature_set(spec: str) -> list[str]:
    """Components of a feature-set spec (``"embeddings+meteo"`` -> ``["embeddings", "meteo"]``).

    Raises:
        InputError: empty or unknown component.
    """
    parts = [p.strip() for p in str(spec).split("+") if p.strip()]
    bad = [p for p in parts if p not in FEATURE_SETS and not (p.startswith("embeddings:") and VARIANT_NAME.match(p[11:]))]
    if not parts or bad:
        raise InputError(f"feature set {spec!r}: unknown part(s) {bad or ['(empty)']}; use {', '.join(FEATURE_SETS)} "
                         "(or embeddings:NAME, read from the sites.csv column features_path_NAME) joined with '+'")
    return parts


def needs(feature_sets: Sequence[str]) -> set[str]:
    """Which sources the feature sets need: ``embeddings`` (features_path), ``s2`` (s2_path), ``flux``."""
    comps = {c for s in feature_sets for c in parse_feature_set(s)}
    out = {"flux"}
    if any(embedding_variant(c) is not None for c in comps):
        out.add("embeddings")
    if comps & {"bands", "indices", "indices_x_par", "indices_x_potrad", "mod17"}:
        out.add("s2")
    return out


def columns_for(spec: str, columns: Sequence[str]) -> list[str]:
    """Feature columns of ``spec`` present among ``columns`` (in a stable order).

    Raises:
        InputError: a component has no column.
    """
    cols = list(columns)
    out: list[str] = []
    for comp in parse_feature_set(spec):
        variant = embedding_variant(comp)
        if variant is not None:
            pattern = re.compile(rf"^{re.escape(variant_prefix(variant))}\d+$")
            got = [c for c in cols if pattern.match(c)]
        elif comp == "mod17":
            got = [c for c in ("GPP_MOD17",) if c in cols]
        elif comp == "bands":
            got = [c for c in cols if len(c) <= 3 and c.startswith("B") and c[1:3].rstrip("A").isdigit()]
        elif comp == "indices":
            got = [c for c in INDEX_COLUMNS if c in cols]
        elif comp == "meteo":
            got = [c for c in METEO_COLUMNS if c in cols]
        elif comp == "potrad":
            got = [c for c in ("SW_IN_POT",) if c in cols]
        elif comp == "indices_x_potrad":
            got = [c for c in POTRAD_PRODUCTS if c in cols]
        else:
            got = [c for c in PAR_PRODUCTS if c in cols]
        if not got:
            raise InputError(f"feature set {spec!r}: no columns for {comp!r} (have {cols[:12]}...); "
                             "check the matching path column in sites.csv (s2_path or indices_path for indices)")
        out += [c for c in got if c not in out]
    return out


def par_mol_per_day(flux: pd.DataFrame) -> np.ndarray:
    """Daily PAR (mol m-2 d-1) from ``PPFD_IN`` (umol m-2 s-1), falling back to ``SW_IN`` (W m-2) x 2.04."""
    sw = flux["SW_IN"].to_numpy(float) if "SW_IN" in flux else np.full(len(flux), np.nan)
    ppfd = flux["PPFD_IN"].to_numpy(float) if "PPFD_IN" in flux else np.full(len(flux), np.nan)
    return np.where(np.isfinite(ppfd), ppfd, sw * SW_TO_PPFD) * UMOL_S_TO_MOL_D


def s2_variables(cube: xr.Dataset) -> xr.Dataset:
    """Bands (reflectance 0..1, masked by ``valid``) plus per-pixel NDVI, NIRv, kNDVI, EVI2 of an S2 cube."""
    bands = [str(v) for v in cube.data_vars if str(v).startswith("B") and {"time", "y", "x"} <= set(cube[v].dims)]
    valid = cube["valid"].astype(bool) if "valid" in cube else True
    out = xr.Dataset({b: cube[b].astype(np.float32).where(valid) for b in bands}, attrs=dict(cube.attrs))
    if "B04" in cube and "B08" in cube:
        out["NDVI"], out["NIRv"], out["kNDVI"], out["EVI2"] = ix.ndvi(cube), ix.nirv(cube), ix.kndvi(cube), ix.evi2(cube)
    return out


DAYS_TO_OBS = "days_to_obs"
"""Column of the joined table: days from each day to the nearest valid satellite observation at the tower
(the embedding cube's quality layers, min over S2 and S1; else the band/index observation dates)."""


def _days_to_obs(ds: xr.Dataset, raw: pd.DataFrame, lat: float, lon: float, source: str, key: str) -> pd.Series:
    """Daily days-to-nearest-observation of one source: quality layers (tower pixel) of an embedding cube, else its dates."""
    layers = [q for q in QUALITY_LAYERS if q in ds]
    if key == "embeddings" and layers:
        table = aggregate_cube(ds, lat, lon, size_px=1, source=source, variables=layers)
        days = table.where(table < NO_OBSERVATION).min(axis=1)
        return days.groupby(pd.DatetimeIndex(days.index).floor("D")).min()
    obs = pd.DatetimeIndex(raw.index[np.isfinite(raw.to_numpy(float)).any(axis=1)]).floor("D").unique().sort_values()
    if not len(obs):
        return pd.Series(dtype=float)
    every_day = pd.date_range(obs.min(), obs.max(), freq="D")
    return pd.Series(days_to_nearest(to_days(obs), to_days(every_day)).astype(float), index=every_day)


def _nodata(site: pd.Series) -> float | None:
    """The fill value sites.csv declares for a site's point tables (``nodata`` column), or None."""
    value = site.get("nodata")
    if value is None or (isinstance(value, float) and not np.isfinite(value)) or str(value).strip() == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"site {site['site_id']}: nodata {value!r} in sites.csv is not a number (e.g. -32768)") from None


S2_VALUES_COLUMN = "s2_values"
"""sites.csv column saying what a site's S2 band numbers are (``reflectance`` | ``dn``) when the files do not."""


def _values(site: pd.Series) -> str | None:
    """What sites.csv says a site's S2 band numbers are (``s2_values`` column), or None."""
    value = site.get(S2_VALUES_COLUMN)
    if value is None or (isinstance(value, float) and not np.isfinite(value)) or str(value).strip() == "":
        return None
    text = str(value).strip().lower()
    if text not in OPTICAL_VALUES:
        raise InputError(f"site {site['site_id']}: {S2_VALUES_COLUMN} {value!r} in sites.csv is not one of "
                         f"{', '.join(OPTICAL_VALUES)}")
    return text


def open_s2_source(paths: Sequence[str], site: pd.Series) -> xr.Dataset:
    """The S2 cube of ``s2_path`` (one or several files): cube files, or point tables placed at the site's lat/lon.

    The site's ``nodata`` and ``s2_values`` (sites.csv) are the ``nodata`` / ``values`` options of the reader.
    """
    if any(is_point_table(p) for p in paths):
        return open_cube(list(paths), "s2", point=(float(site["lat"]), float(site["lon"])), nodata=_nodata(site),
                         values=_values(site))
    return open_cube(list(paths), "s2", nodata=_nodata(site), values=_values(site))


def open_index_source(paths: Sequence[str], site: pd.Series) -> xr.Dataset:
    """The index tables/cubes of ``indices_path`` as one cube of index variables (NDVI, EVI2, PPI, LAI ...)."""
    cubes = []
    for path in paths:
        if not is_point_table(path):
            cubes.append(open_cube(path, "s2", nodata=_nodata(site), values=_values(site)))
            continue
        cubes.append(point_cube(path, lat=float(site["lat"]), lon=float(site["lon"]), site_id=str(site["site_id"]),
                                nodata=_nodata(site), values=_values(site)))
    merged = merge_point_cubes(cubes)
    keep = [v for v in merged.data_vars if str(v) in INDEX_COLUMNS or str(v) == "valid"]
    if not [v for v in keep if v != "valid"]:
        raise InputError(f"site {site['site_id']}: indices_path {'; '.join(paths)} holds none of {', '.join(INDEX_COLUMNS)}")
    return merged[keep]


def site_features(site: pd.Series, flux: pd.DataFrame, feature_sets: Sequence[str], *,
                  window_px: int = DEFAULT_WINDOW_PX, max_gap_days: int = DEFAULT_MAX_GAP_DAYS,
                  footprint: str = "window") -> tuple[pd.DataFrame, dict[str, Any]]:
    """Daily feature table of one site (index = date) for the union of ``feature_sets``.

    Cube features are aggregated over the tower window and interpolated to days
    (gaps > ``max_gap_days`` stay NaN); meteorology and PAR come from ``flux``,
    ``SW_IN_POT`` from the site's latitude. The table spans the cubes' common
    period (the flux period when no cube is used).

    ``footprint="ffp"`` weights cube pixels by the site's FFP footprint climatology
    (:mod:`ecoembed.gpp.footprint`; the Gaussian window, with the reason, when inputs are missing).

    Returns:
        ``(features, info)``; ``info`` has ``synthetic`` (any cube flagged synthetic), ``inputs`` (paths
        read) and ``footprint`` (how the first cube's pixels were weighted, a ``footprint.csv`` row).

    Raises:
        InputError/CubeError: a needed path is empty, a cube is unreadable or the tower is outside it.
    """
    need = needs(feature_sets)
    comps = {c for s in feature_sets for c in parse_feature_set(s)}
    sid = str(site["site_id"])
    parts: list[pd.DataFrame] = []
    info: dict[str, Any] = {"synthetic": False, "inputs": []}

    def has(column: str) -> bool:
        value = site.get(column)
        return isinstance(value, str) and bool(value.strip())

    sources: list[tuple[str, str, str]] = []  # (kind, sites.csv column, embedding variant)
    support: list[pd.Series] = []
    windows: dict[tuple[Any, ...], TowerWindow] = {}
    variants = sorted({v for c in comps if (v := embedding_variant(c)) is not None})
    for variant in variants:
        column = variant_path_column(variant)
        if not has(column):
            raise InputError(f"site {sid}: the feature sets need {column} in sites.csv, but it is empty")
        sources.append(("embeddings", column, variant))
    if "s2" in need:
        if has("s2_path"):
            sources.append(("s2", "s2_path", ""))
        if has("indices_path") and comps & {"indices", "indices_x_par", "indices_x_potrad", "mod17"}:
            sources.append(("indices", "indices_path", ""))
        if not has("s2_path") and ("bands" in comps or not has("indices_path")):
            raise InputError(f"site {sid}: the feature sets need s2_path{'' if 'bands' in comps else ' or indices_path'} "
                             "in sites.csv, but it is empty")
    for key, column, variant in sources:
        path = str(site[column])
        paths = [path] if key == "embeddings" else split_path_list(path)
        src = f"site {sid} {column} {'; '.join(Path(p).name for p in paths)}"
        if key == "embeddings":
            ds = open_embeddings(path)
        elif key == "s2":
            ds = s2_variables(open_s2_source(paths, site))
        else:
            ds = open_index_source(paths, site)
        info["synthetic"] |= bool(ds.attrs.get("synthetic", False))
        info["inputs"] += paths
        with ds:
            grid_key = (str(ds.attrs.get("crs")), ds.sizes["y"], ds.sizes["x"], float(ds["x"].values[0]), float(ds["y"].values[0]))
            if grid_key not in windows:
                windows[grid_key] = tower_window(ds, site, method=footprint, window_px=window_px, source=src)
                info.setdefault("footprint", windows[grid_key].describe(sid))
            tw = windows[grid_key]
            raw = aggregate_cube(ds, float(site["lat"]), float(site["lon"]), size_px=window_px, source=src,
                                 variables=["embedding"] if key == "embeddings" else None, window=(tw.rows, tw.cols, tw.weights))
            support.append(_days_to_obs(ds, raw, float(site["lat"]), float(site["lon"]), src, key))
        if variant:
            prefix = variant_prefix(variant)
            raw = raw.rename(columns={c: prefix + str(c)[4:] for c in raw.columns if str(c).startswith("emb_")})
        if key == "indices" and any(k == "s2" for k, _, _ in sources):
            raw = raw.drop(columns=[c for c in ("NDVI", "NIRv", "kNDVI", "EVI2") if c in raw.columns])
        parts.append(to_daily(raw, max_gap_days=max_gap_days))
    fdates = pd.DatetimeIndex(pd.to_datetime(flux["date"])).floor("D")
    if parts:
        lo = max(p.index.min() for p in parts)
        hi = min(p.index.max() for p in parts)
        days = pd.date_range(lo, hi, freq="D", name="date") if lo <= hi else pd.DatetimeIndex([], name="date")
        feats = pd.concat([p.reindex(days) for p in parts], axis=1).copy()  # one block: later inserts stay cheap
    else:
        feats = pd.DataFrame(index=pd.DatetimeIndex(fdates.unique(), name="date").sort_values())
    if support:
        feats[DAYS_TO_OBS] = pd.concat([d.reindex(feats.index) for d in support], axis=1).min(axis=1).to_numpy()
    met = pd.DataFrame({c: flux[c].to_numpy(float) for c in METEO_COLUMNS if c in flux}, index=fdates)
    met["PAR"] = par_mol_per_day(flux)
    met = met[~met.index.duplicated()].reindex(feats.index)
    derived: dict[str, np.ndarray] = {c: met[c].to_numpy(float) for c in met.columns}  # added at once (no fragmentation)
    par = derived["PAR"]
    if "NIRv" in feats:
        derived["NIRv_x_PAR"] = feats["NIRv"].to_numpy(float) * par
        derived["NDVI_x_PAR"] = feats["NDVI"].to_numpy(float) * par
    potrad = np.asarray(potential_radiation(float(site["lat"]), pd.DatetimeIndex(feats.index)) if len(feats) else np.zeros(0),
                        dtype=float)
    derived["SW_IN_POT"] = potrad
    for name in POTRAD_INDICES:
        if name in feats:
            derived[f"{name}_x_SWPOT"] = feats[name].to_numpy(float) * potrad
    if "NDVI" in feats and {"TA", "VPD"} <= set(derived):
        derived["GPP_MOD17"] = mod17_gpp(feats["NDVI"].to_numpy(float), par, derived["TA"], derived["VPD"], site.get("igbp"))
    feats = pd.concat([feats.drop(columns=[c for c in derived if c in feats.columns]),
                       pd.DataFrame(derived, index=feats.index)], axis=1)
    feats.index.name = "date"
    return feats, info
