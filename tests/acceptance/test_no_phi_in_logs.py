"""Acceptance: a value planted in every string element never reaches an error, a log line or a report.

architecture.md decision 7. Two inputs: one with the marker in every textual
element (standard, nested in sequences, private), one "hostile" with the
marker also in every element whose VR constrains its form (dates, times,
numbers, ages, UIDs), so that parsing and date shifting fail on it. Both go
through the engine (logging captured at DEBUG, warnings recorded) and through
the CLI (stdout, stderr, and every text file of the run directory).
"""

from __future__ import annotations

import logging
import shutil
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from dicomcloak.api import Deidentifier
from dicomcloak.errors import InputError
from dicomcloak.io.reader import read_path
from dicomcloak.keys import ProjectKey
from dicomcloak.policy import build_policy

from .conftest import DEFAULT_OPTIONS, run_cli

pytestmark = [pytest.mark.acceptance]

MARKER = "Qzorbl"
TEXT_VRS = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"}
# VRs whose form pydicom checks: a valid placeholder is written, then swapped for the
# marker byte for byte in the file (same length, so the encoding stays consistent)
FORMED = {
    "DA": ("19011231", f"{MARKER}31"),
    "DT": ("19011231010203", f"{MARKER}31010203"),
    "TM": ("010203.987654", f"{MARKER}.987654"),
    "DS": ("9.87654321", f"{MARKER}4321"),
    "IS": ("987654321", f"{MARKER}321"),
    "UI": ("1.2.3.456789123", f"{MARKER}456789123"),
}
_KEEP_FORM = {0x00020010, 0x00080016, 0x00080018, 0x00080005}  # transfer syntax, SOP class/instance, charset


def _planted(vr: str) -> str:
    if vr in FORMED:
        return FORMED[vr][0]
    return {"PN": f"{MARKER}^Ann", "AE": MARKER.upper(), "CS": MARKER.upper()}.get(vr, f"x {MARKER} x")


def _elements(ds: Dataset) -> Iterator[tuple[Dataset, DataElement]]:
    for elem in list(ds):
        yield ds, elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _elements(item)


def _plant_everywhere(source: Path, target: Path, vrs: set[str]) -> None:
    ds = dcmread(source)
    for parent, elem in _elements(ds):
        tag = int(elem.tag)
        if elem.VR in vrs and tag not in _KEEP_FORM and not (tag >> 16 == 0x0011 and tag & 0xFF00 == 0):
            parent[tag] = DataElement(tag, elem.VR, _planted(elem.VR))
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    data = target.read_bytes()
    for placeholder, hostile in FORMED.values():
        assert len(placeholder) == len(hostile)
        data = data.replace(placeholder.encode(), hostile.encode())
    target.write_bytes(data)
    assert MARKER.encode() in data


@pytest.fixture(scope="module")
def planted(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("planted")
    sources = sorted((corpus / "files").rglob("*.dcm"))
    _plant_everywhere(sources[1], root / "in" / "text.dcm", TEXT_VRS)
    _plant_everywhere(sources[2], root / "in" / "hostile.dcm", TEXT_VRS | set(FORMED))
    return root / "in"


def _exception_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + repr(getattr(exc, "__dict__", {}))


@pytest.mark.parametrize("name", ["text.dcm", "hostile.dcm"])
@pytest.mark.parametrize("options", [(), ("retain-long-modified-dates",)])
def test_engine_never_logs_or_raises_the_value(
    planted: Path, name: str, options: tuple[str, ...], caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    deid = Deidentifier(build_policy(options), ProjectKey.generate(ephemeral=True))
    seen = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            outcome = deid.deidentify(read_path(planted / name))
            seen += repr([change.to_dict() for change in outcome.changes])
        except InputError as exc:
            seen += _exception_text(exc)
    seen += caplog.text + "".join(str(w.message) for w in caught)
    out, err = capsys.readouterr()
    seen += out + err
    assert MARKER.lower() not in seen.lower()


def test_cli_never_prints_or_reports_the_value(planted: Path, tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    assert run_cli("keys", "init", "--out", key).returncode == 0
    out = tmp_path / "out"
    run_dir = tmp_path / "run"
    seen = ""
    for extra in ((), ("--json",)):
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
        result = run_cli("deid", planted, "--out", out, "--run-dir", run_dir, "--key", key, "--jobs", "1",
                         *DEFAULT_OPTIONS, *extra)
        assert result.returncode in (0, 1), result.stderr
        seen += result.stdout + result.stderr
        quarantine = run_dir / "quarantine"
        for path in run_dir.rglob("*"):
            # quarantined inputs are kept as they came (PHI by nature); everything else is a report
            if path.is_file() and quarantine not in path.parents:
                seen += path.read_text("latin-1")
    verify = run_cli("verify", planted, out, "--key", key, *DEFAULT_OPTIONS)
    seen += verify.stdout + verify.stderr
    assert MARKER.lower() not in seen.lower()
