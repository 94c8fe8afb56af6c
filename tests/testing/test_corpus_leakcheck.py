"""The synthetic corpus is reproducible and complete; the leak checker scores a plain copy as all-leaking."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dicomcloak.testing import build_corpus, evaluate

SHARED_EVAL = Path(__file__).resolve().parents[2].parent / "shared" / "eval"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("corpus") / "c", 24, seed=11, max_big=1)


def _same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(a, b, [str(p) for p in files_a], shallow=False)
    return files_a == files_b and not mismatch and not errors


def test_same_seed_same_bytes_other_seed_other_uids(corpus: Path, tmp_path: Path) -> None:
    again = build_corpus(tmp_path / "again", 24, seed=11, max_big=1)
    assert _same_tree(corpus, again)
    other = build_corpus(tmp_path / "other", 24, seed=12, max_big=1)
    uids = {u for f in json.loads((corpus / "answer_key.json").read_text())["files"].values()
            for u in f["uids"].values()}
    other_uids = {u for f in json.loads((other / "answer_key.json").read_text())["files"].values()
                  for u in f["uids"].values()}
    assert not uids & other_uids


def test_layout_and_answer_key(corpus: Path) -> None:
    answer = json.loads((corpus / "answer_key.json").read_text())
    files: dict[str, Any] = answer["files"]
    assert len(files) == 24
    assert answer["total_bytes"] == sum(f["size"] for f in files.values())
    on_disk = {p.relative_to(corpus / "files").as_posix() for p in (corpus / "files").rglob("*.dcm")}
    assert on_disk == set(files)
    assert all(rel.count("/") == 3 and rel.startswith("P") for rel in files)
    assert [f["kind"] for f in files.values()].count("mf_big") == 1
    assert len({f["pixel_sha1"] for f in files.values()}) == 24
    first = files[sorted(files)[0]]
    kinds = {e["kind"] for e in first["phi"]}
    assert kinds >= {"name", "name_part", "id", "date", "time", "text", "date_text"}


def test_plain_copy_leaks_everything(corpus: Path, tmp_path: Path) -> None:
    shutil.copytree(corpus / "files", tmp_path / "copy")
    res = evaluate(corpus, tmp_path / "copy", validate_sample=2 if shutil.which("dciodvfy") else 0)
    assert (res["parse_fail"], res["missing_outputs"], res["pixels_intact"]) == (0, 0, 24)
    assert res["phi_leaked"] == res["phi_entries_checked"] > 0
    assert res["files_with_original_uid"] == 24
    assert res["refs"].get("stale_original", 0) > 0
    if "validator" in res:
        assert res["validator"]["errors_introduced_total"] == 0


def test_missing_and_broken_outputs_are_counted(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "partial"
    shutil.copytree(corpus / "files", out)
    victims = sorted(out.rglob("*.dcm"))[:2]
    victims[0].unlink()
    victims[1].write_bytes(b"not dicom at all")
    res = evaluate(corpus, out)
    assert res["missing_outputs"] == 2
    assert res["parse_fail"] + res["unmapped_outputs"] == 1


def test_module_cli(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-W", "error", "-m", "dicomcloak.testing.corpus", "--out", str(tmp_path / "c"),
         "--n", "3", "--seed", "2"],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("wrote 3 files")
    check = subprocess.run(
        [sys.executable, "-W", "error", "-m", "dicomcloak.testing.leakcheck", "--corpus", str(tmp_path / "c"),
         "--out", str(tmp_path / "c" / "files")],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["phi_leaked"] > 0


@pytest.mark.skipif(not (SHARED_EVAL / "evaluate.py").exists(), reason="shared/eval not present (a clone)")
def test_same_result_as_shared_evaluate(corpus: Path, tmp_path: Path) -> None:
    shutil.copytree(corpus / "files", tmp_path / "copy")
    ours = evaluate(corpus, tmp_path / "copy")
    # shared/eval is run as its authors run it: a script in its own process
    run = subprocess.run(
        [sys.executable, str(SHARED_EVAL / "evaluate.py"),
         "--corpus", str(corpus), "--out", str(tmp_path / "copy")],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    theirs = json.loads(run.stdout)
    theirs["parse_fail_examples"] = [list(x) for x in theirs["parse_fail_examples"]]
    assert json.loads(json.dumps(ours)) == theirs
