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

from ecoembed.errors import InputError


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


def check_output_location(out: Path) -> None:
    """Refuse an ``--out`` whose nearest existing ancestor is not a writable folder (before any work).

    Raises:
        InputError: naming the ancestor that blocks the write.
    """
    ancestor = out.parent.absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"cannot write --out {out}: {ancestor} is not a writable folder; choose another --out")
