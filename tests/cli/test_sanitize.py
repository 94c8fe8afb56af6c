"""``dicomcloak sanitize`` end to end, and the verdict events ``deid`` writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

from pydicom import dcmread

from dicomcloak.testing.hostile import PAYLOAD, private_payload, with_preamble

RunCli = Callable[..., CompletedProcess[str]]
PATIENT_NAME = "Smithers^Waylon"


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _events(run_dir: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (run_dir / "latest" / "events.jsonl").read_text().splitlines()]


def test_sanitize_rebuilds_clean_files_and_quarantines_polyglots(
    run_cli: RunCli, dicom_tree: Path, tmp_path: Path
) -> None:
    (dicom_tree / "polyglot.dcm").write_bytes(with_preamble("pe"))
    (dicom_tree / "private.dcm").write_bytes(private_payload("OB"))
    before = _snapshot(dicom_tree)
    out = tmp_path / "clean"
    result = run_cli("sanitize", dicom_tree, "--out", out, "--jobs", "2", "--json")
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["files"], summary["written"], summary["quarantined"]) == (8, 7, 1)
    assert summary["reasons"] == {"preamble-executable": 1}
    assert summary["command"] == "sanitize"
    assert _snapshot(dicom_tree) == before  # inputs never modified
    outputs = sorted(out.rglob("*.dcm"))
    assert len(outputs) == 7
    for path in outputs:
        data = path.read_bytes()
        assert data[:128] == bytes(128)
        assert PAYLOAD[:32] not in data
        dcmread(path)
    assert dcmread(out / "Smithers_Waylon" / "series0" / "img000.dcm").PatientName == PATIENT_NAME  # not deid
    run_dir = tmp_path / "clean.run"
    reason = json.loads(next((run_dir / "quarantine").rglob("*.reason.json")).read_text())
    assert reason["reason"] == "preamble-executable"
    events = _events(run_dir)
    assert len(events) == 8
    alerts = [event for event in events if event["alert"]]
    assert [(e["verdict"], e["reason"], e["preamble"]) for e in alerts] == [
        ("quarantined", "preamble-executable", "pe")
    ]
    assert any(event["removed"].get("private") for event in events)  # type: ignore[attr-defined]
    assert PATIENT_NAME not in (run_dir / "latest" / "events.jsonl").read_text()


def test_sanitize_is_idempotent_on_its_own_output(run_cli: RunCli, dicom_tree: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    assert run_cli("sanitize", dicom_tree, "--out", first, "--jobs", "1").returncode == 0
    assert run_cli("sanitize", first, "--out", second, "--jobs", "1").returncode == 0
    assert _snapshot(first) == _snapshot(second)


def test_sanitize_choices_on_the_command_line(run_cli: RunCli, tmp_path: Path) -> None:
    from dicomcloak.testing.hostile import encapsulated_pdf

    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "doc.dcm").write_bytes(encapsulated_pdf())
    assert run_cli("sanitize", inputs, "--out", tmp_path / "a").returncode == 1
    kept = run_cli("sanitize", inputs, "--out", tmp_path / "b", "--documents", "keep")
    assert kept.returncode == 0, kept.stderr
    bad = run_cli("sanitize", inputs, "--out", tmp_path / "c", "--documents", "shred")
    assert bad.returncode == 2
    assert "error[policy-bad-value]" in bad.stderr


def test_deid_writes_one_event_per_input(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    (dicom_tree / "elf.dcm").write_bytes(with_preamble("elf"))
    result = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "--jobs", "1")
    assert result.returncode == 1, result.stderr
    events = _events(tmp_path / "out.run")
    assert len(events) == 7
    assert sorted(e["reason"] for e in events if e["verdict"] == "quarantined") == ["preamble-executable"]
    assert sum(1 for e in events if e["alert"]) == 1


def test_deid_reads_with_the_site_policys_limits(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    from dicomcloak.testing.hostile import nested_sequences

    # Referenced Image Sequence (kept by de-identification, so opened) instead of Content Sequence (removed)
    nested = nested_sequences(3, undefined=False).replace(b"\x40\x00\x30\xa7", b"\x08\x00\x40\x11")
    (dicom_tree / "nested.dcm").write_bytes(nested)
    policy = tmp_path / "site.toml"
    policy.write_text("[sanitize.limits]\nmax_sequence_depth = 2\n")
    args = ("--out", tmp_path / "out", "--key", key_file, "--jobs", "1", "--json")
    summary = json.loads(run_cli("deid", dicom_tree, *args, "--policy", policy).stdout)
    assert summary["reasons"] == {"sequence-too-deep": 1}
    relaxed = json.loads(run_cli("deid", dicom_tree, "--out", tmp_path / "out2", *args[2:]).stdout)
    assert relaxed["quarantined"] == 0
