"""``dicomcloak deid`` end to end: what lands in OUT, in the run dir, and in the JSON summary."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from pydicom import dcmread

RunCli = Callable[..., CompletedProcess[str]]
PATIENT_NAME = "Smithers^Waylon"

SUMMARY_KEYS = {
    "schema",
    "pixels",
    "pixels_mode",
    "pixels_sha256",
    "pixel_report",
    "uid_conflicts",
    "uid_conflict_resolution",
    "sealing",
    "files",
    "written",
    "duplicates",
    "quarantined",
    "skipped",
    "skip_reasons",
    "command",
    "policy_sha256",
    "changed_attributes",
    "bytes_in",
    "bytes_out",
    "seconds",
    "files_per_second",
    "reasons",
    "jobs",
    "layout",
    "domain",
    "options",
    "key_id",
    "ephemeral_key",
    "output",
    "run_dir",
    "quarantine",
    "report",
    "html_report",
}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _deid_json(run_cli: RunCli, *args: str | Path) -> tuple[CompletedProcess[str], dict[str, object]]:
    result = run_cli("deid", *args, "--json")
    return result, json.loads(result.stdout)


def test_directory_and_zip_write_only_dicom_under_out(
    run_cli: RunCli, dicom_tree: Path, dicom_zip: Path, key_file: Path, tmp_path: Path
) -> None:
    (dicom_tree / "notes.txt").write_text(f"report for {PATIENT_NAME}\n")
    out = tmp_path / "out"
    result, summary = _deid_json(
        run_cli, dicom_tree, dicom_zip, "--out", out, "--key", key_file, "--jobs", "1"
    )
    assert result.returncode == 1, result.stderr
    assert (summary["files"], summary["written"], summary["quarantined"]) == (10, 9, 1)
    assert summary["reasons"] == {"not-dicom": 1}
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) == 9
    assert all(p.suffix == ".dcm" for p in written)
    for path in written:
        assert PATIENT_NAME.split("^")[0] not in path.as_posix()
        assert dcmread(path).PatientName != PATIENT_NAME
    run_dir = tmp_path / "out.run"
    assert (run_dir / "latest" / "report.json").is_file()
    reasons = list((run_dir / "quarantine").rglob("*.reason.json"))
    assert len(reasons) == 1
    assert json.loads(reasons[0].read_text())["reason"] == "not-dicom"


def test_json_summary_schema(run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path) -> None:
    result, summary = _deid_json(
        run_cli,
        dicom_tree,
        "--out",
        tmp_path / "out",
        "--key",
        key_file,
        "--option",
        "retain-long-modified-dates",
        "--jobs",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert set(summary) == SUMMARY_KEYS
    assert summary["schema"] == "dicomcloak/deid-summary/1"
    assert summary["options"] == ["retain-long-modified-dates"]
    assert summary["layout"] == "pseudonymous"
    assert summary["ephemeral_key"] is False
    assert summary["sealing"] == {"embedded_recipients": 0, "vault": None, "audit": None}
    assert summary["changed_attributes"] > 0
    assert summary["run_dir"] == str(tmp_path / "out.run")


def test_report_has_no_phi_or_input_paths(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    (dicom_tree / "Smithers_Waylon" / "scan-notes.txt").write_text("x")
    result = run_cli(
        "deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "--jobs", "1", "--json"
    )
    assert result.returncode == 1
    text = (tmp_path / "out.run" / "latest" / "report.json").read_text() + result.stdout
    for needle in ("Smithers", "Waylon", "MRN-4471", "scan-notes", str(dicom_tree)):
        assert needle not in text
    report = json.loads((tmp_path / "out.run" / "latest" / "report.json").read_text())
    assert [entry["reason"] for entry in report["not_written"]] == ["not-dicom"]
    assert set(report["not_written"][0]) == {"index", "status", "reason"}
    assert report["not_written"][0]["status"] == "quarantined"
    assert {"path", "action", "source", "count"} <= set(report["changes"][0])


def test_mirror_layout_copies_relative_paths(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run_cli("deid", dicom_tree, "--out", out, "--key", key_file, "--layout", "mirror", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert "verbatim" in result.stderr
    expected = {p.relative_to(dicom_tree).as_posix() for p in dicom_tree.rglob("*.dcm")}
    assert set(_files(out)) == expected


def test_jobs_1_and_2_give_byte_identical_outputs(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_cli("deid", dicom_tree, "--out", one, "--key", key_file, "--jobs", "1").returncode == 0
    result = run_cli("deid", dicom_tree, "--out", two, "--key", key_file, "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert _files(one) == _files(two)
    assert len(_files(one)) == 6


def test_same_instance_twice_is_written_once(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    first = next(iter(sorted(dicom_tree.rglob("*.dcm"))))
    copy_dir = tmp_path / "again"
    copy_dir.mkdir()
    shutil.copy(first, copy_dir / "copy.dcm")
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        result, summary = _deid_json(
            run_cli, dicom_tree, copy_dir, "--out", out, "--key", key_file, "--jobs", jobs
        )
        assert result.returncode == 0, result.stderr
        assert (summary["files"], summary["written"], summary["duplicates"]) == (7, 6, 1)
        assert len(_files(out)) == 6


def test_run_dir_and_quarantine_options(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    (dicom_tree / "junk.bin").write_bytes(b"\0" * 300)
    run_dir, qdir = tmp_path / "runs" / "r1", tmp_path / "q"
    result = run_cli(
        "deid",
        dicom_tree,
        "--out",
        tmp_path / "out",
        "--key",
        key_file,
        "--jobs",
        "1",
        "--run-dir",
        run_dir,
        "--quarantine",
        qdir,
    )
    assert result.returncode == 1, result.stderr
    assert (run_dir / "latest" / "report.json").is_file()
    assert list(qdir.rglob("*.reason.json"))
    assert not (tmp_path / "out.run").exists()


def test_same_key_same_pseudonyms_other_domain_differs(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert run_cli("deid", dicom_tree, "--out", a, "--key", key_file, "--jobs", "1").returncode == 0
    assert run_cli("deid", dicom_tree, "--out", b, "--key", key_file, "--jobs", "1").returncode == 0
    assert (
        run_cli(
            "deid", dicom_tree, "--out", c, "--key", key_file, "--domain", "partner-2", "--jobs", "1"
        ).returncode
        == 0
    )
    assert _files(a) == _files(b)
    assert set(_files(a)).isdisjoint(_files(c))


def _assert_no_input_names(result: CompletedProcess[str], directory: Path) -> None:
    """Exit 3 with output-unwritable, naming the directory the user gave but no input folder or file name."""
    assert result.returncode == 3, result.stderr
    assert "output-unwritable" in result.stderr and str(directory) in result.stderr
    assert "Smithers" not in result.stderr + result.stdout and "Waylon" not in result.stderr + result.stdout
    assert "img0" not in result.stderr


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_unwritable_mirrored_output_is_reported_without_the_input_path(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path, jobs: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "Smithers_Waylon").write_bytes(b"a file where the mirrored folder must go")
    result = run_cli("deid", dicom_tree, "--out", out, "--key", key_file, "--layout", "mirror", "-j", jobs)
    _assert_no_input_names(result, out)


def test_an_unwritable_quarantine_is_reported_without_the_input_path(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    (dicom_tree / "Smithers_Waylon" / "junk.bin").write_bytes(b"\0" * 300)
    qdir = tmp_path / "q"
    (qdir / dicom_tree.name).mkdir(parents=True)
    (qdir / dicom_tree.name / "Smithers_Waylon").write_bytes(b"a file where the quarantined folder must go")
    out = tmp_path / "out"
    result = run_cli("deid", dicom_tree, "--out", out, "--key", key_file, "-j", "1", "--quarantine", qdir)
    _assert_no_input_names(result, qdir)
