"""The reading limits of the one reader of the project, checked while bytes are read.

They live with the raw readers (pure, no I/O) because the checks sit in
their loops, where each is an integer compare; :mod:`dicomcloak.io.reader`
(the edge) and :mod:`dicomcloak.sanitize` (the CDR stage) enforce the rest.
Every default is documented in ``docs/security.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["LIMIT_NAMES", "ReadLimits"]

_GIB = 2**30


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on what one input may cost: to read, and to keep in quarantine.

    Parameters
    ----------
    max_file_bytes:
        Largest accepted input, so one hostile or mistaken input cannot
        exhaust a worker's memory (``file-too-large``).
    max_sequence_depth:
        Deepest accepted nesting of sequences; deeper nesting serves no
        clinical purpose and is a classic parser attack (``sequence-too-deep``).
    max_element_bytes:
        Largest value length of one element (``element-too-large``).
    max_elements:
        Most data elements in one instance, all nesting levels together
        (``too-many-elements``): each costs Python objects and tens of
        microseconds through sanitizing and de-identification, so this bounds
        the time and memory of a flood of distinct elements (100,000 took
        about 4 s of CPU and 250 MB on a 2-core machine; 900,000, the old
        default's reach, 80 s and 1.75 GB). Large enhanced multi-frame or
        tiled images with per-frame items may need more.
    max_inflated_bytes, max_deflate_ratio:
        A Deflated Explicit VR Little Endian data set (PS3.5 A.5) may inflate
        to at most this many bytes and at most this ratio times its deflated
        size (``deflate-bomb``); the ratio applies above ``deflate_ratio_floor``.
    max_meta_bytes:
        Largest File Meta Information group (PS3.10 7.1), which is a few
        hundred bytes in practice (``meta-too-large``).
    max_pixel_ratio:
        Largest ratio of the decoded pixel size an encapsulated Pixel Data
        describes (Rows x Columns x Samples x Bits x Frames) to its encoded
        bytes, above ``pixel_ratio_floor`` decoded bytes (``pixel-bomb``): a
        decoder would allocate the described size.
    max_quarantine_bytes:
        Most bytes of a refused input copied into the quarantine: a larger
        one keeps its head (preamble, File Meta, the headers that explain the
        refusal), and its ``.reason.json`` records its size and that the copy
        is truncated. The input itself is never modified. The copy is sparse
        (zero runs cost no disk), so this bounds what a hostile file can make
        the quarantine hold.
    max_archive_bytes:
        Most bytes a compressed tar archive (``.tar.gz``, ``.tar.bz2``,
        ``.tar.xz``) may inflate to; it inflates once, into a private copy in
        the run directory, never filling more than 90% of its free space
        (``archive-too-large``, docs/inputs.md).
    """

    max_file_bytes: int = 4 * _GIB
    max_sequence_depth: int = 64
    max_element_bytes: int = 2 * _GIB
    max_elements: int = 100_000
    max_inflated_bytes: int = 1 * _GIB
    max_deflate_ratio: int = 200
    deflate_ratio_floor: int = 16 * 2**20
    max_meta_bytes: int = 64 * 2**10
    max_pixel_ratio: int = 10_000
    pixel_ratio_floor: int = 64 * 2**20
    max_quarantine_bytes: int = 64 * 2**20
    max_archive_bytes: int = 64 * _GIB


#: The names a site policy's ``[sanitize.limits]`` table may set.
LIMIT_NAMES = tuple(field.name for field in fields(ReadLimits))
