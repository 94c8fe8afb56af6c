"""Tar archives as inputs: the directory's items, unsafe members refused, links skipped, bombs bounded."""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from dicomcloak.batch.claims import _decode, _encode
from dicomcloak.errors import MalformedError, ReadLimitError
from dicomcloak.io import InputItem, ReadLimits, iter_inputs
from dicomcloak.io.inputs import Refused, Skipped, WalkEntry
from dicomcloak.io.tarfiles import release_copies

RunCli = Callable[..., subprocess.CompletedProcess[str]]
PATIENT_NAME = "Smithers^Waylon"  # planted by tests/conftest.py make_instance
#: (suffix, tarfile write mode) of every compression the walk reads.
KINDS = [(".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar.bz2", "w:bz2"), (".txz", "w:xz")]


def _items(entries: list[WalkEntry]) -> list[InputItem]:
    return [entry for entry in entries if isinstance(entry, InputItem)]


def _pack(tree: Path, archive: Path, mode: str) -> Path:
    with tarfile.open(archive, mode) as handle:  # type: ignore[call-overload]
        handle.add(tree, arcname=".")
    return archive


def _add(
    handle: tarfile.TarFile, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **extra: str
) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, len(data) if kind == tarfile.REGTYPE else 0
    for key, value in extra.items():
        setattr(info, key, value)
    handle.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


@pytest.mark.parametrize(("suffix", "mode"), KINDS)
def test_a_tar_yields_the_directorys_items_and_bytes(
    tmp_path: Path, dicom_tree: Path, suffix: str, mode: str
) -> None:
    tree = dicom_tree
    archive = _pack(tree, tmp_path / f"export{suffix}", mode)
    scratch = tmp_path / "run" / ".dicomcloak-tmp"
    direct = _items(list(iter_inputs([tree])))
    packed = _items(list(iter_inputs([archive], scratch=scratch)))
    assert [item.relpath for item in packed] == [item.relpath for item in direct]
    assert all(item.member is not None and item.extent is not None for item in packed)
    for mine, theirs in zip(packed, direct, strict=True):
        revived = pickle.loads(pickle.dumps(mine))  # what a worker in another process receives
        assert revived.read_bytes(10**7) == theirs.source.read_bytes()
        with revived.open() as handle:
            assert handle.read(132)[128:] == b"DICM"
    copies = list(scratch.iterdir()) if scratch.exists() else []
    if mode == "w":
        assert not copies and packed[0].source == archive  # a plain tar is read in place
    else:
        assert [packed[0].source] == copies  # inflated once, into one private copy
        assert stat.S_IMODE(copies[0].stat().st_mode) == 0o600
        assert copies[0].name.startswith(".dicomcloak.")  # a killed run's copy is debris the next run removes
        assert copies[0].name.endswith(".tmp")
    assert release_copies() == (0 if mode == "w" else 1)
    assert not (scratch.exists() and list(scratch.iterdir()))


def test_unsafe_members_are_refused_links_and_devices_skipped(tmp_path: Path, mr_bytes: bytes) -> None:
    archive = tmp_path / "hostile.tar"
    with tarfile.open(archive, "w") as handle:
        _add(handle, "ok/a.dcm", mr_bytes)
        _add(handle, "../escape.dcm", mr_bytes)
        _add(handle, "/etc/cron.d/evil", b"* * * * * root sh")
        _add(handle, "ok/sub/../../../x.dcm", mr_bytes)
        _add(handle, "ok/link.dcm", kind=tarfile.SYMTYPE, linkname="/etc/passwd")
        _add(handle, "ok/hard.dcm", kind=tarfile.LNKTYPE, linkname="ok/a.dcm")
        _add(handle, "ok/fifo", kind=tarfile.FIFOTYPE)
        _add(handle, "ok/zero", kind=tarfile.CHRTYPE)
        _add(handle, "ok/dir", kind=tarfile.DIRTYPE)
    entries = list(iter_inputs([archive]))
    refused = [entry for entry in entries if isinstance(entry, Refused)]
    assert {entry.reason for entry in refused} == {"unsafe-path"}
    assert sorted(entry.item.relpath for entry in refused) == [
        "unsafe-path/__/escape.dcm", "unsafe-path/etc/cron.d/evil", "unsafe-path/ok/sub/__/__/__/x.dcm",
    ]
    skips = sorted(entry.reason for entry in entries if isinstance(entry, Skipped))
    assert skips == ["archive-link", "archive-link", "not-regular-file", "not-regular-file"]
    items = _items(entries)
    assert [item.relpath for item in items] == ["ok/a.dcm"]
    assert items[0].read_bytes(10**7) == mr_bytes
    assert len(entries) == 8  # every member but the directory is accounted for


def test_a_decompression_bomb_is_refused_and_leaves_no_copy(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        _add(handle, "zeros.dcm", bytes(8 * 2**20))
    scratch = tmp_path / "scratch"
    limits = ReadLimits(max_archive_bytes=2**20)
    entries = list(iter_inputs([archive], limits=limits, scratch=scratch))
    assert len(entries) == 1 and isinstance(entries[0], Refused)
    assert entries[0].reason == "archive-too-large"
    assert entries[0].item.member is None and entries[0].item.source == archive
    assert not list(scratch.iterdir())
    roomy = ReadLimits(max_archive_bytes=9 * 2**20)  # 8 MiB of zeros shrink 1000-fold: no ratio refuses them
    assert len(_items(list(iter_inputs([archive], limits=roomy, scratch=scratch)))) == 1
    assert release_copies() == 1


def test_a_member_larger_than_the_file_limit_is_refused_when_read(tmp_path: Path, mr_bytes: bytes) -> None:
    archive = tmp_path / "big.tar"
    with tarfile.open(archive, "w") as handle:
        _add(handle, "a.dcm", mr_bytes)
    (item,) = _items(list(iter_inputs([archive])))
    with pytest.raises(ReadLimitError) as caught:
        item.read_bytes(len(mr_bytes) - 1)
    assert caught.value.reference == "file-too-large"


def test_a_damaged_archive_is_one_item(tmp_path: Path, mr_bytes: bytes) -> None:
    archive = tmp_path / "cut.tgz"
    with tarfile.open(archive, "w:gz") as handle:
        _add(handle, "a.dcm", mr_bytes)
        _add(handle, "b.dcm", mr_bytes)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    scratch = tmp_path / "scratch"
    whole = InputItem(archive, "cut.tgz", "cut.tgz", None, archive)
    assert list(iter_inputs([archive], scratch=scratch)) == [whole]
    assert not list(scratch.iterdir())


def test_a_claim_keeps_a_tar_members_extent(tmp_path: Path) -> None:
    item = InputItem(tmp_path, "in", "x.tar/a.dcm", "a.dcm", tmp_path / "x.tar", (1536, 4096))
    assert _decode(_encode(7, item)).item == item
    claim = _decode(_encode(7, item, b"\x01" * 32))
    assert claim.item == item and claim.digest == b"\x01" * 32
    plain = InputItem(tmp_path, "in", "a.dcm", None, tmp_path / "a.dcm")
    assert _decode(_encode(3, plain)).digest is None


def test_deid_of_each_kind_of_tar_writes_what_the_directory_writes(
    run_cli: RunCli, tmp_path: Path, dicom_tree: Path, key_file: Path
) -> None:
    sources = {"dir": dicom_tree}
    for suffix, mode in (".tar", "w"), (".tgz", "w:gz"), (".tbz2", "w:bz2"), (".txz", "w:xz"):
        sources[suffix] = _pack(dicom_tree, tmp_path / f"export{suffix}", mode)
    results = {}
    for number, (name, source) in enumerate(sources.items()):
        jobs = str(1 + number % 2)  # in process, and in a pool of forked workers reading the members
        done = run_cli("deid", source, "--out", tmp_path / name, "--key", key_file, "--jobs", jobs, "--json")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert (summary["written"], summary["quarantined"]) == (6, 0)
        written = (tmp_path / name).rglob("*.dcm")
        results[name] = {path.relative_to(tmp_path / name): path.read_bytes() for path in written}
        assert not (tmp_path / f"{name}.run" / ".dicomcloak-tmp").exists()  # the inflated copy is gone
    assert all(result == results["dir"] for result in results.values())
    assert all(PATIENT_NAME.encode() not in data for data in results["dir"].values())


def test_deid_quarantines_an_unsafe_member_and_counts_a_link(
    run_cli: RunCli, tmp_path: Path, key_file: Path, mr_bytes: bytes
) -> None:
    archive = tmp_path / "mixed.tar.xz"
    with tarfile.open(archive, "w:xz") as handle:
        _add(handle, "a.dcm", mr_bytes)
        _add(handle, "../../escape.dcm", mr_bytes)
        _add(handle, "link.dcm", kind=tarfile.SYMTYPE, linkname="a.dcm")
    done = run_cli("deid", archive, "--out", tmp_path / "out", "--key", key_file, "--json")
    assert done.returncode == 1, done.stderr  # something was quarantined
    summary = json.loads(done.stdout)
    assert (summary["written"], summary["quarantined"], summary["skipped"]) == (1, 1, 1)
    assert summary["reasons"] == {"unsafe-path": 1} and summary["skip_reasons"] == {"archive-link": 1}
    kept = tmp_path / "out.run" / "quarantine" / "mixed.tar.xz" / "unsafe-path" / "__" / "__" / "escape.dcm"
    assert kept.read_bytes() == mr_bytes
    assert "escape" not in done.stderr and "mixed" not in json.dumps(summary["reasons"])
    assert not os.path.exists(tmp_path / "escape.dcm")


def test_deid_quarantines_a_bomb_under_the_site_policys_limit(
    run_cli: RunCli, tmp_path: Path, key_file: Path
) -> None:
    archive = tmp_path / "bomb.tgz"
    with tarfile.open(archive, "w:gz") as handle:
        _add(handle, "zeros.dcm", bytes(4 * 2**20))
    policy = tmp_path / "site.toml"
    policy.write_text("[sanitize.limits]\nmax_archive_bytes = 1048576\n", encoding="utf-8")
    out = tmp_path / "out"
    done = run_cli("deid", archive, "--out", out, "--key", key_file, "--policy", policy, "--json")
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["files"], summary["quarantined"], summary["reasons"]) == (1, 1, {"archive-too-large": 1})
    reason = tmp_path / "out.run" / "quarantine" / "bomb.tgz" / "bomb.tgz.reason.json"
    assert json.loads(reason.read_text())["reason"] == "archive-too-large"
    assert not (tmp_path / "out.run" / ".dicomcloak-tmp").exists()


def test_an_archive_named_through_a_link_is_read_a_swapped_one_not(tmp_path: Path, mr_bytes: bytes) -> None:
    archive = tmp_path / "real.tar"
    with tarfile.open(archive, "w") as handle:
        _add(handle, "a.dcm", mr_bytes)
    link = tmp_path / "named.tar"
    link.symlink_to(archive)
    (item,) = _items(list(iter_inputs([link])))  # the operator named it: followed
    assert item.read_bytes(10**7) == mr_bytes
    archive.rename(tmp_path / "moved.tar")
    archive.symlink_to(tmp_path / "moved.tar")  # swapped for a link after the walk judged it
    with pytest.raises(MalformedError) as caught:
        item.read_bytes(10**7)
    assert caught.value.reference == "unreadable"
