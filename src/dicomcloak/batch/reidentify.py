"""Re-identify many files: read, restore (embedded or vault), write atomically in a mirrored layout.

The same conventions as ``deid`` (architecture.md decision 6): inputs never
modified, outputs under their final name only when complete, unreadable
inputs quarantined with a reason code, the walk's skips counted, a
``report.json`` in the run's own folder of the run directory (and no
re-identified file written into an output made by another command,
:mod:`dicomcloak.batch.rundir`). A :class:`~dicomcloak.errors.SealError` (wrong key, tampered or
missing sealed originals) is not a quarantine: it stops the run, and nothing
is written for that input (fail closed).

One process for ``jobs=1``; several share the work through the project's
process pool, as ``deid``'s do (:mod:`dicomcloak.batch.restoring` holds the
per-file step and the workers' side; architecture.md decision 8). A
:class:`~dicomcloak.batch.selection.Selection` restores part of a tree: the
other inputs are counted ``not-selected`` among the skipped ones.

What comes back from outside (an AI result, a partner's SEG or SR) is as
untrusted as anything else: every input goes through the sanitize stage
(content disarm and reconstruction, architecture.md decision 5) before restoring,
under the policy given (the same private-element rules as ``deid``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicomcloak.batch.debris import remove_debris, tidy_trees
from dicomcloak.batch.htmlreport import html_report_path, write_html_report
from dicomcloak.batch.pool import Pool, WorkerFunctions
from dicomcloak.batch.report import ReportBuilder, RunSummary, encode_report
from dicomcloak.batch.restoring import (
    SEALER,
    TRUST,
    EmbeddedKeys,
    FileTask,
    ReidFile,
    RestoreContext,
    RestoreSettings,
    VaultKeys,
    close_worker,
    init_worker,
    restore_chunk,
    restore_data,
    run_chunk,
)
from dicomcloak.batch.run import _mp_context, prepare_dir, quarantine_refused
from dicomcloak.batch.rundir import RunFolder, begin_run, check_made_alike, finish_run
from dicomcloak.batch.sealing import recorded_head
from dicomcloak.batch.selection import NOT_SELECTED, Selection
from dicomcloak.batch.worker import without_input_names
from dicomcloak.errors import OutputError
from dicomcloak.io.grouped import sync_file_system
from dicomcloak.io.inputs import InputItem, Refused, Skipped, WalkEntry
from dicomcloak.policy.model import Policy

__all__ = ["REID_SCHEMA", "ReidKeys", "ReidSettings", "restore_data", "run_reid"]

REID_SCHEMA = "dicomcloak/reid-summary/1"

#: The keys a run restores with: the owner's (embedded) or the vault's; picklable, for the workers.
ReidKeys = EmbeddedKeys | VaultKeys


@dataclass(frozen=True)
class ReidSettings:
    """One re-identification run."""

    out_dir: Path
    run_dir: Path
    quarantine_dir: Path
    several_roots: bool = False
    policy: Policy = field(default_factory=Policy)  # its private rules, limits and content choices
    facts: dict[str, Any] = field(default_factory=dict)  # mode facts for the summary (no secrets)
    history: tuple[Path, ...] = ()  # other run directories that may hold runs into out_dir
    audit_url: str | None = None  # where the run is audited: its head goes into the report
    jobs: int = 1  # worker processes (1: this process)
    selection: Selection = field(default_factory=Selection)  # what to restore (empty: everything)

    def restoring(self) -> RestoreSettings:
        """What each worker needs of these settings."""
        return RestoreSettings(
            self.out_dir, self.quarantine_dir, self.policy, self.several_roots, self.selection
        )


def run_reid(inputs: Iterable[WalkEntry], keys: ReidKeys, settings: ReidSettings) -> RunSummary:
    """Re-identify every selected input into ``settings.out_dir``; write the run's report; return its summary.

    ``keys`` open a :class:`~dicomcloak.api.Reidentifier` in each process that
    restores: this one for ``jobs=1``, each worker's otherwise.
    """
    started = time.perf_counter()
    entries = list(inputs)
    folder = _begin(settings)
    builder = ReportBuilder()
    modes: Counter[str] = Counter()  # files per mode, and the "unbound" and "unverified" ones
    tasks = [(index, entry) for index, entry in enumerate(entries) if isinstance(entry, InputItem)]
    jobs = max(1, min(settings.jobs, len(tasks)))
    try:
        try:
            _walk_entries(entries, builder, settings)
            for file in _restored(tasks, keys, settings, jobs):
                _count(file, builder, modes)
        except OSError as error:
            raise OutputError(f"cannot write: {error.strerror or type(error).__name__}") from None
    except OutputError as error:  # the outputs and the quarantine mirror the inputs' paths
        raise without_input_names(error, settings.quarantine_dir, settings.out_dir) from None
    sync_file_system(settings.out_dir)
    facts = _facts(settings, folder, modes, jobs, builder.skip_reasons[NOT_SELECTED])
    summary = builder.summary(time.perf_counter() - started, facts)
    document = builder.report(summary)
    finish_run(folder, encode_report(document))
    write_html_report(folder, builder, document)  # the same page as deid's (docs/reports.md)
    tidy_trees(settings.out_dir, settings.run_dir, settings.quarantine_dir)
    return summary


def _walk_entries(entries: list[WalkEntry], builder: ReportBuilder, settings: ReidSettings) -> None:
    """Count the walk's skips; quarantine its refusals (a zip-slip member is never restored)."""
    for index, entry in enumerate(entries):
        if isinstance(entry, Skipped):
            builder.skip(index, entry.reason)
        elif isinstance(entry, Refused):
            builder.add(quarantine_refused(index, entry, settings.quarantine_dir))


def _count(file: ReidFile, builder: ReportBuilder, modes: Counter[str]) -> None:
    if file.result is None:
        builder.skip(file.entry, NOT_SELECTED)
    else:
        builder.add(file.result)
        modes.update(file.modes)


def _restored(tasks: list[FileTask], keys: ReidKeys, settings: ReidSettings, jobs: int) -> Iterator[ReidFile]:
    """Each input's outcome, in this process or from the pool's workers (in completion order).

    What was restored before a failure is complete and kept: each process
    commits its last group of outputs whatever stopped it.
    """
    if jobs > 1:
        yield from _pooled(tasks, keys, settings.restoring(), jobs)
        return
    ctx = RestoreContext.build(keys, settings.restoring())
    try:
        for start in range(0, len(tasks), _IN_PROCESS_CHUNK):
            yield from restore_chunk(tasks[start : start + _IN_PROCESS_CHUNK], ctx)
    finally:
        ctx.close()


_IN_PROCESS_CHUNK = 64


def _pooled(
    tasks: list[FileTask], keys: ReidKeys, restoring: RestoreSettings, jobs: int
) -> Iterator[ReidFile]:
    """The pool's results: each worker builds its context from ``keys`` in the initializer (never argv).

    Small chunks, as ``deid``'s (batch/run.py): few round trips, and no long
    tail when one worker gets the big files. A worker's error (a SealError:
    fail closed) is raised here with its type and reference, once every
    worker has committed what it restored.
    """
    chunksize = max(1, min(8, len(tasks) // (jobs * 16)))
    chunks = (tasks[start : start + chunksize] for start in range(0, len(tasks), chunksize))
    functions = WorkerFunctions(init_worker, (keys, restoring), run_chunk, close_worker)
    pool: Pool[list[FileTask], list[ReidFile]] = Pool(jobs, functions, _mp_context())
    with pool:
        for files in pool.imap_unordered(chunks):
            yield from files


def _begin(settings: ReidSettings) -> RunFolder:
    """As ``deid`` does: refuse an output another command made, make the directories, record the run."""
    facts: dict[str, Any] = {"command": "reid"}
    check_made_alike(settings.out_dir, facts, [settings.run_dir, *settings.history])
    prepare_dir(settings.run_dir, "run", "--run-dir (it holds the reports and the quarantine)", private=True)
    prepare_dir(settings.out_dir, "output", "--out")
    remove_debris(settings.out_dir, settings.run_dir, settings.quarantine_dir)
    return begin_run(settings.run_dir, settings.out_dir, facts)


def _facts(
    settings: ReidSettings, folder: RunFolder, modes: Counter[str], jobs: int, not_selected: int
) -> dict[str, Any]:
    trust = {name: modes.pop(name, 0) for name in TRUST}
    sealers = {name[len(SEALER) :]: modes.pop(name) for name in list(modes) if name.startswith(SEALER)}
    return {
        "schema": REID_SCHEMA,
        "command": "reid",
        "jobs": jobs,
        "modes": dict(sorted(modes.items())),
        **trust,
        "sealers": dict(sorted(sealers.items())),
        "not_selected": not_selected,
        "output": str(settings.out_dir),
        "run_dir": str(settings.run_dir),
        "quarantine": str(settings.quarantine_dir),
        "report": str(folder.report),
        "html_report": str(html_report_path(folder)),
        "audit": recorded_head(settings.audit_url),
        **settings.facts,
    }
