"""Progress where no bar is drawn (``--json``, or stderr not a terminal): a JSON line now and then.

Each line is ``{"progress": {"done": .., "total": .., "rate": .., "eta_s": ..}}``
on stderr: counts and files per second only, never an input's name or an
outcome's details (architecture.md decision 7), so logs collected from a
scheduler hold no PHI. docs/jobs.md, "Progress".
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from dicomcloak.batch.worker import FileResult

__all__ = ["DEFAULT_INTERVAL", "ProgressIntervalArg", "ProgressLines", "progress_facts"]

#: Seconds between two progress lines by default.
DEFAULT_INTERVAL = 10.0

ProgressIntervalArg = Annotated[
    float,
    typer.Option(
        "--progress-interval",
        min=0.1,
        help="Seconds between progress lines on stderr when no progress bar is drawn (--json, or not a "
        "terminal): JSON counts, rate and ETA only.",
    ),
]


def progress_facts(done: int, total: int, seconds: float) -> dict[str, float | int | None]:
    """Counts, files per second and the estimated seconds left (None until the rate is known)."""
    rate = done / seconds if seconds > 0 else 0.0
    eta = round((total - done) / rate, 1) if rate > 0 else None
    return {"done": done, "total": total, "rate": round(rate, 2), "eta_s": eta}


class ProgressLines:
    """An observer of a batch run (:class:`dicomcloak.batch.run.Observer`): a JSON line every ``interval`` s.

    Lines are written from the run's own loop as results arrive (no thread:
    the run forks its workers), so a pause between two results longer than the
    interval delays the next line until the next result.
    """

    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        self.interval = interval
        self.total = self.done = 0
        self._started = self._last = 0.0

    def start(self, total: int) -> None:
        """The run begins with ``total`` inputs to process."""
        self.total = total
        self._started = self._last = time.monotonic()

    def advance(self, result: FileResult) -> None:
        """One more input done; a line when the interval has passed."""
        self.done += 1
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.emit(now)

    def emit(self, now: float | None = None) -> None:
        """Write one progress line on stderr."""
        seconds = (now or time.monotonic()) - self._started
        line = json.dumps({"progress": progress_facts(self.done, self.total, seconds)}, sort_keys=True)
        print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        """Nothing to stop (the last line was written as results came)."""
