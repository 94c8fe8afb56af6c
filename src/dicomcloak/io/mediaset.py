"""DICOM media sets (PS3.10 section 8, PS3.3 Annex F): the DICOMDIR found, judged, and one built anew.

A CD or DVD of a study holds a DICOMDIR beside its instances. It is not an
instance (Media Storage Directory Storage, 1.2.840.10008.1.3.10) and it is
full of PHI: every patient, study and series record repeats names, IDs and
dates. So the walk recognises it (a file named ``DICOMDIR`` whose File Meta
says so), never de-identifies or copies it, and reads its references here,
without trusting them: a Referenced File ID (PS3.3 F.3.2.2) must name an
existing regular file inside the media set's root, never a link and never a
path leaving it. The instances themselves are found by the directory walk.

A de-identified media set gets a DICOMDIR of its own, built from the written
outputs with pydicom's :class:`pydicom.fileset.FileSet` records. Its File
IDs must be ISO 9660 names (PS3.10 8.2, PS3.12): at most 8 components of at
most 8 characters from ``A-Z 0-9 _``. So the outputs of a media set's
instances are written in the **media layout**, ``DICOM/PPPPPPPP/SSSSSSSS/
EEEEEEEE/IIIIIIII`` under the output, each name 8 characters of the SHA-256
of a pseudonym (patient pseudonym, pseudonymous study, series and SOP
Instance UIDs): deterministic in every worker, revealing nothing, written
once where the DICOMDIR points (docs/inputs.md, "Media sets").
"""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from collections import Counter
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from dicomcloak.io._entries import open_regular
from dicomcloak.io.bounded import read_capped

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
    from pydicom.fileset import FileSet, RecordNode

__all__ = [
    "MEDIA_FOLDER",
    "MEDIA_STORAGE_DIRECTORY",
    "REFERENCE_REASONS",
    "build_dicomdir",
    "check_references",
    "is_dicomdir",
    "is_dicomdir_head",
    "media_relpath",
]

#: Media Storage Directory Storage SOP Class (PS3.4 Annex I; PS3.10 8.6).
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
#: The top folder of the media layout under the output (a File ID's first component).
MEDIA_FOLDER = "DICOM"

VALID = "referenced"
OUTSIDE = "media-reference-outside"
MISSING = "media-reference-missing"
NOT_REGULAR = "media-reference-not-regular"
INVALID = "media-reference-invalid"
UNREADABLE = "media-directory-unreadable"
#: What a DICOMDIR's references are counted as (docs/inputs.md); :data:`VALID` is a good one.
REFERENCE_REASONS = (VALID, OUTSIDE, MISSING, NOT_REGULAR, INVALID, UNREADABLE)

_META_SCAN = 64 * 1024  # the File Meta is a few hundred bytes (ReadLimits.max_meta_bytes bounds it too)
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def is_dicomdir(path: Path) -> bool:
    """True if ``path`` is named ``DICOMDIR`` and its File Meta's Media Storage SOP Class says so.

    Only the File Meta group is read (Explicit VR Little Endian, PS3.10 7.1),
    opened as a regular file: anything else is an ordinary input.
    """
    if path.name.upper() != "DICOMDIR":
        return False
    try:
        with open_regular(path, follow=True) as handle:
            head = handle.read(HEAD_BYTES)
    except OSError:
        return False
    return is_dicomdir_head(head)


#: How many bytes of a file :func:`is_dicomdir_head` needs: preamble, ``DICM`` and the File Meta group.
HEAD_BYTES = 132 + _META_SCAN


def is_dicomdir_head(head: bytes) -> bool:
    """True if ``head`` (the first :data:`HEAD_BYTES` of a file) is a Part 10 DICOMDIR's."""
    return head[128:132] == b"DICM" and _media_class(head, 132) == MEDIA_STORAGE_DIRECTORY


def _media_class(head: bytes, pos: int) -> str:
    """The value of (0002,0002) in the File Meta elements starting at ``pos``; "" if absent."""
    while pos + 8 <= len(head) and head[pos : pos + 2] == b"\x02\x00":
        element, vr = int.from_bytes(head[pos + 2 : pos + 4], "little"), head[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            length, start = int.from_bytes(head[pos + 8 : pos + 12], "little"), pos + 12
        else:
            length, start = int.from_bytes(head[pos + 6 : pos + 8], "little"), pos + 8
        if element == 0x0002:
            return head[start : start + length].rstrip(b"\x00 ").decode("ascii", "replace")
        pos = start + length
    return ""


def check_references(dicomdir: Path, root: Path, max_bytes: int) -> Counter[str]:
    """Count a DICOMDIR's Referenced File IDs by verdict (:data:`REFERENCE_REASONS`); nothing is followed.

    The DICOMDIR is read whole (at most ``max_bytes``) with pydicom; a damaged
    one counts once as ``media-directory-unreadable``. Each record is judged
    on its own (pydicom's ``FileSet`` refuses a whole set for one bad path).
    """
    counts: Counter[str] = Counter()
    try:
        records = _records(dicomdir, max_bytes)
    except Exception:  # noqa: BLE001 - a hostile DICOMDIR is counted, never a crash
        counts[UNREADABLE] += 1
        return counts
    for parts in records:
        counts[_judge(root, parts)] += 1
    return counts


def _records(dicomdir: Path, max_bytes: int) -> list[list[str]]:
    """Every record's Referenced File ID, as its components."""
    from pydicom import dcmread

    with open_regular(dicomdir, follow=True) as handle:
        data = read_capped(handle, os.fstat(handle.fileno()).st_size, max_bytes)
    if len(data) > max_bytes:
        raise ValueError("DICOMDIR larger than the limit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about invalid CS values: those are ours to judge
        ds = dcmread(BytesIO(data))
        found = []
        for record in ds.get("DirectoryRecordSequence", []):
            value = record.get("ReferencedFileID")
            if value is not None:
                found.append([value] if isinstance(value, str) else [str(part) for part in value])
    return found


def _judge(root: Path, parts: list[str]) -> str:
    """One Referenced File ID against the media root: inside, existing, a regular file (never opened)."""
    if not parts or any(not part or "\x00" in part for part in parts):
        return INVALID
    relative = os.path.join(*(part.replace("\\", "/") for part in parts))
    if os.path.isabs(relative):
        return OUTSIDE
    top = os.path.realpath(root)
    target = _located(root, relative)
    real = os.path.realpath(target)
    if real != top and not real.startswith(top.rstrip(os.sep) + os.sep):
        return OUTSIDE
    try:
        mode = os.lstat(target).st_mode
    except OSError:
        return MISSING
    return VALID if stat.S_ISREG(mode) else NOT_REGULAR


def _located(root: Path, relative: str) -> str:
    """``root/relative``, or the same path matched case-insensitively (ISO 9660 names read in lower case)."""
    exact = os.path.join(root, relative)
    if os.path.lexists(exact):
        return exact
    current = os.fspath(root)
    for part in relative.split("/"):
        try:
            names = os.listdir(current) if part not in ("", ".", "..") else []
        except OSError:
            return exact
        match = [name for name in names if name.upper() == part.upper()]
        current = os.path.join(current, match[0] if len(match) == 1 else part)
    return current


def _name(value: str) -> str:
    """8 characters of ``A-Z0-9`` from the SHA-256 of ``value`` (a pseudonym: nothing to hide)."""
    number = int.from_bytes(hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()[:8], "big")
    digits = []
    for _ in range(8):
        number, digit = divmod(number, 36)
        digits.append(_ALPHABET[digit])
    return "".join(digits)


def media_relpath(patient: str, study_uid: str, series_uid: str, sop_uid: str) -> str:
    """``DICOM/<patient>/<study>/<series>/<instance>``: an output's path (and File ID) in the media layout.

    Five components of 8 characters from ``A-Z0-9`` (PS3.10 8.2: at most 8 of
    each), from pseudonyms only.
    """
    names = [_name(f"{kind}:{value}") for kind, value in
             (("patient", patient), ("study", study_uid), ("series", series_uid), ("instance", sop_uid))]
    return "/".join([MEDIA_FOLDER, *names])


#: Type 1 attributes of the PATIENT, STUDY, SERIES and IMAGE records (PS3.3 F.5) that de-identification may
#: empty (PS3.15 Table E.1-1 replaces Study ID and the dates with empty values): the record gets these.
_PLACEHOLDERS = {
    "PatientID": "ANONYMOUS",
    "StudyDate": "19000101",
    "StudyTime": "000000",
    "StudyID": "1",
    "Modality": "OT",
    "SeriesNumber": "1",
    "InstanceNumber": "1",
}


def _recordable(ds: Dataset) -> Dataset:
    """``ds`` (a header read for its records) with the Type 1 values it lacks set from :data:`_PLACEHOLDERS`.

    Only the header in memory changes, never the output file.
    """
    for keyword, value in _PLACEHOLDERS.items():
        if keyword not in ds or ds[keyword].VM == 0:
            setattr(ds, keyword, value)
    return ds


def build_dicomdir(instances: Sequence[tuple[str, Dataset]], uid: str) -> tuple[bytes, int]:
    """The DICOMDIR (Part 10 bytes) of ``instances`` (File ID as ``a/b/c``, header of the written output),
    and how many instances got no record (pydicom found a required attribute missing: left out).

    Records are made by pydicom's record creators (PS3.3 F.5, four levels:
    PATIENT, STUDY, SERIES, then IMAGE or the SOP class's own record) and
    point at the File IDs given, where the outputs are: no instance is copied
    or moved (``FileSet.write`` would copy every one into its own layout).
    ``uid`` is the File-set's Media Storage SOP Instance UID. pydicom has no
    public call that writes a DICOMDIR without moving the instances, so its
    record tree and ``_write_dicomdir`` are used directly (pydicom 3.0,
    ``tests/batch/test_mediaset.py`` reads every result back with ``FileSet``
    and ``dcmdump``).
    """
    from pydicom.fileset import FileSet

    fileset = FileSet()
    try:
        return _write(fileset, uid, instances)
    finally:
        fileset._stage["t"].cleanup()  # noqa: SLF001 - its staging directory, unused here, goes now


#: The attribute that tells a record apart from its siblings (PS3.3 F.5; pydicom's ``RecordNode.key``).
_KEYS = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID"}


def _branch(
    root: RecordNode, records: list[Dataset], branches: dict[tuple[str, ...], RecordNode]
) -> RecordNode:
    """The node under which an instance's leaf goes: its PATIENT, STUDY, SERIES records, made once each.

    Found by key in ``branches``: pydicom's ``RecordNode.add`` compares the
    keys of every sibling, which is quadratic in a series' size.
    """
    from pydicom.fileset import RecordNode

    parent: RecordNode = root
    path: tuple[str, ...] = ()
    for record in records:
        kind = str(record.DirectoryRecordType)
        path = (*path, kind, str(record.get(_KEYS.get(kind, ""), "")))
        node = branches.get(path)
        if node is None:
            node = branches[path] = RecordNode(record)
            node.parent = parent
        parent = node
    return parent


def _write(fileset: FileSet, uid: str, instances: Sequence[tuple[str, Dataset]]) -> tuple[bytes, int]:
    """:func:`build_dicomdir` in ``fileset``: its record tree, then its DICOMDIR encoded in memory."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.fileset import FileInstance, RecordNode
    from pydicom.uid import UID

    fileset.UID = UID(uid)
    failed = 0
    branches: dict[tuple[str, ...], RecordNode] = {}  # the PATIENT, STUDY and SERIES records made so far
    for file_id, ds in instances:
        try:
            records = list(fileset._recordify(_recordable(ds)))  # noqa: SLF001
        except (ValueError, KeyError, AttributeError):
            failed += 1
            continue
        parent = _branch(fileset._tree, records[:-1], branches)  # noqa: SLF001
        records[-1].ReferencedFileID = file_id.split("/")  # FileSet.write would set it from its own layout
        leaf = RecordNode(records[-1])
        leaf.parent = parent
        leaf.instance = FileInstance(leaf)
        fileset._instances.append(leaf.instance)  # noqa: SLF001 - FileSet.add, without its staged copy
    out = DicomBytesIO()
    fileset._write_dicomdir(out)  # type: ignore[arg-type]  # noqa: SLF001 - any seekable file-like
    return out.getvalue(), failed
