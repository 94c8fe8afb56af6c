"""Output layouts: pseudonymous and mirrored paths that always stay inside the tree."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from hypothesis import given
from hypothesis import strategies as st

from dicomcloak.io import InputItem, mirror_relpath, pseudonymous_relpath, safe_part, safe_relpath


def _inside(relpath: str) -> bool:
    path = PurePosixPath(relpath)
    return not path.is_absolute() and ".." not in path.parts and "" not in relpath.split("/")


def test_pseudonymous_layout() -> None:
    assert pseudonymous_relpath("PAT01", "2.25.1", "2.25.2", "2.25.3") == "PAT01/2.25.1/2.25.2/2.25.3.dcm"


def test_pseudonymous_layout_replaces_empty_and_unsafe_parts() -> None:
    relpath = pseudonymous_relpath("", "../..", "a/b\\c", "\x00.hidden")
    assert relpath == "unknown/_._../a_b_c/_.hidden.dcm"
    assert _inside(relpath)


@given(st.text(), st.text(), st.text(), st.text())
def test_pseudonymous_layout_always_has_four_safe_parts(a: str, b: str, c: str, d: str) -> None:
    relpath = pseudonymous_relpath(a, b, c, d)
    parts = relpath.split("/")
    assert len(parts) == 4
    assert parts[-1].endswith(".dcm")
    assert _inside(relpath)
    assert not any(part.startswith(".") for part in parts)


@given(st.text())
def test_safe_relpath_never_escapes(relpath: str) -> None:
    assert _inside(safe_relpath(relpath))


@given(st.text())
def test_safe_part_is_one_visible_component(part: str) -> None:
    safe = safe_part(part)
    assert safe
    assert "/" not in safe
    assert "\\" not in safe
    assert not safe.startswith(".")


def _item(root: str, relpath: str, member: str | None = None, source: str | None = None) -> InputItem:
    return InputItem(Path(root), Path(root).name, relpath, member, Path(source or root))


def test_mirror_one_directory_keeps_the_tree() -> None:
    item = _item("/data/in", "Smith/séries 1/IMG0001", source="/data/in/Smith/séries 1/IMG0001")
    assert mirror_relpath(item, several_roots=False) == "Smith/séries 1/IMG0001"


def test_mirror_several_roots_prefixes_the_input_name() -> None:
    item = _item("/data/in", "a/b.dcm", source="/data/in/a/b.dcm")
    assert mirror_relpath(item, several_roots=True) == "in/a/b.dcm"


def test_mirror_zip_input_uses_archive_name_and_member_path() -> None:
    item = _item("/data/export.zip", "p1/s1/x.dcm", member="./p1/s1/x.dcm")
    assert mirror_relpath(item, several_roots=False) == "export.zip/p1/s1/x.dcm"


def test_mirror_zip_inside_a_directory_is_already_prefixed() -> None:
    item = _item("/data/in", "sub/part.zip/x.dcm", member="x.dcm", source="/data/in/sub/part.zip")
    assert mirror_relpath(item, several_roots=False) == "sub/part.zip/x.dcm"


def test_mirror_single_file_ends_in_its_name() -> None:
    item = _item("/data/one.dcm", "one.dcm")
    assert mirror_relpath(item, several_roots=False) == "one.dcm"


def test_mirror_defuses_a_hostile_relpath() -> None:
    item = _item("/data/in", "../../etc/passwd", source="/data/in/x")
    relpath = mirror_relpath(item, several_roots=False)
    assert _inside(relpath)
    assert relpath.endswith("passwd")
