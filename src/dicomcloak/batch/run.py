"""Run the per-file step over many inputs: in-process for one job, a process pool for several.

Each worker builds its :class:`~dicomcloak.api.Deidentifier` once (the key
arrives through the pool's ``initargs``, never argv or the environment), reads
and writes its files itself, and returns a small :class:`FileResult`. Outputs
do not depend on the job count: the engine is deterministic and a shared claim
directory decides duplicates, so ordering never changes content.

Only input items reach the workers: what the walk skipped is counted here,
and what it refused (zip slip) is quarantined here. Each run writes its own
folder in the run directory (:mod:`dicomcloak.batch.rundir`); a stopped run's
report too, counting what is on disk (:mod:`dicomcloak.batch.placement`).

A run starts by removing what runs killed on this host left behind
(:mod:`dicomcloak.batch.debris`). With a job (``--job``), the journal
decides what is left to do and records each outcome once it is durable
(:mod:`dicomcloak.batch.resume`, docs/jobs.md).
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dicomcloak.batch.claims import make_claims
from dicomcloak.batch.debris import new_claims_dir, remove_debris, tidy_trees
from dicomcloak.batch.htmlreport import html_report_path, write_html_report
from dicomcloak.batch.journal import JobSettings
from dicomcloak.batch.media import media_facts
from dicomcloak.batch.pixelreport import pixel_facts, pixel_report_path
from dicomcloak.batch.placement import Placement, stopped_facts, with_report
from dicomcloak.batch.pool import Pool, WorkerFunctions
from dicomcloak.batch.report import ReportBuilder, RunSummary, encode_report, run_deviations
from dicomcloak.batch.resume import JobRun, Seeds, seed_claims
from dicomcloak.batch.rundir import (
    RunFolder,
    begin_run,
    check_made_alike,
    finish_run,
    policy_fingerprint,
    run_tree,
)
from dicomcloak.batch.sealing import seal_facts
from dicomcloak.batch.worker import (
    FileResult,
    Status,
    WorkerContext,
    WorkerSettings,
    build_context,
    process_chunk,
    without_input_names,
)
from dicomcloak.errors import DicomcloakError, InputError, OutputError
from dicomcloak.io._entries import REFUSALS, UNSAFE_PATH
from dicomcloak.io.grouped import sync_file_system
from dicomcloak.io.inputs import InputItem, Refused, Skipped, WalkEntry
from dicomcloak.io.quarantine import quarantine
from dicomcloak.io.staging import makedirs_private
from dicomcloak.io.tarfiles import release_copies
from dicomcloak.io.writer import atomic_file
from dicomcloak.sanitize import classify_prefix, verdict_event

if TYPE_CHECKING:
    from dicomcloak.batch.cluster_worker import KeyFiles

__all__ = [
    "Observer",
    "RunSettings",
    "default_jobs",
    "made_with",
    "prepare_dir",
    "quarantine_refused",
    "run_batch",
]

_CONTEXT: WorkerContext | None = None  # one per worker process, set by the pool initializer


class Observer(Protocol):
    """Progress hooks (the CLI draws a progress bar with them)."""

    def start(self, total: int) -> None:
        """Called once, when the work is about to begin."""

    def advance(self, result: FileResult) -> None:
        """Called once per finished input, in completion order."""


@dataclass(frozen=True)
class RunSettings:
    """One batch run: what each worker does, where reports go, how many processes.

    ``history``: other run directories where earlier runs into the same output
    may have left their record (:func:`dicomcloak.batch.rundir.begin_run`).
    ``job``: the run works on a resumable job (docs/jobs.md); ``seeds``: the
    claims its earlier runs made, made again before any worker starts (set by
    :func:`run_batch`, :func:`dicomcloak.batch.resume.seed_claims`).
    ``scheduler``: a Dask scheduler's address; the inputs are then processed on
    that cluster, whose workers read the keys from ``key_files``
    (:mod:`dicomcloak.batch.cluster`, docs/cluster.md).
    """

    worker: WorkerSettings
    run_dir: Path
    jobs: int = 1
    history: tuple[Path, ...] = ()
    scheduler: str | None = None
    key_files: KeyFiles | None = None
    job: JobSettings | None = None
    seeds: Seeds | None = None


def default_jobs() -> int:
    """All local cores this process may use (architecture.md decision 8; honours CPU affinity)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


#: One task for a worker: an input item and its index in the walk's order.
Task = tuple[int, InputItem]


def run_batch(
    inputs: Iterable[WalkEntry], settings: RunSettings, observer: Observer | None = None
) -> RunSummary:
    """Process every input the walk yields; write this run's report in its run folder; return the summary.

    Entries the walk skipped are counted with their reason and refused ones
    quarantined here, never sent to a worker; every other item goes to the
    workers. Before anything is written, an output made differently is
    refused (``output-made-differently``, :mod:`dicomcloak.batch.rundir`).
    The error that stops a run (``vault-busy`` ...) is raised once its report is written.
    A job (``settings.job``) that finished earlier is not run again: its
    summary is returned, with ``job.nothing_to_do``, and nothing is written.
    """
    entries = list(inputs)
    started = time.perf_counter()
    facts = made_with(settings.worker)
    job = None if settings.job is None else _open_job(settings, settings.job, facts, entries)
    if job is None:
        return _run(entries, settings, facts, started, observer, None)
    outcome = "stopped"
    try:
        if job.nothing_to_do:
            release_copies()  # a compressed tar the walk inflated (io.tarfiles)
            tidy_trees(settings.worker.out_dir, settings.run_dir, settings.worker.quarantine_dir)
            return job.finished_summary(entries, settings.run_dir, time.perf_counter() - started)
        summary = _run(entries, settings, facts, started, observer, job)
        outcome = "finished"
        return summary
    finally:
        job.close(outcome)


def _run(
    entries: list[WalkEntry], settings: RunSettings, facts: dict[str, Any], started: float,
    observer: Observer | None, job: JobRun | None,
) -> RunSummary:
    folder = _begin(settings, facts)
    tasks = [(index, entry) for index, entry in enumerate(entries) if isinstance(entry, InputItem)]
    builder = ReportBuilder(run_deviations(settings.worker))
    if job is not None:  # only what earlier runs did not do; their claims and outcomes carried over
        job.begin(folder.run_id)
        tasks = job.pending(tasks)
        settings = replace(settings, seeds=job.seeds())
        job.replay(builder)
    jobs = max(1, min(settings.jobs, len(tasks)))
    settings = replace(settings, worker=replace(settings.worker, workers=jobs))
    stopped = _process(entries, tasks, settings, jobs, folder, builder, observer, job)
    # Each output's data was synced before its rename; one sync here makes all the
    # renames durable, instead of one directory fsync per file (io.grouped).
    sync_file_system(settings.worker.out_dir)
    run = _run_facts(settings, folder, facts, jobs) | stopped_facts(stopped, builder, len(entries))
    run |= media_facts(entries, settings.worker, stopped is not None)  # a DICOMDIR for a media set's outputs
    if job is not None:
        job.flush(last=True)
        run |= job.facts()
    summary = builder.summary(time.perf_counter() - started, run, len(entries))
    document = builder.report(summary)
    finish_run(folder, encode_report(document))
    write_html_report(folder, builder, document)  # report.html, after the record (docs/reports.md)
    release_copies()  # the inflated copies of compressed tars (io.tarfiles)
    tidy_trees(settings.worker.out_dir, settings.run_dir, settings.worker.quarantine_dir)
    if stopped is not None:
        raise with_report(stopped, folder.report)
    return summary


def _open_job(
    settings: RunSettings, job: JobSettings, facts: dict[str, Any], entries: list[WalkEntry]
) -> JobRun:
    """Open the job's journal in the run directory (made first: it is private, 0700)."""
    prepare_dir(settings.run_dir, "run", "--run-dir (it holds the reports and the quarantine)", private=True)
    return JobRun.open(settings.run_dir, job, facts, settings.worker, entries)


def _begin(settings: RunSettings, facts: dict[str, Any]) -> RunFolder:
    """Refuse an output made differently, make the directories, then record this run (in that order).

    Both directories exist before the run is recorded: a run refused here
    leaves no record that a later run into the same output would have to match.
    """
    out = settings.worker.out_dir
    check_made_alike(out, facts, [settings.run_dir, *settings.history])
    prepare_dir(settings.run_dir, "run", "--run-dir (it holds the reports and the quarantine)", private=True)
    prepare_dir(out, "output", "--out")
    remove_debris(out, settings.run_dir, settings.worker.quarantine_dir)
    return begin_run(settings.run_dir, out, facts)


def _process(
    entries: Sequence[WalkEntry],
    tasks: list[Task],
    settings: RunSettings,
    jobs: int,
    folder: RunFolder,
    builder: ReportBuilder,
    observer: Observer | None,
    job: JobRun | None = None,
) -> DicomcloakError | None:
    """Account for the walk's entries, process its items, write one verdict event per input judged.

    Returns the error that stopped the run, what it left counted (raised if unknown: worker-died).
    A job records each outcome (it marks them done once durable).
    """
    placement = Placement()
    stopped: DicomcloakError | None = None
    try:
        # One sanitize verdict event per input (tags and codes only), in completion order.
        with atomic_file(folder.events, tree=run_tree(folder.run_dir)) as events:
            for result in _walk_results(entries, builder, settings.worker):
                events.write(result.event.encode("utf-8") + b"\n")
            try:
                for result in _results(tasks, settings, jobs, observer, placement):
                    builder.add(result)
                    if job is not None:
                        job.record(result)
                    if result.event:
                        events.write(result.event.encode("utf-8") + b"\n")
                    if observer is not None:
                        observer.advance(result)
            except DicomcloakError as error:
                if not placement.complete:
                    raise
                stopped = error
            builder.unplaced(placement.unplaced, stopped.reference if stopped else "output-not-placed")
    except OSError as error:
        raise OutputError(
            f"cannot write: {error.strerror or type(error).__name__}",
            hint="check free space and permissions of the output and run directories",
        ) from None
    return stopped


def made_with(worker: WorkerSettings) -> dict[str, Any]:
    """What decides an output's content, compared with earlier runs into the same output (no secrets)."""
    if not worker.deidentify:
        return {"command": "sanitize", "policy_sha256": policy_fingerprint(worker.policy)}
    return {
        "command": "deid",
        "key_id": worker.key.key_id,
        "domain": worker.domain,
        "layout": worker.layout.value,
        "options": sorted(option.value for option in worker.policy.options),
        "policy_sha256": policy_fingerprint(worker.policy),
        **pixel_facts(worker),
    }


def _walk_results(
    entries: Sequence[WalkEntry], builder: ReportBuilder, worker: WorkerSettings
) -> Iterator[FileResult]:
    """Count the walk's skips; quarantine its refusals (yielded, for their events)."""
    for index, entry in enumerate(entries):
        if isinstance(entry, Skipped):
            builder.skip(index, entry.reason)
        elif isinstance(entry, Refused):
            result = quarantine_refused(index, entry, worker.quarantine_dir)
            builder.add(result)
            yield result


def quarantine_refused(index: int, entry: Refused, quarantine_dir: Path) -> FileResult:
    """Quarantine an input the walk refused, as a worker quarantines one it cannot process.

    The member's name is an input's own (it may hold a patient's name): a
    failure to write names the quarantine directory only.
    """
    message, hint = REFUSALS.get(entry.reason, REFUSALS[UNSAFE_PATH])
    error = InputError(message, reference=entry.reason, hint=hint)
    try:
        quarantine(entry.item, error, quarantine_dir)
    except OutputError as failure:
        raise without_input_names(failure, quarantine_dir, None) from None
    event = verdict_event(index, entry.reason, classify_prefix(_head(entry.item)))
    line = json.dumps(event, sort_keys=True, separators=(",", ":"))
    return FileResult(index, Status.QUARANTINED, entry.reason, event=line)


def _head(item: InputItem) -> bytes:
    """The first 132 bytes of an input (preamble and ``DICM``), for its verdict event."""
    try:
        with item.open() as handle:
            return handle.read(132)
    except (InputError, OSError):
        return b""


def prepare_dir(path: Path, what: str, option: str, *, private: bool = False) -> None:
    """Create ``path`` if needed and check it is writable; the hint names the command-line ``option``.

    ``private``: the directories created are mode 0700, whatever the umask
    (the run directory holds the quarantine, the reports).
    """
    hint = f"choose a writable {option}"
    try:
        if private:
            makedirs_private(path)
        else:
            path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create the {what} directory {path}: {error.strerror}", hint=hint) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"the {what} directory {path} is not writable", hint=hint)


def _results(
    tasks: list[Task], settings: RunSettings, jobs: int, observer: Observer | None, placement: Placement
) -> Iterator[FileResult]:  # what the writers could not place is noted in ``placement`` as they close
    if settings.scheduler is not None:
        from dicomcloak.batch.cluster import cluster_results  # distributed is imported only then

        yield from cluster_results(tasks, settings, observer, placement)
        return
    if jobs == 1:
        ctx = build_context(settings.worker)
        seed_claims(ctx.claims, settings.seeds)
        _freeze_heap()
        if observer is not None:
            observer.start(len(tasks))
        try:
            with placement.closing(ctx):
                for chunk in _chunks(tasks, _IN_PROCESS_CHUNK):
                    yield from process_chunk(chunk, ctx)
        finally:
            gc.unfreeze()  # a long-lived caller (a service, a Dask task) gets its collector back
        return
    yield from _pooled(tasks, settings, jobs, observer, placement)


_IN_PROCESS_CHUNK = 64


def _chunks(tasks: list[Task], size: int) -> Iterator[list[Task]]:
    for start in range(0, len(tasks), size):
        yield tasks[start : start + size]


def _pooled(
    tasks: list[Task], settings: RunSettings, jobs: int, observer: Observer | None, placement: Placement
) -> Iterator[FileResult]:
    claims = new_claims_dir(settings.run_dir)
    worker = replace(settings.worker, claims_dir=claims)
    seed_claims(make_claims(claims), settings.seeds)
    # Small chunks: few IPC round trips, yet no long tail when one worker gets the big files.
    chunksize = max(1, min(8, len(tasks) // (jobs * 16)))
    try:
        # The first file is done here, before forking: lazy imports, the policy's
        # tables and codec caches are then warm in every worker instead of built by each.
        first_ctx = build_context(worker)
        with placement.closing(first_ctx):  # its output is on disk (and sealed) before the workers start
            first = process_chunk(tasks[:1], first_ctx)
        _freeze_heap()  # before forking: the workers inherit the frozen heap
        # The workers are started before the observer starts its own threads (fork safety).
        functions = WorkerFunctions(_init_worker, worker, _run_chunk, _close_worker, _worker_account)
        pool: Pool[list[Task], list[FileResult]] = Pool(jobs, functions, _mp_context())
        try:
            with pool:
                if observer is not None:
                    observer.start(len(tasks))
                yield from first
                # Workers commit their last group when the pool closes; an error there is raised
                # by the pool with its type and reference (a worker that dies: worker-died).
                for results in pool.imap_unordered(_chunks(tasks[1:], chunksize)):
                    yield from results
                # Every input is claimed by now: the claims go while the workers commit their last group.
                pool.stop()
                shutil.rmtree(claims, ignore_errors=True)
        except DicomcloakError:
            yield from placement.settle(pool)  # the results of tasks in flight when the run stopped
            raise
        placement.settle(pool)  # what each worker could not place
    finally:
        shutil.rmtree(claims, ignore_errors=True)
        gc.unfreeze()


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


def _worker_account() -> dict[int, int]:
    """What this worker could not place (input index -> bytes), sent to the parent with its last message."""
    return {} if _CONTEXT is None else _CONTEXT.writer.unplaced


def _run_chunk(tasks: list[Task]) -> list[FileResult]:
    if _CONTEXT is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker used before its initializer ran")
    # Groups commit in the background while the next chunks are processed; a failure
    # surfaces with a later commit, and the last group commits when the pool closes.
    return process_chunk(tasks, _CONTEXT)


def _run_facts(
    settings: RunSettings, folder: RunFolder, facts: dict[str, Any], jobs: int
) -> dict[str, Any]:
    """The summary's facts about the run: where things went, and what it was made with."""
    worker = settings.worker
    places = {
        "output": str(worker.out_dir),
        "run_dir": str(settings.run_dir),
        "quarantine": str(worker.quarantine_dir),
        "report": str(folder.report),
        "html_report": str(html_report_path(folder)),
    }
    if settings.scheduler is not None:  # the workers were the cluster's, not `jobs` local processes
        places["dask_scheduler"] = settings.scheduler
    if not worker.deidentify:
        return {"jobs": jobs, **facts, **places, "events": str(folder.events)}
    sealing = seal_facts(worker.seal, settings.run_dir)
    conflicts = worker.on_conflict.value
    made = {**facts, "uid_conflict_resolution": conflicts, "ephemeral_key": worker.key.ephemeral}
    pixel_report = pixel_report_path(folder, worker)
    if pixel_report is not None:
        places["pixel_report"] = str(pixel_report)
    return {"jobs": jobs, **made, **places, "sealing": sealing}
