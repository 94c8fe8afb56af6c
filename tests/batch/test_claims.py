"""Claims and content digests (batch.claims): who was first, and whether a later input is the same object."""

from __future__ import annotations

import multiprocessing
import os
import shutil
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from dicomcloak.batch.claims import Claim, Contents, DirClaims, MemoryClaims, content_digest, make_claims
from dicomcloak.io.inputs import InputItem, iter_inputs
from dicomcloak.io.reader import ReadLimits, dataset_bytes

DATA = Path(__file__).parents[1] / "data" / "dicognito"
LIMITS = ReadLimits()


def _item(path: Path, member: str | None = None) -> InputItem:
    return InputItem(path.parent, path.parent.name, path.name if member is None else member, member, path)


@pytest.mark.parametrize("kind", ["memory", "directory"])
def test_the_first_claim_wins_and_later_claimers_learn_who_made_it(kind: str, tmp_path: Path) -> None:
    claims = MemoryClaims() if kind == "memory" else DirClaims(tmp_path)
    # A name that is not UTF-8 (a surrogate escape) and a zip member survive the round trip.
    odd = _item(tmp_path / os.fsdecode(b"Smithers_\xff.dcm"))
    member = _item(tmp_path / "export.zip", "a/b.dcm")
    assert claims.claim("2.25.1/2.25.2", 3, odd) is None
    assert claims.claim("2.25.1/2.25.2", 9, member) == Claim(3, odd)
    assert claims.claim("2.25.1/2.25.3", 9, member) is None
    assert claims.claim("2.25.1/2.25.3", 4, odd) == Claim(9, member)
    assert claims.claim_path("a/b.dcm") and not claims.claim_path("a/b.dcm")
    # Instance keys and output paths are separate name spaces.
    assert claims.claim_path("2.25.1/2.25.2")
    if kind == "directory":
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_make_claims_picks_memory_or_directory(tmp_path: Path) -> None:
    assert isinstance(make_claims(None), MemoryClaims)
    assert isinstance(make_claims(tmp_path), DirClaims)


def _race(directory: str, index: int, queue: multiprocessing.Queue[int]) -> None:
    claims = DirClaims(Path(directory))
    first = claims.claim("2.25.1/2.25.2", index, _item(Path(directory) / f"input{index}.dcm"))
    queue.put(index if first is None else first.index)


def test_one_winner_among_processes_and_every_loser_reads_a_complete_claim(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[int] = context.Queue()
    workers = [context.Process(target=_race, args=(str(tmp_path), i, queue)) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    winners = {queue.get(timeout=10) for _ in workers}
    assert len(winners) == 1  # everyone names the same first claimer


def _copy(source: str | Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def test_same_data_set_is_a_duplicate_other_content_or_encoding_is_a_conflict(tmp_path: Path) -> None:
    ct = _copy(str(get_testdata_file("CT_small.dcm")), tmp_path / "a" / "CT_small.dcm")
    resend = _copy(ct, tmp_path / "b" / "resend.dcm")
    deflated = _copy(DATA / "CT_small_deflated.dcm", tmp_path / "c" / "CT_small_deflated.dcm")
    contents = Contents()
    first = Claim(0, _item(ct))
    assert contents.compare(first, 1, resend.read_bytes(), LIMITS) is None
    conflict = contents.compare(first, 2, deflated.read_bytes(), LIMITS)
    assert conflict is not None and conflict.first == first
    assert conflict.first_digest is not None and conflict.digest != conflict.first_digest
    details = conflict.details()
    assert details["conflicts_with"] == {"index": 0, "input": "a/CT_small.dcm"}
    assert details["content_digest"] == conflict.digest.hex()
    assert conflict.error().reference == "uid-conflict"


def test_an_unreadable_first_input_is_never_taken_for_the_same_content(tmp_path: Path) -> None:
    ct = _copy(str(get_testdata_file("CT_small.dcm")), tmp_path / "a" / "CT_small.dcm")
    data = ct.read_bytes()
    ct.unlink()  # removed during the run
    conflict = Contents().compare(Claim(0, _item(ct)), 1, data, LIMITS)
    assert conflict is not None and conflict.first_digest is None
    assert conflict.details()["conflicting_content_digest"] is None


def test_content_is_the_data_set_as_encoded_file_meta_and_padding_aside(tmp_path: Path) -> None:
    data = Path(get_testdata_file("MR_small.dcm")).read_bytes()
    body = bytes(dataset_bytes(data, LIMITS))
    assert data.endswith(body)  # everything after the File Meta group
    assert bytes(dataset_bytes(data + b"\x00\x00\x00", LIMITS)) == body  # trailing zero padding ignored
    # A deflated data set is compared inflated.
    deflated = (DATA / "CT_small_deflated.dcm").read_bytes()
    assert len(dataset_bytes(deflated, LIMITS)) > len(deflated)


def test_claims_name_inputs_as_iter_inputs_does(tmp_path: Path) -> None:
    path = _copy(DATA / "p01_s01_s01_i01.dcm", tmp_path / "in" / "Smithers" / "x.dcm")
    (item,) = iter_inputs([tmp_path / "in"])
    claims = DirClaims(tmp_path)
    claims.claim("k", 0, item)
    first = claims.claim("k", 1, item)
    assert first == Claim(0, item)
    assert first.item.read_bytes(LIMITS.max_file_bytes) == path.read_bytes()


def test_digests_recorded_in_claims_compare_without_the_first_input(tmp_path: Path) -> None:
    """The gateway removes each received input once processed: the first claim's digest stands for it."""
    first, other = tmp_path / "first.dcm", tmp_path / "other.dcm"
    shutil.copy(get_testdata_file("CT_small.dcm"), first)
    shutil.copy(get_testdata_file("MR_small.dcm"), other)
    data = first.read_bytes()
    claims = make_claims(tmp_path / "claims", digests=True)
    (tmp_path / "claims").mkdir()
    assert claims.records_digests and not MemoryClaims.records_digests
    assert claims.claim("k", 0, _item(first), content_digest(data, LIMITS)) is None
    first.unlink()  # processed: gone
    found = DirClaims(tmp_path / "claims").claim("k", 1, _item(other))  # another process, after a restart
    assert found is not None and found.digest == content_digest(data, LIMITS)
    assert Contents().compare(found, 1, data, LIMITS) is None  # the same content: a duplicate
    conflict = Contents().compare(found, 2, other.read_bytes(), LIMITS)
    assert conflict is not None and conflict.first_digest == found.digest
    # Without a recorded digest the first input is read again: gone, so a conflict (never merged).
    plain = DirClaims(tmp_path / "plain")
    (tmp_path / "plain").mkdir()
    plain.claim("k", 0, _item(first))
    again = plain.claim("k", 1, _item(other))
    assert again is not None and again.digest is None
    assert Contents().compare(again, 1, data, LIMITS) is not None
