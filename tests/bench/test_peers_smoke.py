"""bench/peers.py end to end on a small corpus: every tool that is here is run and scored, the others listed.

The peers available here run for real: dicognito (the test extra) and gdcmanon (Debian libgdcm-tools, or the
``gdcm`` wheel's); deid and dicom-anonymizer live only in bench/.peers-venv (bench/peers.sh), so here they
must be reported as not installed, not dropped. See bench/README.md.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
PEERS = ("dicognito", "deid", "dicom-anonymizer", "gdcmanon")
N = 24


def _load(name: str) -> ModuleType:
    """A bench script as a module (bench/ is not a package; its scripts import ``_common`` from there)."""
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("peers")
    result = work / "rows.json"
    cmd = [sys.executable, str(BENCH / "peers.py"), "--n", str(N), "--max-big", "0", "--repeat", "1",
           "--settle", "0", "--validate-sample", "2", "--work", str(work), "--corpus-dir", str(work),
           "--peers-python", sys.executable, "--json", str(result)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return {"json": json.loads(result.read_text()), "table": done.stdout}


def _row(rows: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    found = [row for row in rows if row["tool"].startswith(prefix)]
    assert len(found) == 1, [row["tool"] for row in rows]
    return found[0]


def test_every_run_tool_has_its_evaluation_filled(run: dict[str, Any]) -> None:
    rows = run["json"]["rows"]
    assert len(rows) >= 3
    for row in rows:
        assert row["exit"] == 0, row["tool"]
        assert row["files_per_s"] > 0 and row["rss_mb"] > 0
        assert re.fullmatch(r"\d+ / \d+", row["leaks"]), row
        for column in ("uids", "refs", "pixels", "validator"):
            assert row[column], (row["tool"], column)
        assert row["pixels"] == f"{N}/{N} intact", row["tool"]  # every peer here leaves pixels alone


def test_the_scores_tell_the_tools_apart(run: dict[str, Any]) -> None:
    rows = run["json"]["rows"]
    base = _row(rows, "pydicom read + write")
    leaked, checked = map(int, base["leaks"].split(" / "))
    assert leaked == checked > 0  # nothing removed: every planted string is found
    assert "files with original UID" in base["uids"]
    for jobs in (1, 2):
        cloak = _row(rows, f"dicomcloak deid --jobs {jobs}")
        assert cloak["leaks"] == f"0 / {checked}"
        assert cloak["uids"] == "consistent"
        assert cloak["refs"].startswith("ok ")


def test_each_peer_is_run_or_reported_missing(run: dict[str, Any]) -> None:
    ran = {row["tool"].split()[0] for row in run["json"]["rows"]}
    missing = {entry["tool"].split()[0]: entry["missing"] for entry in run["json"]["missing"]}
    for peer in PEERS:
        assert (peer in ran) != (peer in missing), peer
        assert peer in run["table"]  # a table row either way
    if importlib.util.find_spec("dicognito") is not None:
        assert "dicognito" in ran
    if shutil.which("gdcmanon") is not None:
        assert "gdcmanon" in ran
    for peer, why in missing.items():
        assert why.startswith("not installed"), peer
        assert re.search(rf"\| {re.escape(peer)}[^|]*\|(\s+\|){{7}}\s+not installed", run["table"]), peer


def test_a_failed_command_is_named_by_its_exception_type_only() -> None:
    common = _load("_common")
    trace = "Traceback (most recent call last):\n  ...\nValueError: PatientName 'Doe^Jane' is invalid\n"
    assert common.failure_kind(trace) == "ValueError"
    assert common.failure_kind("Doe_Jane: cannot read /data/Doe_Jane/1.dcm\n") == ""
    assert common.failure_kind("deid.Error: no such file\n") == "deid.Error"
    assert common.failure_kind("") == ""


def test_a_failed_or_missing_peer_keeps_its_row() -> None:
    peers = _load("peers")
    corpus = peers.Corpus(Path("corpus"), "24 files")
    tools = [peers.Tool("deid 0.4.13", [], ""), peers.Tool("dicom-anonymizer", [], "", "not installed here")]
    failed = peers.Row("deid 0.4.13", 2.0, 50.0, 1, 24, 1.0, {"leaks": "3 / 600"}, [2.0], 1.5)
    failed.failure = "KeyError"
    lines = peers.table([corpus], tools, {("24 files", "deid 0.4.13"): failed}).splitlines()
    assert lines[2].startswith("| 24 files | deid 0.4.13 (exit 1, KeyError) | 12 |")
    assert "| 3 / 600 |" in lines[2]
    assert lines[3].startswith("| 24 files | dicom-anonymizer |") and "not installed here" in lines[3]
