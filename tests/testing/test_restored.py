"""The restored-tree checker the demo and benchmarks use: exact files pass, a changed element is named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicomcloak.testing.restored import compare_trees, main


def _tree(root: Path) -> Path:
    root.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(str(get_testdata_file(name)), root / name)
    return root


def test_identical_trees_are_restored(tmp_path: Path) -> None:
    originals = _tree(tmp_path / "a")
    restored = _tree(tmp_path / "b")
    assert compare_trees(originals, restored) == (2, 2, [])
    assert main([str(originals), str(restored)]) == 0


def test_a_changed_element_is_named_not_its_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    originals = _tree(tmp_path / "a")
    restored = _tree(tmp_path / "b")
    ds = pydicom.dcmread(restored / "CT_small.dcm")
    ds.PatientName = "Changed^Name"
    ds.save_as(restored / "CT_small.dcm")
    assert compare_trees(originals, restored) == (1, 2, ["(0010,0010)"])
    assert main([str(originals), str(restored)]) == 1
    assert "Changed" not in capsys.readouterr().out
