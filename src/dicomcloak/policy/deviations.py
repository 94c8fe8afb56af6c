"""Where a Policy departs from the Basic Profile with its options: the deviations a site chose.

The reference ("the profile") is the same Policy without its site choices:
Table E.1-1 with the options in force and, unless ``strict_table``, the
beyond-table list (:mod:`dicomcloak.standard.beyond`). A **deviation** is an
attribute, or a group of attributes, that the site's ``[tags]``, ``[private]``
and ``[vr]`` overrides or ``unknown_public`` give another action. It
**weakens** when its action keeps more of the original value than the
profile's: K keeps it, C keeps a cleaned or shifted form, the others (X, Z, D,
U) keep nothing of it. Changes to the safe-private list are not deviations:
PS3.15 E.3.10 leaves that list to the site.

Pure and computed once per Policy (``Policy.deviations``): ``policy explain
--deviations``, the warning at the start of ``deid``, ``report.json`` and the
de-identification markers (PS3.15 E.1.1) all read the same list.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydicom.datadict import dictionary_VR, keyword_for_tag

from dicomcloak.policy.model import Policy
from dicomcloak.standard.beyond import beyond_rows
from dicomcloak.standard.table import Action, Option, table_rows

__all__ = ["UNKNOWN_PUBLIC_SOURCE", "Deviation", "deviations", "profile_of", "retention"]

#: Sources of deviations that are not per-tag overrides.
UNKNOWN_PUBLIC_SOURCE = "policy:unknown_public"
_OTHER_PUBLIC = 0x0018FFF0  # a public tag the data dictionary does not know (as in explain)
_SAMPLE_PRIVATE = (0x00091000, "DICOMCLOAK SAMPLE")  # a private element on no safe list


@dataclass(frozen=True, slots=True)
class Deviation:
    """One attribute (or group of attributes) the policy treats otherwise than the profile.

    ``tag`` is ``(gggg,eeee)``, ``(gggg,xxee)`` for a private element, or a
    description of a group (``(gggg,eeee) VR PN``); ``keyword`` names it (the
    private creator for private elements); ``vr`` is its dictionary VR when
    known. Never a value.
    """

    tag: str
    keyword: str
    profile_action: str
    action: str
    source: str
    weakens: bool
    vr: str = ""

    def to_dict(self) -> dict[str, str | bool]:
        """JSON form (``report.json``, ``policy explain --deviations --json``)."""
        return {
            "tag": self.tag,
            "keyword": self.keyword,
            "profile_action": self.profile_action,
            "action": self.action,
            "source": self.source,
            "weakens": self.weakens,
        }


_KEEPS, _CLEANS, _NOTHING = 2, 1, 0
_REMOVES_SEQUENCE = frozenset({Action.X, Action.Z})


def retention(action: Action, vr: str, policy: Policy) -> tuple[int, int]:
    """How much of an original value ``action`` keeps: (least, most) over a combined action's choices.

    2 keeps it, 1 keeps a cleaned or shifted form, 0 keeps nothing. A kept
    sequence (anything but X or Z) has its items processed by their own
    rules, so it counts as kept; K or C on a UID still replaces instance UIDs
    unless Retain UIDs is in force (docs/deidentification.md).
    """
    choices = _choices(action, policy)
    levels = [_level(choice, vr, policy) for choice in choices]
    return min(levels), max(levels)


def _choices(action: Action, policy: Policy) -> tuple[Action, ...]:
    if action is Action.XZU:
        return (Action.K,) if policy.keep_reference_sequences else (Action.X, Action.Z)
    if action.is_combined:
        return tuple(Action(part) for part in action.value.split("/"))
    return (action,)


def _level(action: Action, vr: str, policy: Policy) -> int:
    if vr == "SQ":
        return _NOTHING if action in _REMOVES_SEQUENCE else _KEEPS
    if vr == "UI" and Option.RETAIN_UIDS not in policy.options:
        return _NOTHING
    return {Action.K: _KEEPS, Action.C: _CLEANS}.get(action, _NOTHING)


def _weakens(profile: Action, used: Action, vr: str, policy: Policy) -> bool:
    return retention(used, vr, policy)[1] > retention(profile, vr, policy)[0]


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _vr_of(tag: int) -> str:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return ""


def profile_of(policy: Policy) -> Policy:
    """The reference policy: the same options, safe list and strictness, without the site's choices."""
    return Policy(
        options=policy.options,
        safe_private=policy.safe_private,
        keep_reference_sequences=policy.keep_reference_sequences,
        sanitize=policy.sanitize,
        strict_table=policy.strict_table,
    )


def _deviation(
    tag: str, keyword: str, profile: Action, used: Action, source: str, vr: str, policy: Policy
) -> Deviation:
    weakens = _weakens(profile, used, vr, policy)
    return Deviation(tag, keyword, profile.value, used.value, source, weakens, vr)


def _tag_deviations(policy: Policy, profile: Policy) -> Iterator[Deviation]:
    for tag, action in sorted(policy.overrides.tags.items()):
        base = profile.rule(tag).action
        if base is not action:
            vr = _vr_of(tag)
            yield _deviation(_tag_text(tag), keyword_for_tag(tag), base, action, "site:tag", vr, policy)


def _private_deviations(policy: Policy, profile: Policy) -> Iterator[Deviation]:
    for (group, creator, element), action in sorted(policy.overrides.private.items()):
        base = profile.rule(group << 16 | 0x1000 | element, None, creator).action
        if base is not action:
            text = f"({group:04X},xx{element:02X})"
            yield _deviation(text, creator, base, action, "site:private", "", policy)


def _listed_tags(policy: Policy) -> list[tuple[int, str]]:
    """(representative tag, text) of every row the profile lists: the table's and, unless strict, ours."""
    listed = [(row.tag, row.tag_text) for row in ([] if policy.strict_table else beyond_rows())]
    for row in table_rows():
        if row.tag.startswith("(gggg"):
            continue  # the private row: judged with the private elements below
        text = row.tag.replace("xx", "00").upper()
        listed.append((int(text[1:5], 16) << 16 | int(text[6:10], 16), row.tag))
    return listed


def _vr_matches(tag: int, vr: str) -> bool:
    return vr in _vr_of(tag).split(" or ")


def _vr_deviations(policy: Policy, profile: Policy) -> Iterator[Deviation]:
    for vr, action in sorted(policy.overrides.vrs.items()):
        for tag, text in _listed_tags(policy):
            base = profile.rule(tag).action
            if tag not in policy.overrides.tags and _vr_matches(tag, vr) and base is not action:
                yield _deviation(text, keyword_for_tag(tag), base, action, "site:vr", vr, policy)
        yield from _vr_groups(vr, action, policy, profile)


def _vr_groups(vr: str, action: Action, policy: Policy, profile: Policy) -> Iterator[Deviation]:
    """The attributes of that VR the profile does not list, as two groups (never enumerated)."""
    if action is not Action.K:  # the profile keeps public attributes it does not list
        name = f"public attributes of VR {vr} the table does not list"
        yield _deviation(f"(gggg,eeee) VR {vr}", name, Action.K, action, "site:vr", vr, policy)
    base = profile.rule(_SAMPLE_PRIVATE[0], None, _SAMPLE_PRIVATE[1]).action  # removed (X)
    if base is not action:
        name = f"private elements and unknown public attributes of VR {vr}"
        yield _deviation(f"(gggg,xxxx) VR {vr}", name, base, action, "site:vr", vr, policy)


def _unknown_public(policy: Policy, profile: Policy) -> Iterator[Deviation]:
    base = profile.rule(_OTHER_PUBLIC).action
    if policy.unknown_public is not base:
        name = "public attributes not in the data dictionary"
        yield _deviation("(gggg,eeee)", name, base, policy.unknown_public, UNKNOWN_PUBLIC_SOURCE, "", policy)


def deviations(policy: Policy) -> tuple[Deviation, ...]:
    """Every deviation of ``policy`` from the profile with its options (+ beyond-table list unless strict).

    In order: per-tag overrides, per-private-element overrides, per-VR
    overrides (the listed attributes of that VR one by one, the others as
    groups), then ``unknown_public``. Empty for a policy without site choices.
    """
    site = policy.overrides
    if not (site.tags or site.private or site.vrs) and policy.unknown_public is Action.X:
        return ()
    profile = profile_of(policy)
    return (
        *_tag_deviations(policy, profile),
        *_private_deviations(policy, profile),
        *_vr_deviations(policy, profile),
        *_unknown_public(policy, profile),
    )
