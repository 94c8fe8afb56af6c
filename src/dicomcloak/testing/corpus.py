"""A reproducible synthetic DICOM corpus with injected PHI and an answer key.

Adapted from dicomcloak's shared evaluation harness (``shared/eval/make_corpus.py``,
see ``shared/eval/README.md``), typed, and with one change: UIDs are derived
from the seed (``generate_uid(entropy_srcs=...)``) instead of drawn at random,
so the same seed always gives byte-identical corpora. The fake PHI values are
drawn in the same order as the original, so for a given seed they match the
shared generator's.

Layout: ``<out>/files/P<pat>/S<study>/R<series>/I<inst>.dcm`` plus
``<out>/answer_key.json`` listing, per file, every injected PHI string with the
attribute it went into, the original UIDs, the pixel hash and the reference to
the previous instance of the series.

Run it as ``python -m dicomcloak.testing.corpus --out DIR --n N [--seed S] [--max-big K]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from collections.abc import Sequence as SequenceT
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, generate_uid

from dicomcloak.testing.templates import (
    CITIES,
    STREETS,
    Templates,
    fake_date,
    fake_person,
    fake_time,
    fake_word,
    pick_kind,
)

__all__ = ["build_corpus", "main"]

PhiEntry = dict[str, str]


class _UidSource:
    """Deterministic UIDs: a hash of (seed, running number) under pydicom's prefix."""

    def __init__(self, seed: int) -> None:
        self._seed = str(seed)
        self._count = 0

    def __call__(self) -> str:
        self._count += 1
        return str(generate_uid(entropy_srcs=["dicomcloak-corpus", self._seed, str(self._count)]))


@dataclass(frozen=True)
class _Patient:
    number: int
    fam: str
    giv: str
    pname: str
    pid: str
    other_pid: str
    birth: str
    addr: str
    phone: str
    mother: str
    uid: str


@dataclass(frozen=True)
class _Study:
    number: int
    uid: str
    sdate: str
    stime: str
    acc: str
    inst: str
    inst_addr: str
    refphys: tuple[str, str]
    oper: tuple[str, str]
    perf: tuple[str, str]
    station: str
    req_id: str
    sps_id: str
    study_id: str


@dataclass
class _Series:
    number: int
    uid: str
    for_uid: str
    kind: str
    count: int
    setime: str
    prev_sop: str | None = None
    prev_cls: str | None = None


@dataclass
class _State:
    rng: random.Random
    uid: _UidSource
    n: int
    max_big: int
    used: set[str] = field(default_factory=set)
    idx: int = 0
    n_big: int = 0
    total_bytes: int = 0


def _new_patient(st: _State, number: int) -> _Patient:
    rng = st.rng
    fam, giv = fake_person(rng, st.used)
    mid = rng.choice("ABCDEFGHJKLMNPRSTVW")
    pid = f"PID{rng.randint(10**7, 10**8 - 1)}"
    other_pid = f"MRN{rng.randint(10**6, 10**7 - 1)}"
    birth = fake_date(rng, 1930, 2005)
    addr = f"{rng.randint(10, 9999)} {rng.choice(STREETS)} Road, {rng.choice(CITIES)}"
    phone = f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
    mother = f"{fake_word(rng, 3).upper()}^{fake_word(rng, 2).upper()}"
    return _Patient(number, fam, giv, f"{fam}^{giv}^{mid}", pid, other_pid, birth, addr, phone,
                    mother, st.uid())


def _new_study(st: _State, number: int) -> _Study:
    rng = st.rng
    uid = st.uid()
    sdate = fake_date(rng, 2015, 2023)
    stime = fake_time(rng)
    acc = f"ACC{rng.randint(10**6, 10**7 - 1)}"
    inst = f"{fake_word(rng, 2).capitalize()} Memorial Hospital"
    inst_addr = f"{rng.randint(10, 999)} {rng.choice(STREETS)} Avenue, {rng.choice(CITIES)}"
    refphys = fake_person(rng, st.used)
    oper = fake_person(rng, st.used)
    perf = fake_person(rng, st.used)
    station = f"STN{fake_word(rng, 2).upper()}"
    req_id = f"RQ{rng.randint(10**5, 10**6 - 1)}"
    sps_id = f"SPS{rng.randint(10**5, 10**6 - 1)}"
    study_id = f"SID{rng.randint(1000, 9999)}"
    return _Study(number, uid, sdate, stime, acc, inst, inst_addr, refphys, oper, perf, station,
                  req_id, sps_id, study_id)


def _new_series(st: _State, number: int) -> _Series:
    uid, for_uid = st.uid(), st.uid()
    big = bool(st.max_big) and st.n_big < st.max_big and st.idx >= (st.n_big + 0.5) * st.n / st.max_big
    if big:
        kind, count = "mf_big", 1
        st.n_big += 1
    else:
        kind = pick_kind(st.rng)
        small = kind in ("ct128", "mr64", "ct512")
        count = st.rng.randint(3, 30) if small else st.rng.randint(1, 6)
    return _Series(number, uid, for_uid, kind, count, fake_time(st.rng))


def _add(key: list[PhiEntry], attr: str, value: str, kind: str) -> None:
    key.append({"attr": attr, "value": value, "kind": kind})


def _patient_attrs(ds: Dataset, p: _Patient, key: list[PhiEntry]) -> None:
    ds.PatientName = p.pname
    _add(key, "PatientName", p.pname, "name")
    _add(key, "PatientName", p.fam, "name_part")
    _add(key, "PatientName", p.giv, "name_part")
    ds.PatientID = p.pid
    _add(key, "PatientID", p.pid, "id")
    ds.PatientBirthDate = p.birth
    _add(key, "PatientBirthDate", p.birth, "date")


def _patient_contact(ds: Dataset, p: _Patient, key: list[PhiEntry]) -> None:
    ds.PatientAddress = p.addr
    _add(key, "PatientAddress", p.addr, "text")
    ds.PatientTelephoneNumbers = p.phone
    _add(key, "PatientTelephoneNumbers", p.phone, "id")
    ds.PatientMotherBirthName = p.mother
    _add(key, "PatientMotherBirthName", p.mother, "name")
    ds.OtherPatientIDs = p.other_pid
    _add(key, "OtherPatientIDs", p.other_pid, "id")
    ds.OtherPatientNames = f"{p.fam}^{p.giv}^^^JR"


def _study_attrs(ds: Dataset, s: _Study, key: list[PhiEntry]) -> None:
    ds.AccessionNumber = s.acc
    _add(key, "AccessionNumber", s.acc, "id")
    ds.InstitutionName = s.inst
    _add(key, "InstitutionName", s.inst, "text")
    ds.InstitutionAddress = s.inst_addr
    _add(key, "InstitutionAddress", s.inst_addr, "text")
    for attr, (fam, giv) in (("ReferringPhysicianName", s.refphys), ("OperatorsName", s.oper),
                             ("PerformingPhysicianName", s.perf)):
        setattr(ds, attr, f"{fam}^{giv}")
        _add(key, attr, f"{fam}^{giv}", "name")
        _add(key, attr, fam, "name_part")
    ds.StationName = s.station
    _add(key, "StationName", s.station, "id")


def _dates(ds: Dataset, s: _Study, se: _Series, key: list[PhiEntry]) -> None:
    ds.StudyDate = s.sdate
    _add(key, "StudyDate", s.sdate, "date")
    ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = s.sdate
    ds.StudyTime = s.stime
    _add(key, "StudyTime", s.stime, "time")
    ds.SeriesTime = se.setime
    _add(key, "SeriesTime", se.setime, "time")
    ds.AcquisitionTime = ds.ContentTime = se.setime


def _free_text(ds: Dataset, p: _Patient, s: _Study, key: list[PhiEntry]) -> None:
    giv, fam, b = p.giv.capitalize(), p.fam.capitalize(), p.birth
    ds.StudyDescription = f"CT CHEST FOLLOWUP {giv} {fam}"
    ds.SeriesDescription = f"AX 5mm {s.station}"
    ds.ImageComments = f"Pt {giv} {fam} (MRN {p.pid}) DOB {b[:4]}-{b[4:6]}-{b[6:]} called back"
    _add(key, "ImageComments", f"{b[:4]}-{b[4:6]}-{b[6:]}", "date_text")
    ds.PatientComments = f"Lives at {p.addr}; phone {p.phone}"
    ds.AdditionalPatientHistory = f"Referred by Dr {s.refphys[0].capitalize()} on {s.sdate}"


def _item(**attrs: Any) -> Dataset:
    item = Dataset()
    for keyword, value in attrs.items():
        setattr(item, keyword, value)
    return item


def _sequences(ds: Dataset, p: _Patient, s: _Study, key: list[PhiEntry]) -> None:
    fam, giv = p.fam.capitalize(), p.giv.capitalize()
    ds.RequestAttributesSequence = Sequence([_item(
        RequestedProcedureID=s.req_id, ScheduledProcedureStepID=s.sps_id, AccessionNumber=s.acc,
        RequestedProcedureDescription=f"CT chest for {fam}, {giv}",
        ScheduledProcedureStepDescription=f"Scheduled by {s.oper[0].capitalize()}")])
    _add(key, "RequestAttributesSequence/RequestedProcedureID", s.req_id, "id")
    _add(key, "RequestAttributesSequence/ScheduledProcedureStepID", s.sps_id, "id")
    ds.ReferencedPatientSequence = Sequence([_item(  # Detached Patient Management
        ReferencedSOPClassUID="1.2.840.10008.3.1.2.1.4", ReferencedSOPInstanceUID=p.uid)])
    ds.OtherPatientIDsSequence = Sequence([_item(
        PatientID=p.other_pid, IssuerOfPatientID=s.inst, TypeOfPatientID="TEXT")])
    blk = ds.private_block(0x0011, "SYNTHPHI PRIVATE", create=True)
    blk.add_new(0x01, "LO", f"{p.fam}^{p.giv}")
    blk.add_new(0x02, "LO", p.pid)
    blk.add_new(0x03, "LT", f"Exam of {p.giv} {p.fam} born {p.birth}")


def _references(ds: Dataset, s: _Study, se: _Series) -> None:
    if se.prev_sop is not None:
        ds.ReferencedImageSequence = Sequence([_item(
            ReferencedSOPClassUID=se.prev_cls, ReferencedSOPInstanceUID=se.prev_sop)])
    ds.ReferencedStudySequence = Sequence([_item(
        ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1", ReferencedSOPInstanceUID=s.uid)])


def _identify(ds: Dataset, sop: str, s: _Study, se: _Series, i: int) -> None:
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.StudyInstanceUID = s.uid
    ds.SeriesInstanceUID = se.uid
    ds.FrameOfReferenceUID = se.for_uid
    ds.InstanceNumber = i + 1
    ds.SeriesNumber = se.number
    ds.StudyID = s.study_id


def _instance(
    st: _State, tpl: Templates, parts: tuple[_Patient, _Study, _Series], i: int
) -> tuple[Dataset, str, list[PhiEntry]]:
    p, s, se = parts
    nframes = st.rng.randint(10, 40) if se.kind == "mf_big" else None
    ds = tpl.make(se.kind, st.idx, nframes)
    key: list[PhiEntry] = []
    sop = st.uid()
    _identify(ds, sop, s, se, i)
    _patient_attrs(ds, p, key)
    ds.PatientSex = st.rng.choice("MF")
    _patient_contact(ds, p, key)
    _study_attrs(ds, s, key)
    _dates(ds, s, se, key)
    _free_text(ds, p, s, key)
    _sequences(ds, p, s, key)
    _references(ds, s, se)
    return ds, sop, key


def _write(st: _State, files_dir: Path, parts: tuple[_Patient, _Study, _Series], i: int,
           tpl: Templates) -> tuple[str, dict[str, Any]]:
    p, s, se = parts
    ds, sop, key = _instance(st, tpl, parts, i)
    rel = f"P{p.number:05d}/S{s.number}/R{se.number}/I{i + 1:04d}.dcm"
    path = files_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    size = path.stat().st_size
    st.total_bytes += size
    entry = {
        "kind": se.kind, "size": size,
        # SHA-1 only as the answer key's pixel fingerprint, as in shared/eval (not a pseudonym)
        "pixel_sha1": hashlib.sha1(ds.PixelData, usedforsecurity=False).hexdigest(),  # noqa: TID251
        "patient": p.number, "study_key": f"P{p.number}/S{s.number}",
        "series_key": f"P{p.number}/S{s.number}/R{se.number}",
        "uids": {"StudyInstanceUID": s.uid, "SeriesInstanceUID": se.uid, "SOPInstanceUID": sop,
                 "FrameOfReferenceUID": se.for_uid, "PatientUID": p.uid},
        "ref_sop": se.prev_sop,
        "phi": key,
    }
    se.prev_sop, se.prev_cls = sop, str(ds.SOPClassUID)
    st.idx += 1
    return rel, entry


def build_corpus(out: Path, n: int, seed: int = 1, max_big: int = 0) -> Path:
    """Write ``n`` synthetic files and ``answer_key.json`` under ``out``; return ``out``.

    Parameters
    ----------
    out:
        Target directory (created); files go to ``out/files``.
    n:
        Number of instances.
    seed:
        Everything (PHI values, kinds, UIDs) is a function of the seed.
    max_big:
        How many 5-20 MB multi-frame instances to spread through the corpus.
    """
    st = _State(random.Random(seed), _UidSource(seed), n, max_big)
    tpl = Templates()
    files_dir = out / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, Any]] = {}
    pat = 0
    while st.idx < n:
        pat += 1
        patient = _new_patient(st, pat)
        for study_no in range(1, st.rng.randint(1, 2) + 1):
            if st.idx >= n:
                break
            study = _new_study(st, study_no)
            for series_no in range(1, st.rng.randint(1, 3) + 1):
                if st.idx >= n:
                    break
                series = _new_series(st, series_no)
                for i in range(series.count):
                    if st.idx >= n:
                        break
                    rel, entry = _write(st, files_dir, (patient, study, series), i, tpl)
                    files[rel] = entry
    answer = {"generator": "dicomcloak.testing.corpus", "seed": seed, "n": n, "files": files,
              "total_bytes": st.total_bytes}
    (out / "answer_key.json").write_text(json.dumps(answer), encoding="utf-8")
    return out


def summarize(out: Path) -> str:
    """One line per kind: files and megabytes, from the answer key."""
    answer = json.loads((out / "answer_key.json").read_text(encoding="utf-8"))
    kinds: dict[str, list[int]] = {}
    for entry in answer["files"].values():
        acc = kinds.setdefault(entry["kind"], [0, 0])
        acc[0] += 1
        acc[1] += entry["size"]
    lines = [f"wrote {len(answer['files'])} files, {answer['total_bytes'] / 1e6:.1f} MB"]
    lines += [f"  {k:12s} {c:6d} files {b / 1e6:9.1f} MB" for k, (c, b) in sorted(kinds.items())]
    return "\n".join(lines)


def main(argv: SequenceT[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    ap = argparse.ArgumentParser(prog="python -m dicomcloak.testing.corpus", description=__doc__)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-big", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    build_corpus(args.out, args.n, args.seed, args.max_big)
    print(summarize(args.out))
    print(f"in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
