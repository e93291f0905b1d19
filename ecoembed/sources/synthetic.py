"""Synthetic, physically plausible scenes for tests and the demo (always labelled ``synthetic=True``).

One scene is a 10 m UTM grid of land-cover patches (forest, grassland, crop).
Each class has a double-logistic phenology that drives daily LAI (with
per-patch and per-year shifts); grassland fields are mown two or three times a
year on their own dates (LAI drops to 20 %, regrows with a 20-day e-folding
time), events that cloudy S2 can miss and S1 sees; fAPAR = 0.95 (1 - exp(-0.5 LAI)).

* Sentinel-2 (every 5 days, 10:30 UTC): band reflectance mixes soil and
  dense-canopy spectra with canopy gap fraction ``exp(-k LAI)`` (NIR rises,
  red falls with LAI); soil darkens when wet. Clouds are Gaussian blobs that
  drift between acquisitions, with shadows displaced by a fixed sun offset;
  the SCL band is consistent (8/9 cloud, 10 cirrus, 3 shadow, 11 snow after cold wet
  spells on low vegetation, 4/5 clear) and
  ``valid`` is False under them (reflectance bright/dark there, not NaN).
* Sentinel-1 (every 6 days, alternating ascending 17:30 / descending 06:00 UTC):
  water-cloud model (Attema & Ulaby 1978) of LAI and soil moisture, gamma
  multiplicative speckle (ENL 4.4), in dB.
* Daily meteorology (TA degC, SW_IN W m-2, VPD hPa, P mm, PAR MJ m-2 d-1,
  PPFD_IN umol m-2 s-1) and a bucket soil moisture (m3 m-3).
* Tower GPP (gC m-2 d-1) by light-use efficiency over a Gaussian footprint:
  ``GPP = sum_px w * eps_class * fAPAR * PAR * f(T) * f(VPD)``, with a site factor on eps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Transformer
from tqdm.auto import tqdm

from ecoembed.errors import InputError
from ecoembed.io_utils import atomic_write_text
from ecoembed.sensors.sentinel2 import S2_BANDS, scl_valid
from ecoembed.sources.local import save_cube
from fluxnet.write import write_fluxnet_dd

LANDCOVER = ("forest", "grassland", "crop")
IGBP = {"forest": "DBF", "grassland": "GRA", "crop": "CRO"}
# per class: LAI min, LAI max, start of season (doy), end of season (doy), green-up/senescence widths (days), eps (gC MJ-1 APAR)
_PHENO = {
    "forest": (0.8, 5.0, 115.0, 290.0, 8.0, 10.0, 1.6),
    "grassland": (0.6, 2.8, 90.0, 300.0, 12.0, 15.0, 1.3),
    "crop": (0.1, 4.5, 130.0, 205.0, 7.0, 5.0, 2.0),
}
# reflectance of bare soil and of a dense canopy per band (order S2_BANDS); gap-fraction coefficient k per band
_SOIL = np.array([0.08, 0.11, 0.14, 0.17, 0.20, 0.22, 0.24, 0.25, 0.32, 0.28], np.float32)
_CANOPY = np.array([0.025, 0.07, 0.025, 0.11, 0.32, 0.40, 0.44, 0.45, 0.22, 0.10], np.float32)
_K = np.array([0.7, 0.6, 0.75, 0.6, 0.45, 0.4, 0.4, 0.4, 0.5, 0.6], np.float32)
ENL = 4.4
"""Equivalent number of looks of the simulated S1 speckle."""


@dataclass
class SyntheticScene:
    """A synthetic scene: sensor cubes, daily truth, meteorology and tower GPP (all synthetic).

    Attributes:
        s2, s1: contract cubes (attrs ``synthetic=True``).
        truth: daily ``lai``, ``fapar`` (1), ``soil_moisture`` (m3 m-3) on (time, y, x) and ``landcover`` (y, x).
        meteo: daily DataFrame: date, TA (degC), SW_IN (W m-2), VPD (hPa), P (mm d-1), PAR (MJ m-2 d-1), PPFD_IN (umol m-2 s-1).
        tower: daily DataFrame: date, GPP (gC m-2 d-1), fapar_footprint.
        tower_yx: (row, col) of the tower pixel.
        lat, lon: tower position (WGS84 degrees); crs: the grid's UTM CRS.
        eps: site light-use efficiency per class (gC MJ-1 APAR).
        igbp: dominant land cover as an IGBP code.
    """

    s2: xr.Dataset
    s1: xr.Dataset
    truth: xr.Dataset
    meteo: pd.DataFrame
    tower: pd.DataFrame
    tower_yx: tuple[int, int]
    lat: float
    lon: float
    crs: str
    eps: dict[str, float] = field(default_factory=dict)
    igbp: str = "GRA"


def _double_logistic(doy: np.ndarray, sos: np.ndarray, eos: np.ndarray, w_up: float, w_down: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(doy - sos) / w_up)) - 1.0 / (1.0 + np.exp(-(doy - eos) / w_down))


def _landcover(rng: np.random.Generator, n: int, mix: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Voronoi patches: class map forest (0), grassland (1), crop (2) drawn with probabilities ``mix``, and patch ids."""
    k = max(3, round(n * n / 150))
    k = min(k, 40)
    centres = rng.uniform(0, n, (k, 2))
    classes = rng.choice(3, size=k, p=np.asarray(mix) / np.sum(mix))
    yy, xx = np.mgrid[0:n, 0:n] + 0.5
    d = (yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2
    patch = d.argmin(-1)
    return classes[patch].astype(np.int8), patch.astype(np.int16)


MOWING_WINDOWS = ((140.0, 170.0), (195.0, 235.0), (255.0, 280.0))
"""Day-of-year windows of the grassland cuts (first two every year, the third in half the fields)."""


def _mowing_factor(rng: np.random.Generator, doy: np.ndarray, years: np.ndarray, patch: np.ndarray,
                   grass: np.ndarray) -> np.ndarray:
    """Multiplicative LAI factor ``[time, y, x]`` of grassland cuts: each field (patch) is mown on its own dates.

    A cut leaves 20 % of the green LAI, which regrows with a 20-day e-folding time;
    cut dates are drawn per field and year inside :data:`MOWING_WINDOWS`. 1 elsewhere.
    """
    factor = np.ones((len(doy), *patch.shape), np.float32)
    fields = np.unique(patch[grass])
    for yr in np.unique(years):
        in_year = years == yr
        for f in fields:
            rows, cols = np.nonzero(grass & (patch == f))
            n_cuts = 2 + int(rng.random() < 0.5)
            for lo, hi in MOWING_WINDOWS[:n_cuts]:
                cut = rng.uniform(lo, hi)
                after = in_year & (doy >= cut)
                regrow = (1.0 - 0.8 * np.exp(-(doy[after] - cut) / 20.0)).astype(np.float32)
                factor[np.flatnonzero(after)[:, None], rows[None, :], cols[None, :]] *= regrow[:, None]
    return factor


def _meteo(rng: np.random.Generator, dates: pd.DatetimeIndex, lat: float) -> pd.DataFrame:
    """Daily meteorology (seasonal cycles + AR(1) weather)."""
    n = len(dates)
    doy = np.asarray(dates.day_of_year, float)
    season = np.sin(2 * np.pi * (doy - 105) / 365.25)
    weather = np.zeros(n)
    e = rng.normal(0, 1, n)
    for i in range(1, n):
        weather[i] = 0.8 * weather[i - 1] + 0.6 * e[i]
    ta = 11.0 + 10.0 * season + 2.5 * weather
    decl = np.deg2rad(23.44) * np.sin(2 * np.pi * (doy - 81) / 365.25)
    phi = np.deg2rad(lat)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(decl), -1, 1))
    toa = 1367 / np.pi * (1 + 0.033 * np.cos(2 * np.pi * doy / 365)) * (
        ws * np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.sin(ws))
    cloudiness = np.clip(0.35 + 0.25 * rng.beta(2, 2, n) + 0.08 * weather * -1, 0.05, 0.95)
    sw = toa * 0.75 * (1 - 0.75 * cloudiness)
    rain = (rng.random(n) < 0.15 + 0.4 * cloudiness ** 2) * rng.gamma(0.8, 6.0, n)
    es = 6.112 * np.exp(17.62 * ta / (243.12 + ta))  # hPa
    rh = np.clip(0.85 - 0.3 * (1 - cloudiness) - 0.1 * season + 0.05 * rng.normal(size=n), 0.3, 0.98)
    vpd = es * (1 - rh)
    par = sw * 0.0864 * 0.48  # MJ m-2 d-1 of PAR
    return pd.DataFrame({"date": dates, "TA": ta, "SW_IN": sw, "VPD": vpd, "P": rain, "PAR": par, "PPFD_IN": sw * 0.48 * 4.57})


def _soil_moisture(meteo: pd.DataFrame) -> np.ndarray:
    """Daily bucket soil moisture (m3 m-3): rain fills, temperature-driven drying."""
    p, ta = meteo["P"].to_numpy(), meteo["TA"].to_numpy()
    sm = np.empty(len(p))
    s = 0.3
    for i in range(len(p)):
        s = s + 0.008 * p[i] - 0.004 * max(ta[i], 0) / 10 * (s - 0.05) / 0.4 - 0.002 * (s - 0.05)
        s = min(max(s, 0.05), 0.45)
        sm[i] = s
    return sm


S1_INCIDENCE_DEG = {"ascending": 38.0, "descending": 42.0}
"""Incidence angle of the synthetic S1 per orbit direction (degrees)."""
WATER_CLOUD = {"VV": (0.13, 0.12, -18.0, 25.0), "VH": (0.035, 0.10, -25.0, 20.0)}
"""Per polarisation: vegetation A, attenuation B (per unit LAI), bare-soil dB at SM 0, dB per m3 m-3 of SM."""


def water_cloud_sigma0(pol: str, lai: np.ndarray, sm: np.ndarray, theta: np.ndarray | float,
                       forest: np.ndarray | bool = False) -> np.ndarray:
    """Speckle-free sigma0 (linear power) of the synthetic S1: water-cloud model with V1 = 1, V2 = LAI.

    Args:
        pol: ``"VV"`` or ``"VH"``.
        lai: leaf area index (m2 m-2); sm: surface soil moisture (m3 m-3); theta: incidence angle (rad);
        forest: where True the volume term is 10 % brighter. All broadcast together.
    """
    a_v, b_v, soil0, soil_slope = WATER_CLOUD[pol]
    tau2 = np.exp(-2 * b_v * lai / np.cos(theta))
    soil_lin = 10 ** ((soil0 + soil_slope * sm) / 10)
    sigma = a_v * np.cos(theta) * (1 - tau2) + tau2 * soil_lin
    return sigma * (1 + 0.1 * np.asarray(forest))


def _utm(lat: float, lon: float) -> tuple[str, float, float]:
    zone = int((lon + 180) // 6) + 1
    epsg = (32600 if lat >= 0 else 32700) + zone
    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(lon, lat)
    return f"EPSG:{epsg}", float(x), float(y)


def _blobs(rng: np.random.Generator, n_dates: int, n: int, cover: np.ndarray) -> np.ndarray:
    """Cloud opacity (0..1) per date: Gaussian blobs that drift with a per-date wind between acquisitions."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    opacity = np.zeros((n_dates, n, n), np.float32)
    tracks: list[list[float]] = []  # [y, x, radius, vy, vx, life]
    for t in range(n_dates):
        tracks = [[y + vy, x + vx, r, vy, vx, life - 1] for y, x, r, vy, vx, life in tracks if life > 1]
        for _ in range(rng.poisson(3.0 * cover[t])):
            tracks.append([rng.uniform(-0.2 * n, 1.2 * n), rng.uniform(-0.2 * n, 1.2 * n), rng.uniform(0.08, 0.35) * n,
                           rng.normal(0, 0.15 * n), rng.normal(0, 0.15 * n), int(rng.integers(1, 3))])
        for y, x, r, *_ in tracks:
            opacity[t] = np.maximum(opacity[t], np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * r * r)))
    return opacity


def make_scene(size_px: int = 64, start: str = "2019-01-01", end: str = "2020-12-31", seed: int = 0, *,
               mix: tuple[float, float, float] | None = None, lat: float | None = None, lon: float | None = None,
               eps_factor: float | None = None) -> SyntheticScene:
    """Generate a synthetic scene (deterministic per ``seed``).

    Args:
        size_px: edge of the square 10 m grid (pixels).
        start, end: inclusive date range (YYYY-MM-DD).
        seed: random seed; the same seed gives identical outputs.
        mix: probabilities of forest/grassland/crop patches (default drawn from the seed).
        lat, lon: tower position (default drawn from the seed, mid-latitude Europe).
        eps_factor: site multiplier of the class light-use efficiencies (default drawn, 0.8-1.2).
    """
    rng = np.random.default_rng(seed)
    n = int(size_px)
    if n < 1:
        raise ValueError(f"size_px must be >= 1, got {size_px}")
    mixture = tuple(float(v) for v in (mix if mix is not None else rng.dirichlet([1.5, 1.5, 1.5])))
    lat = float(lat if lat is not None else rng.uniform(40.0, 52.0))
    lon = float(lon if lon is not None else rng.uniform(-4.0, 16.0))
    eps_factor = float(eps_factor if eps_factor is not None else rng.uniform(0.8, 1.2))
    crs, tx, ty = _utm(lat, lon)
    row0, col0 = n // 2, n // 2
    # grid: the tower sits in pixel (row0, col0); pixel centres on a 10 m lattice
    cx, cy = np.floor(tx / 10.0) * 10.0 + 5.0, np.floor(ty / 10.0) * 10.0 + 5.0
    x = cx + 10.0 * (np.arange(n) - col0)
    y = cy - 10.0 * (np.arange(n) - row0)

    dates = pd.date_range(start, end, freq="D")
    nd = len(dates)
    if nd < 1:
        raise ValueError(f"empty date range {start}..{end}")
    meteo = _meteo(rng, dates, lat)
    sm_t = _soil_moisture(meteo)

    lc, patch = _landcover(rng, n, (mixture[0], mixture[1], mixture[2]))
    doy = np.asarray(dates.day_of_year, float)
    years = np.asarray(dates.year)
    lai = np.empty((nd, n, n), np.float32)
    eps_map = np.empty((n, n), np.float32)
    jitter = rng.normal(0, 6.0, (n, n))  # per-pixel phenology shift (days)
    amp = rng.uniform(0.85, 1.15, (n, n))
    year_shift = {int(yr): rng.normal(0, 8.0, 3) for yr in np.unique(years)}
    for c, name in enumerate(LANDCOVER):
        lo, hi, sos, eos, wu, wd, eps = _PHENO[name]
        m = lc == c
        if not m.any():
            continue
        eps_map[m] = eps * eps_factor
        shift = np.array([year_shift[int(yr)][c] for yr in years])[:, None]
        curve = _double_logistic(doy[:, None], sos + shift + jitter[m][None, :], eos + shift + jitter[m][None, :], wu, wd)
        lai[:, m] = (lo + (hi - lo) * amp[m][None, :] * np.clip(curve, 0, 1)).astype(np.float32)
    # grassland fields are mown on their own dates (own generator: the other random streams stay as they were)
    lai *= _mowing_factor(np.random.default_rng([seed, 17]), doy, years, patch, lc == 1)
    fapar = (0.95 * (1 - np.exp(-0.5 * lai))).astype(np.float32)
    sm_off = rng.normal(0, 0.03, (n, n)).astype(np.float32)
    sm = np.clip(sm_t[:, None, None].astype(np.float32) + sm_off, 0.03, 0.5).astype(np.float32)

    # tower GPP by LUE over a Gaussian footprint
    ta, vpd = meteo["TA"].to_numpy(), meteo["VPD"].to_numpy()
    f_t = np.clip((ta + 2.0) / 17.0, 0, 1) * np.clip((38.0 - ta) / 8.0, 0, 1)
    f_vpd = np.clip(1 - (vpd - 6.0) / 30.0, 0.3, 1)
    yy, xx = np.mgrid[0:n, 0:n]
    sigma_px = max(1.0, 0.15 * n)
    w = np.exp(-((yy - row0) ** 2 + (xx - col0) ** 2) / (2 * sigma_px ** 2))
    w = (w / w.sum()).astype(np.float32)
    eff_fapar = np.tensordot(fapar, w * eps_map, axes=([1, 2], [0, 1]))
    gpp = eff_fapar * meteo["PAR"].to_numpy() * f_t * f_vpd
    tower = pd.DataFrame({"date": dates, "GPP": gpp, "fapar_footprint": np.tensordot(fapar, w, axes=([1, 2], [0, 1]))})
    tower.attrs = {"units": {"GPP": "gC m-2 d-1"}, "synthetic": True}

    truth = xr.Dataset(
        {"lai": (("time", "y", "x"), lai, {"units": "m2 m-2", "long_name": "leaf area index"}),
         "fapar": (("time", "y", "x"), fapar, {"units": "1", "long_name": "fraction of absorbed PAR"}),
         "soil_moisture": (("time", "y", "x"), sm, {"units": "m3 m-3", "long_name": "surface soil moisture"}),
         "landcover": (("y", "x"), lc, {"flag_values": [0, 1, 2], "flag_meanings": " ".join(LANDCOVER)})},
        coords={"time": dates.values, "y": y, "x": x},
        attrs={"crs": crs, "synthetic": True, "resolution_m": 10.0, "seed": seed},
    )
    base_attrs = {"crs": crs, "synthetic": True, "resolution_m": 10.0, "seed": seed,
                  "title": "SYNTHETIC scene generated by ecoembed.sources.synthetic (not real data)"}

    # --- Sentinel-2 ----------------------------------------------------------------------------
    i2 = np.arange(int(rng.integers(0, 5)), nd, 5)
    t2 = dates[i2] + pd.Timedelta(hours=10, minutes=30)
    lai2, sm2 = lai[i2], sm[i2]
    gap = np.exp(-_K[:, None, None, None] * lai2[None])  # [band, t, y, x]
    soil_b = rng.uniform(0.85, 1.15, (n, n)).astype(np.float32)[None] * (1.0 - 0.8 * (sm2 - 0.05))
    refl = _SOIL[:, None, None, None] * soil_b[None] * gap + _CANOPY[:, None, None, None] * (1 - gap)
    refl = refl * (1 + 0.02 * rng.standard_normal(refl.shape, dtype=np.float32)) + 0.003 * rng.standard_normal(refl.shape, dtype=np.float32)
    season = np.sin(2 * np.pi * (np.asarray(t2.day_of_year) - 105) / 365.25)
    cover = np.clip(0.45 - 0.3 * season + 0.2 * rng.normal(size=len(i2)), 0.02, 1.0)
    op = _blobs(rng, len(i2), n, cover)
    dy, dx = max(1, round(0.06 * n)), max(1, round(0.04 * n))
    shadow_op = np.zeros_like(op)
    shadow_op[:, dy:, dx:] = op[:, :-dy or None, :-dx or None] if n > max(dy, dx) else 0
    cloud = op > 0.15
    shadow = (shadow_op > 0.45) & ~cloud
    ndvi = (refl[6] - refl[2]) / (refl[6] + refl[2] + 1e-6)
    scl = np.where(ndvi > 0.35, 4, 5).astype(np.uint8)
    scl[shadow] = 3
    scl[(op > 0.15) & (op <= 0.35)] = 10
    scl[(op > 0.35) & (op <= 0.6)] = 8
    scl[op > 0.6] = 9
    # snow after cold wet spells on low vegetation (clear pixels only): SCL 11, bright visible/NIR, dark SWIR
    cold = pd.Series(meteo["TA"].to_numpy()).rolling(3, min_periods=1).mean().to_numpy()[i2] < -1.0
    wet = pd.Series(meteo["P"].to_numpy()).rolling(5, min_periods=1).sum().to_numpy()[i2] > 2.0
    snow = (cold & wet)[:, None, None] & (lai2 < 2.0) & (scl >= 4)
    scl[snow] = 11
    snow_refl = np.array([0.85, 0.83, 0.80, 0.78, 0.75, 0.72, 0.70, 0.68, 0.12, 0.08], np.float32)
    refl = np.where(snow[None], snow_refl[:, None, None, None], refl)
    bright = rng.uniform(0.35, 0.6, len(i2)).astype(np.float32)[None, :, None, None]
    a = np.clip(op * 1.4, 0, 1)[None]
    refl = refl * (1 - a) + bright * a
    refl = np.where(shadow[None], refl * 0.35, refl)
    refl = np.clip(refl, 0.0, 1.0).astype(np.float32)
    valid2 = scl_valid(scl)
    s2 = xr.Dataset(coords={"time": t2.values, "y": y, "x": x})
    for b, band in enumerate(S2_BANDS):
        s2[band] = (("time", "y", "x"), refl[b], {"units": "1", "long_name": f"surface reflectance {band} (synthetic)"})
    s2["SCL"] = (("time", "y", "x"), scl, {"long_name": "scene classification (synthetic)"})
    s2["valid"] = (("time", "y", "x"), valid2, {"long_name": "valid observation (SCL)"})
    s2.attrs = {**base_attrs, "sensor": "sentinel-2-l2a"}

    # --- Sentinel-1 ----------------------------------------------------------------------------
    i1 = np.arange(int(rng.integers(0, 6)), nd, 6)
    asc = np.arange(len(i1)) % 2 == 0
    t1 = dates[i1] + pd.to_timedelta(np.where(asc, 17.5, 6.0), unit="h")
    theta = np.deg2rad(np.where(asc, S1_INCIDENCE_DEG["ascending"], S1_INCIDENCE_DEG["descending"]))[:, None, None]
    lai1, sm1 = lai[i1], sm[i1]
    out = {}
    for pol in WATER_CLOUD:
        sigma = water_cloud_sigma0(pol, lai1, sm1, theta, lc == 0)
        speckle = rng.gamma(ENL, 1.0 / ENL, sigma.shape)
        out[pol] = (10 * np.log10(sigma * speckle)).astype(np.float32)
    s1 = xr.Dataset(coords={"time": t1.values, "y": y, "x": x,
                            "orbit": ("time", np.where(asc, "ascending", "descending"))})
    for pol, v in out.items():
        s1[pol] = (("time", "y", "x"), v, {"units": "dB", "long_name": f"sigma0 {pol} (synthetic, water-cloud + speckle)"})
    s1["valid"] = (("time", "y", "x"), np.isfinite(out["VV"]) & np.isfinite(out["VH"]))
    s1.attrs = {**base_attrs, "sensor": "sentinel-1-grd", "enl": ENL}

    counts = np.bincount(lc.ravel(), minlength=3)
    igbp = IGBP[LANDCOVER[int(counts.argmax())]]
    lat_t, lon_t = lat, lon
    return SyntheticScene(s2=s2, s1=s1, truth=truth, meteo=meteo, tower=tower, tower_yx=(row0, col0), lat=lat_t, lon=lon_t,
                          crs=crs, eps={name: float(_PHENO[name][6] * eps_factor) for name in LANDCOVER}, igbp=igbp)


def site_id(i: int) -> str:
    """Synthetic site id number ``i`` (1-based): ``ZZ-Sy1`` ... ``ZZ-Sy9``, then ``ZZ-S10`` ..."""
    return f"ZZ-Sy{i}" if i < 10 else f"ZZ-S{i:02d}"


def oneflux_like_qc(days: int, rng: np.random.Generator, *, gap_fraction: float = 0.15,
                    mean_gap_days: float = 4.0) -> np.ndarray:
    """SYNTHETIC daily QC (fraction of measured half-hours, 0-1) with clustered gaps like an ONEFlux DD file.

    Gaps come in runs (power cuts, sonic failures, post-processing filters): a two-state
    Markov chain whose gap runs last ``mean_gap_days`` on average and cover ``gap_fraction``
    of days in the long run. Gap days have QC 0-0.6 (mostly gap-filled), the rest 0.8-1.0
    (a QC threshold of 0.8 keeps them).
    """
    if not 0 <= gap_fraction < 1 or mean_gap_days < 1:
        raise InputError(f"gap_fraction={gap_fraction}, mean_gap_days={mean_gap_days}: need 0 <= fraction < 1, length >= 1")
    leave = 1.0 / mean_gap_days  # P(gap -> ok)
    enter = leave * gap_fraction / (1 - gap_fraction)  # stationary gap share = enter / (enter + leave)
    gap = np.zeros(days, dtype=bool)
    state = rng.random() < gap_fraction
    u = rng.random(days)
    for t in range(days):
        gap[t] = state
        state = u[t] >= leave if state else u[t] < enter
    return np.where(gap, rng.uniform(0.0, 0.6, days), rng.uniform(0.8, 1.0, days))


def write_demo_sites(out_dir: str | os.PathLike[str], n_sites: int = 6, size_px: int = 16, seed: int = 0,
                     start: str = "2019-01-01", end: str = "2020-12-31", progress: bool = True) -> Path:
    """Write ``n_sites`` synthetic sites (flux DD file, S2 and S1 cubes) and their ``sites.csv``.

    Each site has its own scene (different land-cover mix, light-use efficiency
    and position). Flux files are FLUXNET2015 SUBSET DD files named
    ``FLX_<id>_FLUXNET2015_SUBSET_DD_<y1>-<y2>_synthetic.csv`` with GPP_NT/GPP_DT
    (tower GPP plus noise), QC fraction (:func:`oneflux_like_qc`: ~15 % of days in clustered
    gaps) and meteorology.

    ``progress=False`` hides the progress bar.

    Returns:
        Path of ``sites.csv`` (paths in it are relative to it; column ``synthetic`` True).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    mixes = [(0.8, 0.1, 0.1), (0.1, 0.8, 0.1), (0.1, 0.1, 0.8), (0.45, 0.45, 0.1), (0.1, 0.45, 0.45), (0.45, 0.1, 0.45)]
    rows = []
    y1, y2 = pd.Timestamp(start).year, pd.Timestamp(end).year
    for i in tqdm(range(1, n_sites + 1), desc="synthetic sites", leave=False, disable=not progress):
        sid = site_id(i)
        scene = make_scene(size_px=size_px, start=start, end=end, seed=seed * 1000 + i, mix=mixes[(i - 1) % len(mixes)])
        folder = out / sid
        folder.mkdir(exist_ok=True)
        gpp = scene.tower["GPP"].to_numpy()
        noise_sd = 0.3 + 0.08 * gpp  # heteroscedastic flux noise (gC m-2 d-1)
        table = pd.DataFrame({
            "date": scene.tower["date"], "GPP_NT": np.maximum(gpp + rng.normal(0, noise_sd), 0),
            "GPP_DT": np.maximum(gpp + rng.normal(0, noise_sd), 0),
            "GPP_qc": oneflux_like_qc(len(gpp), rng), "TA": scene.meteo["TA"], "SW_IN": scene.meteo["SW_IN"],
            "VPD": scene.meteo["VPD"], "P": scene.meteo["P"], "PPFD_IN": scene.meteo["PPFD_IN"]})
        flux = folder / f"FLX_{sid}_FLUXNET2015_SUBSET_DD_{y1}-{y2}_synthetic.csv"
        write_fluxnet_dd(table, flux)
        save_cube(scene.s2, folder / "s2.nc")
        save_cube(scene.s1, folder / "s1.nc")
        rows.append({"site_id": sid, "lat": round(scene.lat, 7), "lon": round(scene.lon, 7), "igbp": scene.igbp,
                     "flux_path": f"{sid}/{flux.name}", "s2_path": f"{sid}/s2.nc", "s1_path": f"{sid}/s1.nc", "synthetic": True})
    csv = out / "sites.csv"
    atomic_write_text(csv, pd.DataFrame(rows).to_csv(index=False))
    return csv


EMBEDDING_SITES_LUE = 0.6
"""Light-use efficiency (gC mol-1 photons) of :func:`write_embedding_sites` (synthetic)."""


def write_embedding_sites(root: Path, n_sites: int = 5, n_feat: int = 6, start: str = "2019-01-01", days: int = 365,
               size_px: int = 9, seed: int = 0, s2: bool = False) -> Path:
    """Write SYNTHETIC sites with ready-made embedding cubes, for fit-gpp tests and benchmarks (no model run).

    Embedding feature 0 is fAPAR-like (site-specific phase/amplitude), the others noise;
    GPP (gC m-2 d-1) = :data:`EMBEDDING_SITES_LUE` x fAPAR x PAR (mol m-2 d-1) + noise;
    meteorology shares one seasonal phase across sites, so meteo alone cannot know each
    site's fAPAR. With ``s2`` also a B04/B08 cube per site. Returns the sites.csv path.
    """
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
        gpp = EMBEDDING_SITES_LUE * fapar * par + rng.normal(0, 0.3, days)
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
