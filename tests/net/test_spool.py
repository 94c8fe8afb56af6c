"""The spool (net/spool.py): layout, leftovers of a crash, claims given back, the queue's order and counts."""

from __future__ import annotations

import os
from pathlib import Path

from dicomcloak.io.inputs import InputItem
from dicomcloak.net.spool import RouteSpool, SpoolClaims


def received(spool: RouteSpool, data: bytes = b"DICM") -> tuple[Path, InputItem]:
    path = spool.receive(data)
    return path, InputItem(spool.incoming, "day", path.name, None, path)


def test_directories_are_private_and_received_files_owner_only(tmp_path: Path) -> None:
    spool = RouteSpool(tmp_path / "spool", "out")
    spool.prepare()
    made = (tmp_path / "spool", spool.base, spool.incoming, spool.outbound, spool.claims, spool.failed)
    for directory in made:
        assert directory.stat().st_mode & 0o777 == 0o700
    path, _ = received(spool, b"payload")
    assert path.read_bytes() == b"payload" and path.stat().st_mode & 0o777 == 0o600


def test_a_crash_leftover_gives_its_claims_back_and_a_finished_one_keeps_them(tmp_path: Path) -> None:
    spool = RouteSpool(tmp_path / "spool", "out")
    spool.prepare()
    claims = SpoolClaims(spool.claims)
    _, crashed_item = received(spool)
    assert claims.claim("study/crashed", 0, crashed_item, b"\1" * 32) is None
    finished, finished_item = received(spool)
    assert claims.claim("study/finished", 1, finished_item, b"\2" * 32) is None
    os.unlink(finished)  # processed: the input went first, its claim list was left by a crash after that
    # A later claimer of an instance claimed first does not list (and never releases) the first's claim.
    later, later_item = received(spool)
    assert claims.claim("study/finished", 2, later_item) is not None
    assert later.with_suffix(".claim").read_text() == ""
    os.unlink(later)
    assert RouteSpool(tmp_path / "spool", "out").prepare() == 1
    assert not list(spool.incoming.iterdir())
    again = SpoolClaims(spool.claims)
    assert again.claim("study/crashed", 3, crashed_item) is None  # given back: processed anew
    first = again.claim("study/finished", 4, finished_item)
    assert first is not None and first.digest == b"\2" * 32


def test_release_gives_back_the_claims_of_a_failed_instance(tmp_path: Path) -> None:
    spool = RouteSpool(tmp_path / "spool", "out")
    spool.prepare()
    claims = SpoolClaims(spool.claims)
    path, item = received(spool)
    assert claims.claim("study/sop", 0, item) is None
    SpoolClaims.release(path)
    spool.discard_received(path)
    assert not list(spool.incoming.iterdir())
    assert claims.claim("study/sop", 1, item) is None


def test_pending_oldest_first_counted_removed_and_failed(tmp_path: Path) -> None:
    spool = RouteSpool(tmp_path / "spool", "out")
    spool.prepare()
    paths = []
    for index, name in enumerate(["c", "a", "b"]):
        path = spool.outbound / "p" / f"{name}.dcm"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * (index + 1))
        os.utime(path, ns=(10**18 + index, 10**18 + index))
        paths.append(path)
    (spool.tree.staging).mkdir()
    (spool.tree.staging / "temp.dcm").write_bytes(b"half")  # a writer's temporary file: never queued
    restarted = RouteSpool(tmp_path / "spool", "out")
    restarted.prepare()
    assert restarted.pending() == paths and restarted.pending(2) == paths[:2]
    assert (restarted.usage().files, restarted.usage().bytes) == (3, 6)
    restarted.remove(paths[0])
    moved = restarted.fail(paths[1])
    assert moved == restarted.failed / "a.dcm" and moved.read_bytes() == b"xx"
    assert restarted.pending() == [paths[2]]
    assert (restarted.usage().files, restarted.usage().bytes) == (1, 3)
