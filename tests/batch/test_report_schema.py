"""``report.json`` against its shipped JSON Schema (docs/reports.md), and its counts by modality.

Real runs (``deid`` and ``sanitize``, in-process) over real files with a
duplicate, a quarantined input and a skipped link; the schema is the package
data file, checked with :mod:`dicomcloak.testing.schema` (no ``jsonschema``
dependency) and, where ``jsonschema`` happens to be installed, with it too.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydicom.multival import MultiValue

from dicomcloak.batch.modality import OTHER, modality_code
from dicomcloak.batch.report import REPORT_SCHEMA, ReportBuilder, report_schema
from dicomcloak.batch.run import RunSettings, run_batch
from dicomcloak.batch.worker import FileResult, Status, WorkerSettings
from dicomcloak.io.inputs import iter_inputs
from dicomcloak.keys import ProjectKey
from dicomcloak.policy import build_policy
from dicomcloak.testing.corpus import build_corpus
from dicomcloak.testing.schema import problems

KEY = ProjectKey(b"r" * 32)


def _inputs(root: Path) -> Path:
    folder = build_corpus(root, 4, seed=2) / "files"
    shutil.copyfile(next(folder.rglob("I0001.dcm")), folder / "again.dcm")  # duplicate
    (folder / "notes.dcm").write_bytes(b"not DICOM")  # quarantined: not-dicom
    os.symlink(folder / "missing.dcm", folder / "dangling.dcm")  # skipped: dangling-symlink
    return folder


def _run(tmp_path: Path, deidentify: bool, jobs: int = 1) -> dict[str, Any]:
    name = "deid" if deidentify else "sanitize"
    worker = WorkerSettings(
        build_policy([]), KEY, "default", tmp_path / name, tmp_path / f"{name}.run" / "quarantine",
        deidentify=deidentify,
    )
    inputs = iter_inputs([_inputs(tmp_path / f"{name}-in")])
    summary = run_batch(inputs, RunSettings(worker, tmp_path / f"{name}.run", jobs))
    document: dict[str, Any] = json.loads(Path(summary.run["report"]).read_text("utf-8"))
    return document


@pytest.mark.parametrize("deidentify", [True, False], ids=["deid", "sanitize"])
def test_a_real_report_is_valid_against_the_shipped_schema(tmp_path: Path, deidentify: bool) -> None:
    document = _run(tmp_path, deidentify)
    assert document["schema"] == REPORT_SCHEMA
    assert problems(document, report_schema()) == []
    assert ("deviations" in document) is deidentify
    statuses = {entry["status"] for entry in document["not_written"]}
    assert statuses == ({"duplicate", "quarantined", "skipped"} if deidentify else {"quarantined", "skipped"})


def test_modalities_come_back_from_pool_workers(tmp_path: Path) -> None:
    document = _run(tmp_path, True, jobs=2)  # FileResult crosses a process boundary (its own pickling)
    written = {row["modality"]: row["written"] for row in document["modalities"] if row["written"]}
    assert sum(written.values()) == document["summary"]["written"] == 4
    assert "unknown" not in written and "other" not in written
    assert {row["modality"]: row["quarantined"] for row in document["modalities"]}["unknown"] == 1


def test_jsonschema_agrees_where_it_is_installed(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")  # not a dependency of dicomcloak
    jsonschema.Draft202012Validator(report_schema()).validate(_run(tmp_path, True))


def test_the_checker_finds_what_breaks_the_schema(tmp_path: Path) -> None:
    document = _run(tmp_path, True)
    document["summary"]["written"] = -1
    document["not_written"][0]["status"] = "lost"
    document["modalities"][0]["modality"] = "Smithers^Waylon"  # never a value: a defined term or other
    del document["changes"][0]["count"]
    document["extra"] = {}
    found = problems(document, report_schema())
    assert {line.split(":")[0] for line in found} == {
        "$.summary.written", "$.not_written[0].status", "$.modalities[0].modality", "$.changes[0]", "$",
    }


def test_the_checker_refuses_a_schema_keyword_it_does_not_check() -> None:
    with pytest.raises(ValueError, match="oneOf"):
        problems({}, {"oneOf": [{"type": "object"}]})


def test_the_schema_is_package_data_naming_its_version() -> None:
    schema = report_schema()
    assert schema["$id"] == REPORT_SCHEMA and schema["properties"]["schema"]["const"] == REPORT_SCHEMA


def test_modalities_count_each_outcome_and_follow_an_output_taken_back() -> None:
    builder = ReportBuilder()
    builder.add(FileResult(0, Status.WRITTEN, modality="CT"))
    builder.add(FileResult(1, Status.WRITTEN, modality="US"))
    builder.add(FileResult(2, Status.DUPLICATE, "duplicate-instance", modality="CT"))
    builder.add(FileResult(3, Status.QUARANTINED, "not-dicom"))
    builder.unplaced({0: 0, 4: 0}, "vault-busy")  # 0 was counted written; 4's result never arrived
    rows = {row.pop("modality"): row for row in builder.modality_rows()}
    assert rows == {
        "CT": {"written": 0, "duplicate": 1, "quarantined": 0, "unwritten": 1},
        "US": {"written": 1, "duplicate": 0, "quarantined": 0, "unwritten": 0},
        "unknown": {"written": 0, "duplicate": 0, "quarantined": 1, "unwritten": 1},
    }


@pytest.mark.parametrize(
    ("value", "code"),
    [("CT", "CT"), (" mr ", "MR"), ("RTSTRUCT", "RTSTRUCT"), ("SMITHERS", OTHER), ("CT\\MR", OTHER),
     (MultiValue(str, ["CT", "MR"]), OTHER), (None, ""), ("", "")],
)
def test_a_modality_is_a_defined_term_or_other_never_free_text(value: object, code: str) -> None:
    assert modality_code(value) == code


def test_a_reid_run_writes_a_valid_report_and_its_page(run_cli: Any, tmp_path: Path, key_file: Path) -> None:
    """``reid`` keeps the same versioned report and writes the same report.html (docs/reports.md)."""
    vault = f"sqlite:///{tmp_path / 'vault.db'}"
    deidentified = tmp_path / "deid"
    done = run_cli("deid", _inputs(tmp_path / "in"), "--out", deidentified, "--key", key_file,
                   "--vault", vault, "--json")
    assert done.returncode == 1, done.stderr  # notes.dcm is quarantined
    done = run_cli("reid", deidentified, "--out", tmp_path / "restored", "--vault", vault, "--key", key_file,
                   "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    document = json.loads(Path(summary["report"]).read_text("utf-8"))
    assert document["summary"]["schema"] == "dicomcloak/reid-summary/1"
    assert problems(document, report_schema()) == []
    page = Path(summary["html_report"])
    assert page.parent == Path(summary["report"]).parent and page.stat().st_mode & 0o777 == 0o600
    html = page.read_text("utf-8")
    assert "<svg" in html and f">{summary['written']}<" in html
