"""Every sanitize output of pydicom's bundled files: zero preamble, parses (pydicom, dcmtk), same pixels,
no new dciodvfy errors, idempotent."""

from __future__ import annotations

import shutil
import subprocess
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom import dcmread

from dicomcloak.io import read_dataset

from .conftest import run_stage

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
BUNDLED = sorted(TEST_FILES.rglob("*.dcm"))
_PIXELS = (0x7FE00010, 0x7FE00008, 0x7FE00009)


def _accepted() -> list[tuple[Path, bytes, bytes]]:
    cases = []
    for path in BUNDLED:
        data = path.read_bytes()
        result = run_stage(data)
        if result.output is not None:
            cases.append((path, data, result.output))
    return cases


CASES = _accepted()


def _id(case: tuple[Path, bytes, bytes]) -> str:
    return case[0].relative_to(TEST_FILES).as_posix()


def test_most_bundled_files_are_accepted() -> None:
    readable = 0
    for path in BUNDLED:
        try:
            read_dataset(path.read_bytes())
            readable += 1
        except Exception:
            continue
    assert len(CASES) >= readable - 3  # a padded and a bad-VR test file are refused with reasons
    assert len(CASES) > 60


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_output_is_clean_and_idempotent(case: tuple[Path, bytes, bytes]) -> None:
    _, data, output = case
    assert output[:128] == bytes(128)
    reread = dcmread(BytesIO(output))
    assert reread.file_meta.MediaStorageSOPInstanceUID == reread.SOPInstanceUID
    source, rebuilt = read_dataset(data), read_dataset(output)
    for tag in _PIXELS:
        if tag in source:
            assert rebuilt[tag].value == source[tag].value  # pixel data byte for byte
    assert run_stage(output).output == output


def _run(tool: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool, str(path)], capture_output=True, text=True, errors="replace", timeout=60, check=False
    )


def _errors(path: Path) -> int:
    done = _run("dciodvfy", path)
    return sum(line.startswith("Error") for line in (done.stdout + done.stderr).splitlines())


@pytest.mark.external
@pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmtk is not installed")
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_dcmdump_parses_every_output(case: tuple[Path, bytes, bytes], tmp_path: Path) -> None:
    out = tmp_path / "out.dcm"
    out.write_bytes(case[2])
    done = _run("dcmdump", out)
    assert done.returncode == 0, done.stderr[-500:]
    assert "E: " not in done.stderr


@pytest.mark.external
@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools is not installed")
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_dciodvfy_finds_no_new_errors(case: tuple[Path, bytes, bytes], tmp_path: Path) -> None:
    path, _, output = case
    out = tmp_path / "out.dcm"
    out.write_bytes(output)
    assert _errors(out) <= _errors(path)
