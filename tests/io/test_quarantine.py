"""quarantine: the original copied unchanged, the reason beside it, the input untouched."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from dicomcloak.errors import InputError, MalformedError, OutputError
from dicomcloak.io import iter_inputs, quarantine, read_dataset, reason_path


def _refusal(data: bytes) -> InputError:
    try:
        read_dataset(data)
    except InputError as exc:
        return exc
    raise AssertionError("expected the data to be refused")


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_plain_file_is_copied_with_its_reason(tmp_path: Path, mr_bytes: bytes, planted_name: str) -> None:
    source = tmp_path / "in" / "series" / "cut.dcm"
    source.parent.mkdir(parents=True)
    source.write_bytes(mr_bytes[:-100])
    before = _snapshot(source)
    (item,) = iter_inputs([tmp_path / "in"])
    error = _refusal(item.read_bytes(10**6))

    target = quarantine(item, error, tmp_path / "run" / "quarantine")

    assert target == tmp_path / "run" / "quarantine" / "in" / "series" / "cut.dcm"
    assert target.read_bytes() == mr_bytes[:-100]
    assert _snapshot(source) == before
    reason_file = reason_path(target)
    assert reason_file.name == "cut.dcm.reason.json"
    reason = json.loads(reason_file.read_text())
    assert reason == {
        "reason": "length-beyond-file",
        "message": error.message,
        "hint": error.hint,
        "input": "in/series/cut.dcm",
        "original_bytes": len(mr_bytes) - 100,
        "copied_bytes": len(mr_bytes) - 100,
        "truncated": False,
    }
    assert planted_name not in reason_file.read_text()
    assert [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_zip_member_is_copied_under_its_member_path(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("p1/s1/readme.txt", b"not dicom at all")
    before = _snapshot(archive)
    (item,) = iter_inputs([archive])
    error = _refusal(item.read_bytes(10**6))

    target = quarantine(item, error, tmp_path / "q")

    assert target == tmp_path / "q" / "export.zip" / "p1" / "s1" / "readme.txt"
    assert target.read_bytes() == b"not dicom at all"
    assert json.loads(reason_path(target).read_text())["reason"] == "not-dicom"
    assert _snapshot(archive) == before


def test_reason_is_written_even_if_the_original_cannot_be_copied(tmp_path: Path) -> None:
    source = tmp_path / "in" / "vanished.dcm"
    source.parent.mkdir()
    source.write_bytes(b"x")
    (item,) = iter_inputs([source])
    source.unlink()
    error = MalformedError("cannot read vanished.dcm", reference="unreadable")

    target = quarantine(item, error, tmp_path / "q")

    assert not target.exists()
    assert json.loads(reason_path(target).read_text())["reason"] == "unreadable"


def test_unwritable_quarantine_is_an_output_error(tmp_path: Path) -> None:
    source = tmp_path / "a.dcm"
    source.write_bytes(b"x")
    blocker = tmp_path / "q"
    blocker.write_bytes(b"a file where the quarantine directory should be")
    (item,) = iter_inputs([source])
    with pytest.raises(OutputError):
        quarantine(item, _refusal(b"x"), blocker)
    assert source.read_bytes() == b"x"


def test_a_large_original_keeps_its_head_and_says_so(tmp_path: Path, mr_bytes: bytes) -> None:
    """Issue 13: a 2 GB sparse file's quarantine copy took 2.1 GB of disk. The copy is capped
    (``max_quarantine_bytes``) and sparse; the reason records the original's size."""
    source = tmp_path / "in" / "big.dcm"
    source.parent.mkdir()
    with source.open("wb") as handle:
        handle.write(mr_bytes)
        handle.truncate(1 << 30)  # a zero tail: 1 GiB declared, no disk used
    (item,) = iter_inputs([source])
    error = MalformedError("zero tail", reference="trailing-bytes")

    target = quarantine(item, error, tmp_path / "q", max_bytes=8 << 20)

    assert target.stat().st_size == 8 << 20
    assert target.read_bytes()[: len(mr_bytes)] == mr_bytes
    assert target.stat().st_blocks * 512 <= len(mr_bytes) + (256 << 10)  # the zeros are holes
    reason = json.loads(reason_path(target).read_text())
    assert (reason["original_bytes"], reason["copied_bytes"], reason["truncated"]) == (1 << 30, 8 << 20, True)
    # With the default cap (64 MiB) too.
    default = quarantine(item, error, tmp_path / "q2")
    assert default.stat().st_size == 64 << 20 and default.stat().st_blocks * 512 < 1 << 20


def test_a_zip_member_copy_is_capped_too(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("bomb.dcm", b"\x01" * (3 << 20))
    (item,) = iter_inputs([archive])
    target = quarantine(item, MalformedError("x", reference="not-dicom"), tmp_path / "q", max_bytes=1 << 20)
    assert target.read_bytes() == b"\x01" * (1 << 20)
    assert json.loads(reason_path(target).read_text())["original_bytes"] == 3 << 20
