"""``vault lookup`` both ways on real SQLite and PostgreSQL vaults, audited without the ID; it feeds shred."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
import sqlalchemy as sa
from pydicom import dcmread

from dicomcloak.audit import AuditLog

RunCli = Callable[..., CompletedProcess[str]]
PATIENT_ID = "MRN-4471-XQ"  # planted by tests/conftest.py in every file of dicom_tree
PATIENT_NAME = "Smithers^Waylon"


def _ok(result: CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def _lookup_events(url: str) -> list[dict[str, Any]]:
    log = AuditLog.open(url)
    try:
        log.verify()
        return [event for event in log.events() if event["action"] == "patient-lookup"]
    finally:
        log.close()


def _database_text(url: str) -> bytes:
    """Every byte the vault database holds for the audit: the SQLite files, or PostgreSQL's audit rows."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))  # with -wal and -shm
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM dicomcloak_audit")).all()
            meta = conn.execute(sa.text("SELECT * FROM dicomcloak_vault_meta")).all()
    finally:
        engine.dispose()
    return repr([tuple(row) for row in (*rows, *meta)]).encode()


def test_lookup_both_ways_audited_without_the_id_and_it_feeds_shred(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path, db_url: str
) -> None:
    _ok(run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "--vault", db_url,
                "-j", "1", "--json"))
    in_files = {str(dcmread(p, stop_before_pixels=True).PatientID) for p in (tmp_path / "out").rglob("*.dcm")}
    vault = ("--vault", db_url, "--key", key_file)

    forward = run_cli("vault", "lookup", *vault, "--patient-id", PATIENT_ID, "--domain", "default",
                      "--domain", "other", "--json")
    doc = _ok(forward)
    assert doc["direction"] == "patient-id-to-pseudonym"
    default, other = doc["pseudonyms"]
    assert {default["pseudonym"]} == in_files  # the pseudonym the files carry
    counts = (default["domain"], default["studies"], default["instances"], default["shredded"])
    assert counts == ("default", 2, 6, 0)
    assert other["domain"] == "other" and other["pseudonym"] != default["pseudonym"]
    assert (other["studies"], other["instances"]) == (0, 0)  # computed; never de-identified in that domain
    assert PATIENT_ID not in forward.stdout + forward.stderr
    text = run_cli("vault", "lookup", *vault, "--patient-id", PATIENT_ID)
    assert text.returncode == 0 and text.stdout.startswith(default["pseudonym"])
    unknown = run_cli("vault", "lookup", *vault, "--patient-id", "MRN-0000-ZZ")
    assert unknown.returncode == 0 and "holds nothing" in unknown.stderr
    assert "MRN-0000-ZZ" not in unknown.stdout + unknown.stderr

    back = run_cli("vault", "lookup", *vault, "--pseudonym", default["pseudonym"], "--json")
    doc = _ok(back)
    assert (doc["patient_id"], doc["pseudonym"], doc["studies"], doc["instances"]) == (
        PATIENT_ID, default["pseudonym"], 2, 6)
    assert PATIENT_ID not in back.stderr  # the answer goes to stdout only

    events = _lookup_events(db_url)
    forward_events = ["patient-id-to-pseudonym"] * 3
    assert [e["facts"]["direction"] for e in events] == [*forward_events, "pseudonym-to-patient-id"]
    assert events[0]["facts"]["pseudonyms"] == [default["pseudonym"], other["pseudonym"]]
    assert events[-1]["facts"] == {"direction": "pseudonym-to-patient-id", "pseudonym": default["pseudonym"],
                                   "found": True, "studies": 2, "shredded": 0}
    stored = _database_text(db_url)
    assert b"patient-lookup" in stored  # the search below reads where the events are
    for value in (PATIENT_ID, "MRN-0000-ZZ", PATIENT_NAME):
        assert value.encode() not in stored

    shred = _ok(run_cli("vault", "shred", *vault, "--patient", default["pseudonym"], "--json"))
    assert shred["shredded"] == 2
    gone = run_cli("vault", "lookup", *vault, "--pseudonym", default["pseudonym"], "--json")
    doc = _ok(gone)
    assert (doc["patient_id"], doc["studies"], doc["shredded"]) == (None, 0, 2)
    assert "shredded" in gone.stderr
    refused = run_cli("reid", tmp_path / "out", "--out", tmp_path / "back", *vault)
    assert refused.returncode == 4 and "vault-key-shredded" in refused.stderr


def test_a_wrong_key_is_refused_with_no_output(
    run_cli: RunCli, dicom_tree: Path, key_file: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    _ok(run_cli("deid", dicom_tree, "--out", tmp_path / "out", "--key", key_file, "--vault", url, "-j", "1",
                "--json"))
    other = tmp_path / "other.key"
    assert run_cli("keys", "init", "--out", other).returncode == 0
    for args in (("--patient-id", PATIENT_ID), ("--pseudonym", "P0000000000")):
        result = run_cli("vault", "lookup", "--vault", url, "--key", other, *args, "--json")
        assert result.returncode == 4 and result.stdout == ""
        assert "wrong-master-key" in result.stderr and PATIENT_ID not in result.stderr
    assert _lookup_events(url) == []


@pytest.mark.parametrize(
    "args",
    [(), ("--patient-id", "A", "--pseudonym", "P"), ("--pseudonym", "P", "--domain", "x")],
)
def test_lookup_usage(run_cli: RunCli, key_file: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_cli("vault", "lookup", "--vault", f"sqlite:///{tmp_path / 'v.db'}", "--key", key_file, *args)
    assert result.returncode == 2 and "lookup-target" in result.stderr


def test_an_unmatched_shred_target_is_not_recorded(run_cli: RunCli, key_file: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    result = run_cli("vault", "shred", "--vault", url, "--key", key_file, "--patient", PATIENT_ID)
    assert result.returncode == 0 and "vault lookup --patient-id" in result.stderr
    log = AuditLog.open(url)
    try:
        (event,) = log.events()
    finally:
        log.close()
    assert event["facts"]["unmatched"] == "patient" and PATIENT_ID not in json.dumps(event)
