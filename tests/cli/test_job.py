"""``deid --job``, ``sanitize --job``, ``dicomcloak job status|list`` on the real command line (issue 16)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomcloak.batch.jobstatus import job_status
from dicomcloak.batch.report import report_schema
from dicomcloak.testing.schema import problems

RunCli = Callable[..., subprocess.CompletedProcess[str]]
USAGE = 2


def _latest_report(run_dir: Path) -> dict[str, object]:
    pointer = json.loads((run_dir / "latest.json").read_text())
    report: dict[str, object] = json.loads((run_dir / pointer["report"]).read_text())
    return report


def _mtimes(out: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in out.rglob("*.dcm")}


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("dicomcloak")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dicomcloak"]


def test_job_status_of_a_killed_job_shows_done_and_pending(
    run_cli: RunCli, tiny_corpus_factory: Callable[..., Path], key_file: Path, tmp_path: Path
) -> None:
    corpus = tiny_corpus_factory(tmp_path / "in", 1000)
    out = tmp_path / "out"
    command = [*_cli(), "deid", corpus, "--out", out, "--key", key_file, "-j", "1", "--job", "night"]
    process = subprocess.Popen(list(map(str, command)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            journal = tmp_path / "out.run" / "jobs" / "night" / "journal.sqlite"
            if journal.exists() and job_status(tmp_path / "out.run", "night").done:
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    shown = run_cli("job", "status", "night", "--out", out, "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["schema"] == "dicomcloak/job-status/1"
    assert status["state"] == "unfinished"
    assert status["inputs"] == 1000
    assert 0 < status["done"] < 1000
    assert status["done"] + status["pending"] == 1000
    assert status["outcomes"] == {"written": status["done"]}
    assert status["runs"][0]["outcome"] == "killed or running"
    human = run_cli("job", "status", "night", "--run-dir", tmp_path / "out.run")
    assert human.returncode == 0, human.stderr
    assert f"pending  {status['pending']}" in human.stdout
    assert "Smithers" not in human.stdout + shown.stdout  # counts only, never input names
    listed = run_cli("job", "list", "--out", out, "--json")
    assert [job["name"] for job in json.loads(listed.stdout)] == ["night"]
    # Resumed: the job ends with every input once, and its report covers all of it.
    resumed = run_cli("deid", corpus, "--out", out, "--key", key_file, "-j", "2", "--job", "night", "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert (summary["files"], summary["written"]) == (1000, 1000)
    assert summary["job"]["resumed"] is True
    assert summary["job"]["done_before"] == status["done"]
    assert len(list(out.rglob("*.dcm"))) == 1000


def test_a_finished_job_does_nothing_again_unless_forced(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ("deid", dicom_tree, "--out", out, "--key", key_file, "--job", "once")
    first = run_cli(*args, "--json")
    assert first.returncode == 0, first.stderr
    before, runs = _mtimes(out), sorted((tmp_path / "out.run" / "runs").iterdir())
    assert len(before) == 6
    time.sleep(0.02)
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    assert _mtimes(out) == before  # no output rewritten
    assert sorted((tmp_path / "out.run" / "runs").iterdir()) == runs  # no run made
    as_json = json.loads(run_cli(*args, "--json").stdout)
    assert as_json["job"]["nothing_to_do"] is True
    assert (as_json["files"], as_json["written"]) == (6, 6)
    forced = run_cli(*args, "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["job"]["done_before"] == 0
    after = _mtimes(out)
    assert after.keys() == before.keys()
    assert all(after[path] > before[path] for path in before)  # written again


def test_a_job_given_other_inputs_or_options_is_refused(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run_cli("deid", dicom_tree, "--out", out, "--key", key_file, "--job", "j").returncode == 0
    other = tmp_path / "other"
    other.mkdir()
    for extra in (["--option", "retain-safe-private"], ["--uid-conflicts", "keep-both"]):
        refused = run_cli("deid", dicom_tree, "--out", out, "--key", key_file, "--job", "j", *extra)
        assert refused.returncode == USAGE
        assert "job-mismatch" in refused.stderr and "--force" in refused.stderr
    refused = run_cli("deid", dicom_tree, other, "--out", out, "--key", key_file, "--job", "j")
    assert refused.returncode == USAGE
    assert "job-mismatch" in refused.stderr and "inputs" in refused.stderr


@pytest.mark.parametrize(("args", "reference"), [
    (["--job", "../up"], "job-name-invalid"),
    (["--force"], "force-without-job"),
])
def test_job_options_are_checked_before_any_work(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path, args: list[str], reference: str
) -> None:
    refused = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, *args)
    assert refused.returncode == USAGE
    assert reference in refused.stderr
    assert not (tmp_path / "out").exists()


def test_job_status_of_an_unknown_job_is_a_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    shown = run_cli("job", "status", "nope", "--run-dir", tmp_path)
    assert shown.returncode == USAGE
    assert "job-unknown" in shown.stderr


def _variant(path: Path, name: str) -> None:
    """The same instance (UIDs) with other content: a UID conflict for the first."""
    ds = dcmread(path)
    ds.PatientName = name
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize(
    ("jobs", "conflicts"), [("1", "quarantine"), ("2", "quarantine"), ("2", "keep-both")]
)
def test_inputs_added_to_a_job_are_judged_against_earlier_runs_outputs(
    run_cli: RunCli, instance_factory: Callable[..., Path], key_file: Path, tmp_path: Path, jobs: str,
    conflicts: str,
) -> None:
    """Claims are carried over: a later input of an instance written by an earlier run is a duplicate or
    a UID conflict, never written over the first output (architecture.md decision 9)."""
    first = instance_factory(tmp_path / "in" / "a" / "first.dcm", 1)
    out = tmp_path / "out"
    args = ("deid", tmp_path / "in", "--out", out, "--key", key_file, "-j", jobs, "--job", "grow",
            "--uid-conflicts", conflicts, "--json")
    assert run_cli(*args).returncode == 0
    (written,) = out.rglob("*.dcm")
    content, mtime = written.read_bytes(), written.stat().st_mtime_ns
    (tmp_path / "in" / "b").mkdir()
    (tmp_path / "in" / "b" / "copy.dcm").write_bytes(first.read_bytes())  # a duplicate
    other = tmp_path / "in" / "b" / "other.dcm"
    other.write_bytes(first.read_bytes())
    _variant(other, "Other^Patient")  # same UIDs, other content
    result = run_cli(*args)
    summary = json.loads(result.stdout)
    assert written.read_bytes() == content and written.stat().st_mtime_ns == mtime
    assert summary["files"] == 3
    assert summary["duplicates"] == 1
    report = _latest_report(tmp_path / "out.run")
    assert problems(report, report_schema()) == []  # the job entry is part of the versioned schema
    assert report["summary"]["job"]["earlier"]["written"] == 1  # type: ignore[index]
    (conflict,) = report["uid_conflicts"]  # type: ignore[misc]
    if conflicts == "quarantine":
        assert result.returncode == 1  # quarantined inputs
        assert (summary["written"], summary["quarantined"]) == (1, 1)
        assert summary["reasons"]["uid-conflict"] == 1
        assert conflict["resolution"] == "quarantined"
        assert len(list(out.rglob("*.dcm"))) == 1
    else:
        assert result.returncode == 0, result.stderr
        assert (summary["written"], summary["quarantined"]) == (2, 0)
        assert conflict["resolution"] == "kept-both"
        assert len(list(out.rglob("*.dcm"))) == 2
    assert conflict["conflicts_with"] == 0  # the first input, by its index in this walk


def test_json_mode_prints_periodic_progress_lines_on_stderr(
    run_cli: RunCli, tiny_corpus_factory: Callable[..., Path], key_file: Path, tmp_path: Path
) -> None:
    corpus = tiny_corpus_factory(tmp_path / "in", 120)
    result = run_cli("deid", corpus, "--out", tmp_path / "out", "--key", key_file, "-j", "1", "--json",
                     "--progress-interval", "0.1")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith('{"progress"')]
    assert lines, result.stderr
    for line in lines:
        progress = line["progress"]
        assert set(progress) == {"done", "total", "rate", "eta_s"}
        assert progress["total"] == 120
        assert 0 < progress["done"] <= 120
    assert [line["progress"]["done"] for line in lines] == sorted(line["progress"]["done"] for line in lines)
    assert "Smithers" not in result.stderr


def test_sanitize_keeps_a_job_too(run_cli: RunCli, dicom_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_cli("sanitize", dicom_tree, "--out", out, "--job", "clean", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["job"]["name"] == "clean"
    before = _mtimes(out)
    again = run_cli("sanitize", dicom_tree, "--out", out, "--job", "clean")
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    assert _mtimes(out) == before
    assert os.listdir(tmp_path / "out.run" / "jobs") == ["clean"]


def test_on_a_terminal_the_progress_bar_shows_rate_and_eta(
    dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    """A real pseudo-terminal: rich draws the bar, with files/s and the time left."""
    import pty
    import re

    master, slave = pty.openpty()
    command = [*_cli(), "deid", str(dicom_tree), "--out", str(tmp_path / "out"), "--key", str(key_file),
               "-j", "1", "--job", "bar"]
    environ = {k: v for k, v in os.environ.items() if k != "DICOMCLOAK_KEY_FILE"} | {"COLUMNS": "160"}
    process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=environ)
    os.close(slave)
    chunks = []
    try:
        while data := _read(master):
            chunks.append(data)
    finally:
        os.close(master)
        process.wait(timeout=120)
    assert process.returncode == 0
    screen = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", b"".join(chunks)).decode(errors="replace")
    assert re.search(r"6/6 files [0-9.]+ files/s ETA", screen), screen
    assert "Smithers" not in screen


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the terminal's other side is closed
        return b""
