"""The engine's fast paths agree with the full rule lookup (docs/architecture.md, "The header-only path")."""

from __future__ import annotations

from pathlib import Path

from dicomcloak.policy import build_policy
from dicomcloak.policy.model import Action, Policy

STUDY_DESCRIPTION = 0x00081030  # X in the basic profile, whatever its VR
INSTITUTION_NAME = 0x00080080  # X/Z/D: depends on the IOD, never a plain removal
ROWS = 0x00280010  # kept
PRIVATE = 0x00091001


def test_plain_removal_is_the_rule_of_every_vr() -> None:
    policy = Policy()
    source = policy.plain_remove_source(STUDY_DESCRIPTION)
    assert source == policy.rule(STUDY_DESCRIPTION, "LO").source
    assert all(policy.rule(STUDY_DESCRIPTION, vr).action is Action.X for vr in ("LO", "UN", None))
    assert policy.plain_removes[STUDY_DESCRIPTION] == source  # memoized for the engine


def test_not_plain_removals() -> None:
    policy = Policy()
    assert policy.rule(INSTITUTION_NAME).action is not Action.X
    assert policy.plain_remove_source(INSTITUTION_NAME) is None
    assert policy.plain_remove_source(ROWS) is None
    assert policy.plain_remove_source(PRIVATE) is None


def test_an_option_that_keeps_it_ends_the_plain_removal() -> None:
    assert build_policy(["retain-long-full-dates"]).plain_remove_source(STUDY_DESCRIPTION) is not None
    assert build_policy(["clean-descriptors"]).plain_remove_source(STUDY_DESCRIPTION) is None


def test_site_overrides_by_vr_disable_the_fast_path(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[vr]\nLO = "K"\n', encoding="utf-8")
    policy = build_policy([], site)
    assert policy.plain_remove_source(STUDY_DESCRIPTION) is None
    assert policy.rule(STUDY_DESCRIPTION, "LO").action is Action.K


def test_site_tag_override_wins(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[tags]\nRows = "X"\n', encoding="utf-8")
    policy = build_policy([], site)
    assert policy.plain_remove_source(ROWS) == policy.rule(ROWS, "US").source
