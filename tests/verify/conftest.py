"""Shared helpers for the verify tests: real files, de-identified by the real engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from dicomcloak.api import Deidentifier
from dicomcloak.errors import DicomcloakError
from dicomcloak.io.reader import read_path
from dicomcloak.io.writer import write_dataset_atomic
from dicomcloak.keys import ProjectKey
from dicomcloak.policy import Policy


def deidentify_tree(src: Path, out: Path, policy: Policy, key: ProjectKey) -> int:
    """dicomcloak's own output of every file under ``src``, at the same relative paths; files written."""
    deid = Deidentifier(policy, key)
    written = 0
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        try:
            outcome = deid.deidentify(read_path(path))
        except DicomcloakError:
            continue  # deid quarantines it
        write_dataset_atomic(out / path.relative_to(src), outcome.dataset)
        written += 1
    return written


def write_original(path: Path, change: Callable[[Dataset], Any], source: str = "CT_small.dcm") -> Path:
    """One of pydicom's real test files, changed by ``change``, written at ``path``."""
    ds = dcmread(str(get_testdata_file(source)))
    change(ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def plant(path: Path, change: Callable[[Dataset], Any]) -> None:
    """Change the file at ``path`` in place (a leak planted in an output)."""
    ds = dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture(scope="session")
def key() -> ProjectKey:
    """One project key for the session."""
    return ProjectKey.generate(ephemeral=True)
