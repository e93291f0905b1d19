"""Independent jobs of a pipeline (site embeddings, joins, CV of each model, report sections) on worker processes.

``workers=1`` runs the calls in this process, one after the other, exactly as a
plain loop would. With ``workers > 1`` they run on that many worker processes
(joblib's loky backend: fresh interpreters, reused from one call to the next,
so a whole demo pays the start-up once), each limited to ``threads`` threads
(torch, OpenMP, BLAS), so that ``workers x threads`` stays within the cores and
two libraries never fight over them. Results come back in the order of the
calls; an exception in a call is raised here with its own type and message.

Every call must be picklable: a module-level function and plain data.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ecoembed.report.html import SectionRenderer, render_section
from ecoembed.report.sections import Section

Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]
"""``(function, args, kwargs)``."""


def default_workers() -> int:
    """Worker processes for a machine: its usable cores (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _in_worker(fn: Callable[..., Any], threads: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``fn(*args, **kwargs)`` with torch (when the call's module loaded it) and the BLAS/OpenMP pools at ``threads``."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # ships no type information

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    with threadpool_limits(threads):
        return fn(*args, **kwargs)


def run_calls(calls: Sequence[Call], *, workers: int = 1, threads: int = 1, desc: str | None = None) -> list[Any]:
    """Results of ``calls`` in their order: in this process (``workers <= 1``) or on ``workers`` processes.

    Args:
        calls: ``(function, args, kwargs)`` each.
        workers: worker processes (1: no pool, a plain loop in this process).
        threads: threads per worker (torch, OpenMP, BLAS) when ``workers > 1``.
        desc: label of a progress bar over the calls (None: no bar).
    """
    bar = tqdm(total=len(calls), desc=desc, disable=desc is None, leave=False)
    out: list[Any] = []
    if workers <= 1 or len(calls) <= 1:
        for fn, args, kwargs in calls:
            out.append(fn(*args, **kwargs))
            bar.update(1)
    else:
        from joblib import Parallel, delayed, parallel_config  # type: ignore[import-untyped]  # ships no type information

        with parallel_config(backend="loky", inner_max_num_threads=threads):
            for result in Parallel(n_jobs=workers, batch_size=1, pre_dispatch="all", return_as="generator")(
                    delayed(_in_worker)(fn, threads, args, kwargs) for fn, args, kwargs in calls):
                out.append(result)
                bar.update(1)
    bar.close()
    return out


def section_renderer(workers: int) -> SectionRenderer | None:
    """A renderer for :func:`ecoembed.report.html.build_report` drawing the sections on ``workers`` processes (None for 1)."""
    if workers <= 1:
        return None

    def render(sections: Sequence[Section], run: Path) -> list[tuple[str, str, str]]:
        return run_calls([(render_section, (fn, run), {}) for fn in sections], workers=workers)

    return render
