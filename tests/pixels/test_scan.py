"""``dicomcloak scan``: the pixel report of originals, in a real browser; nothing else written."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from pydicom.data import get_testdata_file

from dicomcloak.pixels.report import write_report
from dicomcloak.testing import browser

RunCli = Callable[..., CompletedProcess[str]]
ULTRASOUNDS = Path(str(files("deid_data"))) / "data" / "ultrasounds"


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    root.mkdir()
    for name in ("GREYSCALE_IMAGE.dcm", "RGB_IMAGE.dcm"):
        shutil.copy(ULTRASOUNDS / name, root / name)
    shutil.copy(str(get_testdata_file("CT_small.dcm")), root / "ct.dcm")
    (root / "notes.txt").write_text("not DICOM")
    return root


def _tree(root: Path) -> dict[str, int]:
    return {str(path.relative_to(root)): path.stat().st_mtime_ns for path in root.rglob("*")}


def test_scan_reports_and_writes_no_dicom(run_cli: RunCli, inputs: Path, tmp_path: Path) -> None:
    before = _tree(tmp_path)
    report = tmp_path / "report.html"
    result = run_cli("scan", inputs, "--report", report, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["pixels"] == {"cleaned": 2, "not-examined": 1}  # what deid would do
    assert summary["not_read"] == {"not-dicom": 1}
    assert summary["shown"] == 2
    assert _tree(tmp_path) == {**before, "report.html": report.stat().st_mtime_ns}  # inputs untouched
    assert stat.S_IMODE(report.stat().st_mode) == 0o600


def test_the_scan_report_renders_in_chromium(run_cli: RunCli, inputs: Path, tmp_path: Path) -> None:
    if browser.find_browser() is None:
        pytest.skip(browser.MISSING)
    report = tmp_path / "report.html"
    assert run_cli("scan", inputs, "--report", report).returncode == 0
    page = tmp_path / "probed.html"
    write_report(page, browser.with_image_probe(report.read_text("utf-8")))
    dom = browser.dump_dom(page)
    assert browser.loaded_images(dom) == (4, 4)  # before and after of both ultrasounds, all decoded
    assert "pixels not examined" in dom


def test_scan_all_text_examines_the_ct_too(run_cli: RunCli, inputs: Path, tmp_path: Path) -> None:
    result = run_cli("scan", inputs, "--report", tmp_path / "r.html", "--pixels", "all-text", "--json")
    assert result.returncode == 0, result.stderr
    pixels = json.loads(result.stdout)["pixels"]
    assert sum(pixels.values()) == 3 and pixels.get("not-examined", 0) == 0
