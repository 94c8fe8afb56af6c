"""Rule precedence of the frozen Policy built from options and a site file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomcloak.errors import ConfigError
from dicomcloak.policy import Policy, build_policy
from dicomcloak.standard.table import Action, Option, table_rows

INSTITUTION_NAME = 0x00080080
PATIENT_NAME = 0x00100010
ROWS = 0x00280010


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_basic_profile_by_default() -> None:
    policy = build_policy()
    assert policy.rule(PATIENT_NAME).action is Action.Z
    assert policy.rule(INSTITUTION_NAME).action is Action.XZD
    assert policy.rule(INSTITUTION_NAME).source == "table:basic"


def test_option_beats_basic() -> None:
    rule = build_policy([Option.RETAIN_INSTITUTION_IDENTITY]).rule(INSTITUTION_NAME)
    assert (rule.action, rule.source) == (Action.K, "table:retain-institution-identity")


def test_site_tag_beats_option(tmp_path: Path) -> None:
    path = write(tmp_path, '[tags]\n"(0008,0080)" = "X"\n')
    rule = build_policy(["retain-institution-identity"], path).rule(INSTITUTION_NAME)
    assert (rule.action, rule.source) == (Action.X, "site:tag")


def test_site_keyword_resolves_to_tag(tmp_path: Path) -> None:
    path = write(tmp_path, '[tags]\nInstitutionName = "K"\n')
    assert build_policy([], path).rule(INSTITUTION_NAME).action is Action.K


def test_option_k_beats_option_c() -> None:
    found = _rows_with_k_and_c()
    assert found, "the table has rows where one option says K and another says C"
    for tag, k_option, c_option in found:
        rule = build_policy([c_option, k_option]).rule(tag)
        assert (rule.action, rule.source) == (Action.K, f"table:{k_option.value}")
        assert build_policy([c_option]).rule(tag).action is Action.C


def _rows_with_k_and_c() -> list[tuple[int, Option, Option]]:
    # In the 2025c table these are device calibration dates and times: Retain Device
    # Identity says K, Retain Longitudinal Temporal Information with Modified Dates says C.
    out: list[tuple[int, Option, Option]] = []
    for row in table_rows():
        if "x" in row.tag or row.tag.startswith("(gggg"):
            continue
        k = [
            opt
            for opt, act in row.options.items()
            if act is Action.K and opt is not Option.RETAIN_LONG_FULL_DATES
        ]
        c = [opt for opt, act in row.options.items() if act is Action.C]
        if k and c:
            out.append((int(row.tag[1:5], 16) << 16 | int(row.tag[6:10], 16), k[0], c[0]))
    return out


def test_both_date_options_conflict() -> None:
    with pytest.raises(ConfigError) as info:
        build_policy(["retain-long-full-dates", "retain-long-modified-dates"])
    assert info.value.reference == "options-conflict"


def test_date_options_conflict_across_cli_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[policy]\noptions = ["retain-long-modified-dates"]\n')
    assert Option.RETAIN_LONG_MODIFIED_DATES in build_policy([], path).options
    with pytest.raises(ConfigError) as info:
        build_policy(["retain-long-full-dates"], path)
    assert info.value.reference == "options-conflict"


def test_site_private_and_vr(tmp_path: Path) -> None:
    path = write(tmp_path, '[private]\n"0019,GEMS_ACQU_01,23" = "K"\n[vr]\nUN = "K"\nPN = "X"\n')
    policy = build_policy([], path)
    rule = policy.rule(0x00191023, "DS", "gems_acqu_01 ")
    assert (rule.action, rule.source) == (Action.K, "site:private")
    assert policy.rule(0x00191024, "DS", "GEMS_ACQU_01").action is Action.X  # not listed
    assert policy.rule(0x00191024, "UN", "GEMS_ACQU_01").source == "site:vr"
    assert policy.rule(PATIENT_NAME, "PN").source == "site:vr"


def test_safe_private_needs_the_option_and_can_be_extended(tmp_path: Path) -> None:
    path = write(tmp_path, '[safe_private]\nadd = ["0029,ACME 1.1,10"]\nremove = ["0043,GEMS_PARM_01,39"]\n')
    plain = build_policy([], path)
    assert plain.rule(0x00291010, "DS", "ACME 1.1").action is Action.X
    retain = build_policy(["retain-safe-private"], path)
    assert retain.rule(0x00291010, "DS", "ACME 1.1").action is Action.C
    assert retain.rule(0x00431039, "IS", "GEMS_PARM_01").action is Action.X
    assert retain.rule(0x00191023, "DS", "GEMS_ACQU_01").action is Action.C


def test_policy_settings_from_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[policy]\nunknown_public = "K"\nkeep_reference_sequences = false\n')
    policy = build_policy([], path)
    assert policy.unknown_public is Action.K
    assert policy.keep_reference_sequences is False
    assert policy.rule(0x0018FFF0).action is Action.K
    default = build_policy()
    assert default.unknown_public is Action.X
    assert default.keep_reference_sequences is True
    assert default.rule(ROWS).action is Action.K


def test_repeating_group_in_tags(tmp_path: Path) -> None:
    path = write(tmp_path, '[tags]\n"(60xx,0022)" = "X"\n')
    policy = build_policy([], path)
    assert policy.rule(0x60000022).action is Action.X
    assert policy.rule(0x601E0022).action is Action.X
    assert policy.rule(0x60200022).source != "site:tag"


def test_policy_is_frozen() -> None:
    policy: Policy = build_policy()
    with pytest.raises(AttributeError):
        policy.unknown_public = Action.K  # type: ignore[misc]


def test_a_policy_with_site_overrides_pickles_to_the_same_rules(tmp_path: Path) -> None:
    """Pool workers started by forkserver or spawn receive the policy pickled (read-only views included)."""
    import pickle

    site = write(tmp_path, '[tags]\nPatientName = "K"\n[vr]\nPN = "X"\n[private]\n"0009,ACME,10" = "K"\n')
    policy = build_policy([Option.CLEAN_DESCRIPTORS], site)
    copy = pickle.loads(pickle.dumps(policy))
    assert copy.rule(PATIENT_NAME) == policy.rule(PATIENT_NAME)
    assert copy.rule(PATIENT_NAME).action is Action.K
    assert dict(copy.overrides.vrs) == dict(policy.overrides.vrs)
    assert dict(copy.overrides.private) == dict(policy.overrides.private)
    with pytest.raises(TypeError):
        copy.overrides.tags[PATIENT_NAME] = Action.X  # type: ignore[index]
