"""Inputs that cannot hang or escape the run (issue 13, item 4).

``deid /dev/zero`` read 24 GB before the kernel killed it; a FIFO argument
blocked forever. An argument must be a regular file or a directory: anything
else is a usage error at once (exit 2, ``input-not-regular``), decided by
``stat`` without opening it. Links out of an input are skipped unless
``--follow-symlinks``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _cli(*args: str | Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """The real CLI with a short timeout: a hang fails the test in seconds, not minutes."""
    script = Path(sys.executable).with_name("dicomcloak")
    module = [sys.executable, "-c", "from dicomcloak.cli.app import main; main()"]
    start = time.monotonic()
    done = subprocess.run(
        [*([str(script)] if script.exists() else module), *map(str, args)],
        capture_output=True, text=True, timeout=30, check=False,
    )
    return done, time.monotonic() - start


@pytest.fixture(params=["/dev/zero", "fifo", "char-device", "socket"])
def special(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A path that is neither a regular file nor a directory."""
    if request.param == "/dev/zero":
        yield Path("/dev/zero")
    elif request.param == "char-device":
        yield Path("/dev/null")
    elif request.param == "fifo":
        os.mkfifo(tmp_path / "pipe")
        yield tmp_path / "pipe"
    else:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(tmp_path / "sock"))
        try:
            yield tmp_path / "sock"
        finally:
            listener.close()


@pytest.mark.parametrize(
    "command",
    [
        ("deid", "--ephemeral-key"),
        ("sanitize",),
        ("reid", "--private-key", "owner.key.pem"),  # refused before the key is even read
    ],
    ids=["deid", "sanitize", "reid"],
)
def test_a_special_file_argument_is_a_usage_error_at_once(
    special: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    out = tmp_path / "out"
    done, seconds = _cli(command[0], special, "--out", out, *command[1:])
    assert done.returncode == 2, done.stderr
    first = done.stderr.splitlines()[0]
    assert first == f"error[input-not-regular]: input {special} is neither a regular file nor a directory"
    assert seconds < 10  # a Python start-up and an import of the command: nothing is read
    assert not out.exists()


def test_links_out_of_the_input_are_followed_only_when_asked(
    dicom_tree: Path, tmp_path: Path, instance_factory: Callable[..., Path]
) -> None:
    """A link to a DICOM file outside the tree was de-identified (issue 13): skipped by default."""
    outside = instance_factory(tmp_path / "elsewhere" / "outside.dcm", 100)
    (dicom_tree / "link.dcm").symlink_to(outside)
    secret = tmp_path / "secret.key"
    secret.write_text("not for the quarantine")
    (dicom_tree / "key-link").symlink_to(secret)
    summaries = {}
    for flag in ((), ("--follow-symlinks",)):
        out = tmp_path / f"out{len(flag)}"
        done, _ = _cli("deid", dicom_tree, "--out", out, "--ephemeral-key", "--jobs", "1", "--json", *flag)
        summaries[flag] = json.loads(done.stdout)
        quarantined = [path for path in (tmp_path / f"out{len(flag)}.run").rglob("*") if path.is_file()]
        if not flag:
            assert not any(path.read_bytes() == secret.read_bytes() for path in quarantined)
    default, followed = summaries[()], summaries[("--follow-symlinks",)]
    assert (default["written"], default["skipped"], default["skip_reasons"]) == (
        6, 2, {"symlink-outside-input": 2}
    )
    # Followed: the DICOM file is de-identified, the key (not DICOM) quarantined: the operator asked.
    assert (followed["written"], followed["quarantined"], followed["skipped"]) == (7, 1, 0)
