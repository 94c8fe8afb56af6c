"""``--from-list FILE``: one path a line, comments and blanks ignored, errors by line number, not path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dicomcloak.errors import UsageError
from dicomcloak.io.pathlist import read_path_list

RunCli = Callable[..., subprocess.CompletedProcess[str]]
#: A path component that stands for a patient's name: it must never be shown.
SECRET = "Quarantotto_Zebedee"


def _write_list(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_good_blank_and_commented_lines(tmp_path: Path, dicom_tree: Path) -> None:
    one = next(dicom_tree.rglob("*.dcm"))
    listed = _write_list(tmp_path / "list.txt", [
        "# exported 2026-12-07", "", str(dicom_tree), "   ", "  # indented comment", str(one) + "\r",
    ])
    assert read_path_list(listed) == [(3, dicom_tree), (6, one)]


def test_a_missing_path_names_its_line_not_the_path(tmp_path: Path, dicom_tree: Path) -> None:
    lines = [str(dicom_tree), "# next one is gone", str(tmp_path / SECRET)]
    listed = _write_list(tmp_path / "list.txt", lines)
    with pytest.raises(UsageError) as caught:
        read_path_list(listed)
    assert caught.value.reference == "input-missing"
    assert caught.value.message == "line 3: input does not exist"
    assert SECRET not in str(caught.value) and SECRET not in caught.value.hint


def test_a_fifo_is_refused_by_line_and_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / SECRET
    os.mkfifo(fifo)
    with pytest.raises(UsageError) as caught:
        read_path_list(_write_list(tmp_path / "list.txt", [str(fifo)]))
    assert caught.value.reference == "input-not-regular"
    assert "line 1" in str(caught.value) and SECRET not in str(caught.value)


def test_a_list_not_in_utf8_or_missing_is_a_usage_error(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.txt"
    latin.write_bytes(b"/data/M\xfcller\n")
    with pytest.raises(UsageError) as caught:
        read_path_list(latin)
    assert caught.value.reference == "input-list-unreadable" and "line 1" in str(caught.value)
    with pytest.raises(UsageError) as missing:
        read_path_list(tmp_path / "nowhere.txt")
    assert missing.value.reference == "input-list-unreadable"


def test_deid_from_list_with_arguments(run_cli: RunCli, tmp_path: Path, dicom_tree: Path, dicom_zip: Path,
                                       key_file: Path) -> None:
    listed = _write_list(tmp_path / "list.txt", ["# the zip export", str(dicom_zip), ""])
    out = tmp_path / "out"
    done = run_cli("deid", dicom_tree, "--from-list", listed, "--out", out, "--key", key_file, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["files"], summary["written"]) == (9, 9)  # 6 from the argument, 3 from the listed zip


def test_deid_from_list_refuses_a_missing_line_before_any_work(run_cli: RunCli, tmp_path: Path,
                                                                dicom_tree: Path, key_file: Path) -> None:
    listed = _write_list(tmp_path / "list.txt", [str(dicom_tree), str(tmp_path / SECRET / "img.dcm")])
    done = run_cli("deid", "--from-list", listed, "--out", tmp_path / "out", "--key", key_file)
    assert done.returncode == 2, done.stderr
    assert "line 2: input does not exist" in done.stderr
    assert SECRET not in done.stderr + done.stdout
    assert not (tmp_path / "out").exists()


def test_deid_from_list_refuses_an_output_inside_a_listed_input(run_cli: RunCli, tmp_path: Path,
                                                                 dicom_tree: Path, key_file: Path) -> None:
    listed = _write_list(tmp_path / "list.txt", [str(dicom_tree)])
    done = run_cli("deid", "--from-list", listed, "--out", dicom_tree / "out", "--key", key_file)
    assert done.returncode == 2
    assert "line 1 of --from-list: the output is inside this input" in done.stderr
    assert str(dicom_tree) not in done.stderr.replace(str(dicom_tree / "out"), "")


def test_deid_reads_the_list_from_standard_input(tmp_path: Path, dicom_tree: Path, key_file: Path) -> None:
    script = Path(sys.executable).with_name("dicomcloak")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "dicomcloak.cli.app"]
    environ = {key: value for key, value in os.environ.items() if key != "DICOMCLOAK_KEY_FILE"}
    done = subprocess.run(
        [*command, "sanitize", "--from-list", "-", "--out", str(tmp_path / "out"), "--json"],
        input=f"# one tree\n{dicom_tree}\n", capture_output=True, text=True, env=environ, cwd=tmp_path,
        timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["written"] == 6


def test_no_input_at_all_is_a_usage_error(run_cli: RunCli, tmp_path: Path, key_file: Path) -> None:
    done = run_cli("deid", "--out", tmp_path / "out", "--key", key_file)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error[usage]: Missing argument 'INPUT...' (or --from-list FILE).",
        "  hint: see 'dicomcloak deid --help'",
    ]


def test_reid_from_list_restores_the_listed_files_only(run_cli: RunCli, tmp_path: Path, dicom_tree: Path,
                                                       key_file: Path) -> None:
    vault = f"sqlite:///{tmp_path / 'vault.db'}"
    deidentified = tmp_path / "deid"
    done = run_cli("deid", dicom_tree, "--out", deidentified, "--key", key_file, "--vault", vault, "--json")
    assert done.returncode == 0, done.stderr
    outputs = sorted(deidentified.rglob("*.dcm"))
    listed = _write_list(tmp_path / "list.txt", ["# two of them", str(outputs[0]), str(outputs[1])])
    restored = tmp_path / "restored"
    done = run_cli("reid", "--from-list", listed, "--out", restored, "--vault", vault, "--key", key_file,
                   "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["files"], summary["written"]) == (2, 2)
    assert len([path for path in restored.rglob("*") if path.is_file()]) == 2  # each under its own name
