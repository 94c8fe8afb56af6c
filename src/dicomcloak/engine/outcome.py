"""What de-identifying one instance produced: the new dataset and the record of changes.

A :class:`Change` names the element by its tag path and the action applied,
never the value (STYLE.md habit 3): the list is the report, the audit entry
and what ``verify`` and re-identification use to find the original values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from pydicom.dataset import Dataset

from dicomcloak.engine.values import text_of

__all__ = ["Change", "Outcome", "TagPath", "format_path"]

#: A path to an element: (tag, item index, tag, item index, ..., tag).
TagPath = tuple[int, ...]


def format_path(path: TagPath) -> str:
    """Render a tag path as ``(0008,1140)[0]/(0008,1155)``."""
    parts: list[str] = []
    for position, value in enumerate(path):
        if position % 2:
            parts[-1] += f"[{value}]"
        else:
            parts.append(f"({value >> 16:04X},{value & 0xFFFF:04X})")
    return "/".join(parts)


class Mapped(Protocol):
    """An element given keyed UIDs or pseudonyms (:class:`dicomcloak.engine.uidmap.Replaced`)."""

    @property
    def path(self) -> TagPath:
        """Where the element is."""

    def pairs(self) -> Iterator[tuple[str, str]]:
        """(map key of the pseudonym, original) of its changed values."""


def _path(entry: Mapped) -> TagPath:
    return entry.path


@dataclass(frozen=True, slots=True)
class Change:
    """One applied rule: which element, which action, which rule source.

    ``action`` is the action actually applied (combined actions resolved):
    ``X`` removed, ``Z`` emptied, ``D`` dummy, ``U`` UID replaced, ``C`` cleaned
    (text cleaned or dates shifted), ``P`` replaced by a keyed pseudonym,
    ``A`` added (de-identification markers).
    """

    path: TagPath
    action: str
    source: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form: tag path, action, source."""
        return {"path": format_path(self.path), "action": self.action, "source": self.source}


@dataclass(frozen=True)
class Outcome:
    """The result of de-identifying one dataset.

    Attributes
    ----------
    dataset:
        The de-identified dataset, with fresh File Meta Information.
    changes:
        Every applied rule, in tag-path order; never values.
    patient_pseudonym:
        The keyed patient pseudonym (folder name in the pseudonymous layout).
    mapped:
        Every element given keyed UIDs (U) or pseudonyms (P), as the engine made
        them (:class:`dicomcloak.engine.uidmap.Replaced`); see :attr:`replaced`.
    """

    dataset: Dataset
    changes: tuple[Change, ...]
    patient_pseudonym: str
    mapped: tuple[Mapped, ...] = field(default=(), repr=False, compare=False)

    @cached_property
    def replaced(self) -> tuple[tuple[str, str], ...]:
        """Distinct (map key of the pseudonym, original) pairs of every U and P value, in tag-path order.

        The vault's pseudonym map (:mod:`dicomcloak.engine.uidmap`), decoded on
        first use. Values, so never logged or reported: only sealed into the vault.
        """
        pairs: dict[str, str] = {}
        for entry in sorted(self.mapped, key=_path):
            for key, old in entry.pairs():
                pairs[key] = old
        return tuple(pairs.items())

    @property
    def study_uid(self) -> str:
        """The new Study Instance UID ("" when absent)."""
        return text_of(self.dataset, 0x0020000D)

    @property
    def series_uid(self) -> str:
        """The new Series Instance UID ("" when absent)."""
        return text_of(self.dataset, 0x0020000E)

    @property
    def sop_instance_uid(self) -> str:
        """The new SOP Instance UID ("" when absent)."""
        return text_of(self.dataset, 0x00080018)
