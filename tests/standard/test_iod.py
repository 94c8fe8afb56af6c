"""Attribute Types per IOD, checked against highdicom's raw PS3.3 tables, and combined-action resolution."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import pytest

from dicomcloak.standard.generate import combined_keywords
from dicomcloak.standard.iod import TYPES, attribute_type, resolve_combined
from dicomcloak.standard.table import Action

CT = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
MR = "1.2.840.10008.5.1.4.1.1.4"


@cache
def _raw(name: str) -> Any:
    return json.loads(resources.files("highdicom").joinpath("_standard", name).read_text("utf-8"))


def raw_types(sop_class: str, path: tuple[str, ...]) -> set[str]:
    """Every Type highdicom's raw maps give ``path`` in the SOP class's IOD (all modules)."""
    iod = _raw("sop_class_iod_map.json")[sop_class]
    found = set()
    for module in _raw("iod_module_map.json")[iod]:
        for attr in _raw("module_attribute_map.json").get(module["key"], []):
            if (*attr["path"], attr["keyword"]) == path:
                found.add(attr["type"])
    return found


def strictest(types: set[str]) -> str:
    return min(types, key=TYPES.index)


@pytest.mark.parametrize(
    ("sop_class", "path", "expected"),
    [
        (CT, ("PatientID",), "2"),
        (CT, ("InstitutionName",), "3"),
        (CT, ("AcquisitionDateTime",), "3"),
        (CT, ("ContentDate",), "2C"),
        (CT, ("OperatorsName",), "3"),
        (ENHANCED_CT, ("ContentDate",), "1"),
        (ENHANCED_CT, ("AcquisitionDateTime",), "1C"),
        (CT, ("RequestAttributesSequence", "RequestedProcedureDescription"), "3"),
    ],
)
def test_known_types_agree_with_raw_map(sop_class: str, path: tuple[str, ...], expected: str) -> None:
    raw = raw_types(sop_class, path)
    assert raw, "fixture path must exist in highdicom's tables"
    assert strictest(raw) == expected
    assert attribute_type(sop_class, path) == expected


def test_strictest_type_wins_across_modules() -> None:
    # Find an IOD path that appears with two different Types and check the merge.
    sop_classes = _raw("sop_class_iod_map.json")
    for sop_class in sorted(sop_classes):
        for keyword in sorted(combined_keywords()):
            raw = raw_types(sop_class, (keyword,)) - {"None"}
            if len(raw) > 1:
                assert attribute_type(sop_class, (keyword,)) == strictest(raw)
                return
    pytest.fail("no attribute with several Types found")


def test_every_packaged_top_level_type_matches_raw() -> None:
    for keyword in sorted(combined_keywords()):
        everything = raw_types(MR, (keyword,))
        raw = everything - {"None"}
        expected = strictest(raw) if raw else (None if everything else "3")
        assert attribute_type(MR, (keyword,)) == expected, keyword


def test_unknown_cases() -> None:
    assert attribute_type("1.2.3.4", ("PatientID",)) is None  # unknown SOP class
    assert attribute_type(CT, ("StudyDate",)) is None  # Z in the table: not packaged
    assert attribute_type(CT, ("NoSuchSequence", "InstitutionName")) is None  # parent not described
    assert attribute_type(CT, ()) is None


def test_absent_attribute_of_known_iod_is_type_3() -> None:
    assert not raw_types(CT, ("ReviewerName",))
    assert attribute_type(CT, ("ReviewerName",)) == "3"


_D, _Z, _X, _U = Action.D, Action.Z, Action.X, Action.U
RESOLUTION = {
    #            1    1C   2    2C   3    None
    Action.ZD: (_D, _D, _Z, _Z, _Z, _D),
    Action.XZ: (_Z, _Z, _Z, _Z, _X, _Z),
    Action.XD: (_D, _D, _D, _D, _X, _D),
    Action.XZD: (_D, _D, _Z, _Z, _X, _D),
    Action.XZU: (_U, _U, _Z, _Z, _X, _U),
}


@pytest.mark.parametrize("action", list(RESOLUTION))
@pytest.mark.parametrize("index", range(6))
def test_resolve_combined_table(action: Action, index: int) -> None:
    attr_type = (*TYPES, None)[index]
    assert resolve_combined(action, attr_type) is RESOLUTION[action][index]


@pytest.mark.parametrize("action", [a for a in Action if not a.is_combined])
def test_single_actions_pass_through(action: Action) -> None:
    assert resolve_combined(action, "1") is action
    assert resolve_combined(action, None) is action


def test_unrecognised_type_is_treated_as_unknown() -> None:
    assert resolve_combined(Action.XZ, "bogus") is Action.Z
