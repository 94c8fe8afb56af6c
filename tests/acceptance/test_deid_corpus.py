"""Acceptance: ``dicomcloak deid`` on a 120-file synthetic PHI corpus, scored by the leak checker.

The bar (shared/eval/README.md): 0 PHI strings leaked, no parse failure, no
missing output, no original UID left, study and series UID groups neither
split nor merged, every reference intact, pixels identical, no validator
error added; plus determinism across worker counts and unlinkability across
keys and pseudonym domains.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.uid import UID

from dicomcloak.testing import evaluate

from .conftest import DEFAULT_OPTIONS, N_FILES, Run, Shared, run_cli

pytestmark = [pytest.mark.acceptance, pytest.mark.slow]

SHARED_EVAL = Path(__file__).resolve().parents[2].parent / "shared" / "eval"


def _assert_clean(res: dict[str, Any]) -> None:
    summary = {k: res[k] for k in ("parse_fail", "missing_outputs", "unmapped_outputs", "phi_leaked",
                                   "files_with_original_uid", "pixels_changed")}
    assert summary == dict.fromkeys(summary, 0), (summary, res["leak_found_in"], res["original_uid_found_in"])
    assert res["pixels_intact"] == res["n_corpus"] == N_FILES
    for group in ("study_uid_consistency", "series_uid_consistency"):
        c = res[group]
        assert (c["split_groups"], c["merged_groups"], c["empty_uid_groups"]) == (0, 0, 0), (group, c)
    assert set(res["refs"]) == {"ok"}, res["refs"]
    assert res["refs"]["ok"] > 0


@pytest.mark.parametrize("profile", ["default", "basic"])
def test_no_phi_no_original_uid_refs_and_pixels_intact(
    profile: str, corpus: Path, default_run: Run, basic_run: Run
) -> None:
    run = default_run if profile == "default" else basic_run
    assert run.result.returncode == 0, run.result.stdout
    _assert_clean(evaluate(corpus, run.out))


def test_verify_passes_on_output_and_fails_on_planted_value(
    corpus: Path, default_run: Run, basic_run: Run, key_a: Path, tmp_path: Path
) -> None:
    ok = run_cli("verify", corpus / "files", default_run.out, "--key", key_a, *DEFAULT_OPTIONS)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert run_cli("verify", corpus / "files", basic_run.out).returncode == 0

    planted = tmp_path / "planted"
    shutil.copytree(default_run.out, planted)
    answer = json.loads((corpus / "answer_key.json").read_text())
    accession = next(e["value"] for f in answer["files"].values() for e in f["phi"]
                     if e["attr"] == "AccessionNumber")
    victim = sorted(planted.rglob("*.dcm"))[7]
    ds = dcmread(victim)
    ds.ImageComments = f"order {accession.lower()}"
    ds.save_as(victim, enforce_file_format=True)
    leak = run_cli("verify", corpus / "files", planted, "--key", key_a, *DEFAULT_OPTIONS)
    assert leak.returncode == 1, leak.stdout + leak.stderr
    assert victim.relative_to(planted).as_posix() in leak.stdout
    assert accession.lower() not in (leak.stdout + leak.stderr).lower()


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_key_and_domain_give_byte_identical_output_for_any_worker_count(
    shared: Shared, default_run: Run
) -> None:
    one_worker = shared.deid("out-default-jobs1", *DEFAULT_OPTIONS, "--pixels", "off", jobs=1)
    assert one_worker.result.returncode == 0, one_worker.result.stdout
    two, one = _tree(default_run.out), _tree(one_worker.out)
    assert len(two) == N_FILES
    assert sorted(two) == sorted(one)
    assert [rel for rel in two if two[rel] != one[rel]] == []


def _identifiers(root: Path) -> tuple[set[str], set[str]]:
    uids: set[str] = set()
    patient_ids: set[str] = set()
    for path in root.rglob("*.dcm"):
        ds = dcmread(path, stop_before_pixels=True)
        patient_ids.add(str(ds.get("PatientID", "")))
        uids.add(str(ds.file_meta.MediaStorageSOPInstanceUID))
        # every instance UID of the data set (registered UIDs are SOP classes, transfer syntaxes, ...)
        ds.walk(lambda _, elem: uids.update(
            str(v) for v in (elem.value if elem.VM > 1 else [elem.value])
            if elem.VR == "UI" and v and UID(str(v)).keyword == ""))
    return uids, patient_ids


@pytest.mark.parametrize(("name", "extra", "key"), [
    ("out-key-b", (), "key-b"),
    ("out-domain-b", ("--domain", "partner-b"), "key-a"),
])
def test_other_key_or_domain_shares_no_uid_and_no_patient_id(
    shared: Shared, default_run: Run, name: str, extra: tuple[str, ...], key: str
) -> None:
    other = shared.deid(name, *DEFAULT_OPTIONS, *extra, key=key)
    assert other.result.returncode == 0, other.result.stdout
    uids_a, pids_a = _identifiers(default_run.out)
    uids_b, pids_b = _identifiers(other.out)
    assert len(uids_a) > N_FILES and len(uids_b) == len(uids_a)
    assert pids_a and "" not in pids_a
    assert uids_a.isdisjoint(uids_b)
    assert pids_a.isdisjoint(pids_b)


@pytest.mark.skipif(not (SHARED_EVAL / "evaluate.py").exists(), reason="no ../shared/eval (a clone)")
def test_shared_evaluate_agrees(corpus: Path, default_run: Run, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SHARED_EVAL / "evaluate.py"), "--corpus", str(corpus),
         "--out", str(default_run.out), "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    _assert_clean(json.loads((tmp_path / "r.json").read_text()))


@pytest.mark.external
@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) not installed")
def test_dciodvfy_finds_no_new_error(corpus: Path, default_run: Run) -> None:
    res = evaluate(corpus, default_run.out, validate_sample=6)
    validator = res["validator"]
    assert validator["sampled"] >= 4
    assert validator["files_with_new_errors"] == 0, validator
    assert validator["errors_introduced_total"] <= 0, validator
