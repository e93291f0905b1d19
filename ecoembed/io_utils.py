"""Atomic file and folder writes: nothing half-written is ever visible.

Long jobs write to a temporary sibling and rename it into place
(``os.replace`` is atomic on POSIX within one file system), so a crash leaves
either the old output or the new one, never a mixture.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ecoembed.errors import EcoembedError, OutputExistsError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The caller writes a file (or a folder, e.g. a Zarr store) at the yielded
    path. On exception the temporary is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp_target = tmp / target.name
    try:
        yield tmp_target
        if target.is_dir() and not target.is_symlink():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp_target, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp_target, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def prepare_output_dir(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Check that ``path`` can be used as an output folder and create it.

    Raises:
        OutputExistsError: ``path`` exists, is not empty and ``overwrite`` is False.
        EcoembedError: ``path`` (or its parent) is not writable.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output path {out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"output folder {out} already exists and is not empty; pass --overwrite to replace its contents "
            "or choose another --out"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise EcoembedError(f"output folder {out} is not writable ({exc.strerror}); choose another --out") from exc
    return out
