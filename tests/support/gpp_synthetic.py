"""SYNTHETIC multi-site fixture for fit-gpp tests: embedding cubes (.nc) + FLUXNET DD files (LUE GPP)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

LUE = 0.6  # gC mol-1 photons (synthetic)


def make_sites(root: Path, n_sites: int = 5, n_feat: int = 6, start: str = "2019-01-01", days: int = 365,
               size_px: int = 9, seed: int = 0, s2: bool = False) -> Path:
    """Write SYNTHETIC sites: embedding feature 0 = fAPAR-like (site-specific phase/amplitude), others noise.

    GPP (gC m-2 d-1) = LUE x fAPAR x PAR (mol m-2 d-1) + noise; meteorology shares one seasonal phase
    across sites, so meteo alone cannot know each site's fAPAR. Returns sites.csv.
    """
    from fluxnet import write_fluxnet_dd
    from pyproj import Transformer

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    dates = pd.date_range(start, periods=days, freq="D")
    doy = dates.day_of_year.to_numpy()
    rows = []
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32632", always_xy=True)
    for i in range(n_sites):
        sid = f"ZZ-T{i}"
        lat, lon = 45.0 + 0.1 * i, 9.0 + 0.1 * i
        tx, ty = to_utm.transform(lon, lat)
        peak = 120 + (35 * i) % 180  # day of peak fAPAR: spread over the season, also with many sites
        fapar = 0.15 + (0.3 + 0.1 * (i % 3)) * np.exp(-((doy - peak) / 40.0) ** 2)
        sw = 180 + 110 * np.sin(2 * np.pi * (doy - 80) / 365) + rng.normal(0, 30, days)
        sw = np.clip(sw, 20, None)
        ppfd = sw * 2.04
        par = ppfd * 0.0864
        ta = 12 + 10 * np.sin(2 * np.pi * (doy - 110) / 365) + rng.normal(0, 2, days)
        vpd = np.clip(5 + 0.6 * ta + rng.normal(0, 1, days), 0, None)
        gpp = LUE * fapar * par + rng.normal(0, 0.3, days)
        qc = np.where(rng.random(days) < 0.1, 0.5, 0.95)
        gpp[rng.random(days) < 0.03] = np.nan
        flux = pd.DataFrame({"date": dates, "GPP": gpp, "GPP_qc": qc, "TA": ta, "SW_IN": sw, "VPD": vpd,
                             "P": np.zeros(days), "PPFD_IN": ppfd})
        fp = root / f"FLX_{sid}_FLUXNET2015_SUBSET_DD_2019-2019_synthetic.csv"
        write_fluxnet_dd(flux, fp)
        xs = tx + 10.0 * (np.arange(size_px) - size_px // 2)
        ys = ty - 10.0 * (np.arange(size_px) - size_px // 2)
        emb = rng.normal(0, 1, (days, size_px, size_px, n_feat)).astype(np.float32)
        emb[..., 0] = fapar[:, None, None] * 4 + rng.normal(0, 0.05, (days, size_px, size_px))
        emb[-20:] = np.nan  # cube ends with missing days (features_missing)
        ds = xr.Dataset({"embedding": (("time", "y", "x", "feature"), emb)},
                        coords={"time": dates, "y": ys, "x": xs, "feature": np.arange(n_feat)},
                        attrs={"crs": "EPSG:32632", "synthetic": 1, "title": "SYNTHETIC test embedding cube"})
        ep = root / f"{sid}_emb.nc"
        ds.to_netcdf(ep)
        row = {"site_id": sid, "lat": lat, "lon": lon, "igbp": ["ENF", "DBF"][i % 2], "flux_path": fp.name,
               "features_path": ep.name, "synthetic": "true"}
        if s2:
            s2_dates = dates[::5]
            idx = np.arange(0, days, 5)
            red = np.clip(0.12 - 0.15 * (fapar[idx] - 0.15), 0.01, None)
            nir = 0.2 + 0.6 * fapar[idx]
            shape = (len(idx), size_px, size_px)
            cube = xr.Dataset({"B04": (("time", "y", "x"), (red[:, None, None] * np.ones(shape)).astype(np.float32)),
                               "B08": (("time", "y", "x"), (nir[:, None, None] * np.ones(shape)).astype(np.float32)),
                               "valid": (("time", "y", "x"), rng.random(shape) > 0.2)},
                              coords={"time": s2_dates, "y": ys, "x": xs},
                              attrs={"crs": "EPSG:32632", "synthetic": 1, "sensor": "sentinel-2-l2a"})
            sp = root / f"{sid}_s2.nc"
            cube.to_netcdf(sp)
            row["s2_path"] = sp.name
        rows.append(row)
    csv = root / "sites.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv
