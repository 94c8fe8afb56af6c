"""What a batch could not place: inputs reported written whose outputs are not on disk; why it stopped.

A worker reports an input ``written`` as soon as its output is handed to the
writer, before the output's group is sealed and renamed into place
(:mod:`dicomcloak.io.grouped`: no output appears unless its originals are
sealed). When a group cannot be sealed or committed (a vault that stays
busy, is lost, full or broken; a full output disk) its files are removed and
the error stops the run. The report must then count what is on disk, not what
was submitted, so the run collects here, from the in-process context and
from every pool worker's last message, the inputs whose outputs were not
placed (the writer's ``unplaced``); the results of tasks still in flight
when a failed pool closed are still counted (their outputs may be on disk). The report then
moves those inputs to ``unwritten`` (:meth:`dicomcloak.batch.report.ReportBuilder.unplaced`).

This corrects counts after the fact rather than holding every result until
its group commits: results keep flowing to the progress bar and the events
file as files are processed, and a run that completes needs no correction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicomcloak.batch.pool import Pool
from dicomcloak.batch.report import ReportBuilder
from dicomcloak.batch.worker import FileResult, WorkerContext
from dicomcloak.errors import DicomcloakError

__all__ = ["Placement", "stopped_facts", "with_report"]


@dataclass
class Placement:
    """The inputs whose outputs a run could not place, gathered from every writer of the run.

    ``unplaced`` maps an input's index to its output's size in bytes;
    ``complete`` is False when a worker died without saying (its last group's
    outputs are then unknown).
    """

    unplaced: dict[int, int] = field(default_factory=dict)
    complete: bool = True

    @contextmanager
    def closing(self, ctx: WorkerContext) -> Iterator[WorkerContext]:
        """Close ``ctx`` (its last group commits) when the block ends, and note what it could not place.

        If the block raised, that error wins over any error of the close.
        """
        try:
            yield ctx
        except BaseException:
            self._close(ctx, quiet=True)
            raise
        self._close(ctx, quiet=False)

    def _close(self, ctx: WorkerContext, *, quiet: bool) -> None:
        try:
            ctx.close()
        except Exception:
            if not quiet:
                raise
        finally:
            self.unplaced.update(ctx.writer.unplaced)

    def settle(self, pool: Pool[Any, list[FileResult]]) -> list[FileResult]:
        """Take each worker's account (its writer's ``unplaced``) from a closed pool; its leftover results."""
        for account in pool.accounts:
            if account is None:
                self.complete = False
            else:
                self.unplaced.update(account)
        return [result for results in pool.leftovers for result in results]


def stopped_facts(error: DicomcloakError | None, builder: ReportBuilder, entries: int) -> dict[str, Any]:
    """The summary's ``stopped`` entry (none for a run that finished): the error's reference and message
    (never values), how many inputs went unwritten, how many of the walk's ``entries`` were not processed."""
    if error is None:
        return {}
    stopped = {"reference": error.reference, "message": error.message, "unwritten": builder.unwritten,
               "not_processed": entries - builder.accounted}
    return {"stopped": stopped}


def with_report(error: DicomcloakError, report: Path) -> DicomcloakError:
    """``error``, its hint naming the stopped run's report (which counts only what is on disk, all sealed)."""
    note = f"the run stopped; {report} counts the outputs it wrote"
    error.hint = f"{error.hint}; {note}" if error.hint else note
    return error
