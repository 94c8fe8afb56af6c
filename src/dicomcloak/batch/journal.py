"""A job's journal: every input's state and outcome, in SQLite, so a killed run continues where it stopped.

``deid --job NAME`` (and ``sanitize --job NAME``) keep it in the run directory,
never in the output tree (docs/jobs.md)::

    RUN_DIR/jobs/<NAME>/
      journal.sqlite    WAL mode, mode 0600 (the run directory is private)
      lock              locked (POSIX lock) by the one run of the job in progress

One row per input, keyed by its *identity*: SHA-256 (first 16 bytes) of its
resolved input argument, its relative path and its zip member name, stable
across walks (a walk index is not: it is re-assigned by each walk). The
journal holds no input path and no element value: identities are digests,
outcomes are :class:`~dicomcloak.batch.worker.FileResult` fields (codes,
counts, pseudonymous output paths and instance keys; never ``pixel_view``,
the one field with PHI). States: ``pending``, ``done``.

SQLite's own atomic commits make the journal crash-safe; ``synchronous=NORMAL``
in WAL mode may lose the last commits on a power cut, which only means
inputs are processed again (outputs are deterministic). What must never
happen, an input marked done whose output is not durable, is prevented by
the caller (:mod:`dicomcloak.batch.resume`), which marks done only outputs
found in place, after syncing their file system. ``job status`` reads it:
:mod:`dicomcloak.batch.jobstatus`.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicomcloak.errors import OutputError, UsageError
from dicomcloak.io.inputs import InputItem
from dicomcloak.io.staging import makedirs_private

__all__ = [
    "DONE",
    "JOBS_NAME",
    "JOURNAL_NAME",
    "NAME_PATTERN",
    "PENDING",
    "Done",
    "JobSettings",
    "Journal",
    "connect",
    "identity",
    "job_dir",
    "validate_name",
]

JOBS_NAME = "jobs"
JOURNAL_NAME = "journal.sqlite"
SCHEMA = "dicomcloak/job-journal/1"
PENDING, DONE = "pending", "done"

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ID_BYTES = 16  # 128 bits: no collision among any number of inputs a run could see

_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS inputs(id BLOB PRIMARY KEY, state TEXT NOT NULL, result TEXT, "
    "instance TEXT, run TEXT) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS changes(path TEXT NOT NULL, action TEXT NOT NULL, source TEXT NOT NULL, "
    "count INTEGER NOT NULL, PRIMARY KEY(path, action, source)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS runs(run TEXT PRIMARY KEY, started TEXT NOT NULL, ended TEXT, "
    "outcome TEXT) WITHOUT ROWID",
)


@dataclass(frozen=True)
class JobSettings:
    """``--job NAME``: the job, the input arguments it was given (resolved), and ``--force``.

    ``settings`` holds what decides outputs beyond the run's ``made_with``
    facts (the sealing, the UID conflict resolution, following links); the
    caller makes it, without secrets (URLs and certificates as digests).
    """

    name: str
    inputs: tuple[str, ...]
    force: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Done:
    """One input the journal marks done: its identity, its outcome (JSON), its instance key if written."""

    id: bytes
    result: str
    instance: str | None


def validate_name(name: str) -> str:
    """Return ``name`` if it is a job name: 1-64 letters, digits, ``.``, ``_``, ``-``, not starting with
    a punctuation mark (it names a directory of the run directory).

    Raises
    ------
    UsageError
        ``job-name-invalid``.
    """
    if not NAME_PATTERN.fullmatch(name):
        raise UsageError(
            "the job name must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            reference="job-name-invalid",
            hint="for example --job export-2026-12",
        )
    return name


def job_dir(run_dir: Path, name: str) -> Path:
    """``RUN_DIR/jobs/<NAME>``."""
    return run_dir / JOBS_NAME / validate_name(name)


def identity(root: str, item: InputItem) -> bytes:
    """An input's stable identity: digest of its resolved argument ``root``, relative path and zip member."""
    member = "" if item.member is None else "+" + item.member
    text = "\0".join((root, item.relpath, member)).encode("utf-8", "surrogateescape")
    return hashlib.sha256(text).digest()[:_ID_BYTES]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()


class Journal:
    """The open journal of one job, held by one run (its lock) until :meth:`close`."""

    def __init__(self, directory: Path, connection: sqlite3.Connection, lock: int) -> None:
        self.directory = directory
        self._db = connection
        self._lock = lock

    # -- opening ----------------------------------------------------------------------------------

    @classmethod
    def open(cls, run_dir: Path, job: JobSettings, made_with: dict[str, Any]) -> Journal:
        """Open (or create) the journal of ``job``; refuse one made with other inputs or settings.

        ``--force`` starts the job over: its rows are removed, its facts replaced.

        Raises
        ------
        UsageError
            ``job-name-invalid``; ``job-busy`` (another run of the job holds it);
            ``job-mismatch`` (other inputs, or settings that change outputs).
        OutputError
            ``job-journal-unwritable``: the run directory cannot hold it.
        """
        directory = job_dir(run_dir, job.name)
        facts = {"made_with": made_with, "inputs_sha256": _fingerprint(list(job.inputs)),
                 "settings_sha256": _fingerprint(job.settings)}
        try:
            makedirs_private(directory)
            lock = _take_lock(directory / "lock", job.name)
            connection = connect(directory / JOURNAL_NAME)
        except (OSError, sqlite3.Error) as error:
            raise _unwritable(directory, error) from None
        journal = cls(directory, connection, lock)
        try:
            journal._adopt(job, facts)
        except BaseException:
            journal.close()
            raise
        return journal

    def _adopt(self, job: JobSettings, facts: dict[str, Any]) -> None:
        """Record ``facts`` in a new (or forced) journal; else compare them with the recorded ones."""
        recorded = self.meta("facts")
        if recorded is not None and not job.force:
            differing = sorted(_differences(json.loads(recorded), facts))
            if differing:
                raise UsageError(
                    f"the job {job.name} was started with other {', '.join(differing)}",
                    reference="job-mismatch",
                    hint="repeat the job's inputs and options, or start it over with --force, "
                    "or choose a new --job name",
                )
            return
        with self._db:
            if recorded is not None:  # --force: the job starts over
                for table in ("inputs", "changes", "runs", "meta"):
                    self._db.execute(f"DELETE FROM {table}")
            rows = {"schema": SCHEMA, "name": job.name, "created": _now(), "facts": json.dumps(facts),
                    "finished": ""}
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", rows.items())

    # -- reading ----------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        """A meta value (``schema``, ``name``, ``created``, ``facts``, ``finished``), None if unset."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def finished(self) -> bool:
        """True once a run ended with every input of the job done."""
        return bool(self.meta("finished"))

    def done(self) -> Iterator[Done]:
        """Every input marked done, with its outcome."""
        query = "SELECT id, result, instance FROM inputs WHERE state = ?"
        for row in self._db.execute(query, (DONE,)):
            yield Done(bytes(row[0]), str(row[1]), row[2])

    def done_ids(self) -> Iterator[bytes]:
        """The identities of the inputs marked done."""
        for (ident,) in self._db.execute("SELECT id FROM inputs WHERE state = ?", (DONE,)):
            yield bytes(ident)

    def changes(self) -> Iterator[tuple[str, str, str, int]]:
        """The job's aggregated changes: (tag path as JSON, action, rule source, count)."""
        yield from self._db.execute("SELECT path, action, source, count FROM changes")

    def runs(self) -> list[str]:
        """The ids of the runs that worked on the job, oldest first."""
        return [str(row[0]) for row in self._db.execute("SELECT run FROM runs ORDER BY started, run")]

    def counts(self) -> dict[str, int]:
        """Inputs by state."""
        rows = self._db.execute("SELECT state, COUNT(*) FROM inputs GROUP BY state")
        return {str(state): int(count) for state, count in rows}

    # -- writing ----------------------------------------------------------------------------------

    def add_inputs(self, ids: Iterable[bytes]) -> None:
        """Record inputs not yet known as pending (a walk may find inputs an earlier walk did not)."""
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO inputs(id, state) VALUES (?, ?)", ((i, PENDING) for i in ids)
            )

    def begin_run(self, run_id: str) -> None:
        """Note that run ``run_id`` works on the job (the job is not finished while it runs)."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO runs(run, started) VALUES (?, ?)", (run_id, _now()))
            self._db.execute("UPDATE meta SET value = '' WHERE key = 'finished'")

    def mark_done(
        self, done: Iterable[Done], changes: Iterable[tuple[str, str, str, int]], run_id: str
    ) -> None:
        """Mark inputs done and add their changes, in one transaction (all of it, or nothing)."""
        with self._db:
            self._db.executemany(
                "UPDATE inputs SET state = ?, result = ?, instance = ?, run = ? WHERE id = ?",
                ((DONE, d.result, d.instance, run_id, d.id) for d in done),
            )
            self._db.executemany(
                "INSERT INTO changes VALUES (?, ?, ?, ?) ON CONFLICT(path, action, source) "
                "DO UPDATE SET count = count + excluded.count",
                changes,
            )

    def end_run(self, run_id: str, outcome: str) -> None:
        """Note how run ``run_id`` ended; the job is finished when no input is pending any more."""
        with self._db:
            ended = (_now(), outcome, run_id)
            self._db.execute("UPDATE runs SET ended = ?, outcome = ? WHERE run = ?", ended)
            pending = self._db.execute("SELECT COUNT(*) FROM inputs WHERE state = ?", (PENDING,)).fetchone()
            finished = _now() if outcome == "finished" and not pending[0] else ""
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'finished'", (finished,))

    def close(self) -> None:
        """Close the database, then release the job's lock."""
        try:
            self._db.close()
        finally:
            os.close(self._lock)


def _differences(recorded: dict[str, Any], facts: dict[str, Any]) -> Iterator[str]:
    """The names of what differs: ``inputs``, ``settings``, or the ``made_with`` facts (never values)."""
    if recorded.get("inputs_sha256") != facts["inputs_sha256"]:
        yield "inputs"
    if recorded.get("settings_sha256") != facts["settings_sha256"]:
        yield "settings (sealing, --uid-conflicts, --follow-symlinks)"
    was, now = recorded.get("made_with", {}), facts["made_with"]
    yield from (f"'{key}'" for key in sorted(set(was) | set(now)) if was.get(key) != now.get(key))


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """The journal's connection: WAL, NORMAL sync (see the module docstring), the file mode 0600.

    A new journal is made whole under a temporary name and renamed into
    place, so a reader (``job status``) never finds one without its tables.
    """
    if read_only:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    if not path.exists():
        _create(path)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA busy_timeout = 10000")
    return connection


def _create(path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)  # owner-only, whatever the umask
    os.fchmod(fd, 0o600)
    os.close(fd)
    connection = sqlite3.connect(temporary)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        with connection:
            for statement in _TABLES:
                connection.execute(statement)
    finally:
        connection.close()  # the last connection: the WAL is checkpointed into the file and removed
    os.replace(temporary, path)


def _take_lock(path: Path, name: str) -> int:
    """Hold the job's lock file: a POSIX record lock, released by the kernel when the process dies
    (even by SIGKILL), and not held by the worker processes it forks (as an ``flock`` would be, until
    the last of them has exited)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise UsageError(
            f"another run of the job {name} is in progress",
            reference="job-busy",
            hint="wait for it to end (a killed run releases the job at once), or choose another --job name",
        ) from None
    return fd


def _unwritable(directory: Path, error: OSError | sqlite3.Error) -> OutputError:
    why = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
    return OutputError(
        f"cannot open the job journal in {directory}: {why}",
        reference="job-journal-unwritable",
        hint="choose a writable --run-dir with free space",
    )
