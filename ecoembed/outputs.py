"""Output safety: what a command may write, who may write it, and which files it may open.

Every command that writes goes through :func:`guarded_output` (the CLI wraps
each writing command in it), which

1. **refuses an output that overlaps an input**: ``--out`` equal to an input,
   inside an input folder (a ``.zarr`` store, a run folder) or containing an
   input (the folder of a sites file, of its flux files or cubes), compared as
   resolved paths with symlinks followed, so ``--overwrite`` can never delete
   what the command reads;
2. **refuses a symlinked output** (the link's target would be replaced, not the link);
3. **locks the output** for the life of the command: an exclusive ``flock`` on
   ``.<name>.lock`` beside it, holding the writer's PID; a second writer on the
   same output stops at once with a message naming that PID (the lock is
   released by the kernel when the process dies, so a killed run never leaves
   a stale lock).

Publishing stays with :func:`ecoembed.io_utils.atomic_path` (a temporary
sibling renamed into place; with ``--overwrite`` the old output is moved aside
and deleted only after the new one is in place).

:func:`regular_input` is the rule for what a reader opens: regular files, and
folders only for Zarr stores and run folders; FIFOs, devices and sockets are
refused before anything blocks on them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from ecoembed.errors import InputError, OutputExistsError
from ecoembed.io_utils import check_output_location


def _resolved(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def check_no_overlap(out: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]], *, option: str = "--out") -> None:
    """Refuse an output equal to, inside, or containing any input (resolved paths, symlinks followed).

    Raises:
        InputError: naming the input and the remedy.
    """
    o = _resolved(out)
    for inp in inputs:
        if inp is None or str(inp) == "":
            continue
        i = _resolved(inp)
        if o == i:
            raise InputError(f"{option} {out} is the input {inp}; write to another path (inputs are never replaced)")
        if i in o.parents:
            raise InputError(f"{option} {out} lies inside the input {inp}; choose an output outside it")
        if o in i.parents:
            raise InputError(f"{option} {out} contains the input {inp}; --overwrite would delete it: choose another {option}")


def check_not_symlink(out: str | os.PathLike[str], *, option: str = "--out") -> None:
    """Refuse an output that is a symbolic link (replacing it would replace its target's contents).

    Raises:
        InputError: naming the link and its target.
    """
    p = Path(out)
    if p.is_symlink():
        raise InputError(f"{option} {out} is a symbolic link (to {os.readlink(p)}); give the real path or a new name")


def lock_path(out: str | os.PathLike[str]) -> Path:
    """The lock file of an output: ``.<name>.lock`` beside it."""
    p = Path(os.path.abspath(os.fspath(out)))
    return p.with_name(f".{p.name}.lock")


@contextlib.contextmanager
def output_lock(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on ``out`` while the block runs; a second holder is refused at once.

    Raises:
        OutputExistsError: another process holds the lock (its PID in the message).
    """
    lp = lock_path(out)
    lp.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            except OSError:
                holder = "unknown"
            raise OutputExistsError(f"{out} is being written by another ecoembed process (PID {holder}); wait for it to "
                                    "finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        try:
            yield lp
        finally:
            with contextlib.suppress(OSError):
                os.unlink(lp)  # unlinked while still locked: a waiting writer then locks a file nobody else sees
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def guarded_output(out: str | os.PathLike[str] | None, inputs: Iterable[str | os.PathLike[str]], *,
                   option: str = "--out") -> Iterator[None]:
    """Check ``out`` against ``inputs``, refuse a symlinked ``out``, and hold its lock while the block runs."""
    if out is None:
        yield
        return
    check_not_symlink(out, option=option)
    check_no_overlap(out, inputs, option=option)
    check_output_location(Path(out))  # a parent that is a file or not writable: named before any lock or work
    with output_lock(out):
        yield


def regular_input(path: str | os.PathLike[str], *, what: str = "input") -> Path:
    """``path`` if it is a regular file or a folder (Zarr store, run folder); refuse FIFOs, devices, sockets.

    Raises:
        InputError: the path is missing or not something a reader can open without blocking.
    """
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise InputError(f"{what} {p} does not exist") from None
    except OSError as exc:
        raise InputError(f"{what} {p} cannot be read ({exc.strerror}); check the path and its permissions") from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return p
    kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
        "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
    raise InputError(f"{what} {p} is {kind}; give a regular file (or a .zarr folder)")


def describe_os_error(exc: OSError) -> str:
    """One line for an ``OSError``: the path, what went wrong and what to do."""
    path = exc.filename if exc.filename is not None else "(unknown path)"
    reason = exc.strerror or exc.__class__.__name__
    import errno

    remedy = {
        errno.ENOSPC: "free disk space (or choose --out on another disk), then re-run",
        errno.EDQUOT: "free space in your quota, then re-run",
        errno.ENAMETOOLONG: "use a shorter path or file name",
        errno.EACCES: "check the permissions of the path or choose another --out",
        errno.EPERM: "check the permissions of the path or choose another --out",
        errno.EROFS: "the file system is read-only: choose --out on a writable one",
        errno.ENOENT: "check that the path exists",
        errno.ENOTDIR: "a part of the path is a file, not a folder: fix the path",
        errno.EISDIR: "the path is a folder where a file is expected: fix the path",
        errno.EXDEV: "the output and its temporary copy must be on one file system: choose --out elsewhere",
    }.get(exc.errno or -1, "check the path and re-run")
    return f"cannot use {path}: {reason}; {remedy}"
