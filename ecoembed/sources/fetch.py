"""Imagery around towers from STAC catalogs (``ecoembed fetch``; optional extra ``ecoembed[stac]``, internet).

:func:`fetch_sites` reads a sites table (``site_id, lat, lon``), loads a
``size_px`` x ``size_px`` chip on the 10 m UTM grid of each tower with
:func:`ecoembed.sources.stac.load_stac` (Sentinel-2 L2A and Sentinel-1 in the
cube contract) and writes, in the output folder:

* ``<site_id>_s2.nc``, ``<site_id>_s1.nc``: one NetCDF cube per site and sensor
  that :func:`ecoembed.sources.local.open_cube` reads back (S2 surface
  reflectance with ``units = "1"``, SCL and ``valid``; S1 backscatter with
  ``units = "dB"`` and the orbit direction per acquisition). The request
  (catalog, collection, dates, chip size, tower) is in the file's attributes;
* ``sites.csv``: the input rows plus ``s2_path`` / ``s1_path`` relative to the
  folder (other path columns rewritten so that they still point at their files),
  for ``ecoembed fit-gpp --sites <out>/sites.csv``; the input file is never written;
* ``fetch_report.csv``: ``site_id, sensor, status, reason, n_items, path`` for
  every site and sensor (status ``fetched``, ``kept``, ``no_items``, ``no_position``
  or ``failed``).

Resumable: a cube that exists, opens as a valid contract cube, has the chip
size and covers the tower, and was made for the same request is kept; one that
does not open (a truncated file) is fetched again; one made for another request
is refused unless ``overwrite``. Every file is written atomically.

Catalogs are named in :data:`CATALOGS` (URL, one collection per sensor and the
asset keys of its bands); any other STAC API URL or local static ``catalog.json``
is read with the collections of :data:`GENERIC_COLLECTIONS`.
"""

from __future__ import annotations

import io
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from ecoembed.errors import EcoembedError, InputError
from ecoembed.io_utils import atomic_write_text, check_output_location
from ecoembed.sources.chips import tower_pixel
from ecoembed.sources.local import open_cube, save_cube
from ecoembed.sources.stac import NoItemsError, load_stac, stac_available
from fluxnet.errors import FluxDataError
from fluxnet.sites import MULTI_PATH_COLUMNS, PATH_LIST_SEPARATOR, is_path_column, read_sites_csv, split_path_list

SENSOR_KEYS: tuple[str, ...] = ("s2", "s1")
"""Sensors ``fetch`` can load, in the order they are fetched."""
MAX_SPAN_DAYS = 3653
"""Longest ``start``..``end`` range of one run (10 years)."""
MAX_SIZE_PX = 1024
"""Largest chip edge (10 m pixels): 10.24 km."""
REPORT_COLUMNS: tuple[str, ...] = ("site_id", "sensor", "status", "reason", "n_items", "path")
REQUEST_ATTRS: tuple[str, ...] = ("fetch_catalog", "fetch_collection", "fetch_start", "fetch_end", "fetch_size_px",
                                  "site_id", "tower_lat", "tower_lon")
"""Attributes of a fetched cube that say what it was fetched for (compared on resume)."""


@dataclass(frozen=True)
class CollectionSpec:
    """One sensor's collection of a catalog.

    Attributes:
        collection: the STAC collection id.
        assets: canonical band -> asset key, where the catalog's keys are not the canonical names;
            None: resolved from the items' asset keys by the sensor registry.
    """

    collection: str
    assets: Mapping[str, str] | None = None


@dataclass(frozen=True)
class CatalogSpec:
    """A STAC catalog and what ``fetch`` loads from it.

    Attributes:
        name: what the user calls it (``--catalog``).
        url: STAC API URL, or the absolute path of a static ``catalog.json``.
        collections: sensor key -> its collection.
        unavailable: sensor key -> why the catalog cannot give it.
        signer: ``"planetary_computer"`` when asset URLs must be signed before reading.
        note: access requirements said once at the start of a run.
    """

    name: str
    url: str
    collections: Mapping[str, CollectionSpec]
    unavailable: Mapping[str, str] = field(default_factory=dict)
    signer: str | None = None
    note: str = ""

    @property
    def generic(self) -> bool:
        """A catalog not in :data:`CATALOGS` (its collections are checked before fetching)."""
        return self.name not in CATALOGS


_S1_DN = ("uncalibrated GRD digital numbers{where} (no backscatter in dB); use --catalog planetary-computer "
          "(sentinel-1-rtc) for Sentinel-1")
CATALOGS: dict[str, CatalogSpec] = {
    "earth-search": CatalogSpec(
        "earth-search", "https://earth-search.aws.element84.com/v1",
        {"s2": CollectionSpec("sentinel-2-l2a", {
            "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B06": "rededge2", "B07": "rededge3",
            "B08": "nir", "B8A": "nir08", "B11": "swir16", "B12": "swir22", "SCL": "scl"})},
        {"s1": "its sentinel-1-grd collection holds " + _S1_DN.format(where=" in a requester-pays bucket")}),
    "planetary-computer": CatalogSpec(
        "planetary-computer", "https://planetarycomputer.microsoft.com/api/stac/v1",
        {"s2": CollectionSpec("sentinel-2-l2a"),
         "s1": CollectionSpec("sentinel-1-rtc", {"VV": "vv", "VH": "vh"})},
        signer="planetary_computer"),
    "cdse": CatalogSpec(
        "cdse", "https://stac.dataspace.copernicus.eu/v1",
        {"s2": CollectionSpec("sentinel-2-l2a")},
        {"s1": "its sentinel-1-grd collection holds " + _S1_DN.format(where=" in SAFE rasters located by ground control points")},
        note="cdse assets are on s3://eodata: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (CDSE S3 keys), "
             "AWS_S3_ENDPOINT=eodata.dataspace.copernicus.eu and AWS_VIRTUAL_HOSTING=FALSE for GDAL"),
}
"""Named catalogs: URL, collection per sensor (asset keys where they are not the band names), what they lack."""
GENERIC_COLLECTIONS: dict[str, CollectionSpec] = {"s2": CollectionSpec("sentinel-2-l2a"), "s1": CollectionSpec("sentinel-1-rtc")}
"""Collections read from any other catalog (asset keys resolved from the items)."""


@dataclass
class FetchResult:
    """What :func:`fetch_sites` did.

    Attributes:
        out_dir: the output folder.
        sites_csv: the new ``sites.csv`` (input rows plus ``s2_path``/``s1_path``).
        report_csv: ``fetch_report.csv``.
        report: its rows (one per site and sensor).
        catalog: the catalog's URL or path.
        sensors: sensors fetched.
        notes: what was said once on stderr (sensors the catalog lacks, absolute paths, access).
    """

    out_dir: Path
    sites_csv: Path
    report_csv: Path
    report: pd.DataFrame
    catalog: str
    sensors: tuple[str, ...]
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        """Rows of the report with ``status``."""
        return int((self.report["status"] == status).sum())


def parse_date(value: str, option: str) -> date:
    """A ``YYYY-MM-DD`` date, or an :class:`InputError` naming the option."""
    text = str(value).strip()
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} {value!r} is not a date; give YYYY-MM-DD (e.g. 2021-06-30)") from None


def check_dates(start: str, end: str) -> tuple[str, str]:
    """``start`` and ``end`` as ISO strings after checking their format, order and span (:data:`MAX_SPAN_DAYS`)."""
    t0, t1 = parse_date(start, "--start"), parse_date(end, "--end")
    if t0 > t1:
        raise InputError(f"--start {t0} is after --end {t1}; give start <= end")
    if (t1 - t0).days > MAX_SPAN_DAYS:
        raise InputError(f"--start {t0} .. --end {t1} spans {(t1 - t0).days / 365.25:.1f} years; fetch at most "
                         f"{MAX_SPAN_DAYS // 365} years per run (one --out per period)")
    return t0.isoformat(), t1.isoformat()


def resolve_catalog(catalog: str | os.PathLike[str]) -> CatalogSpec:
    """The :class:`CatalogSpec` of a catalog name of :data:`CATALOGS`, a STAC URL or a local static catalog.

    Raises:
        InputError: a local path that does not exist (the message lists the catalog names).
    """
    text = str(catalog).strip()
    if text in CATALOGS:
        return CATALOGS[text]
    if text.startswith(("http://", "https://")):
        return CatalogSpec(text, text, GENERIC_COLLECTIONS)
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / "catalog.json"
    if not path.is_file():
        raise InputError(f"--catalog {text!r} is neither a known catalog ({', '.join(CATALOGS)}), a STAC URL "
                         f"(https://...) nor an existing static catalog.json")
    path = path.resolve()
    return CatalogSpec(str(path), str(path), GENERIC_COLLECTIONS)


def _signer(spec: CatalogSpec) -> Callable[[Any], Any] | None:
    if spec.signer is None:
        return None
    try:
        import planetary_computer
    except ImportError:
        raise InputError(f"--catalog {spec.name} needs its asset URLs signed: pip install planetary-computer") from None
    return planetary_computer.sign


def _collection_ids(spec: CatalogSpec) -> set[str]:
    """Collection ids of a generic catalog (children of the root)."""
    import pystac
    import pystac_client

    try:
        if spec.url.startswith(("http://", "https://")):
            return {c.id for c in pystac_client.Client.open(spec.url).get_collections()}
        return {c.id for c in pystac.Catalog.from_file(spec.url).get_children()}
    except Exception as exc:  # network, JSON, STAC errors: all mean "cannot read the catalog"
        raise InputError(f"cannot read STAC catalog {spec.url} ({type(exc).__name__}: {str(exc)[:200]})") from None


def _choose_sensors(spec: CatalogSpec, sensors: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Sensors to fetch and notes on those left out (``sensors`` None: every sensor the catalog has)."""
    notes: list[str] = []
    if sensors is not None:
        asked = list(dict.fromkeys(str(s).strip().lower() for s in sensors))
        unknown = [s for s in asked if s not in SENSOR_KEYS]
        if unknown or not asked:
            raise InputError(f"--sensor {', '.join(unknown) or '(none)'}: choose from {', '.join(SENSOR_KEYS)}")
        for s in asked:
            if s in spec.unavailable:
                raise InputError(f"--catalog {spec.name} cannot give {s}: {spec.unavailable[s]}; or pass --sensor s2")
    else:
        asked = [s for s in SENSOR_KEYS if s in spec.collections]
        notes += [f"{spec.name}: {s} not fetched, {why}" for s, why in spec.unavailable.items()]
    if spec.generic:
        present = _collection_ids(spec)
        for s in list(asked):
            coll = spec.collections[s].collection
            if coll not in present:
                if sensors is not None:
                    raise InputError(f"STAC catalog {spec.url} has no collection {coll!r} (for --sensor {s}); "
                                     f"it has {', '.join(sorted(present)) or 'none'}")
                asked.remove(s)
                notes.append(f"{spec.url}: {s} not fetched, the catalog has no collection {coll!r}")
    if not asked:
        raise InputError(f"--catalog {spec.name} has none of the collections "
                         f"{', '.join(c.collection for c in spec.collections.values())}; nothing to fetch")
    return asked, notes


@dataclass(frozen=True)
class _Job:
    """One site and sensor to fetch."""

    site_id: str
    sensor: str
    lat: float
    lon: float
    path: Path
    request: dict[str, Any]

    @property
    def positioned(self) -> bool:
        return bool(np.isfinite(self.lat) and np.isfinite(self.lon))


def _safe_name(site_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in site_id).strip(".") or "site"


def _load_sites(sites_csv: Path) -> pd.DataFrame:
    try:
        return read_sites_csv(sites_csv, allow_absolute_paths=True)
    except FluxDataError as exc:
        raise InputError(str(exc)) from None


def _raw_rows(sites_csv: Path) -> pd.DataFrame:
    """The sites file as text cells (written back unchanged apart from the path columns)."""
    text = sites_csv.read_bytes().decode("utf-8-sig")
    raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    raw.columns = [str(c).strip() for c in raw.columns]
    return raw


def _request(spec: CatalogSpec, coll: CollectionSpec, start: str, end: str, size_px: int, site_id: str,
             lat: float, lon: float) -> dict[str, Any]:
    return {"fetch_catalog": spec.url, "fetch_collection": coll.collection, "fetch_start": start, "fetch_end": end,
            "fetch_size_px": int(size_px), "site_id": site_id, "tower_lat": float(lat), "tower_lon": float(lon)}


def _differences(attrs: Mapping[str, Any], request: Mapping[str, Any]) -> list[str]:
    """Request attributes a file's attributes do not match (``key: file value != requested``)."""
    out = []
    for key, want in request.items():
        have = attrs.get(key)
        if isinstance(want, float):
            same = have is not None and math.isclose(float(have), want, rel_tol=0, abs_tol=1e-9)
        elif isinstance(want, int):
            same = have is not None and int(have) == want
        else:
            same = have is not None and str(have) == want
        if not same:
            out.append(f"{key}: {have!r} != {want!r}")
    return out


def _file_attrs(path: Path) -> dict[str, Any] | None:
    """Global attributes of a NetCDF file, or None when it does not open."""
    try:
        with xr.open_dataset(path, mask_and_scale=False, decode_times=False) as ds:
            return dict(ds.attrs)
    except Exception:  # any reader failure: the file is incomplete or not NetCDF
        return None


def _verify(path: Path, sensor: str, request: Mapping[str, Any], size_px: int) -> tuple[bool, str]:
    """Whether ``path`` is a finished cube for ``request``: opens, reads whole, has the chip and the tower."""
    attrs = _file_attrs(path)
    if attrs is None:
        return False, "does not open as NetCDF"
    if _differences(attrs, request):
        return False, "made for another request"
    try:
        cube = open_cube(path, sensor)
        cube.load()
        if (cube.sizes["y"], cube.sizes["x"]) != (size_px, size_px):
            return False, f"is {cube.sizes['y']} x {cube.sizes['x']} px, not {size_px} x {size_px}"
        tower_pixel(cube, float(request["tower_lat"]), float(request["tower_lon"]), source=str(path))
    except (EcoembedError, OSError, ValueError, RuntimeError, KeyError) as exc:
        return False, f"is not a valid cube ({type(exc).__name__}: {str(exc)[:160]})"
    return True, ""


def _relative(path: str, out_dir: Path) -> tuple[str, bool]:
    """``path`` relative to ``out_dir`` when it lies below it, else absolute; and whether it is absolute."""
    p = Path(path).resolve()
    if p.is_relative_to(out_dir):
        return p.relative_to(out_dir).as_posix(), False
    return str(p), True


def _path_cell(cell: object, column: str, out_dir: Path) -> tuple[str, bool]:
    if not isinstance(cell, str) or not cell:
        return "", False
    parts = split_path_list(cell) if column in MULTI_PATH_COLUMNS else [cell]
    rel = [_relative(p, out_dir) for p in parts]
    return PATH_LIST_SEPARATOR.join(r for r, _ in rel), any(a for _, a in rel)


def _check_out(out_dir: Path, sites_csv: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} exists and is not a folder; give a folder")
    check_output_location(out_dir)
    new = out_dir / "sites.csv"
    if new.resolve() == sites_csv.resolve() or (new.exists() and os.path.samefile(new, sites_csv)):
        raise InputError(f"--out {out_dir} holds the --sites file {sites_csv}: the new sites.csv would overwrite it; "
                         "choose another --out")


def fetch_sites(sites_csv: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, start: str, end: str,
                catalog: str | os.PathLike[str] = "earth-search", size_px: int = 64, sensors: Sequence[str] | None = None,
                overwrite: bool = False, progress: bool = True) -> FetchResult:
    """Fetch a Sentinel-2 / Sentinel-1 chip around every tower of a sites table (see the module docstring).

    Args:
        sites_csv: ``site_id, lat, lon`` (WGS84 decimal degrees) and any other columns; read, never written.
        out_dir: output folder (created).
        start, end: inclusive dates, ``YYYY-MM-DD`` (UTC), at most 10 years apart.
        catalog: a name of :data:`CATALOGS`, a STAC API URL or a local static ``catalog.json`` (or its folder).
        size_px: chip edge in 10 m pixels, the tower in pixel ``size_px // 2`` (64 px = 640 m).
        sensors: ``"s2"`` and/or ``"s1"``; default every sensor the catalog offers (a note names the others).
        overwrite: fetch every site again, even finished ones (and ones made for another request).
        progress: tqdm bar over sites (stderr).

    Returns:
        The :class:`FetchResult`; per site and sensor statuses are in ``fetch_report.csv``.

    Raises:
        InputError: the STAC extra is missing, bad dates, size, sensors, catalog or sites file; ``--out``
            holds the sites file; an existing cube was fetched for another request (without ``overwrite``);
            or no site got any cube (after writing the report).
    """
    sites_path = Path(sites_csv)
    out = Path(out_dir)
    start, end = check_dates(start, end)
    if not isinstance(size_px, (int, np.integer)) or not 1 <= int(size_px) <= MAX_SIZE_PX:
        raise InputError(f"--size-px {size_px}: give a whole number of 10 m pixels from 1 to {MAX_SIZE_PX}")
    size_px = int(size_px)
    if not stac_available():
        raise InputError("ecoembed fetch needs the optional extra: pip install 'ecoembed[stac]' (pystac-client, odc-stac)")
    spec = resolve_catalog(catalog)
    sites = _load_sites(sites_path)
    raw_rows = _raw_rows(sites_path)
    _check_out(out, sites_path)
    sign = _signer(spec)
    chosen, notes = _choose_sensors(spec, sensors)
    if spec.note:
        notes.append(spec.note)
    names = [_safe_name(str(s)) for s in sites["site_id"]]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise InputError(f"{sites_path}: site_ids {clash} give the same file name after replacing characters "
                         "other than letters, digits, '-', '_', '.'; make them distinct")
    out.mkdir(parents=True, exist_ok=True)
    out_abs = out.resolve()
    by_site: dict[str, list[_Job]] = {}
    for (_, site), name in zip(sites.iterrows(), names, strict=True):
        sid, lat, lon = str(site["site_id"]), float(site["lat"]), float(site["lon"])
        by_site[sid] = [_Job(sid, sensor, lat, lon, out_abs / f"{name}_{sensor}.nc",
                             _request(spec, spec.collections[sensor], start, end, size_px, sid, lat, lon)) for sensor in chosen]
    if not overwrite:  # refuse before any download: a readable cube of this folder made for another request
        for job in (j for jobs in by_site.values() for j in jobs):
            attrs = _file_attrs(job.path) if job.path.exists() and job.positioned else None
            diff = _differences(attrs, job.request) if attrs is not None else []
            if diff:
                raise InputError(f"{job.path} was not fetched for this request ({'; '.join(diff[:3])}); pass --overwrite "
                                 "to replace it or choose another --out")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if spec.url.startswith(("http://", "https://")):
        import odc.stac

        odc.stac.configure_rio(cloud_defaults=True)  # GDAL settings for cloud-optimised GeoTIFFs over HTTP
    rows: list[dict[str, Any]] = []
    paths: dict[tuple[str, str], str] = {}
    bar = tqdm(list(by_site.items()), desc="fetch sites", unit="site", disable=not progress, file=sys.stderr)
    for sid, site_jobs in bar:
        bar.set_postfix_str(sid)
        for job in site_jobs:
            sensor, path, req = job.sensor, job.path, job.request
            rel = path.relative_to(out_abs).as_posix()
            row: dict[str, Any] = {"site_id": sid, "sensor": sensor, "status": "", "reason": "", "n_items": "", "path": ""}
            if not job.positioned:
                row.update(status="no_position", reason="the site has no lat/lon in the sites file")
                tqdm.write(f"{sid} {sensor}: skipped, no lat/lon", file=sys.stderr)
                rows.append(row)
                continue
            replaced = ""
            if path.exists() and not overwrite:
                ok, why = _verify(path, sensor, req, size_px)
                if ok:
                    attrs = _file_attrs(path) or {}
                    row.update(status="kept", reason="finished cube verified", n_items=attrs.get("stac_items", ""), path=rel)
                    paths[(sid, sensor)] = str(path)
                    rows.append(row)
                    continue
                replaced = f"; replaced a file that {why}"
            try:
                cube = load_stac(spec.url, req["fetch_collection"], job.lat, job.lon, start, end, size_px=size_px,
                                 assets=spec.collections[sensor].assets, sign=sign)
                cube.attrs.update(req)
                cube.attrs["title"] = f"{sensor.upper()} {size_px} x {size_px} px (10 m) around tower {sid}, {start}..{end}"
                save_cube(cube, path)
            except NoItemsError as exc:
                row.update(status="no_items", reason=str(exc), n_items=0)
                tqdm.write(f"{sid} {sensor}: skipped, {exc}", file=sys.stderr)
            except Exception as exc:  # network, reader and contract errors of one site: reported, the others go on
                reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                row.update(status="failed", reason=reason)
                tqdm.write(f"{sid} {sensor}: failed, {reason}", file=sys.stderr)
            else:
                row.update(status="fetched", reason=f"{cube.sizes['time']} acquisitions{replaced}",
                           n_items=cube.attrs.get("stac_items", ""), path=rel)
                paths[(sid, sensor)] = str(path)
            rows.append(row)
    bar.close()
    report = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    report_csv = out_abs / "fetch_report.csv"
    atomic_write_text(report_csv, report.to_csv(index=False))
    new_sites, absolute = _sites_table(sites, raw_rows, chosen, paths, out_abs)
    sites_out = out_abs / "sites.csv"
    atomic_write_text(sites_out, new_sites.to_csv(index=False))
    if absolute:
        note = (f"{sites_out} names files outside {out_abs} by absolute path ({', '.join(absolute)}); "
                "run fit-gpp with --allow-absolute-paths")
        notes.append(note)
        print(f"note: {note}", file=sys.stderr)
    result = FetchResult(out_abs, sites_out, report_csv, report, spec.url, tuple(chosen), notes)
    if not paths:
        raise InputError(f"no cube for any site from {spec.url} between {start} and {end}; see {report_csv}")
    return result


def _sites_table(sites: pd.DataFrame, raw_rows: pd.DataFrame, sensors: Sequence[str], paths: Mapping[tuple[str, str], str],
                 out_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """The input rows as text, path columns relative to ``out_dir``, ``<sensor>_path`` of the fetched cubes."""
    table = raw_rows.copy()
    absolute: list[str] = []
    for column in [c for c in table.columns if is_path_column(c) and c not in {f"{s}_path" for s in sensors}]:
        cells = [_path_cell(cell, column, out_dir) for cell in sites[column]]
        table[column] = [c for c, _ in cells]
        if any(a for _, a in cells):
            absolute.append(column)
    for sensor in sensors:
        table[f"{sensor}_path"] = [Path(paths[(str(sid), sensor)]).relative_to(out_dir).as_posix()
                                   if (str(sid), sensor) in paths else "" for sid in sites["site_id"]]
    return table, absolute

