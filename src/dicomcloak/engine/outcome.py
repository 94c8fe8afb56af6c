"""What de-identifying one instance produced: the new dataset and the record of changes.

A :class:`Change` names the element by its tag path and the action applied,
never the value (STYLE.md habit 3): the list is the report, the audit entry
and what ``verify`` and re-identification use to find the original values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    replaced:
        Distinct (map key of the pseudonym, original) pairs of every replaced UID
        (action U) and keyed pseudonym (action P), in tag-path order: the vault's
        pseudonym map (:mod:`dicomcloak.engine.uidmap`). Values, so never logged
        or reported: only sealed into the vault.
    """

    dataset: Dataset
    changes: tuple[Change, ...]
    patient_pseudonym: str
    replaced: tuple[tuple[str, str], ...] = field(default=(), repr=False)

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
