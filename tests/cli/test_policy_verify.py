"""``dicomcloak policy explain`` and ``dicomcloak verify`` through the real console script."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

from pydicom import dcmread

RunCli = Callable[..., CompletedProcess[str]]


def test_policy_explain_text_and_json(run_cli: RunCli) -> None:
    text = run_cli("policy", "explain")
    assert text.returncode == 0, text.stderr
    assert "(0010,0010)" in text.stdout
    as_json = run_cli("policy", "explain", "--option", "retain-uids", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)


def test_policy_explain_bad_file_exits_2(run_cli: RunCli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml\n")
    result = run_cli("policy", "explain", "--policy", bad)
    assert result.returncode == 2
    assert result.stderr.startswith("error[")


def test_verify_clean_output_exits_0(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run_cli("deid", dicom_tree, "--out", out, "--key", key_file, "--jobs", "1").returncode == 0
    result = run_cli("verify", dicom_tree, out, "--key", key_file)
    assert result.returncode == 0, result.stdout + result.stderr
    as_json = run_cli("verify", dicom_tree, out, "--key", key_file, "--json")
    assert json.loads(as_json.stdout)


def test_verify_finds_leak_exits_1(run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path) -> None:
    # The originals themselves, offered as "output", leak everything.
    result = run_cli("verify", dicom_tree, dicom_tree, "--key", key_file)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "LEAKS:" in result.stdout


#: Planted in the originals (never in a file name): no output of verify may hold any of them.
SECRETS = {
    "PatientName": "Qzorbl^Vexmit", "PatientID": "QZ-99137-X", "InstitutionName": "Vexmit Clinic Qzorbl",
    "PatientBirthDate": "19610203", "ReferringPhysicianName": "Draxil^Ombertine",
    "AccessionNumber": "AQ7731904",
}
_SHAPES = ("qzorbl", "vexmit", "qz-99137-x", "19610203", "1961-02-03", "03.02.1961", "draxil", "ombertine",
           "aq7731904")


def _planted_tree(root: Path, instance_factory: Callable[..., Path]) -> Path:
    for index in range(12):  # enough files for two chunks of work per process
        path = instance_factory(root / f"case{index // 4}" / f"img{index:02d}.dcm", index)
        ds = dcmread(path)
        for keyword, value in SECRETS.items():
            setattr(ds, keyword, value)
        ds.save_as(path, enforce_file_format=True)
    return root


def test_verify_never_prints_a_value_and_jobs_do_not_change_the_report(
    run_cli: RunCli, instance_factory: Callable[..., Path], key_file: Path, tmp_path: Path
) -> None:
    originals = _planted_tree(tmp_path / "in", instance_factory)
    seen = ""
    reports = {}
    for jobs in ("1", "2"):
        for extra in ((), ("--json",)):
            result = run_cli("verify", originals, originals, "--key", key_file, "--jobs", jobs, *extra)
            assert result.returncode == 1, result.stderr
            seen += result.stdout + result.stderr
            reports[(jobs, extra)] = result.stdout
    assert reports[("1", ())] == reports[("2", ())]
    assert reports[("1", ("--json",))] == reports[("2", ("--json",))]
    report = json.loads(reports[("1", ("--json",))])
    assert report["schema_version"] == 2
    assert report["outputs_with_findings"] == 12
    sources = {finding["source"] for finding in report["findings"]}
    assert {"PatientName (0010,0010)", "PatientID (0010,0020)", "PatientBirthDate (0010,0030)"} <= sources
    leaked = [shape for shape in _SHAPES if shape in seen.lower()]
    assert leaked == []


def test_verify_with_missing_or_empty_output_is_a_usage_error(
    run_cli: RunCli, dicom_tree: Path, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    cases = ((tmp_path / "empty", "verify-output-empty"), (tmp_path / "nope", "verify-output-missing"))
    for output, reference in cases:
        result = run_cli("verify", dicom_tree, output)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith(f"error[{reference}]")
        assert result.stdout == ""
    missing = run_cli("verify", tmp_path / "nope", dicom_tree)
    assert (missing.returncode, missing.stderr.split(":")[0]) == (2, "error[verify-original-missing]")


def test_verify_works_with_the_address_space_capped_far_below_the_read_limit(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    """``ulimit -v`` (shared clusters, strict overcommit): reading once asked for the whole 4 GiB limit."""
    out = tmp_path / "out"
    assert run_cli("deid", dicom_tree, "--out", out, "--key", key_file, "--jobs", "1").returncode == 0
    result = run_cli("verify", dicom_tree, out, "--key", key_file, address_space=3 << 30)
    assert result.returncode == 0, result.stdout + result.stderr
