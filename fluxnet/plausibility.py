"""Plausibility of a daily flux table: physical range, unit slips, sign convention.

Reporting only: a finding never changes a value. :func:`check_plausibility`
returns short sentences, one per finding and site, each with the probable
cause; :func:`~fluxnet.read.read_flux` stores them in
``attrs["plausibility"]`` and, with ``strict=True``, raises instead.

Daily GPP outside [-5, 40] gC m-2 d-1 is not physical. A site whose 99th
percentile of daily GPP is above 40 (or, over a season or more, below 2) is
tested against known unit slips: the factor that brings that percentile
back into the range of real sites' peaks (3-35 gC m-2 d-1, typically about
12) names the probable cause. A mostly negative GPP is an uptake-negative
sign convention. Drivers get the same treatment for kelvin read as degC (or
the reverse) and kPa or Pa read as hPa.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fluxnet.aggregate import UMOL_S_TO_GC_DAY
from fluxnet.units import C_G_PER_MOL

GPP_RANGE: tuple[float, float] = (-5.0, 40.0)
"""Physical range of daily GPP, gC m-2 d-1."""

PEAK_RANGE: tuple[float, float] = (3.0, 35.0)
"""Range of the 99th percentile of daily GPP at real sites, gC m-2 d-1."""

TYPICAL_PEAK = 12.0
"""A typical 99th percentile of daily GPP, gC m-2 d-1 (median over the ICOS sites)."""

LOW_PEAK = 2.0
"""A 99th percentile below this (gC m-2 d-1), over at least :data:`MIN_DAYS_FOR_LOW` days, is suspicious."""

MIN_DAYS_FOR_LOW = 60


@dataclass(frozen=True)
class UnitSlip:
    """A known way daily GPP ends up scaled by a factor.

    Attributes:
        factor: Reported value / true value.
        cause: What happened, in words.
    """

    factor: float
    cause: str


UNIT_SLIPS: tuple[UnitSlip, ...] = (
    UnitSlip(C_G_PER_MOL, "x12.011: the molar mass of carbon applied twice (gC values multiplied by 12.011 g mol-1 again)"),
    UnitSlip(24 / UMOL_S_TO_GC_DAY, "x23: hourly umol m-2 s-1 values summed over the day, not averaged and converted to gC"),
    UnitSlip(48 / UMOL_S_TO_GC_DAY, "x46: half-hourly umol m-2 s-1 values summed over the day, not averaged and converted to gC"),
    UnitSlip(100.0, "x100: a percent or scale-factor slip"),
    UnitSlip(1000.0, "x1000: mgC m-2 d-1 taken for gC m-2 d-1"),
    UnitSlip(1 / C_G_PER_MOL, "/12.011: molC m-2 d-1 taken for gC m-2 d-1"),
    UnitSlip(1 / 1000.0, "/1000: kgC m-2 d-1 taken for gC m-2 d-1"),
)
"""Unit slips tested when daily GPP is out of range."""


def _slip_finding(peak: float, too_large: bool) -> str:
    candidates = [s for s in UNIT_SLIPS if (s.factor > 1) == too_large and PEAK_RANGE[0] <= peak / s.factor <= PEAK_RANGE[1]]
    if not candidates:
        return "no known unit slip explains it"
    ranked = sorted(candidates, key=lambda s: abs(math.log(peak / s.factor / TYPICAL_PEAK)))
    also = f" (also consistent with {'; '.join(s.cause.split(':')[0] for s in ranked[1:])})" if len(ranked) > 1 else ""
    return f"probably {ranked[0].cause}{also}"


def _gpp_findings(gpp: np.ndarray) -> list[str]:
    values = gpp[np.isfinite(gpp)]
    if not len(values):
        return []
    findings = []
    low, high = GPP_RANGE
    outside = (values < low) | (values > high)
    if outside.any():
        findings.append(
            f"{int(outside.sum())} of {len(values)} days have GPP outside [{low:g}, {high:g}] gC m-2 d-1 "
            f"(min {values.min():.4g}, max {values.max():.4g})"
        )
    q05, q95, q99 = np.quantile(values, [0.05, 0.95, 0.99])
    if q05 < -2 and q95 < abs(q05) / 4:
        findings.append(
            f"GPP is mostly negative (5th percentile {q05:.3g}, 95th {q95:.3g} gC m-2 d-1): the file's sign convention "
            f"is probably uptake-negative; read it with flip_gpp_sign=True"
        )
    elif q99 > high:
        findings.append(f"GPP 99th percentile {q99:.4g} gC m-2 d-1 is above {high:g}: {_slip_finding(float(q99), True)}")
    elif len(values) >= MIN_DAYS_FOR_LOW and 0 < q99 < LOW_PEAK:
        findings.append(
            f"GPP 99th percentile {q99:.3g} gC m-2 d-1 is low for a vegetated site: {_slip_finding(float(q99), False)}, "
            f"or a site with very little uptake"
        )
    return findings


def _driver_findings(table: pd.DataFrame) -> list[str]:
    findings = []
    if "TA" in table.columns:
        ta = table["TA"].to_numpy(dtype=float)
        ta = ta[np.isfinite(ta)]
        median = float(np.median(ta)) if len(ta) else 0.0
        if median > 150:
            findings.append(f"TA median {median:.4g} degC: probably kelvin read as degC; give units={{<column>: 'K'}}")
        elif median < -150:
            findings.append(f"TA median {median:.4g} degC: probably degC stated as kelvin; give units={{<column>: 'degC'}}")
    if "VPD" in table.columns:
        vpd = table["VPD"].to_numpy(dtype=float)
        vpd = vpd[np.isfinite(vpd)]
        if len(vpd) >= MIN_DAYS_FOR_LOW:
            q99 = float(np.quantile(vpd, 0.99))
            if 0 < q99 < 1.5:
                findings.append(f"VPD 99th percentile {q99:.3g} hPa: probably kPa read as hPa; give units={{<column>: 'kPa'}}")
            elif q99 > 200:
                findings.append(f"VPD 99th percentile {q99:.4g} hPa: probably Pa read as hPa; give units={{<column>: 'Pa'}}")
    return findings


def check_plausibility(table: pd.DataFrame) -> list[str]:
    """Report implausible values of a daily flux table, per site, with the probable cause.

    Args:
        table: A tidy flux table (``GPP`` in gC m-2 d-1; ``site_id``, ``TA``
            and ``VPD`` used when present). Several sites are checked one by one.

    Returns:
        One short sentence per finding, starting with the site id (empty
        when nothing is implausible). The table is not changed.
    """
    sites = table["site_id"].unique() if "site_id" in table.columns else np.array(["?"])
    if len(sites) > 1:
        groups = [(str(site), part) for site, part in table.groupby("site_id", sort=True)]
    else:
        groups = [(str(sites[0]) if len(sites) else "?", table)]
    findings = []
    for site, part in groups:
        gpp = part["GPP"].to_numpy(dtype=float) if "GPP" in part.columns else np.array([])
        findings += [f"{site}: {finding}" for finding in _gpp_findings(gpp) + _driver_findings(part)]
    return findings
