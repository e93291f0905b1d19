"""Flux files as downloaded: plain, compressed (gzip, bz2, xz) or zipped, text or Parquet/Feather.

:func:`open_sources` turns a path into the flux tables it holds (one for a
plain or compressed file, one per member for a ZIP archive). What a file is
comes from its first bytes (magic numbers), never from its name alone; a name
whose suffix contradicts the content (a gzip stream named ``.csv``, plain text
named ``.gz``) is refused with the remedy, because the file then went through
an unexpected step (a browser decompressing a download, a renamed archive).
Anything that is not a regular file (a folder, a FIFO, a device, a socket) is
refused before it is opened, so a read never blocks; spreadsheets (.xlsx, .xls,
.ods) are refused with the advice to export the sheet as CSV.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Literal, cast

from fluxnet.errors import FluxDataError

TableKind = Literal["text", "parquet", "feather"]

MAGIC_PROBE_BYTES = 8

_COMPRESSIONS: dict[str, tuple[bytes, str, Callable[[IO[bytes]], IO[bytes]]]] = {
    "gzip": (b"\x1f\x8b", ".gz", lambda raw: cast(IO[bytes], gzip.GzipFile(fileobj=raw))),
    "bz2": (b"BZh", ".bz2", lambda raw: cast(IO[bytes], bz2.BZ2File(raw))),
    "xz": (b"\xfd7zXZ\x00", ".xz", lambda raw: cast(IO[bytes], lzma.LZMAFile(raw))),  # noqa: SIM115 (Source.open closes it)
}
"""Stream compressions: name -> (magic bytes, file-name suffix, decompressing opener; the caller closes it)."""

_TABLE_MAGIC: dict[TableKind, tuple[bytes, ...]] = {"parquet": (b"PAR1",), "feather": (b"ARROW1", b"FEA1")}
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
"""Legacy Office documents (Excel .xls)."""

_SUFFIX_KIND: dict[str, str] = {
    **dict.fromkeys((".csv", ".txt", ".dat", ".tsv", ".tab"), "text"),
    **dict.fromkeys((".parquet", ".pq"), "parquet"),
    **dict.fromkeys((".feather", ".arrow", ".ipc", ".fea"), "feather"),
    ".zip": "zip",
    **{suffix: name for name, (_, suffix, _) in _COMPRESSIONS.items()},
}
"""What a file-name suffix claims the content is."""

_CONTENT_WORDS = {
    "text": "plain text",
    "parquet": "a Parquet file",
    "feather": "a Feather/Arrow IPC file",
    "zip": "a ZIP archive",
    "gzip": "gzip-compressed",
    "bz2": "bz2-compressed",
    "xz": "xz-compressed",
    "xls": "an Excel .xls workbook",
}


@dataclass(frozen=True)
class Source:
    """One flux table: a file on disk, or a member of a ZIP archive.

    Attributes:
        path: The file on disk.
        member: Name of the archive member, or None for the file itself.
        kind: ``"text"`` (CSV-like), ``"parquet"`` or ``"feather"``.
        compression: Stream compression of the file or member (``"gzip"``,
            ``"bz2"``, ``"xz"``), or None.
    """

    path: Path
    member: str | None
    kind: TableKind
    compression: str | None

    @property
    def label(self) -> str:
        """How messages name it: the path, plus ``!member`` inside an archive."""
        return str(self.path) if self.member is None else f"{self.path}!{self.member}"

    @property
    def name(self) -> str:
        """File (or member) name without folders and compression suffix: the hint for site and resolution."""
        name = PurePosixPath(self.member).name if self.member is not None else self.path.name
        if self.compression is not None:
            name = name.removesuffix(_COMPRESSIONS[self.compression][1])
        return name

    @property
    def is_plain_file(self) -> bool:
        """True when readers can use :attr:`path` directly (no archive, no compression)."""
        return self.member is None and self.compression is None

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """The decompressed bytes of the table, as a binary stream."""
        with ExitStack() as stack:
            stream: IO[bytes]
            if self.member is None:
                stream = stack.enter_context(self.path.open("rb"))
            else:
                archive = stack.enter_context(zipfile.ZipFile(self.path))
                try:
                    stream = stack.enter_context(archive.open(self.member))
                except RuntimeError as err:  # encrypted member
                    raise FluxDataError(f"flux file {self.label} cannot be opened ({err}); extract it with its password") from None
            if self.compression is not None:
                stream = stack.enter_context(_COMPRESSIONS[self.compression][2](stream))
            yield stream

    def read_bytes(self) -> bytes:
        """The whole decompressed table (for Parquet/Feather readers that need random access)."""
        with self.open() as stream:
            return stream.read()


def _content_kind(head: bytes) -> str:
    """What the first bytes say: a compression name, ``"zip"``, a table kind, or ``"text"``."""
    for name, (magic, _, _) in _COMPRESSIONS.items():
        if head.startswith(magic):
            return name
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head.startswith(_OLE_MAGIC):
        return "xls"
    for kind, magics in _TABLE_MAGIC.items():
        if head.startswith(magics):
            return kind
    return "text"


def _check_name_matches(label: str, name: str, content: str) -> None:
    """Refuse a name whose last suffix claims other content than the bytes hold."""
    claimed = _SUFFIX_KIND.get(PurePosixPath(name).suffix.lower())
    if claimed is None or claimed == content:
        return
    suffix = PurePosixPath(name).suffix
    if content in _COMPRESSIONS:
        remedy = (
            f"rename it to {name}{_COMPRESSIONS[content][1]} to read it as it is, or decompress it"
            f" ({'gunzip' if content == 'gzip' else content + ' -d'}) and read the result"
        )
    elif content == "zip":
        remedy = "rename it to .zip to read its members, or extract the CSV files from it and read those"
    elif claimed in _COMPRESSIONS:
        remedy = f"it was probably decompressed on download; rename it without {suffix}"
    else:
        remedy = f"rename it to match its content ({_CONTENT_WORDS[content]})"
    raise FluxDataError(f"flux file {label} is {_CONTENT_WORDS[content]} but its name ends in {suffix}; {remedy}")


def _check_regular_file(path: Path) -> None:
    """Refuse missing paths and anything but a regular file, without opening it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FluxDataError(f"flux file {path} does not exist (or is not a file)") from None
    except OSError as err:
        raise FluxDataError(f"flux file {path} cannot be read: {err.strerror}") from None
    if stat.S_ISREG(mode):
        return
    what = {
        stat.S_ISDIR(mode): "a folder",
        stat.S_ISFIFO(mode): "a FIFO (named pipe)",
        stat.S_ISCHR(mode): "a character device",
        stat.S_ISBLK(mode): "a block device",
        stat.S_ISSOCK(mode): "a socket",
    }.get(True, "not a regular file")
    remedy = "give the flux file(s) inside it" if stat.S_ISDIR(mode) else "copy the data into a regular file and read that"
    raise FluxDataError(f"flux file {path} is {what}, not a file; {remedy}")


def _spreadsheet_error(label: str, what: str) -> FluxDataError:
    return FluxDataError(f"flux file {label} is {what}, not a flux table; export the sheet as CSV (UTF-8) and read that")


def _table_kind(content: str, label: str) -> TableKind:
    if content == "xls":
        raise _spreadsheet_error(label, _CONTENT_WORDS["xls"])
    if content == "parquet":
        return "parquet"
    if content == "feather":
        return "feather"
    if content == "text":
        return "text"
    raise FluxDataError(f"flux file {label} is {_CONTENT_WORDS[content]} inside a compressed stream; decompress the outer layer first")


def _classify(path: Path, member: str | None, head: bytes) -> Source:
    """The :class:`Source` of a file or member from its first bytes (and, if compressed, the bytes inside)."""
    label = str(path) if member is None else f"{path}!{member}"
    name = PurePosixPath(member).name if member is not None else path.name
    content = _content_kind(head)
    _check_name_matches(label, name, content)
    if content not in _COMPRESSIONS:
        return Source(path, member, _table_kind(content, label), None)
    with Source(path, member, "text", content).open() as stream:
        inner = _content_kind(stream.read(MAGIC_PROBE_BYTES))
    inner_name = name.removesuffix(_COMPRESSIONS[content][1])
    if inner == "text" and inner_name.lower().endswith(".tar"):
        raise FluxDataError(f"flux file {label} is a compressed tar archive; extract its files (tar -xf) and read those")
    _check_name_matches(label, inner_name, inner)
    return Source(path, member, _table_kind(inner, label), content)


_SKIPPED_MEMBER_PREFIXES = ("__MACOSX/",)


def _archive_members(path: Path) -> list[Source]:
    """One :class:`Source` per data member of a ZIP archive (nested archives left out)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [
                info for info in archive.infolist()
                if not info.is_dir() and not info.filename.startswith(_SKIPPED_MEMBER_PREFIXES)
                and not PurePosixPath(info.filename).name.startswith(".") and info.file_size > 0
            ]
            names = {info.filename for info in infos}
            if "[Content_Types].xml" in names and any(name.startswith("xl/") for name in names):
                raise _spreadsheet_error(str(path), "an Excel workbook (.xlsx)")
            if "mimetype" in names and archive.read("mimetype").startswith(b"application/vnd.oasis.opendocument.spreadsheet"):
                raise _spreadsheet_error(str(path), "an OpenDocument spreadsheet (.ods)")
            heads = {}
            for info in infos:
                with archive.open(info) as member:
                    heads[info.filename] = member.read(MAGIC_PROBE_BYTES)
    except zipfile.BadZipFile as err:
        raise FluxDataError(f"flux file {path} is a damaged ZIP archive ({err}); download it again") from None
    except RuntimeError as err:  # an encrypted member
        raise FluxDataError(f"flux file {path} cannot be opened ({err}); extract it with its password") from None
    members = [_classify(path, name, head) for name, head in heads.items() if _content_kind(head) != "zip"]
    if not members:
        raise FluxDataError(f"flux file {path} is a ZIP archive without any data file in it")
    return members


def open_sources(path: str | os.PathLike[str]) -> list[Source]:
    """The flux tables a path holds.

    Args:
        path: A flux file: CSV-like text, Parquet or Feather, optionally gzip-,
            bz2- or xz-compressed, or a ZIP archive of such files.

    Returns:
        One :class:`Source` for a plain or compressed file; one per member for
        a ZIP archive (folders, ``__MACOSX/`` entries, hidden and empty files
        and nested archives left out), in archive order.

    Raises:
        FluxDataError: The path does not exist, is not a regular file (folder,
            FIFO, device, socket: refused before opening), is a damaged or
            empty archive, or its name contradicts its content.
    """
    source = Path(path)
    _check_regular_file(source)
    with source.open("rb") as stream:
        head = stream.read(MAGIC_PROBE_BYTES)
    if _content_kind(head) == "zip":
        _check_name_matches(str(source), source.name, "zip")
        return _archive_members(source)
    return [_classify(source, None, head)]


def buffer_of(source: Source) -> str | io.BytesIO:
    """What a random-access reader (Parquet, Feather) can open: the path itself, or the bytes in memory."""
    return str(source.path) if source.is_plain_file else io.BytesIO(source.read_bytes())
