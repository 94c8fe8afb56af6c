"""A real ``kill -9`` of ``deid --jobs 2`` mid-run, then a rerun: no debris of the dead run, a whole output.

Issue 13, item 5. Killed, a run leaves the temporary files its processes were
writing (some complete de-identified copies, not sealed yet) and its pool's
claim directory in ``/dev/shm``. They are named by their process, kept out of
the output tree's outputs (``OUT/.dicomcloak-tmp/``), and the next run on this
host removes those of processes that are gone (docs/security.md, "Crash
debris"). Each trial kills the whole process group (the parent and both
workers, as the kernel's out-of-memory killer or a power cut would) at a
different point of the run; one kills the parent alone (``kill -9 PID``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dicomcloak.io.staging import CLAIMS_PREFIX, owner_of

RunCli = Callable[..., subprocess.CompletedProcess[str]]
CLI = Path(sys.executable).with_name("dicomcloak")
SHM = Path("/dev/shm")
N_FILES = 240

pytestmark = pytest.mark.slow


def _files(root: Path) -> dict[str, bytes]:
    """Every file of a tree, hidden ones too."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _debris(run_dir: Path) -> list[str]:
    """Temporary files and staging directories left in the run directory."""
    return sorted(
        p.relative_to(run_dir).as_posix()
        for p in run_dir.rglob("*")
        if p.name.endswith(".tmp") or p.name == ".dicomcloak-tmp"
    )


def _dead_claims(before: set[str]) -> list[str]:
    """Claim directories in /dev/shm made since ``before`` whose process is gone."""
    names = set(os.listdir(SHM)) - before if SHM.is_dir() else set()
    dead = []
    for name in names:
        found = owner_of(name, CLAIMS_PREFIX, "")
        if found is not None and found.is_gone():
            dead.append(name)
    return sorted(dead)


def _kill_mid_run(command: list[str], out: Path, after: int, *, group: bool) -> list[str]:
    """Start ``command``, SIGKILL it once ``after`` outputs exist; return the temporary files it left."""
    env = {k: v for k, v in os.environ.items() if k != "DICOMCLOAK_KEY_FILE"}
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if out.is_dir() and sum(1 for _ in out.rglob("*.dcm")) >= after:
                break
            time.sleep(0.005)
        assert process.poll() is None, "the run ended before it could be killed: make the input larger"
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None and group:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return [p.name for p in out.parent.rglob("*.tmp")]


def test_a_rerun_after_kill_9_leaves_no_debris_and_a_complete_output(
    run_cli: RunCli, key_file: Path, tmp_path: Path, instance_factory: Callable[..., Path]
) -> None:
    tree = tmp_path / "in"
    for index in range(N_FILES):
        instance_factory(tree / f"series{index // 8}" / f"img{index:03d}.dcm", index)
    reference = tmp_path / "reference"
    assert run_cli("deid", tree, "--out", reference, "--key", key_file, "--jobs", "2").returncode == 0
    expected = _files(reference)
    assert len(expected) == N_FILES
    left_by_kills = 0
    trials = ((N_FILES // 10, True), (N_FILES // 3, True), (2 * N_FILES // 3, True), (N_FILES // 4, False))
    for number, (after, group) in enumerate(trials):
        out = tmp_path / f"out{number}"
        run_dir = tmp_path / f"out{number}.run"
        shm_before = set(os.listdir(SHM)) if SHM.is_dir() else set()
        command = [str(CLI), "deid", str(tree), "--out", str(out), "--key", str(key_file), "--jobs", "2"]
        left_by_kills += len(_kill_mid_run(command, out, after, group=group))
        rerun = run_cli("deid", tree, "--out", out, "--key", key_file, "--jobs", "2")
        assert rerun.returncode == 0, rerun.stderr
        assert _files(out) == expected, f"trial {number}: the output is not exactly the complete output"
        assert _debris(run_dir) == [], f"trial {number}"
        assert _dead_claims(shm_before) == [], f"trial {number}"
    assert left_by_kills > 0  # the kills did leave debris for the reruns to remove
