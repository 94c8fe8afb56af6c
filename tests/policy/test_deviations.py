"""Deviations: where a site policy departs from the profile with its options, and whether it weakens it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicomcloak.policy import Policy, build_policy, render_deviations_json, render_deviations_text
from dicomcloak.policy.deviations import retention
from dicomcloak.standard.table import Action, Option

KEEP_IDENTITY = """\
[tags]
PatientName = "K"
PatientID = "K"
PatientBirthDate = "K"
"""


def _policy(tmp_path: Path, text: str, options: tuple[str, ...] = (), *, strict: bool = False) -> Policy:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return build_policy(list(options), path, strict_table=strict)


def test_default_policy_has_none() -> None:
    for policy in (Policy(), build_policy(["retain-uids", "clean-descriptors"]), Policy(strict_table=True)):
        assert policy.deviations == ()
        assert policy.weakening == ()


def test_keeping_patient_identity_gives_three_weakening_deviations(tmp_path: Path) -> None:
    policy = _policy(tmp_path, KEEP_IDENTITY)
    found = [(d.tag, d.keyword, d.profile_action, d.action, d.source, d.weakens) for d in policy.deviations]
    assert found == [
        ("(0010,0010)", "PatientName", "Z", "K", "site:tag", True),
        ("(0010,0020)", "PatientID", "Z/D", "K", "site:tag", True),
        ("(0010,0030)", "PatientBirthDate", "Z", "K", "site:tag", True),
    ]
    assert policy.weakening == policy.deviations


def test_stronger_or_equal_overrides(tmp_path: Path) -> None:
    policy = _policy(tmp_path, '[tags]\nStationName = "X"\nPatientAddress = "X"\nRows = "X"\n')
    found = {d.keyword: d for d in policy.deviations}
    assert set(found) == {"StationName", "Rows"}  # Patient's Address is X in the table already
    assert (found["StationName"].profile_action, found["StationName"].weakens) == ("X/Z/D", False)
    assert (found["Rows"].profile_action, found["Rows"].weakens) == ("K", False)
    assert policy.weakening == ()


def test_option_is_part_of_the_profile(tmp_path: Path) -> None:
    """K on Station Name is what Retain Device Identity does: no deviation under that option."""
    assert _policy(tmp_path, '[tags]\nStationName = "K"\n', ("retain-device-identity",)).deviations == ()
    assert _policy(tmp_path, '[tags]\nStationName = "K"\n').weakening[0].keyword == "StationName"


def test_beyond_table_rows_are_part_of_the_profile_unless_strict(tmp_path: Path) -> None:
    text = '[tags]\nPatientBirthDateInAlternativeCalendar = "K"\n'
    loose = _policy(tmp_path, text)
    assert [(d.profile_action, d.weakens) for d in loose.deviations] == [("X", True)]
    assert _policy(tmp_path, text, strict=True).deviations == ()


def test_uid_kept_is_still_replaced_so_it_does_not_weaken(tmp_path: Path) -> None:
    policy = _policy(tmp_path, '[tags]\nSOPInstanceUID = "K"\n')
    assert [(d.keyword, d.weakens) for d in policy.deviations] == [("SOPInstanceUID", False)]
    retained = _policy(tmp_path, '[tags]\nSOPInstanceUID = "X"\n', ("retain-uids",))
    assert [(d.profile_action, d.weakens) for d in retained.deviations] == [("K", False)]


def test_kept_sequence_is_cleaned_so_k_for_d_does_not_weaken(tmp_path: Path) -> None:
    policy = _policy(tmp_path, '[tags]\nContentSequence = "K"\nOtherPatientIDsSequence = "K"\n')
    found = {d.keyword: d.weakens for d in policy.deviations}
    assert found == {"ContentSequence": False, "OtherPatientIDsSequence": True}


def test_private_overrides(tmp_path: Path) -> None:
    text = '[private]\n"0019,GEMS_ACQU_01,23" = "K"\n"0019,GEMS_ACQU_01,24" = "X"\n'
    plain = _policy(tmp_path, text)
    assert [(d.tag, d.keyword, d.profile_action, d.weakens) for d in plain.deviations] == [
        ("(0019,xx23)", "GEMS_ACQU_01", "X", True)
    ]
    safe = _policy(tmp_path, text, ("retain-safe-private",))  # both elements are on the safe list (C)
    found = {d.tag: (d.profile_action, d.action, d.weakens) for d in safe.deviations}
    assert found == {"(0019,xx23)": ("C", "K", True), "(0019,xx24)": ("C", "X", False)}


def test_vr_override_lists_each_listed_attribute_and_the_groups(tmp_path: Path) -> None:
    policy = _policy(tmp_path, '[vr]\nPN = "K"\n')
    by_keyword = {d.keyword: d for d in policy.deviations}
    assert by_keyword["PatientName"].source == "site:vr"
    assert by_keyword["OperatorsName"].profile_action == "X/Z/D"
    assert by_keyword["EvaluatorName"].profile_action == "X/Z/D"  # a beyond-table person name
    groups = [d for d in policy.deviations if d.tag.startswith("(gggg")]
    assert [(d.tag, d.weakens) for d in groups] == [("(gggg,xxxx) VR PN", True)]
    assert all(d.weakens for d in policy.deviations)


def test_vr_override_respects_tag_overrides(tmp_path: Path) -> None:
    policy = _policy(tmp_path, '[tags]\nPatientName = "K"\n[vr]\nPN = "X"\n')
    name = [d for d in policy.deviations if d.keyword == "PatientName"]
    assert [(d.source, d.action) for d in name] == [("site:tag", "K")]
    assert any(d.tag == "(gggg,eeee) VR PN" and not d.weakens for d in policy.deviations)


def test_unknown_public_kept(tmp_path: Path) -> None:
    policy = _policy(tmp_path, '[policy]\nunknown_public = "K"\n')
    assert [(d.tag, d.profile_action, d.action, d.source, d.weakens) for d in policy.deviations] == [
        ("(gggg,eeee)", "X", "K", "policy:unknown_public", True)
    ]


def test_computed_once_per_policy(tmp_path: Path) -> None:
    policy = _policy(tmp_path, KEEP_IDENTITY)
    assert policy.deviations is policy.deviations
    assert policy.weakening is policy.weakening


@pytest.mark.parametrize(
    ("action", "vr", "expected"),
    [
        (Action.K, "LO", (2, 2)),
        (Action.C, "DA", (1, 1)),
        (Action.XZD, "LO", (0, 0)),
        (Action.XZD, "SQ", (0, 2)),
        (Action.D, "SQ", (2, 2)),
        (Action.K, "UI", (0, 0)),
        (Action.XZU, "SQ", (2, 2)),
    ],
)
def test_retention(action: Action, vr: str, expected: tuple[int, int]) -> None:
    assert retention(action, vr, Policy()) == expected


def test_retention_of_uids_with_retain_uids() -> None:
    assert retention(Action.K, "UI", Policy(options=frozenset({Option.RETAIN_UIDS}))) == (2, 2)


def test_renderings(tmp_path: Path) -> None:
    policy = _policy(tmp_path, KEEP_IDENTITY)
    text = render_deviations_text(policy.deviations)
    assert text.splitlines()[0].split() == ["TAG", "KEYWORD", "PROFILE", "ACTION", "SOURCE", "WEAKENS"]
    assert len(text.splitlines()) == 4
    document = json.loads(render_deviations_json(policy.deviations))
    assert document["edition"].startswith("2025c")
    assert document["deviations"][0] == {
        "tag": "(0010,0010)",
        "keyword": "PatientName",
        "profile_action": "Z",
        "action": "K",
        "source": "site:tag",
        "weakens": True,
    }
    assert render_deviations_text(()).startswith("no deviations")
