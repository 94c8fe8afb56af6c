"""The per-instance pixel stage: risk, OCR on sampled frames, classify, redact every frame, verify.

:func:`clean` changes the de-identified data set's Pixel Data in place when it
redacts; :func:`examine` does the same work on a copy for ``scan`` and the
report. Nothing here logs or returns text read from the pixels except inside
:class:`~dicomcloak.pixels.model.Region` values, which reports reduce to
verdict kinds and rules (architecture.md decision 7).

Statuses: ``not-examined`` (mode off or not at risk; nothing decoded),
``no-text`` (nothing to redact; Pixel Data byte-identical), ``cleaned``
(redacted, and the verifying pass on other sampled frames found nothing
classifiable), ``quarantined`` with reason ``pixel-phi-remains``,
``pixel-undecodable`` or ``pixel-quarantine-policy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from dataclasses import replace as evolve

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from dicomcloak.pixels import redact
from dicomcloak.pixels.classify import HeaderValues, classify, classify_line
from dicomcloak.pixels.display import to_uint8
from dicomcloak.pixels.frames import decode, mark_cleaned, replace, sample_indices
from dicomcloak.pixels.model import PixelMode, PixelResult, PixelStatus, Rect, Region, TextBox, Verdict
from dicomcloak.pixels.ocr.base import OcrBackend
from dicomcloak.pixels.risk import assess
from dicomcloak.pixels.settings import PixelSettings
from dicomcloak.pixels.templates import template_boxes

__all__ = ["Examination", "clean", "examine", "run"]

_ALL_TEXT = Verdict(True, "text", "all-text")
_TEMPLATE_KIND = "template"
#: Verifying rounds: text the check finds is redacted and checked again, at most this often.
_ROUNDS = 3
#: Pixels: a detection taller than this (and than 6% of the rows) is checked by recognition first.
_LINE = 48
#: A window read around a known box reaches this many box heights up and down (the lines
#: next to it), and at least this many pixels; sideways it spans the frame (the rest of its line).
_AROUND = 1.5
_MARGIN = 16


@dataclass(frozen=True)
class Examination:
    """A :class:`PixelResult` with display images of the first sampled frame, before and after."""

    result: PixelResult
    before: NDArray[np.uint8] | None = None
    after: NDArray[np.uint8] | None = None


@dataclass
class _Work:
    """One instance's state while it goes through the stage."""

    ds: Dataset
    header: HeaderValues
    settings: PixelSettings
    backend: OcrBackend
    mode: PixelMode
    frames: NDArray[np.generic]
    regions: list[Region]
    shown: dict[int, NDArray[np.uint8]] = field(default_factory=dict)


def _display(work: _Work, index: int) -> NDArray[np.uint8]:
    """Frame ``index`` as OCR sees it, computed once until the frames are redacted."""
    if index not in work.shown:
        work.shown[index] = to_uint8(work.frames[index], work.ds)
    return work.shown[index]


def _verdict(box: TextBox, mode: PixelMode, header: HeaderValues) -> Verdict:
    if box.source.startswith("template:"):
        return Verdict(True, _TEMPLATE_KIND, box.source)
    if mode is PixelMode.ALL_TEXT:
        return _ALL_TEXT
    return classify(box.text or "", header)


def _ocr(work: _Work, indices: Sequence[int], *, recognise: bool) -> list[tuple[int, list[TextBox]]]:
    return [(index, work.backend.detect(_display(work, index), recognise=recognise)) for index in indices]


def _window(rect: Rect, shape: tuple[int, ...], whole_line: bool) -> Rect:
    down = max(_MARGIN, round((rect.bottom - rect.top) * _AROUND))
    if whole_line:
        return Rect(max(0, rect.top - down), 0, min(shape[0], rect.bottom + down), shape[1])
    return Rect(max(0, rect.top - down), max(0, rect.left - down),
                min(shape[0], rect.bottom + down), min(shape[1], rect.right + down))


def _meet(a: Rect, b: Rect) -> bool:
    return a.top < b.bottom and b.top < a.bottom and a.left < b.right and b.left < a.right


def _windows(rects: Sequence[Rect], shape: tuple[int, ...], whole_lines: bool) -> list[Rect]:
    """The neighbourhoods of ``rects``, overlapping ones joined, so that no text is read twice."""
    windows: list[Rect] = []
    for rect in (_window(rect, shape, whole_lines) for rect in rects):
        while (meets := next((w for w in windows if _meet(w, rect)), None)) is not None:
            windows.remove(meets)
            rect = redact.union(meets, rect)
        windows.append(rect)
    return windows


def _shifted(box: TextBox, window: Rect) -> TextBox:
    rect = box.rect
    return evolve(box, rect=Rect(rect.top + window.top, rect.left + window.left,
                                 rect.bottom + window.top, rect.right + window.left))


def _around(work: _Work, index: int, rects: Sequence[Rect], *, whole_lines: bool) -> list[TextBox]:
    """Text read in windows around ``rects`` on frame ``index``, at the scale of the whole frame.

    With ``whole_lines`` each window spans the frame's width: text that goes on
    beside a box is read to its end, not cut at the window's edge.
    """
    image = _display(work, index)
    return [
        _shifted(box, w)
        for w in _windows(rects, image.shape, whole_lines)
        for box in work.backend.detect(image[w.top:w.bottom, w.left:w.right], recognise=True,
                                       frame_shape=image.shape)
    ]


def _tall(box: TextBox, rows: int) -> bool:
    """A detection taller than a text line can be: texture (speckle, anatomy) more often than text."""
    return box.rect.bottom - box.rect.top > max(_LINE, rows * 0.06)


def _readable(work: _Work, box: TextBox) -> bool:
    letters = sum(char.isalnum() for char in box.text or "")
    return letters >= 2 and box.score >= work.settings.verify_score


def _plausible(work: _Work, index: int, boxes: list[TextBox]) -> list[TextBox]:
    """Detection-only boxes, with tall ones kept only if recognition reads text in them (``all-text``)."""
    rows = work.frames.shape[1]
    if not any(_tall(box, rows) for box in boxes):
        return boxes
    read = _around(work, index, [box.rect for box in boxes if _tall(box, rows)], whole_lines=False)
    tall = [box for box in read if _tall(box, rows) and _readable(work, box)]
    return [box for box in boxes if not _tall(box, rows)] + tall


def _regions(work: _Work, found: list[tuple[int, list[TextBox]]]) -> list[Region]:
    seen = redact.merge(found)
    verdicts = _verdicts(work, [box for box, _ in seen])
    return [
        Region(box=box, verdict=verdict, frames=frames, redacted=verdict.phi)
        for (box, frames), verdict in zip(seen, verdicts, strict=True)
    ]


def _verdicts(work: _Work, boxes: list[TextBox]) -> list[Verdict]:
    """Each box's verdict; under ``phi`` read with its neighbours on the line (``DOB:`` then a date)."""
    if work.mode is not PixelMode.PHI:
        return [_verdict(box, work.mode, work.header) for box in boxes]
    read = [box for box in boxes if not box.source.startswith("template:")]
    by_line = iter(classify_line(read, work.header))
    return [_verdict(box, work.mode, work.header) if box.source.startswith("template:") else next(by_line)
            for box in boxes]


def _padded(work: _Work, regions: Sequence[Region]) -> list[Rect]:
    shape = work.frames.shape[1:3]
    sideways, vertical = work.settings.padding, work.settings.padding_vertical
    return [redact.pad(region.box.rect, shape, sideways, vertical) for region in regions if region.redacted]


def _redact(work: _Work, regions: Sequence[Region]) -> None:
    value = work.settings.fill if work.settings.fill is not None else redact.black(work.ds, work.frames)
    redact.fill(work.frames, _padded(work, regions), value)
    work.shown.clear()


def _remains(work: _Work, box: TextBox) -> bool:
    """Whether text the verifying pass read still counts: PHI under ``phi``, any text under ``all-text``."""
    if work.mode is PixelMode.PHI:
        return classify(box.text or "", work.header).phi
    return _readable(work, box)


def _verify_indices(n_frames: int, first: Sequence[int], k: int) -> tuple[int, ...]:
    """Other frames than the first pass's when there are more, evenly spaced; else the same ones."""
    others = [index for index in range(n_frames) if index not in set(first)]
    if not others:
        return tuple(first)
    return tuple(others[i] for i in sample_indices(len(others), k))


def _reread(work: _Work, index: int, first: Sequence[int]) -> list[TextBox]:
    """Text on frame ``index`` after redaction.

    A frame the first pass did not read is read whole. On one it read, only the
    neighbourhood of what was blanked can have changed (the rest is the same
    pixels, read already): that is read again, unless ``verify_whole_frame``.
    """
    if index not in first or work.settings.verify_whole_frame:
        return work.backend.detect(_display(work, index), recognise=True)
    return _around(work, index, _padded(work, work.regions), whole_lines=True)


def _kept(work: _Work) -> list[tuple[int, list[TextBox]]]:
    """Boxes the first pass read and left (not PHI on their line), judged again on their own."""
    return [(region.frames[0], [region.box]) for region in work.regions
            if not region.redacted and region.box.text is not None and _remains(work, region.box)]


def _verify(work: _Work, indices: Sequence[int], first: Sequence[int]) -> bool:
    """Check the redacted frames; text found is redacted too and checked again. True when clean."""
    kept = _kept(work)
    for _ in range(_ROUNDS):
        found = [(i, [box for box in _reread(work, i, first) if _remains(work, box)]) for i in indices]
        extra = [evolve(region, verdict=Verdict(True, "text", "verify"), redacted=True)
                 for region in _regions(work, found + kept)]
        kept = []
        if not extra:
            return True
        work.regions.extend(extra)
        _redact(work, extra)
    return False


def _first_pass(work: _Work) -> tuple[int, ...]:
    indices = sample_indices(work.frames.shape[0], work.settings.frames)
    found = _ocr(work, indices, recognise=work.mode is PixelMode.PHI)
    if work.mode is PixelMode.ALL_TEXT:
        found = [(index, _plausible(work, index, boxes)) for index, boxes in found]
    found.append((indices[0], template_boxes(work.ds, work.settings.templates)))
    work.regions = _regions(work, found)
    return indices


def _result(work: _Work, status: PixelStatus, examined: Sequence[int], risk: tuple[str, ...],
            reason: str | None = None) -> PixelResult:
    return PixelResult(status=status, mode=work.mode, regions=tuple(work.regions),
                       frames=int(work.frames.shape[0]), frames_examined=tuple(sorted(set(examined))),
                       reason=reason, risk=risk)


def _examine(work: _Work, risk: tuple[str, ...]) -> tuple[PixelResult, NDArray[np.uint8]]:
    first = _first_pass(work)
    before = _display(work, first[0])
    _redact(work, work.regions)
    if not work.settings.verify:
        return _result(work, _status(work), first, risk), before
    # Also when the first pass found nothing: the check reads frames it did not (a cine's later frames).
    check = _verify_indices(work.frames.shape[0], first, work.settings.frames)
    if any(region.redacted for region in work.regions) or set(check) - set(first):
        if not _verify(work, check, first):
            return _result(work, PixelStatus.QUARANTINED, (*first, *check), risk, "pixel-phi-remains"), before
        return _result(work, _status(work), (*first, *check), risk), before
    return _result(work, PixelStatus.NO_TEXT, first, risk), before


def _status(work: _Work) -> PixelStatus:
    return PixelStatus.CLEANED if any(region.redacted for region in work.regions) else PixelStatus.NO_TEXT


def run(ds: Dataset, header: HeaderValues, settings: PixelSettings, backend: OcrBackend, *,
        write: bool) -> Examination:
    """The whole stage for one instance; with ``write`` the redacted frames replace ``ds``'s Pixel Data."""
    mode, risk = assess(ds, settings)
    if mode is PixelMode.OFF:
        return Examination(PixelResult(PixelStatus.NOT_EXAMINED, mode, risk=risk))
    if mode is PixelMode.QUARANTINE:
        return Examination(PixelResult(PixelStatus.QUARANTINED, mode, reason="pixel-quarantine-policy",
                                       risk=risk))
    try:
        frames = decode(ds)
    except Exception:  # noqa: BLE001 - any decoder failure (plugin missing, corrupt stream) quarantines
        return Examination(PixelResult(PixelStatus.QUARANTINED, mode, reason="pixel-undecodable", risk=risk))
    work = _Work(ds, header, settings, backend, mode, np.array(frames, copy=True), [])
    result, before = _examine(work, risk)
    if write and result.status is PixelStatus.CLEANED:
        replace(ds, work.frames)
        mark_cleaned(ds)
    after = to_uint8(work.frames[result.frames_examined[0]], ds) if result.frames_examined else None
    return Examination(result, before, after)


def clean(ds: Dataset, header: HeaderValues, settings: PixelSettings, backend: OcrBackend) -> PixelResult:
    """Clean ``ds`` (the de-identified data set) in place; see the module docstring for the statuses."""
    return run(ds, header, settings, backend, write=True).result


def examine(ds: Dataset, header: HeaderValues, settings: PixelSettings, backend: OcrBackend) -> Examination:
    """What :func:`clean` would do, with before/after display images, leaving ``ds`` untouched."""
    return run(ds, header, settings, backend, write=False)
