"""Pixel grids of cubes: the CRS a file declares, its resolution, whether two grids nest, and resampling.

A grid is the cube's pixel-centre ``x``/``y`` coordinates (metres, projected
CRS). Two grids *nest* when they share the CRS, the coarse pixel size is an
integer multiple of the fine one, and the coarse pixel edges fall on fine
pixel edges: then a coarse band can be put on the fine grid without shifting
anything (bilinear for reflectance and for backscatter in linear power,
nearest for class masks). Grids that do not nest are refused, naming both.

:func:`require_metric_grid` is the check of every cube whose pixels are counted in
metres (the tower window, chips), embedding cubes included: a declared, projected CRS
in metres that agrees with its grid mapping, regular square pixels, and a spacing that
agrees with the cube's ``resolution_m`` attribute when it has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from pyproj import CRS
from pyproj.exceptions import CRSError

from ecoembed.errors import CubeError

TARGET_RESOLUTION_M = 10.0
"""Pixel size of every cube the package works on (the Sentinel-2 10 m grid)."""
_TOLERANCE_M = 0.01


def crs_of(ds: xr.Dataset) -> CRS | None:
    """The CRS a dataset declares, or None when it declares none.

    Looked for in a ``grid_mapping`` / ``spatial_ref`` / ``crs`` variable (``crs_wkt``,
    ``spatial_ref``, ``epsg_code``), then ``attrs['crs']`` and ``attrs['epsg']``.

    Raises:
        CubeError: a declared CRS that pyproj cannot read.
    """
    candidates: list[Any] = []
    names = [str(ds[v].attrs["grid_mapping"]) for v in ds.variables if "grid_mapping" in ds[v].attrs]
    if "grid_mapping" in ds.attrs:
        names.append(str(ds.attrs["grid_mapping"]))
    names += [c for c in ("spatial_ref", "crs") if c in ds.variables]
    for name in dict.fromkeys(names):
        if name in ds.variables:
            attrs = ds[name].attrs
            candidates += [attrs.get("crs_wkt"), attrs.get("spatial_ref"), attrs.get("epsg_code")]
    candidates += [ds.attrs.get("crs"), ds.attrs.get("epsg")]
    for value in candidates:
        if value is None or str(value).strip() == "":
            continue
        text = str(value).strip()
        if text.startswith("+init="):
            text = text[len("+init="):]
        if text.isdigit():
            text = f"EPSG:{text}"
        try:
            return CRS.from_user_input(text)
        except CRSError as exc:
            raise CubeError(f"cannot read the CRS {text[:80]!r} ({exc}); declare it as 'EPSG:<code>' or CF crs_wkt") from exc
    return None


def _grid_mapping_crs(ds: xr.Dataset) -> CRS | None:
    """The CRS of the dataset's CF grid-mapping variable (``crs_wkt`` / ``spatial_ref``), or None."""
    names = [str(ds[v].attrs["grid_mapping"]) for v in ds.variables if "grid_mapping" in ds[v].attrs]
    names += [c for c in ("spatial_ref", "crs") if c in ds.variables]
    for name in dict.fromkeys(names):
        if name in ds.variables:
            text = ds[name].attrs.get("crs_wkt") or ds[name].attrs.get("spatial_ref")
            if text:
                try:
                    return CRS.from_user_input(str(text))
                except CRSError:
                    return None
    return None


def require_metric_grid(ds: xr.Dataset, *, source: str) -> CRS:
    """The cube's projected CRS, after checking that its pixels are what a window in metres assumes.

    Args:
        ds: a sensor or embedding cube with ``x``/``y`` pixel-centre coordinates.
        source: the file (named in messages).

    Returns:
        The CRS (``attrs['crs']``, else the grid mapping).

    Raises:
        CubeError: no CRS; ``attrs['crs']`` contradicting the grid mapping; a geographic CRS (degrees)
            or a projected one not in metres; irregular or non-square pixels; an x/y spacing that
            contradicts ``attrs['resolution_m']``.
    """
    try:
        crs = crs_of(ds)
    except CubeError as exc:
        raise CubeError(f"{source}: {exc}") from None
    if crs is None:
        raise CubeError(f"{source} has no CRS (no attrs['crs'] and no grid_mapping/spatial_ref variable); the tower window "
                        "is counted in pixels of metres: use the projected (UTM) cube, or declare its CRS")
    stated, mapped = ds.attrs.get("crs"), _grid_mapping_crs(ds)
    if stated and mapped is not None:
        try:
            agree = CRS.from_user_input(str(stated)).equals(mapped)
        except CRSError:
            agree = False
        if not agree:
            raise CubeError(f"{source} states crs {stated} but its grid mapping is {crs_string(mapped)}; fix the cube's "
                            "metadata (or rewrite it with the projected grid)")
    if not crs.is_projected:
        raise CubeError(f"{source} is in a geographic CRS ({crs_string(crs)}, degrees): a window of pixels would span "
                        "kilometres; reproject it to its UTM zone at 10 m, or use the projected cube that `ecoembed embed` wrote")
    units = {str(a.unit_name).lower() for a in crs.axis_info}
    if not units <= {"metre", "meter", "m"}:
        raise CubeError(f"{source} is in {crs_string(crs)}, whose axes are in {', '.join(sorted(units))}, not metres; "
                        "reproject it to its UTM zone at 10 m")
    steps: dict[str, float] = {}
    for dim in ("x", "y"):
        if dim not in ds.coords:
            raise CubeError(f"{source} has no {dim} coordinate (pixel centres in metres); it cannot be windowed")
        c = np.asarray(ds[dim].values, dtype=np.float64)
        if c.size < 2:
            continue
        d = np.abs(np.diff(c))
        step = float(np.median(d))
        if not np.all(np.isfinite(d)) or step == 0 or not np.allclose(d, step, rtol=0, atol=1e-3 * step):
            raise CubeError(f"{source}: irregular {dim} pixel spacing ({float(np.nanmin(d)):g}..{float(np.nanmax(d)):g} m); "
                            "resample it onto a regular grid")
        steps[dim] = step
    if len(steps) == 2 and abs(steps["x"] - steps["y"]) > 1e-3 * max(steps.values()):
        raise CubeError(f"{source}: pixels are {steps['x']:g} m x {steps['y']:g} m (x by y), not square; resample it "
                        "onto a square grid (10 m)")
    declared = ds.attrs.get("resolution_m")
    if declared is not None and steps:
        try:
            res = float(declared)
        except (TypeError, ValueError):
            raise CubeError(f"{source}: resolution_m {declared!r} is not a number of metres; fix the attribute") from None
        for dim, step in steps.items():
            if not np.isfinite(res) or abs(step - res) > 1e-3 * abs(res):
                raise CubeError(f"{source}: {dim} spacing {step:g} m contradicts its resolution_m attribute ({res:g} m): "
                                "fix the attribute or resample the cube (the window is counted in pixels)")
    return crs


def crs_string(crs: CRS) -> str:
    """``"EPSG:<code>"`` when the CRS has one, else its WKT."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


@dataclass(frozen=True)
class Grid:
    """A regular pixel grid: pixel-centre coordinates (m) and the CRS.

    Attributes:
        x, y: pixel centres (``y`` usually decreasing).
        crs: the projected CRS.
        resolution_m: pixel size (m).
    """

    x: np.ndarray
    y: np.ndarray
    crs: str
    resolution_m: float

    def same_as(self, other: Grid) -> bool:
        """Same CRS and the same pixel centres (to 1 cm)."""
        return (self.crs == other.crs and self.x.shape == other.x.shape and self.y.shape == other.y.shape
                and bool(np.allclose(self.x, other.x, rtol=0, atol=_TOLERANCE_M))
                and bool(np.allclose(self.y, other.y, rtol=0, atol=_TOLERANCE_M)))

    def describe(self) -> str:
        """One line: size, pixel size, CRS, extent."""
        h = self.resolution_m / 2
        return (f"{len(self.y)}x{len(self.x)} px of {self.resolution_m:g} m in {self.crs}, x {self.x.min() - h:.1f}.."
                f"{self.x.max() + h:.1f}, y {self.y.min() - h:.1f}..{self.y.max() + h:.1f}")


def grid_of(ds: xr.Dataset, *, source: str) -> Grid:
    """The grid of a dataset with ``x``/``y`` coordinates and attrs ``crs``.

    Raises:
        CubeError: geographic (degree) coordinates, no CRS, irregular or non-square pixels.
    """
    crs_text = ds.attrs.get("crs")
    if not crs_text:
        raise CubeError(f"{source} has no CRS: set attrs['crs'] (e.g. 'EPSG:32630') or a grid_mapping/spatial_ref variable")
    crs = CRS.from_user_input(str(crs_text))
    if crs.is_geographic:
        raise CubeError(f"{source} is on a geographic grid ({crs_string(crs)}, degrees); the package needs metres: "
                        "reproject it to a projected CRS (its UTM zone) at 10 m first")
    x, y = np.asarray(ds["x"].values, np.float64), np.asarray(ds["y"].values, np.float64)
    steps = [np.abs(np.diff(c)) for c in (x, y) if len(c) > 1]
    if not steps:
        return Grid(x, y, crs_string(crs), float(ds.attrs.get("resolution_m", TARGET_RESOLUTION_M)))
    res = float(np.median(np.concatenate(steps)))
    for d in steps:
        if not np.allclose(d, res, rtol=0, atol=_TOLERANCE_M):
            raise CubeError(f"{source}: irregular pixel spacing ({float(d.min()):g}..{float(d.max()):g} m); give a regular grid")
    return Grid(x, y, crs_string(crs), res)


def nests(coarse: Grid, fine: Grid) -> bool:
    """True when ``coarse`` pixels are whole blocks of ``fine`` pixels (same CRS, integer ratio, aligned edges)."""
    if coarse.crs != fine.crs:
        return False
    ratio = coarse.resolution_m / fine.resolution_m
    if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
        return False
    for c, f in ((coarse.x, fine.x), (coarse.y, fine.y)):
        edge_c, edge_f = c.min() - coarse.resolution_m / 2, f.min() - fine.resolution_m / 2
        shift = (edge_c - edge_f) / fine.resolution_m
        if abs(shift - round(shift)) > _TOLERANCE_M / fine.resolution_m:
            return False
    return True


def subdivide(grid: Grid, resolution_m: float = TARGET_RESOLUTION_M) -> Grid:
    """The ``resolution_m`` grid covering ``grid``'s pixels exactly (each coarse pixel split into k x k)."""
    k = round(grid.resolution_m / resolution_m)
    if k <= 1:
        return grid
    offsets = (np.arange(k) + 0.5) * resolution_m - grid.resolution_m / 2
    sx = 1.0 if len(grid.x) < 2 or grid.x[1] > grid.x[0] else -1.0
    sy = 1.0 if len(grid.y) < 2 or grid.y[1] > grid.y[0] else -1.0
    x = (grid.x[:, None] + sx * offsets[None, :]).ravel()
    y = (grid.y[:, None] + sy * offsets[None, :]).ravel()
    return Grid(x, y, grid.crs, resolution_m)


def require_nesting(coarse: Grid, fine: Grid, *, what: str, reference: str) -> None:
    """Raise unless ``coarse`` nests in ``fine``.

    Raises:
        CubeError: naming both grids.
    """
    if not nests(coarse, fine):
        raise CubeError(f"{what} ({coarse.describe()}) does not nest in the grid of {reference} ({fine.describe()}): "
                        "same CRS, a pixel size that is a whole multiple, and aligned pixel edges are needed; "
                        "resample it onto that grid first")


def resample_to(da: xr.DataArray, grid: Grid, method: str) -> xr.DataArray:
    """Put a band of a nesting coarser (or equal) grid onto ``grid``.

    ``nearest`` copies each coarse pixel into the fine pixels it covers (masks);
    ``linear`` interpolates bilinearly between coarse pixel centres, the
    half-pixel rim outside them taking the nearest value (reflectance; backscatter
    in linear power, converted by the caller).
    """
    near = da.sel(x=grid.x, y=grid.y, method="nearest").assign_coords(x=grid.x, y=grid.y)
    if method == "nearest" or (len(da["x"]) < 2 and len(da["y"]) < 2):
        out = near
    else:
        out = da.interp(x=grid.x, y=grid.y, method="linear").fillna(near)
    # target pixels outside the source's extent have no data (never the edge value carried over)
    sx, sy = np.asarray(da["x"].values, float), np.asarray(da["y"].values, float)
    step_x = abs(sx[1] - sx[0]) if len(sx) > 1 else grid.resolution_m
    step_y = abs(sy[1] - sy[0]) if len(sy) > 1 else grid.resolution_m
    inside_x = xr.DataArray((grid.x >= sx.min() - step_x / 2) & (grid.x <= sx.max() + step_x / 2), dims="x")
    inside_y = xr.DataArray((grid.y >= sy.min() - step_y / 2) & (grid.y <= sy.max() + step_y / 2), dims="y")
    if not (bool(inside_x.all()) and bool(inside_y.all())):
        out = out.where(inside_x & inside_y)
    out.attrs = dict(da.attrs)
    return out


def grid_coords(grid: Grid, attrs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``x``/``y`` coordinates of ``grid`` with CF attributes."""
    return {"x": ("x", grid.x, {"standard_name": "projection_x_coordinate", "units": "m", **(attrs or {})}),
            "y": ("y", grid.y, {"standard_name": "projection_y_coordinate", "units": "m", **(attrs or {})})}
