"""Where the encoder marks the elements the binding digest leaves out (:mod:`dicomcloak.io.binding`)."""

from __future__ import annotations

__all__ = ["BOUNDARIES", "mark"]

_ENCRYPTED_ATTRIBUTES = 0x04000500
_PIXEL_DATA = 0x7FE00010
#: The excluded spans begin and end at the first top-level element at or after each of these tags.
BOUNDARIES = (_ENCRYPTED_ATTRIBUTES, _ENCRYPTED_ATTRIBUTES + 1, _PIXEL_DATA, _PIXEL_DATA + 1)
#: Beyond every tag: the encoder's loop compares against it and never marks.
_NEVER = 1 << 32


def mark(marks: list[int] | None, tag: int, position: int) -> int:
    """Record `position` for every boundary `tag` reaches; return the next boundary to watch for."""
    assert marks is not None  # only called when marking (the next boundary is _NEVER otherwise)
    while len(marks) < len(BOUNDARIES) and tag >= BOUNDARIES[len(marks)]:
        marks.append(position)
    return BOUNDARIES[len(marks)] if len(marks) < len(BOUNDARIES) else _NEVER
