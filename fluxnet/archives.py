"""ZIP archives as downloaded: which members to read.

FLUXNET, ICOS and Warm Winter archives hold one site's tables at several
resolutions (HH, DD, WW, MM, YY), auxiliary tables (ERA5 meteorology,
u* thresholds), read-me and licence files; archives users make may hold a
site's years as separate files. :func:`select_members` keeps the flux tables
with GPP of one site and one resolution, and refuses what stays ambiguous.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fluxnet.errors import FluxDataError
from fluxnet.families import NotPartitionedError
from fluxnet.records import Inspection, ReadOptions, inspect_source
from fluxnet.sources import Source, open_sources
from fluxnet.timestamps import RESOLUTIONS


def _short_reason(err: FluxDataError, label: str) -> str:
    text = str(err).replace(f"flux file {label}", "").lstrip(": ")
    return text.split(";")[0][:90]


def select_members(path: Path, members: list[Source], options: ReadOptions, site_id: str | None) -> list[Inspection]:
    """The members of an archive to read: flux tables with GPP, of one site and one resolution.

    Members that are not flux tables (read-me files, metadata, meteorology
    without GPP, weekly/monthly/yearly tables) are left out. Of the rest, the
    tables of ``site_id`` (when given and present) are kept; several sites
    are refused. When the same site comes daily and sub-daily, the daily
    table (the producer's own aggregation) is read unless
    ``options.resolution`` asks for another.

    Args:
        path: The archive.
        members: Its tables (from :func:`~fluxnet.sources.open_sources`).
        options: The caller's choices.
        site_id: The caller's site, if any.

    Returns:
        The inspected members to read, in archive order.

    Raises:
        NotPartitionedError: No member has GPP but one has NEE.
        FluxDataError: No flux table at all (listing the members and why),
            several sites, or no member at the resolution asked for.
    """
    usable: list[Inspection] = []
    not_partitioned: list[NotPartitionedError] = []
    ignored: list[str] = []
    for member in members:
        try:
            inspection = inspect_source(member, options, archive_name=path.name)
        except NotPartitionedError as err:
            not_partitioned.append(err)
            continue
        except FluxDataError as err:
            ignored.append(f"{member.name} ({_short_reason(err, member.label)})")
            continue
        if inspection.resolution not in RESOLUTIONS:
            ignored.append(f"{member.name} (resolution {inspection.resolution or 'unknown'})")
            continue
        usable.append(inspection)
    if not usable:
        if not_partitioned:
            raise not_partitioned[0]
        raise FluxDataError(f"flux file {path} is a ZIP archive without a flux table with GPP; its members: {'; '.join(ignored)}")
    if site_id is not None and any(i.site == site_id for i in usable):
        usable = [i for i in usable if i.site in (site_id, None)]
    sites = sorted({i.site for i in usable if i.site is not None})
    if len(sites) > 1:
        raise FluxDataError(f"flux file {path} holds flux tables of several sites ({', '.join(sites)}); pass site_id= to read one")
    resolutions = {i.resolution for i in usable}
    if options.resolution is not None:
        usable = [i for i in usable if i.resolution == options.resolution]
        if not usable:
            raise FluxDataError(
                f"flux file {path} holds no {options.resolution} flux table; it has {', '.join(sorted(map(str, resolutions)))}"
            )
    elif len(resolutions) > 1:
        if "DD" not in resolutions:
            listing = ", ".join(f"{i.source.name} ({i.resolution})" for i in usable)
            raise FluxDataError(f"flux file {path} holds flux tables at several resolutions ({listing}); pass resolution='HH' or 'HR'")
        usable = [i for i in usable if i.resolution == "DD"]  # the producer's own daily aggregation
    return usable


def inspect_paths(paths: Sequence[Path], options: ReadOptions, site_id: str | None) -> tuple[list[Inspection], list[str]]:
    """Every table to read from ``paths``, and a note per archive on the members read and not read.

    Args:
        paths: Flux files and archives.
        options: The caller's choices.
        site_id: The caller's site, if any (chooses among archive members).

    Returns:
        ``(inspections, notes)``.

    Raises:
        FluxDataError: As :func:`~fluxnet.sources.open_sources`,
            :func:`~fluxnet.records.inspect_source` and :func:`select_members`.
    """
    inspections: list[Inspection] = []
    notes: list[str] = []
    for path in paths:
        sources = open_sources(path)
        if sources[0].member is None:
            inspections.append(inspect_source(sources[0], options))
            continue
        chosen = select_members(path, sources, options, site_id)
        inspections += chosen
        skipped = [s.member for s in sources if s.member not in {i.source.member for i in chosen}]
        notes.append(
            f"{path.name}: read {', '.join(str(i.source.member) for i in chosen)}"
            + (f"; not read: {', '.join(map(str, skipped))}" if skipped else "")
        )
    return inspections, notes
