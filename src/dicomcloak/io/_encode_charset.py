"""Character-set state of the fast DICOM encoder, read without converting the data set."""

# ruff: noqa: SLF001 - a fast encoder over pydicom internals, by design (as encode.py)

from __future__ import annotations

from collections.abc import MutableSequence
from typing import Any

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

_CHARSET_TAG = BaseTag(0x00080005)

Charset = str | MutableSequence[str]

_CHARSET_CACHE: dict[bytes, Any] = {}


def _charset_value(elem: DataElement | RawDataElement) -> Any:
    """The value of a (0008,0005) element, without converting it in its data set."""
    if isinstance(elem, RawDataElement):
        raw = elem.value or b""
        value = _CHARSET_CACHE.get(raw)
        if value is None:
            value = convert_raw_data_element(elem, encoding=default_encoding).value
            if len(_CHARSET_CACHE) > 256:
                _CHARSET_CACHE.clear()
            _CHARSET_CACHE[raw] = value
        return value
    return elem.value


class _Context:
    """Per-data-set state needed only on the slow path, computed once."""

    __slots__ = ("ancestors", "decode_charset", "write_charset")

    def __init__(self, ds: Dataset, parent_charset: Charset, ancestors: list[Dataset]) -> None:
        own = ds._dict.get(_CHARSET_TAG)
        own_value = None if own is None else _charset_value(own)
        # what pydicom's write_dataset passes to write_data_element
        self.write_charset: Charset | None = own_value if own is not None else parent_charset
        # what Dataset.__getitem__ uses to decode a raw element
        current: Charset = convert_encodings(own_value) if own else ds._parent_encoding
        self.decode_charset: Charset = ds.original_character_set or current
        self.ancestors = ancestors


def _charset_changed(ds: Dataset) -> bool:
    """True if a data set read from a file has had its character set changed since.

    Mirrors pydicom's ``original_character_set != _character_set`` test,
    without converting the raw (0008,0005) element in `ds`. A data set
    created from scratch has no original character set: its raw elements are
    copied byte for byte.
    """
    original = ds.original_character_set
    if not original:
        return False
    own = ds._dict.get(_CHARSET_TAG)
    current = convert_encodings(_charset_value(own)) if own else ds._parent_encoding
    return bool(original != current)
