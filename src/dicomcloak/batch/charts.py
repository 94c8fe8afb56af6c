"""Horizontal bar charts for the run report, laid out here and drawn as inline SVG by its template.

The run report must open offline, print, and run no script (docs/reports.md):
so a chart is computed server-side into plain numbers (each bar's label,
value, position and length) and the template writes one ``<rect>`` per bar.
Bars share one scale per chart, the longest filling the plot; a value of zero
gets no bar but keeps its row, so the chart and its table list the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["BAR_HEIGHT", "LABEL_WIDTH", "PLOT_WIDTH", "Bar", "BarChart", "bar_chart"]

#: Geometry in SVG user units (pixels at 100 %).
LABEL_WIDTH = 200
PLOT_WIDTH = 360
VALUE_WIDTH = 80
BAR_HEIGHT = 18
_GAP = 6


@dataclass(frozen=True)
class Bar:
    """One bar: its label and value, its top edge and its length in the plot."""

    label: str
    value: int
    y: int
    length: float
    css: str = ""  # an extra CSS class (colour by outcome)

    @property
    def text_y(self) -> int:
        """The baseline of the bar's label and value text."""
        return self.y + BAR_HEIGHT - 5


@dataclass(frozen=True)
class BarChart:
    """A titled chart of bars, with its overall size; ``title`` is the SVG's accessible name."""

    title: str
    bars: tuple[Bar, ...]
    width: int
    height: int
    label_width: int = LABEL_WIDTH

    @property
    def value_x(self) -> float:
        """Where the value text of each bar starts (after the longest bar)."""
        return self.label_width + PLOT_WIDTH + 6


def bar_chart(title: str, rows: Iterable[tuple[str, int, str]]) -> BarChart:
    """Lay out ``rows`` (label, value, CSS class or "") as bars on one scale, in the order given."""
    listed = [(label, int(value), css) for label, value, css in rows]
    largest = max((value for _, value, _ in listed), default=0)
    bars = tuple(
        Bar(label, value, _GAP + number * (BAR_HEIGHT + _GAP),
            round(PLOT_WIDTH * value / largest, 1) if largest else 0.0, css)
        for number, (label, value, css) in enumerate(listed)
    )
    height = _GAP + len(bars) * (BAR_HEIGHT + _GAP)
    return BarChart(title, bars, LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH, height)
