"""The beyond-table list in the Policy: applied by default, options honoured, gone with strict_table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dicomcloak.errors import ConfigError
from dicomcloak.policy import Policy, build_policy, explain
from dicomcloak.standard.beyond import beyond_rows
from dicomcloak.standard.table import Action, Option

ALT_BIRTH_DATE = 0x00100033
RESPONSIBLE_PERSON_ROLE = 0x00102298
BODY_MASS_INDEX = 0x00101022
ROUTE_OF_ADMISSIONS = 0x00380016
BREED_REGISTRATION = 0x00102294


def test_every_row_applies_by_default_with_its_source() -> None:
    policy = Policy()
    for row in beyond_rows():
        assert policy.rule(row.tag) == (policy.beyond_rule(row)), row.keyword
        assert policy.rule(row.tag).source == "beyond-table", row.keyword
        assert policy.rule(row.tag).action is row.basic


def test_strict_table_falls_back_to_the_rule_for_untabled_attributes() -> None:
    strict = Policy(strict_table=True)
    for row in beyond_rows():
        rule = strict.rule(row.tag)
        assert (rule.action, rule.source) == (Action.K, "default:dictionary"), row.keyword


def test_options_columns_decide_as_in_the_table() -> None:
    characteristics = Policy(options=frozenset({Option.RETAIN_PATIENT_CHARACTERISTICS}))
    bmi = characteristics.rule(BODY_MASS_INDEX)
    assert (bmi.action, bmi.source) == (Action.K, "beyond-table:retain-patient-characteristics")
    # Responsible Person Role is no physical characteristic (PS3.15 E.3.5): still removed.
    assert characteristics.rule(RESPONSIBLE_PERSON_ROLE).action is Action.X
    descriptors = Policy(options=frozenset({Option.CLEAN_DESCRIPTORS}))
    assert descriptors.rule(ROUTE_OF_ADMISSIONS).action is Action.C
    assert Policy().rule(ROUTE_OF_ADMISSIONS).action is Action.X


def test_site_override_still_wins() -> None:
    policy = build_policy()
    kept = dataclasses.replace(
        policy, overrides=dataclasses.replace(policy.overrides, tags={ALT_BIRTH_DATE: Action.K})
    )
    assert (kept.rule(ALT_BIRTH_DATE).action, kept.rule(ALT_BIRTH_DATE).source) == (Action.K, "site:tag")


def test_with_options_keeps_strictness() -> None:
    assert Policy(strict_table=True).with_options([Option.RETAIN_UIDS]).strict_table


def test_policy_file_setting(tmp_path: Path) -> None:
    path = tmp_path / "strict.toml"
    path.write_text("[policy]\nstrict_table = true\n", encoding="utf-8")
    assert build_policy([], path).strict_table
    assert not build_policy().strict_table
    assert build_policy(strict_table=True).strict_table


def test_policy_file_setting_must_be_boolean(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[policy]\nstrict_table = "yes"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        build_policy([], path)
    assert caught.value.reference == "policy-bad-value"
    assert "strict_table" in caught.value.message


def test_explain_shows_beyond_table_rows_and_strictness() -> None:
    default = {row.tag: row for row in explain(Policy())}
    strict = {row.tag: row for row in explain(Policy(strict_table=True))}
    row = default["(0010,0033)"]
    assert row.name == "PatientBirthDateInAlternativeCalendar"
    assert (row.action, row.source) == ("X", "beyond-table")
    assert "birth date" in row.note
    assert (strict["(0010,0033)"].action, strict["(0010,0033)"].source) == ("K", "default:dictionary")
    assert "strict table" in strict["(0010,0033)"].note
    assert default["(0010,2294)"].action == "X/Z"  # resolved by Type in the IOD, as for the table
