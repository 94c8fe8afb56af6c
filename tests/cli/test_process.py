"""The process's start and end (cli._process): exit functions run, streams flush, statuses kept.

``exit_now`` ends the process, so every test runs it in a child interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from dicomcloak.cli._process import limit_library_threads

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _child(code: str, unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={name: value for name, value in os.environ.items() if name not in unset},
        check=False,
    )


def test_exit_functions_run_and_streams_flush_before_the_process_ends() -> None:
    done = _child(
        """
        import atexit, sys
        from dicomcloak.cli._process import exit_now
        atexit.register(lambda: print("exit function ran", file=sys.stderr))
        sys.stdout.write("x" * 1_000_000)  # more than any buffer: must all arrive
        exit_now(3)
        print("not reached")
        """
    )
    assert done.returncode == 3
    assert done.stdout == "x" * 1_000_000
    assert "exit function ran" in done.stderr


def test_a_live_thread_means_the_normal_exit_which_waits_for_it() -> None:
    done = _child(
        """
        import sys, threading, time
        from dicomcloak.cli._process import exit_now
        def late():
            time.sleep(0.3)
            print("thread finished", flush=True)
        threading.Thread(target=late).start()
        exit_now(0)
        print("exit_now returned", flush=True)
        sys.exit(4)
        """
    )
    assert done.returncode == 4
    assert done.stdout.splitlines() == ["exit_now returned", "thread finished"]


def test_a_message_is_left_to_the_normal_exit_which_prints_it() -> None:
    done = _child(
        """
        from dicomcloak.cli._process import exit_now
        exit_now("a message")
        raise SystemExit("a message")
        """
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "a message"


def test_the_command_line_keeps_its_exit_codes_and_whole_json_output(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    """The console script on real runs: 0 with every file written and the JSON summary whole, 2 on a
    usage error."""
    done = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["written"] == 6
    missing = run_cli("deid", tmp_path / "absent", "--out", tmp_path / "out2", "--key", key_file)
    assert missing.returncode == 2
    assert "input-missing" in missing.stderr


def test_openblas_gets_one_thread_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    limit_library_threads()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "8")
    limit_library_threads()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "8"


def test_the_entry_point_limits_openblas_before_numpy_is_imported() -> None:
    """OpenBLAS reads the variable once, as NumPy loads it: the entry point must set it before."""
    done = _child(
        """
        import atexit, os, sys
        import dicomcloak.cli.app
        print("numpy before main:", "numpy" in sys.modules)
        atexit.register(lambda: print("threads:", os.environ.get("OPENBLAS_NUM_THREADS")))
        sys.argv = ["dicomcloak", "--version"]
        dicomcloak.cli.app.main()
        """,
        unset=("OPENBLAS_NUM_THREADS",),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "numpy before main: False"
    assert done.stdout.splitlines()[-1] == "threads: 1"


def _into_a_closed_pipe(command: list[str], unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with its standard output a pipe nobody reads any more (``| head`` once done)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    environ = {name: value for name, value in os.environ.items() if name not in unset}
    try:
        return subprocess.run(
            command, stdout=write_end, stderr=subprocess.PIPE, text=True, env=environ, timeout=300,
            check=False,
        )
    finally:
        os.close(write_end)


def test_a_gone_reader_of_stdout_ends_the_command_quietly_with_141(
    dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    """As if killed by SIGPIPE, like any Unix tool: no 'internal-error', no traceback; the work is done."""
    cli = [sys.executable, "-c", "from dicomcloak.cli.app import main; main()"]  # the console script's
    explained = _into_a_closed_pipe([*cli, "policy", "explain"])
    assert (explained.returncode, explained.stderr) == (141, "")
    out = tmp_path / "out"
    args = ["deid", str(dicom_tree), "--out", str(out), "--key", str(key_file), "--json"]
    done = _into_a_closed_pipe([*cli, *args])
    assert (done.returncode, done.stderr) == (141, "")
    assert len(list(out.rglob("*.dcm"))) == 6


def test_output_still_buffered_for_a_gone_reader_exits_141_too() -> None:
    """The command printed into the buffer and returned; the flush at exit meets the closed pipe."""
    code = "import sys; from dicomcloak.cli._process import exit_now; sys.stdout.write('x'); exit_now(0)"
    done = _into_a_closed_pipe([sys.executable, "-c", code], unset=("PYTHONUNBUFFERED",))
    assert (done.returncode, done.stderr) == (141, "")
