"""Several writers on one vault (two nodes, one database): one data key per study, a linear audit chain."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from dicomcloak.keys import Keyring, ProjectKey
from dicomcloak.vault import Vault, VaultRecord


def test_two_vault_objects_seal_the_same_new_studies(db_url: str) -> None:
    ring = Keyring.create(ProjectKey.generate())
    nodes = [Vault.open(db_url, ring), Vault.open(db_url, ring)]
    errors: list[BaseException] = []

    def seal(node: int) -> None:
        try:
            for group in range(10):
                records = [VaultRecord("PAAA", f"2.25.{s}", f"2.25.{s}.{node}.{group}", b"%d" % node)
                           for s in range(5)]
                nodes[node].seal_records(records)
        except BaseException as error:  # collected and asserted in the main thread
            errors.append(error)

    threads = [threading.Thread(target=seal, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    reader = Vault.open(db_url, ring)  # no cached keys: every key comes from the database
    for study in range(5):
        for node in range(2):
            assert reader.open_record(f"2.25.{study}", f"2.25.{study}.{node}.9").payload == b"%d" % node
    assert reader.key_usage() == {ring.current.key_id: 5}
    reader.audit.verify()
    assert [e["action"] for e in reader.audit.events()].count("seal") == 20
    for vault in (*nodes, reader):
        vault.close()


#: One process opening the vault: imports first, says it is ready, waits for the start file, then opens.
_OPENER = """
import os, sys, time
from dicomcloak.keys import Keyring, ProjectKey
from dicomcloak.vault import Vault
url, secret, ready, go = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3], sys.argv[4]
key = ProjectKey(secret)
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
try:
    with Vault.open(url, Keyring.from_project_key(key)):
        print(key.key_id)
except Exception as error:
    print(type(error).__name__, getattr(error, "reference", ""))
"""


def test_many_processes_opening_a_new_vault_at_once_all_succeed(db_url: str, tmp_path: Path) -> None:
    """Dask workers and gateway routes open one new vault together: creating its tables must not race
    (PostgreSQL's CREATE TABLE fails with 23505 on a concurrent one; vault/store.py ``_prepare``)."""
    key = ProjectKey.generate()
    go = tmp_path / "go"
    openers = [
        subprocess.Popen([sys.executable, "-c", _OPENER, db_url, key.secret.hex(),
                          str(tmp_path / f"ready{n}"),
                          str(go)], stdout=subprocess.PIPE, text=True)
        for n in range(6)
    ]
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("ready*"))) < len(openers) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()  # every process imported and waiting: they open the new vault together
        answers = [opener.communicate(timeout=120)[0].strip() for opener in openers]
    finally:
        for opener in openers:
            opener.kill()
    assert answers == [key.key_id] * len(openers)
