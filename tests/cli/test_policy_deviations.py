"""Beyond-table rows, ``--strict-table`` and deviations through the real console script."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pydicom

RunCli = Callable[..., CompletedProcess[str]]
DATA = Path(__file__).resolve().parents[1] / "data" / "beyond-table"
PLANTED = ("PatientBirthDateInAlternativeCalendar", "PatientDeathDateInAlternativeCalendar",
           "PatientAlternativeCalendar", "ResponsiblePersonRole")
KEEP_IDENTITY = '[tags]\nPatientName = "K"\nPatientID = "K"\nPatientBirthDate = "K"\n'


def _site(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _penn_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "penn"
    tree.mkdir()
    shutil.copy(DATA / "penn_prisma_vnavsetter.dcm", tree / "phantom.dcm")
    return tree


def _deid(run_cli: RunCli, tree: Path, out: Path, key: Path, *extra: str | Path) -> dict[str, Any]:
    result = run_cli("deid", tree, "--out", out, "--key", key, "--jobs", "1", "--json", *extra)
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    summary["stderr"] = result.stderr
    return summary


def _only_output(out: Path) -> pydicom.Dataset:
    (path,) = sorted(out.rglob("*.dcm"))
    return pydicom.dcmread(path)


def test_explain_shows_beyond_table_rows_unless_strict(run_cli: RunCli) -> None:
    rows = json.loads(run_cli("policy", "explain", "--json").stdout)["rows"]
    by_tag = {row["tag"]: row for row in rows}
    assert (by_tag["(0010,0033)"]["action"], by_tag["(0010,0033)"]["source"]) == ("X", "beyond-table")
    strict = json.loads(run_cli("policy", "explain", "--strict-table", "--json").stdout)["rows"]
    assert not [row for row in strict if row["source"].startswith("beyond-table")]
    text = run_cli("policy", "explain").stdout
    assert "beyond-table" in text and "ResponsiblePersonRole" in text


def test_explain_deviations_text_and_json(run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("policy", "explain", "--deviations").stdout.startswith("no deviations")
    site = _site(tmp_path, KEEP_IDENTITY)
    text = run_cli("policy", "explain", "--deviations", "--policy", site)
    assert text.returncode == 0, text.stderr
    assert len(text.stdout.splitlines()) == 4 and "PatientBirthDate" in text.stdout
    document = json.loads(run_cli("policy", "explain", "--deviations", "--policy", site, "--json").stdout)
    keywords = [row["keyword"] for row in document["deviations"]]
    assert keywords == ["PatientName", "PatientID", "PatientBirthDate"]
    assert all(row["weakens"] and row["source"] == "site:tag" for row in document["deviations"])


def test_deid_removes_planted_values_by_default(run_cli: RunCli, tmp_path: Path, key_file: Path) -> None:
    tree = _penn_tree(tmp_path)
    summary = _deid(run_cli, tree, tmp_path / "out", key_file)
    out = _only_output(tmp_path / "out")
    assert [keyword for keyword in PLANTED if keyword in out] == []
    assert "warning" not in summary["stderr"]
    report = json.loads(Path(summary["report"]).read_text())
    assert report["deviations"] == []
    beyond = {row["keyword"] for row in report["changes"] if row["source"] == "beyond-table"}
    assert set(PLANTED) <= beyond
    assert all("keyword" in row for row in report["changes"])


def test_strict_table_keeps_them(run_cli: RunCli, tmp_path: Path, key_file: Path) -> None:
    tree = _penn_tree(tmp_path)
    original = pydicom.dcmread(tree / "phantom.dcm")
    _deid(run_cli, tree, tmp_path / "strict", key_file, "--strict-table")
    strict_file = _site(tmp_path, "[policy]\nstrict_table = true\n")
    _deid(run_cli, tree, tmp_path / "file", key_file, "--policy", strict_file)
    for out in (tmp_path / "strict", tmp_path / "file"):
        kept = _only_output(out)
        assert [str(kept[keyword].value) for keyword in PLANTED] == [
            str(original[keyword].value) for keyword in PLANTED
        ]
        assert kept.PatientIdentityRemoved == "YES"


def test_site_policy_keeping_identity_is_reported_and_marked(
    run_cli: RunCli, dicom_tree: Path, tmp_path: Path, key_file: Path
) -> None:
    site = _site(tmp_path, KEEP_IDENTITY)
    summary = _deid(run_cli, dicom_tree, tmp_path / "out", key_file, "--policy", site)
    warnings = [line for line in summary["stderr"].splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "3 attribute(s)" in warnings[0] and "policy explain --deviations" in warnings[0]
    assert "report.json" in warnings[0]
    report = json.loads(Path(summary["report"]).read_text())
    assert report["deviations"] == [
        {"tag": tag, "keyword": keyword, "profile_action": profile, "action": "K", "source": "site:tag",
         "weakens": True}
        for tag, keyword, profile in (
            ("(0010,0010)", "PatientName", "Z"),
            ("(0010,0020)", "PatientID", "Z/D"),
            ("(0010,0030)", "PatientBirthDate", "Z"),
        )
    ]
    for path in sorted((tmp_path / "out").rglob("*.dcm")):
        out = pydicom.dcmread(path)
        assert out.PatientIdentityRemoved == "NO"
        assert "DeidentificationMethodCodeSequence" not in out
        assert "113100" not in path.read_bytes().decode("latin-1")


def test_other_commands_take_strict_table(
    run_cli: RunCli, dicom_tree: Path, tmp_path: Path, key_file: Path
) -> None:
    _deid(run_cli, dicom_tree, tmp_path / "out", key_file, "--strict-table")
    verify = run_cli("verify", dicom_tree, tmp_path / "out", "--key", key_file, "--strict-table")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    sanitize = run_cli("sanitize", dicom_tree, "--out", tmp_path / "clean", "--strict-table", "--jobs", "1")
    assert sanitize.returncode == 0, sanitize.stderr
    reid = run_cli("reid", "--help")
    assert "--strict-table" in reid.stdout
