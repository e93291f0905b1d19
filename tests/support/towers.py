"""SYNTHETIC tower folders as point extractions and flux downloads come: band and index tables, ISO-date DD files.

GPP follows a light-use-efficiency law (GPP = eps * NDVI-like greenness x potential
radiation + noise), the bands follow a seasonal green-up (red falls and NIR rises
with greenness), so index x radiation features carry the signal and radiation alone
does not. File names say ``synthetic``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecoembed.gpp.radiation import potential_radiation

BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")


def greenness(days: pd.DatetimeIndex, peak_doy: float, amplitude: float) -> np.ndarray:
    doy = days.day_of_year.to_numpy(float)
    return 0.15 + amplitude * np.exp(-0.5 * ((doy - peak_doy) / 45.0) ** 2)


def write_tower(folder: Path, site: str, lat: float, *, seed: int, start: str = "2019-01-01", end: str = "2020-12-31",
                revisit: int = 5, ppi_fill_days: int = 0) -> dict[str, Path]:
    """One site's SYNTHETIC files: GPP DD (ISO dates, days missing, no QC column), band table, index tables."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(start, end, freq="D")
    g = greenness(days, peak_doy=170 + 10 * seed, amplitude=0.55 + 0.05 * seed)
    sw = potential_radiation(lat, days)
    gpp = 0.045 * g * sw + rng.normal(0, 0.4, len(days))
    keep = rng.random(len(days)) > 0.15  # QC-filtered by the source: days missing, not flagged
    nt = gpp + rng.normal(0, 0.2, len(days))
    flux = pd.DataFrame({"TIMESTAMP": days.strftime("%Y-%m-%d"), "GPP_NT_VUT_REF": nt, "GPP_DT_VUT_REF": 2 * gpp - nt,
                         "database": "synthetic"})[keep]
    paths: dict[str, Path] = {}
    folder.mkdir(parents=True, exist_ok=True)
    paths["flux"] = folder / f"{site}_synthetic_GPP_DD_{days[0].year}-{days[-1].year}.csv"
    flux.to_csv(paths["flux"], index=False)
    obs = days[::revisit]
    go = g[::revisit]
    red = 0.12 - 0.1 * go + rng.normal(0, 0.003, len(obs))
    nir = 0.15 + 0.45 * go + rng.normal(0, 0.005, len(obs))
    table = {"date": obs.strftime("%Y-%m-%d")}
    for band in BANDS:
        base = {"B2": 0.6, "B3": 0.8, "B4": 1.0, "B5": 1.2}.get(band)
        value = red * base if base is not None else (nir if band in ("B6", "B7", "B8", "B8A") else 0.5 * nir - 0.2 * red)
        table[band] = value if band in ("B4", "B8") else value + rng.normal(0, 0.004, len(obs))
    bands = pd.DataFrame(table)
    paths["bands"] = folder / f"{site}_S2L2A_synthetic.csv"
    bands.to_csv(paths["bands"], index=False)
    ndvi = (bands["B8"] - bands["B4"]) / (bands["B8"] + bands["B4"])
    paths["ndvi"] = folder / f"{site}_S2_NDVI_EVI2_synthetic.csv"
    pd.DataFrame({"t": table["date"], "NDVI": ndvi, "EVI2": 2.5 * (bands["B8"] - bands["B4"]) / (bands["B8"] + 2.4 * bands["B4"] + 1)}
                 ).to_csv(paths["ndvi"], index=False)
    ppi = (2.0 * go).astype(float)
    ppi[:ppi_fill_days] = -32768.0
    paths["ppi"] = folder / f"{site}_S2_PPI_synthetic.csv"
    pd.DataFrame({"t": table["date"], "PPI_mean": ppi}).to_csv(paths["ppi"], index=False)
    return paths


def write_tower_sites(root: Path, n_sites: int = 4, *, nodata: float | None = -32768.0) -> Path:
    """``sites.csv`` (relative paths) of ``n_sites`` SYNTHETIC towers with band and index tables."""
    rows = []
    for i in range(n_sites):
        site = f"ZZ-P{i}"
        lat = 45.0 + 3 * i
        p = write_tower(root / site, site, lat, seed=i, ppi_fill_days=2)
        rows.append({"site_id": site, "lat": lat, "lon": 5.0 + i, "igbp": ["GRA", "CRO", "DBF", "ENF"][i % 4],
                     "flux_path": f"{site}/{p['flux'].name}", "s2_path": f"{site}/{p['bands'].name}",
                     "indices_path": f"{site}/{p['ndvi'].name};{site}/{p['ppi'].name}", "nodata": nodata, "synthetic": True})
    csv = root / "sites.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv
