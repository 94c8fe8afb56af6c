"""Build pydicom Datasets without ``Dataset.__init__``'s per-attribute ``__setattr__`` cost."""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

__all__ = ["new_dataset"]


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
    ds.__dict__.update(
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
