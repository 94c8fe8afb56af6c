"""The state every output check shares, and the check of one output file.

:class:`Shared` is built once in the parent process from every original's
record, before the worker processes are forked, so they read its indexes
without copying them (``fork``; under ``spawn`` it is pickled once per worker).

An output is matched to its original first by key (the pseudonymous SOP
Instance UID the engine gives the original's, when the project key is
known and that UID is unique among the originals), else by content: each of
its element digests votes for the originals that hold the same element at
the same path, rarer digests weighing more (pixel data, positions, private
values). Matching decides which original's values are searched for in full
and which elements were left unchanged (:mod:`dicomcloak.verify.outputs`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from pydicom.dataset import Dataset

from dicomcloak.keys import ProjectKey, Pseudonymizer
from dicomcloak.policy.model import Policy
from dicomcloak.standard.table import Option
from dicomcloak.verify.kinds import DummyValues
from dicomcloak.verify.needles import NeedleIndex
from dicomcloak.verify.originals import BINARY_NUMBERS, OriginalRecord, sop_instance_uid
from dicomcloak.verify.outputs import (
    UNION_KINDS,
    Finding,
    Haystack,
    Scope,
    UidIndex,
    never_searched,
    scope_of,
    search_texts,
    search_uids,
)
from dicomcloak.verify.walk import Leaf, leaf_key, leaves

__all__ = ["OutputResult", "Shared", "check_bytes", "check_dataset"]

#: A digest held by more originals than this (a common Modality, Rows, ...) casts no vote.
_MAX_VOTERS = 256
_UID_LIKE = re.compile(r"[0-9]+(?:\.[0-9]+)+")


class OutputResult(NamedTuple):
    """What checking one output found: its findings and how it was matched (``key``, ``content``, ``none``).

    ``status`` is ``checked``, ``unparsed`` (searched as raw bytes) or ``unreadable``.
    """

    findings: tuple[Finding, ...]
    match: str
    status: str


@dataclass
class Shared:
    """Everything the output checks need, built once from the originals' records."""

    policy: Policy
    dummies: DummyValues
    originals: dict[int, OriginalRecord]
    by_sop: dict[str, int]
    union: NeedleIndex = field(init=False)
    union_uids: UidIndex = field(init=False)
    _postings: dict[bytes, list[int]] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        records = list(self.originals.values())
        self.union = NeedleIndex(
            needle for record in records for needle in record.needles if needle.kind in UNION_KINDS
        )
        self.union_uids = UidIndex(records)

    @classmethod
    def build(
        cls, policy: Policy, dummies: DummyValues, originals: dict[int, OriginalRecord],
        key: ProjectKey | None, domain: str,
    ) -> Shared:
        """The shared state; with ``key``, outputs can be matched to originals by pseudonymous UID."""
        return cls(policy, dummies, originals, _by_sop(originals, policy, key, domain))

    def postings(self) -> dict[bytes, list[int]]:
        """Element digest -> the originals holding it (built on first use)."""
        if self._postings is None:
            postings: dict[bytes, list[int]] = defaultdict(list)
            for record in self.originals.values():
                for value in record.values:
                    postings[value].append(record.index)
            self._postings = dict(postings)
        return self._postings


def _by_sop(
    originals: dict[int, OriginalRecord], policy: Policy, key: ProjectKey | None, domain: str
) -> dict[str, int]:
    if key is None:
        return {}
    pseudonymizer = Pseudonymizer(key, domain)
    retained = Option.RETAIN_UIDS in policy.options
    seen: dict[str, list[int]] = defaultdict(list)
    for record in originals.values():
        if record.sop_uid:
            seen[record.sop_uid].append(record.index)
    # A SOP Instance UID held by several originals (a UID conflict) cannot tell them apart.
    unique = {uid: found[0] for uid, found in seen.items() if len(found) == 1}
    return {(uid if retained else pseudonymizer.uid(uid)): index for uid, index in unique.items()}


def _vote(keys: list[bytes | None], postings: dict[bytes, list[int]]) -> int | None:
    scores: dict[int, float] = defaultdict(float)
    for value in keys:
        owners = postings.get(value) if value is not None else None
        if owners and len(owners) <= _MAX_VOTERS:
            weight = 1.0 / len(owners)
            for owner in owners:
                scores[owner] += weight
    if not scores:
        return None
    return max(scores.items(), key=lambda item: (item[1], -item[0]))[0]


def _match(ds: Dataset, found: list[Leaf], shared: Shared) -> tuple[OriginalRecord | None, str]:
    index = shared.by_sop.get(sop_instance_uid(ds)) if shared.by_sop else None
    if index is not None:
        return shared.originals[index], "key"
    keys = [None if leaf.vr in BINARY_NUMBERS else leaf_key(leaf) for leaf in found]
    index = _vote(keys, shared.postings())
    return (None, "none") if index is None else (shared.originals[index], "content")


def check_dataset(rel: str, ds: Dataset, shared: Shared) -> OutputResult:
    """Check one parsed output (module docstring of :mod:`dicomcloak.verify.outputs`)."""
    found = list(leaves(ds))
    own, how = _match(ds, found, shared)
    hay = Haystack(shared.dummies)
    values: frozenset[bytes] = own.values if own is not None else frozenset()
    for leaf in found:
        if never_searched(leaf):
            continue
        scope = scope_of(leaf, bool(values) and leaf_key(leaf) in values, shared.policy)
        if scope != Scope.SKIP:
            hay.add(leaf, scope)
    return OutputResult(_findings(rel, hay, own, shared), how, "checked")


def _findings(rel: str, hay: Haystack, own: OriginalRecord | None, shared: Shared) -> tuple[Finding, ...]:
    originals = shared.originals
    found: set[Finding] = set()
    own_index = own.index_of_needles() if own is not None else None
    for path, needle in search_texts(hay, own_index, shared.union):
        owner = originals[needle.owner]
        found.add(Finding(rel, path, needle.kind, owner.rel, needle.source, len(needle.text)))
    for path, uid, owner_index, source in search_uids(hay, own, shared.union_uids):
        found.add(Finding(rel, path, "uid", originals[owner_index].rel, source, len(uid)))
    return tuple(sorted(found))


def check_bytes(rel: str, data: bytes, shared: Shared) -> OutputResult:
    """Search an output that does not parse as DICOM as Latin-1 text, for every original's values."""
    text = data.decode("latin-1").lower()
    found: set[Finding] = set()
    for _, needle in shared.union.search(text):
        original = shared.originals[needle.owner].rel
        found.add(Finding(rel, (), needle.kind, original, needle.source, len(needle.text)))
    owners = shared.union_uids.owners
    for uid in set(_UID_LIKE.findall(text)) & owners.keys():
        owner, source = owners[uid]
        found.add(Finding(rel, (), "uid", shared.originals[owner].rel, source, len(uid)))
    return OutputResult(tuple(sorted(found)), "none", "unparsed")
