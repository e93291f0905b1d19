"""CF-1.8 georeferencing of cubes, so GDAL, QGIS and rioxarray find their CRS and pixel grid.

A cube of the package carries its CRS as ``attrs['crs']`` (``"EPSG:<code>"``)
and pixel-centre ``x``/``y`` coordinates. :func:`georeference` adds what
the CF conventions (1.8) and GDAL look for on top of that:

* a scalar grid-mapping coordinate ``spatial_ref`` (int32 0) whose attributes
  are pyproj's CF description of the CRS plus ``crs_wkt`` and ``spatial_ref``
  (the same WKT; GDAL and rioxarray read either) and ``GeoTransform`` (GDAL's
  ``"x0 dx 0 y0 0 dy"`` of the pixel edges, north-up);
* ``grid_mapping = "spatial_ref"`` in the ``attrs`` of every data variable
  with ``y`` and ``x`` dims (and *not* in its ``encoding``: xarray refuses to
  write a key that is in both; one read back with ``decode_coords="all"``,
  which moves it to ``encoding``, is moved back);
* CF attributes of the ``x``/``y`` coordinates (``standard_name``,
  ``long_name``, ``units``, ``axis``) and ``Conventions = "CF-1.8"``.

GDAL reads a variable as a raster only when ``y`` and ``x`` are its *last*
two dims; the leading dims become bands.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from pyproj import CRS
from pyproj.exceptions import CRSError

from ecoembed.errors import CubeError
from ecoembed.sources.grid import crs_string

GRID_MAPPING = "spatial_ref"
"""Name of the scalar grid-mapping coordinate written by :func:`georeference`."""
CONVENTIONS = "CF-1.8"
"""``Conventions`` attribute of a georeferenced dataset."""
_REL_TOLERANCE = 1e-3
"""Largest deviation of a pixel step from the grid's step, as a fraction of the step (1 cm at 10 m)."""


def _crs(ds: xr.Dataset, crs: str | None) -> CRS:
    text = crs or ds.attrs.get("crs")
    if not text and GRID_MAPPING in ds.variables:
        text = ds[GRID_MAPPING].attrs.get("crs_wkt") or ds[GRID_MAPPING].attrs.get("spatial_ref")
    if not text or not str(text).strip():
        raise CubeError("the cube has no CRS: set attrs['crs'] (e.g. 'EPSG:32632') or pass crs= to georeference it")
    try:
        return CRS.from_user_input(str(text).strip())
    except CRSError as exc:
        raise CubeError(f"cannot read the CRS {str(text)[:80]!r} of the cube: {exc}") from exc


def _step(ds: xr.Dataset, dim: str) -> tuple[np.ndarray, float]:
    """The centre coordinates of ``dim`` and their (signed) regular step."""
    if dim not in ds.coords:
        raise CubeError(f"the cube has no '{dim}' coordinate (pixel centres); it cannot be georeferenced")
    c = np.asarray(ds[dim].values, dtype=np.float64)
    if c.ndim != 1 or c.size == 0:
        raise CubeError(f"the cube's '{dim}' coordinate is not a non-empty 1-D axis; it cannot be georeferenced")
    if c.size == 1:
        res = ds.attrs.get("resolution_m")
        if res is None or not np.isfinite(float(res)) or float(res) <= 0:
            raise CubeError(f"the cube has a single '{dim}' pixel and no attrs['resolution_m']: its pixel size is unknown")
        return c, float(res) if dim == "x" else -float(res)
    diffs = np.diff(c)
    step = float(np.median(diffs))
    if not np.all(np.isfinite(c)) or step == 0 or not np.allclose(diffs, step, rtol=0, atol=_REL_TOLERANCE * abs(step)):
        raise CubeError(f"the cube's '{dim}' pixel centres are not a regular grid (steps {float(diffs.min()):g}.."
                        f"{float(diffs.max()):g}); it cannot be georeferenced")
    return c, step


def transform_of(ds: xr.Dataset) -> tuple[float, float, float, float, float, float]:
    """The north-up affine transform of a cube's pixel grid, in rasterio/affine order.

    Computed from the ``x``/``y`` pixel-centre coordinates (regular grid); a
    single pixel along an axis takes its size from ``attrs['resolution_m']``.
    An increasing ``y`` axis is reported north-up, as GDAL presents it.

    Args:
        ds: dataset with 1-D ``x`` and ``y`` pixel-centre coordinates.

    Returns:
        ``(a, b, c, d, e, f) = (dx, 0, x_left_edge, 0, dy, y_top_edge)`` with
        ``dx > 0`` and ``dy < 0`` (``rasterio.Affine(a, b, c, d, e, f)``).

    Raises:
        CubeError: no ``x``/``y`` coordinate, or an irregular grid.
    """
    x, dx = _step(ds, "x")
    y, dy = _step(ds, "y")
    dx, dy = abs(dx), abs(dy)
    left = float(x.min()) - dx / 2
    top = float(y.max()) + dy / 2
    return (dx, 0.0, left, 0.0, -dy, top)


def _axis_attrs(crs: CRS) -> dict[str, dict[str, str]]:
    if crs.is_geographic:
        return {"x": {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"},
                "y": {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"}}
    return {"x": {"standard_name": "projection_x_coordinate", "long_name": "x coordinate of projection (pixel centre)",
                  "units": "m", "axis": "X"},
            "y": {"standard_name": "projection_y_coordinate", "long_name": "y coordinate of projection (pixel centre)",
                  "units": "m", "axis": "Y"}}


def grid_mapping_attrs(crs: CRS, transform: tuple[float, float, float, float, float, float]) -> dict[str, Any]:
    """The attributes of the ``spatial_ref`` grid-mapping variable for ``crs`` and a rasterio-order ``transform``.

    Args:
        crs: the cube's CRS.
        transform: ``(a, b, c, d, e, f)`` as returned by :func:`transform_of`.

    Returns:
        pyproj's CF attributes plus ``crs_wkt``, ``spatial_ref`` (WKT) and ``GeoTransform`` (GDAL order, ``"c a b f d e"``).
    """
    a, b, c, d, e, f = transform
    attrs: dict[str, Any] = dict(crs.to_cf())
    wkt = crs.to_wkt()
    attrs["crs_wkt"] = wkt
    attrs["spatial_ref"] = wkt
    attrs["GeoTransform"] = " ".join(repr(float(v)) for v in (c, a, b, f, d, e))
    return attrs


def georeference(ds: xr.Dataset, crs: str | None = None) -> xr.Dataset:
    """A copy of ``ds`` georeferenced after CF-1.8, readable by GDAL, QGIS and rioxarray.

    Adds the scalar ``spatial_ref`` coordinate (CRS and ``GeoTransform``),
    ``grid_mapping`` in the attrs of every data variable with ``y`` and ``x``
    dims (removed from its encoding, where it would clash on writing), CF attributes of ``x``/``y`` and ``Conventions``; other
    attributes are kept, and ``attrs['crs']`` is set when it was missing.
    Idempotent: georeferencing a georeferenced dataset changes nothing.

    Args:
        ds: dataset with 1-D pixel-centre ``x``/``y`` coordinates on a regular grid.
        crs: the CRS (anything pyproj reads, e.g. ``"EPSG:32632"``); default ``ds.attrs['crs']``.

    Returns:
        The georeferenced copy (data arrays are shared, not copied).

    Raises:
        CubeError: no (readable) CRS, no ``x``/``y`` coordinates, or an irregular grid.
    """
    the_crs = _crs(ds, crs)
    transform = transform_of(ds)
    out = ds.copy()
    axis = _axis_attrs(the_crs)
    out = out.assign_coords({
        "x": out["x"].variable.copy(deep=False),
        "y": out["y"].variable.copy(deep=False),
        GRID_MAPPING: xr.Variable((), np.int32(0), attrs=grid_mapping_attrs(the_crs, transform)),
    })
    for dim in ("x", "y"):
        out[dim].attrs.update(axis[dim])
    for name in out.data_vars:
        var = out[name]
        if "y" in var.dims and "x" in var.dims:
            var.attrs["grid_mapping"] = GRID_MAPPING
            var.encoding.pop("grid_mapping", None)  # xarray refuses to write a key that is in both attrs and encoding
    if not out.attrs.get("crs"):
        out.attrs["crs"] = crs_string(the_crs)
    out.attrs["Conventions"] = CONVENTIONS
    return out
