"""Temporary files out of the outputs' sight, named by their process; a dead process's removed, no other.

Real processes throughout: a pid that has exited (and been reaped), a zombie
(exited, not reaped: what a killed pool leaves for a moment), a live child,
and names written as another host would write them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import pytest

from dicomcloak.io.grouped import GroupedWriter
from dicomcloak.io.staging import (
    CLAIMS_PREFIX,
    TEMP_DIR_NAME,
    Owner,
    Tree,
    makedirs_private,
    owner,
    owner_of,
    remove_stale,
    temp_name,
)
from dicomcloak.io.writer import atomic_file, copy_atomic, write_atomic


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _name_of(pid: int, host_and_namespace: str | None = None) -> str:
    """A temporary name as process ``pid`` of this host (or of ``host_and_namespace``) makes it."""
    here = host_and_namespace or owner().rsplit(".", 1)[0]
    return f".dicomcloak.{here}.{pid}.7.tmp"


def test_a_temporary_name_says_which_process_of_which_host_made_it() -> None:
    name = temp_name()
    assert name.startswith(".dicomcloak.") and name.endswith(".tmp")  # hidden; the input walk skips it
    found = owner_of(name)
    assert found is not None and found.pid == os.getpid()
    assert owner() == f"{found.host}.{found.namespace}.{found.pid}"
    assert "." not in found.host
    assert temp_name() != name


@pytest.mark.parametrize(
    "name",
    [
        ".2.25.1.dcm.123-456-7.tmp",  # an older version's: no host in it
        ".dicomcloak.x.y.z.1.tmp",
        ".dicomcloak.h.1.2.tmp",
        "img.dcm",
        ".dicomcloak..tmp",
    ],
)
def test_names_of_others_are_not_read_as_ours(name: str) -> None:
    assert owner_of(name) is None


def test_only_gone_processes_of_this_host_count_as_gone() -> None:
    here = owner().rsplit(".", 1)[0]
    host, namespace = here.split(".")
    dead = _dead_pid()
    assert Owner(host, namespace, dead).is_gone()
    assert not Owner(host, namespace, os.getpid()).is_gone()
    assert not Owner(host, namespace, os.getppid()).is_gone()
    assert not Owner("another-host", namespace, dead).is_gone()  # its pids say nothing here
    assert not Owner(host, "1", dead).is_gone()  # another pid namespace (a container) likewise
    assert not Owner(host, namespace, 0).is_gone()


def test_a_zombie_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # not waited for: a zombie once it exits
    try:
        deadline = time.monotonic() + 30
        while b") Z" not in Path(f"/proc/{child.pid}/stat").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        here = owner().rsplit(".", 1)[0].split(".")
        assert Owner(here[0], here[1], child.pid).is_gone()
    finally:
        child.wait()


def test_remove_stale_removes_the_debris_of_gone_processes_only(tmp_path: Path) -> None:
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _dead_pid()
        names = {
            "dead": _name_of(dead),
            "live": _name_of(live.pid),
            "mine": _name_of(os.getpid()),
            "other host": _name_of(dead, "elsewhere.4026531836"),
            "not ours": "notes.txt",
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b"x")
        (tmp_path / f"{CLAIMS_PREFIX}{owner().rsplit('.', 1)[0]}.{dead}.abc123").mkdir()
        assert remove_stale(tmp_path) == 1
        assert sorted(p.name for p in tmp_path.iterdir() if not p.is_dir()) == sorted(
            name for key, name in names.items() if key != "dead"
        )
        claims = tmp_path / f"{CLAIMS_PREFIX}{owner().rsplit('.', 1)[0]}.{dead}.abc123"
        (claims / "i0123").write_bytes(b"")
        assert remove_stale(tmp_path, CLAIMS_PREFIX, "") == 1
        assert not claims.exists()
    finally:
        live.kill()
        live.wait()


def test_remove_stale_of_a_missing_directory_is_nothing(tmp_path: Path) -> None:
    assert remove_stale(tmp_path / "missing") == 0


def test_writes_into_a_tree_stage_in_its_hidden_directory(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "out")
    target = tree.root / "P1" / "S1" / "a.dcm"
    with atomic_file(target, tree=tree) as handle:
        handle.write(b"data")
        (staged,) = tree.staging.iterdir()  # while it is written: in the staging directory only
        assert owner_of(staged.name) is not None
        assert list(target.parent.iterdir()) == []
    assert target.read_bytes() == b"data"
    assert list(tree.staging.iterdir()) == []
    assert tree.staging.stat().st_mode & 0o777 == 0o700
    tree.tidy()
    assert sorted(p.relative_to(tree.root).as_posix() for p in tree.root.rglob("*")) == [
        "P1", "P1/S1", "P1/S1/a.dcm"
    ]


def test_a_grouped_writer_stages_its_pending_files_out_of_the_tree(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "out")
    writer = GroupedWriter(max_files=100, tree=tree)
    for number in range(5):
        writer.submit(tree.root / f"d{number % 2}" / f"{number}.dcm", b"x" * 100)
    assert len(list(tree.staging.iterdir())) == 5
    assert list(tree.root.rglob("*.dcm")) == []  # nothing under a final name before the commit
    writer.close()
    assert len(list(tree.root.rglob("*.dcm"))) == 5
    assert list(tree.staging.iterdir()) == []


def test_without_a_tree_the_temporary_file_is_beside_the_target(tmp_path: Path) -> None:
    with atomic_file(tmp_path / "a.json") as handle:
        handle.write(b"{}")
        (staged,) = [p for p in tmp_path.iterdir() if p.name != "a.json"]
        assert staged.parent == tmp_path and owner_of(staged.name) is not None
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs a second file system (tmpfs at /dev/shm)")
def test_a_directory_on_another_file_system_stages_beside_its_outputs(tmp_path: Path) -> None:
    elsewhere = Path("/dev/shm") / f"dicomcloak-test-{os.getpid()}-{tmp_path.name}"
    elsewhere.mkdir()
    try:
        if elsewhere.stat().st_dev == tmp_path.stat().st_dev:
            pytest.skip("/dev/shm is on the same file system here")
        tree = Tree(tmp_path / "out")
        tree.root.mkdir()
        (tree.root / "mounted").symlink_to(elsewhere)  # a mount point inside the tree, as seen by rename
        write_atomic(tree.root / "mounted" / "a.dcm", b"data", tree=tree)
        copy_atomic(tree.root / "here.dcm", BytesIO(b"copied"), tree=tree)
        assert (elsewhere / "a.dcm").read_bytes() == b"data"
        assert (tree.root / "here.dcm").read_bytes() == b"copied"
        assert list(elsewhere.iterdir()) == [elsewhere / "a.dcm"]
    finally:
        shutil.rmtree(elsewhere)


def test_a_staging_directory_removed_meanwhile_is_made_again(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "out")
    write_atomic(tree.root / "a.dcm", b"1", tree=tree)
    tree.tidy()  # another run finishing removes the empty staging directory
    assert not tree.staging.exists()
    write_atomic(tree.root / "b.dcm", b"2", tree=tree)
    assert (tree.root / "b.dcm").read_bytes() == b"2"


def test_private_directories_are_0700_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        makedirs_private(tmp_path / "a" / "b" / "c")
        Tree(tmp_path / "q", private=True).make_dirs(tmp_path / "q" / "in" / "DOE_JOHN")
        os.umask(0o277)  # an umask that takes the owner's own write bit away
        makedirs_private(tmp_path / "d")
    finally:
        os.umask(previous)
    for relative in ("a", "a/b", "a/b/c", "q", "q/in", "q/in/DOE_JOHN", "d"):
        assert (tmp_path / relative).stat().st_mode & 0o777 == 0o700, relative


def test_existing_directories_keep_their_mode(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir(mode=0o750)
    os.chmod(tmp_path / "shared", 0o750)
    makedirs_private(tmp_path / "shared" / "mine")
    assert (tmp_path / "shared").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "shared" / "mine").stat().st_mode & 0o777 == 0o700
    assert TEMP_DIR_NAME.startswith(".")


def test_a_file_where_a_private_directory_must_go_is_an_error(tmp_path: Path) -> None:
    """As ``os.makedirs``: the caller reports the run directory that is a file (output-unwritable)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where a directory must go")
    for path in (blocker, blocker / "run"):
        with pytest.raises(FileExistsError):
            makedirs_private(path)
    assert blocker.is_file()
