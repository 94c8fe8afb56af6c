"""A job's part in one run: what is left to do, the claims and report carried over, each outcome journaled.

With ``--job NAME`` a run works through :class:`JobRun` (docs/jobs.md):

* **what is left**: inputs the journal marks done never reach a worker;
* **claims carried over** (:mod:`dicomcloak.batch.claims`): claims are made
  per run, so each input an earlier run wrote claims its instance (and, in the
  mirror layout, its path) again before any worker starts. A later input of
  that instance is then still judged a duplicate or a UID conflict, and never
  overwrites the first output (architecture.md decision 9). The first input is
  read again when a content comparison needs it; one that is no longer among
  the inputs cannot be compared, so the later one is a UID conflict, never merged;
* **the whole job's report**: the journal's outcomes are replayed into the
  :class:`~dicomcloak.batch.report.ReportBuilder`, so ``report.json`` counts
  every input of the job once, and says which runs made it;
* **done only when durable**: a worker reports an input written when its
  output is handed to its writer, which renames it into place later, with
  its group, after sealing the group's vault records (architecture.md
  decision 6). Outcomes are therefore held here, per chunk of work, until
  every output of the chunk is found under its final name; the file system
  is then synced and the chunk marked done, with its change counts, in one
  transaction. A chunk is the unit because a worker sums a chunk's change
  counts into its last result (:func:`~dicomcloak.batch.worker.process_chunk`,
  ``FileResult.chunk``); marking its inputs done together keeps the job's
  change counts exact whatever is killed when.

A run killed between an output's rename and its chunk's commit leaves that
input pending: the next run processes it again and rewrites the same bytes
(an embedded seal is made anew, still bound to the output; a vault record
with the same key is replaced, never added twice).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicomcloak.batch.claims import Claims
from dicomcloak.batch.journal import Done, JobSettings, Journal, identity
from dicomcloak.batch.report import ReportBuilder, RunSummary
from dicomcloak.batch.worker import FileResult, Layout, Status, WorkerSettings
from dicomcloak.io.grouped import sync_file_system
from dicomcloak.io.inputs import InputItem, Refused, Skipped, WalkEntry
from dicomcloak.io.layout import mirror_relpath

__all__ = ["FLUSH_SECONDS", "JobRun", "Seeds", "seed_claims"]

#: How often outcomes found durable are committed to the journal (and the output's file system synced):
#: less loses less work to a crash and costs a sync each time (docs/jobs.md,
#: DICOMCLOAK_JOURNAL_FLUSH_SECONDS).
FLUSH_SECONDS = float(os.environ.get("DICOMCLOAK_JOURNAL_FLUSH_SECONDS", "1.0"))

#: An input of an earlier run that is no longer among the inputs: it claims its instance, unreadable.
_GONE = InputItem(Path("."), "(gone)", "(an input of an earlier run of this job, no longer given)", None,
                  Path("/nonexistent/dicomcloak-gone-input"))


@dataclass(frozen=True)
class Seeds:
    """The claims an earlier run of the job made: (instance key, input index, input, digest), output paths.

    A digest of ``b""`` matches no content: an input gone from the inputs is never merged with.
    Paths are claimed in the mirror layout, by ``sanitize``, and for a media set's instances.
    """

    instances: tuple[tuple[str, int, InputItem, bytes | None], ...] = ()
    paths: tuple[str, ...] = ()


def seed_claims(claims: Claims, seeds: Seeds | None) -> None:
    """Make the earlier runs' claims in this run's ``claims`` (before any worker claims anything)."""
    if seeds is None:
        return
    for key, index, item, digest in seeds.instances:
        claims.claim(key, index, item, digest)
    for relpath in seeds.paths:
        claims.claim_path(relpath)


class JobRun:
    """One run's work on a job: opened before the run's folder is made, closed after its last output."""

    def __init__(self, journal: Journal, worker: WorkerSettings, entries: Sequence[WalkEntry],
                 roots: dict[str, str]) -> None:
        self.journal = journal
        self._worker = worker
        self._items = {i: e for i, e in enumerate(entries) if isinstance(e, InputItem)}
        self._ids = {i: identity(roots[os.fspath(e.root)], e) for i, e in self._items.items()}
        self._index = {ident: i for i, ident in self._ids.items()}
        self._done_ids = set(journal.done_ids())
        self._run_id = ""
        self._arrived: dict[int, FileResult] = {}
        self._chunks: list[tuple[int, ...]] = []  # members of chunks whose last result arrived
        self._flushed = time.monotonic()
        self.recorded = 0  # inputs marked done by this run
        self._earlier: Counter[str] = Counter()  # outcomes of earlier runs replayed, by status
        journal.add_inputs(self._ids.values())

    @classmethod
    def open(cls, run_dir: Path, job: JobSettings, made_with: dict[str, Any], worker: WorkerSettings,
             entries: Sequence[WalkEntry]) -> JobRun:
        """Open the job's journal (refusing a mismatch, :meth:`Journal.open`) and note this walk's inputs."""
        journal = Journal.open(run_dir, job, made_with)
        try:
            roots = {os.fspath(e.root): os.path.realpath(e.root) for e in entries if isinstance(e, InputItem)}
            return cls(journal, worker, entries, roots)
        except BaseException:
            journal.close()
            raise

    # -- before the run ---------------------------------------------------------------------------

    @property
    def nothing_to_do(self) -> bool:
        """The job finished earlier and this walk found no input it has not done."""
        return self.journal.finished and all(ident in self._done_ids for ident in self._ids.values())

    @property
    def done_before(self) -> int:
        """Inputs of this walk that earlier runs did."""
        return sum(1 for ident in self._ids.values() if ident in self._done_ids)

    def pending(self, tasks: list[tuple[int, InputItem]]) -> list[tuple[int, InputItem]]:
        """The tasks the journal does not mark done."""
        return [task for task in tasks if self._ids[task[0]] not in self._done_ids]

    def seeds(self) -> Seeds:
        """The claims of the inputs earlier runs wrote (see :class:`Seeds`)."""
        instances: list[tuple[str, int, InputItem, bytes | None]] = []
        paths: list[str] = []
        mirrored = self._mirrored
        for done in self.journal.done():
            index = self._index.get(done.id)
            if done.instance:
                if index is None:
                    instances.append((done.instance, -1, _GONE, b""))
                else:
                    instances.append((done.instance, index, self._items[index], None))
            if index is None or json.loads(done.result)["status"] != Status.WRITTEN:
                continue
            item = self._items[index]
            if mirrored:
                paths.append(mirror_relpath(item, self._worker.several_roots))
            elif item.media:  # a media set's File IDs are claimed as paths too (io.mediaset)
                paths.append(json.loads(done.result)["output"])
        return Seeds(tuple(instances), tuple(paths))

    def replay(self, builder: ReportBuilder) -> None:
        """Count the outcomes of earlier runs (inputs of this walk only) and the job's changes."""
        for done in self.journal.done():
            index = self._index.get(done.id)
            if index is not None:
                result = self._decode(index, done.result)
                builder.add(result)
                self._earlier[result.status.value] += 1
        for path, action, source, count in self.journal.changes():
            builder.changes[(tuple(json.loads(path)), action, source)] += count

    def begin(self, run_id: str) -> None:
        """This run starts working on the job."""
        self._run_id = run_id
        self.journal.begin_run(run_id)

    def finished_summary(self, entries: Sequence[WalkEntry], run_dir: Path, seconds: float) -> RunSummary:
        """The summary of a job that finished earlier, from its journal (``job.nothing_to_do``): nothing
        is processed or written; a zip member the walk refuses was quarantined by the job's first run."""
        builder = ReportBuilder()
        for index, entry in enumerate(entries):
            if isinstance(entry, Skipped):
                builder.skip(index, entry.reason)
            elif isinstance(entry, Refused):
                builder.add(FileResult(index, Status.QUARANTINED, entry.reason))
        self.replay(builder)
        run = {"output": str(self._worker.out_dir), "run_dir": str(run_dir), **self.facts()}
        run["job"]["nothing_to_do"] = True
        return builder.summary(seconds, run, len(entries))

    # -- during the run ---------------------------------------------------------------------------

    def record(self, result: FileResult) -> None:
        """Hold one outcome until its chunk is durable; commit those that are, every :data:`FLUSH_SECONDS`."""
        if result.index not in self._items:  # the walk's refusals: quarantined again by each run
            return
        self._arrived[result.index] = result
        if result.chunk:
            self._chunks.append(result.chunk)
        if time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self.flush()

    def flush(self, *, last: bool = False) -> None:
        """Mark done, in one transaction, every chunk whose outcomes arrived and whose outputs are in place.

        ``last``: the run has ended; outcomes that came without a chunk (a
        caller of :func:`~dicomcloak.batch.worker.process_item`) form one.
        """
        self._flushed = time.monotonic()
        if last:
            grouped = {index for chunk in self._chunks for index in chunk}
            loose = tuple(index for index in self._arrived if index not in grouped)
            if loose:
                self._chunks.append(loose)
        ready: list[tuple[int, ...]] = []
        waiting: list[tuple[int, ...]] = []
        for chunk in self._chunks:
            (ready if self._durable(chunk) else waiting).append(chunk)
        if not ready:
            self._chunks = waiting
            return
        results = [self._arrived.pop(index) for chunk in ready for index in chunk]
        if any(result.status is Status.WRITTEN for result in results):
            sync_file_system(self._worker.out_dir)  # the renames found are durable before they count
        self.journal.mark_done(map(self._encode, results), _changes(results), self._run_id)
        self.recorded += len(results)
        self._chunks = waiting

    def _durable(self, chunk: tuple[int, ...]) -> bool:
        """Every outcome of the chunk arrived, and every output it wrote is under its final name."""
        for index in chunk:
            result = self._arrived.get(index)
            if result is None:
                return False
            if result.status is Status.WRITTEN and not os.path.exists(self._output(result)):
                return False
        return True

    def _output(self, result: FileResult) -> Path:
        if self._mirrored:
            item = self._items[result.index]
            return self._worker.out_dir / mirror_relpath(item, self._worker.several_roots)
        return self._worker.out_dir / result.out_relpath

    @property
    def _mirrored(self) -> bool:
        return not self._worker.deidentify or self._worker.layout is Layout.MIRROR

    # -- after the run ----------------------------------------------------------------------------

    def facts(self) -> dict[str, Any]:
        """The report's ``job`` entry: its name, the runs that made it, whether this run resumed it, how
        many inputs earlier runs did (``earlier``: by outcome) and this run marked done."""
        runs = self.journal.runs()
        earlier = {status.value: self._earlier[status.value] for status in Status}
        return {"job": {"name": self.journal.meta("name"), "runs": runs, "resumed": len(runs) > 1,
                        "done_before": self.done_before, "done_now": self.recorded, "earlier": earlier}}

    def close(self, outcome: str) -> None:
        """Commit what is durable, note how the run ended, release the job."""
        try:
            if self._run_id:
                self.flush(last=True)
                self.journal.end_run(self._run_id, outcome)
        finally:
            self.journal.close()

    # -- encoding ---------------------------------------------------------------------------------

    def _encode(self, result: FileResult) -> Done:
        """The journal row of an outcome: no ``pixel_view`` (PHI), no event; the input it conflicts with by
        identity (indexes change between walks)."""
        conflict = self._ids.get(result.conflict_with) if result.conflict_with >= 0 else None
        document = {"status": result.status.value, "reason": result.reason, "n_changes": result.n_changes,
                    "output": result.out_relpath, "bytes_in": result.bytes_in, "bytes_out": result.bytes_out,
                    "conflict_with": None if conflict is None else conflict.hex(), "pixels": result.pixels,
                    "modality": result.modality}
        instance = result.instance if result.status is Status.WRITTEN and result.instance else None
        return Done(self._ids[result.index], json.dumps(document, sort_keys=True), instance)

    def _decode(self, index: int, text: str) -> FileResult:
        document = json.loads(text)
        first = document.get("conflict_with")
        conflict = -1 if first is None else self._index.get(bytes.fromhex(first), -1)
        return FileResult(index, Status(document["status"]), document["reason"], document["n_changes"],
                          document["output"], document["bytes_in"], document["bytes_out"],
                          conflict_with=conflict, pixels=document["pixels"],
                          modality=document.get("modality", ""))


def _changes(results: list[FileResult]) -> Iterator[tuple[str, str, str, int]]:
    """The change counts the results carry (a chunk's, on its last result), as journal rows."""
    for result in results:
        for (path, action, source), count in result.changes:
            yield json.dumps(list(path)), action, source, count
