"""STAC source (optional extra ``ecoembed[stac]``: pystac-client + odc-stac).

:func:`load_stac` finds the items of a collection over a tower for a date
range, loads a tower-centred ``size_px`` window on the 10 m UTM grid with
odc-stac, converts it to the sensor cube contract (SCL -> ``valid``, orbit per
acquisition from ``sat:orbit_state``) and caches it to a local Zarr store.

What the asset numbers are is decided as for local cubes
(:func:`ecoembed.sensors.values.decode_band`), from the assets' declared
``nodata``, the catalogs' conventions (:data:`ecoembed.sensors.values.CONVENTIONS`: S2 L2A
assets are digital numbers, x 1e-4 with the baseline-04.00 offset removed, whatever type
odc-stac loads them as; S1 assets are linear power) and the ``values`` option, never
from the values. The decisions are recorded in ``attrs['values']``.

Works with STAC APIs (item search) and with static catalogs (local
``catalog.json`` files, filtered here by bbox and datetime). Asset keys that are
not the canonical band names (``red``, ``nir08``, ``B04_10m``, ``vv``) are
given with ``assets`` or resolved from the items' asset keys by the sensor
registry. :mod:`ecoembed.sources.fetch` runs it over every site of a sites table.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Transformer

from ecoembed.errors import InputError
from ecoembed.sensors import sentinel2
from ecoembed.sensors.cube import validate_cube
from ecoembed.sensors.registry import get_sensor
from ecoembed.sensors.sentinel1 import S1_POLARISATIONS
from ecoembed.sensors.sentinel2 import S2_BANDS, scl_valid
from ecoembed.sensors.values import baseline_offset_removed, decode_band
from ecoembed.sources.local import open_cube, save_cube

# pystac, pystac-client and odc-stac are the optional extra ecoembed[stac] (for users with internet): they are
# imported inside the functions that need them, so the rest of the package works without them.


class NoItemsError(InputError):
    """The catalog has no item of the collection over the tower in the date range."""


def stac_available() -> bool:
    """True when pystac-client and odc-stac are importable."""
    try:
        import odc.stac  # noqa: F401
        import pystac_client  # noqa: F401
    except ImportError:
        return False
    return True


def _require() -> None:
    if not stac_available():
        raise InputError("STAC loading needs the optional extra: pip install 'ecoembed[stac]' (pystac-client, odc-stac)")


def _sensor_of(collection: str, bands: Sequence[str]) -> str:
    c = collection.lower()
    if "sentinel-1" in c or c.split("-")[0] == "s1" or (bands and set(bands) <= set(S1_POLARISATIONS) | {"vv", "vh"}):
        return "sentinel-1-grd"
    return "sentinel-2-l2a"


def _items(catalog: str, collection: str, bbox: tuple[float, float, float, float], start: str, end: str) -> list[Any]:
    """Items of ``collection`` intersecting ``bbox`` (lon/lat) within [start, end] (inclusive days)."""
    import pystac
    import pystac_client

    t0 = pd.Timestamp(start, tz="UTC")
    t1 = pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
    is_url = str(catalog).startswith(("http://", "https://"))
    if is_url:
        client = pystac_client.Client.open(str(catalog))
        if client.conforms_to("ITEM_SEARCH"):
            search = client.search(collections=[collection], bbox=bbox, datetime=f"{start}/{end}")
            return list(search.items())
        root: Any = client
    else:
        path = Path(catalog)
        if not path.exists():
            raise InputError(f"STAC catalog {path} does not exist")
        root = pystac.read_file(str(path))
    coll = root.get_child(collection) if hasattr(root, "get_child") else None
    if coll is None:
        raise InputError(f"STAC catalog {catalog} has no collection {collection!r}")
    out = []
    for item in coll.get_items(recursive=True):
        ib = item.bbox
        if ib is not None and (ib[0] > bbox[2] or ib[2] < bbox[0] or ib[1] > bbox[3] or ib[3] < bbox[1]):
            continue  # items without a bbox cannot be filtered here; odc-stac reads their footprint
        dt = pd.Timestamp(item.datetime)
        dt = dt.tz_localize("UTC") if dt.tzinfo is None else dt
        if t0 <= dt < t1:
            out.append(item)
    return out


def _resolution_rank(key: str) -> int:
    """Sort key of asset keys naming one band: no resolution suffix or ``_10m`` first, then ``_20m``, ``_60m``."""
    for rank, suffix in enumerate(("_10m", "_20m", "_60m")):
        if key.lower().endswith(suffix):
            return rank
    return 0


def resolve_assets(items: Sequence[Any], sensor: str, bands: Sequence[str]) -> dict[str, str]:
    """Canonical band -> asset key of the items, for the ``bands`` the items have.

    A key equal to the band wins; otherwise the key the sensor registry resolves to the band
    (``red`` and ``B04_10m`` -> ``B04``, ``vv`` -> ``VV``), the finest resolution first.
    """
    spec = get_sensor("s2" if sensor == "sentinel-2-l2a" else "s1")
    keys: list[str] = []
    for item in items[:5]:  # items of one collection share their asset keys; a few guard against a partial first item
        keys.extend(k for k in item.assets if k not in keys)
    out: dict[str, str] = {}
    for band in bands:
        if band in keys:
            out[band] = band
            continue
        matches = sorted((k for k in keys if spec.canonical_band(k) == band), key=lambda k: (_resolution_rank(k), k))
        if matches:
            out[band] = matches[0]
    return out


def load_stac(catalog_url_or_path: str | os.PathLike[str], collection: str, lat: float, lon: float, start: str, end: str,
              size_px: int = 32, bands: Sequence[str] | None = None, cache: str | os.PathLike[str] | None = None,
              *, crs: str | None = None, assets: Mapping[str, str] | None = None,
              sign: Callable[[Any], Any] | None = None, values: str | None = None) -> xr.Dataset:
    """Load a tower-centred cube from a STAC catalog into the sensor cube contract.

    Args:
        catalog_url_or_path: STAC API URL or a local static ``catalog.json``.
        collection: collection id (``sentinel-2-l2a``, ``sentinel-1-rtc``, ...).
        lat, lon: tower position (WGS84 degrees).
        start, end: inclusive dates (YYYY-MM-DD).
        size_px: window edge (10 m pixels); the tower is in pixel ``size_px // 2``.
        bands: asset keys to load, named as the canonical bands (default the 10 S2 bands + SCL, or
            VV/VH, with their asset keys from ``assets`` or resolved from the items).
        cache: a ``.zarr`` path; if it exists it is opened instead of loading, else written.
        crs: output CRS (default the UTM zone of the tower).
        assets: canonical band -> asset key (``{"B04": "red", "SCL": "scl"}``) where the catalog's keys differ.
        sign: applied to every item before loading (``planetary_computer.sign``: signed asset URLs).
        values: what the asset numbers are (``reflectance``/``dn`` for S2, ``db``/``linear`` for S1);
            default the catalogs' conventions (S2 digital numbers, S1 linear power).

    The cube's attributes record ``stac_collection`` and ``stac_items`` (items loaded).

    Raises:
        InputError: the extra is missing, the catalog/collection does not exist, or no band is found.
        NoItemsError: no item matches (an :class:`InputError`).
    """
    if cache is not None and Path(cache).exists():
        return open_cube(cache)
    _require()
    import odc.stac
    from odc.geo.geobox import GeoBox

    sensor = _sensor_of(collection, bands or list(assets or ()))
    explicit = bands is not None
    if bands is None:
        bands = list(assets) if assets else (*S2_BANDS, "SCL") if sensor == "sentinel-2-l2a" else S1_POLARISATIONS
    bands = list(bands)
    if crs is None:
        zone = int((lon + 180) // 6) + 1
        crs = f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    x0 = np.floor(x / 10.0) * 10.0 - 10.0 * (size_px // 2)
    y1 = np.floor(y / 10.0) * 10.0 + 10.0 + 10.0 * (size_px // 2)
    box = (x0, y1 - 10.0 * size_px, x0 + 10.0 * size_px, y1)
    to_ll = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lons, lats = to_ll.transform([box[0], box[2], box[0], box[2]], [box[1], box[1], box[3], box[3]])
    items = _items(str(catalog_url_or_path), collection, (min(lons), min(lats), max(lons), max(lats)), start, end)
    if not items:
        raise NoItemsError(f"no {collection} item in {catalog_url_or_path} over lat={lat}, lon={lon} between {start} and {end}")
    if sign is not None:
        items = [sign(it) for it in items]
    if assets is not None:  # the given keys the items have; the other bands resolved from the items' keys
        present = {k for it in items[:5] for k in it.assets}
        keys = {b: assets[b] for b in bands if b in assets and assets[b] in present}
        keys.update(resolve_assets(items, sensor, [b for b in bands if b not in keys]))
        keys = {b: keys[b] for b in bands if b in keys}
    elif explicit:
        keys = {b: b for b in bands}
    else:
        keys = resolve_assets(items, sensor, bands)
    if not keys:
        raise InputError(f"the {collection} items of {catalog_url_or_path} have none of the bands {bands} "
                         f"(asset keys {sorted(items[0].assets)}); pass assets={{band: asset key}}")
    bands = list(keys)
    geobox = GeoBox.from_bbox(box, crs=crs, resolution=10.0)
    raw = odc.stac.load(items, bands=list(keys.values()), geobox=geobox, resampling="nearest", groupby="time")
    raw = raw.rename({key: band for band, key in keys.items() if key != band})
    ds = xr.Dataset(coords={"time": raw["time"].values, "y": raw["y"].values, "x": raw["x"].values})
    source = f"STAC {catalog_url_or_path} {collection}"
    attrs: dict[str, Any] = {"crs": crs, "sensor": sensor, "synthetic": False, "resolution_m": 10.0, "source": source,
                             "stac_collection": collection, "stac_items": len(items)}
    rules: dict[str, str] = {}
    if sensor == "sentinel-2-l2a":
        spec = get_sensor("s2")
        for b in bands:
            if b in S2_BANDS:
                da, kind, rule = decode_band(_asset_band(raw[b]), spec.band(b), spec, file_attrs=attrs, values=values,
                                             source=source)
                if kind == "dn":
                    removed, why = baseline_offset_removed(attrs, None)
                    if not removed:
                        da = sentinel2.remove_baseline_offset(da)
                    rule = f"{rule}; {why}"
                ds[b] = da.drop_vars("spatial_ref", errors="ignore")
                rules.setdefault("reflectance", rule)
        valid = xr.ones_like(ds[next(b for b in bands if b in S2_BANDS)], dtype=bool)
        for b in bands:
            if b in S2_BANDS:
                valid = valid & ds[b].notnull()
        if "SCL" in raw:
            ds["SCL"] = raw["SCL"].astype(np.uint8).drop_vars("spatial_ref", errors="ignore")
            ds["SCL"].attrs = {"long_name": "scene classification (SCL)", "nodata": 0}
            valid = valid & scl_valid(ds["SCL"])
        ds["valid"] = valid
        ds["valid"].attrs = {"long_name": "valid observation (every band present" + (", SCL class usable)" if "SCL" in raw else ")")}
    else:
        spec = get_sensor("s1")
        orbit = [str(it.properties.get("sat:orbit_state", "")).lower() for it in sorted(items, key=lambda i: i.datetime)]
        valid = None
        for b in bands:
            da, _, rule = decode_band(_asset_band(raw[b]), spec.band(b), spec, file_attrs=attrs, values=values, source=source)
            ds[b] = da.drop_vars("spatial_ref", errors="ignore")
            ds[b].attrs = {**da.attrs, "units": "dB", "long_name": f"backscatter {b} (dB; {rule})"}
            rules.setdefault("backscatter", rule)
            valid = ds[b].notnull() if valid is None else valid & ds[b].notnull()
        ds["valid"] = valid
        ds["valid"].attrs = {"long_name": "valid observation (every polarisation finite)"}
        if len(orbit) == ds.sizes["time"] and all(o in ("ascending", "descending") for o in orbit):
            ds = ds.assign_coords(orbit=("time", np.array(orbit)))
    attrs["values"] = "; ".join(f"{k}: {v}" for k, v in rules.items())
    ds.attrs = attrs
    ds = ds.transpose("time", "y", "x").compute()
    validate_cube(ds, sensor, [b for b in bands if b in (*S2_BANDS, *S1_POLARISATIONS)], source=str(catalog_url_or_path))
    if cache is not None:
        save_cube(ds, cache)
    return ds


def _asset_band(band: xr.DataArray) -> xr.DataArray:
    """A loaded asset with only the metadata the catalog declares: its ``nodata`` (odc-stac's ``units`` is a default, not a declaration)."""
    out = band.copy()
    nodata = band.attrs.get("nodata")
    out.attrs = {"nodata": nodata} if nodata is not None else {}
    return out
