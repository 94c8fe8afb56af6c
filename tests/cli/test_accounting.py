"""Every entry the input walk sees is counted: ``files = written + duplicates + quarantined + skipped``.

The tree holds what a real export or a hostile one can: a zip with a zip-slip
member (``../evil.dcm``), a symbolic link to a real DICOM file outside the
input, a symbolically linked directory inside it, a link cycle, a dangling
link and a FIFO (which must never block the walk). Each command that walks
(``deid``, ``sanitize``, ``reid``) accounts for every entry, lists each one not
written by index with its reason, and names no input path in the report or
on stdout (every name here holds the planted patient name).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

RunCli = Callable[..., CompletedProcess[str]]
PATIENT_NAME = "Smithers^Waylon"  # planted by tests/conftest.py

#: What the walk of the tree below skips, by reason.
SKIPS = {
    "symlink-outside-input": 1,  # outside.dcm -> a real DICOM file beside the input
    "symlink-duplicate": 2,  # series-link -> series0 (inside), and the cycle loop -> .
    "dangling-symlink": 1,
    "not-regular-file": 1,  # the FIFO
}


def _add_hazards(root: Path, outside: Path, members: dict[str, bytes], tmp_path: Path) -> Path:
    """Under ``root/Smithers_Waylon`` (with ``series0`` and ``series1``): a zip of ``members`` and a
    zip-slip member, a link to ``outside``, a linked directory, a link cycle, a dangling link, a FIFO."""
    top = root / "Smithers_Waylon"
    with zipfile.ZipFile(top / "export.zip", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    (top / "Waylon-outside.dcm").symlink_to(outside)
    (top / "Waylon-series-link").symlink_to("series0", target_is_directory=True)
    (top / "series1" / "Waylon-loop").symlink_to(".", target_is_directory=True)
    (top / "Waylon-gone.dcm").symlink_to(tmp_path / "nowhere.dcm")
    os.mkfifo(top / "Waylon.fifo")
    return root


def _hostile_tree(root: Path, make: Callable[..., Path], tmp_path: Path) -> Path:
    """6 real instances, a zip of 2 more and a zip-slip member (a real DICOM file), and the hazards."""
    for index in range(6):
        make(root / "Smithers_Waylon" / f"series{index // 3}" / f"img{index}.dcm", index)
    staged = [make(tmp_path / "staging" / f"z{index}.dcm", index).read_bytes() for index in (10, 11, 12)]
    members = {"series9/a.dcm": staged[0], "series9/b.dcm": staged[1], "../Waylon-evil.dcm": staged[2]}
    outside = make(tmp_path / "elsewhere" / "Smithers_Waylon_private.dcm", 20)
    return _add_hazards(root, outside, members, tmp_path)


@pytest.fixture
def hostile_tree(tmp_path: Path, instance_factory: Callable[..., Path]) -> Path:
    return _hostile_tree(tmp_path / "in", instance_factory, tmp_path)


def _report(run_dir: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((run_dir / "latest" / "report.json").read_text())
    return report


def _assert_accounted(summary: dict[str, Any], report: dict[str, Any], files: int) -> None:
    """The identity holds, each entry not written is listed once by index with its status and reason."""
    parts = summary["written"] + summary["duplicates"] + summary["quarantined"] + summary["skipped"]
    assert summary["files"] == parts == files
    listed = report["not_written"]
    assert len(listed) == files - summary["written"]
    assert len({entry["index"] for entry in listed}) == len(listed)
    assert all(0 <= entry["index"] < files for entry in listed)
    skips = Counter(entry["reason"] for entry in listed if entry["status"] == "skipped")
    assert skips == Counter(summary["skip_reasons"]) == Counter(SKIPS)
    assert report["summary"] == summary


def _assert_no_paths(text: str, tree: Path) -> None:
    """Every input name here holds the planted patient name (as real exports' names often do)."""
    for needle in ("Smithers", "Waylon", str(tree)):
        assert needle not in text, needle


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_deid_counts_every_entry_of_a_hostile_tree(
    run_cli: RunCli, hostile_tree: Path, key_file: Path, tmp_path: Path, jobs: str
) -> None:
    out = tmp_path / "out"
    result = run_cli("deid", hostile_tree, "--out", out, "--key", key_file, "-j", jobs, "--json")
    assert result.returncode == 1, result.stderr  # the zip-slip member is quarantined
    summary = json.loads(result.stdout)
    report = _report(tmp_path / "out.run")
    # 6 files + 2 zip members written; the zip-slip member quarantined; 5 entries skipped.
    assert (summary["written"], summary["duplicates"], summary["quarantined"]) == (8, 0, 1)
    assert summary["reasons"] == {"unsafe-path": 1}
    _assert_accounted(summary, report, 14)
    assert len(list(out.rglob("*.dcm"))) == 8  # the linked directory's files once, the outside file never
    report_text = (tmp_path / "out.run" / "latest" / "report.json").read_text()
    _assert_no_paths(report_text + result.stdout, hostile_tree)
    # The zip-slip member's bytes are kept, under a defused name inside the quarantine, with their reason.
    (reason,) = (tmp_path / "out.run" / "quarantine").rglob("*.reason.json")
    assert json.loads(reason.read_text())["reason"] == "unsafe-path"
    assert reason.parent.name == "__" and reason.parent.parent.name == "unsafe-path"
    assert not (tmp_path / "Waylon-evil.dcm").exists() and not list(out.rglob("*evil*"))
    # One warning, counts and reasons only.
    warning = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert len(warning) == 1 and "symlink-outside-input: 1" in warning[0]
    _assert_no_paths(result.stderr.replace(str(tmp_path / "out.run"), ""), hostile_tree)


def test_deid_human_summary_shows_the_skips(
    run_cli: RunCli, hostile_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    result = run_cli("deid", hostile_tree, "--out", tmp_path / "out", "--key", key_file, "-j", "1")
    assert result.returncode == 1, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    assert lines["skipped"].split()[1] == "5" and "not-regular-file: 1" in lines["skipped"]
    assert "unsafe-path: 1" in lines["quarantined"]
    assert result.stdout.startswith("14 files")


def test_sanitize_counts_every_entry(run_cli: RunCli, hostile_tree: Path, tmp_path: Path) -> None:
    result = run_cli("sanitize", hostile_tree, "--out", tmp_path / "clean", "-j", "1", "--json")
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    _assert_accounted(summary, _report(tmp_path / "clean.run"), 14)
    events = (tmp_path / "clean.run" / "latest" / "events.jsonl").read_text().splitlines()
    assert len(events) == 9  # one verdict per input judged: 8 written and the zip-slip member, no skips


def test_reid_counts_every_entry(
    run_cli: RunCli, hostile_tree: Path, key_file: Path, tmp_path: Path, instance_factory: Callable[..., Path]
) -> None:
    """What comes back from outside is walked by the same rules (a link out, a FIFO, a zip slip)."""
    vault = f"sqlite:///{tmp_path / 'vault.db'}"
    out = tmp_path / "out"
    made = run_cli("deid", hostile_tree, "--out", out, "--key", key_file, "-j", "1", "--vault", vault)
    assert made.returncode == 1, made.stderr
    outputs = [path.read_bytes() for path in sorted(out.rglob("*.dcm"))]
    returned = tmp_path / "returned"
    for index, data in enumerate(outputs[:6]):
        target = returned / "Smithers_Waylon" / f"series{index // 3}" / f"r{index}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    members = {"a.dcm": outputs[6], "b.dcm": outputs[7], "../Waylon-evil.dcm": b"not even DICOM"}
    _add_hazards(returned, instance_factory(tmp_path / "x" / "o.dcm", 30), members, tmp_path)
    result = run_cli(
        "reid", returned, "--out", tmp_path / "back", "--vault", vault, "--key", key_file, "--json"
    )
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["written"], summary["quarantined"], summary["skipped"]) == (8, 1, 5)
    _assert_accounted(summary, _report(tmp_path / "back.run"), 14)
    report_text = (tmp_path / "back.run" / "latest" / "report.json").read_text()
    _assert_no_paths(report_text + result.stdout, returned)
