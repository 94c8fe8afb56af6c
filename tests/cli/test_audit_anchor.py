"""Run reports keep a copy of the audit head; ``audit verify --report`` checks the chain still holds it.

Issue 13, item 5. The vault's metadata table anchors the audit head, so a
truncation shows without ``--expect-head``; a report kept elsewhere also
exposes the truncation that rewrote the anchor (docs/vault.md, "Anchored
head"). Real runs, real SQLite and PostgreSQL vaults.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _verify(run_cli: RunCli, url: str, *extra: str | Path) -> subprocess.CompletedProcess[str]:
    return run_cli("audit", "verify", "--vault", url, *extra)


def _cut_to(url: str, events: int) -> None:
    """Delete the events after ``events`` and rewrite the anchor to match: what only a kept head exposes."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM dicomcloak_audit WHERE seq > :n"), {"n": events})
        head = conn.execute(sa.text("SELECT hash FROM dicomcloak_audit WHERE seq = :n"), {"n": events})
        update = "UPDATE dicomcloak_vault_meta SET value = :v WHERE name = :name"
        conn.execute(sa.text(update), {"v": head.scalar_one(), "name": "audit_head"})
        conn.execute(sa.text(update), {"v": str(events), "name": "audit_events"})
    engine.dispose()


def test_reports_record_the_audit_head_that_verify_checks(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path, db_url: str
) -> None:
    out = tmp_path / "out"
    deid = run_cli("deid", dicom_tree, "--out", out, "--key", key_file, "--vault", db_url, "--json")
    assert deid.returncode == 0, deid.stderr
    recorded = json.loads(deid.stdout)["sealing"]["audit"]
    checked = json.loads(_verify(run_cli, db_url, "--json").stdout)
    assert recorded == {"events": checked["events"], "head": checked["head"]} and checked["anchored"]
    report = out.parent / "out.run" / "latest" / "report.json"
    reid = run_cli("reid", out, "--out", tmp_path / "back", "--vault", db_url, "--key", key_file, "--json")
    assert reid.returncode == 0, reid.stderr
    reid_report = tmp_path / "back.run" / "latest" / "report.json"
    assert json.loads(reid.stdout)["audit"]["events"] > recorded["events"]  # the reid's lookups were audited
    assert _verify(run_cli, db_url, "--report", report, "--report", reid_report).returncode == 0

    _cut_to(db_url, recorded["events"] - 1)  # the deid's last seal event, and all after it, gone
    assert _verify(run_cli, db_url).returncode == 0  # the rewritten anchor agrees...
    cut = _verify(run_cli, db_url, "--report", report)  # ...the report kept elsewhere does not
    assert cut.returncode == 4 and "error[audit-chain-truncated]" in cut.stderr


@pytest.mark.parametrize(
    "cut",
    ["DELETE FROM dicomcloak_audit", "DROP TABLE dicomcloak_audit"],
    ids=["all-rows-deleted", "table-dropped"],
)
def test_a_log_emptied_or_dropped_fails_verify_without_an_expected_head(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path, db_url: str, cut: str
) -> None:
    out = tmp_path / "out"
    deid = run_cli("deid", dicom_tree, "--out", out, "--key", key_file, "--vault", db_url)
    assert deid.returncode == 0, deid.stderr
    before = json.loads(_verify(run_cli, db_url, "--json").stdout)
    assert before["anchored"] and before["events"] >= 1
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text(cut))
    engine.dispose()
    result = _verify(run_cli, db_url)
    assert result.returncode == 4, result.stderr
    assert result.stderr.startswith("error[audit-chain-truncated]: ")
    assert f"holds 0 events, its anchor {before['events']}" in result.stderr


def test_a_report_without_an_audit_head_is_a_usage_error(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    deid = run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "-j", "1")
    assert deid.returncode == 0, deid.stderr
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    result = _verify(run_cli, url, "--report", tmp_path / "out.run" / "latest" / "report.json")
    assert result.returncode == 2 and result.stderr.startswith("error[report-without-audit-head]: ")


def test_a_log_without_anchor_is_verified_with_a_warning(run_cli: RunCli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    from dicomcloak.audit import AuditLog

    log = AuditLog.open(url)
    log.append("seal", records=1)
    log.close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # as a log written before anchors existed
        conn.execute(sa.text("DELETE FROM dicomcloak_vault_meta"))
    engine.dispose()
    result = _verify(run_cli, url, "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["anchored"] is False
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert "no anchored head" in warning
