"""Run ``verify``'s per-file work on ``--jobs`` processes, sharing state built before the fork.

Both phases (reading the originals, checking the outputs) are lists of
independent files. With one job they run in this process; with more, in
:class:`dicomcloak.batch.pool.Pool` workers (which report a dead worker as
``worker-died`` instead of waiting forever). The state a phase needs (the
policy, and for the outputs every original's needles and digests) is made
before the workers start: under ``fork`` they inherit it without a copy, and
the heap is frozen first (:func:`gc.freeze`) so the collector does not touch,
and so copy, its pages. Results come back in completion order and are put
back in file order, so the report does not depend on ``--jobs``.
"""

from __future__ import annotations

import gc
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

from dicomcloak.batch.pool import Pool, WorkerFunctions

__all__ = ["run_tasks", "state"]

T = TypeVar("T")
R = TypeVar("R")

_STATE: Any = None
_CHUNK = 8


def state() -> Any:
    """The state of the phase being run (in the parent and in every worker)."""
    return _STATE


def _set_state(value: Any) -> None:
    global _STATE
    _STATE = value


def _nothing() -> None:
    return None


def _run_chunk(task: tuple[Callable[[Any], Any], list[tuple[int, Any]]]) -> list[tuple[int, Any]]:
    work, chunk = task
    return [(position, work(item)) for position, item in chunk]


def _context() -> BaseContext:
    # As dicomcloak.batch.run: fork is fastest (workers inherit the state) but unsafe once threads exist.
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _chunks(work: Callable[[T], R], items: list[T]) -> Iterator[tuple[Callable[[T], R], list[tuple[int, T]]]]:
    numbered = list(enumerate(items))
    for start in range(0, len(numbered), _CHUNK):
        yield work, numbered[start:start + _CHUNK]


def run_tasks(work: Callable[[T], R], items: list[T], shared: Any, jobs: int) -> list[R]:
    """``[work(item) for item in items]`` on ``jobs`` processes, ``shared`` readable through :func:`state`.

    ``work`` must be a module-level function (it crosses to the workers by name).
    """
    _set_state(shared)
    try:
        if jobs <= 1 or len(items) <= _CHUNK:
            return [work(item) for item in items]
        return _pooled(work, items, shared, jobs)
    finally:
        _set_state(None)


def _pooled(work: Callable[[T], R], items: list[T], shared: Any, jobs: int) -> list[R]:
    results: list[Any] = [None] * len(items)
    functions = WorkerFunctions(_set_state, shared, _run_chunk, _nothing)
    gc.freeze()  # before forking: the workers inherit the frozen heap (see batch.run._freeze_heap)
    try:
        with Pool(min(jobs, (len(items) + _CHUNK - 1) // _CHUNK), functions, _context()) as pool:
            for chunk in pool.imap_unordered(_chunks(work, items)):
                for position, result in chunk:
                    results[position] = result
    finally:
        gc.unfreeze()
    return results
