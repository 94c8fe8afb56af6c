"""The packaged starting list of safe private attributes (in the spirit of PS3.15 Table E.3.10-1).

``data/safe_private.csv`` lists private elements whose values are device or
acquisition parameters (numbers and coded values, never free text, dates,
UIDs or binary blobs); each row names its source. Retain Safe Private
(PS3.15 E.3.10) keeps only these, plus what a site policy adds.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["SafePrivateEntry", "normalize_creator", "safe_private_entries", "safe_private_rows"]

#: A private element's identity: (group, normalised private creator, element low byte);
#: the same shape as ``dicomcloak.policy.model.PrivateKey``.
_Key = tuple[int, str, int]


def normalize_creator(creator: str) -> str:
    """Private creator identity compared without padding and case (PS3.5 7.8.1)."""
    return creator.strip().upper()


@dataclass(frozen=True, slots=True)
class SafePrivateEntry:
    """One row of ``safe_private.csv``: ``element`` is the low byte of the element number."""

    group: int
    creator: str
    element: int
    vr: str
    name: str
    source: str

    @property
    def key(self) -> _Key:
        """The policy key (group, normalised creator, element low byte)."""
        return (self.group, normalize_creator(self.creator), self.element)


@cache
def safe_private_rows() -> tuple[SafePrivateEntry, ...]:
    """Return every row of the packaged safe-private list, in file order."""
    text = resources.files("dicomcloak.standard").joinpath("data", "safe_private.csv").read_text("utf-8")
    return tuple(
        SafePrivateEntry(
            int(raw["group"], 16),
            raw["private_creator"],
            int(raw["element"], 16),
            raw["vr"],
            raw["name"],
            raw["source"],
        )
        for raw in csv.DictReader(io.StringIO(text))
    )


@cache
def safe_private_entries() -> frozenset[_Key]:
    """Return the keys of the packaged safe-private list."""
    return frozenset(entry.key for entry in safe_private_rows())
