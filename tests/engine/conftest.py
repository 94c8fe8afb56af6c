"""Fixtures for the pure engine: a fixed key, policies, pydicom's bundled files."""

from __future__ import annotations

import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from dicomcloak.io.reader import read_dataset
from dicomcloak.keys import ProjectKey, Pseudonymizer


@pytest.fixture(scope="session")
def pseudonymizer() -> Pseudonymizer:
    return Pseudonymizer(ProjectKey(bytes(range(32))), "tests")


def load(name: str) -> Dataset:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"{name} is not bundled with pydicom"
    with open(path, "rb") as handle:
        return read_dataset(handle.read())
