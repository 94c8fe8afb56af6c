"""Who wrote an instance first, and what a later input of the same instance is: a duplicate or a UID conflict.

architecture.md decision 9: an instance is its content, not only its UID. Every
de-identified input *claims* its instance, keyed by its pseudonymous (Study
Instance UID, SOP Instance UID), in both layouts. The first claim wins and
records who made it (index and :class:`~dicomcloak.io.inputs.InputItem`,
enough to read that input again). A later claimer compares contents:

* the **content digest** of an input is SHA-256 of its data set as encoded
  in the file (:func:`~dicomcloak.io.reader.dataset_bytes`: File Meta aside,
  a deflated data set inflated, trailing zero padding left out);
* the same digest: a **duplicate** (not written again, counted);
* another digest: a **UID conflict** (quarantined, or written under a UID of
  its own with ``--uid-conflicts keep-both``). The same object in two transfer
  syntaxes has two encodings, hence two digests: a conflict, never merged.

Digests are computed only when two inputs claim one instance (hashing every
input would cost ~0.4 s of CPU per 586 MB on the hot path), and cached per
process: the later claimer reads the first input again. Where the first input
is gone once processed (the gateway's received instances, docs/gateway.md),
:class:`DirClaims` made with ``digests=True`` records each claimer's digest in
its claim, and a later claimer compares with it instead of re-reading. With several worker
processes, which input claims first depends on scheduling; with ``--jobs 1``
it is the input order.

Claims live in memory for one process (:class:`MemoryClaims`) or, for a
process pool, as files in a private directory (:class:`DirClaims`); a claim
file is written in full under a temporary name and hard-linked to its final
name, so another worker never reads half a claim.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydicom.uid import UID

from dicomcloak.engine.outcome import Outcome
from dicomcloak.engine.values import text_of
from dicomcloak.errors import InputError
from dicomcloak.io.inputs import InputItem
from dicomcloak.io.reader import ReadLimits, dataset_bytes
from dicomcloak.io.staging import owner
from dicomcloak.keys import Pseudonymizer

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "Claim",
    "Claims",
    "Conflict",
    "Contents",
    "DirClaims",
    "MemoryClaims",
    "OnConflict",
    "content_digest",
    "instance_key",
    "keep_both",
    "make_claims",
]


class OnConflict(StrEnum):
    """What ``deid --uid-conflicts`` does with the later of two objects under one SOP Instance UID."""

    QUARANTINE = "quarantine"  # set it aside with reason uid-conflict (the default)
    KEEP_BOTH = "keep-both"  # write it too, under a SOP Instance UID derived from its content


@dataclass(frozen=True)
class Claim:
    """The input that claimed an instance first: its index in the input order, the input itself, and its
    content digest when the claims record it (``DirClaims(digests=True)``)."""

    index: int
    item: InputItem
    digest: bytes | None = None


@dataclass(frozen=True)
class Conflict:
    """A UID conflict: the first claim, the later input's content digest, the first's (None: unreadable)."""

    first: Claim
    digest: bytes
    first_digest: bytes | None

    def error(self) -> InputError:
        """The quarantine reason: ``uid-conflict`` (no value, no path: the reason file names the input)."""
        return InputError(
            "another input with this SOP Instance UID and other content was written first",
            reference="uid-conflict",
            hint="the reason file names that input; deid --uid-conflicts keep-both writes both",
        )

    def details(self) -> dict[str, Any]:
        """What the quarantine's reason file says: the input conflicted with, both digests (never values)."""
        theirs = None if self.first_digest is None else self.first_digest.hex()
        return {
            "conflicts_with": {"index": self.first.index, "input": self.first.item.label},
            "content_digest": self.digest.hex(),
            "conflicting_content_digest": theirs,
        }


def instance_key(study_uid: str, sop_instance_uid: str) -> str:
    """The claim key of a de-identified instance: its pseudonymous Study and SOP Instance UIDs."""
    return f"{study_uid}/{sop_instance_uid}"


def keep_both(source: Dataset, outcome: Outcome, digest: bytes, pseudonyms: Pseudonymizer) -> tuple[str, str]:
    """Give the later of two objects under one UID a SOP Instance UID of its own; return (it, the original).

    The new UID is derived from the key, the original UID and the object's
    content digest (:meth:`~dicomcloak.keys.Pseudonymizer.conflict_uid`), so
    every worker derives the same one; it replaces the SOP Instance UID and
    the Media Storage SOP Instance UID of ``outcome`` (still unencoded), and
    the vault maps it back to the original UID.
    """
    original = text_of(source, _SOP_INSTANCE_UID)
    uid = UID(pseudonyms.conflict_uid(original, digest))
    outcome.dataset.SOPInstanceUID = uid
    outcome.dataset.file_meta.MediaStorageSOPInstanceUID = uid
    return uid, original


_SOP_INSTANCE_UID = 0x00080018


class Claims(Protocol):
    """First claims of instances (by :func:`instance_key`) and of output paths.

    ``records_digests``: each claim records its input's content digest (given
    as ``digest``), so a later claimer compares without reading the first again.
    """

    records_digests: bool

    def claim(self, key: str, index: int, item: InputItem, digest: bytes | None = None) -> Claim | None:
        """Claim instance ``key`` for input ``index``: None if it is now ours, else the first claim."""

    def claim_path(self, relpath: str) -> bool:
        """Return True if output path ``relpath`` was free and is now ours."""


def make_claims(directory: Path | None, *, digests: bool = False) -> Claims:
    """Claims for one process (``directory`` None), or shared by a pool's processes through ``directory``.

    ``digests``: claims in ``directory`` record their input's content digest (:class:`DirClaims`).
    """
    return MemoryClaims() if directory is None else DirClaims(directory, digests=digests)


class MemoryClaims:
    """Claims for a single process: dictionaries."""

    records_digests = False

    def __init__(self) -> None:
        self._instances: dict[str, Claim] = {}
        self._paths: set[str] = set()

    def claim(self, key: str, index: int, item: InputItem, digest: bytes | None = None) -> Claim | None:
        """The first claim of ``key``, or None if this one is the first."""
        mine = Claim(index, item, digest)
        first = self._instances.setdefault(key, mine)
        return None if first is mine else first

    def claim_path(self, relpath: str) -> bool:
        """Return True the first time ``relpath`` is seen."""
        if relpath in self._paths:
            return False
        self._paths.add(relpath)
        return True


class DirClaims:
    """Claims shared by worker processes: one file per claimed instance or path in ``directory``.

    Every input claims its instance, so a claim costs a few system calls on
    tmpfs and no :class:`~pathlib.Path` objects. ``digests``: record each
    claimer's content digest in its claim (:attr:`records_digests`).
    """

    def __init__(self, directory: Path, *, digests: bool = False) -> None:
        self.directory = directory
        self.records_digests = digests
        self._prefix = os.fspath(directory) + os.sep

    def claim(self, key: str, index: int, item: InputItem, digest: bytes | None = None) -> Claim | None:
        """Link a complete claim file to the key's name; if another worker did first, read its claim."""
        target = self.path_of(key)
        # Host and pid namespace too: a cluster's workers share the directory, and pids repeat across nodes.
        temp = f"{self._prefix}.{owner()}-{next(_NUMBERS)}.tmp"
        fd = os.open(temp, _EXCLUSIVE, 0o600)
        try:
            os.write(fd, _encode(index, item, digest))
        finally:
            os.close(fd)
        try:
            os.link(temp, target)
        except FileExistsError:
            with open(target, "rb") as handle:
                return _decode(handle.read())
        finally:
            os.unlink(temp)
        return None

    def path_of(self, key: str) -> str:
        """The claim file of instance ``key`` (a claimer that could not write its output removes it)."""
        return self._prefix + _name("i", key)

    def claim_path(self, relpath: str) -> bool:
        """Atomically create the marker for ``relpath``; False if another worker did."""
        try:
            os.close(os.open(self._prefix + _name("p", relpath), _EXCLUSIVE, 0o600))
        except FileExistsError:
            return False
        return True


_EXCLUSIVE = os.O_WRONLY | os.O_CREAT | os.O_EXCL
#: Temporary claim names, unique in the process: several DirClaims (the gateway's threads) share a directory.
_NUMBERS = itertools.count()


def _name(kind: str, key: str) -> str:
    return kind + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def _encode(index: int, item: InputItem, digest: bytes | None = None) -> bytes:
    """The claim's fields, NUL-separated: no path or zip member name holds NUL (zipfile cuts names at one).

    Names that are not UTF-8 (surrogate escapes) survive the round trip. The
    member field is prefixed by ``+`` when there is one (an empty name is one).
    A recorded content digest is a seventh field, in hex (empty for none when
    an eighth follows); a tar member's extent (io.tarfiles) the eighth, ``offset:size``.
    """
    member = "" if item.member is None else "+" + item.member
    fields = [str(index), os.fspath(item.root), item.root_name, item.relpath, member, os.fspath(item.source)]
    if digest is not None or item.extent is not None:
        fields.append("" if digest is None else digest.hex())
    if item.extent is not None:
        fields.append(f"{item.extent[0]}:{item.extent[1]}")
    return "\0".join(fields).encode("utf-8", "surrogateescape")


def _decode(data: bytes) -> Claim:
    fields = data.decode("utf-8", "surrogateescape").split("\0")
    index, root, root_name, relpath, member, source, *rest = fields
    extent = None
    if len(rest) > 1:
        offset, size = rest[1].split(":")
        extent = (int(offset), int(size))
    item = InputItem(Path(root), root_name, relpath, member[1:] if member else None, Path(source), extent)
    return Claim(int(index), item, bytes.fromhex(rest[0]) if rest and rest[0] else None)


def content_digest(data: bytes, limits: ReadLimits) -> bytes:
    """SHA-256 of an input's data set as encoded in its file (see the module's docstring)."""
    return hashlib.sha256(dataset_bytes(data, limits)).digest()


class Contents:
    """Content digests of the inputs that share an instance, computed on demand, cached per process."""

    def __init__(self) -> None:
        self._digests: dict[int, bytes] = {}

    def compare(
        self, first: Claim, index: int, data: bytes, limits: ReadLimits, mine: bytes | None = None
    ) -> Conflict | None:
        """None if input ``index`` (read as ``data``) has the same content as ``first``, else the conflict.

        When the first input can no longer be read (removed during the run),
        the contents cannot be shown equal: a conflict, never a silent merge.
        A digest recorded in the first claim is used instead of reading it;
        ``mine``: this input's digest, when already computed.
        """
        mine = mine or self._digest(index, lambda: data, limits)
        theirs: bytes | None = first.digest
        if theirs is None:
            try:
                theirs = self._digest(first.index, _reader(first.item, limits), limits)
            except InputError:
                theirs = None
        return None if mine == theirs else Conflict(first, mine, theirs)

    def _digest(self, index: int, read: Callable[[], bytes], limits: ReadLimits) -> bytes:
        found = self._digests.get(index)
        if found is None:
            found = self._digests[index] = content_digest(read(), limits)
        return found


def _reader(item: InputItem, limits: ReadLimits) -> Callable[[], bytes]:
    return lambda: item.read_bytes(limits.max_file_bytes)
