"""Database failures typed at the store's edge, and the bounded wait for a busy database.

The drivers raise their own errors (``sqlite3.OperationalError``, pg8000's
``DatabaseError`` carrying the server's SQLSTATE, ``InterfaceError`` for a
lost socket) and SQLAlchemy wraps them. None of them may reach a batch
worker bare: there it would be taken for a bug triggered by the input at
hand, and that input quarantined for a failure that was not its own. A
``handle_error`` listener on every engine (:func:`type_failures`) turns each
into a :class:`~dicomcloak.errors.VaultDatabaseError` where it is raised:

=====================  ===========================================  =====================================
reference              SQLite (result code)                         PostgreSQL (SQLSTATE)
=====================  ===========================================  =====================================
``vault-busy``         ``SQLITE_BUSY``, ``SQLITE_LOCKED``           40001, 40P01, 55P03, 57014, 53300
``vault-unreachable``  ``SQLITE_CANTOPEN``                          class 08, 57P01-57P03, a lost socket
``vault-full``         ``SQLITE_FULL``, ``SQLITE_IOERR_SHMSIZE``    53100
``vault-broken``       anything else (``SQLITE_CORRUPT``, ...)      anything else (XX001, 42P01, ...)
=====================  ===========================================  =====================================

The message names the code, never the driver's message (it may quote a
value). A busy database is waited for: each attempt waits for the lock in
the database for :data:`LOCK_SLICE` seconds (SQLite's busy timeout,
PostgreSQL's ``lock_timeout``), and :class:`BusyWait` runs the whole
transaction again with exponential back-off until its total bound, after one
warning line on standard error. Every store transaction is all or nothing,
so running it again is safe. Only then is ``vault-busy`` raised.

Results: SQLite's "Result and Error Codes"; PostgreSQL documentation,
Appendix A "PostgreSQL Error Codes".
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine, ExceptionContext

from dicomcloak.errors import VaultDatabaseError

__all__ = [
    "BROKEN",
    "BUSY",
    "DEFAULT_WAIT",
    "FULL",
    "LOCK_SLICE",
    "UNREACHABLE",
    "BusyWait",
    "classify",
    "failure",
    "retried",
    "type_failures",
]

BUSY, UNREACHABLE, FULL, BROKEN = "vault-busy", "vault-unreachable", "vault-full", "vault-broken"

#: Seconds one attempt waits for a lock inside the database before the attempt counts as busy.
LOCK_SLICE = 2.0
#: Seconds a busy database is waited for, in total, unless the caller says otherwise (``--vault-wait``).
DEFAULT_WAIT = 120.0
_FIRST_PAUSE, _LONGEST_PAUSE = 0.1, 5.0

_SQLITE = {5: BUSY, 6: BUSY, 13: FULL, 14: UNREACHABLE}  # BUSY, LOCKED, FULL, CANTOPEN (primary codes)
_SQLITE_EXTENDED = {4874: FULL}  # SQLITE_IOERR_SHMSIZE: the shared-memory file could not grow
_PG_BUSY = {"40001", "40P01", "55P03", "57014", "53300"}  # serialization, deadlock, lock, timeout, slots
_PG_UNREACHABLE = {"57P01", "57P02", "57P03"}  # the server shut down or cannot accept connections yet
_PG_FULL = {"53100"}  # disk_full

_WORDS = {
    BUSY: ("the vault database is busy: another connection holds its lock",
           "find what holds the lock (a long transaction, a backup, an open 'sqlite3' shell) and run again"),
    UNREACHABLE: ("the connection to the vault database was lost",
                  "check that the database server runs and can be reached, then run the same command again"),
    FULL: ("the vault database, or the disk under it, is full",
           "free space where the vault lives (or raise its quota), then run the same command again"),
    BROKEN: ("the vault database failed",
             "check the database (SQLite: PRAGMA integrity_check; PostgreSQL: the server log) and restore "
             "it from a backup if it is damaged"),
}


def failure(reference: str, code: str) -> VaultDatabaseError:
    """The typed error for a failure of kind ``reference``; ``code`` names the driver's code only."""
    message, hint = _WORDS[reference]
    return VaultDatabaseError(f"{message} ({code})", reference=reference, hint=hint)


def classify(dialect: sa.engine.Dialect, error: BaseException, disconnected: bool) -> tuple[str, str]:
    """The reference of a driver error and the code that decided it (never the driver's message)."""
    if dialect.name == "sqlite":
        return _sqlite(error)
    return _postgresql(dialect, error, disconnected)


def _sqlite(error: BaseException) -> tuple[str, str]:
    code = getattr(error, "sqlite_errorcode", None)
    name = str(getattr(error, "sqlite_errorname", "") or type(error).__name__)
    if not isinstance(code, int):
        return BROKEN, name
    return _SQLITE_EXTENDED.get(code) or _SQLITE.get(code & 0xFF, BROKEN), name


def _postgresql(dialect: sa.engine.Dialect, error: BaseException, disconnected: bool) -> tuple[str, str]:
    args = getattr(error, "args", ())
    fields = args[0] if args and isinstance(args[0], dict) else {}  # pg8000: the server's error fields
    state = str(fields.get("C", ""))
    interface = getattr(dialect.loaded_dbapi, "InterfaceError", ())
    if disconnected or state.startswith("08") or state in _PG_UNREACHABLE:
        return UNREACHABLE, f"SQLSTATE {state}" if state else "closed by the server or the network"
    if not state:
        return (UNREACHABLE, "no server answered") if isinstance(error, interface) else (BROKEN, "no code")
    if state in _PG_BUSY:
        return BUSY, f"SQLSTATE {state}"
    return (FULL if state in _PG_FULL else BROKEN), f"SQLSTATE {state}"


def type_failures(engine: Engine) -> None:
    """Make every driver error of ``engine`` a :class:`~dicomcloak.errors.VaultDatabaseError` as raised."""
    sa.event.listen(engine, "handle_error", _raise_typed)


def _raise_typed(context: ExceptionContext) -> None:
    # A failed pre-ping is SQLAlchemy's own business (it reconnects); only driver errors are typed.
    if context.is_pre_ping or not isinstance(context.sqlalchemy_exception, sa.exc.DBAPIError):
        return
    reference, code = classify(context.dialect, context.original_exception, context.is_disconnect)
    raise failure(reference, code)


R = TypeVar("R")
P = ParamSpec("P")


@dataclass
class BusyWait:
    """Run a store transaction, again and again while the database is busy, for ``total`` seconds at most.

    Pauses double from 0.1 s up to 5 s between attempts (each attempt also
    waits :data:`LOCK_SLICE` in the database). The first busy attempt prints
    one warning line on standard error, once for the life of the object;
    when ``total`` has passed, ``vault-busy`` is raised.
    """

    total: float = DEFAULT_WAIT
    warned: bool = False

    def run(self, work: Callable[[], R]) -> R:
        """``work()``, retried while it raises ``vault-busy``; its result."""
        deadline = time.monotonic() + self.total
        pause = _FIRST_PAUSE
        while True:
            try:
                return work()
            except VaultDatabaseError as error:
                if error.reference != BUSY:
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._exhausted() from None
            self._warn()
            time.sleep(min(pause, remaining))
            pause = min(2 * pause, _LONGEST_PAUSE)

    def _exhausted(self) -> VaultDatabaseError:
        _, hint = _WORDS[BUSY]
        return VaultDatabaseError(
            f"the vault database stayed busy for {self.total:g} s: another connection holds its lock",
            reference=BUSY, hint=f"{hint}; 'deid --vault-wait SECONDS' sets how long to wait",
        )

    def _warn(self) -> None:
        if not self.warned:
            self.warned = True
            print(f"warning: the vault database is busy (another connection holds its lock); retrying for up "
                  f"to {self.total:g} s", file=sys.stderr, flush=True)


class _Waits(Protocol):
    busy: BusyWait


S = TypeVar("S", bound=_Waits)


def retried(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Decorate a store method that is one transaction: run it under the store's :class:`BusyWait`."""

    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.busy.run(lambda: method(self, *args, **kwargs))

    functools.update_wrapper(wrapper, method)  # its name and docstring (wraps() confuses mypy here)
    return wrapper
