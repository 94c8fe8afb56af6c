"""Classify the 128-byte File Preamble (PS3.10 7.1) an input carried; outputs always get zeros.

The preamble is free for application use, which is what makes DICOM/PE,
DICOM/ELF and DICOM/Mach-O polyglots possible (CVE-2019-11687): a file that
is both a valid DICOM instance and a runnable program. The sanitizer never
copies it; it only says what it was, so an executable one raises an alert.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["PreambleKind", "classify_preamble", "classify_prefix"]

_PREAMBLE = 128


class PreambleKind(StrEnum):
    """What an input's preamble held."""

    NONE = "none"  # a bare data set: no preamble at all
    ZEROS = "zeros"
    TIFF = "tiff"  # PS3.10 7.1 allows a TIFF header (dual-personality files)
    PE = "pe"  # Windows Portable Executable ("MZ")
    ELF = "elf"
    MACHO = "mach-o"
    SCRIPT = "script"  # "#!" interpreter line
    OTHER = "other"

    @property
    def executable(self) -> bool:
        """True for preambles that make the file a runnable program."""
        return self in _EXECUTABLE


_EXECUTABLE = frozenset({PreambleKind.PE, PreambleKind.ELF, PreambleKind.MACHO, PreambleKind.SCRIPT})
_MAGIC: tuple[tuple[bytes, PreambleKind], ...] = (
    (b"MZ", PreambleKind.PE),
    (b"\x7fELF", PreambleKind.ELF),
    (b"\xfe\xed\xfa\xce", PreambleKind.MACHO),
    (b"\xfe\xed\xfa\xcf", PreambleKind.MACHO),
    (b"\xce\xfa\xed\xfe", PreambleKind.MACHO),
    (b"\xcf\xfa\xed\xfe", PreambleKind.MACHO),
    (b"\xca\xfe\xba\xbe", PreambleKind.MACHO),  # universal ("fat") binary
    (b"#!", PreambleKind.SCRIPT),
    (b"II*\x00", PreambleKind.TIFF),
    (b"MM\x00*", PreambleKind.TIFF),
)


def classify_preamble(preamble: bytes | None) -> PreambleKind:
    """Classify a preamble by its magic number; None means there was none."""
    if preamble is None:
        return PreambleKind.NONE
    if not preamble.strip(b"\x00"):
        return PreambleKind.ZEROS
    for magic, kind in _MAGIC:
        if preamble.startswith(magic):
            return kind
    return PreambleKind.OTHER


def classify_prefix(data: bytes) -> PreambleKind:
    """Classify the preamble of a whole input's bytes (``DICM`` at 128 marks one)."""
    if data[_PREAMBLE : _PREAMBLE + 4] != b"DICM":
        return PreambleKind.NONE
    return classify_preamble(data[:_PREAMBLE])
