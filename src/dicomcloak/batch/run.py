"""Run the per-file step over many inputs: in-process for one job, a process pool for several.

Each worker builds its :class:`~dicomcloak.api.Deidentifier` once (the key
arrives through the pool's ``initargs``, never argv or the environment), reads
and writes its files itself, and returns a small :class:`FileResult`. Outputs
do not depend on the job count: the engine is deterministic and a shared claim
directory decides duplicates, so ordering never changes content.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from dicomcloak.batch.pool import Pool, WorkerFunctions
from dicomcloak.batch.report import ReportBuilder, RunSummary, encode_report, report_path
from dicomcloak.batch.worker import (
    FileResult,
    WorkerContext,
    WorkerSettings,
    build_context,
    process_chunk,
)
from dicomcloak.errors import OutputError
from dicomcloak.io.grouped import sync_file_system
from dicomcloak.io.inputs import InputItem
from dicomcloak.io.writer import atomic_file, write_atomic

__all__ = ["EVENTS_NAME", "Observer", "RunSettings", "default_jobs", "events_path", "run_batch"]

_CONTEXT: WorkerContext | None = None  # one per worker process, set by the pool initializer


class Observer(Protocol):
    """Progress hooks (the CLI draws a progress bar with them)."""

    def start(self, total: int) -> None:
        """Called once, when the work is about to begin."""

    def advance(self, result: FileResult) -> None:
        """Called once per finished input, in completion order."""


@dataclass(frozen=True)
class RunSettings:
    """One batch run: what each worker does, where reports go, how many processes."""

    worker: WorkerSettings
    run_dir: Path
    jobs: int = 1


def default_jobs() -> int:
    """All local cores this process may use (DESIGN.md decision 8; honours CPU affinity)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def run_batch(
    inputs: Iterable[InputItem], settings: RunSettings, observer: Observer | None = None
) -> RunSummary:
    """De-identify every input, write ``report.json`` in the run directory, return the summary."""
    items = list(inputs)
    started = time.perf_counter()
    _prepare_dir(settings.worker.out_dir, "output")
    _prepare_dir(settings.run_dir, "run")
    jobs = max(1, min(settings.jobs, len(items)))
    builder = ReportBuilder()
    try:
        # One sanitize verdict event per input (tags and codes only), in completion order.
        with atomic_file(events_path(settings.run_dir)) as events:
            for result in _results(items, settings, jobs, observer):
                builder.add(result)
                if result.event:
                    events.write(result.event.encode("utf-8") + b"\n")
                if observer is not None:
                    observer.advance(result)
    except OSError as error:
        raise OutputError(
            f"cannot write: {error.strerror or type(error).__name__}",
            hint="check free space and permissions of the output and run directories",
        ) from None
    # Each output's data was synced before its rename; one sync here makes all the
    # renames durable, instead of one directory fsync per file (io.grouped).
    sync_file_system(settings.worker.out_dir)
    summary = builder.summary(time.perf_counter() - started, _run_facts(settings, jobs))
    write_atomic(report_path(settings.run_dir), encode_report(builder.report(summary)))
    return summary


EVENTS_NAME = "events.jsonl"


def events_path(run_dir: Path) -> Path:
    """Where the sanitize verdict events of a run go (JSON lines)."""
    return run_dir / EVENTS_NAME


def _prepare_dir(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"cannot create the {what} directory {path}: {error.strerror}", hint="choose a writable location"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"the {what} directory {path} is not writable", hint="choose a writable location")


def _results(
    items: Sequence[InputItem], settings: RunSettings, jobs: int, observer: Observer | None
) -> Iterator[FileResult]:
    if jobs == 1:
        ctx = build_context(settings.worker)
        _freeze_heap()
        if observer is not None:
            observer.start(len(items))
        try:
            for chunk in _chunks(list(enumerate(items)), _IN_PROCESS_CHUNK):
                yield from process_chunk(chunk, ctx)
        finally:
            ctx.close()
            gc.unfreeze()  # a long-lived caller (a service, a Dask task) gets its collector back
        return
    yield from _pooled(items, settings, jobs, observer)


_IN_PROCESS_CHUNK = 64


def _chunks(tasks: list[tuple[int, InputItem]], size: int) -> Iterator[list[tuple[int, InputItem]]]:
    for start in range(0, len(tasks), size):
        yield tasks[start : start + size]


def _pooled(
    items: Sequence[InputItem], settings: RunSettings, jobs: int, observer: Observer | None
) -> Iterator[FileResult]:
    claims = Path(tempfile.mkdtemp(prefix=".claims-", dir=_claims_parent(settings.run_dir)))
    worker = replace(settings.worker, claims_dir=claims)
    # Small chunks: few IPC round trips, yet no long tail when one worker gets the big files.
    chunksize = max(1, min(8, len(items) // (jobs * 16)))
    try:
        # The first file is done here, before forking: lazy imports, the policy's
        # tables and codec caches are then warm in every worker instead of built by each.
        first_ctx = build_context(worker)
        first = process_chunk([(0, items[0])], first_ctx)[0]
        first_ctx.close()  # its output is on disk (and sealed) before the workers start
        _freeze_heap()  # before forking: the workers inherit the frozen heap
        # The workers are started before the observer starts its own threads (fork safety).
        functions = WorkerFunctions(_init_worker, worker, _run_chunk, _close_worker)
        with Pool(jobs, functions, _mp_context()) as pool:
            if observer is not None:
                observer.start(len(items))
            yield first
            # Workers commit their last group when the pool closes; an error there is raised
            # by the pool with its type and reference (a worker that dies: worker-died).
            for results in pool.imap_unordered(_chunks(list(enumerate(items[1:], start=1)), chunksize)):
                yield from results
            # Every input is claimed by now: the claims go while the workers commit their last group.
            pool.stop()
            shutil.rmtree(claims, ignore_errors=True)
    finally:
        shutil.rmtree(claims, ignore_errors=True)
        gc.unfreeze()


_SHARED_MEMORY = Path("/dev/shm")  # a private mkdtemp directory (mode 0700) is made inside it


def _claims_parent(run_dir: Path) -> Path:
    """Where workers claim outputs: shared memory when there is some, else the run directory.

    A claim is one empty file created with O_EXCL; on a journaling disk each
    creation can wait for the journal commits of the outputs being synced,
    on tmpfs it never does. The directory lives for one run only.
    """
    if _SHARED_MEMORY.is_dir() and os.access(_SHARED_MEMORY, os.W_OK | os.X_OK):
        return _SHARED_MEMORY
    return run_dir


def _freeze_heap() -> None:
    """Move every object alive now (modules, tables, the policy) out of the collector's sight.

    Each instance allocates thousands of short-lived objects, which triggers
    full collections; without this, each one traverses pydicom's dictionaries
    and the policy tables again (gc.freeze, made for exactly this in servers).
    No collection first, as the :func:`gc.freeze` documentation advises before
    a fork (freed holes in the parent's pages are copied into each worker):
    start-up runs with the collector paused (``cli._common.collector_paused``)
    and leaves next to no garbage; a full collection here found none and cost
    25 ms of the run's serial start (docs/benchmarks.md).
    """
    gc.freeze()


def _mp_context() -> multiprocessing.context.BaseContext:
    # fork is fastest (workers inherit imported modules) but unsafe once threads exist.
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _init_worker(settings: WorkerSettings) -> None:
    global _CONTEXT
    _CONTEXT = build_context(settings)


def _close_worker() -> None:
    """Commit the worker's last group (and seal it); an error goes back to the parent, typed."""
    if _CONTEXT is not None:
        _CONTEXT.close()


def _run_chunk(tasks: list[tuple[int, InputItem]]) -> list[FileResult]:
    if _CONTEXT is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker used before its initializer ran")
    # Groups commit in the background while the next chunks are processed; a failure
    # surfaces with a later commit, and the last group commits when the pool closes.
    return process_chunk(tasks, _CONTEXT)


def _run_facts(settings: RunSettings, jobs: int) -> dict[str, Any]:
    worker = settings.worker
    if not worker.deidentify:
        return {
            "jobs": jobs,
            "command": "sanitize",
            "output": str(worker.out_dir),
            "run_dir": str(settings.run_dir),
            "quarantine": str(worker.quarantine_dir),
            "report": str(report_path(settings.run_dir)),
            "events": str(events_path(settings.run_dir)),
        }
    return {
        "jobs": jobs,
        "layout": worker.layout.value,
        "uid_conflict_resolution": worker.on_conflict.value,
        "domain": worker.domain,
        "options": sorted(option.value for option in worker.policy.options),
        "key_id": worker.key.key_id,
        "ephemeral_key": worker.key.ephemeral,
        "output": str(worker.out_dir),
        "run_dir": str(settings.run_dir),
        "quarantine": str(worker.quarantine_dir),
        "report": str(report_path(settings.run_dir)),
        "sealing": _seal_facts(worker),
    }


def _seal_facts(worker: WorkerSettings) -> dict[str, Any]:
    """How originals were sealed: recipients count and the vault's database kind (never its URL)."""
    seal = worker.seal
    if seal is None:
        return {"embedded_recipients": 0, "vault": None}
    dialect = None if seal.vault_url is None else seal.vault_url.split(":", 1)[0]
    return {"embedded_recipients": len(seal.recipients), "vault": dialect}
