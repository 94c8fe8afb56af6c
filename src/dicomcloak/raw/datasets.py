"""Build pydicom Datasets without ``Dataset.__init__``'s per-attribute ``__setattr__`` cost."""

from __future__ import annotations

from collections.abc import MutableMapping
from io import BytesIO
from typing import Any

from pydicom.charset import default_encoding
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset

__all__ = ["new_dataset", "new_file_dataset", "new_file_meta"]


def _fresh(
    charset: str | list[str], parent: str | list[str], elements: MutableMapping[Any, Any]
) -> dict[str, Any]:
    """The attributes ``Dataset.__init__`` sets (pydicom 3.0, pinned), with these values."""
    return {
        "_parent_encoding": parent,
        "_dict": elements,
        "is_decompressed": False,
        "_read_little": None,
        "_read_implicit": None,
        "_read_charset": charset,
        "_is_little_endian": None,
        "_is_implicit_VR": None,
        "is_undefined_length_sequence_item": False,
        "_private_blocks": {},
        "_pixel_array": None,
        "_pixel_array_opts": {"use_pdh": False},
        "_pixel_id": {},
    }


def new_dataset(
    elements: dict[Any, Any],
    implicit: bool,
    little: bool,
    charset: str | list[str],
    *,
    parent: str | list[str] | None = None,
    undefined: bool = False,
) -> Dataset:
    """A Dataset holding ``elements``, read as (``implicit``, ``little``, ``charset``).

    ``parent`` is the enclosing dataset's character set (``charset`` when
    None); ``undefined`` marks a sequence item of undefined length.

    ``Dataset.__init__`` followed by ``set_original_encoding`` costs about
    17 us, through ``Dataset.__setattr__`` for each of its attributes; a
    de-identified instance makes several. This sets the same attributes to the
    same values directly (pydicom 3.0, pinned; a test compares the two).
    """
    ds = Dataset.__new__(Dataset)
    ds.__dict__.update(  # one call, not _fresh(): this runs for every sequence item
        _parent_encoding=charset if parent is None else parent,
        _dict=elements,
        is_decompressed=False,
        _read_little=little,
        _read_implicit=implicit,
        _read_charset=charset,
        _is_little_endian=None,
        _is_implicit_VR=None,
        is_undefined_length_sequence_item=undefined,
        _private_blocks={},
        _pixel_array=None,
        _pixel_array_opts={"use_pdh": False},
        _pixel_id={},
    )
    return ds


def new_file_meta(elements: MutableMapping[Any, Any]) -> FileMetaDataset:
    """``FileMetaDataset(elements)`` for group 0002 ``elements`` (the caller's guarantee), set directly.

    What :func:`new_dataset` saves, for the File Meta Information every input
    and every output has (PS3.10 7.1): ``FileMetaDataset.__init__`` also
    checks each tag's group, which the caller's reader (or builder) already did.
    """
    meta = FileMetaDataset.__new__(FileMetaDataset)
    meta.__dict__.update(_fresh("", default_encoding, elements))
    return meta


def new_file_dataset(
    elements: MutableMapping[Any, Any],
    preamble: bytes | None,
    meta: FileMetaDataset,
    implicit: bool,
    little: bool,
) -> FileDataset:
    """``FileDataset(BytesIO(...), elements, preamble, meta, implicit, little)``, buffer None, set directly.

    The data set read from bytes in memory, keeping no reference to them
    (``buffer`` None) and with no file name nor time stamp. The caller then
    sets its original encoding (``set_original_encoding``), as before.
    """
    ds = FileDataset.__new__(FileDataset)
    ds.__dict__.update(_fresh("", default_encoding, elements))
    ds.__dict__.update(
        preamble=preamble,
        file_meta=meta,
        _is_implicit_VR=implicit,
        _is_little_endian=little,
        _read_implicit=implicit,
        _read_little=little,
        fileobj_type=BytesIO,
        filename=None,
        buffer=None,
        timestamp=None,
    )
    return ds
