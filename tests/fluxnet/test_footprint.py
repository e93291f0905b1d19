"""Tests for fluxnet.footprint: the Kljun et al. (2015) flux footprint prediction (FFP).

Reference example (``test_published_example_*``)
------------------------------------------------
Inputs: the single-footprint example of the authors' readme shipped with their
code, "FFP Python readme (v1.42)", N. Kljun, 23 June 2021, Sect. 1 "Example"
(FFP_readme_Python.pdf, distributed with calc_footprint_FFP.py at
footprint.kljun.net; copy at github.com/jsta/pyffp):
``zm = 20 m, z0 = 0.1 m, h = 2000 m, L = -100 m, sigma_v = 0.6 m s-1, u* = 0.4 m s-1``.

Outputs: neither the paper nor the readme prints numbers for this example, so
the reference values are

* ``x_peak = 84.08 m``: ``x_ci_max`` returned by the authors' calc_footprint_FFP.py
  v1.42 for those inputs (run here, not copied). By hand with Eq. 22:
  psi_M = 0.5150, ln(zm/z0) - psi_M = 4.7833, zm / (1 - zm/h) = 20.202 m, so
  x_scale = 96.632 m and x_peak = (-c/b + d) x_scale = 0.87016 x 96.632 m = 84.08 m.
* ``x_80 = 654.1 m``: where the trapezoid integral of that code's ``f_ci`` over
  ``x_ci`` (its default 1000 points up to X* = 30) reaches 0.8. The paper's
  closed form (Eq. 26) gives (-c / ln 0.8 + d) x_scale = 646.3 m, 1.2 % less.
* A third-party check: FluxPrint (github.com/pedrohenriquecoimbra/FluxPrint,
  tests/test_correctness.py) pins ``x_ci_max = 84.94 m`` for zm = 20 m, z0 = 0.1 m,
  h = 1000 m, L = -100 m, u* = 0.5 m s-1.

The acceptance tolerance for these is 5 %.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fluxnet.footprint import (
    DEFAULT_CONVECTIVE_PBLH_M,
    EARTH_ANGULAR_VELOCITY_RAD_S,
    FFPConditions,
    FootprintResult,
    FootprintValidityError,
    air_density_kg_m3,
    boundary_layer_height_m,
    crosswind_dispersion_m,
    crosswind_integrated_footprint,
    footprint_2d,
    footprint_climatology,
    footprint_on_map,
    footprint_weights,
    measurement_height_above_displacement_m,
    obukhov_length_from_heat_flux_m,
    peak_distance_m,
    roughness_length_m,
    sigma_v_from_ustar,
    source_distance_m,
)

README_EXAMPLE = FFPConditions(zm_m=20.0, h_m=2000.0, obukhov_length_m=-100.0, ustar_m_s=0.4, sigma_v_m_s=0.6, z0_m=0.1)
REFERENCE_X_PEAK_M = 84.08
REFERENCE_X_80_M = 654.1

CASES = {
    "unstable_z0": README_EXAMPLE,
    "stable_z0": FFPConditions(zm_m=20.0, h_m=500.0, obukhov_length_m=50.0, ustar_m_s=0.3, sigma_v_m_s=0.5, z0_m=0.1),
    "neutral_umean": FFPConditions(zm_m=20.0, h_m=500.0, obukhov_length_m=math.inf, ustar_m_s=0.3, sigma_v_m_s=0.5, umean_m_s=4.0),
}

# x from 0 to far beyond the tail of f_y (X* ~ 1e7): fine where f_y varies, log-spaced beyond
X_FINE = np.concatenate([np.linspace(0.0, 3000.0, 300_001), np.geomspace(3000.0, 1.0e9, 100_001)[1:]])


def cumulative(f: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(x))])


# (a) the published example


def test_published_example_peak_distance_matches_reference() -> None:
    assert peak_distance_m(README_EXAMPLE) == pytest.approx(REFERENCE_X_PEAK_M, rel=0.05)
    assert peak_distance_m(README_EXAMPLE) == pytest.approx(REFERENCE_X_PEAK_M, abs=0.01)  # the same equation
    fluxprint_case = FFPConditions(zm_m=20.0, h_m=1000.0, obukhov_length_m=-100.0, ustar_m_s=0.5, z0_m=0.1)
    assert peak_distance_m(fluxprint_case) == pytest.approx(84.94, rel=0.05)


def test_published_example_80_percent_distance_matches_reference() -> None:
    assert source_distance_m(80.0, README_EXAMPLE) == pytest.approx(REFERENCE_X_80_M, rel=0.05)
    f_y = crosswind_integrated_footprint(X_FINE, README_EXAMPLE)
    cum = cumulative(f_y, X_FINE)
    numeric_x80 = np.interp(0.8, cum / cum[-1], X_FINE)
    assert numeric_x80 == pytest.approx(REFERENCE_X_80_M, rel=0.05)


# (b) f_y integrates to 1, peaks at x_max and x_R matches its integral


@pytest.mark.parametrize("name", CASES)
def test_crosswind_integrated_footprint_integrates_to_one(name: str) -> None:
    f_y = crosswind_integrated_footprint(X_FINE, CASES[name])
    # a Gamma(-b-1) c^(b+1) = 1.0016 for the fitted constants
    assert np.trapezoid(f_y, X_FINE) == pytest.approx(1.0016, abs=2e-3)
    assert np.all(f_y >= 0.0)
    assert np.all(crosswind_integrated_footprint([-50.0, 0.0], CASES[name]) == 0.0)  # nothing downwind


@pytest.mark.parametrize("name", CASES)
def test_peak_and_source_distances_agree_with_the_footprint_curve(name: str) -> None:
    conditions = CASES[name]
    f_y = crosswind_integrated_footprint(X_FINE, conditions)
    assert X_FINE[np.argmax(f_y)] == pytest.approx(peak_distance_m(conditions), rel=1e-3)
    cum = cumulative(f_y, X_FINE)
    for r in range(10, 100, 10):
        numeric = np.interp(r / 100.0, cum / cum[-1], X_FINE)
        assert source_distance_m(float(r), conditions) == pytest.approx(numeric, rel=0.025), r
    assert source_distance_m(10.0, conditions) < source_distance_m(50.0, conditions) < source_distance_m(90.0, conditions)


def test_source_distance_rejects_percent_outside_fitted_range() -> None:
    with pytest.raises(ValueError, match=r"\[10, 90\]"):
        source_distance_m(95.0, README_EXAMPLE)
    with pytest.raises(ValueError, match=r"\[10, 90\]"):
        source_distance_m(0.8, README_EXAMPLE)  # a fraction, not a percent


def test_mean_wind_variant_equals_roughness_variant_on_the_log_profile() -> None:
    psi = 0.5150363483984346  # psi_M(zm/L = -0.2), see the module docstring
    umean = README_EXAMPLE.ustar_m_s / 0.4 * (math.log(20.0 / 0.1) - psi)
    by_wind = FFPConditions(zm_m=20.0, h_m=2000.0, obukhov_length_m=-100.0, ustar_m_s=0.4, umean_m_s=umean)
    assert peak_distance_m(by_wind) == pytest.approx(peak_distance_m(README_EXAMPLE), rel=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"obukhov_length_m": -1.0}, "zm/L < -15.5"),
        ({"ustar_m_s": 0.05}, "u* < 0.1 m s-1"),
        ({"h_m": 24.0}, "zm >= 0.8 h"),
        ({"h_m": 8.0}, "h <= 10 m"),
        ({"zm_m": -1.0}, "zm <= 0"),
        ({"obukhov_length_m": 0.0}, "L == 0"),
        ({"obukhov_length_m": math.nan}, "L missing"),
        ({"ustar_m_s": math.nan}, "u* missing"),
        ({"sigma_v_m_s": 0.0}, "sigma_v <= 0"),
        ({"z0_m": 2.0}, "zm <= 12.5 z0"),
        ({"z0_m": -0.1}, "z0 <= 0"),
        ({"z0_m": None, "umean_m_s": 0.0}, "umean <= 0"),
    ],
)
def test_validity_rules_raise_a_named_value_error(kwargs: dict[str, float | None], rule: str) -> None:
    base: dict[str, float | None] = {
        "zm_m": 20.0, "h_m": 2000.0, "obukhov_length_m": -100.0, "ustar_m_s": 0.4, "sigma_v_m_s": 0.6, "z0_m": 0.1,
    }
    with pytest.raises(ValueError, match=rule.replace("*", r"\*")) as info:
        FFPConditions(**{**base, **kwargs})  # type: ignore[arg-type]
    assert isinstance(info.value, FootprintValidityError)
    assert info.value.rule.startswith(rule)


def test_stable_shallow_boundary_layer_is_rejected_by_the_entrainment_limit() -> None:
    h = float(boundary_layer_height_m(5.0, 0.15, 50.0))  # a very stable night: h = 31.3 m
    assert h < 28.0 / 0.8
    with pytest.raises(FootprintValidityError, match="entrainment"):
        FFPConditions(zm_m=28.0, h_m=h, obukhov_length_m=5.0, ustar_m_s=0.15, z0_m=0.1)
    FFPConditions(zm_m=20.0, h_m=h, obukhov_length_m=5.0, ustar_m_s=0.15, z0_m=0.1)  # a lower receptor is fine


def test_exactly_one_of_z0_and_umean() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        FFPConditions(zm_m=20.0, h_m=2000.0, obukhov_length_m=-100.0, ustar_m_s=0.4)
    with pytest.raises(ValueError, match="exactly one"):
        FFPConditions(zm_m=20.0, h_m=2000.0, obukhov_length_m=-100.0, ustar_m_s=0.4, z0_m=0.1, umean_m_s=3.0)


# (c) the 2-D footprint's crosswind integral is f_y


@pytest.mark.parametrize("name", CASES)
def test_2d_footprint_integrates_crosswind_to_f_y(name: str) -> None:
    conditions = CASES[name]
    x = np.array([20.0, 60.0, 100.0, 300.0, 1000.0])
    sigma = crosswind_dispersion_m(x, conditions)
    y = np.linspace(-8.0, 8.0, 4001)[:, None] * sigma[None, :]
    f = footprint_2d(x[None, :], y, conditions)
    integral = np.trapezoid(f, y, axis=0)
    np.testing.assert_allclose(integral, crosswind_integrated_footprint(x, conditions), rtol=1e-6)
    assert np.all(np.diff(sigma) > 0)  # the plume widens downwind of each source


def test_stable_footprint_spreads_more_crosswind_per_unit_sigma_v() -> None:
    # ps1 = 0.55 (stable) vs 0.80 (unstable) in Eq. 13, at the same scaled distance
    stable = FFPConditions(zm_m=20.0, h_m=2000.0, obukhov_length_m=100.0, ustar_m_s=0.4, sigma_v_m_s=0.6, z0_m=0.1)
    ratio = crosswind_dispersion_m(stable.x_scale_m, stable) / crosswind_dispersion_m(README_EXAMPLE.x_scale_m, README_EXAMPLE)
    assert ratio == pytest.approx(0.80 / 0.55, rel=1e-3)


# (d) rotation: the source area lies upwind


@pytest.mark.parametrize(
    ("wind_from_deg", "unit_east", "unit_north"),
    [(270.0, -1.0, 0.0), (90.0, 1.0, 0.0), (0.0, 0.0, 1.0), (360.0, 0.0, 1.0), (180.0, 0.0, -1.0), (45.0, 0.5**0.5, 0.5**0.5)],
)
def test_footprint_lies_towards_where_the_wind_comes_from(wind_from_deg: float, unit_east: float, unit_north: float) -> None:
    x_peak = peak_distance_m(README_EXAMPLE)
    upwind = footprint_on_map(x_peak * unit_east, x_peak * unit_north, wind_from_deg, README_EXAMPLE)
    downwind = footprint_on_map(-x_peak * unit_east, -x_peak * unit_north, wind_from_deg, README_EXAMPLE)
    on_axis = footprint_2d(x_peak, 0.0, README_EXAMPLE)
    assert float(upwind) == pytest.approx(float(on_axis), rel=1e-9)
    assert float(downwind) == 0.0


def test_footprint_rejects_invalid_wind_direction() -> None:
    with pytest.raises(FootprintValidityError, match=r"outside \[0, 360\]"):
        footprint_on_map(0.0, 0.0, 400.0, README_EXAMPLE)


# (e) climatology

ZM_GRASS = 10.0
Z0_GRASS = 0.1
GRID_X = np.arange(-2995.0, 300.0, 10.0)  # pixel centres, 10 m pixels, tower at the origin
GRID_Y = np.arange(495.0, -500.0, -10.0)  # north-up raster order


def climatology(
    wind: list[float], ell: list[float], ustar: list[float] | None = None, grid_x: np.ndarray = GRID_X, grid_y: np.ndarray = GRID_Y,
    **kwargs: float,
) -> FootprintResult:
    n = len(wind)
    ustar_values = np.full(n, 0.4) if ustar is None else np.asarray(ustar)
    return footprint_climatology(
        grid_x, grid_y, zm_m=ZM_GRASS, ustar_m_s=ustar_values, wind_from_deg=wind, obukhov_length_m=ell,
        sigma_v_m_s=1.9 * ustar_values, h_m=np.full(n, 1000.0), z0_m=Z0_GRASS, **kwargs,
    )


def test_climatology_weights_sum_to_one_and_cover_the_footprint_on_a_large_grid() -> None:
    result = climatology([270.0], [-50.0])
    assert result.weights is not None and result.weights.shape == (GRID_Y.size, GRID_X.size)
    assert result.weights.sum() == pytest.approx(1.0, abs=1e-12)
    # before normalisation the grid holds what f_y puts within its upwind edge (crosswind tails are inside)
    conditions = FFPConditions(ZM_GRASS, 1000.0, -50.0, 0.4, 0.76, z0_m=Z0_GRASS)
    x = np.linspace(0.0, -GRID_X[0] + 5.0, 300_001)
    expected = np.trapezoid(crosswind_integrated_footprint(x, conditions), x)
    assert result.grid_coverage == pytest.approx(expected, abs=2e-3)
    assert result.grid_coverage > 0.97
    # wind from the west: the weight lies west of the tower, mostly along the row through it
    assert result.weights[:, GRID_X < 0].sum() == pytest.approx(1.0, abs=1e-9)
    assert result.peak_distance is not None
    assert result.peak_distance.median_m == pytest.approx(peak_distance_m(conditions))
    # the 80 % source area holds 0.8 * coverage of the flux, so it must reach at least as far upwind as f_y needs
    # for that much; being compact crosswind rather than a strip, it reaches further, but not to x_90
    cum = cumulative(crosswind_integrated_footprint(x, conditions), x)
    x_needed = np.interp(0.8 * result.grid_coverage, cum, x)
    assert x_needed - 10.0 < result.extent_80_m < source_distance_m(90.0, conditions)
    assert result.area_80_m2 > 0.0


def test_climatology_on_a_small_grid_still_sums_to_one_but_reports_low_coverage() -> None:
    result = climatology([270.0], [-50.0], grid_x=np.arange(-195.0, 200.0, 10.0), grid_y=np.arange(-195.0, 200.0, 10.0))
    assert result.weights is not None
    assert result.weights.sum() == pytest.approx(1.0)
    assert result.grid_coverage < 0.8


def test_climatology_skips_and_counts_invalid_halfhours() -> None:
    result = climatology(
        wind=[270.0, 270.0, 270.0, 270.0, math.nan, 500.0],
        ell=[-50.0, -80.0, -50.0, -0.5, -50.0, -50.0],
        ustar=[0.4, 0.3, 0.05, 0.4, 0.4, 0.4],
    )
    assert result.n_used == 2
    assert result.n_skipped == 4
    assert result.skipped_by_rule == {
        "u* < 0.1 m s-1": 1,
        "zm/L < -15.5": 1,
        "wind direction missing": 1,
        "wind direction outside [0, 360] degrees": 1,
    }
    assert result.fallback_reason is None


def test_climatology_with_no_valid_halfhour_gives_a_fallback_reason() -> None:
    result = climatology([270.0, 270.0], [-50.0, -50.0], ustar=[0.05, 0.02])
    assert result.weights is None
    assert result.n_used == 0 and result.n_skipped == 2
    assert result.fallback_reason is not None and "u* < 0.1 m s-1: 2" in result.fallback_reason


def test_stable_footprint_is_longer_than_unstable() -> None:
    unstable = climatology([270.0], [-20.0])
    stable = climatology([270.0], [40.0])
    assert stable.peak_distance is not None and unstable.peak_distance is not None
    assert stable.peak_distance.median_m > 1.3 * unstable.peak_distance.median_m
    assert stable.extent_80_m > 1.3 * unstable.extent_80_m


def test_climatology_averages_halfhours_and_accepts_absolute_coordinates() -> None:
    grid_x = np.arange(-995.0, 1000.0, 10.0)
    grid_y = np.arange(995.0, -1000.0, -10.0)
    north_south = climatology([0.0, 180.0], [-50.0, -50.0], grid_x=grid_x, grid_y=grid_y)
    assert north_south.weights is not None
    assert north_south.weights[grid_y > 0, :].sum() == pytest.approx(0.5, abs=1e-6)
    np.testing.assert_allclose(north_south.weights, north_south.weights[::-1, :], atol=1e-12)  # mirror images
    east, north = 500_000.0, 5_300_000.0  # a UTM position
    shifted = climatology([0.0, 180.0], [-50.0, -50.0], grid_x=grid_x + east, grid_y=grid_y + north, tower_x_m=east, tower_y_m=north)
    assert shifted.weights is not None
    np.testing.assert_allclose(shifted.weights, north_south.weights, rtol=1e-6, atol=1e-12)
    assert shifted.extent_80_m == pytest.approx(north_south.extent_80_m)


def test_climatology_rejects_irregular_grids() -> None:
    with pytest.raises(ValueError, match="regularly spaced"):
        climatology([270.0], [-50.0], grid_x=np.array([0.0, 10.0, 25.0]))


# helpers for missing inputs


def test_site_geometry_rules_of_thumb() -> None:
    assert measurement_height_above_displacement_m(30.0, 15.0) == pytest.approx(20.0)
    assert roughness_length_m(15.0) == pytest.approx(1.5)
    assert float(sigma_v_from_ustar(0.4)) == pytest.approx(0.76)


def test_obukhov_length_from_sensible_heat() -> None:
    # L = -rho cp T u*^3 / (k g H) = -1.2 * 1005 * 293.15 * 0.3**3 / (0.4 * 9.81 * 100) = -24.33 m
    assert float(obukhov_length_from_heat_flux_m(100.0, 0.3, 293.15, 1.2)) == pytest.approx(-24.33, abs=0.01)
    assert float(obukhov_length_from_heat_flux_m(-20.0, 0.3, 293.15, 1.2)) == pytest.approx(121.6, abs=0.1)
    assert float(obukhov_length_from_heat_flux_m(0.0, 0.3, 293.15, 1.2)) == -math.inf
    assert float(air_density_kg_m3(288.15)) == pytest.approx(1.225, abs=1e-3)  # standard atmosphere


def test_boundary_layer_height_estimates() -> None:
    f = 2.0 * EARTH_ANGULAR_VELOCITY_RAD_S * math.sin(math.radians(45.0))
    # Eq. B1 by hand: 10/3.8 * (-1 + sqrt(1 + 2.28 * 0.2 / (f * 10))) = 52.8 m
    assert float(boundary_layer_height_m(10.0, 0.2, 45.0)) == pytest.approx(52.8, abs=0.1)
    assert float(boundary_layer_height_m(math.inf, 0.4, 45.0)) == pytest.approx(0.3 * 0.4 / f)  # neutral limit
    very_stable = float(boundary_layer_height_m(1.0, 0.2, -45.0))  # southern hemisphere: |f|
    assert very_stable == pytest.approx(0.4 * math.sqrt(0.2 * 1.0 / f), rel=0.03)  # Zilitinkevich's limit
    assert float(boundary_layer_height_m(-30.0, 0.4, 45.0)) == DEFAULT_CONVECTIVE_PBLH_M
    with pytest.raises(ValueError, match="latitude"):
        boundary_layer_height_m(10.0, 0.2, 95.0)


# footprint_weights: the entry point for the GPP join


def halfhours(n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "USTAR": rng.uniform(0.25, 0.5, n),
            "WS": rng.uniform(2.0, 5.0, n),
            "WD": rng.uniform(240.0, 300.0, n),
            "H": rng.uniform(50.0, 250.0, n),
            "TA": rng.uniform(15.0, 25.0, n),
        }
    )


def weights_for(frame: pd.DataFrame, measurement_height_m: float = 10.6, canopy_height_m: float = 0.9) -> FootprintResult:
    return footprint_weights(GRID_X, GRID_Y, 0.0, 0.0, frame, measurement_height_m, canopy_height_m, latitude_deg=47.0)


def test_footprint_weights_from_fluxnet_columns_states_its_assumptions() -> None:
    result = weights_for(halfhours())
    assert result.fallback_reason is None
    assert result.weights is not None and result.weights.sum() == pytest.approx(1.0)
    assert result.n_used == 6 and result.n_skipped == 0
    notes = " | ".join(result.notes)
    assert "L computed from H" in notes and "sigma_v = 1.9 u*" in notes and "h estimated" in notes


def test_footprint_weights_uses_measured_columns_when_present() -> None:
    frame = halfhours()
    temperature_k = frame["TA"] + 273.15
    ell = obukhov_length_from_heat_flux_m(frame["H"], frame["USTAR"], temperature_k, air_density_kg_m3(temperature_k))
    measured = frame.drop(columns=["H", "TA"]).assign(MO_LENGTH=ell, V_SIGMA=1.9 * frame["USTAR"], PBLH=DEFAULT_CONVECTIVE_PBLH_M)
    computed, given = weights_for(frame), weights_for(measured)
    assert computed.weights is not None and given.weights is not None
    np.testing.assert_allclose(given.weights, computed.weights, rtol=1e-9, atol=1e-15)
    assert given.notes == ("zm = z - 2/3 canopy height = 10.00 m; z0 = 0.1 canopy height = 0.090 m",)  # nothing estimated
    wider = weights_for(measured.assign(V_SIGMA=3.0 * frame["USTAR"]))
    assert wider.weights is not None and wider.area_80_m2 > given.area_80_m2


def test_footprint_weights_prefers_the_measured_wind_speed_over_z0() -> None:
    slow, fast = weights_for(halfhours().assign(WS=3.0)), weights_for(halfhours().assign(WS=6.0))
    assert slow.peak_distance is not None and fast.peak_distance is not None
    assert fast.peak_distance.median_m == pytest.approx(2.0 * slow.peak_distance.median_m)  # x_scale is proportional to umean
    assert not any("without WS" in note for note in slow.notes)
    without_ws = weights_for(halfhours().drop(columns=["WS"]))
    assert without_ws.weights is not None and "z0 = 0.1 canopy height (no WS column)" in without_ws.notes
    # with z0 the stability enters x_max through psi_M, so the air pressure behind L from H matters
    high_site = weights_for(halfhours().drop(columns=["WS"]).assign(PA=70.0))
    assert high_site.peak_distance is not None and without_ws.peak_distance is not None
    assert high_site.peak_distance.median_m < without_ws.peak_distance.median_m  # thinner air: smaller |L|, more convective


def test_footprint_weights_treats_fluxnet_missing_values_as_missing() -> None:
    frame = halfhours().assign(MO_LENGTH=-9999.0)
    frame.loc[0, "WD"] = -9999.0
    frame.loc[1, "WS"] = np.nan  # this one uses z0 = 0.1 canopy height instead
    result = weights_for(frame)
    assert result.n_used == 5 and result.skipped_by_rule == {"wind direction missing": 1}
    assert any("z0 = 0.1 canopy height for 1 half-hours" in note for note in result.notes)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (halfhours().drop(columns=["WD"]), "no wind direction"),
        (halfhours().assign(WD=np.nan), "no wind direction"),
        (halfhours().drop(columns=["USTAR"]), "no friction velocity"),
        (halfhours().drop(columns=["H"]), "no stability"),
        (halfhours().iloc[:0], "no half-hourly records"),
        (halfhours().assign(USTAR=0.05), "no half-hour within FFP validity"),
    ],
)
def test_footprint_weights_gives_a_fallback_reason_when_inputs_are_insufficient(frame: pd.DataFrame, reason: str) -> None:
    result = weights_for(frame)
    assert result.weights is None
    assert result.fallback_reason is not None and reason in result.fallback_reason
    assert math.isnan(result.extent_80_m)


def test_footprint_weights_refuses_a_sensor_in_the_roughness_sublayer() -> None:
    result = weights_for(halfhours(), measurement_height_m=1.5, canopy_height_m=1.0)  # zm = 0.83 m <= 12.5 z0 = 1.25 m
    assert result.weights is None
    assert result.fallback_reason is not None and "roughness sublayer" in result.fallback_reason
