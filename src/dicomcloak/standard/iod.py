"""Attribute Types (PS3.3) per SOP Class, and the resolution of Table E.1-1's combined actions.

PS3.15 E.1.1: for Z/D, X/Z, X/D, X/Z/D and X/Z/U* the de-identifier picks the
first action unless conformance with the IOD (the attribute's Type 1/2/3)
requires a later one. The Types come from ``data/iod_types.json``, generated
from highdicom's PS3.3 tables by :mod:`dicomcloak.standard.generate`; it holds
only the keywords that have a combined action, once per module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from dicomcloak.standard.table import Action

__all__ = ["TYPES", "attribute_type", "resolve_combined"]

#: Attribute Types from strictest to loosest; the strictest wins when an
#: attribute appears in several modules of one IOD.
TYPES = ("1", "1C", "2", "2C", "3")
_RANK = {kind: rank for rank, kind in enumerate(TYPES)}


@dataclass(frozen=True, slots=True)
class _IodData:
    keywords: frozenset[str]
    sop_classes: Mapping[str, str]
    iods: Mapping[str, tuple[str, ...]]
    incomplete: frozenset[str]
    modules: Mapping[str, Mapping[str, str | None]]


@cache
def _data() -> _IodData:
    text = resources.files("dicomcloak.standard").joinpath("data", "iod_types.json").read_text("utf-8")
    raw: dict[str, Any] = json.loads(text)
    return _IodData(
        keywords=frozenset(raw["keywords"]),
        sop_classes=raw["sop_classes"],
        iods={iod: tuple(modules) for iod, modules in raw["iods"].items()},
        incomplete=frozenset(raw["incomplete_iods"]),
        modules=raw["modules"],
    )


def _stricter(old: str | None, new: str | None) -> str | None:
    # A known Type beats an unknown one; between known Types the strictest wins.
    if old is None or new is None:
        return old if new is None else new
    return old if _RANK[old] <= _RANK[new] else new


@cache
def _iod_table(iod: str) -> tuple[Mapping[str, str | None], frozenset[str]]:
    """Merged ``path -> Type`` of one IOD, and the sequence paths it describes."""
    data = _data()
    types: dict[str, str | None] = {}
    for module in data.iods[iod]:
        for path, kind in data.modules[module].items():
            types[path] = _stricter(types[path], kind) if path in types else kind
    parents = {path.rsplit(".", 1)[0] for path in types if "." in path}
    expanded = {".".join(p.split(".")[:n]) for p in parents for n in range(1, p.count(".") + 2)}
    return types, frozenset(expanded)


@lru_cache(maxsize=8192)
def attribute_type(sop_class_uid: str, path: tuple[str, ...]) -> str | None:
    """Return the Type of the attribute at keyword ``path`` in the SOP Class's IOD.

    Parameters
    ----------
    sop_class_uid:
        The instance's SOP Class UID (0008,0016).
    path:
        Keywords from the top-level data set down to the attribute, e.g.
        ``("RequestAttributesSequence", "RequestedProcedureDescription")``.

    Returns
    -------
    One of ``'1', '1C', '2', '2C', '3'``. An attribute that the IOD does not
    contain at that path is reported as ``'3'`` (it may only be present as a
    Standard Extended attribute, PS3.4 B.1.2). ``None`` when that cannot be
    told: unknown SOP Class, a keyword without a combined action in Table
    E.1-1 (not in the packaged data), an enclosing sequence the IOD does not
    describe, or an IOD whose module tables are incomplete in the source.
    """
    data = _data()
    iod = data.sop_classes.get(sop_class_uid)
    if iod is None or not path or path[-1] not in data.keywords:
        return None
    types, parents = _iod_table(iod)
    key = ".".join(path)
    if key in types:
        return types[key]
    if iod in data.incomplete:
        return None
    if len(path) == 1 or ".".join(path[:-1]) in parents:
        return "3"
    return None


_CHOICES: Mapping[Action, tuple[Action, ...]] = {
    Action.ZD: (Action.Z, Action.D),
    Action.XZ: (Action.X, Action.Z),
    Action.XD: (Action.X, Action.D),
    Action.XZD: (Action.X, Action.Z, Action.D),
    Action.XZU: (Action.X, Action.Z, Action.U),
}

# What each Type allows: 1/1C need a value, 2/2C need presence, 3 may go.
_ALLOWED: Mapping[str, frozenset[Action]] = {
    "1": frozenset({Action.D, Action.U}),
    "1C": frozenset({Action.D, Action.U}),
    "2": frozenset({Action.Z, Action.D, Action.U}),
    "2C": frozenset({Action.Z, Action.D, Action.U}),
    "3": frozenset({Action.X, Action.Z, Action.D, Action.U}),
}


def resolve_combined(action: Action, attr_type: str | None) -> Action:
    """Resolve a combined action to a single one for an attribute of Type ``attr_type``.

    The first (leftmost) choice the Type allows wins (PS3.15 E.1.1): Type 1/1C
    needs a value (D; U for X/Z/U*, i.e. keep the sequence with its UIDs
    replaced), Type 2/2C needs presence (Z, or D when Z is not offered), Type 3
    may be removed (X). When no choice is allowed the last, most preserving
    one is returned (X/Z on Type 1 gives Z). An unknown Type (``None``) is
    treated as Type 1, which never keeps the value and keeps the instance
    valid: X/Z -> Z, X/D -> D, X/Z/D -> D, Z/D -> D, X/Z/U* -> U. Single
    actions are returned unchanged.
    """
    choices = _CHOICES.get(action)
    if choices is None:
        return action
    allowed = _ALLOWED.get(attr_type or "1", _ALLOWED["1"])
    return next((choice for choice in choices if choice in allowed), choices[-1])
