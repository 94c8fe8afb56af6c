"""Correctness checker for a de-identified copy of a synthetic corpus (leaks, UIDs, references, pixels).

Adapted from dicomcloak's shared evaluation harness (``shared/eval/evaluate.py``,
see ``shared/eval/README.md``); same checks, same result keys:

* parse    - every output file parses with pydicom (and which inputs have no output)
* leaks    - every answer-key PHI string searched in every element value of the
             output (file meta, all sequences recursively, private tags, bytes
             decoded as latin-1; PixelData skipped; UI elements only searched for
             UIDs): exact, case-insensitive, and dates in alternative formats
* uids     - one new Study/Series UID per original study/series, distinct across
             originals, and no original UID left anywhere in the output
* refs     - ReferencedImageSequence[0].ReferencedSOPInstanceUID equals the new
             SOPInstanceUID of the referenced file's output
* pixels   - PixelData bytes identical to input
* validate - optional: ``dciodvfy`` (Debian ``dicom3tools``) error count on a
             sample, output minus input

Output files are matched to corpus files by SHA-1 of their PixelData (unique
per corpus file); files whose pixels changed fall back to the relative path.
This is a test tool for synthetic data: its result names the injected
attributes and element paths, never the values.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from collections.abc import Sequence as SequenceT
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag

__all__ = ["date_variants", "evaluate", "main"]

PIXEL_TAGS = {Tag(0x7FE0, 0x0010), Tag(0x7FE0, 0x0008), Tag(0x7FE0, 0x0009)}
_MAX_BYTES = 1_000_000
_INDEX = re.compile(r"\[\d+\]")

#: (element path, value as text, is a UI element)
Entry = tuple[str, str, bool]


def walk(ds: Dataset, prefix: str, out: list[Entry]) -> None:
    """Append (path, text, is_ui) for every element value of ``ds``, recursively."""
    for elem in ds:
        if elem.tag in PIXEL_TAGS:
            continue
        name = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
        path = f"{prefix}{name}"
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                walk(item, f"{path}[{i}]/", out)
            continue
        text = _text(elem.value)
        if text is not None:
            out.append((path, text, elem.VR == "UI"))


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return None if len(value) > _MAX_BYTES else bytes(value).decode("latin-1")
    if isinstance(value, list | tuple | MultiValue):
        return "\\".join(str(x) for x in value)
    return str(value)


def date_variants(d: str) -> set[str]:
    """A DA value and the same date in six other common formats."""
    y, m, dd = d[:4], d[4:6], d[6:8]
    return {d, f"{y}-{m}-{dd}", f"{y}/{m}/{dd}", f"{m}/{dd}/{y}", f"{dd}.{m}.{y}",
            f"{dd}/{m}/{y}", f"{y}.{m}.{dd}"}


def phi_strings(entry: Mapping[str, str]) -> set[str]:
    """The strings that count as a leak of one answer-key entry."""
    v = entry["value"]
    if entry["kind"] == "date":
        return date_variants(v)
    if entry["kind"] == "date_text":
        return date_variants(v.replace("-", ""))
    return {v}


def dciodvfy_errors(path: Path) -> int | None:
    """Number of ``Error`` lines dciodvfy prints for ``path`` (None when it cannot run)."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        return None
    try:
        r = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return sum(1 for line in (r.stdout + r.stderr).splitlines() if line.startswith("Error"))


@dataclass
class _Mapping:
    mapped: dict[str, tuple[Path, Dataset]] = field(default_factory=dict)
    parse_fail: list[tuple[str, str]] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    pixels_changed: list[str] = field(default_factory=list)


def _by_path(rel_out: str, files: Mapping[str, Any]) -> str | None:
    for cand in (rel_out, rel_out[len("files/"):] if rel_out.startswith("files/") else None):
        if cand and cand in files:
            return cand
    return None


def _map_outputs(outdir: Path, files: Mapping[str, Any]) -> _Mapping:
    by_hash = {v["pixel_sha1"]: rel for rel, v in files.items()}
    res = _Mapping()
    for root, _, names in os.walk(outdir):
        for name in sorted(names):
            _map_one(Path(root) / name, outdir, files, by_hash, res)
    return res


def _map_one(
    p: Path, outdir: Path, files: Mapping[str, Any], by_hash: Mapping[str, str], res: _Mapping
) -> None:
    rel_out = os.path.relpath(p, outdir)
    try:
        ds = pydicom.dcmread(p)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a finding, not a crash
        res.parse_fail.append((rel_out, f"{type(exc).__name__}"))
        return
    px = ds.get("PixelData")
    # SHA-1 only as the answer key's pixel fingerprint, as in shared/eval (not a pseudonym)
    digest = hashlib.sha1(px, usedforsecurity=False).hexdigest() if px is not None else None  # noqa: TID251
    rel = by_hash.get(digest) if digest is not None else None
    if rel is None:
        rel = _by_path(rel_out, files)
        if rel is None:
            res.unmapped.append(rel_out)
            return
        res.pixels_changed.append(rel)
    if rel in res.mapped:
        res.unmapped.append(rel_out + " (duplicate)")
        return
    res.mapped[rel] = (p, ds)


@dataclass
class _Leaks:
    by_attr: collections.Counter[str] = field(default_factory=collections.Counter)
    found_in: collections.Counter[str] = field(default_factory=collections.Counter)
    total: int = 0
    exact: int = 0
    any: int = 0
    files: int = 0
    uid_left: collections.Counter[str] = field(default_factory=collections.Counter)
    files_uid_left: int = 0


def _check_phi(entries: list[Entry], phi: Iterable[Mapping[str, str]], acc: _Leaks) -> None:
    texts = [(pth, t) for pth, t, ui in entries if not ui]
    blob = "\n".join(t for _, t in texts)
    blob_l = blob.lower()
    leaked = False
    for e in phi:
        acc.total += 1
        variants = {s.lower() for s in phi_strings(e)}
        exact = e["value"] in blob
        acc.exact += exact
        if not (exact or any(s in blob_l for s in variants)):
            continue
        acc.any += 1
        leaked = True
        acc.by_attr[e["attr"] + (" (name part)" if e["kind"] == "name_part" else "")] += 1
        for pth, t in texts:
            tl = t.lower()
            if any(s in tl for s in variants):
                acc.found_in[_INDEX.sub("", pth)] += 1
    acc.files += leaked


def _check_uids(entries: list[Entry], orig_uids: Mapping[str, str], acc: _Leaks) -> None:
    left = False
    for pth, t, _ in entries:
        for u in t.split("\\"):
            u = u.strip("\x00 ")
            if u in orig_uids:
                acc.uid_left[_INDEX.sub("", pth) + f" ({orig_uids[u]})"] += 1
                left = True
    acc.files_uid_left += left


def _consistency(groups: Mapping[str, set[str]]) -> dict[str, int]:
    split = sum(1 for s in groups.values() if len(s) != 1)
    flat = collections.Counter(next(iter(s)) for s in groups.values() if len(s) == 1)
    merged = sum(c - 1 for c in flat.values() if c > 1)
    empty = sum(1 for s in groups.values() if s == {""})
    return {"groups": len(groups), "split_groups": split, "merged_groups": merged, "empty_uid_groups": empty}


def _refs(mapped: Mapping[str, tuple[Path, Dataset]], files: Mapping[str, Any],
          new_sop: Mapping[str, str]) -> dict[str, int]:
    ref: collections.Counter[str] = collections.Counter()
    for rel, (_, ds) in mapped.items():
        r = files[rel]["ref_sop"]
        if r:
            ref[_ref_state(ds, r, new_sop.get(r))] += 1
    return dict(ref)


def _ref_state(ds: Dataset, original: str, want: str | None) -> str:
    seq = ds.get("ReferencedImageSequence")
    if not seq or "ReferencedSOPInstanceUID" not in seq[0]:
        return "removed"
    got = str(seq[0].ReferencedSOPInstanceUID)
    if got == "":
        return "emptied"
    if got == original:
        return "stale_original"
    if want is not None and got == want:
        return "ok"
    return "dangling"


def _validate(corpus: Path, mapped: Mapping[str, tuple[Path, Dataset]], files: Mapping[str, Any],
              sample_size: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    by_kind: dict[str, list[str]] = collections.defaultdict(list)
    for rel in sorted(mapped):
        by_kind[files[rel]["kind"]].append(rel)
    sample: list[str] = []
    per = max(1, sample_size // max(1, len(by_kind)))
    for _, rels in sorted(by_kind.items()):
        sample += rng.sample(rels, min(per, len(rels)))
    intro = []
    for rel in sample:
        a = dciodvfy_errors(corpus / "files" / rel)
        b = dciodvfy_errors(mapped[rel][0])
        if a is not None and b is not None:
            intro.append(b - a)
    return {"sampled": len(intro), "errors_introduced_total": sum(intro),
            "files_with_new_errors": sum(1 for x in intro if x > 0)}


def _scan(mapped: Mapping[str, tuple[Path, Dataset]], files: Mapping[str, Any],
          orig_uids: Mapping[str, str], res: dict[str, Any]) -> dict[str, str]:
    acc = _Leaks()
    new_study: dict[str, set[str]] = collections.defaultdict(set)
    new_series: dict[str, set[str]] = collections.defaultdict(set)
    new_sop: dict[str, str] = {}
    for rel, (_, ds) in mapped.items():
        entries: list[Entry] = []
        walk(ds.file_meta, "meta/", entries)
        walk(ds, "", entries)
        _check_phi(entries, files[rel]["phi"], acc)
        _check_uids(entries, orig_uids, acc)
        v = files[rel]
        new_study[v["study_key"]].add(str(ds.get("StudyInstanceUID", "")))
        new_series[v["series_key"]].add(str(ds.get("SeriesInstanceUID", "")))
        new_sop[v["uids"]["SOPInstanceUID"]] = str(ds.get("SOPInstanceUID", ""))
    res.update({
        "phi_entries_checked": acc.total, "phi_leaked": acc.any, "phi_leaked_exact": acc.exact,
        "files_with_leak": acc.files, "leak_by_injected_attr": dict(acc.by_attr.most_common()),
        "leak_found_in": dict(acc.found_in.most_common(25)),
        "files_with_original_uid": acc.files_uid_left,
        "original_uid_found_in": dict(acc.uid_left.most_common(15)),
        "study_uid_consistency": _consistency(new_study),
        "series_uid_consistency": _consistency(new_series),
    })
    return new_sop


def evaluate(corpus: Path, out: Path, validate_sample: int = 0, seed: int = 0) -> dict[str, Any]:
    """Check the output tree ``out`` against the corpus ``corpus``; return the result dict.

    The keys are those of ``shared/eval/evaluate.py``: ``n_corpus``, ``n_output_files``,
    ``parse_fail``, ``missing_outputs``, ``phi_leaked``, ``files_with_original_uid``,
    ``study_uid_consistency``, ``series_uid_consistency``, ``refs``, ``pixels_intact``,
    ``pixels_changed`` and, with ``validate_sample``, ``validator``.
    """
    corpus, out = Path(corpus), Path(out)
    files: dict[str, Any] = json.loads((corpus / "answer_key.json").read_text(encoding="utf-8"))["files"]
    orig_uids = {u: k for v in files.values() for k, u in v["uids"].items()}
    m = _map_outputs(out, files)
    res: dict[str, Any] = {
        "n_corpus": len(files),
        "n_output_files": len(m.mapped) + len(m.parse_fail) + len(m.unmapped),
        "parse_fail": len(m.parse_fail), "parse_fail_examples": m.parse_fail[:5],
        "unmapped_outputs": len(m.unmapped), "missing_outputs": len(files) - len(m.mapped),
        "missing_examples": sorted(set(files) - set(m.mapped))[:5],
        "pixels_changed": len(m.pixels_changed), "pixels_intact": len(m.mapped) - len(m.pixels_changed),
        "pixels_changed_by_kind": dict(collections.Counter(files[r]["kind"] for r in m.pixels_changed)),
    }
    new_sop = _scan(m.mapped, files, orig_uids, res)
    res["refs"] = _refs(m.mapped, files, new_sop)
    if validate_sample and shutil.which("dciodvfy") and m.mapped:
        res["validator"] = _validate(corpus, m.mapped, files, validate_sample, seed)
    return res


def main(argv: SequenceT[str] | None = None) -> int:
    """Command-line entry point: print (and optionally save) the result as JSON."""
    ap = argparse.ArgumentParser(prog="python -m dicomcloak.testing.leakcheck", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--validate-sample", type=int, default=0)
    args = ap.parse_args(argv)
    text = json.dumps(evaluate(args.corpus, args.out, args.validate_sample), indent=1)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
