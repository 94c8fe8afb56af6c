"""``verify_trees``: search a de-identified tree for the identifying values of its original tree.

For every original instance the identifying values are collected (see
:func:`~dicomcloak.verify.collect.collect_identifying`): the values of every
element the policy changes or removes, person-name parts, dates in six more
formats, and every instance UID not in the standard's UID registry. Every
element value of every output file (file meta, any depth, private, bytes as
latin-1; pixel data and byte values over 1 MB skipped) is then searched for
them, text case-insensitively (precision rules in
:mod:`dicomcloak.verify.needles`), UIDs as exact multi-value components.

Every output is searched for the values of all originals at once (one
index; a value of another instance, as a batch mix-up would produce, is a
leak too). With the project key, an output is also matched to its original
by recomputing the original's pseudonymous SOP Instance UID and searched for
that original's values alone, which the union may have dropped because
another original keeps them.

The report names output files, tag paths and kinds of value; never a value.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from dicomcloak.engine.outcome import format_path
from dicomcloak.engine.quiet import quiet_pydicom
from dicomcloak.errors import InputError
from dicomcloak.io.reader import ReadLimits, read_path
from dicomcloak.keys import ProjectKey, Pseudonymizer
from dicomcloak.policy.model import Policy
from dicomcloak.verify.collect import InputValues, collect_identifying, element_texts
from dicomcloak.verify.needles import NeedleIndex
from dicomcloak.verify.report import Leak, VerifyReport

__all__ = ["verify_trees"]

_UNPARSED = "<unparsed file>"
_LIMITS = ReadLimits()


@dataclass
class _Originals:
    values: list[InputValues] = field(default_factory=list)
    unreadable: int = 0
    _union: InputValues | None = None

    def union(self) -> InputValues:
        """Every original's values at once (built on first use)."""
        if self._union is None:
            merged = InputValues()
            kept: set[str] = set()
            for values in self.values:
                merged.needles.update(values.needles)
                merged.uids |= values.uids
                kept |= values.kept
            for text in kept:
                merged.needles.discard(text)
            merged.uids -= kept
            self._union = merged
        return self._union


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    yield from sorted(p for p in root.rglob("*") if p.is_file())


def _relpath(path: Path, root: Path) -> str:
    return path.name if root.is_file() else path.relative_to(root).as_posix()


def _read_originals(root: Path, policy: Policy, limits: ReadLimits) -> _Originals:
    originals = _Originals()
    for path in _files(root):
        try:
            ds = read_path(path, limits)
        except InputError:
            originals.unreadable += 1
            continue
        originals.values.append(collect_identifying(ds, policy))
    return originals


def _uid_leaks(rel: str, entries: list[tuple[str, str, bool]], uids: set[str]) -> Iterator[Leak]:
    for path, text, _ in entries:
        if any(part.strip(" \x00") in uids for part in text.split("\\")):
            yield Leak(rel, path, "uid")


def _text_leaks(rel: str, entries: list[tuple[str, str, bool]], needles: NeedleIndex) -> Iterator[Leak]:
    texts = [(path, text.lower()) for path, text, is_ui in entries if not is_ui]
    starts: list[int] = []
    position = 0
    for _, text in texts:
        starts.append(position)
        position += len(text) + 1
    blob = "\x00".join(text for _, text in texts)
    for start, needle in needles.search(blob):
        yield Leak(rel, texts[bisect.bisect_right(starts, start) - 1][0], needle.kind)


def _dataset_leaks(rel: str, ds: Dataset, values: InputValues) -> set[Leak]:
    entries = [(format_path(path), text, is_ui) for path, text, is_ui in element_texts(ds)]
    return set(_uid_leaks(rel, entries, values.uids)) | set(_text_leaks(rel, entries, values.needles))


def _raw_leaks(rel: str, data: bytes, values: InputValues) -> set[Leak]:
    text = data.decode("latin-1")
    found = {Leak(rel, _UNPARSED, "uid") for uid in values.uids if uid in text}
    return found | set(_text_leaks(rel, [(_UNPARSED, text, False)], values.needles))


@dataclass
class _Scan:
    originals: _Originals
    by_new_sop: dict[str, InputValues]
    leaks: set[Leak] = field(default_factory=set)
    outputs: int = 0
    matched: int = 0
    unreadable: int = 0

    def check(self, path: Path, rel: str, limits: ReadLimits) -> None:
        self.outputs += 1
        try:
            ds = read_path(path, limits)
        except InputError:
            self.unreadable += 1
            self.leaks |= _raw_leaks(rel, path.read_bytes(), self.originals.union())
            return
        own = self.by_new_sop.get(str(ds.get("SOPInstanceUID", "")))
        if own is not None:
            self.matched += 1
            self.leaks |= _dataset_leaks(rel, ds, own)
        # every output is also searched for every original's values: a value of another
        # instance (a cross-file mix-up in a batch) is a leak too
        self.leaks |= _dataset_leaks(rel, ds, self.originals.union())


def verify_trees(
    original: Path,
    output: Path,
    policy: Policy,
    key: ProjectKey | None = None,
    domain: str = "default",
    limits: ReadLimits = _LIMITS,
) -> VerifyReport:
    """Search ``output`` for identifying values of the instances under ``original``.

    Parameters
    ----------
    original, output:
        The original tree (or file) and the de-identified tree (or file) made from it.
    policy:
        The policy the output was made with; it defines what counts as identifying.
    key, domain:
        The project key and pseudonym domain the output was made with; when given,
        each output is matched to its original (faster and more precise).
    limits:
        Reading limits for both trees.
    """
    quiet_pydicom()  # pydicom's reading validation quotes invalid values: never (DESIGN.md decision 7)
    originals = _read_originals(original, policy, limits)
    by_new_sop: dict[str, InputValues] = {}
    if key is not None:
        pseudonymizer = Pseudonymizer(key, domain)
        by_new_sop = {pseudonymizer.uid(v.sop_uid): v for v in originals.values if v.sop_uid}
    scan = _Scan(originals, by_new_sop)
    for path in _files(output):
        scan.check(path, _relpath(path, output), limits)
    leaked = tuple(sorted(scan.leaks))
    return VerifyReport(
        files_checked=len(originals.values), outputs_checked=scan.outputs, leaks=len(leaked),
        leaked=leaked, matched_outputs=scan.matched, unreadable_inputs=originals.unreadable,
        unreadable_outputs=scan.unreadable, kinds=dict(Counter(leak.kind for leak in leaked)),
    )
