"""``dicomcloak scan``: what the pixel stage would do to each input, as a report; no DICOM written.

The same :class:`~dicomcloak.pixels.stage.PixelStage` as ``deid`` examines
each original (:meth:`~dicomcloak.pixels.stage.PixelStage.examine`, on a copy
of its pixels), so the report shows what ``deid`` with the same ``--pixels``
and policy would find and redact. Inputs are read with the same limits and
refusals as ``deid``; one that cannot be read is counted by its reason code,
never quarantined (scan writes nothing but its report). Cards are labelled by
the input's index in the walk's order: file names may hold names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dicomcloak.errors import InputError
from dicomcloak.io.inputs import InputItem, WalkEntry
from dicomcloak.io.reader import ReadLimits, read_dataset, read_input
from dicomcloak.pixels.model import PixelStatus

if TYPE_CHECKING:
    from dicomcloak.pixels.report.views import ItemView
    from dicomcloak.pixels.stage import PixelStage

__all__ = ["ScanResult", "scan"]


@dataclass
class ScanResult:
    """Instances counted by pixel status, inputs not read by reason, and the cards of images with text."""

    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)  # the stage's quarantine reasons
    unread: Counter[str] = field(default_factory=Counter)  # inputs not examined: not DICOM, refused...
    cards: list[ItemView] = field(default_factory=list)
    hidden: int = 0  # images with text beyond the cap: counted, not shown

    def to_dict(self) -> dict[str, object]:
        """The JSON summary (``scan --json``): counts and codes only."""
        return {
            "schema": "dicomcloak/scan-summary/1",
            "pixels": dict(sorted(self.statuses.items())),
            "pixel_reasons": dict(sorted(self.reasons.items())),
            "not_read": dict(sorted(self.unread.items())),
            "shown": len(self.cards),
            "not_shown": self.hidden,
        }


def scan(entries: Iterable[WalkEntry], stage: PixelStage, limits: ReadLimits, cap: int) -> ScanResult:
    """Examine every input the walk yields; keep the cards of at most ``cap`` images with text."""
    result = ScanResult()
    for index, entry in enumerate(entries):
        if not isinstance(entry, InputItem):
            result.unread[getattr(entry, "reason", "skipped")] += 1
            continue
        _scan_one(index, entry, stage, limits, cap, result)
    return result


def _scan_one(
    index: int, item: InputItem, stage: PixelStage, limits: ReadLimits, cap: int, result: ScanResult
) -> None:
    try:
        source = read_dataset(read_input(item, limits), limits)
    except InputError as error:
        result.unread[error.reference] += 1
        return
    examination = stage.examine(source)
    status = examination.result
    result.statuses[status.status.value] += 1
    if status.status is PixelStatus.QUARANTINED:
        result.reasons[status.reason or "unspecified"] += 1
    if examination.before is None or not (status.regions or status.status is PixelStatus.QUARANTINED):
        return
    if len(result.cards) >= cap:
        result.hidden += 1
        return
    from dicomcloak.pixels.report import ReportItem
    from dicomcloak.pixels.report.views import item_view

    card = ReportItem(f"#{index}", examination.before, examination.after, status.regions, status)
    result.cards.append(item_view(card))
