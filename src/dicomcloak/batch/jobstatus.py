"""What ``dicomcloak job status`` and ``job list`` show: a job's counts, read from its journal.

Read-only and without the job's lock: a run may be writing the journal, and a
WAL reader sees its last commit (:mod:`dicomcloak.batch.journal`). Counts and
run ids only, never an input's name or an element value.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicomcloak.batch.journal import DONE, JOBS_NAME, JOURNAL_NAME, NAME_PATTERN, PENDING, connect, job_dir
from dicomcloak.errors import OutputError, UsageError

__all__ = ["STATUS_SCHEMA", "JobStatus", "job_status", "list_jobs"]

STATUS_SCHEMA = "dicomcloak/job-status/1"


@dataclass(frozen=True)
class JobStatus:
    """What ``dicomcloak job status`` shows: counts and run ids, never names or values."""

    name: str
    created: str
    finished: str
    total: int
    done: int
    pending: int
    outcomes: dict[str, int]
    runs: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``job status --json`` (schema ``dicomcloak/job-status/1``)."""
        return {"schema": STATUS_SCHEMA, "name": self.name, "created": self.created,
                "state": "finished" if self.finished else "unfinished", "finished": self.finished or None,
                "inputs": self.total, "done": self.done, "pending": self.pending,
                "outcomes": dict(sorted(self.outcomes.items())), "runs": self.runs}


def job_status(run_dir: Path, name: str) -> JobStatus:
    """Read a job's journal without its lock (a run may be writing: WAL readers see the last commit).

    Raises
    ------
    UsageError
        ``job-name-invalid``; ``job-unknown``: the run directory holds no such job.
    """
    path = job_dir(run_dir, name) / JOURNAL_NAME
    if not path.is_file():
        raise UsageError(
            f"no job {name} in the run directory {run_dir}",
            reference="job-unknown",
            hint="give the run's --run-dir (or --out); 'dicomcloak job list' names the jobs there",
        )
    try:
        connection = connect(path, read_only=True)
        try:
            return _read_status(connection, name)
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise OutputError(
            f"cannot read the journal of the job {name}: {type(error).__name__}",
            reference="job-journal-unreadable",
            hint="check the run directory's permissions",
        ) from None


def _read_status(db: sqlite3.Connection, name: str) -> JobStatus:
    meta = {str(k): str(v) for k, v in db.execute("SELECT key, value FROM meta")}
    states = {str(s): int(n) for s, n in db.execute("SELECT state, COUNT(*) FROM inputs GROUP BY state")}
    outcomes: dict[str, int] = {}
    for (result,) in db.execute("SELECT result FROM inputs WHERE state = ?", (DONE,)):
        status = str(json.loads(result).get("status", ""))
        outcomes[status] = outcomes.get(status, 0) + 1
    query = "SELECT run, started, ended, outcome FROM runs ORDER BY started, run"
    runs = [{"run": r, "started": s, "ended": e, "outcome": o or "killed or running"}
            for r, s, e, o in db.execute(query)]
    done, pending = states.get(DONE, 0), states.get(PENDING, 0)
    return JobStatus(name, meta.get("created", ""), meta.get("finished", ""), done + pending, done, pending,
                     outcomes, runs)


def list_jobs(run_dir: Path) -> list[str]:
    """The names of the jobs in ``run_dir``, sorted."""
    try:
        names = os.listdir(run_dir / JOBS_NAME)
    except OSError:
        return []
    jobs = (name for name in names if NAME_PATTERN.fullmatch(name))
    return sorted(name for name in jobs if (job_dir(run_dir, name) / JOURNAL_NAME).is_file())
