"""A small process pool for batch runs: one pipe per worker, chunks on demand, no helper threads.

Why not :class:`multiprocessing.pool.Pool`:

- its worker-handler thread also waits on the shared result pipe, so it wakes
  and loops each time a result arrives until the result thread has read it;
  with its task and result threads that cost about 5% of a 2-core run's CPU,
  in the process that should only be waiting;
- a worker that dies (killed for memory, a crash in a C library) leaves its
  tasks pending and ``imap_unordered`` waits forever;
- a worker's error at exit (committing its last group of outputs, sealing its
  last vault records) has no way back to the parent.

Here the parent alone reads each worker's pipe with
:func:`multiprocessing.connection.wait`; a dead worker shows as end of file on
its pipe and stops the run with ``worker-died``; each worker runs its
finalizer when told to stop and sends back either "closed" or the error,
with its account (what its finalizer could not finish: the batch's outputs
that are not on disk). After a failure the results of the tasks still in
flight are kept (:attr:`Pool.leftovers`), not dropped: their outputs may be
on disk, and a run that stops still counts them.
Errors are pickled with their reference code (:mod:`dicomcloak.errors`).

The other way round, a worker dies with the parent: forked workers inherit the
parent's ends of the pipes, so a parent killed with ``kill -9`` (or by the
out-of-memory killer) would leave them waiting forever for their next task,
holding their temporary files and database connections. On Linux each asks
the kernel for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``); what it
was writing is then a dead process's debris, which the next run removes
(:mod:`dicomcloak.batch.debris`).
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar

from dicomcloak.errors import OutputError

__all__ = ["Pool", "WorkerFunctions"]

T = TypeVar("T")
R = TypeVar("R")

#: Chunks queued per worker: one being processed and one waiting, so no worker idles on a round trip.
_IN_FLIGHT = 2

_OK, _CLOSED, _FAILED = "ok", "closed", "failed"


@dataclass(frozen=True)
class WorkerFunctions(Generic[T, R]):
    """What a worker runs: module-level functions, so they also cross a spawn boundary.

    ``initializer(initarg)`` runs once as the worker starts; ``work(task)`` once
    per task; ``finalizer()`` once when the worker is told to stop (or after a
    failed task, to commit what it had done), and its error reaches the parent;
    ``account()``, if given, after the finalizer whatever happened: its result
    reaches the parent with the worker's last message (:attr:`Pool.accounts`).
    """

    initializer: Callable[[Any], None]
    initarg: Any
    work: Callable[[T], R]
    finalizer: Callable[[], None]
    account: Callable[[], Any] | None = None


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    in_flight: int = 0
    stopping: bool = False  # told to stop
    closed: bool = False
    account: Any = None  # what its last message said (None: it died without one)


class Pool(Generic[T, R]):
    """``jobs`` worker processes fed from one iterable of tasks.

    Use as a context manager; :meth:`imap_unordered` yields results in
    completion order, :meth:`close` stops the workers gracefully (each runs
    its finalizer) and raises the first error one of them reported. Leaving
    the block by an exception stops them too, and terminates those that do
    not answer. Either way, the results of tasks that were still in flight
    are in :attr:`leftovers` and each worker's account in :attr:`accounts`.
    """

    def __init__(self, jobs: int, functions: WorkerFunctions[T, R], context: BaseContext) -> None:
        self._workers = [_start(context, functions) for _ in range(max(1, jobs))]
        self.leftovers: list[R] = []  # results that arrived while the pool was closing

    @property
    def accounts(self) -> list[Any]:
        """Each worker's account (``WorkerFunctions.account``), None for a worker that gave none (died)."""
        return [worker.account for worker in self._workers]

    def __enter__(self) -> Pool[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._abandon()

    def imap_unordered(self, tasks: Iterable[T]) -> Iterator[R]:
        """Run every task on some worker; yield each result as it arrives.

        Raises
        ------
        OutputError
            ``worker-died`` when a worker process ends without answering.
        Exception
            The error a task raised in its worker, with its type and reference.
        """
        todo = iter(tasks)
        for worker in self._workers:
            _feed(worker, todo, _IN_FLIGHT)
        while busy := {w.conn: w for w in self._workers if w.in_flight}:
            for conn in wait(list(busy)):
                worker = busy[conn]  # type: ignore[index]
                result = _receive(worker, _OK)
                worker.in_flight -= 1
                _feed(worker, todo, 1)
                yield result

    def stop(self) -> None:
        """Tell every worker to stop, without waiting: each commits its last outputs meanwhile.

        The caller may tidy up in that time (what :meth:`close` would otherwise wait through);
        :meth:`close` then waits. Telling a worker twice is harmless.
        """
        for worker in self._workers:
            _send_stop(worker)

    def close(self) -> None:
        """Tell every worker to stop, wait until each has run its finalizer; raise the first error."""
        first: BaseException | None = None
        self.stop()
        for worker in self._workers:
            try:
                _drain(worker, self.leftovers)
            except BaseException as error:  # noqa: BLE001 - every worker gets to finish first
                first = first or error
        for worker in self._workers:
            worker.process.join()
        if first is not None:
            raise first

    def _abandon(self) -> None:
        """After an error: let the workers stop and commit if they can; terminate the ones that do not."""
        try:
            with suppress(BaseException):
                self.close()
        finally:
            for worker in self._workers:
                if worker.process.is_alive():
                    worker.process.terminate()
                worker.process.join()
                worker.conn.close()


def _start(context: BaseContext, functions: WorkerFunctions[Any, Any]) -> _Worker:
    parent, child = context.Pipe(duplex=True)
    # A forked worker's parent is this process; a forkserver's or spawn's worker is watched by its own parent.
    watched = os.getpid() if context.get_start_method() == "fork" else None
    process = context.Process(  # type: ignore[attr-defined]
        target=_serve, args=(child, functions, watched), daemon=True
    )
    process.start()
    child.close()  # the worker's end lives in the worker only: its exit reads as end of file here
    return _Worker(process, parent)


def _feed(worker: _Worker, todo: Iterator[Any], count: int) -> None:
    """Send up to ``count`` tasks; once there are none left, tell the worker to stop after its last.

    The stop queues behind the worker's tasks, so each worker commits its last
    outputs as soon as it is done, while the others still work, instead of at
    the end of the whole run.
    """
    for _ in range(count):
        task = next(todo, _NO_TASK)
        if task is _NO_TASK:
            _send_stop(worker)
            return
        worker.in_flight += 1
        try:
            worker.conn.send(task)
        except OSError:
            return  # the worker is gone: reading its pipe reports it (worker-died)


_NO_TASK = object()


def _receive(worker: _Worker, expected: str) -> Any:
    """One message from a worker: its payload, or its error raised here."""
    try:
        kind, payload = worker.conn.recv()
    except (EOFError, OSError):
        worker.closed = True
        worker.process.join()
        raise OutputError(
            f"a worker process stopped unexpectedly (exit code {worker.process.exitcode})",
            reference="worker-died",
            hint="the outputs of its last group may be missing; check free memory (the kernel log "
            "names a process killed for memory) and run again",
        ) from None
    if kind == _FAILED:
        worker.closed = True
        error, worker.account = payload
        raise error
    if kind != expected:  # pragma: no cover - the protocol is ours
        raise RuntimeError(f"unexpected message {kind!r} from a worker")
    if kind == _CLOSED:
        worker.closed = True
        worker.account = payload
    return payload


def _send_stop(worker: _Worker) -> None:
    if not worker.closed and not worker.stopping:
        worker.stopping = True
        with suppress(OSError):
            worker.conn.send(None)


def _drain(worker: _Worker, leftovers: list[Any]) -> None:
    """Wait for the worker's "closed", keeping the results of tasks it had in flight in ``leftovers``."""
    while not worker.closed:
        if worker.in_flight:
            leftovers.append(_receive(worker, _OK))
            worker.in_flight -= 1
        else:
            _receive(worker, _CLOSED)


def _serve(conn: Connection, functions: WorkerFunctions[Any, Any], parent: int | None = None) -> None:
    """A worker's life: initialize, run tasks until told to stop, finalize, say how it ended."""
    # An interrupt goes to the whole process group: the parent decides what it stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    error: BaseException | None = None
    try:
        functions.initializer(functions.initarg)
        while (task := conn.recv()) is not None:
            conn.send((_OK, functions.work(task)))
    except BaseException as raised:  # noqa: BLE001 - sent to the parent, which raises it
        error = raised
    try:
        functions.finalizer()
    except BaseException as raised:  # noqa: BLE001 - idem
        error = error or raised
    account = _account(functions)
    with suppress(OSError, EOFError):
        conn.send((_CLOSED, account) if error is None else (_FAILED, (_picklable(error), account)))
    conn.close()


def _account(functions: WorkerFunctions[Any, Any]) -> Any:
    """The worker's account for the parent; None if it has none or cannot give it (never raises)."""
    if functions.account is None:
        return None
    try:
        return functions.account()
    except Exception:  # noqa: BLE001 - the parent treats a missing account as unknown
        return None


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent: int | None) -> None:
    """Ask Linux to SIGKILL this worker when its parent dies; if ``parent`` is gone already, exit now.

    The check after the request closes the window between the fork and the
    request, in which the parent may have died unnoticed. Elsewhere nothing
    is done: a parent's death then shows as end of file only where no other
    process holds the parent's end of the pipe.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def _picklable(error: BaseException) -> BaseException:
    """The error itself when it pickles, else a RuntimeError naming its type (never its message)."""
    try:
        pickle.dumps(error)
    except Exception:  # noqa: BLE001 - any pickling failure
        return RuntimeError(f"a worker failed with {type(error).__name__}")
    return error
