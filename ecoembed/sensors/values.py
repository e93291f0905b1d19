"""What the numbers in a band mean: digital numbers or reflectance, dB or linear power, and no-data.

Decided from metadata or an explicit option, never from the data's values
(one outlier above 1 must not turn a reflectance band into "DN"). For each
band, in this order:

1. **No-data** is masked first: the band's ``_FillValue`` / ``missing_value`` /
   ``nodata`` / ``NoData`` attributes, the file's global ``_FillValue`` /
   ``nodata``, the value given with the ``nodata`` option, -9999 (the universal
   undeclared fill), and, in integer digital numbers, the sensor's no-data DNs
   (S2 L2A: 0 and 65535). ``_Unsigned = "true"`` reinterprets signed storage.
2. **Declared packing** (CF ``scale_factor`` / ``add_offset``) is applied: the
   result is in the physical unit of the band.
3. **The unit** then comes from, first match wins:

   * the option (``values="reflectance" | "dn"`` for optical, ``"db" | "linear" | "gfmap"`` for SAR);
   * a CF packing (the packed values are physical: reflectance, or dB for SAR);
   * the band's ``units`` attribute (``1``/``reflectance`` vs ``DN``; ``dB`` vs ``1``/``linear``/``power``);
   * a product convention named by the file's metadata (:data:`CONVENTIONS`: openEO /
     CDSE exports deliver Sentinel-2 L2A as DN whatever the storage type; the WorldCereal
     GFMAP encoding stores S1 as uint16 with dB = 20 log10(DN) - 83; STAC catalogs serve
     S2 L2A as digital numbers and S1 backscatter as linear power);
   * the storage type: integers are digital numbers (optical) or not decodable without
     metadata (SAR: an error naming the option); floats are reflectance (optical) or dB (SAR).

Each decision is returned as a sentence that the cube records in its attributes.

4. **The data are then checked against the decision, never used to make it**
   (:func:`check_declared_values`, on a bounded sample of the band): reflectance of which
   more than :data:`MAX_CONTRADICTING_SHARE` exceeds :data:`REFLECTANCE_CEILING`, digital
   numbers all below :data:`DN_FLOOR`, linear power that is negative, or dB that is never
   negative are refused with a one-line :class:`~ecoembed.errors.CubeError` naming the file,
   the band and the option that settles it. A single outlier (a saturated or specular pixel)
   is kept as it is: nothing is ever rescaled because of the values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ecoembed.errors import CubeError
from ecoembed.sensors.spec import BandSpec, SensorSpec

UNDECLARED_FILL: tuple[float, ...] = (-9999.0,)
"""Fill values masked in every band even when no attribute declares them."""
OPTICAL_VALUES: tuple[str, ...] = ("reflectance", "dn")
SAR_VALUES: tuple[str, ...] = ("db", "linear", "gfmap")
_REFLECTANCE_UNITS = {"1", "reflectance", "surface reflectance", "unitless", "dimensionless", "fraction"}
_DN_UNITS = {"dn", "digital number", "digital numbers", "counts"}
_DB_UNITS = {"db", "decibel", "decibels"}
_LINEAR_UNITS = {"1", "linear", "power", "linear power", "m2/m2", "m2 m-2", "natural"}
REFLECTANCE_CEILING = 1.5
"""Surface reflectance above this is not a measurement (snow, glint and saturated pixels stay below it or are rare)."""
DN_FLOOR = 2.0
"""Digital numbers of a reflectance band that all stay below this are reflectance, not DN (DN 1 = 0.0001)."""
MAX_CONTRADICTING_SHARE = 0.05
"""Share of a band's sampled values that may contradict its declared unit (outliers) before it is refused."""
MIN_VALUES_CHECKED = 10
"""Fewer finite sampled values than this are not checked (nothing can be told from them)."""
SAMPLE_WINDOW_PX = 256
SAMPLE_VALUES = 2**20
"""The check reads a central window of at most this edge, on evenly spread dates (at least 8) up to about
:data:`SAMPLE_VALUES` values per band: bounded I/O whatever the scene's size."""


@dataclass(frozen=True)
class Convention:
    """A product convention recognised from file metadata.

    Attributes:
        name: what it is (recorded in the cube's attributes).
        applies: predicate on the file's global attributes.
        sensors: sensor keys it is about.
        values: the value kind it implies (``"dn"``, ``"db"`` ...), or None.
        decode: for integer SAR storage, DN -> dB.
    """

    name: str
    applies: Callable[[Mapping[str, Any]], bool]
    sensors: tuple[str, ...]
    values: str | None = None
    decode: Callable[[np.ndarray], np.ndarray] | None = None
    harmonized: bool = False


def _gfmap_db(dn: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(dn > 0, 20.0 * np.log10(np.where(dn > 0, dn, 1.0)) - 83.0, np.nan)


CONVENTIONS: tuple[Convention, ...] = (
    Convention("WorldCereal GFMAP encoding (uint16, dB = 20 log10(DN) - 83, 65535 = none)",
               lambda a: "GFMAP_version" in a, ("s1",), "gfmap", _gfmap_db),
    Convention("WorldCereal GFMAP inputs: harmonised S2 digital numbers (processing-baseline offset already removed)",
               lambda a: "GFMAP_version" in a, ("s2",), "dn", harmonized=True),
    Convention("openEO/CDSE export: Sentinel-2 L2A bands are digital numbers (x 1e-4 = reflectance)",
               lambda a: "openeo" in str(a.get("institution", "")).lower(), ("s2",), "dn"),
    Convention("STAC Sentinel-2 L2A assets: digital numbers (x 1e-4 = reflectance) whatever type odc-stac loads them as",
               lambda a: "stac_collection" in a, ("s2",), "dn"),
    Convention("STAC sigma0/gamma0 assets (sentinel-1-rtc, sentinel-1-grd): linear power, converted to dB",
               lambda a: "stac_collection" in a, ("s1",), "linear"),
)
"""Metadata rules for products that do not declare their scaling per band."""


def _attr(da: xr.DataArray, *names: str) -> Any:
    for n in names:
        for source in (da.attrs, da.encoding):
            if n in source and source[n] is not None and str(source[n]) != "":
                return source[n]
    return None


def baseline_offset_removed(file_attrs: Mapping[str, Any], option: bool | None) -> tuple[bool, str]:
    """Whether S2 digital numbers are already harmonised (the baseline-04.00 -1000 DN offset removed), and why."""
    if option is not None:
        return option, f"harmonised={option} (given as an option)"
    convention = next((c for c in CONVENTIONS if "s2" in c.sensors and c.harmonized and c.applies(file_attrs)), None)
    if convention is not None:
        return True, convention.name
    return False, "raw L2A digital numbers: the baseline-04.00 offset (-1000 DN from 2022-01-25) is removed"


def fill_values(da: xr.DataArray, file_attrs: Mapping[str, Any], option: float | None) -> list[float]:
    """Every declared or conventional fill value of a raw (undecoded) band."""
    out: list[float] = []
    for value in (_attr(da, "_FillValue", "missing_value", "nodata", "NoData", "nodatavals"),
                  file_attrs.get("_FillValue"), file_attrs.get("nodata"), option, *UNDECLARED_FILL):
        for v in np.atleast_1d(np.asarray(value if value is not None else [], dtype=float)):
            if np.isfinite(v) and float(v) not in out:
                out.append(float(v))
    return out


def decode_band(raw: xr.DataArray, band: BandSpec, spec: SensorSpec, *, file_attrs: Mapping[str, Any],
                values: str | None = None, nodata: float | None = None, source: str = "cube") -> tuple[xr.DataArray, str, str]:
    """A raw band (read with ``mask_and_scale=False``) in its physical unit, float32, NaN where no data.

    Args:
        raw: the band as stored.
        band: its spec (role reflectance / backscatter / mask).
        spec: the sensor.
        file_attrs: the file's global attributes (product conventions, global fill values).
        values: the option overriding the unit decision (see the module docstring).
        nodata: an extra fill value to mask.
        source: file name for messages.

    Returns:
        ``(band, kind, rule)``: reflectance (0-1), backscatter in dB, or the mask's class values;
        what the stored numbers were (``reflectance``, ``dn``, ``db``, ``linear``, ``gfmap``, ``mask``);
        and the sentence that says how that was decided. Time-dependent DN offsets (the S2
        processing baseline) are applied by the caller (the sensor module).

    Raises:
        CubeError: an unknown ``values`` option, SAR digital numbers without a declared decoding, or
            numbers that contradict the decided unit (:func:`check_declared_values`).
    """
    arr = raw
    if str(_attr(raw, "_Unsigned")).lower() == "true" and raw.dtype.kind == "i":
        arr = raw.astype(raw.dtype.str.replace("i", "u"))  # two's-complement wrap = reinterpreting the bits (lazy)
    integer = arr.dtype.kind in "iu"
    fills = fill_values(raw, file_attrs, nodata)
    convention = next((c for c in CONVENTIONS if spec.key in c.sensors and c.applies(file_attrs)), None)
    data = arr.astype(np.float64)
    nodata_mask = xr.zeros_like(data, dtype=bool)
    for f in fills:
        nodata_mask = nodata_mask | (data == f)
    if band.role == "mask":
        return data.where(~nodata_mask).astype(np.float32), "mask", "class values"
    scale, offset = _attr(raw, "scale_factor"), _attr(raw, "add_offset")
    packed = scale is not None or offset is not None
    if packed:
        data = data * float(scale if scale is not None else 1.0) + float(offset if offset is not None else 0.0)
    units = str(_attr(raw, "units") or "").strip().lower()
    if band.role == "reflectance":
        kind, why = _optical_kind(values, packed, units, convention, integer, source, band.name)
        if kind == "dn":
            for dn in spec.nodata_dn:
                nodata_mask = nodata_mask | (arr.astype(np.float64) == dn)
        check_declared_values(data.where(~nodata_mask), kind, why, band.name, spec, source=source)
        if kind == "dn":
            data = data * spec.dn_scale + spec.dn_offset
    else:
        kind, why = _sar_kind(values, packed, units, convention, integer, source, band.name)
        if kind in ("db", "linear"):  # gfmap is decoded by its convention below
            check_declared_values(data.where(~nodata_mask), kind, why, band.name, spec, source=source)
        if kind == "gfmap":
            for dn in (0.0, 65535.0):  # the encoding's no-data DNs
                nodata_mask = nodata_mask | (arr.astype(np.float64) == dn)
            data = xr.apply_ufunc(_gfmap_db, data, dask="parallelized", output_dtypes=[np.float64])
        elif kind == "linear":
            with np.errstate(divide="ignore", invalid="ignore"):
                data = xr.apply_ufunc(np.log10, data.where(data > 0), dask="parallelized") * 10.0
    out = data.where(~nodata_mask).astype(np.float32)
    masked = [*fills, *(spec.nodata_dn if kind == "dn" else ()), *((0.0, 65535.0) if kind == "gfmap" else ())]
    out.attrs = {"units": spec.unit, "long_name": f"{band.role} {band.name}", "values": why,
                 "masked_fill_values": ", ".join(f"{v:g}" for v in dict.fromkeys(masked))}
    return out, kind, why


def _option_hint(spec: SensorSpec, other: str) -> str:
    flag = f" (--{spec.key}-values {other})" if spec.key in ("s2", "s1") else ""
    return f"pass values='{other}'{flag}"


def _sample(da: xr.DataArray) -> np.ndarray:
    """Finite values of a bounded sample of ``da``: a few evenly spread dates of a central window (reads little)."""
    index: dict[str, Any] = {}
    pixels = 1
    for dim in ("y", "x"):
        if dim in da.dims:
            pixels *= min(da.sizes[dim], SAMPLE_WINDOW_PX)
            if da.sizes[dim] > SAMPLE_WINDOW_PX:
                start = (da.sizes[dim] - SAMPLE_WINDOW_PX) // 2
                index[dim] = slice(start, start + SAMPLE_WINDOW_PX)
    n_dates = max(8, SAMPLE_VALUES // max(pixels, 1))
    if "time" in da.dims and da.sizes["time"] > n_dates:
        index["time"] = np.unique(np.linspace(0, da.sizes["time"] - 1, n_dates).round().astype(int))
    values = np.asarray(da.isel(index).values if index else da.values, dtype=np.float64).ravel()
    return values[np.isfinite(values)]


def check_declared_values(values: xr.DataArray, kind: str, why: str, band: str, spec: SensorSpec, *,
                          source: str = "cube") -> None:
    """Refuse a band whose numbers contradict the unit decided from metadata or an option (never rescale it).

    Args:
        values: the band after no-data masking and declared packing, before any DN or dB conversion
            (digital numbers for ``kind == "dn"``, linear power for ``"linear"``, dB for ``"db"``).
        kind: the decided value kind (:func:`decode_band`).
        why: the sentence that says how it was decided (quoted in the message).
        band: canonical band name.
        spec: the sensor.
        source: file name for messages.

    Raises:
        CubeError: reflectance of which more than :data:`MAX_CONTRADICTING_SHARE` exceeds
            :data:`REFLECTANCE_CEILING`; digital numbers all below :data:`DN_FLOOR`; linear power
            more than that share negative; dB never negative.
    """
    if kind not in ("reflectance", "dn", "linear", "db"):
        return
    v = _sample(values)
    if v.size < MIN_VALUES_CHECKED:
        return
    head = f"{source}: band {band} is read as"
    if kind == "reflectance":
        share = float(np.mean(v > REFLECTANCE_CEILING))
        if share > MAX_CONTRADICTING_SHARE:
            raise CubeError(f"{head} reflectance ({why}) but {share:.0%} of the sampled values exceed "
                            f"{REFLECTANCE_CEILING:g} (max {float(v.max()):g}), as digital numbers do; "
                            f"{_option_hint(spec, 'dn')} or declare units='DN' if they are digital numbers")
    elif kind == "dn":
        if float(v.max()) < DN_FLOOR:
            raise CubeError(f"{head} digital numbers ({why}) but every sampled value is below {DN_FLOOR:g} "
                            f"(max {float(v.max()):g}), as reflectance is; {_option_hint(spec, 'reflectance')} "
                            "or declare units='1' if it is reflectance")
    elif kind == "linear":
        share = float(np.mean(v < 0))
        if share > MAX_CONTRADICTING_SHARE:
            raise CubeError(f"{head} linear power ({why}) but {share:.0%} of the sampled values are negative, as dB "
                            f"are; {_option_hint(spec, 'db')} or declare units='dB' if they are decibels")
    elif float(v.min()) >= 0.0:
        raise CubeError(f"{head} dB ({why}) but no sampled value is negative (min {float(v.min()):g}), as in linear "
                        f"power; {_option_hint(spec, 'linear')} or declare units='1' if it is linear power")


def _optical_kind(values: str | None, packed: bool, units: str, convention: Convention | None, integer: bool,
                  source: str, name: str) -> tuple[str, str]:
    if values is not None:
        if values.lower() not in OPTICAL_VALUES:
            raise CubeError(f"{source}: values={values!r} for optical bands; use one of {', '.join(OPTICAL_VALUES)}")
        return values.lower(), f"{values.lower()} (given as an option)"
    if packed:
        return "reflectance", "reflectance (CF scale_factor/add_offset declared)"
    if units in _REFLECTANCE_UNITS:
        return "reflectance", f"reflectance (units {units!r})"
    if units in _DN_UNITS:
        return "dn", f"digital numbers (units {units!r})"
    if convention is not None and convention.values in OPTICAL_VALUES:
        return str(convention.values), convention.name
    if integer:
        return "dn", "digital numbers (integer storage, no scale_factor or units)"
    return "reflectance", ("reflectance (float storage without units or scale_factor; pass values='dn' "
                           "(--s2-values dn) if the file holds digital numbers)")


def _sar_kind(values: str | None, packed: bool, units: str, convention: Convention | None, integer: bool,
              source: str, name: str) -> tuple[str, str]:
    if values is not None:
        if values.lower() not in SAR_VALUES:
            raise CubeError(f"{source}: values={values!r} for SAR bands; use one of {', '.join(SAR_VALUES)}")
        return values.lower(), f"{values.lower()} (given as an option)"
    if units in _DB_UNITS:
        return "db", f"dB (units {units!r})"
    if units in _LINEAR_UNITS:
        return "linear", f"linear power (units {units!r}), converted to dB"
    if convention is not None and convention.decode is not None and integer and not packed:
        return "gfmap", convention.name
    if convention is not None and convention.decode is None and convention.values in SAR_VALUES:
        return str(convention.values), convention.name
    if integer and not packed:
        raise CubeError(f"{source}: backscatter band {name} is stored as integers without a scale_factor, units or a "
                        "known product convention; re-export it in dB or linear power, or declare its units")
    return "db", ("dB (no units declared; the Earth Engine / WorldCereal convention); pass values='linear' "
                  "(--s1-values linear) for linear power")
