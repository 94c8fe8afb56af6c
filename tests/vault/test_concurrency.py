"""Several writers on one vault (two nodes, one database): one data key per study, a linear audit chain."""

from __future__ import annotations

import threading

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
