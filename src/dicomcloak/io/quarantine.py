"""Set aside an input that cannot be processed, with the reason beside it.

Nothing is lost (architecture.md decision 6): a refused input is copied byte for
byte, never modified, to the run's quarantine directory, under the same
relative path it had in its input, with a ``.reason.json`` that says why in
reason codes, not values. Quarantine lives in the run directory, never in
the output tree, because its content is identifying: the originals, and their
names (folder and file names often hold patient names), which the reason file
repeats as the copy's path relative to the quarantine directory, never as the
input's absolute path. Nothing in the quarantine may leave the site; reports
and events name quarantined inputs by their index only. Every directory made
in it is mode 0700, whatever the umask (:mod:`dicomcloak.io.staging`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dicomcloak.errors import InputError
from dicomcloak.io.inputs import InputItem
from dicomcloak.io.layout import safe_relpath
from dicomcloak.io.staging import Tree
from dicomcloak.io.writer import copy_atomic, write_atomic
from dicomcloak.raw.limits import ReadLimits

__all__ = ["quarantine", "reason_path"]

_MAX_COPY = ReadLimits().max_quarantine_bytes


def quarantine(
    item: InputItem,
    error: InputError,
    qdir: Path,
    details: Mapping[str, Any] | None = None,
    max_bytes: int = _MAX_COPY,
) -> Path:
    """Copy `item`'s original bytes into `qdir` and record why.

    The copy goes to ``qdir/<root_name>/<relpath>`` (for a zip member, the
    member's path inside the archive) and the reason to that path plus
    ``.reason.json``. Both are written atomically. If the original cannot be
    copied (unreadable, vanished, damaged archive) the reason is still
    written, so the operator always learns what happened. `details` adds
    facts to the reason record (a ``uid-conflict`` names the input it
    conflicts with and both content digests: the quarantine holds originals,
    and their names, anyway; logs and reports never do). At most `max_bytes`
    are copied (``ReadLimits.max_quarantine_bytes``), sparsely
    (:func:`~dicomcloak.io.writer.copy_atomic`): the reason also records the
    original's size, the bytes copied and whether the copy is truncated.

    Returns
    -------
    Path
        Where the original was (or would have been) copied.

    Raises
    ------
    OutputError
        ``output-unwritable``: the reason file could not be written; the
        run cannot account for this input and should stop.
    """
    relpath = safe_relpath(item.label)
    target = qdir / relpath
    tree = Tree(qdir, private=True)
    copy = _copy_original(item, target, max_bytes, tree)
    write_atomic(reason_path(target), _reason(relpath, error, {**copy, **(details or {})}), tree=tree)
    return target


def reason_path(quarantined: Path) -> Path:
    """Return the ``.reason.json`` path that belongs to a quarantined file."""
    return quarantined.with_name(quarantined.name + ".reason.json")


def _copy_original(item: InputItem, target: Path, max_bytes: int, tree: Tree) -> dict[str, Any]:
    """Stream the original's head to `target`; the copy's facts for the reason, ``{}`` if it failed.

    Streaming, not reading whole: the input may have been refused precisely
    for being too large to hold in memory.
    """
    try:
        with item.open() as source:
            size = item.declared_size(source)
            copied, truncated = copy_atomic(target, source, max_bytes, tree=tree)
    except Exception:  # noqa: BLE001 - a failed copy must not hide the reason
        return {}
    return {"original_bytes": size, "copied_bytes": copied, "truncated": truncated}


def _reason(relpath: str, error: InputError, details: Mapping[str, Any]) -> bytes:
    """The reason record: codes, the error's value-free message, where the copy is, the caller's details."""
    record = {
        "reason": error.reference,
        "message": error.message,
        "hint": error.hint,
        "input": relpath,
        **details,
    }
    return json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
