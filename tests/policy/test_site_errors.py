"""Every mistake in a site policy file is a ConfigError with a precise reference naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomcloak.errors import ConfigError
from dicomcloak.policy import build_policy, load_policy_file

CASES = [
    ('[tags]\n"(0008,008G)" = "X"\n', "policy-bad-tag", "(0008,008G)"),
    ('[tags]\n"0008-0080" = "X"\n', "policy-bad-tag", "0008-0080"),
    ('[tags]\n"(70xx,0010)" = "X"\n', "policy-bad-tag", "(70xx,0010)"),
    ('[tags]\nNoSuchKeyword = "X"\n', "policy-unknown-keyword", "NoSuchKeyword"),
    ('[tags]\nStationName = "Q"\n', "policy-bad-action", "StationName"),
    ("[tags]\nStationName = 1\n", "policy-bad-action", "StationName"),
    ('[tags]\nStationName = "X"\n"(0008,1010)" = "K"\n', "policy-duplicate-tag", "(0008,1010)"),
    ('[private]\n"0018,ACME,10" = "K"\n', "policy-bad-private-key", "0018,ACME,10"),
    ('[private]\n"0019,ACME" = "K"\n', "policy-bad-private-key", "0019,ACME"),
    ('[private]\n"0019,,10" = "K"\n', "policy-bad-private-key", "0019,,10"),
    ('[private]\n"0019,ACME,100" = "K"\n', "policy-bad-private-key", "0019,ACME,100"),
    ('[private]\n"0019,ACME,10" = "KEEP"\n', "policy-bad-action", "0019,ACME,10"),
    ('[vr]\nZZ = "X"\n', "policy-bad-vr", "ZZ"),
    ('[vr]\nUN = "R"\n', "policy-bad-action", "UN"),
    ('[policy]\noptions = ["retain-everything"]\n', "policy-bad-option", "retain-everything"),
    ('[policy]\noptions = "retain-uids"\n', "policy-bad-value", "options"),
    ('[policy]\nunknown_public = "D"\n', "policy-bad-action", "unknown_public"),
    ('[policy]\nkeep_reference_sequences = "yes"\n', "policy-bad-value", "keep_reference_sequences"),
    ("[policy]\nretain = true\n", "policy-unknown-key", "retain"),
    ('[tag]\nStationName = "X"\n', "policy-unknown-key", "tag"),
    ("tags = 3\n", "policy-bad-value", "tags"),
    ('[safe_private]\nadd = ["0043,GEMS_PARM_01"]\n', "policy-bad-private-key", "0043,GEMS_PARM_01"),
    ("[safe_private]\ndrop = []\n", "policy-unknown-key", "drop"),
    ("[tags\n", "policy-file-invalid", "policy.toml"),
]


@pytest.mark.parametrize(("text", "reference", "named"), CASES)
def test_bad_policy_file(tmp_path: Path, text: str, reference: str, named: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_policy_file(path)
    error = info.value
    assert error.reference == reference
    assert named in error.message
    assert error.hint


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build_policy([], tmp_path / "absent.toml")
    assert info.value.reference == "policy-file-unreadable"


def test_bad_cli_option() -> None:
    with pytest.raises(ConfigError) as info:
        build_policy(["retain-nothing"])
    assert info.value.reference == "policy-bad-option"


def test_documented_example_loads(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "policy.md"
    text = docs.read_text("utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "site.toml"
    path.write_text(example, encoding="utf-8")
    site = load_policy_file(path)
    assert site.options
    assert site.overrides.tags
    assert site.overrides.private
    assert site.overrides.vrs
    assert site.safe_private_add
    build_policy([], path)


def test_accepted_spellings(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[tags]\n"(0008,0080)" = "k"\n"0008,1010" = "X/Z/D"\n"00081040" = "C"\n'
        '[private]\n"0019,GEMS_ACQU_01,xx24" = "K"\n[vr]\nun = "X"\n',
        encoding="utf-8",
    )
    site = load_policy_file(path)
    assert set(site.overrides.tags) == {0x00080080, 0x00081010, 0x00081040}
    assert (0x0019, "GEMS_ACQU_01", 0x24) in site.overrides.private
    assert set(site.overrides.vrs) == {"UN"}


def test_sanitize_section(tmp_path: Path) -> None:
    from dicomcloak.policy import Disposition

    path = tmp_path / "site.toml"
    path.write_text(
        '[sanitize]\nencapsulated_documents = "remove"\nicons = "quarantine"\n'
        "[sanitize.limits]\nmax_sequence_depth = 16\nmax_file_bytes = 1000000\n"
    )
    policy = build_policy([], path)
    assert policy.sanitize.encapsulated_documents is Disposition.REMOVE
    assert policy.sanitize.icons is Disposition.QUARANTINE
    assert policy.sanitize.waveforms is Disposition.KEEP
    limits = policy.sanitize.limits
    assert (limits.max_sequence_depth, limits.max_file_bytes) == (16, 1_000_000)
    assert policy.with_options([]).sanitize == policy.sanitize


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        ('[sanitize]\nwaveforms = "burn"\n', "policy-bad-value"),
        ("[sanitize]\nwaveform = 'keep'\n", "policy-unknown-key"),
        ("[sanitize.limits]\nmax_depth = 3\n", "policy-unknown-key"),
        ("[sanitize.limits]\nmax_sequence_depth = -1\n", "policy-bad-value"),
        ("[sanitize.limits]\nmax_sequence_depth = true\n", "policy-bad-value"),
    ],
)
def test_bad_sanitize_section(tmp_path: Path, text: str, reference: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        build_policy([], path)
    assert info.value.reference == reference
