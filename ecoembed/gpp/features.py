"""Feature sets for GPP heads and the per-site daily feature table.

Feature set names, combinable with ``+`` (``"embeddings+meteo"``):

* ``embeddings``: the embedding cube (``features_path``), columns ``emb_000`` ...
* ``bands``: Sentinel-2 reflectances (``s2_path``), columns ``B02`` ... (0..1)
* ``indices``: ``NDVI``, ``NIRv``, ``kNDVI``, ``EVI2`` (unitless), per pixel then window-averaged
* ``meteo``: ``TA`` (degC), ``SW_IN`` (W m-2), ``VPD`` (hPa) from the flux table
* ``indices_x_par``: ``NIRv_x_PAR``, ``NDVI_x_PAR`` with ``PAR`` in mol m-2 d-1
  (``PPFD_IN`` umol m-2 s-1 x 0.0864, else ``SW_IN`` W m-2 x 2.04 umol J-1 x 0.0864)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ecoembed.errors import InputError
from ecoembed.gpp.join import aggregate_cube, to_daily
from ecoembed.gpp.options import DEFAULT_MAX_GAP_DAYS, DEFAULT_WINDOW_PX, FEATURE_SETS
from ecoembed.sensors import indices as ix
from ecoembed.sources.embedding_cube import open_embeddings
from ecoembed.sources.local import open_cube

METEO_COLUMNS: tuple[str, ...] = ("TA", "SW_IN", "VPD")
INDEX_COLUMNS: tuple[str, ...] = ("NDVI", "NIRv", "kNDVI", "EVI2")
PAR_PRODUCTS: tuple[str, ...] = ("NIRv_x_PAR", "NDVI_x_PAR")
UMOL_S_TO_MOL_D = 0.0864
"""umol m-2 s-1 (daily mean) -> mol m-2 d-1."""
SW_TO_PPFD = 2.04
"""umol J-1: PAR photons per joule of shortwave (0.45 PAR fraction x 4.57 umol J-1)."""


def parse_feature_set(spec: str) -> list[str]:
    """Components of a feature-set spec (``"embeddings+meteo"`` -> ``["embeddings", "meteo"]``).

    Raises:
        InputError: empty or unknown component.
    """
    parts = [p.strip() for p in str(spec).split("+") if p.strip()]
    bad = [p for p in parts if p not in FEATURE_SETS]
    if not parts or bad:
        raise InputError(f"feature set {spec!r}: unknown part(s) {bad or ['(empty)']}; use {', '.join(FEATURE_SETS)} "
                         "joined with '+'")
    return parts


def needs(feature_sets: Sequence[str]) -> set[str]:
    """Which sources the feature sets need: ``embeddings`` (features_path), ``s2`` (s2_path), ``flux``."""
    comps = {c for s in feature_sets for c in parse_feature_set(s)}
    out = {"flux"}
    if "embeddings" in comps:
        out.add("embeddings")
    if comps & {"bands", "indices", "indices_x_par"}:
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
        if comp == "embeddings":
            got = [c for c in cols if c.startswith("emb_")]
        elif comp == "bands":
            got = [c for c in cols if len(c) <= 3 and c.startswith("B") and c[1:3].rstrip("A").isdigit()]
        elif comp == "indices":
            got = [c for c in INDEX_COLUMNS if c in cols]
        elif comp == "meteo":
            got = [c for c in METEO_COLUMNS if c in cols]
        else:
            got = [c for c in PAR_PRODUCTS if c in cols]
        if not got:
            raise InputError(f"feature set {spec!r}: no columns for {comp!r} (have {cols[:12]}...); "
                             "check the matching path column in sites.csv")
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


def site_features(site: pd.Series, flux: pd.DataFrame, feature_sets: Sequence[str], *,
                  window_px: int = DEFAULT_WINDOW_PX, max_gap_days: int = DEFAULT_MAX_GAP_DAYS) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Daily feature table of one site (index = date) for the union of ``feature_sets``.

    Cube features are aggregated over the tower window and interpolated to days
    (gaps > ``max_gap_days`` stay NaN); meteorology and PAR come from ``flux``.
    The table spans the cubes' common period (the flux period when no cube is used).

    Returns:
        ``(features, info)``; ``info`` has ``synthetic`` (any cube flagged synthetic) and ``inputs`` (paths read).

    Raises:
        InputError/CubeError: a needed path is empty, a cube is unreadable or the tower is outside it.
    """
    need = needs(feature_sets)
    sid = str(site["site_id"])
    parts: list[pd.DataFrame] = []
    info: dict[str, Any] = {"synthetic": False, "inputs": []}
    for key, column in (("embeddings", "features_path"), ("s2", "s2_path")):
        if key not in need:
            continue
        path = site.get(column)
        if not isinstance(path, str) or not path:
            raise InputError(f"site {sid}: the feature sets need {column} in sites.csv, but it is empty")
        src = f"site {sid} {column} {Path(path).name}"
        ds = open_embeddings(path) if key == "embeddings" else s2_variables(open_cube(path, "s2"))
        info["synthetic"] |= bool(ds.attrs.get("synthetic", False))
        info["inputs"].append(path)
        with ds:
            raw = aggregate_cube(ds, float(site["lat"]), float(site["lon"]), size_px=window_px, source=src,
                                 variables=["embedding"] if key == "embeddings" else None)
        parts.append(to_daily(raw, max_gap_days=max_gap_days))
    fdates = pd.DatetimeIndex(pd.to_datetime(flux["date"])).floor("D")
    if parts:
        lo = max(p.index.min() for p in parts)
        hi = min(p.index.max() for p in parts)
        days = pd.date_range(lo, hi, freq="D", name="date") if lo <= hi else pd.DatetimeIndex([], name="date")
        feats = pd.concat([p.reindex(days) for p in parts], axis=1)
    else:
        feats = pd.DataFrame(index=pd.DatetimeIndex(fdates.unique(), name="date").sort_values())
    met = pd.DataFrame({c: flux[c].to_numpy(float) for c in METEO_COLUMNS if c in flux}, index=fdates)
    met["PAR"] = par_mol_per_day(flux)
    met = met[~met.index.duplicated()].reindex(feats.index)
    for c in met.columns:
        feats[c] = met[c].to_numpy()
    if "NIRv" in feats:
        feats["NIRv_x_PAR"] = feats["NIRv"] * feats["PAR"]
        feats["NDVI_x_PAR"] = feats["NDVI"] * feats["PAR"]
    feats.index.name = "date"
    return feats, info
