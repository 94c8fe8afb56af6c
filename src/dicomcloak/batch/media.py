"""After a run: the input media sets' references counted, and a DICOMDIR for the de-identified set.

The walk skipped each DICOMDIR (``media-directory``) and marked the files of
its media set, which ``deid`` wrote in the media layout (``OUT/DICOM/...``,
:mod:`dicomcloak.io.mediaset`). Once every output is in place, this step reads
the headers of the files under ``OUT/DICOM`` and writes ``OUT/DICOMDIR``
atomically, its records pointing at them (PS3.10 section 8, PS3.3 Annex F).
It covers every instance there, earlier runs' into the same output too (an
output is only ever made alike, :mod:`dicomcloak.batch.rundir`). The report's
summary says what was done: ``media`` (docs/inputs.md, "Media sets").
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomcloak.batch.worker import Layout, WorkerSettings
from dicomcloak.io.inputs import MediaRef, Skipped, WalkEntry
from dicomcloak.io.mediaset import MEDIA_FOLDER, build_dicomdir, check_references
from dicomcloak.io.staging import Tree
from dicomcloak.io.writer import write_atomic

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["media_facts"]

#: An output under ``OUT/DICOM`` whose header cannot be read back: left out of the DICOMDIR.
OUTPUT_UNREADABLE = "media-output-unreadable"
_DEPTH = 4  # patient / study / series / instance below OUT/DICOM
_FILE_ID = re.compile(r"[A-Z0-9_]{1,8}\Z")


def media_facts(entries: Sequence[WalkEntry], worker: WorkerSettings, stopped: bool) -> dict[str, Any]:
    """The summary's ``media`` facts; the output's DICOMDIR rebuilt when the run de-identified a media set.

    Nothing when the walk met no DICOMDIR. Not rebuilt when the run stopped
    (its outputs are not all in place), when it only sanitized, or in the
    mirror layout (its paths are the inputs', not ISO 9660 File IDs).
    """
    found = [entry.media for entry in entries if isinstance(entry, Skipped) and entry.media is not None]
    if not found:
        return {}
    facts: dict[str, Any] = {"sets": len(found), "references": _references(found, worker)}
    if stopped or not worker.deidentify or worker.layout is not Layout.PSEUDONYMOUS:
        return {"media": {**facts, "dicomdir": None, "records": 0, "not_recorded": {}}}
    dicomdir, records, not_recorded = _rebuild(worker)
    facts |= {"dicomdir": None if dicomdir is None else str(dicomdir), "records": records,
              "not_recorded": dict(sorted(not_recorded.items()))}
    return {"media": facts}


def _references(found: list[MediaRef], worker: WorkerSettings) -> dict[str, int]:
    """Every input DICOMDIR's references by verdict (``referenced``, or why not), never followed."""
    counts: Counter[str] = Counter()
    for ref in found:
        counts.update(check_references(ref.dicomdir, ref.root, worker.read_limits.max_file_bytes))
    return dict(sorted(counts.items()))


def _rebuild(worker: WorkerSettings) -> tuple[Path | None, int, Counter[str]]:
    """Write ``OUT/DICOMDIR`` for the files under ``OUT/DICOM``; return it, its records, what was left out.

    None is written when there is no instance to record (every one quarantined, say).
    """
    out = worker.out_dir
    headers, left_out = _headers(out)
    if not headers:
        return None, 0, left_out
    uid = _fileset_uid([ds.SOPInstanceUID for _, ds in headers])
    data, failed = build_dicomdir(headers, uid)
    left_out["media-record-failed"] += failed
    target = out / "DICOMDIR"
    write_atomic(target, data, tree=Tree(out, private=worker.private_output))
    return target, len(headers) - failed, +left_out


def _headers(out: Path) -> tuple[list[tuple[str, Dataset]], Counter[str]]:
    """(File ID, header) of every output in the media layout, sorted by File ID."""
    from pydicom import dcmread

    from dicomcloak.io._entries import open_regular

    found: list[tuple[str, Dataset]] = []
    left_out: Counter[str] = Counter()
    for path in sorted((out / MEDIA_FOLDER).glob("/".join(["*"] * _DEPTH))):
        names = path.relative_to(out).parts
        if not all(map(_FILE_ID.match, names)) or not path.is_file() or path.is_symlink():
            continue  # not an output of the media layout: no record may name it (PS3.10 8.2)
        try:
            with open_regular(path) as handle, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = dcmread(handle, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - a damaged output is counted, left out of the DICOMDIR
            left_out[OUTPUT_UNREADABLE] += 1
            continue
        found.append((path.relative_to(out).as_posix(), ds))
    return found, left_out


def _fileset_uid(sop_uids: list[str]) -> str:
    """The new File-set's UID, from its instances' pseudonymous UIDs: the same set, the same DICOMDIR."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=sorted(str(uid) for uid in sop_uids)))
