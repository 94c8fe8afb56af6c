"""iter_inputs over files, trees and zip archives, every entry accounted for; InputItem.read_bytes limits."""

from __future__ import annotations

import os
import pickle
import zipfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from dicomcloak.errors import MalformedError, ReadLimitError, UsageError
from dicomcloak.io import InputItem, count_inputs, iter_inputs
from dicomcloak.io.inputs import Refused, Skipped, WalkEntry


def _items(entries: Iterable[WalkEntry]) -> list[InputItem]:
    return [entry for entry in entries if isinstance(entry, InputItem)]


def _skips(entries: Iterable[WalkEntry]) -> list[str]:
    return [entry.reason for entry in entries if isinstance(entry, Skipped)]


def _tree(root: Path, mr_bytes: bytes) -> Path:
    for relpath in ["b/2.dcm", "b/10.dcm", "a.dcm", "c/d/e/deep.dcm", "IMG0001"]:
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(mr_bytes)
    (root / ".a.dcm.x8f2k.tmp").write_bytes(b"debris of a crashed write")
    (root / "b" / "empty-dir").mkdir()
    return root


def _zip(path: Path, members: dict[str, bytes], *, directories: tuple[str, ...] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        for name in directories:
            handle.writestr(zipfile.ZipInfo(name), b"")
        for name, data in members.items():
            handle.writestr(name, data)
    return path


def test_directory_walk_is_sorted_recursive_and_counts_temp_files(tmp_path: Path, mr_bytes: bytes) -> None:
    root = _tree(tmp_path / "in", mr_bytes)
    entries = list(iter_inputs([root]))
    items = _items(entries)
    assert [item.relpath for item in items] == ["IMG0001", "a.dcm", "b/10.dcm", "b/2.dcm", "c/d/e/deep.dcm"]
    assert {item.root_name for item in items} == {"in"}
    assert all(item.member is None and item.root == root for item in items)
    assert items[2].source == root / "b" / "10.dcm"
    assert items[2].read_bytes(len(mr_bytes)) == mr_bytes
    # The crashed write's debris is counted (first: "." sorts first), the empty directory is not an entry.
    assert entries[0] == Skipped("temporary-file")
    assert count_inputs([root]) == 6


def test_symbolic_links_are_never_followed_and_each_is_counted(tmp_path: Path, mr_bytes: bytes) -> None:
    """A link inside the input is a second path to what the walk reaches by its real path; one outside
    could expose any readable file; a dangling one leads nowhere. Each is one skip, never read."""
    root = _tree(tmp_path / "in", mr_bytes)
    outside = _tree(tmp_path / "outside", mr_bytes)
    (root / "link-to-outside").symlink_to(outside, target_is_directory=True)
    (root / "outside.dcm").symlink_to(outside / "a.dcm")
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "c" / "d" / "up").symlink_to(root / "c", target_is_directory=True)
    (root / "b-again").symlink_to(root / "b", target_is_directory=True)
    (root / "linked.dcm").symlink_to(root / "a.dcm")
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    (root / "self").symlink_to(root / "self")  # a loop of links: dangling too
    entries = list(iter_inputs([root]))
    assert [item.relpath for item in _items(entries)] == [
        "IMG0001", "a.dcm", "b/10.dcm", "b/2.dcm", "c/d/e/deep.dcm"
    ]
    assert Counter(_skips(entries)) == {
        "temporary-file": 1, "symlink-outside-input": 2, "symlink-duplicate": 4, "dangling-symlink": 2
    }
    assert len(entries) == 5 + 9


def test_a_symlinked_input_argument_is_followed(tmp_path: Path, mr_bytes: bytes) -> None:
    """The operator named it: a link given as an argument is the input (its links are judged against it)."""
    real = _tree(tmp_path / "real", mr_bytes)
    (real / "inner-link.dcm").symlink_to(real / "a.dcm")
    alias = tmp_path / "alias"
    alias.symlink_to(real, target_is_directory=True)
    entries = list(iter_inputs([alias]))
    assert len(_items(entries)) == 5
    assert _skips(entries) == ["temporary-file", "symlink-duplicate"]
    file_alias = tmp_path / "one.dcm"
    file_alias.symlink_to(real / "a.dcm")
    assert [item.relpath for item in _items(iter_inputs([file_alias]))] == ["one.dcm"]


def test_fifo_socket_and_device_are_skipped_without_being_opened(tmp_path: Path) -> None:
    """Opening a FIFO blocks until a writer comes: the walk must decide from the listing alone."""
    import socket

    root = tmp_path / "in"
    root.mkdir()
    os.mkfifo(root / "pipe")
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(str(root / "sock"))
        assert list(iter_inputs([root])) == [Skipped("not-regular-file"), Skipped("not-regular-file")]
    finally:
        listener.close()


@pytest.mark.parametrize("kind", ["fifo", "socket", "/dev/zero", "/dev/null", "link-to-fifo"])
def test_an_argument_that_is_not_a_file_or_directory_is_a_usage_error(tmp_path: Path, kind: str) -> None:
    """``deid /dev/zero`` read 24 GB; a FIFO argument blocked forever (issue 13): refused by ``stat``."""
    import socket

    listener = socket.socket(socket.AF_UNIX)
    path = tmp_path / "arg"
    try:
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "socket":
            listener.bind(str(path))
        elif kind == "link-to-fifo":  # the operator named the link: followed, then refused
            os.mkfifo(tmp_path / "pipe")
            path.symlink_to(tmp_path / "pipe")
        else:
            path = Path(kind)
        with pytest.raises(UsageError) as info:
            iter_inputs([tmp_path, path])  # decided before anything is yielded
        assert info.value.reference == "input-not-regular"
    finally:
        listener.close()


def test_a_dangling_link_argument_is_missing(tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UsageError) as info:
        iter_inputs([tmp_path / "dangling"])
    assert info.value.reference == "input-missing"


def test_follow_symlinks_follows_links_out_of_the_input_once(tmp_path: Path, mr_bytes: bytes) -> None:
    """``--follow-symlinks``: a link out of the input is followed (a tree walked, a file an input), each
    target once; links back into the input or into a tree already followed stay duplicates, so a cycle
    ends; a link to a FIFO is still never opened."""
    root = _tree(tmp_path / "in", mr_bytes)
    outside = _tree(tmp_path / "outside", mr_bytes)
    (outside / "back").symlink_to(root, target_is_directory=True)
    (outside / "self").symlink_to(outside, target_is_directory=True)
    (root / "link-to-outside").symlink_to(outside, target_is_directory=True)
    (root / "outside.dcm").symlink_to(outside / "a.dcm")  # inside the tree followed above: a duplicate
    (root / "zz-again").symlink_to(outside, target_is_directory=True)
    os.mkfifo(tmp_path / "pipe")
    (root / "pipe-link").symlink_to(tmp_path / "pipe")
    lone = tmp_path / "lone.dcm"
    lone.write_bytes(mr_bytes)
    (root / "lone-link.dcm").symlink_to(lone)
    entries = list(iter_inputs([root], follow_symlinks=True))
    relpaths = [item.relpath for item in _items(entries)]
    assert relpaths == [
        "IMG0001", "a.dcm", "b/10.dcm", "b/2.dcm", "c/d/e/deep.dcm",
        "link-to-outside/IMG0001", "link-to-outside/a.dcm", "link-to-outside/b/10.dcm",
        "link-to-outside/b/2.dcm", "link-to-outside/c/d/e/deep.dcm", "lone-link.dcm",
    ]
    lone_item = _items(entries)[-1]
    assert lone_item.source == lone and lone_item.read_bytes(10**6) == mr_bytes
    assert Counter(_skips(entries)) == {"temporary-file": 2, "symlink-duplicate": 4, "not-regular-file": 1}
    # Without the option, nothing outside is read.
    assert [item.relpath for item in _items(iter_inputs([root]))] == relpaths[:5]


def test_an_entry_swapped_for_a_fifo_after_the_walk_is_never_opened(tmp_path: Path, mr_bytes: bytes) -> None:
    """The walk judged a regular file; if it becomes a FIFO or a link before a worker reads it, the read
    refuses it at once (O_NONBLOCK, O_NOFOLLOW, fstat) instead of blocking or following it."""
    root = _tree(tmp_path / "in", mr_bytes)
    items = _items(iter_inputs([root]))
    fifo, linked = items[0], items[1]
    fifo.source.unlink()
    os.mkfifo(fifo.source)
    linked.source.unlink()
    linked.source.symlink_to(tmp_path / "elsewhere.dcm")
    (tmp_path / "elsewhere.dcm").write_bytes(mr_bytes)
    for item in (fifo, linked):
        with pytest.raises(MalformedError) as info:
            item.read_bytes(10**6)
        assert info.value.reference == "unreadable"
        with pytest.raises(MalformedError):
            item.open()


def test_single_file_argument(tmp_path: Path, mr_bytes: bytes) -> None:
    path = tmp_path / "x" / "one.dcm"
    path.parent.mkdir()
    path.write_bytes(mr_bytes)
    (item,) = iter_inputs([path])
    assert item == InputItem(path, "one.dcm", "one.dcm", None, path)
    assert item.label == "one.dcm/one.dcm"


def test_dot_argument_is_named_after_the_directory(
    tmp_path: Path, mr_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path / "study", mr_bytes)
    monkeypatch.chdir(root / "b")
    assert {item.root_name for item in _items(iter_inputs([Path("."), Path("..")]))} == {"b", "study"}


def test_missing_input_fails_before_anything_is_yielded(tmp_path: Path, mr_bytes: bytes) -> None:
    root = _tree(tmp_path / "in", mr_bytes)
    with pytest.raises(UsageError) as info:
        iter_inputs([root, tmp_path / "typo"])
    assert info.value.reference == "input-missing"


def test_zip_members_sorted_nested_and_unsafe_members_refused(tmp_path: Path, mr_bytes: bytes) -> None:
    archive = _zip(
        tmp_path / "export.zip",
        {
            "series2/img1.dcm": mr_bytes,
            "series1/sub/img2.dcm": mr_bytes[:-1],
            "./series1/img1.dcm": mr_bytes,
            "../evil.dcm": b"zip slip",
            "series1/../../evil2.dcm": b"zip slip",
            "/etc/evil3.dcm": b"absolute",
            "C:/evil4.dcm": b"drive",
            "..\\evil5.dcm": b"backslashes",
        },
        directories=("series1/", "series3/", "../evil-dir/"),
    )
    entries = list(iter_inputs([archive]))
    items = _items(entries)
    assert [item.relpath for item in items] == [
        "series1/img1.dcm",
        "series1/sub/img2.dcm",
        "series2/img1.dcm",
    ]
    assert [item.member for item in items] == [
        "./series1/img1.dcm",
        "series1/sub/img2.dcm",
        "series2/img1.dcm",
    ]
    assert all(item.source == archive and item.root_name == "export.zip" for item in items)
    assert items[1].read_bytes(10**6) == mr_bytes[:-1]
    refused = [entry for entry in entries if isinstance(entry, Refused)]
    assert {entry.reason for entry in refused} == {"unsafe-path"}
    assert sorted(entry.item.relpath for entry in refused) == [
        "unsafe-path/C_/evil4.dcm",
        "unsafe-path/__/evil.dcm",
        "unsafe-path/__/evil5.dcm",
        "unsafe-path/etc/evil3.dcm",
        "unsafe-path/series1/__/__/evil2.dcm",
    ]
    # Their bytes stay reachable, for the quarantine; directory entries hold none and are not entries.
    contents = {entry.item.read_bytes(100) for entry in refused}
    assert contents == {b"zip slip", b"absolute", b"drive", b"backslashes"}
    assert len(entries) == 3 + 5


def test_zip_detected_by_content_when_given_as_argument(tmp_path: Path, mr_bytes: bytes) -> None:
    archive = _zip(tmp_path / "export.bin", {"a.dcm": mr_bytes})
    (item,) = iter_inputs([archive])
    assert item.member == "a.dcm"


def test_dicom_file_named_zip_is_a_file(tmp_path: Path, mr_bytes: bytes) -> None:
    path = tmp_path / "scan.zip"
    path.write_bytes(mr_bytes)
    (item,) = iter_inputs([path])
    assert item.member is None


def test_zip_inside_a_directory_is_expanded_under_its_own_path(tmp_path: Path, mr_bytes: bytes) -> None:
    root = tmp_path / "in"
    _zip(root / "sub" / "part.ZIP", {"x/1.dcm": mr_bytes})
    (root / "sub" / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    items = _items(iter_inputs([root]))
    assert [(item.relpath, item.member) for item in items] == [
        ("sub/broken.zip", None),
        ("sub/part.ZIP/x/1.dcm", "x/1.dcm"),
    ]
    assert items[1].source == root / "sub" / "part.ZIP"
    assert items[1].read_bytes(10**6) == mr_bytes


def test_read_bytes_limits(tmp_path: Path, mr_bytes: bytes) -> None:
    path = tmp_path / "a.dcm"
    path.write_bytes(mr_bytes)
    (item,) = iter_inputs([path])
    with pytest.raises(ReadLimitError) as info:
        item.read_bytes(len(mr_bytes) - 1)
    assert info.value.reference == "file-too-large"


def test_zip_bomb_member_is_refused_without_inflating(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bomb.zip", {"bomb.dcm": bytes(50_000_000)})
    assert archive.stat().st_size < 100_000
    (item,) = iter_inputs([archive])
    with pytest.raises(ReadLimitError) as info:
        item.read_bytes(1_000_000)
    assert info.value.reference == "file-too-large"


def test_unreadable_inputs(tmp_path: Path, mr_bytes: bytes) -> None:
    path = tmp_path / "gone.dcm"
    path.write_bytes(mr_bytes)
    (item,) = iter_inputs([path])
    path.unlink()
    with pytest.raises(MalformedError) as info:
        item.read_bytes(10**6)
    assert info.value.reference == "unreadable"

    archive = _zip(tmp_path / "z.zip", {"a.dcm": mr_bytes})
    (member,) = iter_inputs([archive])
    archive.write_bytes(b"truncated archive")
    with pytest.raises(MalformedError) as info:
        member.read_bytes(10**6)
    assert info.value.reference == "unreadable"


def test_replaced_archive_is_reopened(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "z.zip", {"a.dcm": b"first"})
    (item,) = iter_inputs([archive])
    assert item.read_bytes(100) == b"first"
    _zip(archive, {"a.dcm": b"second version"})
    assert item.read_bytes(100) == b"second version"


def test_input_items_pickle(tmp_path: Path, mr_bytes: bytes) -> None:
    archive = _zip(tmp_path / "z.zip", {"a.dcm": mr_bytes})
    (item,) = iter_inputs([archive])
    assert pickle.loads(pickle.dumps(item)) == item
