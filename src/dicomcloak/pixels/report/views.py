"""What the template sees: plain values built from the report items, with no OCR text and no header value.

The template never receives a :class:`~dicomcloak.pixels.model.Region` or its
:class:`~dicomcloak.pixels.model.TextBox`, only these views, so no template
change can print recognised text by mistake (architecture.md decision 7).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dicomcloak.pixels.model import PixelResult, PixelStatus, Region

if TYPE_CHECKING:  # thumbnails need NumPy and Pillow: imported when a card is made, not for the counts
    from dicomcloak.pixels.report.items import ReportItem
    from dicomcloak.pixels.report.thumbs import Thumb

__all__ = [
    "BoxView", "ItemView", "Summary", "colour", "frame_list", "item_view", "summarise", "summarise_counts",
]


@dataclass(frozen=True)
class BoxView:
    """One region drawn over the "before" thumbnail and listed in the item's table."""

    number: int
    colour: str  # the CSS class: phi (red), text (amber), template (blue)
    redacted: bool
    kind: str
    rule: str
    source: str
    frames: str
    rect: str  # image coordinates, for the table
    svg: tuple[float, float, float, float]  # thumbnail coordinates: x, y, width, height

    @property
    def tooltip(self) -> str:
        action = "redacted" if self.redacted else "kept"
        return f"#{self.number} {self.colour}: {self.kind} ({self.rule}), {action}"


@dataclass(frozen=True)
class ItemView:
    """One image card: its label, outcome, thumbnails and boxes."""

    label: str
    status: str
    mode: str
    reason: str | None
    risk: tuple[str, ...]
    frames: int
    frames_examined: str
    before: Thumb
    after: Thumb | None
    boxes: tuple[BoxView, ...]


@dataclass(frozen=True)
class Summary:
    """The counts at the top of the report; every instance is in exactly one status row."""

    rows: tuple[tuple[str, int], ...]
    reasons: tuple[tuple[str, int], ...]
    regions: tuple[tuple[str, int], ...]


def item_view(item: ReportItem) -> ItemView:
    """The template's view of ``item``: thumbnails made, boxes scaled and classified."""
    from dicomcloak.pixels.report.thumbs import thumbnail

    before = thumbnail(item.before)
    after = None if item.after is None else thumbnail(item.after)
    result = item.result
    boxes = tuple(_box(number, region, before) for number, region in enumerate(item.regions, 1))
    return ItemView(
        item.label, str(result.status), str(result.mode), result.reason, result.risk, result.frames,
        frame_list(result.frames_examined), before, after, boxes,
    )


def colour(region: Region) -> str:
    """Template regions blue, PHI red, other text amber (the legend in the report says the same)."""
    if region.box.source.startswith("template"):
        return "template"
    return "phi" if region.verdict.phi else "text"


def _box(number: int, region: Region, thumb: Thumb) -> BoxView:
    from dicomcloak.pixels.report.thumbs import scale_rect

    rect = region.box.rect
    return BoxView(
        number, colour(region), region.redacted, region.verdict.kind, region.verdict.rule,
        region.box.source, frame_list(region.frames),
        f"rows {rect.top}-{rect.bottom - 1}, cols {rect.left}-{rect.right - 1}", scale_rect(rect, thumb),
    )


def frame_list(frames: Iterable[int]) -> str:
    """Frame indexes (0-based) as ranges: ``0-29`` or ``0, 7, 14-15``; empty when none."""
    runs: list[list[int]] = []
    for frame in sorted(set(frames)):
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


_STATUS_ROWS = (
    (PixelStatus.CLEANED, "cleaned (Burned In Annotation NO)"),
    (PixelStatus.NO_TEXT, "examined, no text to redact"),
    (PixelStatus.QUARANTINED, "quarantined"),
    (PixelStatus.NOT_EXAMINED, "pixels not examined"),
)

_COLOUR_ROWS = (("phi", "PHI text"), ("text", "other text"), ("template", "device template"))


def summarise(items: Sequence[ReportItem], counted: Sequence[PixelResult]) -> Summary:
    """Count every instance by status (shown or only counted), quarantine reasons, and regions by colour."""
    results = [item.result for item in items] + list(counted)
    statuses = Counter(result.status for result in results)
    examined = len(results) - statuses[PixelStatus.NOT_EXAMINED]
    rows: tuple[tuple[str, int], ...] = (("instances", len(results)), ("images examined", examined))
    rows += tuple((title, statuses[status]) for status, title in _STATUS_ROWS)
    reasons = Counter(r.reason or "unspecified" for r in results if r.status is PixelStatus.QUARANTINED)
    every = [region for item in items for region in item.regions]
    every += [region for result in counted for region in result.regions]
    colours = Counter(colour(region) for region in every)
    regions = tuple((title, colours[name]) for name, title in _COLOUR_ROWS)
    regions += (("redacted", sum(region.redacted for region in every)),)
    return Summary(rows, tuple(sorted(reasons.items())), regions)


def summarise_counts(
    statuses: Mapping[str, int], reasons: Mapping[str, int], views: Sequence[ItemView]
) -> Summary:
    """The summary of a batch run, whose workers send counts by status and a capped number of cards.

    ``statuses`` counts instances by :class:`PixelStatus` value, ``reasons`` the
    stage's quarantine reasons; regions are counted on the cards shown only.
    """
    total = sum(statuses.values())
    examined = total - statuses.get(PixelStatus.NOT_EXAMINED.value, 0)
    rows: tuple[tuple[str, int], ...] = (("instances", total), ("images examined", examined))
    rows += tuple((title, statuses.get(status.value, 0)) for status, title in _STATUS_ROWS)
    boxes = [box for view in views for box in view.boxes]
    colours = Counter(box.colour for box in boxes)
    regions = tuple((f"{title} (on the images shown)", colours[name]) for name, title in _COLOUR_ROWS)
    regions += (("redacted (on the images shown)", sum(box.redacted for box in boxes)),)
    return Summary(rows, tuple(sorted(reasons.items())), regions)
