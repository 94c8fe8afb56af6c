"""What a Policy does to each attribute and why: the data behind ``dicomcloak policy explain``.

Every row is computed by asking the Policy itself (:meth:`Policy.rule`), so
the explanation cannot drift from what the engine applies (STYLE.md, after
dicognito: handlers describe themselves).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pydicom.datadict import keyword_for_tag

from dicomcloak.policy.deviations import Deviation
from dicomcloak.policy.model import Policy, PrivateKey, Rule, SiteOverrides
from dicomcloak.standard.beyond import BeyondRow, beyond_rows
from dicomcloak.standard.safe_private import safe_private_rows
from dicomcloak.standard.table import EDITION, Action, Option, TableRow, table_rows

__all__ = [
    "ExplainRow",
    "explain",
    "render_deviations_json",
    "render_deviations_text",
    "render_json",
    "render_text",
]


@dataclass(frozen=True, slots=True)
class ExplainRow:
    """One line of the explanation: which attributes, what action, which rule decided it."""

    tag: str
    name: str
    action: str
    source: str
    note: str = ""


_COMBINED_NOTE = "per the attribute's Type in the IOD (docs/policy.md)"
_REFERENCE_NOTE = "U: keep, replace UIDs inside (keep_reference_sequences)"
# Representative elements for the rules of attributes the table does not list.
_UNLISTED_PRIVATE = (0x00091000, "")  # no creator can be empty, so never listed
_PRIVATE_CREATOR = 0x00090010
_GROUP_LENGTH = 0x00080000
_DICTIONARY = 0x00280010  # Rows: in the data dictionary, not in Table E.1-1
_UNKNOWN_PUBLIC = 0x0018FFF0  # not in the data dictionary


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _private_text(key: PrivateKey) -> str:
    return f"({key[0]:04X},xx{key[2]:02X})"


def _note(action: Action, policy: Policy) -> str:
    if action is Action.XZU and policy.keep_reference_sequences:
        return _REFERENCE_NOTE
    return _COMBINED_NOTE if action.is_combined else ""


def _row(tag: str, name: str, rule: Rule, policy: Policy, note: str = "") -> ExplainRow:
    return ExplainRow(tag, name, rule.action.value, rule.source, note or _note(rule.action, policy))


def _concrete(text: str) -> int | None:
    if "x" in text or not text.startswith("(") or len(text) != 11:
        return None
    return int(text[1:5], 16) << 16 | int(text[6:10], 16)


def _table_row(row: TableRow, policy: Policy) -> ExplainRow:
    name = row.keyword or row.name
    tag = _concrete(row.tag)
    if tag is not None:
        return _row(row.tag, name, policy.rule(tag), policy)
    if row.tag.startswith("(gggg"):
        rule = policy.rule(_UNLISTED_PRIVATE[0], None, _UNLISTED_PRIVATE[1])
        note = "not on the safe list" if Option.RETAIN_SAFE_PRIVATE in policy.options else ""
        return _row(row.tag, name, rule, policy, note)
    return _row(row.tag, name, policy.table_rule(row), policy)


_STRICT_NOTE = "listed beyond the table, not applied: strict table"


def _beyond_row(row: BeyondRow, policy: Policy) -> ExplainRow:
    """A beyond-table row: its rule (the dictionary default when strict) and its reason."""
    note = _STRICT_NOTE if policy.strict_table else row.reason
    return _row(row.tag_text, row.keyword, policy.rule(row.tag), policy, note)


def _site_rows(policy: Policy, tabled: set[int]) -> Iterator[ExplainRow]:
    for tag in sorted(set(policy.overrides.tags) - tabled):
        yield _row(_tag_text(tag), keyword_for_tag(tag) or "", policy.rule(tag), policy)
    for key in sorted(policy.overrides.private):
        tag = key[0] << 16 | 0x1000 | key[2]
        yield _row(_private_text(key), key[1], policy.rule(tag, None, key[1]), policy)
    for vr, action in sorted(policy.overrides.vrs.items()):
        yield _row(f"VR {vr}", f"any element with VR {vr}", Rule(action, "site:vr"), policy)


def _safe_rows(policy: Policy) -> Iterator[ExplainRow]:
    if Option.RETAIN_SAFE_PRIVATE not in policy.options:
        return
    names = {entry.key: entry.name for entry in safe_private_rows()}
    for key in sorted(policy.safe_private):
        tag = key[0] << 16 | 0x1000 | key[2]
        name = f"{key[1]}: {names[key]}" if key in names else key[1]
        yield _row(_private_text(key), name, policy.rule(tag, None, key[1]), policy, "safe list")


def _default_rows(policy: Policy) -> Iterator[ExplainRow]:
    plain = dataclasses.replace(policy, overrides=SiteOverrides())  # the defaults, without site rules
    yield _row("(gggg,0010-00FF)", "Private Creator", plain.rule(_PRIVATE_CREATOR), policy, "odd gggg")
    yield _row("(gggg,0000)", "Group Length", plain.rule(_GROUP_LENGTH), policy, "recomputed on write")
    yield _row(
        "(gggg,eeee)", "public, in the data dictionary, not in the table", plain.rule(_DICTIONARY), policy
    )
    yield _row("(gggg,eeee)", "public, not in the data dictionary", plain.rule(_UNKNOWN_PUBLIC), policy)


def explain(policy: Policy) -> list[ExplainRow]:
    """Return the explanation of ``policy``.

    In order: every row of Table E.1-1 (concrete, repeating-group and private
    rows), every row of the beyond-table list (source ``beyond-table``, or
    the dictionary default under ``strict_table``), site overrides for tags
    neither lists, private and VR overrides, the safe-listed private elements
    when Retain Safe Private is in force, then the rules for attributes the
    table does not list.
    """
    rows = [_table_row(row, policy) for row in table_rows()]
    rows.extend(_beyond_row(row, policy) for row in beyond_rows())
    tabled = {tag for row in table_rows() if (tag := _concrete(row.tag)) is not None}
    tabled.update(row.tag for row in beyond_rows())
    rows.extend(_site_rows(policy, tabled))
    rows.extend(_safe_rows(policy))
    rows.extend(_default_rows(policy))
    return rows


_HEADER = ExplainRow("TAG", "NAME", "ACTION", "SOURCE", "NOTE")
_NAME_WIDTH = 60


def _clip(name: str) -> str:
    return name if len(name) <= _NAME_WIDTH else name[: _NAME_WIDTH - 1] + "…"


def render_text(rows: Sequence[ExplainRow]) -> str:
    """Render rows as an aligned plain-text table with a header line."""
    lines = [_HEADER, *rows]
    fields = [(row.tag, _clip(row.name), row.action, row.source, row.note) for row in lines]
    widths = [max(len(cells[i]) for cells in fields) for i in range(4)]
    out = []
    for cells in fields:
        parts = [cell.ljust(width) for cell, width in zip(cells[:4], widths, strict=True)]
        out.append("  ".join([*parts, cells[4]]).rstrip())
    return "\n".join(out) + "\n"


def render_json(rows: Sequence[ExplainRow]) -> str:
    """Render rows as JSON: ``{"edition": ..., "rows": [{"tag", "name", "action", "source", "note"}]}``."""
    document = {"edition": EDITION, "rows": [dataclasses.asdict(row) for row in rows]}
    return json.dumps(document, indent=2) + "\n"


_DEVIATION_HEADER = ("TAG", "KEYWORD", "PROFILE", "ACTION", "SOURCE", "WEAKENS")


def render_deviations_text(deviations: Sequence[Deviation]) -> str:
    """Render deviations as an aligned table (``policy explain --deviations``)."""
    if not deviations:
        return "no deviations: the policy applies the profile with its options\n"
    cells = [_DEVIATION_HEADER] + [
        (d.tag, _clip(d.keyword), d.profile_action, d.action, d.source, "yes" if d.weakens else "no")
        for d in deviations
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(_DEVIATION_HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def render_deviations_json(deviations: Sequence[Deviation]) -> str:
    """Render deviations as JSON: ``{"edition": ..., "deviations": [{"tag", "keyword", ...}]}``."""
    document = {"edition": EDITION, "deviations": [deviation.to_dict() for deviation in deviations]}
    return json.dumps(document, indent=2) + "\n"
