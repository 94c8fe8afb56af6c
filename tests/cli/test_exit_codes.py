"""Exit codes: 0 done, 1 some inputs quarantined, 2 usage, 3 fatal; our errors print without a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

RunCli = Callable[..., CompletedProcess[str]]


def test_success_exits_0(run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path) -> None:
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert "written" in result.stdout


def test_no_key_exits_3_with_reference(run_cli: RunCli, dicom_tree: Path, tmp_path: Path) -> None:
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "out")
    assert result.returncode == 3
    assert "error[key-required]" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_key_file_exits_3(run_cli: RunCli, dicom_tree: Path, tmp_path: Path) -> None:
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", tmp_path / "nope.key")
    assert result.returncode == 3
    assert "error[key-file-missing]" in result.stderr


def test_key_from_environment(run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path) -> None:
    result = run_cli(
        "deid",
        dicom_tree,
        "--out",
        tmp_path / "out",
        "--jobs",
        "1",
        env={"DICOMCLOAK_KEY_FILE": str(key_file)},
    )
    assert result.returncode == 0, result.stderr


def test_key_option_wins_over_environment(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "deid",
        dicom_tree,
        "--out",
        tmp_path / "out",
        "--key",
        key_file,
        "--jobs",
        "1",
        env={"DICOMCLOAK_KEY_FILE": str(tmp_path / "absent.key")},
    )
    assert result.returncode == 0, result.stderr


def test_ephemeral_key_warns(run_cli: RunCli, dicom_tree: Path, tmp_path: Path) -> None:
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--ephemeral-key", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert "not be linkable" in result.stderr


def test_bad_option_exits_2(run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path) -> None:
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "--option", "keep-all")
    assert result.returncode == 2


def test_conflicting_options_exit_2(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "deid",
        dicom_tree,
        "--out",
        tmp_path / "out",
        "--key",
        key_file,
        "--option",
        "retain-long-full-dates",
        "--option",
        "retain-long-modified-dates",
    )
    assert result.returncode == 2
    assert "error[options-conflict]" in result.stderr


def test_missing_input_exits_2(run_cli: RunCli, key_file: Path, tmp_path: Path) -> None:
    result = run_cli("deid", tmp_path / "absent", "--out", tmp_path / "out", "--key", key_file)
    assert result.returncode == 2
    assert "error[input-missing]" in result.stderr


def test_out_inside_input_exits_2(run_cli: RunCli, dicom_tree: Path, key_file: Path) -> None:
    result = run_cli("deid", dicom_tree, "--out", dicom_tree / "out", "--key", key_file)
    assert result.returncode == 2
    assert "error[output-inside-input]" in result.stderr


def test_input_inside_out_exits_2(run_cli: RunCli, dicom_tree: Path, key_file: Path) -> None:
    result = run_cli("deid", dicom_tree, "--out", dicom_tree.parent, "--key", key_file)
    assert result.returncode == 2
    assert "error[input-inside-output]" in result.stderr


def test_run_dir_inside_out_exits_2(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run_cli("deid", dicom_tree, "--out", out, "--run-dir", out / "run", "--key", key_file)
    assert result.returncode == 2
    assert "error[run-dir-inside-output]" in result.stderr


def test_quarantine_exits_1(run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path) -> None:
    (dicom_tree / "notes.txt").write_text("not DICOM at all\n")
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "--jobs", "1")
    assert result.returncode == 1, result.stderr
    assert "quarantined         1" in result.stdout


def test_unwritable_output_exits_3(run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    result = run_cli("deid", dicom_tree, "--out", blocker / "out", "--key", key_file, "--jobs", "1")
    assert result.returncode == 3
    assert "error[output-unwritable]" in result.stderr
