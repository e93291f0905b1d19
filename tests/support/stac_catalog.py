"""A local static STAC catalog of SYNTHETIC Sentinel-2 L2A items around towers, with real-format GeoTIFF assets.

Reflectance follows a seasonal green-up per site (red falls, NIR rises with
greenness), stored as uint16 DN x 10^4 with SCL; tower GPP follows the same
greenness x potential radiation, so embeddings of the fetched chips carry the
signal. Everything written is labelled synthetic.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import numpy as np
import pandas as pd

from ecoembed.gpp.radiation import potential_radiation
from fluxnet.write import write_fluxnet_dd

EPSG = 32632
Y_TOP = 5_000_000.0
S2_KEYS = {"B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B06": "rededge2", "B07": "rededge3",
           "B08": "nir", "B8A": "nir08", "B11": "swir16", "B12": "swir22", "SCL": "scl"}
BASE = {"B02": 0.04, "B03": 0.07, "B04": 0.08, "B05": 0.12, "B06": 0.2, "B07": 0.24, "B08": 0.26, "B8A": 0.27,
        "B11": 0.22, "B12": 0.14}
GREEN_GAIN = {"B02": -0.01, "B03": 0.01, "B04": -0.05, "B05": 0.0, "B06": 0.08, "B07": 0.12, "B08": 0.2, "B8A": 0.2,
              "B11": -0.05, "B12": -0.05}


def greenness(days: pd.DatetimeIndex, peak_doy: float, amplitude: float) -> np.ndarray:
    """0.15 + amplitude x a Gaussian season peaking at ``peak_doy`` (unitless, 0-1)."""
    doy = days.day_of_year.to_numpy(float)
    return 0.15 + amplitude * np.exp(-0.5 * ((doy - peak_doy) / 45.0) ** 2)


def _lat_lon(x: float, y: float) -> tuple[float, float]:
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(f"EPSG:{EPSG}", "EPSG:4326", always_xy=True).transform(x, y)
    return float(lat), float(lon)


def write_catalog(root: Path, sites: dict[str, float], dates: pd.DatetimeIndex, *, n_px: int = 16,
                  seed: int = 0) -> tuple[Path, Path]:
    """Write ``root/stac/catalog.json`` (one sentinel-2-l2a item per site and date) and ``root/towers.csv`` with flux files.

    Args:
        sites: site id -> raster upper-left x (UTM 32N, m); sites' peaks of greenness differ.
        dates: acquisition dates.
        n_px: raster edge (10 m pixels); the tower is at the raster centre.

    Returns:
        ``(catalog.json, towers.csv)``; towers.csv has ``site_id, lat, lon, igbp, flux_path`` (relative).
    """
    import pystac
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    cat = pystac.Catalog(id="synthetic-towers", description="local test catalog (SYNTHETIC rasters)")
    coll = pystac.Collection(id="sentinel-2-l2a", description="SYNTHETIC", extent=pystac.Extent(
        pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
        pystac.TemporalExtent([[dates[0].to_pydatetime().replace(tzinfo=UTC), dates[-1].to_pydatetime().replace(tzinfo=UTC)]])))
    cat.add_child(coll)
    rows = []
    (root / "flux").mkdir(parents=True, exist_ok=True)
    for k, (site, x0) in enumerate(sites.items()):
        corners = [_lat_lon(x, y) for x in (x0, x0 + 10 * n_px) for y in (Y_TOP, Y_TOP - 10 * n_px)]
        lats, lons = [c[0] for c in corners], [c[1] for c in corners]
        bbox = [min(lons), min(lats), max(lons), max(lats)]
        geometry = {"type": "Polygon", "coordinates": [[[bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]],
                                                        [bbox[0], bbox[3]], [bbox[0], bbox[1]]]]}
        peak, amp = 150.0 + 40 * k, 0.5 + 0.15 * k
        patch = 1.0 + 0.2 * rng.standard_normal((n_px, n_px))  # within-chip heterogeneity of greenness
        g = greenness(dates, peak, amp)
        for i, dt in enumerate(dates):
            item = pystac.Item(id=f"{site}-s2-{i}", geometry=geometry, bbox=bbox,
                               datetime=dt.to_pydatetime().replace(hour=10, minute=30, tzinfo=UTC),
                               properties={"proj:epsg": EPSG})
            folder = root / "assets" / item.id
            folder.mkdir(parents=True)
            for band, key in S2_KEYS.items():
                if band == "SCL":
                    data, dtype, nodata = rng.choice([4, 5, 8], size=(n_px, n_px), p=[0.8, 0.15, 0.05]), "uint8", 0
                else:
                    refl = BASE[band] + GREEN_GAIN[band] * g[i] * patch + rng.normal(0, 0.004, (n_px, n_px))
                    data, dtype, nodata = np.clip(np.round(refl * 10_000), 1, 10_000), "uint16", 0
                with rasterio.open(folder / f"{key}.tif", "w", driver="GTiff", height=n_px, width=n_px, count=1, dtype=dtype,
                                   crs=f"EPSG:{EPSG}", transform=from_origin(x0, Y_TOP, 10.0, 10.0), nodata=nodata) as dst:
                    dst.write(np.asarray(data).astype(dtype), 1)
                item.add_asset(key, pystac.Asset(href=str(folder / f"{key}.tif"), media_type=pystac.MediaType.GEOTIFF,
                                                 roles=["data"]))
            coll.add_item(item)
        lat, lon = _lat_lon(x0 + 10 * (n_px // 2) + 5, Y_TOP - 10 * (n_px // 2) - 5)
        days = pd.date_range(dates[0], dates[-1], freq="D")
        gd = greenness(days, peak, amp)
        sw = potential_radiation(lat, days) * 0.7
        gpp = 0.06 * gd * sw + rng.normal(0, 0.3, len(days))
        flux = pd.DataFrame({"date": days, "GPP": gpp, "GPP_qc": np.full(len(days), 0.95), "TA": np.full(len(days), 12.0),
                             "SW_IN": sw, "VPD": np.full(len(days), 6.0), "P": np.zeros(len(days))})
        rel = Path("flux") / f"FLX_{site}_FLUXNET2015_SUBSET_DD_synthetic.csv"
        write_fluxnet_dd(flux, root / rel)
        rows.append({"site_id": site, "lat": lat, "lon": lon, "igbp": "GRA", "flux_path": str(rel), "synthetic": True})
    cat.normalize_hrefs(str(root / "stac"))
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    towers = root / "towers.csv"
    pd.DataFrame(rows).to_csv(towers, index=False)
    return root / "stac" / "catalog.json", towers
