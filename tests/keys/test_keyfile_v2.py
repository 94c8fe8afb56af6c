"""Key file v2: wrapping keys beside the unchanged pseudonymization secret; v1 still read."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from dicomcloak.errors import KeyError_, SealError, UsageError
from dicomcloak.keys import (
    Keyring,
    KeyState,
    ProjectKey,
    Pseudonymizer,
    WrappingKey,
    load_key_file,
    load_keyring,
    write_key_file,
    write_keyring_file,
)


def test_new_key_file_is_v2_with_one_current_wrapping_key(tmp_path: Path) -> None:
    path = tmp_path / "p.key"
    write_key_file(path, ProjectKey.generate())
    doc = json.loads(path.read_text())
    assert doc["version"] == 2
    assert [w["state"] for w in doc["wrapping_keys"]] == ["current"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring = load_keyring(path)
    assert ring.current.key_id == doc["wrapping_keys"][0]["id"]
    assert not ring.derived


def test_v1_file_reads_with_a_derived_wrapping_key(tmp_path: Path) -> None:
    project = ProjectKey.generate()
    path = tmp_path / "v1.key"
    path.write_text(project.to_json())
    ring = load_keyring(path)
    assert ring.derived
    assert ring.project == project
    assert ring.current == WrappingKey.derived(project)  # stable: the same on every load
    assert ring.current.secret != project.secret
    assert load_key_file(path) == project


def test_rotation_keeps_the_pseudonymization_secret(tmp_path: Path) -> None:
    path = tmp_path / "p.key"
    project = ProjectKey.generate()
    write_key_file(path, project)
    before = Pseudonymizer(load_key_file(path)).uid("1.2.3.4")
    ring = load_keyring(path)
    rotated = ring.rotated(WrappingKey.generate())
    write_keyring_file(path, rotated, overwrite=True)
    again = load_keyring(path)
    assert Pseudonymizer(again.project).uid("1.2.3.4") == before
    assert [k.state for k in again.wrapping] == [KeyState.OLD, KeyState.CURRENT]
    assert again.by_id(ring.current.key_id).secret == ring.current.secret


def test_retire_drops_the_secret_and_refuses_the_current_key() -> None:
    ring = Keyring.create(ProjectKey.generate()).rotated(WrappingKey.generate())
    old = ring.wrapping[0]
    retired = ring.retired(old.key_id)
    assert retired.by_id(old.key_id).secret is None
    with pytest.raises(SealError) as info:
        retired.by_id(old.key_id).usable_secret()
    assert info.value.reference == "vault-key-retired"
    with pytest.raises(UsageError) as refused:
        ring.retired(ring.current.key_id)
    assert refused.value.reference == "key-retire-current"


def test_secrets_never_in_repr() -> None:
    ring = Keyring.create(ProjectKey.generate())
    text = repr(ring) + repr(ring.current)
    assert ring.current.secret is not None
    assert ring.current.secret.hex() not in text
    assert ring.current.key_id in text


@pytest.mark.parametrize(
    ("mutate", "reference"),
    [
        (lambda d: d["wrapping_keys"][0].update(state="bogus"), "key-file-invalid"),
        (lambda d: d["wrapping_keys"][0].update(id="wdeadbeefdeadbee"), "key-file-corrupt"),
        (lambda d: d["wrapping_keys"][0].update(state="old"), "key-file-invalid"),  # no current key
        (lambda d: d.update(wrapping_keys="x"), "key-file-invalid"),
        (lambda d: d.update(version=3), "key-file-version"),
    ],
)
def test_malformed_v2_files_are_refused(tmp_path: Path, mutate: object, reference: str) -> None:
    path = tmp_path / "p.key"
    write_key_file(path, ProjectKey.generate())
    doc = json.loads(path.read_text())
    mutate(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyError_) as info:
        load_keyring(path)
    assert info.value.reference == reference
    assert doc["secret"] not in str(info.value)
