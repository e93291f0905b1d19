"""Report of a ``predict-gpp`` output: GPP maps, seasonal panels, uncertainty and envelope maps, series.

Reads only the output folder (``gpp.nc`` / ``gpp.zarr``, ``provenance.json``)
and writes ``figures/*.png`` and a self-contained ``index.html`` (figures
embedded). Tower locations of the run that fitted the model are marked where
they fall inside the map (WGS84 lat/lon projected into the cube's CRS).
"""

from __future__ import annotations

import html as html_lib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Transformer

from ecoembed.io_utils import atomic_write_text
from ecoembed.report.common import img_html, save_figure

MAP_FIGURES: tuple[str, ...] = ("gpp_mean.png", "gpp_monthly.png", "gpp_uncertainty.png", "gpp_envelope.png", "gpp_series.png")
"""Figures of a predict-gpp report, in page order."""


def open_gpp(folder: str | os.PathLike[str]) -> xr.Dataset:
    """The GPP cube of a predict-gpp output folder (``gpp.nc`` or ``gpp.zarr``)."""
    p = Path(folder)
    if (p / "gpp.nc").is_file():
        return xr.open_dataset(p / "gpp.nc", engine="netcdf4", chunks={})
    return xr.open_zarr(p / "gpp.zarr", consolidated=False)


def _towers(prov: dict[str, Any], ds: xr.Dataset) -> list[tuple[str, float, float]]:
    """(site_id, x, y) of the run's towers inside the map extent."""
    crs = str(ds.attrs.get("crs", ""))
    if not crs:
        return []
    to = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = ds["x"].values, ds["y"].values
    dx = abs(float(x[1] - x[0])) if len(x) > 1 else 10.0
    dy = abs(float(y[1] - y[0])) if len(y) > 1 else 10.0
    out = []
    for site in prov.get("sites", []):
        try:
            tx, ty = to.transform(float(site["lon"]), float(site["lat"]))
        except (KeyError, TypeError, ValueError):
            continue
        if x.min() - dx / 2 <= tx <= x.max() + dx / 2 and y.min() - dy / 2 <= ty <= y.max() + dy / 2:
            out.append((str(site["site_id"]), float(tx), float(ty)))
    return out


def _extent(ds: xr.Dataset) -> tuple[float, float, float, float]:
    x, y = ds["x"].values.astype(float), ds["y"].values.astype(float)
    dx = abs(x[1] - x[0]) if len(x) > 1 else 10.0
    dy = abs(y[1] - y[0]) if len(y) > 1 else 10.0
    return (x.min() - dx / 2, x.max() + dx / 2, y.min() - dy / 2, y.max() + dy / 2)


def _map(ax: Any, data: np.ndarray, ds: xr.Dataset, towers: list[tuple[str, float, float]], *, cmap: str,
         label: str, vmin: float | None = None, vmax: float | None = None) -> None:
    y = ds["y"].values
    img = data if len(y) < 2 or y[0] > y[-1] else data[::-1]  # north up
    im = ax.imshow(img, extent=_extent(ds), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    for sid, tx, ty in towers:
        ax.plot(tx, ty, marker="^", color="black", markerfacecolor="white", markersize=8)
        ax.annotate(sid, (tx, ty), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=7)
    plt.colorbar(im, ax=ax, label=label, shrink=0.85)


def build_map_report(folder: str | os.PathLike[str]) -> Path:
    """Write ``figures/`` and ``index.html`` of a predict-gpp output folder; returns the HTML path."""
    out = Path(folder)
    prov = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    synthetic = bool(prov.get("synthetic", False))
    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    ds = open_gpp(out)
    towers = _towers(prov, ds)
    days = pd.DatetimeIndex(ds["time"].values)
    n_pix = ds.sizes["y"] * ds.sizes["x"]
    level = float(ds.attrs.get("interval_level", 0.9))
    model = f"{ds.attrs.get('model_features', '?')} / {ds.attrs.get('model_head', '?')}"
    period = f"{days[0].date()} to {days[-1].date()} ({len(days)} days)"
    captions: dict[str, str] = {}

    mean = ds["gpp"].mean("time").values
    fig, ax = plt.subplots(figsize=(6.5, 5.2))
    _map(ax, mean, ds, towers, cmap="YlGn", label="mean GPP (gC m-2 d-1)")
    ax.set_title(f"Mean daily GPP, {period}")
    save_figure(fig, figs / "gpp_mean.png", synthetic=synthetic)
    captions["gpp_mean.png"] = (f"Mean daily GPP (gC m-2 d-1) over {period}, {model}; {n_pix} pixels of "
                                f"{abs(float(ds['x'][1] - ds['x'][0])) if ds.sizes['x'] > 1 else 10:g} m; "
                                "triangles: towers of the fitting run.")

    monthly = ds["gpp"].groupby("time.month").mean("time")
    months = [int(m) for m in monthly["month"].values]
    ncol = min(4, len(months))
    nrow = int(np.ceil(len(months) / ncol))
    vmax = float(np.nanmax(monthly.values)) if np.isfinite(monthly.values).any() else 1.0
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.9 * nrow), squeeze=False)
    y = ds["y"].values
    for k, ax in enumerate(axes.ravel()):
        if k >= len(months):
            ax.axis("off")
            continue
        data = monthly.sel(month=months[k]).values
        im = ax.imshow(data if len(y) < 2 or y[0] > y[-1] else data[::-1], extent=_extent(ds), cmap="YlGn", vmin=0, vmax=vmax,
                       interpolation="nearest")
        ax.set_title(pd.Timestamp(2001, months[k], 1).strftime("%B"), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        for _, tx, ty in towers:
            ax.plot(tx, ty, marker="^", color="black", markerfacecolor="white", markersize=5)
    fig.colorbar(im, ax=axes.ravel().tolist(), label="mean GPP (gC m-2 d-1)", shrink=0.8)
    fig.suptitle("Seasonal cycle: monthly mean of daily GPP")
    save_figure(fig, figs / "gpp_monthly.png", synthetic=synthetic)
    captions["gpp_monthly.png"] = f"Monthly means of daily GPP (gC m-2 d-1), {period}; same colour scale in every panel."

    width = (ds["gpp_upper"] - ds["gpp_lower"]).mean("time").values
    fig, ax = plt.subplots(figsize=(6.5, 5.2))
    _map(ax, width, ds, towers, cmap="magma_r", label=f"mean {100 * level:g} % interval width (gC m-2 d-1)", vmin=0.0)
    ax.set_title(f"Uncertainty: {100 * level:g} % split-conformal interval")
    save_figure(fig, figs / "gpp_uncertainty.png", synthetic=synthetic)
    cov = next((c for c in prov.get("model", {}).get("coverage_held_out_sites", []) if abs(float(c["level"]) - level) < 1e-9), None)
    cov_txt = (f"; on held-out tower sites these intervals covered {100 * float(cov['coverage']):.1f} % of {cov['n']} days "
               f"({cov['sites']} sites)") if cov else ""
    captions["gpp_uncertainty.png"] = (f"Mean width (gC m-2 d-1) of the {100 * level:g} % interval: {ds.attrs.get('interval_method', '')}"
                                       f"{cov_txt}.")

    outside = (ds["outside_envelope"] > 0).mean("time").values
    fig, ax = plt.subplots(figsize=(6.5, 5.2))
    _map(ax, outside, ds, towers, cmap="Reds", label="share of days outside the training envelope (0-1)", vmin=0.0, vmax=1.0)
    ax.set_title("Extrapolation: features outside the towers' range")
    save_figure(fig, figs / "gpp_envelope.png", synthetic=synthetic)
    captions["gpp_envelope.png"] = ("Share of days (0-1) on which at least one model feature lies outside its range over the "
                                    f"training tower-days ({ds.attrs.get('training_sites', '')}); predictions there extrapolate.")

    fig, ax = plt.subplots(figsize=(9, 3.6))
    with warnings.catch_warnings():  # days without any prediction (no embedding) are NaN in the series, as they should be
        warnings.simplefilter("ignore", RuntimeWarning)
        med = ds["gpp"].median(["y", "x"]).values
        lo = ds["gpp_lower"].median(["y", "x"]).values
        hi = ds["gpp_upper"].median(["y", "x"]).values
    ax.fill_between(days, lo, hi, color="#9bc59d", alpha=0.5, label=f"median {100 * level:g} % interval")
    ax.plot(days, med, color="#1b5e20", lw=1.2, label="median over pixels")
    for sid, tx, ty in towers[:3]:
        series = ds["gpp"].sel(x=tx, y=ty, method="nearest").values
        ax.plot(days, series, lw=0.9, label=f"tower pixel {sid}")
    ax.set_ylabel("GPP (gC m-2 d-1)")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("Daily GPP over the map")
    save_figure(fig, figs / "gpp_series.png", synthetic=synthetic)
    captions["gpp_series.png"] = f"Median daily GPP (gC m-2 d-1) over the {n_pix} pixels with its interval, and tower pixels."
    ds.close()

    banner = ('<p style="background:#b00020;color:white;padding:6px;font-weight:bold">SYNTHETIC DATA: scenes and towers are '
              "simulated; these maps show the method, not a place.</p>") if synthetic else ""
    files = sorted(p.name for p in out.iterdir() if (p.is_file() and p.suffix in (".nc", ".tif", ".json")) or p.suffix == ".zarr")
    facts = [("model", model), ("period", period), ("pixels", f"{n_pix}"), ("CRS", str(prov.get("settings", {}).get("crs", "")) or
              str(ds.attrs.get("crs", ""))), ("interval", f"{100 * level:g} % split-conformal"),
             ("feature window", f"{ds.attrs.get('window_px', '?')} px (the run's tower window)"),
             ("training sites", str(ds.attrs.get("training_sites", ""))), ("files", ", ".join(files))]
    rows = "".join(f"<tr><th>{html_lib.escape(k)}</th><td>{html_lib.escape(v)}</td></tr>" for k, v in facts)
    body = "".join(f"<h2>{html_lib.escape(name[:-4].replace('_', ' '))}</h2>{img_html(figs / name, captions[name])}"
                   for name in MAP_FIGURES)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>ecoembed GPP map</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}th{text-align:left;padding-right:12px}</style>"
            f"</head><body>{banner}<h1>Daily GPP map (gC m-2 d-1)</h1><table id='map-facts'>{rows}</table>{body}</body></html>")
    path = out / "index.html"
    atomic_write_text(path, page)
    return path
