"""Read the files of both trees for ``verify``: within limits, and as leniently as is safe.

Both trees are walked as ``deid`` walks its inputs
(:func:`dicomcloak.io.inputs.iter_inputs`: sorted, zip members included, the
writer's temporary files skipped). Each file is read within the limits of
:class:`~dicomcloak.io.reader.ReadLimits` by dicomcloak's reader. A file that
reader refuses for its content rather than its size (no SOP Instance UID, a
DICOMDIR, a truncated last element) is read again by pydicom: ``deid``
quarantines such a file, but another tool may have written an output from
it, and its values must still be searched for. A file neither reads is
*unreadable*: an original contributes nothing, an output is searched as raw
bytes.
"""

from __future__ import annotations

import warnings
from io import BytesIO
from pathlib import Path
from typing import NamedTuple

import pydicom
from pydicom.dataset import Dataset

from dicomcloak.errors import InputError, MalformedError, UsageError
from dicomcloak.io.inputs import MEDIA_DIRECTORY, InputItem, Refused, Skipped, iter_inputs
from dicomcloak.io.reader import ReadLimits, read_dataset

__all__ = ["Read", "Tree", "list_tree", "read_item"]


class Read(NamedTuple):
    """A file as read: its data set, or its bytes when it is no DICOM, or neither."""

    dataset: Dataset | None
    data: bytes | None


class Tree(NamedTuple):
    """The files of one tree to read, and how many entries the walk skipped (links, FIFOs, ...)."""

    items: list[InputItem]
    skipped: int


def list_tree(root: Path, role: str) -> Tree:
    """Every file under ``root`` (a file, a directory or a zip archive), sorted.

    A zip member whose path would escape the archive, which ``deid`` refuses,
    is read all the same: another tool may have used it, or written it. What
    the walk skips without opening (symbolic links out of the tree, FIFOs, the
    writer's temporary files, docs/security.md "Input walk") is only counted.

    Raises
    ------
    UsageError
        ``verify-original-missing`` / ``verify-output-missing`` when ``root`` does
        not exist, ``verify-original-empty`` / ``verify-output-empty`` when it holds no file.
    """
    if not root.exists():
        raise UsageError(
            f"{role.upper()} does not exist", reference=f"verify-{role}-missing",
            hint=f"give the {role} tree as it was passed to 'dicomcloak deid'" if role == "original"
            else "give the OUT directory of 'dicomcloak deid'",
        )
    items: list[InputItem] = []
    skipped = 0
    for entry in iter_inputs([root]):
        if isinstance(entry, Skipped) and entry.reason == MEDIA_DIRECTORY:
            # deid never processes a DICOMDIR (docs/inputs.md), but one in a tree holds names and IDs in
            # its directory records: verify reads it like any other file.
            items.append(_media_item(root, entry.media.dicomdir if entry.media else root))
        elif isinstance(entry, Skipped):
            skipped += 1
        else:
            items.append(entry.item if isinstance(entry, Refused) else entry)
    if not items:
        raise UsageError(
            f"{role.upper()} holds no file", reference=f"verify-{role}-empty",
            hint="nothing was written there: check the path, or the run's report and quarantine"
            if role == "output" else "check the path",
        )
    return Tree(items, skipped)


def _media_item(root: Path, dicomdir: Path) -> InputItem:
    """A DICOMDIR of the tree at ``root`` (or ``root`` itself) as an item to read."""
    relpath = dicomdir.name if dicomdir == root else dicomdir.relative_to(root).as_posix()
    return InputItem(root, root.name or "root", relpath, None, dicomdir)


def read_item(item: InputItem, limits: ReadLimits) -> Read:
    """Read one file (module docstring); never raises for a bad file."""
    try:
        data = item.read_bytes(limits.max_file_bytes)
    except InputError:
        return Read(None, None)
    try:
        return Read(read_dataset(data, limits), None)
    except MalformedError as error:
        if error.reference in _LENIENT:
            lenient = _read_lenient(data)
            if lenient is not None:
                return Read(lenient, None)
        return Read(None, data)
    except InputError:  # not DICOM, or over a limit
        return Read(None, data)


#: Refusals of dicomcloak's reader that pydicom reads through (io.reader's reason codes).
_LENIENT = frozenset({"missing-sop-instance-uid", "truncated", "length-beyond-file", "unparseable"})


def _read_lenient(data: bytes) -> Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings may quote values
        try:
            ds = pydicom.dcmread(BytesIO(data))
        except Exception:  # noqa: BLE001 - pydicom cannot read it either
            return None
    return ds

