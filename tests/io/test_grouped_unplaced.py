"""The grouped writer knows which submitted files are not on disk (``unplaced``), whatever failed.

A batch counts an input "written" from this, not from what it submitted: a
group whose originals could not be sealed (the ``before_commit`` hook raised) is
removed whole, with the group behind it, and ``unplaced`` names exactly those
files. A hook that fails with an exception that is none of ours is a bug: it
surfaces as ``internal-error``, never as a bare exception a caller could blame
on the file it happens to be writing.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from dicomcloak.errors import DicomcloakError, VaultDatabaseError
from dicomcloak.io.grouped import GroupedWriter


def _on_disk(root: Path) -> set[int]:
    return {int(path.stem[1:]) for path in root.glob("f*.dcm")}


def _write(writer: GroupedWriter, root: Path, count: int, submitted: set[int]) -> None:
    """Submit ``count`` files tagged by number (noting each in ``submitted`` first), then close."""
    for number in range(count):
        submitted.add(number)
        writer.submit(root / f"f{number}.dcm", b"data %d" % number, record=number, tag=number)
    writer.close()


@pytest.mark.parametrize("background", [False, True])
def test_every_file_placed_leaves_nothing_unplaced(tmp_path: Path, background: bool) -> None:
    writer = GroupedWriter(max_files=4, background=background, before_commit=lambda records: None)
    for number in range(10):
        writer.submit(tmp_path / f"f{number}.dcm", b"x" * number, record=number, tag=number)
    assert writer.unplaced  # the last group is not committed yet
    writer.close()
    assert writer.unplaced == {}
    assert _on_disk(tmp_path) == set(range(10))


@pytest.mark.parametrize("background", [False, True])
def test_the_files_of_a_group_that_could_not_be_sealed_are_unplaced(
    tmp_path: Path, background: bool
) -> None:
    def seal(records: list[object]) -> None:
        if 5 in records:
            raise VaultDatabaseError("the vault database is full (SQLITE_FULL)", reference="vault-full")

    writer = GroupedWriter(max_files=4, background=background, before_commit=seal)
    submitted: set[int] = set()
    with pytest.raises(VaultDatabaseError):
        _write(writer, tmp_path, 16, submitted)
    with contextlib.suppress(VaultDatabaseError):
        writer.close()
    on_disk = _on_disk(tmp_path)
    assert {4, 5, 6, 7}.isdisjoint(on_disk)  # the group that failed
    assert set(writer.unplaced) == submitted - on_disk  # exactly what is missing, however far it got
    assert writer.unplaced[5] == len(b"data 5")  # its size, to take back from the report's bytes
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.mark.parametrize("background", [False, True])
def test_a_bug_in_the_hook_is_an_internal_error_not_a_bare_exception(
    tmp_path: Path, background: bool
) -> None:
    def broken(records: list[object]) -> None:
        raise ZeroDivisionError("a value that may be PHI")

    writer = GroupedWriter(max_files=2, background=background, before_commit=broken)
    submitted: set[int] = set()
    with pytest.raises(DicomcloakError) as raised:
        _write(writer, tmp_path, 6, submitted)
    with contextlib.suppress(DicomcloakError):
        writer.close()
    assert raised.value.reference == "internal-error" and "ZeroDivisionError" in raised.value.message
    assert "PHI" not in str(raised.value)
    assert _on_disk(tmp_path) == set() and set(writer.unplaced) == submitted
