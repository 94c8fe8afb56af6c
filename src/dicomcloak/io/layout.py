"""Where an output goes: pseudonymous or mirrored relative paths, always inside the tree.

Every part of an output path comes from data we do not control (a patient
pseudonym, a UID from the file, a zip member name), so each part is reduced
to a safe file name: no separators, no ``.``/``..``, no leading dot (hidden
names are what the writer's temporary files look like).
"""

from __future__ import annotations

import re

from dicomcloak.io.inputs import InputItem

__all__ = ["mirror_relpath", "pseudonymous_relpath", "safe_part", "safe_relpath"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._+=@,^ -]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNKNOWN = "unknown"


def pseudonymous_relpath(patient: str, study_uid: str, series_uid: str, sop_uid: str) -> str:
    """Return ``<patient>/<study>/<series>/<sop>.dcm`` for the default layout.

    The parts are pseudonyms and pseudonymous UIDs, so the path reveals
    nothing; grouping by patient, study and series is what PACS imports and
    researchers expect. Empty parts become ``unknown``.
    """
    parts = [safe_part(patient), safe_part(study_uid), safe_part(series_uid)]
    return "/".join([*parts, safe_part(sop_uid) + ".dcm"])


def mirror_relpath(item: InputItem, several_roots: bool) -> str:
    """Return the output path that mirrors `item`'s place in its input.

    With one input directory the tree is copied as is; with several inputs,
    or when the input is a zip archive, the input's name is kept as the top
    folder so two inputs cannot overwrite each other. The path always ends
    in the input's own file (or zip member) name.
    """
    # A member of an archive given as the argument (a compressed tar's is read from its inflated copy).
    tar_argument = item.extent is not None and item.root.is_file()
    input_is_archive = item.member is not None and (item.source == item.root or tar_argument)
    if several_roots or input_is_archive:
        return safe_relpath(f"{item.root_name}/{item.relpath}")
    return safe_relpath(item.relpath)


def safe_relpath(relpath: str) -> str:
    """Make a POSIX relative path that cannot leave the directory it is joined to.

    Lenient on purpose: mirrored names are the operator's own (any script,
    spaces included) and must stay recognisable; only what could escape
    the tree (``..``, absolute paths, control characters) is defused.
    Backslashes count as separators.
    """
    parts = [part for part in relpath.replace("\\", "/").split("/") if part not in ("", ".")]
    return "/".join(_defuse(part) for part in parts) or _UNKNOWN


def _defuse(part: str) -> str:
    text = _CONTROL.sub("_", part)
    return "__" if text == ".." else text


def safe_part(part: str) -> str:
    """Reduce one path component to a safe, visible file name.

    Characters outside a conservative set become ``_``; ``..`` and a leading
    dot are defused the same way; an empty part becomes ``unknown``.
    """
    text = _UNSAFE.sub("_", part.strip())
    if not text:
        return _UNKNOWN
    if text.startswith("."):
        text = "_" + text[1:]
    return text
