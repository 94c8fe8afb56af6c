"""The values the pixel stage passes between its steps and to the report (no PHI leaves through them).

A :class:`Region` carries the OCR text only while the instance is processed;
reports and logs use its :attr:`Verdict.kind` and :attr:`Verdict.rule`,
never its text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["PixelMode", "PixelResult", "PixelStatus", "Rect", "Region", "TextBox", "Verdict"]


class PixelMode(StrEnum):
    """What to do with the pixels of an instance (``deid --pixels``, site policy ``[pixels]``).

    ``auto`` resolves per modality and SOP class to one of the others; ``off``
    streams Pixel Data through untouched (no decoding).
    """

    AUTO = "auto"
    OFF = "off"
    PHI = "phi"  # redact text classified as PHI
    ALL_TEXT = "all-text"  # redact every text region found
    QUARANTINE = "quarantine"  # an instance at risk is not passed on


class PixelStatus(StrEnum):
    """What the pixel stage did to one instance (the run report counts each)."""

    NOT_EXAMINED = "not-examined"  # mode off, or not at risk: pixels not decoded, Burned In Annotation kept
    NO_TEXT = "no-text"  # examined, nothing to redact: Pixel Data byte-identical
    CLEANED = "cleaned"  # redacted and verified: Burned In Annotation NO, code 113101
    QUARANTINED = "quarantined"  # see PixelResult.reason (pixel-phi-remains, pixel-undecodable, ...)


@dataclass(frozen=True, order=True)
class Rect:
    """A rectangle in pixel coordinates: rows ``top..bottom-1``, columns ``left..right-1``."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def area(self) -> int:
        return max(0, self.bottom - self.top) * max(0, self.right - self.left)


@dataclass(frozen=True)
class TextBox:
    """One text region found by an OCR back-end or given by a device template.

    ``text`` is ``None`` when only detection ran (``all-text`` needs no
    recognition) or the region comes from a template.
    """

    rect: Rect
    text: str | None
    score: float
    source: str = "ocr"  # "ocr" or "template:<name>"


@dataclass(frozen=True)
class Verdict:
    """Whether a text region is PHI, what kind, and which rule decided (``header:PatientName``, ...)."""

    phi: bool
    kind: str  # person-name, date, time, id, phone, email, location, label, institution, text, none
    rule: str


@dataclass(frozen=True)
class Region:
    """A text region with its verdict, the frames it was seen in, and whether it was redacted."""

    box: TextBox
    verdict: Verdict
    frames: tuple[int, ...]
    redacted: bool


@dataclass(frozen=True)
class PixelResult:
    """The pixel stage's outcome for one instance; ``reason`` is a reference code when quarantined."""

    status: PixelStatus
    mode: PixelMode
    regions: tuple[Region, ...] = ()
    frames: int = 0
    frames_examined: tuple[int, ...] = ()
    reason: str | None = None
    risk: tuple[str, ...] = field(default_factory=tuple)  # why the instance was judged at risk
