"""``keys rotate|rewrap|retire``, ``vault shred``, ``audit verify`` on real SQLite and PostgreSQL vaults."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import sqlalchemy as sa

from dicomcloak.keys import load_keyring
from dicomcloak.vault import Vault, VaultRecord

RunCli = Callable[..., CompletedProcess[str]]


def seal(url: str, key_file: Path, study: str, *instances: str) -> None:
    with Vault.open(url, load_keyring(key_file)) as vault:
        vault.seal_records(VaultRecord("PAAA", study, i, i.encode(), ((i, "1.2.3"),)) for i in instances)


def opens(url: str, key_file: Path, study: str, instance: str) -> bytes:
    with Vault.open(url, load_keyring(key_file)) as vault:
        return vault.open_record(study, instance).payload


def secrets_of(key_file: Path) -> list[str]:
    doc = json.loads(key_file.read_text())
    return [doc["secret"], *(w["secret"] for w in doc["wrapping_keys"] if w["secret"])]


def test_rotate_rewrap_retire(run_cli: RunCli, key_file: Path, db_url: str) -> None:
    project_id = json.loads(key_file.read_text())["key_id"]
    seal(db_url, key_file, "2.25.1", "2.25.11", "2.25.12")
    seal(db_url, key_file, "2.25.2", "2.25.21")
    old = load_keyring(key_file).current.key_id

    rotated = run_cli("keys", "rotate", "--key", key_file, "--vault", db_url)
    assert rotated.returncode == 0, rotated.stderr
    ring = load_keyring(key_file)
    assert ring.current.key_id != old and ring.project.key_id == project_id
    assert not any(s in rotated.stdout + rotated.stderr for s in secrets_of(key_file))

    refused = run_cli("keys", "retire", old, "--vault", db_url, "--key", key_file)
    assert refused.returncode == 2
    assert "error[key-still-in-use]" in refused.stderr
    assert load_keyring(key_file).by_id(old).secret is not None

    rewrap = run_cli("keys", "rewrap", "--vault", db_url, "--key", key_file, "--json")
    assert rewrap.returncode == 0, rewrap.stderr
    assert json.loads(rewrap.stdout)["rewrapped"] == 2
    assert json.loads(rewrap.stdout)["data_keys_by_wrapping_key"] == {ring.current.key_id: 2}

    retired = run_cli("keys", "retire", old, "--vault", db_url, "--key", key_file)
    assert retired.returncode == 0, retired.stderr
    assert load_keyring(key_file).by_id(old).secret is None
    assert opens(db_url, key_file, "2.25.1", "2.25.12") == b"2.25.12"
    assert opens(db_url, key_file, "2.25.2", "2.25.21") == b"2.25.21"
    with Vault.open(db_url, load_keyring(key_file)) as vault:
        actions = [e["action"] for e in vault.audit.events()]
    assert actions[-5:] == ["rotate", "rewrap", "retire", "open-record", "open-record"]


def test_shred_and_audit_verify(run_cli: RunCli, key_file: Path, db_url: str) -> None:
    seal(db_url, key_file, "2.25.1", "2.25.11")
    seal(db_url, key_file, "2.25.2", "2.25.21")
    shred = run_cli("vault", "shred", "--vault", db_url, "--study", "2.25.1", "--key", key_file, "--json")
    assert shred.returncode == 0, shred.stderr
    assert json.loads(shred.stdout)["shredded"] == 1
    reopened = run_cli("keys", "rewrap", "--vault", db_url, "--key", key_file)
    assert reopened.returncode == 0
    assert opens(db_url, key_file, "2.25.2", "2.25.21") == b"2.25.21"

    verify = run_cli("audit", "verify", "--vault", db_url, "--json")
    assert verify.returncode == 0, verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] and report["events"] == 5
    head = report["head"]
    assert run_cli("audit", "verify", "--vault", db_url, "--expect-head", head).returncode == 0

    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        last = "SELECT max(seq) FROM dicomcloak_audit"
        conn.execute(sa.text(f"DELETE FROM dicomcloak_audit WHERE seq = ({last})"))
    engine.dispose()
    cut = run_cli("audit", "verify", "--vault", db_url)  # the anchored head shows it, no --expect-head needed
    assert cut.returncode == 4
    assert "error[audit-chain-truncated]" in cut.stderr and "holds 4 events, its anchor 5" in cut.stderr

    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # who also rewrites the anchor hides the cut from it...
        fourth = conn.execute(sa.text("SELECT hash FROM dicomcloak_audit WHERE seq = 4")).scalar_one()
        anchor = "UPDATE dicomcloak_vault_meta SET value = :v WHERE name = 'audit_head'"
        conn.execute(sa.text(anchor), {"v": fourth})
        conn.execute(sa.text("UPDATE dicomcloak_vault_meta SET value = '4' WHERE name = 'audit_events'"))
    engine.dispose()
    assert run_cli("audit", "verify", "--vault", db_url).returncode == 0
    cut = run_cli("audit", "verify", "--vault", db_url, "--expect-head", head)  # ...not one kept elsewhere
    assert cut.returncode == 4
    assert "error[audit-chain-broken]" in cut.stderr

    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE dicomcloak_audit SET actor = 'mallory' WHERE seq = 2"))
    engine.dispose()
    changed = run_cli("audit", "verify", "--vault", db_url)
    assert changed.returncode == 4
    assert "row 2 was changed" in changed.stderr


def test_shred_needs_one_target(run_cli: RunCli, key_file: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    for args in ([], ["--study", "2.25.1", "--patient", "PAAA"]):
        result = run_cli("vault", "shred", "--vault", url, "--key", key_file, *args)
        assert result.returncode == 2
        assert "error[shred-target]" in result.stderr


def test_wrong_key_file_exits_4(run_cli: RunCli, key_file: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    seal(url, key_file, "2.25.1", "2.25.11")
    other = tmp_path / "other.key"
    assert run_cli("keys", "init", "--out", other).returncode == 0
    result = run_cli("keys", "rewrap", "--vault", url, "--key", other)
    assert result.returncode == 4
    assert "error[wrong-master-key]" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_vault_url_never_echoes_it(run_cli: RunCli, key_file: Path) -> None:
    url = "mysql://user:s3cret@host/db"
    result = run_cli("vault", "shred", "--vault", url, "--study", "x", "--key", key_file)
    assert result.returncode == 2
    assert "error[vault-url-invalid]" in result.stderr
    assert "s3cret" not in result.stderr


def test_rotate_refuses_environment_keys(run_cli: RunCli, key_file: Path) -> None:
    env = {"DICOMCLOAK_WRAPPING_KEYS": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
    before = key_file.read_bytes()
    result = run_cli("keys", "rotate", "--key", key_file, env=env)
    assert result.returncode == 2
    assert "error[wrapping-keys-external]" in result.stderr
    assert key_file.read_bytes() == before


def test_v1_key_file_gains_its_wrapping_key_on_rotate(run_cli: RunCli, tmp_path: Path) -> None:
    from dicomcloak.keys import ProjectKey, WrappingKey

    project = ProjectKey.generate()
    path = tmp_path / "v1.key"
    path.write_text(project.to_json())
    url = f"sqlite:///{tmp_path / 'v.db'}"
    seal(url, path, "2.25.1", "2.25.11")  # sealed lazily under the derived wrapping key
    assert run_cli("keys", "rotate", "--key", path).returncode == 0
    doc = json.loads(path.read_text())
    assert doc["version"] == 2
    assert doc["wrapping_keys"][0]["id"] == WrappingKey.derived(project).key_id
    assert opens(url, path, "2.25.1", "2.25.11") == b"2.25.11"


def test_commands_without_the_vault_do_not_import_sqlalchemy() -> None:
    code = (
        "import sys, dicomcloak.cli.app, dicomcloak.vault, dicomcloak.audit, dicomcloak.keys;"
        "print('sqlalchemy' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
