"""Which inputs a ``reid --patient/--study`` run restores: decided per file from its header, cheaply.

The owner asks for one patient or one study out of a tree (docs/reidentification.md,
"Restoring part of a tree"). Each input is judged by the pseudonyms its
de-identified header carries, Patient ID (0010,0020) and Study Instance UID
(0020,000D) (PS3.3 C.7.1.1, C.7.2.1), as read by the project's reader with
``share_pixel_data`` (:func:`dicomcloak.io.reader.read_dataset`): the Pixel
Data value is not copied, nothing is sanitized, decrypted or audited. An input
no value selects is counted ``not-selected``: not an error, and nothing of it
is opened in the vault. An input that cannot be read is left to the restoring
path, which quarantines it with its reason code as a run without selection
would: every input is still accounted for (architecture.md decision 6).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.dataset import Dataset

from dicomcloak.engine.values import text_of
from dicomcloak.errors import InputError
from dicomcloak.io.reader import ReadLimits, read_dataset

__all__ = ["NOT_SELECTED", "Selection"]

#: The reason code of an input a selection leaves out (counted in the report, never an error).
NOT_SELECTED = "not-selected"

_PATIENT_ID = 0x00100020
_STUDY_UID = 0x0020000D


@dataclass(frozen=True)
class Selection:
    """Pseudonymous Patient IDs and Study Instance UIDs to restore; empty: everything.

    A file is selected when its Patient ID is one of ``patients`` **or** its
    Study Instance UID one of ``studies``: each value asks for what it names.
    Picklable: it crosses to the worker processes with the run's settings.
    """

    patients: frozenset[str] = frozenset()
    studies: frozenset[str] = frozenset()

    @classmethod
    def of(cls, patients: Iterable[str] = (), studies: Iterable[str] = ()) -> Selection:
        """A selection from command-line values (surrounding spaces dropped, empty values ignored)."""
        return cls(_cleaned(patients), _cleaned(studies))

    @property
    def everything(self) -> bool:
        """Whether no value was given: every input is restored."""
        return not self.patients and not self.studies

    def selects(self, dataset: Dataset) -> bool:
        """Whether ``dataset``'s top-level header names a selected patient or study."""
        if self.everything:
            return True
        if self.patients and text_of(dataset, _PATIENT_ID) in self.patients:
            return True
        return bool(self.studies) and _uid(text_of(dataset, _STUDY_UID)) in self.studies

    def selects_data(self, data: bytes, limits: ReadLimits) -> bool:
        """Whether the encoded instance ``data`` is selected; an unreadable one is (it is quarantined later).

        Read with ``share_pixel_data``: a large Pixel Data value stays a view of
        ``data``; only top-level header values are decoded.
        """
        if self.everything:
            return True
        try:
            dataset = read_dataset(data, limits, share_pixel_data=True)
        except InputError:
            return True  # the restoring path reads it again and quarantines it with its reason
        return self.selects(dataset)


def _cleaned(values: Iterable[str]) -> frozenset[str]:
    return frozenset(value for value in (_uid(v) for v in values) if value)


def _uid(value: str) -> str:
    """A value as compared: UIDs are padded with NUL to an even length (PS3.5 6.2, UI)."""
    return value.strip().rstrip("\x00").strip()
