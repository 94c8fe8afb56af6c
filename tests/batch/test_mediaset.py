"""DICOM media sets: a CD's DICOMDIR is never an instance; the output gets one of its own (PS3.10 8)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet

from dicomcloak.batch.report import report_schema
from dicomcloak.io import iter_inputs
from dicomcloak.io.inputs import InputItem, Skipped
from dicomcloak.io.mediaset import check_references, is_dicomdir
from dicomcloak.testing.schema import problems

RunCli = Callable[..., subprocess.CompletedProcess[str]]
PATIENT_NAME, PATIENT_ID = "Smithers^Waylon", "MRN-4471-XQ"  # planted by tests/conftest.py make_instance
_ISO_9660 = re.compile(r"^[A-Z0-9_]{1,8}$")


def _fileset(source: Dataset | Path) -> FileSet:
    """pydicom's FileSet, its unused staging directory removed at once (no ResourceWarning at exit)."""
    fileset = FileSet(source)
    fileset._stage["t"].cleanup()
    return fileset


def _make_cd(root: Path, factory: Callable[..., Path], n: int = 5) -> Path:
    """A CD as a modality writes it: DICOMDIR, PT000000/ST000000/... (pydicom's FileSet.write)."""
    fileset = FileSet()
    for index in range(n):
        fileset.add(dcmread(factory(root.parent / "staging" / f"{index}.dcm", index)))
    fileset.write(root)
    fileset._stage["t"].cleanup()
    shutil.rmtree(root.parent / "staging")
    return root


@pytest.fixture
def cd(tmp_path: Path, instance_factory: Callable[..., Path]) -> Path:
    return _make_cd(tmp_path / "cd", instance_factory)


def _deid(run_cli: RunCli, source: Path, out: Path, key: Path, *extra: str) -> tuple[int, dict, str]:
    done = run_cli("deid", source, "--out", out, "--key", key, "--json", *extra)
    return done.returncode, json.loads(done.stdout) if done.stdout else {}, done.stderr


def _records(dicomdir: Path) -> list[Dataset]:
    return [record for record in dcmread(dicomdir).DirectoryRecordSequence if "ReferencedFileID" in record]


def test_a_cd_deidentifies_into_a_new_valid_dicomdir(run_cli: RunCli, tmp_path: Path, cd: Path,
                                                      key_file: Path) -> None:
    original = (cd / "DICOMDIR").read_bytes()
    code, summary, stderr = _deid(run_cli, cd, tmp_path / "out", key_file, "--jobs", "2")
    assert code == 0, stderr
    assert (summary["written"], summary["quarantined"]) == (5, 0)
    assert summary["skip_reasons"] == {"media-directory": 1}
    out = tmp_path / "out"
    assert summary["media"] == {"sets": 1, "references": {"referenced": 5}, "dicomdir": str(out / "DICOMDIR"),
                                "records": 5, "not_recorded": {}}
    report = json.loads(Path(summary["report"]).read_text())
    assert problems(report, report_schema()) == []  # the media facts are part of the versioned schema
    new = (out / "DICOMDIR").read_bytes()
    # pydicom reads it as a File-set; each record points at a written output with the record's SOP UID.
    fileset = _fileset(dcmread(out / "DICOMDIR"))
    assert len(fileset) == 5
    for instance in fileset:
        assert dcmread(instance.path).SOPInstanceUID == instance.SOPInstanceUID
    referenced = {out.joinpath(*record.ReferencedFileID) for record in _records(out / "DICOMDIR")}
    written = {path for path in out.rglob("*") if path.is_file() and path.name != "DICOMDIR"}
    assert referenced == written and len(written) == 5  # each output once; the old DICOMDIR never copied
    for record in _records(out / "DICOMDIR"):
        parts = list(record.ReferencedFileID)
        assert len(parts) <= 8 and all(_ISO_9660.match(part) for part in parts)  # PS3.10 8.2
    # dcmtk reads it too, every record.
    dump = subprocess.run(["dcmdump", str(out / "DICOMDIR")], capture_output=True, text=True, check=False)
    assert dump.returncode == 0, dump.stderr
    assert dump.stdout.count('"Directory Record" IMAGE') == 5
    # None of the original PHI: names, IDs, UIDs of the CD's records.
    phi = [PATIENT_NAME, PATIENT_ID, *_record_values(cd / "DICOMDIR")]
    assert all(value.encode() not in new for value in phi)
    assert new != original
    # The same inputs and key make the same DICOMDIR (a rerun into the same output); a stray file whose
    # name is no File ID is never recorded.
    stray = out / "DICOM" / "AAAAAAAA" / "BBBBBBBB" / "CCCCCCCC" / "notes.txt"
    stray.parent.mkdir(parents=True)
    stray.write_bytes((out / referenced.pop().relative_to(out)).read_bytes())
    again, _, stderr = _deid(run_cli, cd, out, key_file)
    assert again == 0, stderr
    assert (out / "DICOMDIR").read_bytes() == new


def _record_values(dicomdir: Path) -> set[str]:
    """The identifying values of a DICOMDIR's records (and the UIDs of the instances they name)."""
    found = set()
    for record in dcmread(dicomdir).DirectoryRecordSequence:
        for keyword in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                        "ReferencedSOPInstanceUIDInFile", "AccessionNumber", "StudyID"):
            value = str(record.get(keyword, "") or "")
            if len(value) > 3:
                found.add(value)
    return found


def test_references_leaving_the_media_are_counted_never_followed(run_cli: RunCli, tmp_path: Path, cd: Path,
                                                                  key_file: Path) -> None:
    ds = dcmread(cd / "DICOMDIR")
    images = [record for record in ds.DirectoryRecordSequence if "ReferencedFileID" in record]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # '..' is not a valid CS value: that is the point
        images[0].ReferencedFileID = ["..", "..", "..", "etc", "passwd"]
        images[1].ReferencedFileID = ["PT000000", "NOWHERE"]
        images[2].ReferencedFileID = ["PT000000"]  # a directory
        ds.save_as(cd / "DICOMDIR")
    assert check_references(cd / "DICOMDIR", cd, 2**20) == {
        "referenced": 2, "media-reference-outside": 1, "media-reference-missing": 1,
        "media-reference-not-regular": 1,
    }
    code, summary, stderr = _deid(run_cli, cd, tmp_path / "out", key_file)
    assert code == 0, stderr
    assert summary["media"]["references"] == {
        "media-reference-missing": 1, "media-reference-not-regular": 1, "media-reference-outside": 1,
        "referenced": 2,
    }
    assert summary["written"] == 5 and summary["media"]["records"] == 5  # the walk found every instance
    passwd = Path("/etc/passwd").read_bytes()[:64]
    assert all(passwd not in path.read_bytes() for path in (tmp_path / "out").rglob("*") if path.is_file())


def test_pydicoms_bundled_media_sets(run_cli: RunCli, tmp_path: Path, key_file: Path) -> None:
    source = Path(str(get_testdata_file("DICOMDIR"))).parent
    cds = tmp_path / "cds"
    shutil.copytree(source, cds, ignore=shutil.ignore_patterns("DICOMDIR-*", "README*"))
    code, summary, stderr = _deid(run_cli, cds, tmp_path / "out", key_file)
    assert code == 0, stderr
    media = summary["media"]
    assert media["sets"] == 2 and summary["skip_reasons"] == {"media-directory": 2}
    assert media["references"] == {"referenced": summary["written"]}
    assert media["records"] == summary["written"]
    fileset = _fileset(tmp_path / "out" / "DICOMDIR")
    assert len(fileset) == summary["written"]
    assert all(Path(instance.path).is_file() for instance in fileset)


def test_only_a_true_dicomdir_is_a_media_directory(tmp_path: Path, cd: Path,
                                                   instance_factory: Callable[..., Path]) -> None:
    impostor = instance_factory(tmp_path / "other" / "DICOMDIR", 9)  # an image named DICOMDIR
    assert is_dicomdir(cd / "DICOMDIR") and not is_dicomdir(impostor)
    entries = list(iter_inputs([tmp_path / "other"]))
    assert entries == [InputItem(tmp_path / "other", "other", "DICOMDIR", None, impostor)]
    walked = list(iter_inputs([cd]))
    media = [entry for entry in walked if isinstance(entry, Skipped)]
    assert len(media) == 1 and media[0].reason == "media-directory" and media[0].media is not None
    assert all(entry.media for entry in walked if isinstance(entry, InputItem))
    (tmp_path / "bad").mkdir()
    broken = tmp_path / "bad" / "DICOMDIR"
    broken.write_bytes((cd / "DICOMDIR").read_bytes()[:400])  # File Meta intact, records cut
    assert is_dicomdir(broken)
    assert check_references(broken, tmp_path / "bad", 2**20) == {"media-directory-unreadable": 1}


def test_sanitize_skips_the_dicomdir_and_writes_none(run_cli: RunCli, tmp_path: Path, cd: Path) -> None:
    done = run_cli("sanitize", cd, "--out", tmp_path / "out", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["written"] == 5 and summary["media"]["dicomdir"] is None
    assert not (tmp_path / "out" / "DICOMDIR").exists()


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_a_packed_cds_dicomdir_is_skipped_not_quarantined(run_cli: RunCli, tmp_path: Path, cd: Path,
                                                          key_file: Path, kind: str) -> None:
    archive = Path(shutil.make_archive(str(tmp_path / "cd-export"), "zip" if kind == "zip" else "gztar", cd))
    code, summary, stderr = _deid(run_cli, archive, tmp_path / "out", key_file)
    assert code == 0, stderr
    assert (summary["written"], summary["skip_reasons"]) == (5, {"media-directory": 1})
    assert "media" not in summary  # no media set is rebuilt from an archive


def test_references_are_found_in_lower_case_as_iso_9660_mounts_show_them(cd: Path) -> None:
    for path in sorted(cd.rglob("*"), key=lambda path: -len(path.parts)):
        if path.name != "DICOMDIR":
            path.rename(path.with_name(path.name.lower()))
    assert (cd / "pt000000").is_dir()
    assert check_references(cd / "DICOMDIR", cd, 2**20) == {"referenced": 5}
