"""``reid`` on a vault written by an earlier version (records bound to study and instance only).

Such records restore as before, and the summary and the audit trail say how
many files were restored from them (``unbound``), so nobody takes them for
records bound to their output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import sqlalchemy as sa
from pydicom import dcmread

from dicomcloak.audit import AuditLog
from dicomcloak.keys import aead, load_keyring
from dicomcloak.testing.restored import differences
from dicomcloak.vault import Vault
from dicomcloak.vault.schema import BOUND_RECORDS, RECORDS

RunCli = Callable[..., CompletedProcess[str]]


def _as_earlier_versions_sealed(url: str, key_file: Path) -> int:
    """Move every record to the first format (AAD = study + instance, no binding) of earlier versions."""
    with Vault.open(url, load_keyring(key_file)) as vault, vault._engine.begin() as conn:
        rows = conn.execute(sa.select(BOUND_RECORDS)).all()
        for row in rows:
            key = vault._key_for(conn, row.study)
            payload = aead.open_blob(key, row.sealed, aead.record_aad(row.study, row.instance, row.binding),
                                     reference="vault-record-tampered", what="a test record")
            sealed = aead.seal_blob(key, payload, aead.record_aad(row.study, row.instance))
            conn.execute(sa.insert(RECORDS).values(study=row.study, instance=row.instance, sealed=sealed))
        conn.execute(sa.delete(BOUND_RECORDS))
    return len(rows)


def test_records_of_earlier_versions_restore_and_are_counted_unbound(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    out, back = tmp_path / "out", tmp_path / "back"
    deid = run_cli("deid", dicom_tree, "--out", out, "--key", key_file, "--vault", url, "--layout", "mirror")
    assert deid.returncode == 0, deid.stderr
    assert _as_earlier_versions_sealed(url, key_file) == 6
    result = run_cli("reid", out, "--out", back, "--vault", url, "--key", key_file, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["modes"], summary["unbound"], summary["unverified"]) == ({"vault": 6}, 6, 0)
    for path in back.rglob("*.dcm"):
        assert differences(dcmread(dicom_tree / path.relative_to(back)), dcmread(path)) == []
    human = run_cli("reid", out, "--out", tmp_path / "back2", "--vault", url, "--key", key_file)
    assert "unbound" in human.stdout
    log = AuditLog.open(url)
    (event,) = [e for e in log.events() if e["action"] == "reidentify"][:1]
    log.close()
    assert event["facts"]["unbound"] == 6
