"""``Selection``: which files ``reid --patient/--study`` restores, judged from real files' headers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydicom import dcmread

from dicomcloak.batch.selection import Selection
from dicomcloak.io.reader import ReadLimits

LIMITS = ReadLimits()


def _data(factory: Callable[..., Path], tmp_path: Path, index: int, side: int = 0) -> tuple[bytes, str, str]:
    path = factory(tmp_path / f"{index}.dcm", index, side=side)
    ds = dcmread(path, stop_before_pixels=True)
    return path.read_bytes(), str(ds.PatientID), str(ds.StudyInstanceUID)


def test_patient_or_study_selects(instance_factory: Callable[..., Path], tmp_path: Path) -> None:
    data, patient, study = _data(instance_factory, tmp_path, 0, side=256)  # 128 KiB of Pixel Data
    other, _, other_study = _data(instance_factory, tmp_path, 9)
    assert study != other_study
    assert Selection.of().everything and Selection.of().selects_data(b"not even DICOM", LIMITS)
    assert Selection.of([patient]).selects_data(data, LIMITS)
    assert Selection.of([f" {patient} "]).selects_data(data, LIMITS)  # surrounding spaces dropped
    assert not Selection.of(["P0000000000"]).selects_data(data, LIMITS)
    assert Selection.of(studies=[study + "\x00"]).selects_data(data, LIMITS)  # UI padding ignored
    assert not Selection.of(studies=[study]).selects_data(other, LIMITS)
    either = Selection.of(["P0000000000"], [other_study])  # any value given selects
    assert either.selects_data(other, LIMITS) and not either.selects_data(data, LIMITS)
    assert not Selection.of(["", " "]).patients  # empty values are no selection


def test_an_unreadable_input_is_left_to_the_restoring_path(tmp_path: Path) -> None:
    # It cannot be judged: the restoring path reads it again and quarantines it with its reason code.
    assert Selection.of(["P0000000000"]).selects_data(b"\x00" * 128 + b"DICM" + b"\xff" * 40, LIMITS)
