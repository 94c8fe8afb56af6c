"""The batch process pool with real worker processes: results, finalizers, typed errors, dead workers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from dicomcloak.batch.pool import Pool, WorkerFunctions
from dicomcloak.errors import OutputError, SealError

_STATE: dict[str, Any] = {}


def _init(settings: dict[str, Any]) -> None:
    _STATE.clear()
    _STATE.update(settings)


def _square(task: int) -> tuple[int, int, int]:
    if task == _STATE.get("fail_on"):
        raise OutputError("cannot write", reference="output-unwritable")
    if task == _STATE.get("die_on"):
        os.kill(os.getpid(), signal.SIGKILL)
    if task == _STATE.get("odd_on"):
        raise _UnpicklableError()
    return task, task * task, os.getpid()


class _UnpicklableError(Exception):
    def __reduce__(self) -> Any:
        raise TypeError("not picklable")


def _finish() -> None:
    marks = _STATE.get("marks")
    if marks is not None:
        (Path(marks) / str(os.getpid())).touch()
    if _STATE.get("fail_at_exit"):
        raise SealError("the vault refused the last group", reference="vault-record-tampered")


def _pool(jobs: int = 2, **settings: Any) -> Pool[int, tuple[int, int, int]]:
    functions = WorkerFunctions(_init, settings, _square, _finish)
    return Pool(jobs, functions, multiprocessing.get_context("fork"))


def _no_children_left() -> bool:
    return not multiprocessing.active_children()


def test_every_task_runs_once_on_several_workers(tmp_path: Path) -> None:
    with _pool(2, marks=str(tmp_path)) as pool:
        results = list(pool.imap_unordered(range(200)))
    assert sorted(r[:2] for r in results) == [(i, i * i) for i in range(200)]
    pids = {r[2] for r in results}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {p.name for p in tmp_path.iterdir()} == {str(pid) for pid in pids}  # each worker finalized
    assert _no_children_left()


def test_an_error_at_a_workers_exit_reaches_the_parent_typed(tmp_path: Path) -> None:
    """The last commit of a worker fails after its results were sent: close() raises it, reference kept."""
    pool = _pool(2, fail_at_exit=True, marks=str(tmp_path))
    with pytest.raises(SealError) as raised, pool:
        assert len(list(pool.imap_unordered(range(20)))) == 20
    assert raised.value.reference == "vault-record-tampered"
    assert len(list(tmp_path.iterdir())) == 2  # both workers ran their finalizer
    assert _no_children_left()


def test_a_task_error_stops_the_run_typed_and_the_others_finalize(tmp_path: Path) -> None:
    pool = _pool(2, fail_on=7, marks=str(tmp_path))
    with pytest.raises(OutputError) as raised, pool:
        list(pool.imap_unordered(range(50)))
    assert raised.value.reference == "output-unwritable"
    assert len(list(tmp_path.iterdir())) == 2  # the failing worker committed what it had, so did the other
    assert _no_children_left()


def test_a_dead_worker_stops_the_run_instead_of_hanging() -> None:
    pool = _pool(2, die_on=5)
    with pytest.raises(OutputError) as raised, pool:
        list(pool.imap_unordered(range(50)))
    assert raised.value.reference == "worker-died"
    assert "-9" in str(raised.value)  # the exit code says it was killed
    assert _no_children_left()


def test_an_unpicklable_error_arrives_as_its_type_name_only() -> None:
    pool = _pool(1, odd_on=3)
    with pytest.raises(RuntimeError, match="_UnpicklableError"), pool:
        list(pool.imap_unordered(range(10)))
    assert _no_children_left()


def test_leaving_early_still_finalizes_every_worker(tmp_path: Path) -> None:
    with _pool(2, marks=str(tmp_path)) as pool:
        for _ in pool.imap_unordered(range(100)):
            break
    assert len(list(tmp_path.iterdir())) == 2
    assert _no_children_left()


def test_stop_lets_the_workers_finalize_while_the_parent_goes_on(tmp_path: Path) -> None:
    """stop() returns at once; the workers finalize meanwhile; close() waits and reports as usual."""
    pool = _pool(2, marks=str(tmp_path), fail_at_exit=True)
    assert len(list(pool.imap_unordered(range(40)))) == 40
    pool.stop()
    pool.stop()  # telling twice is harmless
    deadline = time.monotonic() + 20
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # the finalizers run without the parent waiting on the pool
    assert len(list(tmp_path.iterdir())) == 2
    with pytest.raises(SealError):
        pool.close()
    assert _no_children_left()


def test_a_worker_finalizes_as_soon_as_the_tasks_run_out(tmp_path: Path) -> None:
    """No stop() or close() yet: once every task is handed out, each worker is told to stop after
    its last one and commits its outputs while the run is still collecting results."""
    pool = _pool(2, marks=str(tmp_path))
    assert len(list(pool.imap_unordered(range(40)))) == 40
    deadline = time.monotonic() + 20
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(list(tmp_path.iterdir())) == 2
    pool.close()
    assert _no_children_left()


def _account() -> dict[str, int]:
    """What a worker says with its last message: its pid and how many tasks it did."""
    return {"pid": os.getpid(), "done": _STATE.get("done", 0)}


def _counting(task: int) -> tuple[int, int, int]:
    _STATE["done"] = _STATE.get("done", 0) + 1
    return _square(task)


def _accounting_pool(jobs: int = 2, **settings: Any) -> Pool[int, tuple[int, int, int]]:
    functions = WorkerFunctions(_init, settings, _counting, _finish, _account)
    return Pool(jobs, functions, multiprocessing.get_context("fork"))


def test_each_worker_gives_its_account_with_its_last_message() -> None:
    with _accounting_pool(2) as pool:
        results = list(pool.imap_unordered(range(60)))
    accounts = pool.accounts
    assert sorted(account["pid"] for account in accounts) == sorted({pid for _, _, pid in results})
    assert sum(account["done"] for account in accounts) == 60
    assert pool.leftovers == []


def test_after_a_failure_the_results_in_flight_are_kept_and_every_worker_accounts() -> None:
    """A run that stops must still count what the other workers finished (their outputs are on disk)."""
    pool = _accounting_pool(2, fail_on=7)
    yielded: list[tuple[int, int, int]] = []
    with pytest.raises(OutputError), pool:
        yielded.extend(pool.imap_unordered(range(50)))  # keeps what came before the error
    done = [task for task, _, _ in yielded + pool.leftovers]
    assert pool.leftovers and len(done) == len(set(done)) and 7 not in done
    assert all(account is not None for account in pool.accounts)  # the failing worker says too
    assert sum(account["done"] for account in pool.accounts) == len(done) + 1  # 1: task 7 itself
    assert _no_children_left()


def test_a_dead_worker_gives_no_account() -> None:
    pool = _accounting_pool(2, die_on=5)
    with pytest.raises(OutputError), pool:
        list(pool.imap_unordered(range(50)))
    assert None in pool.accounts and any(account is not None for account in pool.accounts)


_ORPHAN_SCRIPT = """
import multiprocessing, os, sys, time
from dicomcloak.batch.pool import Pool, WorkerFunctions

def init(_): pass
def work(task): return os.getpid()
def finish(): pass

if __name__ == "__main__":
    pool = Pool(2, WorkerFunctions(init, None, work, finish), multiprocessing.get_context(sys.argv[1]))
    pids = set()
    for pid in pool.imap_unordered(iter(range(10**9))):  # never runs out: no worker is told to stop
        pids.add(pid)
        if len(pids) == 2:
            break
    print(" ".join(map(str, sorted(pids))), flush=True)
    time.sleep(600)  # killed here, its workers waiting for their next task
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat.rpartition(b")")[2].split()[0] not in (b"Z", b"X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="PR_SET_PDEATHSIG and /proc are Linux's")
@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_workers_die_with_a_parent_killed_by_sigkill(tmp_path: Path, method: str) -> None:
    import subprocess
    import sys

    script = tmp_path / "orphans.py"
    script.write_text(_ORPHAN_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), method], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    finally:
        parent.kill()  # kill -9: no finalizer, no pipe closed by the parent
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:  # do not leave them behind if the test fails
        os.kill(pid, signal.SIGKILL)
    assert left == []
