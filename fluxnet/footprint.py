"""Flux footprints after Kljun et al. (2015) and footprint climatologies on a grid.

Implements the flux footprint prediction (FFP) of Kljun, N., Calanca, P.,
Rotach, M. W. and Schmid, H. P. (2015): A simple two-dimensional
parameterisation for Flux Footprint Prediction (FFP). Geosci. Model Dev. 8,
3695-3713, doi:10.5194/gmd-8-3695-2015. "Eq." below refers to that paper.

Conventions (units in brackets):

* ``zm`` is the measurement height above the zero-plane displacement,
  ``z - d`` [m]; ``h`` the boundary-layer height [m]; ``L`` the Obukhov
  length [m] (negative unstable, positive stable, +-inf neutral); ``u*`` the
  friction velocity [m s-1]; ``sigma_v`` the standard deviation of the
  crosswind velocity [m s-1]; ``z0`` the roughness length [m]; ``umean`` the
  mean wind speed at ``zm`` [m s-1].
* In the wind frame ``x`` is the distance *upwind* of the tower and ``y`` the
  crosswind distance [m]. On a map grid ``x`` points east and ``y`` north [m]
  (a projected CRS such as UTM; grid north is taken as true north).
* Wind direction is the direction the wind comes FROM, in degrees clockwise
  from north [0, 360]. The source area lies upwind: with wind from the west
  (270) the footprint lies west of the tower.
* The crosswind-integrated footprint ``f_y`` is in m-1, the 2-D footprint in
  m-2, grid weights are fractions of the flux (dimensionless).

The model is valid only within the limits checked by :class:`FFPConditions`
(Kljun et al. 2015, Eq. 27, and the authors' reference code v1.42): outside
them the constructor raises :class:`FootprintValidityError`, and a
climatology skips and counts the half-hour instead.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

FFP_A = 1.4524
FFP_B = -1.9914
FFP_C = 1.4622
FFP_D = 0.1359
"""Fitted constants of the scaled crosswind-integrated footprint, Eq. 14 (Eq. 17
prints them rounded: a = 1.452, b = -1.991, c = 1.462, d = 0.136; these are the
four-decimal values of the authors' reference code v1.42)."""

SIGMA_Y_AC = 2.17
SIGMA_Y_BC = 1.66
SIGMA_Y_CC = 20.0
"""Constants of the scaled crosswind dispersion sigma_y*, Eqs. 18-19."""

XSTAR_PEAK = -FFP_C / FFP_B + FFP_D
"""Scaled distance of the footprint peak, X*_max = -c/b + d ~= 0.87 (Eq. 20)."""

VON_KARMAN = 0.4
NEUTRAL_LIMIT_M = 5000.0
"""|L| [m] beyond which FFP treats the surface layer as neutral (reference code)."""

MIN_USTAR_M_S = 0.1
"""Smallest friction velocity [m s-1] for which FFP is valid."""
MIN_ZM_OVER_L = -15.5
"""Most convective zm/L for which FFP is valid."""
MIN_PBLH_M = 10.0
"""Smallest boundary-layer height [m] accepted (reference code)."""
ENTRAINMENT_FRACTION = 0.8
"""The receptor must lie below the entrainment layer, zm < 0.8 h (Eq. 27). In
shallow stable boundary layers this is the limit that usually bites."""
ROUGHNESS_SUBLAYER_FACTOR = 12.5
"""The receptor must lie above the roughness sublayer, zm > 12.5 z0 (reference code)."""

SIGMA_V_OVER_USTAR = 1.9
"""sigma_v / u* used when sigma_v is not measured: the neutral surface-layer value
sigma_v ~= 1.9 u* over flat terrain (Panofsky and Dutton 1984, Atmospheric
Turbulence, Wiley: sigma_u : sigma_v : sigma_w ~= 2.4 : 1.9 : 1.25 u*). It ignores
the growth of sigma_v with convective mixing, so unstable footprints come out too
narrow crosswind."""

DISPLACEMENT_FRACTION = 2.0 / 3.0
"""Zero-plane displacement as a fraction of canopy height, d = 2/3 h_c (rule of
thumb; 0.6-0.8 h_c for forests, Arya 1998, Stull 1988)."""
ROUGHNESS_FRACTION = 0.1
"""Roughness length as a fraction of canopy height, z0 = 0.1 h_c (rule of thumb
for vegetation, Stull 1988)."""

DEFAULT_CONVECTIVE_PBLH_M = 1000.0
"""Boundary-layer height [m] assumed for unstable half-hours without a measured or
modelled PBLH: a typical mid-latitude daytime mixed layer (1-2 km, Stull 1988),
taken at the shallow end. FFP distances scale with 1 / (1 - zm/h), so for
zm <= 50 m the choice between 1 and 2 km changes them by less than 3 %."""

EARTH_ANGULAR_VELOCITY_RAD_S = 7.2921e-5
GRAVITY_M_S2 = 9.81
CP_AIR_J_KG_K = 1005.0
R_DRY_AIR_J_KG_K = 287.05
STANDARD_PRESSURE_KPA = 101.325
FLUXNET_MISSING = -9999.0

SOURCE_AREA_FRACTION = 0.8
"""Fraction of the climatology whose source area :class:`FootprintResult` reports."""


class FootprintValidityError(ValueError):
    """Inputs outside the range where FFP is valid.

    Attributes:
        rule: The violated rule, stable across values (e.g. ``"u* < 0.1 m s-1"``),
            used to count skipped half-hours by cause.
    """

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule


def stability_correction(zm_m: float, obukhov_length_m: float) -> float:
    """Integrated stability correction psi_M of the wind profile at ``zm`` (Eq. 5).

    Högström-type forms as used by FFP: ``-5.3 zm/L`` for stable stratification
    (0 < L < 5000 m); otherwise ``ln((1+chi^2)/2) + 2 ln((1+chi)/2) - 2 atan(chi)
    + pi/2`` with ``chi = (1 - 19 zm/L)^(1/4)``, which is 0 at neutral (|L| = inf).

    Args:
        zm_m: Measurement height above displacement [m], > 0.
        obukhov_length_m: Obukhov length [m], non-zero (+-inf for neutral).

    Returns:
        psi_M (dimensionless).
    """
    if 0.0 < obukhov_length_m < NEUTRAL_LIMIT_M:
        return -5.3 * zm_m / obukhov_length_m
    chi = (1.0 - 19.0 * zm_m / obukhov_length_m) ** 0.25
    return math.log((1.0 + chi**2) / 2.0) + 2.0 * math.log((1.0 + chi) / 2.0) - 2.0 * math.atan(chi) + math.pi / 2.0


def _check_roughness_sublayer(zm_m: float, z0_m: float) -> None:
    if zm_m <= ROUGHNESS_SUBLAYER_FACTOR * z0_m:
        raise FootprintValidityError("zm <= 12.5 z0 (receptor in the roughness sublayer)", f"zm = {zm_m:.2f} m, z0 = {z0_m:.3f} m")


def _require_finite(values: dict[str, float | None]) -> None:
    for name, value in values.items():
        if value is not None and not math.isfinite(value):
            raise FootprintValidityError(f"{name} missing", f"{name} = {value}")


@dataclass(frozen=True)
class FFPConditions:
    """Turbulence and site conditions of one averaging period, checked for FFP validity.

    Exactly one of ``z0_m`` (roughness-length variant) and ``umean_m_s``
    (mean-wind variant) must be given. ``sigma_v_m_s`` is only needed for the
    2-D footprint.

    Validity (raises :class:`FootprintValidityError` naming the rule):
    ``zm > 0``; ``h > 10 m``; ``zm < 0.8 h`` (below the entrainment layer,
    Eq. 27; the stable-case boundary-layer limit); ``L != 0``;
    ``zm/L >= -15.5``; ``u* >= 0.1 m s-1``; ``sigma_v > 0`` if given;
    ``z0 > 0`` and ``zm > 12.5 z0`` (above the roughness sublayer) if given;
    ``umean > 0`` if given; and ``ln(zm/z0) - psi_M > 0``. Missing (NaN)
    inputs fail as ``"<name> missing"``.

    Attributes:
        zm_m: Measurement height above the zero-plane displacement [m].
        h_m: Boundary-layer height [m].
        obukhov_length_m: Obukhov length [m]; +-inf for neutral.
        ustar_m_s: Friction velocity [m s-1].
        sigma_v_m_s: Standard deviation of the crosswind velocity [m s-1], or None.
        z0_m: Roughness length [m], or None.
        umean_m_s: Mean wind speed at ``zm`` [m s-1], or None.

    Raises:
        ValueError: Neither or both of ``z0_m`` and ``umean_m_s`` given.
        FootprintValidityError: The conditions are outside FFP's validity.
    """

    zm_m: float
    h_m: float
    obukhov_length_m: float
    ustar_m_s: float
    sigma_v_m_s: float | None = None
    z0_m: float | None = None
    umean_m_s: float | None = None

    def __post_init__(self) -> None:
        if (self.z0_m is None) == (self.umean_m_s is None):
            raise ValueError("give exactly one of z0_m (roughness-length variant) and umean_m_s (mean-wind variant)")
        zm, h, ell, ustar = self.zm_m, self.h_m, self.obukhov_length_m, self.ustar_m_s
        _require_finite({"zm": zm, "h": h, "u*": ustar, "sigma_v": self.sigma_v_m_s, "z0": self.z0_m, "umean": self.umean_m_s})
        if math.isnan(ell):
            raise FootprintValidityError("L missing", f"L = {ell}")
        if zm <= 0.0:
            raise FootprintValidityError("zm <= 0", f"zm = {zm} m")
        if h <= MIN_PBLH_M:
            raise FootprintValidityError("h <= 10 m", f"h = {h} m")
        if zm >= ENTRAINMENT_FRACTION * h:
            raise FootprintValidityError("zm >= 0.8 h (receptor in the entrainment layer)", f"zm = {zm} m, h = {h:.1f} m")
        if ell == 0.0:
            raise FootprintValidityError("L == 0", "the Obukhov length must be non-zero")
        if zm / ell < MIN_ZM_OVER_L:
            raise FootprintValidityError("zm/L < -15.5", f"zm/L = {zm / ell:.2f}")
        if ustar < MIN_USTAR_M_S:
            raise FootprintValidityError("u* < 0.1 m s-1", f"u* = {ustar} m s-1")
        if self.sigma_v_m_s is not None and self.sigma_v_m_s <= 0.0:
            raise FootprintValidityError("sigma_v <= 0", f"sigma_v = {self.sigma_v_m_s} m s-1")
        if self.umean_m_s is not None and self.umean_m_s <= 0.0:
            raise FootprintValidityError("umean <= 0", f"umean = {self.umean_m_s} m s-1")
        if self.z0_m is not None:
            if self.z0_m <= 0.0:
                raise FootprintValidityError("z0 <= 0", f"z0 = {self.z0_m} m")
            _check_roughness_sublayer(zm, self.z0_m)
        if self.profile_factor <= 0.0:
            raise FootprintValidityError("ln(zm/z0) - psi_M <= 0", f"ln(zm/z0) - psi_M = {self.profile_factor:.3f}")

    @property
    def profile_factor(self) -> float:
        """Pi_4 = u(zm) k / u* (mean-wind variant) or ln(zm/z0) - psi_M (roughness variant, Eq. 5)."""
        if self.umean_m_s is not None:
            return self.umean_m_s * VON_KARMAN / self.ustar_m_s
        assert self.z0_m is not None  # __post_init__ guarantees one of the two
        return math.log(self.zm_m / self.z0_m) - stability_correction(self.zm_m, self.obukhov_length_m)

    @property
    def x_scale_m(self) -> float:
        """Metres per unit scaled distance: x = X* zm (1 - zm/h)^-1 Pi_4 (Eqs. 7-8) [m]."""
        return self.zm_m / (1.0 - self.zm_m / self.h_m) * self.profile_factor


def crosswind_integrated_footprint(x_m: ArrayLike, conditions: FFPConditions) -> FloatArray:
    """Crosswind-integrated footprint f_y at upwind distances ``x_m`` (Eqs. 9-10 and 14).

    ``F* = a (X* - d)^b exp(-c / (X* - d))`` for ``X* > d`` (0 elsewhere,
    including downwind, x <= 0), with ``X* = x / x_scale`` and ``f_y = F* / x_scale``.
    It integrates over x to a Gamma(-b-1) c^(b+1) ~= 1.0016.

    Args:
        x_m: Upwind distances [m], any shape.
        conditions: Valid FFP conditions.

    Returns:
        f_y [m-1], same shape as ``x_m``.
    """
    scale = conditions.x_scale_m
    shifted = np.asarray(x_m, dtype=np.float64) / scale - FFP_D
    inside = shifted > 0.0
    safe = np.where(inside, shifted, 1.0)
    fstar = FFP_A * safe**FFP_B * np.exp(-FFP_C / safe)
    return np.where(inside, fstar / scale, 0.0)


def peak_distance_m(conditions: FFPConditions) -> float:
    """Upwind distance of the crosswind-integrated footprint's peak, x_max = X*_max x_scale (Eqs. 20-22) [m]."""
    return XSTAR_PEAK * conditions.x_scale_m


def source_distance_m(r_percent: float, conditions: FFPConditions) -> float:
    """Upwind distance containing ``r_percent`` % of the crosswind-integrated footprint (Eqs. 25-26).

    Analytic: ``X*_R = -c / ln(R) + d`` (exact for b = -2, a = c; with the fitted
    constants it is 0.5-2.5 % short of the numerical integral of f_y for R = 10-90 %).

    Args:
        r_percent: R in percent, 10 to 90.
        conditions: Valid FFP conditions.

    Returns:
        x_R [m].

    Raises:
        ValueError: ``r_percent`` outside [10, 90].
    """
    if not 10.0 <= r_percent <= 90.0:
        raise ValueError(f"r_percent must be within [10, 90] (FFP's fitted range), got {r_percent}")
    return (-FFP_C / math.log(r_percent / 100.0) + FFP_D) * conditions.x_scale_m


def crosswind_dispersion_m(x_m: ArrayLike, conditions: FFPConditions) -> FloatArray:
    """Crosswind standard deviation sigma_y of the footprint at upwind distances ``x_m`` [m].

    ``sigma_y* = a_c (b_c X*^2 / (1 + c_c X*))^(1/2)`` (Eqs. 18-19) and
    ``sigma_y = sigma_y* / ps1 * zm sigma_v / u*`` (Eq. 13) with
    ``ps1 = min(1, 1e-5 |zm/L|^-1 + p)``, p = 0.80 for L <= 0 and 0.55 for
    L > 0; near-neutral |L| > 5000 m uses L = -1e6 m as the reference code does.

    Args:
        x_m: Upwind distances [m], any shape (values <= 0 give 0).
        conditions: Valid FFP conditions with ``sigma_v_m_s``.

    Returns:
        sigma_y [m], same shape as ``x_m``.

    Raises:
        ValueError: ``conditions.sigma_v_m_s`` is None.
    """
    if conditions.sigma_v_m_s is None:
        raise ValueError("the crosswind dispersion needs sigma_v_m_s in the conditions")
    xstar = np.maximum(np.asarray(x_m, dtype=np.float64) / conditions.x_scale_m, 0.0)
    sigma_y_star = SIGMA_Y_AC * np.sqrt(SIGMA_Y_BC * xstar**2 / (1.0 + SIGMA_Y_CC * xstar))
    ell = conditions.obukhov_length_m if abs(conditions.obukhov_length_m) <= NEUTRAL_LIMIT_M else -1.0e6
    p = 0.80 if ell <= 0.0 else 0.55
    ps1 = min(1.0, 1.0e-5 * abs(ell) / conditions.zm_m + p)
    return sigma_y_star / ps1 * conditions.zm_m * conditions.sigma_v_m_s / conditions.ustar_m_s


def footprint_2d(x_m: ArrayLike, y_m: ArrayLike, conditions: FFPConditions) -> FloatArray:
    """2-D footprint f(x, y) = f_y(x) D_y(x, y) in the wind frame [m-2].

    D_y is a Gaussian in the crosswind distance ``y`` with standard deviation
    :func:`crosswind_dispersion_m`, so integrating f over y gives f_y.

    Args:
        x_m: Upwind distances [m]; broadcast with ``y_m``.
        y_m: Crosswind distances [m] (either side, the footprint is symmetric).
        conditions: Valid FFP conditions with ``sigma_v_m_s``.

    Returns:
        f [m-2] of the broadcast shape; 0 where x <= d x_scale.
    """
    x, y = np.broadcast_arrays(np.asarray(x_m, dtype=np.float64), np.asarray(y_m, dtype=np.float64))
    f_y = crosswind_integrated_footprint(x, conditions)
    sigma_y = crosswind_dispersion_m(x, conditions)
    inside = f_y > 0.0
    safe_sigma = np.where(inside, sigma_y, 1.0)
    gauss = np.exp(-0.5 * (y / safe_sigma) ** 2) / (math.sqrt(2.0 * math.pi) * safe_sigma)
    return np.where(inside, f_y * gauss, 0.0)


def _check_wind_direction(wind_from_deg: float) -> None:
    if math.isnan(wind_from_deg):
        raise FootprintValidityError("wind direction missing", f"wind direction = {wind_from_deg}")
    if not 0.0 <= wind_from_deg <= 360.0:
        raise FootprintValidityError("wind direction outside [0, 360] degrees", f"wind direction = {wind_from_deg}")


def footprint_on_map(east_m: ArrayLike, north_m: ArrayLike, wind_from_deg: float, conditions: FFPConditions) -> FloatArray:
    """2-D footprint rotated onto map coordinates relative to the tower [m-2].

    A point at (east, north) lies ``x = east sin(wd) + north cos(wd)`` upwind
    and ``y = east cos(wd) - north sin(wd)`` crosswind, where wd is the
    direction the wind comes from: the footprint lies towards wd.

    Args:
        east_m: Eastward offset from the tower [m]; broadcast with ``north_m``.
        north_m: Northward offset from the tower [m].
        wind_from_deg: Direction the wind comes from, degrees clockwise from north, [0, 360].
        conditions: Valid FFP conditions with ``sigma_v_m_s``.

    Returns:
        f [m-2] of the broadcast shape.

    Raises:
        FootprintValidityError: Wind direction missing or outside [0, 360].
    """
    _check_wind_direction(wind_from_deg)
    theta = math.radians(wind_from_deg)
    east = np.asarray(east_m, dtype=np.float64)
    north = np.asarray(north_m, dtype=np.float64)
    upwind = east * math.sin(theta) + north * math.cos(theta)
    crosswind = east * math.cos(theta) - north * math.sin(theta)
    return footprint_2d(upwind, crosswind, conditions)


@dataclass(frozen=True)
class DistanceSummary:
    """Distribution of a distance over the half-hours of a climatology [m].

    Attributes:
        median_m: Median [m].
        p10_m: 10th percentile [m].
        p90_m: 90th percentile [m].
    """

    median_m: float
    p10_m: float
    p90_m: float


@dataclass(frozen=True)
class FootprintResult:
    """A footprint climatology on a grid, or the reason there is none.

    Attributes:
        weights: Fraction of the flux from each pixel, shape ``(len(grid_y),
            len(grid_x))`` (row i is ``grid_y[i]``, column j ``grid_x[j]``),
            summing to 1; None when ``fallback_reason`` is set.
        n_used: Half-hours in the climatology.
        n_skipped: Half-hours skipped as outside FFP's validity or incomplete.
        skipped_by_rule: Skipped half-hours counted by violated rule
            (:attr:`FootprintValidityError.rule`).
        grid_coverage: Mean fraction of each half-hour's footprint that falls
            on the grid before normalisation (close to 1 when the grid is large
            enough; much less means the weights miss the far field); NaN without weights.
        extent_80_m: Largest distance from the tower [m] of a pixel centre in the
            smallest pixel set holding 80 % of the weights; NaN without weights.
        area_80_m2: Area of that pixel set [m2]; NaN without weights.
        peak_distance: Distribution of the crosswind-integrated peak distance
            x_max (Eqs. 20-22) over the used half-hours; None without any.
        notes: Assumptions made for missing inputs, with counts.
        fallback_reason: Why no footprint weights could be computed (the caller
            should use its fallback window), or None.
    """

    weights: FloatArray | None
    n_used: int
    n_skipped: int
    skipped_by_rule: dict[str, int]
    grid_coverage: float
    extent_80_m: float
    area_80_m2: float
    peak_distance: DistanceSummary | None
    notes: tuple[str, ...] = ()
    fallback_reason: str | None = None


def _regular_axis(values: ArrayLike, name: str) -> tuple[FloatArray, float]:
    axis = np.asarray(values, dtype=np.float64)
    if axis.ndim != 1 or axis.size < 2 or not np.all(np.isfinite(axis)):
        raise ValueError(f"{name} must be a 1-D array of at least 2 finite pixel-centre coordinates [m]")
    steps = np.diff(axis)
    if not np.allclose(steps, steps[0], rtol=1e-6, atol=0.0) or steps[0] == 0.0:
        raise ValueError(f"{name} must be regularly spaced (a constant, non-zero pixel size)")
    return axis, abs(float(steps[0]))


def _subpixel_offsets(pixel_m: float, oversample: int) -> FloatArray:
    return ((np.arange(oversample) + 0.5) / oversample - 0.5) * pixel_m


def _source_area(weights: FloatArray, distance_m: FloatArray, pixel_area_m2: float) -> tuple[float, float]:
    flat = weights.ravel()
    order = np.argsort(flat)[::-1]
    cumulative = np.cumsum(flat[order])
    n_pixels = int(np.searchsorted(cumulative, SOURCE_AREA_FRACTION * cumulative[-1])) + 1
    inside = order[:n_pixels]
    return float(distance_m.ravel()[inside].max()), n_pixels * pixel_area_m2


def _no_weights(n_used: int, skipped: Counter[str], reason: str, notes: tuple[str, ...] = ()) -> FootprintResult:
    return FootprintResult(
        weights=None,
        n_used=n_used,
        n_skipped=sum(skipped.values()),
        skipped_by_rule=dict(skipped),
        grid_coverage=math.nan,
        extent_80_m=math.nan,
        area_80_m2=math.nan,
        peak_distance=None,
        notes=notes,
        fallback_reason=reason,
    )


def _per_halfhour(value: ArrayLike, n: int, name: str) -> FloatArray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return np.full(n, float(array))
    if array.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have one value per half-hour ({n}), got shape {array.shape}")
    return array


def footprint_climatology(
    grid_x_m: ArrayLike,
    grid_y_m: ArrayLike,
    *,
    zm_m: float,
    ustar_m_s: ArrayLike,
    wind_from_deg: ArrayLike,
    obukhov_length_m: ArrayLike,
    sigma_v_m_s: ArrayLike,
    h_m: ArrayLike,
    umean_m_s: ArrayLike | None = None,
    z0_m: float | None = None,
    tower_x_m: float = 0.0,
    tower_y_m: float = 0.0,
    oversample: int = 3,
) -> FootprintResult:
    """Footprint climatology: the mean FFP footprint of many half-hours as pixel weights.

    Each valid half-hour's 2-D footprint (:func:`footprint_on_map`) is averaged
    over ``oversample`` x ``oversample`` points per pixel and multiplied by the
    pixel area; the half-hours are averaged with equal weight and the result is
    normalised to sum to 1 over the grid. Half-hours outside FFP's validity
    (:class:`FFPConditions`) or with a missing or invalid wind direction are
    skipped and counted by rule. A half-hour uses the mean-wind variant where
    ``umean_m_s`` is finite and the roughness-length variant (``z0_m``)
    otherwise. When ``z0_m`` is given the roughness-sublayer rule (zm > 12.5 z0)
    applies to the site whichever variant the half-hours use.

    Args:
        grid_x_m: Pixel-centre x (east) coordinates [m], 1-D, regularly spaced.
        grid_y_m: Pixel-centre y (north) coordinates [m], 1-D, regularly spaced
            (either order).
        zm_m: Measurement height above displacement [m].
        ustar_m_s: Friction velocity per half-hour [m s-1].
        wind_from_deg: Direction the wind comes from per half-hour [degrees from north].
        obukhov_length_m: Obukhov length per half-hour [m].
        sigma_v_m_s: Crosswind velocity standard deviation per half-hour [m s-1].
        h_m: Boundary-layer height per half-hour [m].
        umean_m_s: Mean wind speed at ``zm`` per half-hour [m s-1], NaN where unknown.
        z0_m: Roughness length [m], or None.
        tower_x_m: Tower x in the grid's coordinates [m] (0 for a tower-relative grid).
        tower_y_m: Tower y in the grid's coordinates [m].
        oversample: Sub-points per pixel side for the pixel average, >= 1.

    Returns:
        The climatology; ``fallback_reason`` is set when the receptor is in the
        roughness sublayer, no half-hour is valid or the footprints miss the grid.

    Raises:
        ValueError: Malformed grid, per-half-hour arrays of different lengths,
            ``oversample < 1``, or neither ``umean_m_s`` nor ``z0_m`` given.
    """
    x_axis, dx = _regular_axis(grid_x_m, "grid_x_m")
    y_axis, dy = _regular_axis(grid_y_m, "grid_y_m")
    if oversample < 1:
        raise ValueError(f"oversample must be >= 1, got {oversample}")
    if umean_m_s is None and z0_m is None:
        raise ValueError("give umean_m_s, z0_m or both")
    ustar = np.atleast_1d(np.asarray(ustar_m_s, dtype=np.float64))
    n = ustar.size
    wind = _per_halfhour(wind_from_deg, n, "wind_from_deg")
    ell = _per_halfhour(obukhov_length_m, n, "obukhov_length_m")
    sigma_v = _per_halfhour(sigma_v_m_s, n, "sigma_v_m_s")
    h = _per_halfhour(h_m, n, "h_m")
    umean = _per_halfhour(math.nan if umean_m_s is None else umean_m_s, n, "umean_m_s")
    if z0_m is not None:
        try:
            _check_roughness_sublayer(zm_m, z0_m)
        except FootprintValidityError as err:
            return _no_weights(0, Counter({err.rule: n}), f"site outside FFP validity: {err}")

    east = (x_axis[:, None] + _subpixel_offsets(dx, oversample)[None, :]).ravel() - tower_x_m
    north = (y_axis[:, None] + _subpixel_offsets(dy, oversample)[None, :]).ravel() - tower_y_m
    pixel_area = dx * dy
    total = np.zeros((y_axis.size, x_axis.size))
    coverages: list[float] = []
    peaks: list[float] = []
    skipped: Counter[str] = Counter()
    for i in range(n):
        try:
            _check_wind_direction(float(wind[i]))
            if math.isfinite(umean[i]):
                conditions = FFPConditions(zm_m, float(h[i]), float(ell[i]), float(ustar[i]), float(sigma_v[i]), umean_m_s=float(umean[i]))
            elif z0_m is not None:
                conditions = FFPConditions(zm_m, float(h[i]), float(ell[i]), float(ustar[i]), float(sigma_v[i]), z0_m=z0_m)
            else:
                raise FootprintValidityError("umean missing", "no mean wind speed and no roughness length")
        except FootprintValidityError as err:
            skipped[err.rule] += 1
            continue
        density = footprint_on_map(east[None, :], north[:, None], float(wind[i]), conditions)
        weights = density.reshape(y_axis.size, oversample, x_axis.size, oversample).mean(axis=(1, 3)) * pixel_area
        total += weights
        coverages.append(float(weights.sum()))
        peaks.append(peak_distance_m(conditions))

    if not peaks:
        causes = ", ".join(f"{rule}: {count}" for rule, count in skipped.most_common())
        return _no_weights(0, skipped, f"no half-hour within FFP validity ({causes or 'no records'})")
    if total.sum() <= 0.0:
        return _no_weights(len(peaks), skipped, "the footprints fall entirely outside the grid")
    weights = total / total.sum()
    distance = np.hypot(x_axis[None, :] - tower_x_m, y_axis[:, None] - tower_y_m)
    extent, area = _source_area(weights, distance, pixel_area)
    p10, median, p90 = np.percentile(peaks, [10.0, 50.0, 90.0])
    return FootprintResult(
        weights=weights,
        n_used=len(peaks),
        n_skipped=sum(skipped.values()),
        skipped_by_rule=dict(skipped),
        grid_coverage=float(np.mean(coverages)),
        extent_80_m=extent,
        area_80_m2=area,
        peak_distance=DistanceSummary(median_m=float(median), p10_m=float(p10), p90_m=float(p90)),
    )


def measurement_height_above_displacement_m(measurement_height_m: float, canopy_height_m: float) -> float:
    """Measurement height above displacement, zm = z - d with d = 2/3 canopy height [m].

    See :data:`DISPLACEMENT_FRACTION`.

    Args:
        measurement_height_m: Sensor height above ground [m].
        canopy_height_m: Canopy height [m], >= 0.

    Returns:
        zm [m] (may be <= 0 for a sensor inside the canopy; FFP then rejects it).
    """
    return measurement_height_m - DISPLACEMENT_FRACTION * canopy_height_m


def roughness_length_m(canopy_height_m: float) -> float:
    """z0 = 0.1 canopy height (:data:`ROUGHNESS_FRACTION`) [m]."""
    return ROUGHNESS_FRACTION * canopy_height_m


def air_density_kg_m3(air_temperature_k: ArrayLike, pressure_kpa: ArrayLike = STANDARD_PRESSURE_KPA) -> FloatArray:
    """Density of dry air from the ideal-gas law, rho = p / (R_d T) [kg m-3].

    Args:
        air_temperature_k: Air temperature [K].
        pressure_kpa: Air pressure [kPa] (FLUXNET ``PA``); default standard sea-level pressure.

    Returns:
        rho [kg m-3], broadcast shape.
    """
    return np.asarray(pressure_kpa, dtype=np.float64) * 1.0e3 / (R_DRY_AIR_J_KG_K * np.asarray(air_temperature_k, dtype=np.float64))


def obukhov_length_from_heat_flux_m(
    sensible_heat_w_m2: ArrayLike, ustar_m_s: ArrayLike, air_temperature_k: ArrayLike, air_density: ArrayLike
) -> FloatArray:
    """Obukhov length from the sensible heat flux, L = -rho c_p T u*^3 / (k g H) [m].

    Uses H in place of the buoyancy flux, i.e. ignores the moisture term (which
    makes |L| too large by roughly 0.07/Bowen-ratio as a fraction, small except
    over wet surfaces). H = 0 gives L = -inf (neutral).

    Args:
        sensible_heat_w_m2: Sensible heat flux H [W m-2], positive upward.
        ustar_m_s: Friction velocity [m s-1].
        air_temperature_k: Air temperature [K].
        air_density: Air density [kg m-3] (:func:`air_density_kg_m3`).

    Returns:
        L [m]: negative for upward H (unstable), positive for downward H (stable).
    """
    heat = np.asarray(sensible_heat_w_m2, dtype=np.float64)
    numerator = np.asarray(air_density, dtype=np.float64) * CP_AIR_J_KG_K * np.asarray(air_temperature_k, dtype=np.float64)
    numerator = numerator * np.asarray(ustar_m_s, dtype=np.float64) ** 3
    with np.errstate(divide="ignore"):
        return -numerator / (VON_KARMAN * GRAVITY_M_S2 * heat)


def sigma_v_from_ustar(ustar_m_s: ArrayLike) -> FloatArray:
    """sigma_v = 1.9 u* (:data:`SIGMA_V_OVER_USTAR`, neutral surface layer) [m s-1]."""
    return SIGMA_V_OVER_USTAR * np.asarray(ustar_m_s, dtype=np.float64)


def boundary_layer_height_m(
    obukhov_length_m: ArrayLike,
    ustar_m_s: ArrayLike,
    latitude_deg: float,
    convective_default_m: float = DEFAULT_CONVECTIVE_PBLH_M,
) -> FloatArray:
    """Boundary-layer height estimate for half-hours without a measured PBLH [m].

    Stable and neutral (L > 0, including +inf): the equilibrium height of
    Nieuwstadt (1981) used by Kljun et al. (2015, Eq. B1),
    ``h = L/3.8 (-1 + (1 + 2.28 u*/(f L))^(1/2))``, evaluated in the equivalent
    form ``0.6 u*/f / (1 + (1 + 2.28 u*/(f L))^(1/2))`` that is finite at
    neutral (-> 0.3 u*/f) and tends to Zilitinkevich's ``0.4 (u* L/f)^(1/2)``
    when very stable. f = 2 Omega sin(latitude) is the Coriolis parameter.
    Unstable (L < 0): ``convective_default_m``; the paper's slab model of the
    growing mixed layer (Eq. B5) needs the morning history and is not used.

    Args:
        obukhov_length_m: Obukhov length [m].
        ustar_m_s: Friction velocity [m s-1].
        latitude_deg: Tower latitude [degrees], [-90, 90].
        convective_default_m: Height assumed for unstable half-hours [m].

    Returns:
        h [m], broadcast shape; NaN where an input is NaN (inf at the equator for L > 0).

    Raises:
        ValueError: Latitude outside [-90, 90].
    """
    if not -90.0 <= latitude_deg <= 90.0:
        raise ValueError(f"latitude_deg must be within [-90, 90], got {latitude_deg}")
    ell = np.asarray(obukhov_length_m, dtype=np.float64)
    ustar = np.asarray(ustar_m_s, dtype=np.float64)
    coriolis = abs(2.0 * EARTH_ANGULAR_VELOCITY_RAD_S * math.sin(math.radians(latitude_deg)))
    with np.errstate(divide="ignore", invalid="ignore"):
        stable = 0.6 * ustar / coriolis / (1.0 + np.sqrt(1.0 + 2.28 * ustar / (coriolis * ell)))
    return np.where(ell > 0.0, stable, np.where(ell < 0.0, convective_default_m, np.nan))


def _column(halfhourly: pd.DataFrame, name: str) -> FloatArray | None:
    """A column as floats with FLUXNET's -9999 as NaN, or None when absent or all missing."""
    if name not in halfhourly.columns:
        return None
    values = halfhourly[name].to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.where(values == FLUXNET_MISSING, np.nan, values)
    return None if np.all(np.isnan(values)) else values


def _fill(measured: FloatArray | None, estimate: FloatArray, what: str, notes: list[str]) -> FloatArray:
    """``measured`` with its gaps filled from ``estimate``; appends a note saying how many values were estimated."""
    gaps = np.ones(estimate.shape, dtype=bool) if measured is None else np.isnan(measured)
    n_estimated = int(np.sum(gaps & np.isfinite(estimate)))
    if n_estimated:
        notes.append(f"{what} for {n_estimated} of {estimate.size} half-hours")
    return np.where(gaps, estimate, measured if measured is not None else estimate)


def footprint_weights(
    grid_x_m: ArrayLike,
    grid_y_m: ArrayLike,
    tower_x_m: float,
    tower_y_m: float,
    halfhourly: pd.DataFrame,
    measurement_height_m: float,
    canopy_height_m: float,
    *,
    latitude_deg: float,
    convective_pblh_m: float = DEFAULT_CONVECTIVE_PBLH_M,
    oversample: int = 3,
) -> FootprintResult:
    """FFP footprint-climatology weights on a grid from FLUXNET half-hourly records.

    Columns (FLUXNET/AmeriFlux names; NaN or -9999 missing): ``USTAR``
    [m s-1] and ``WD`` [degrees, wind from] are required; ``WS`` [m s-1]
    selects the mean-wind variant (else z0 is used); ``MO_LENGTH`` [m], or
    ``H`` [W m-2] with ``TA`` [degC] (and optionally ``PA`` [kPa], default
    101.325) to compute it; ``V_SIGMA`` [m s-1] and ``PBLH`` [m] are optional.
    Gaps are filled per half-hour with the stated assumptions, each reported
    in :attr:`FootprintResult.notes`:

    * zm = z - 2/3 h_c and z0 = 0.1 h_c (:data:`DISPLACEMENT_FRACTION`,
      :data:`ROUGHNESS_FRACTION`; no z0 for h_c = 0);
    * L from H, u*, T and dry-air density (:func:`obukhov_length_from_heat_flux_m`);
    * sigma_v = 1.9 u* (:data:`SIGMA_V_OVER_USTAR`);
    * h from :func:`boundary_layer_height_m` (stable: Eq. B1; unstable:
      ``convective_pblh_m``).

    Half-hours failing FFP's validity are skipped and counted. When the
    inputs cannot give a footprint at all (no records, no wind direction, no
    u*, no stability, the sensor in the roughness sublayer or no valid
    half-hour) ``weights`` is None and ``fallback_reason`` says why, so the
    caller can fall back to, e.g., a Gaussian window.

    Args:
        grid_x_m: Pixel-centre x (east) coordinates [m], 1-D, regular.
        grid_y_m: Pixel-centre y (north) coordinates [m], 1-D, regular.
        tower_x_m: Tower x in the grid's coordinates [m].
        tower_y_m: Tower y in the grid's coordinates [m].
        halfhourly: Half-hourly records, one row per half-hour.
        measurement_height_m: Eddy-covariance sensor height above ground [m].
        canopy_height_m: Canopy height [m].
        latitude_deg: Tower latitude [degrees] (Coriolis parameter for h).
        convective_pblh_m: h assumed for unstable half-hours without PBLH [m].
        oversample: Sub-points per pixel side (see :func:`footprint_climatology`).

    Returns:
        The climatology result (weights of shape ``(len(grid_y_m), len(grid_x_m))``).

    Raises:
        ValueError: Malformed grid (see :func:`footprint_climatology`) or latitude.
    """
    zm = measurement_height_above_displacement_m(measurement_height_m, canopy_height_m)
    z0 = roughness_length_m(canopy_height_m) if canopy_height_m > 0.0 else None
    notes = [f"zm = z - 2/3 canopy height = {zm:.2f} m" + ("" if z0 is None else f"; z0 = 0.1 canopy height = {z0:.3f} m")]

    def fallback(reason: str) -> FootprintResult:
        return _no_weights(0, Counter(), reason, tuple(notes))

    if halfhourly.empty:
        return fallback("no half-hourly records")
    ustar = _column(halfhourly, "USTAR")
    wind_dir = _column(halfhourly, "WD")
    if wind_dir is None:
        return fallback("no wind direction (WD column absent or all missing): the footprint cannot be oriented")
    if ustar is None:
        return fallback("no friction velocity (USTAR column absent or all missing)")

    heat, temperature_c = _column(halfhourly, "H"), _column(halfhourly, "TA")
    ell_measured = _column(halfhourly, "MO_LENGTH")
    if heat is not None and temperature_c is not None:
        temperature_k = temperature_c + 273.15
        pressure = _column(halfhourly, "PA")
        pressure = np.full(ustar.size, STANDARD_PRESSURE_KPA) if pressure is None else np.nan_to_num(pressure, nan=STANDARD_PRESSURE_KPA)
        ell_estimate = obukhov_length_from_heat_flux_m(heat, ustar, temperature_k, air_density_kg_m3(temperature_k, pressure))
        ell = _fill(ell_measured, ell_estimate, "L computed from H, u*, TA and PA (101.325 kPa where missing)", notes)
    elif ell_measured is not None:
        ell = ell_measured
    else:
        return fallback("no stability: MO_LENGTH absent and H or TA absent (or all missing)")
    sigma_v = _fill(_column(halfhourly, "V_SIGMA"), sigma_v_from_ustar(ustar), f"sigma_v = {SIGMA_V_OVER_USTAR} u*", notes)
    h_estimate = boundary_layer_height_m(ell, ustar, latitude_deg, convective_pblh_m)
    h = _fill(_column(halfhourly, "PBLH"), h_estimate, f"h estimated (stable: Eq. B1; unstable: {convective_pblh_m:.0f} m)", notes)
    umean = _column(halfhourly, "WS")
    if z0 is None and umean is None:
        return fallback("no mean wind speed (WS) and no roughness length (canopy height 0)")
    if umean is not None and z0 is not None and np.any(np.isnan(umean)):
        notes.append(f"z0 = {ROUGHNESS_FRACTION} canopy height for {int(np.sum(np.isnan(umean)))} half-hours without WS")
    elif umean is None:
        notes.append(f"z0 = {ROUGHNESS_FRACTION} canopy height (no WS column)")
    result = footprint_climatology(
        grid_x_m,
        grid_y_m,
        zm_m=zm,
        ustar_m_s=ustar,
        wind_from_deg=wind_dir,
        obukhov_length_m=ell,
        sigma_v_m_s=sigma_v,
        h_m=h,
        umean_m_s=umean,
        z0_m=z0,
        tower_x_m=tower_x_m,
        tower_y_m=tower_y_m,
        oversample=oversample,
    )
    return dataclasses.replace(result, notes=tuple(notes))
