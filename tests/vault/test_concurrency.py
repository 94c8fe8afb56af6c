"""Several writers on one vault (two nodes, one database): one data key per study, a linear audit chain."""

from __future__ import annotations

import threading
from typing import Any

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


def test_many_processes_opening_a_new_vault_at_once_all_succeed(db_url: str) -> None:
    """Dask workers and gateway routes open one new vault together: creating its tables must not race
    (PostgreSQL's CREATE TABLE fails with 23505 on a concurrent one; vault/store.py ``_prepare``)."""
    import multiprocessing

    key = ProjectKey.generate()
    context = multiprocessing.get_context("spawn")  # separate processes, separate connections
    start = context.Barrier(6)
    answers = context.Queue()
    workers = [context.Process(target=_open_and_report, args=(db_url, key.secret, start, answers))
               for _ in range(6)]
    for worker in workers:
        worker.start()
    results = [answers.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert results == [key.key_id] * 6


def _open_and_report(url: str, secret: bytes, start: Any, answers: Any) -> None:
    key = ProjectKey(secret)
    start.wait()  # every process imported and ready: they open the new vault together
    try:
        with Vault.open(url, Keyring.from_project_key(key)):
            answers.put(key.key_id)
    except Exception as error:  # the failure's type and reference, sent back to the test
        answers.put(f"{type(error).__name__}: {getattr(error, 'reference', '')}")
