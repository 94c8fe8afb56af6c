"""Identifying attributes that PS3.15 Table E.1-1 does not list, packaged as reasoned data.

PS3.15 E.1.1 lets a de-identifier protect more than the table ("at the
discretion of the de-identifier, Attributes may be added to the Dataset to be
protected"). ``data/beyond-table.csv`` lists the public attributes that can
carry identity although the table (2025c + 2026c rows) omits them, each with
the action the Basic Profile would give it, the option columns that change
that action (as the table's own columns do) and a one-line reason. Its header
comments record the edition it was checked against, how it was made and when;
docs/policy.md ("Beyond the table") says which borderline attributes were left
out and why. The Policy applies these rows with source ``beyond-table`` unless
``strict_table`` asks for the table exactly (architecture.md decision 10).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

from dicomcloak.standard.table import Action, Option

__all__ = ["BEYOND_TABLE_FILE", "BeyondRow", "beyond_header", "beyond_rows"]

#: The packaged data file, in ``dicomcloak/standard/data``.
BEYOND_TABLE_FILE = "beyond-table.csv"


@dataclass(frozen=True, slots=True)
class BeyondRow:
    """One attribute the table omits: its action, the options that change it, and why it is listed.

    ``options`` holds only the options whose column is filled, as
    :class:`~dicomcloak.standard.table.TableRow` does.
    """

    tag: int
    keyword: str
    name: str
    vr: str
    retired: bool
    basic: Action
    options: Mapping[Option, Action]
    reason: str

    @property
    def tag_text(self) -> str:
        """The tag as the table writes it, ``(gggg,eeee)``."""
        return f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"


def _text() -> str:
    return resources.files("dicomcloak.standard").joinpath("data", BEYOND_TABLE_FILE).read_text("utf-8")


def beyond_header() -> tuple[str, ...]:
    """The file's header comment lines (edition, how it was made, date), without the leading ``#``."""
    lines = _text().splitlines()
    return tuple(line[1:].strip() for line in lines if line.startswith("#"))


def _parse(raw: Mapping[str, str]) -> BeyondRow:
    options = {opt: Action(raw[opt.column]) for opt in Option if raw[opt.column]}
    return BeyondRow(
        tag=int(raw["tag"][1:5], 16) << 16 | int(raw["tag"][6:10], 16),
        keyword=raw["keyword"],
        name=raw["attribute_name"],
        vr=raw["vr"],
        retired=raw["retired"] == "Y",
        basic=Action(raw["basic_profile"]),
        options=options,
        reason=raw["reason"],
    )


@cache
def beyond_rows() -> tuple[BeyondRow, ...]:
    """Return every row of ``beyond-table.csv``, in tag order."""
    lines = [line for line in _text().splitlines() if not line.startswith("#")]
    return tuple(_parse(raw) for raw in csv.DictReader(io.StringIO("\n".join(lines))))
