"""The frozen de-identification Policy: Table E.1-1 + options + site overrides -> one Rule per tag.

Precedence (most specific first), documented in docs/policy.md:

1. site override by tag (or keyword, resolved to its tag when the file is loaded);
2. site override by private creator + element (private tags only);
3. site override by VR;
4. Table E.1-1: the Basic Profile action, replaced by an option's action when that
   option is in force (when two options in force disagree, K wins over C: a
   "retain" option is the user's explicit wish to keep);
5. the packaged beyond-table list (identifying attributes the table omits,
   :mod:`dicomcloak.standard.beyond`), with its option columns read the same
   way; skipped when ``strict_table`` follows the table exactly;
6. rules for attributes the table does not list (PS3.15 E.1.1): private
   elements removed unless Retain Safe Private keeps a safe-listed one; curves
   (50xx) removed; group lengths removed (they are recomputed on write);
   public attributes known to the data dictionary kept; unknown public
   attributes removed (configurable with ``unknown_public``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pydicom.datadict import dictionary_VR, keyword_for_tag

from dicomcloak.errors import ConfigError
from dicomcloak.policy.cdr import SanitizeSettings
from dicomcloak.standard.beyond import BeyondRow, beyond_rows
from dicomcloak.standard.safe_private import normalize_creator as normalize_creator  # re-exported
from dicomcloak.standard.safe_private import safe_private_entries
from dicomcloak.standard.table import Action, Option, TableRow, table_rows

if TYPE_CHECKING:
    from dicomcloak.policy.deviations import Deviation

__all__ = ["BEYOND_TABLE", "Policy", "PrivateKey", "Rule", "SiteOverrides", "default_safe_private"]

#: A private element's identity: (group, private creator, element low byte).
PrivateKey = tuple[int, str, int]

_EMPTY: Mapping[int, Action] = MappingProxyType({})

#: Rule source of the beyond-table list (``beyond-table:<option>`` when an option column decides).
BEYOND_TABLE = "beyond-table"


@dataclass(frozen=True, slots=True)
class Rule:
    """The action for one attribute and where it came from (for reports and explain)."""

    action: Action
    source: str


@dataclass(frozen=True)
class SiteOverrides:
    """Site policy overrides; they win over the table (architecture.md decision 1)."""

    tags: Mapping[int, Action] = field(default_factory=lambda: _EMPTY)
    private: Mapping[PrivateKey, Action] = field(default_factory=lambda: MappingProxyType({}))
    vrs: Mapping[str, Action] = field(default_factory=lambda: MappingProxyType({}))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle the read-only views as plain dicts (a ``mappingproxy`` does not pickle).

        A policy crosses a process boundary when pool workers are started by
        forkserver or spawn instead of fork (``dicomcloak.batch.run``).
        """
        return (_read_only_overrides, (dict(self.tags), dict(self.private), dict(self.vrs)))


def _read_only_overrides(
    tags: dict[int, Action], private: dict[PrivateKey, Action], vrs: dict[str, Action]
) -> SiteOverrides:
    return SiteOverrides(MappingProxyType(tags), MappingProxyType(private), MappingProxyType(vrs))


def default_safe_private() -> frozenset[PrivateKey]:
    """Return the packaged starting safe-private list (PS3.15 Table E.3.10-1 style)."""
    return safe_private_entries()


_UNSET = object()
_CURVE = 0x5000
_OVERLAY = 0x6000


def _is_repeating(group: int, base: int) -> bool:
    # PS3.5 7.6: repeating groups 50xx/60xx use even xx from 00 to 1E.
    return group & 0xFF00 == base and group & 0x00FF <= 0x1E and group % 2 == 0


@dataclass(frozen=True)
class Policy:
    """Everything that decides what happens to each attribute; immutable, picklable.

    Parameters
    ----------
    options:
        The PS3.15 options in force.
    overrides:
        Site overrides (they win over the table).
    safe_private:
        Private elements that Retain Safe Private keeps.
    unknown_public:
        Action for public attributes unknown to the data dictionary.
    keep_reference_sequences:
        Resolve X/Z/U* by keeping reference sequences with their UIDs replaced
        (referential integrity, the default) instead of X/Z.
    sanitize:
        The sanitize (CDR) stage's limits and content choices.
    strict_table:
        Follow Table E.1-1 exactly: the beyond-table list is not applied and
        its attributes fall back to the rules for attributes the table does
        not list (``--strict-table``, ``[policy] strict_table``).
    """

    options: frozenset[Option] = frozenset()
    overrides: SiteOverrides = field(default_factory=SiteOverrides)
    safe_private: frozenset[PrivateKey] = field(default_factory=default_safe_private)
    unknown_public: Action = Action.X
    keep_reference_sequences: bool = True
    sanitize: SanitizeSettings = field(default_factory=SanitizeSettings)
    strict_table: bool = False

    def __post_init__(self) -> None:
        if {Option.RETAIN_LONG_FULL_DATES, Option.RETAIN_LONG_MODIFIED_DATES} <= self.options:
            raise ConfigError(
                "the two Retain Longitudinal Temporal Information options exclude each other",
                reference="options-conflict",
                hint="choose retain-long-full-dates or retain-long-modified-dates, not both",
            )

    def _tabled_rule(self, tag: int) -> Rule | None:
        """The rule of ``tag``'s concrete row in Table E.1-1 or, unless strict, in the beyond-table list.

        Made when a tag is first met (:meth:`rule` memoizes it), not for all of
        the table's ~650 rows at start-up: a run meets a hundred or so tags.
        """
        row = _rows_by_tag(self.strict_table).get(tag)
        if row is None:
            return None
        return self.table_rule(row) if isinstance(row, TableRow) else self.beyond_rule(row)

    @cached_property
    def _repeating(self) -> Mapping[str, Rule]:
        return {row.tag: self.table_rule(row) for row in table_rows() if "xx" in row.tag}

    def table_rule(self, row: TableRow) -> Rule:
        """The action the table gives ``row`` under this policy's options."""
        chosen = self._option_action(row.options)
        if chosen is None:
            return Rule(row.basic, "table:basic")
        return Rule(chosen[1], f"table:{chosen[0].value}")

    def beyond_rule(self, row: BeyondRow) -> Rule:
        """The action the beyond-table list gives ``row`` under this policy's options (strictness aside)."""
        chosen = self._option_action(row.options)
        if chosen is None:
            return Rule(row.basic, BEYOND_TABLE)
        return Rule(chosen[1], f"{BEYOND_TABLE}:{chosen[0].value}")

    def _option_action(self, columns: Mapping[Option, Action]) -> tuple[Option, Action] | None:
        """The option in force that decides a row: K, then C, then the first in table order."""
        chosen = [(opt, columns[opt]) for opt in self._options_in_order if opt in columns]
        for wanted in (Action.K, Action.C):
            for opt, action in chosen:
                if action is wanted:
                    return opt, action
        return chosen[0] if chosen else None

    @cached_property
    def _options_in_order(self) -> tuple[Option, ...]:
        """The options in force, in table order (each table row asks; iterating the Enum is slow)."""
        return tuple(opt for opt in Option if opt in self.options)

    @cached_property
    def deviations(self) -> tuple[Deviation, ...]:
        """Where this policy departs from the profile, its options and (unless strict) the beyond-table list.

        Computed once per Policy (:func:`dicomcloak.policy.deviations.deviations`),
        never per instance.
        """
        from dicomcloak.policy.deviations import deviations  # here: that module imports this one

        return deviations(self)

    @cached_property
    def weakening(self) -> tuple[Deviation, ...]:
        """The deviations that keep more of an original value than the profile would (markers use them)."""
        return tuple(deviation for deviation in self.deviations if deviation.weakens)

    @cached_property
    def _memo(self) -> dict[tuple[int, str | None, str | None], Rule]:
        return {}

    def rule(self, tag: int, vr: str | None = None, creator: str | None = None) -> Rule:
        """Return the rule for one element (``creator`` only for private elements); memoized."""
        key = (tag, vr, creator)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._rule(tag, vr, creator)
        return found

    @cached_property
    def plain_keeps(self) -> dict[int, str | None]:
        """Memo of :meth:`plain_keep_vr` (filled as tags are met); the engine reads it directly."""
        return {}

    def plain_keep_vr(self, tag: int) -> str | None:
        """The dictionary VR of a public element kept as it is whatever its value, else None.

        This is the engine's fast path: such an element's bytes are copied
        without being decoded. UI (UIDs may be replaced), SQ (items are walked),
        multi-VR and unknown tags never qualify, nor does any tag when site
        overrides by VR exist (the rule may then depend on the element's VR).
        """
        found = self.plain_keeps.get(tag, _UNSET)
        if found is _UNSET:
            found = self._plain_vr(tag)
            self.plain_keeps[tag] = found
        return found  # type: ignore[return-value]

    @cached_property
    def plain_removes(self) -> dict[int, str | None]:
        """Memo of :meth:`plain_remove_source` (filled as tags are met); the engine reads it directly."""
        return {}

    def plain_remove_source(self, tag: int) -> str | None:
        """The rule source of a public element removed (X) whatever its VR and value, else None.

        The engine's other fast path: such an element is neither decoded nor
        given an :class:`~dicomcloak.engine.actions.ElementContext`; its change is
        recorded as :meth:`rule` would give it. None for private tags, and for
        every tag when site overrides by VR exist (as :meth:`plain_keep_vr`).
        """
        found = self.plain_removes.get(tag, _UNSET)
        if found is _UNSET:
            rule = None if (tag >> 16) % 2 or self.overrides.vrs else self._rule(tag, None, None)
            found = rule.source if rule is not None and rule.action is Action.X else None
            self.plain_removes[tag] = found
        return found  # type: ignore[return-value]

    def _plain_vr(self, tag: int) -> str | None:
        if (tag >> 16) % 2 or self.overrides.vrs or self._rule(tag, None, None).action is not Action.K:
            return None
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            return None
        return None if vr in ("UI", "SQ") or " " in vr else str(vr)

    def _rule(self, tag: int, vr: str | None, creator: str | None) -> Rule:
        site = self.overrides.tags.get(tag)
        if site is not None:
            return Rule(site, "site:tag")
        group = tag >> 16
        if group % 2:
            return self._private_rule(tag, vr, creator)
        if vr is not None and vr in self.overrides.vrs:
            return Rule(self.overrides.vrs[vr], "site:vr")
        found = self._tabled_rule(tag)
        if found is not None:
            return found
        return self._untabled_rule(tag)

    def _private_rule(self, tag: int, vr: str | None, creator: str | None) -> Rule:
        element = tag & 0xFFFF
        if element < 0x0100:
            # PS3.5 7.8.1: private creator data elements travel with their block.
            return Rule(Action.X, "default:private-creator")
        group = tag >> 16
        key = (group, normalize_creator(creator or ""), element & 0xFF)
        if creator is not None and key in self.overrides.private:
            return Rule(self.overrides.private[key], "site:private")
        if vr is not None and vr in self.overrides.vrs:
            return Rule(self.overrides.vrs[vr], "site:vr")
        if Option.RETAIN_SAFE_PRIVATE in self.options and creator is not None and key in self.safe_private:
            return Rule(Action.C, "table:retain-safe-private")
        return Rule(_private_row().basic, "table:basic")

    def _untabled_rule(self, tag: int) -> Rule:
        group, element = tag >> 16, tag & 0xFFFF
        if _is_repeating(group, _CURVE):
            return self._repeating["(50xx,xxxx)"]
        if _is_repeating(group, _OVERLAY) and element in (0x3000, 0x4000):
            return self._repeating[f"(60xx,{element:04x})"]
        if element == 0x0000:
            return Rule(Action.X, "default:group-length")
        if keyword_for_tag(tag):
            return Rule(Action.K, "default:dictionary")
        return Rule(self.unknown_public, "default:unknown-public")

    def with_options(self, options: Iterable[Option]) -> Policy:
        """Return a copy with ``options`` in force instead of this policy's."""
        return Policy(
            frozenset(options), self.overrides, self.safe_private,
            self.unknown_public, self.keep_reference_sequences, self.sanitize, self.strict_table,
        )


@cache
def _rows_by_tag(strict: bool) -> Mapping[int, TableRow | BeyondRow]:
    """The concrete rows by tag: Table E.1-1's win over the beyond-table list's, which strict omits."""
    rows: dict[int, TableRow | BeyondRow] = {}
    if not strict:
        rows.update((row.tag, row) for row in beyond_rows())
    for row in table_rows():
        tag = _concrete_tag(row.tag)
        if tag is not None:
            rows[tag] = row
    return rows


@cache
def _private_row() -> TableRow:
    return next(row for row in table_rows() if row.tag.startswith("(gggg,eeee)"))

_TAG_RE = re.compile(r"^\(([0-9A-F]{4}),([0-9A-F]{4})\)$")


def _concrete_tag(text: str) -> int | None:
    match = _TAG_RE.match(text)
    if match is None:
        return None
    return int(match.group(1), 16) << 16 | int(match.group(2), 16)
