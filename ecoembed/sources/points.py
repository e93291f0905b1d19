"""Point series: per-date tables of band values or indices at a site, as point extractions export them.

Earth Engine, openEO and WorldCereal point extractions write one row per
acquisition (or composite period) and one column per band, for one site or
for many samples (a ``sample_id``-like column). :func:`read_point_table`
turns such a CSV or Parquet table into sensor cubes with a 1 x 1 grid at each
site's position projected to its UTM zone, so every room downstream treats a
tower series and an image patch alike (ARCHITECTURE.md).

* **dates**: a column named ``date``, ``t``, ``time``, ``timestamp``, ``datetime``,
  ``system:time_start`` (milliseconds since 1970, Earth Engine) or ``start_date``;
* **bands** in any alias of the sensor registry (``B4``, ``B04``, ``S2-L2A-B04``,
  ``SR_B4``, ``VV``, ``S1-SIGMA0-VV`` ...); values decided as for cubes
  (:mod:`ecoembed.sensors.values`): integer storage is DN, float storage is
  reflectance, unless the ``values`` option or a sidecar says otherwise;
* **indices**: columns named after a known index (``NDVI``, ``EVI``, ``EVI2``, ``NIRv``,
  ``kNDVI``, ``PPI``, ``LAI``, ``fAPAR``, optionally with ``_mean``) are kept as index
  variables (upper case, ``_mean`` dropped);
* **no data**: empty and non-finite cells (``inf``), the ``nodata`` option, a fill value
  named in a sidecar ``<table>.json`` (``{"nodata": -32768, "values": "reflectance",
  "sensor": "s2"}``), -9999 (the undeclared fill of every extraction tool), and the
  sensor's no-data DNs in integer bands: the shared rule of
  :func:`ecoembed.sensors.values.fill_values`, in band and index columns alike. A value
  that can only be a fill (below -1000 in a reflectance or index column) that nothing
  declares is refused with the remedy, never silently used;
* **validity**: every present band finite (the table is taken as cloud-screened, as
  extractions are, unless it has an SCL column); ``attrs['validity']`` says so.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import CRS, Transformer

from ecoembed.errors import CubeError, InputError
from ecoembed.sensors import sentinel2
from ecoembed.sensors.registry import detect_sensor, get_sensor, rename_map
from ecoembed.sensors.values import UNDECLARED_FILL, baseline_offset_removed, decode_band

DATE_COLUMNS: tuple[str, ...] = ("date", "t", "time", "timestamp", "datetime", "system:time_start", "start_date")
"""Names of the date column, tried in order (case-insensitive)."""
ID_COLUMNS: tuple[str, ...] = ("sample_id", "site_id", "location_id", "point_id", "id")
"""Names of a column that separates several sites/samples in one table."""
INDEX_NAMES: tuple[str, ...] = ("NDVI", "EVI", "EVI2", "NIRV", "KNDVI", "PPI", "LAI", "FAPAR", "NDWI", "NDMI")
"""Index columns kept as index variables (matched case-insensitively, optional ``_mean`` suffix)."""
POINT_TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".csv.zip", ".parquet", ".pq", ".feather")
"""File endings read as point tables (anything else is a cube: ``.nc``, ``.zarr``)."""
IMPLAUSIBLE_BELOW = -1000.0
"""A reflectance or index value below this can only be an undeclared fill value (when it is a whole number)."""
INDEX_VALID_RANGES: dict[str, tuple[float, float]] = {
    "NDVI": (-1.0, 1.0), "EVI2": (-1.0, 2.5), "NIRV": (-1.0, 1.0), "KNDVI": (-1.0, 1.0), "NDWI": (-1.0, 1.0),
    "NDMI": (-1.0, 1.0), "FAPAR": (0.0, 1.0), "EVI": (-3.0, 3.0), "PPI": (0.0, 5.0), "LAI": (0.0, 15.0),
}
"""Physical range of each index (its definition; HR-VPP PPI 0-5, LAI 0-15 m2 m-2): values outside are masked
and counted in the cube's ``masked_out_of_range`` attribute (e.g. a tower mean that averaged in pixels' fill
values: PPI -4467.81). A whole number below :data:`IMPLAUSIBLE_BELOW` is a fill value and must be declared."""


def is_point_table(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a point table by its ending (:data:`POINT_TABLE_SUFFIXES`)."""
    name = Path(path).name.lower()
    return any(name.endswith(suffix) for suffix in POINT_TABLE_SUFFIXES)


def _sidecar(path: Path) -> dict[str, Any]:
    side = path.with_suffix(".json")
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{side}: unreadable sidecar of {path.name} ({exc}); fix or remove it") from exc
    if not isinstance(data, dict):
        raise InputError(f"{side}: the sidecar must be a JSON object (e.g. {{\"nodata\": -32768}})")
    return data


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"point table {path} does not exist or is not a regular file")
    suffix = "".join(path.suffixes[-2:]).lower()
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if path.suffix.lower() == ".feather":
            return pd.read_feather(path)
        return pd.read_csv(path, compression="infer", low_memory=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read point table {path} ({type(exc).__name__}: {str(exc)[:160]}); "
                         f"give a CSV or Parquet table (suffix {suffix or 'none'})") from exc


def _dates(table: pd.DataFrame, source: str) -> pd.Series:
    lower = {c.lower(): c for c in table.columns}
    name = next((lower[c] for c in DATE_COLUMNS if c in lower), None)
    if name is None:
        raise InputError(f"{source}: no date column; name it one of {', '.join(DATE_COLUMNS)} (found {list(table.columns)[:12]})")
    col = table[name]
    try:
        if name.lower() == "system:time_start":
            return pd.to_datetime(col, unit="ms")
        return pd.to_datetime(col)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{source}: column {name!r} does not hold dates ({exc}); use ISO dates (YYYY-MM-DD)") from exc


def _index_name(column: str) -> str | None:
    key = re.sub(r"_MEAN$", "", str(column).strip().upper())
    return key if key in INDEX_NAMES else None


def utm_crs(lat: float, lon: float) -> CRS:
    """The WGS84 UTM zone of a position (EPSG 326xx north, 327xx south)."""
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def read_point_table(path: str | os.PathLike[str], *, sensor: str | None = None, lat: float | None = None,
                     lon: float | None = None, values: str | None = None, nodata: float | None = None,
                     harmonized: bool | None = None, site_id: str | None = None) -> dict[str, xr.Dataset]:
    """Sensor cubes (1 x 1 px at each site) of a per-date point table.

    Args:
        path: CSV (optionally compressed) or Parquet table.
        sensor: the sensor of the band columns (default from the columns; indices-only tables
            are Sentinel-2).
        lat, lon: the site's position (WGS84 degrees) when the table has no ``lat``/``lon`` columns.
        values: what the band numbers are (``reflectance``/``dn``; ``db``/``linear``/``gfmap``), when
            neither the table's storage type nor a sidecar says.
        nodata: a fill value to mask.
        harmonized: integer S2 DN already without the processing-baseline offset (WorldCereal extractions).
        site_id: the id of a single-site table (default the file name's first token).

    Returns:
        site/sample id -> cube (``time``, ``y``, ``x`` of size 1; bands and index variables; ``valid``).

    Raises:
        InputError: unreadable table, no dates, no position, an undeclared fill value.
        CubeError: neither band nor index columns.
    """
    p = Path(path)
    source = str(p)
    side = _sidecar(p)
    values = values or side.get("values")
    harmonized = harmonized if harmonized is not None else side.get("harmonized")
    nodata = nodata if nodata is not None else side.get("nodata")
    table = _read_table(p)
    dates = _dates(table, source)
    lower = {c.lower(): c for c in table.columns}
    spec = get_sensor(sensor or side.get("sensor") or "") if (sensor or side.get("sensor")) else detect_sensor(table.columns)
    bands = rename_map(spec, table.columns) if spec is not None else {}
    indices = {c: n for c in table.columns if (n := _index_name(c)) is not None and c not in bands}
    if not bands and not indices:
        raise CubeError(f"{source}: no band or index column among {list(table.columns)[:16]}; band names such as "
                        f"{', '.join(get_sensor('s2').accepted_names()[:5])} or indices {', '.join(INDEX_NAMES[:4])} are accepted")
    spec = spec or get_sensor("s2")
    id_col = next((lower[c] for c in ID_COLUMNS if c in lower), None)
    ids = table[id_col].astype(str) if id_col else pd.Series(site_id or p.name.split("_")[0], index=table.index)
    lat_col, lon_col = lower.get("lat") or lower.get("latitude"), lower.get("lon") or lower.get("longitude")
    out: dict[str, xr.Dataset] = {}
    for sid, rows in table.groupby(ids, sort=False):
        rows = rows.assign(_date=dates.loc[rows.index]).sort_values("_date")
        rows = rows[~rows["_date"].duplicated(keep="first")]
        la = float(rows[lat_col].iloc[0]) if lat_col else lat
        lo = float(rows[lon_col].iloc[0]) if lon_col else lon
        if la is None or lo is None or not (np.isfinite(la) and np.isfinite(lo)):
            raise InputError(f"{source}: site {sid}: no position (no lat/lon columns); give its lat/lon (sites.csv)")
        out[str(sid)] = _site_cube(rows, str(sid), la, lo, spec, bands, indices, values=values, nodata=nodata,
                                   harmonized=harmonized, source=source)
    return out


def _site_cube(rows: pd.DataFrame, sid: str, lat: float, lon: float, spec: Any, bands: Mapping[str, str],
               indices: Mapping[str, str], *, values: str | None, nodata: float | None, harmonized: bool | None,
               source: str) -> xr.Dataset:
    crs = utm_crs(lat, lon)
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    x, y = float(np.floor(x / 10.0) * 10.0 + 5.0), float(np.floor(y / 10.0) * 10.0 + 5.0)  # the 10 m pixel holding the site
    times = rows["_date"].to_numpy().astype("datetime64[ns]")
    ds = xr.Dataset(coords={"time": times, "y": [y], "x": [x]})
    rules: dict[str, str] = {}
    for column, canonical in bands.items():
        raw = xr.DataArray(rows[column].to_numpy()[:, None, None], dims=("time", "y", "x"), coords=ds.coords)
        raw = raw.where(np.isfinite(raw.astype(float))) if raw.dtype.kind == "f" else raw
        _check_undeclared_fill(raw, column, nodata, source, sid)
        band = spec.band(canonical)
        da, kind, rule = decode_band(raw, band, spec, file_attrs={}, values=values, nodata=nodata, source=f"{source} ({sid})")
        if spec.key == "s2" and kind == "dn":
            removed, why = baseline_offset_removed({}, harmonized)
            if not removed:
                da = sentinel2.remove_baseline_offset(da)
            rule = f"{rule}; {why}"
        ds[canonical] = da.where(np.isfinite(da)).astype(np.float32)
        rules.setdefault(band.role, rule)
    masked: dict[str, int] = {}
    for column, name in indices.items():
        vals = pd.to_numeric(rows[column], errors="coerce").to_numpy(np.float64)
        vals = np.where(np.isfinite(vals) & ~np.isin(vals, _fills(nodata)), vals, np.nan)
        bad = vals[np.isfinite(vals) & (vals < IMPLAUSIBLE_BELOW) & (vals == np.round(vals))]
        if bad.size:
            raise InputError(f"{source}: site {sid}: column {column} holds {bad[0]:g}, which can only be an undeclared fill "
                             f"value; declare it with --nodata {bad[0]:g} (or \"nodata\" in {Path(source).with_suffix('.json').name})")
        lo, hi = INDEX_VALID_RANGES.get(name, (-np.inf, np.inf))
        outside = np.isfinite(vals) & ((vals < lo) | (vals > hi))
        if outside.any():
            masked[name] = int(outside.sum())
            vals = np.where(outside, np.nan, vals)
        ds[name] = (("time", "y", "x"), vals[:, None, None].astype(np.float32), {"units": "1", "long_name": f"index {name}"})
    present = [b for b in spec.band_names if b in ds]
    valid = xr.ones_like(ds[present[0]] if present else ds[next(iter(ds.data_vars))], dtype=bool)
    for b in present:
        valid = valid & ds[b].notnull()
    if not present:
        valid = valid & np.isfinite(ds[next(iter(ds.data_vars))])
    ds["valid"] = valid
    ds.attrs = {
        "crs": f"EPSG:{crs.to_epsg()}", "sensor": spec.name, "synthetic": False, "resolution_m": 10.0,
        "bands": ",".join(present), "indices": ",".join(sorted(set(indices.values()))),
        "values": "; ".join(f"{k}: {v}" for k, v in rules.items()),
        "validity": "every present band finite (a point table is taken as cloud-screened)",
        "site_id": sid, "site_lat": lat, "site_lon": lon, "source": source,
        "masked_out_of_range": ", ".join(f"{k}: {v}" for k, v in masked.items()) or "none",
        "masked_fill_values": ", ".join(f"{v:g}" for v in _fills(nodata)),
    }
    ds.encoding["source"] = f"{source} ({sid})"
    return ds


def _fills(nodata: float | None) -> list[float]:
    """The fill values of a table's columns: the declared one (option or sidecar) and the undeclared -9999."""
    return [*([float(nodata)] if nodata is not None else []), *UNDECLARED_FILL]


def _check_undeclared_fill(raw: xr.DataArray, column: str, nodata: float | None, source: str, sid: str) -> None:
    vals = np.asarray(raw.values, dtype=np.float64).ravel()
    vals = vals[np.isfinite(vals) & ~np.isin(vals, _fills(nodata))]
    bad = vals[vals < IMPLAUSIBLE_BELOW]
    if bad.size:
        raise InputError(f"{source}: site {sid}: column {column} holds {bad[0]:g}, which can only be an undeclared fill "
                         f"value; declare it with --nodata {bad[0]:g}")


def point_cube(path: str | os.PathLike[str], *, lat: float | None = None, lon: float | None = None, site_id: str | None = None,
               **options: Any) -> xr.Dataset:
    """The cube of a single-site point table (see :func:`read_point_table`).

    Raises:
        InputError: the table holds several sites.
    """
    cubes = read_point_table(path, lat=lat, lon=lon, site_id=site_id, **options)
    if len(cubes) != 1:
        raise InputError(f"{path} holds {len(cubes)} sites/samples; give one table per site in sites.csv")
    return next(iter(cubes.values()))


def merge_point_cubes(cubes: Sequence[xr.Dataset]) -> xr.Dataset:
    """Several single-site cubes of one site (e.g. an NDVI table and an LAI table) as one cube (outer join on dates)."""
    if len(cubes) == 1:
        return cubes[0]
    valid = [c["valid"] for c in cubes]
    merged = xr.merge([c.drop_vars("valid") for c in cubes], join="outer", compat="override", combine_attrs="override")
    merged["valid"] = xr.concat([v.reindex(time=merged["time"], fill_value=False) for v in valid], "k").any("k")
    merged.attrs["indices"] = ",".join(sorted({i for c in cubes for i in str(c.attrs.get("indices", "")).split(",") if i}))
    return merged
