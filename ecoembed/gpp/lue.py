"""Light-use-efficiency baselines: the MODIS MOD17 model with its fixed biome parameters.

MOD17 (Running et al. 2004; Collection 6 parameters, MOD17 User's Guide, Running & Zhao 2015):

    GPP = eps_max * f(Tmin) * f(VPD) * FPAR * PAR

with ``eps_max`` (gC MJ-1 of absorbed PAR) and the two ramps' end points from
the biome parameter look-up table (:data:`MOD17_BPLUT`). ``f(Tmin)`` rises
linearly from 0 at ``tmin_min`` to 1 at ``tmin_max``; ``f(VPD)`` falls linearly
from 1 at ``vpd_min`` to 0 at ``vpd_max`` (Pa).

What differs from the MODIS product, stated because a reader compares with it:

* FPAR is not MOD15: it comes from the tower-window NDVI through the linear
  relation of Myneni & Williams (1994), ``FPAR = 1.1638 NDVI - 0.1426``, clipped to [0, 1];
* the temperature ramp is applied to the daily **mean** air temperature of the
  flux file (``TA``), as daily minima are not in FLUXNET/ICOS daily files; this
  removes less cold limitation than MOD17's Tmin does;
* VPD is the daily mean (FLUXNET ``VPD_F``, hPa, converted to Pa), not the daytime mean;
* PAR is the tower's (``PPFD_IN``, else 0.45 x ``SW_IN``), in MJ m-2 d-1 (4.57 mol MJ-1).

IGBP classes map onto the MOD17 (UMD) biomes by :data:`IGBP_TO_MOD17`; a class
without a MOD17 biome (or an unknown one) gets the mean of the biome parameters.
"""

from __future__ import annotations

import numpy as np

MOD17_BPLUT: dict[str, tuple[float, float, float, float, float]] = {
    # biome: (eps_max gC MJ-1, tmin_min degC, tmin_max degC, vpd_min Pa, vpd_max Pa)
    "ENF": (1.211, -8.00, 8.31, 650.0, 3000.0),
    "EBF": (1.405, -8.00, 9.09, 1000.0, 4000.0),
    "DNF": (1.227, -8.00, 10.44, 650.0, 3500.0),
    "DBF": (1.526, -6.00, 9.94, 650.0, 2900.0),
    "MF": (1.226, -7.00, 9.50, 650.0, 2900.0),
    "CSH": (1.495, -8.00, 8.61, 650.0, 4300.0),
    "OSH": (1.027, -8.00, 8.80, 650.0, 4400.0),
    "WSA": (1.498, -8.00, 11.39, 650.0, 3500.0),
    "SAV": (1.454, -8.00, 11.39, 650.0, 3600.0),
    "GRA": (1.215, -8.00, 12.02, 650.0, 4200.0),
    "CRO": (1.300, -8.00, 12.02, 650.0, 4500.0),
}
"""MOD17 Collection 6 biome parameter look-up table (UMD biomes, IGBP-style codes)."""
IGBP_TO_MOD17: dict[str, str] = {**{k: k for k in MOD17_BPLUT}, "WET": "GRA", "CVM": "CRO", "GRS": "GRA"}
"""IGBP class -> MOD17 biome; others (SNO, BSV, URB, WAT, unknown) use the mean parameters."""
PAR_MOL_PER_MJ = 4.57
"""mol photons per MJ of PAR."""


def mod17_parameters(igbp: object) -> tuple[tuple[float, float, float, float, float], str]:
    """``(eps_max, tmin_min, tmin_max, vpd_min, vpd_max)`` of an IGBP class and the biome used (``mean`` if none)."""
    code = str(igbp).strip().upper() if isinstance(igbp, str) else ""
    biome = IGBP_TO_MOD17.get(code)
    if biome is None:
        mean = tuple(float(v) for v in np.mean(np.array(list(MOD17_BPLUT.values())), axis=0))
        return (mean[0], mean[1], mean[2], mean[3], mean[4]), "mean"
    return MOD17_BPLUT[biome], biome


def ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 at or below ``lo``, 1 at or above ``hi``, linear in between (NaN stays NaN)."""
    with np.errstate(invalid="ignore"):
        return np.clip((np.asarray(x, float) - lo) / (hi - lo), 0.0, 1.0)


def fpar_from_ndvi(ndvi: np.ndarray) -> np.ndarray:
    """FPAR from NDVI (Myneni & Williams 1994), clipped to [0, 1]."""
    with np.errstate(invalid="ignore"):
        return np.clip(1.1638 * np.asarray(ndvi, float) - 0.1426, 0.0, 1.0)


def mod17_gpp(ndvi: np.ndarray, par_mol: np.ndarray, ta: np.ndarray, vpd_hpa: np.ndarray, igbp: object) -> np.ndarray:
    """Daily MOD17 GPP (gC m-2 d-1) from NDVI, PAR (mol m-2 d-1), mean air temperature (degC) and VPD (hPa)."""
    (eps, tmin_lo, tmin_hi, vpd_lo, vpd_hi), _ = mod17_parameters(igbp)
    f_t = ramp(ta, tmin_lo, tmin_hi)
    f_vpd = 1.0 - ramp(np.asarray(vpd_hpa, float) * 100.0, vpd_lo, vpd_hi)
    return eps * f_t * f_vpd * fpar_from_ndvi(ndvi) * np.asarray(par_mol, float) / PAR_MOL_PER_MJ
