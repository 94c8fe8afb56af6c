"""Acceptance (issue 12, item 1): never restore another file's identity, never drop an object for its UID.

Real files that share SOP Instance UIDs with other content (dicognito's and
pydicom's, pydicom-data's 3-frame ``liver.dcm``), through the console script:
both layouts, both sealing modes and both at once, SQLite and PostgreSQL.
Every written output re-identifies to exactly its own original, element for
element; a vault record never restores onto another output.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from dicomcloak.audit import AuditLog
from dicomcloak.engine.quiet import quiet_pydicom
from dicomcloak.io.reader import read_dataset
from dicomcloak.testing.restored import compare_trees, differences

from .conftest import Shared, run_cli  # type: ignore[import-not-found]

pytestmark = [pytest.mark.acceptance]

DATA = Path(__file__).parents[1] / "data" / "dicognito"
#: Each odd entry shares the SOP Instance UID of the even one before it, with other content.
PAIRS = {
    "a_Smithers.dcm": DATA / "p01_s01_s01_i01.dcm",
    "b_Smithers_no_accession.dcm": DATA / "no_accession_p01_s01_s01_i01.dcm",
    "c_liver.dcm": Path(str(get_testdata_file("liver.dcm"))),  # 3 frames (pydicom-data)
    "d_liver_1frame.dcm": Path(str(get_testdata_file("liver_1frame.dcm"))),
    "e_CT_small.dcm": Path(str(get_testdata_file("CT_small.dcm"))),
    "f_CT_small_deflated.dcm": DATA / "CT_small_deflated.dcm",  # the same elements, deflated
}

MR_VARIANTS = ("MR_small.dcm", "MR_small_RLE.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm")
SEAL_EXIT = 4

def _sealing(owner: Path) -> list[str | Path]:
    """deid's embedded sealing: to the owner's certificate, signed by the sealer key beside it."""
    return ["--recipient", owner / "owner.cert.pem", "--sealer-key", owner / "sealer.key.pem"]


def _owning(owner: Path) -> list[str | Path]:
    """reid's embedded mode: the owner's private key, trusting the sealer beside it."""
    return ["--private-key", owner / "owner.key.pem", "--trusted-sealer", owner / "sealer.cert.pem"]



def _inputs(root: Path) -> Path:
    """The pairs, and pydicom's MR_small in four encodings (one SOP Instance UID), in a named folder."""
    folder = root / "Smithers_Waylon"
    folder.mkdir(parents=True)
    for name, source in PAIRS.items():
        shutil.copyfile(source, folder / name)
    for name in MR_VARIANTS:
        shutil.copyfile(str(get_testdata_file(name)), folder / name)
    return root


def _read(path: Path) -> Dataset:
    return read_dataset(path.read_bytes())


def _each_restores_its_own(inputs: Path, back: Path) -> None:
    """Every restored file equals one input exactly, and every input is restored once (a perfect matching).

    Outputs are matched by content, not by UID: inputs share UIDs. (CT_small and
    its deflated copy hold equal elements: either may match either.)
    """
    originals = {path: _read(path) for path in sorted(inputs.rglob("*.dcm"))}
    restored = sorted(back.rglob("*.dcm"))
    equal = {r: [o for o, ds in originals.items() if not differences(ds, _read(r))] for r in restored}
    assert all(equal.values()), [r.name for r, found in equal.items() if not found]
    match: dict[Path, Path] = {}

    def assign(r: Path, seen: set[Path]) -> bool:
        for o in equal[r]:
            if o not in seen:
                seen.add(o)
                if o not in match or assign(match[o], seen):
                    match[o] = r
                    return True
        return False

    assert all(assign(r, set()) for r in restored)
    assert len(restored) == len(originals) == len(match)


def _deid(shared: Shared, inputs: Path, out: Path, *args: str | Path) -> dict[str, object]:
    key = shared.key("key-a")
    result = run_cli("deid", inputs, "--out", out, "--key", key, "--json", "--jobs", "2", *args)
    assert "Smithers" not in result.stdout + result.stderr  # no input path in any message
    assert result.returncode in (0, 1), result.stderr
    summary: dict[str, object] = json.loads(result.stdout)
    summary["returncode"] = result.returncode
    return summary


def _owner(tmp_path: Path) -> Path:
    owner = tmp_path / "owner"
    assert run_cli("keys", "cert", "--out-dir", owner, "--no-passphrase").returncode == 0
    assert run_cli("keys", "sealer", "--out-dir", owner).returncode == 0
    return owner


def _seal_args(sealing: str, owner: Path, db_url: str) -> list[str | Path]:
    args: list[str | Path] = []
    if sealing in ("embedded", "both"):
        args += _sealing(owner)
    if sealing in ("vault", "both"):
        args += ["--vault", db_url]
    return args


def _reid_modes(sealing: str, owner: Path, db_url: str, key: Path) -> dict[str, list[str | Path]]:
    modes: dict[str, list[str | Path]] = {}
    if sealing in ("embedded", "both"):
        modes["embedded"] = _owning(owner)
    if sealing in ("vault", "both"):
        modes["vault"] = ["--vault", db_url, "--key", key]
    return modes


def _check_all_restored(shared: Shared, tmp_path: Path, layout: str, sealing: str, db_url: str) -> None:
    quiet_pydicom()
    inputs = _inputs(tmp_path / "in")
    owner = _owner(tmp_path)
    out = tmp_path / "out"
    seal = _seal_args(sealing, owner, db_url)
    summary = _deid(shared, inputs, out, "--layout", layout, "--uid-conflicts", "keep-both", *seal)
    # None dropped: 10 inputs, 4 distinct SOP Instance UIDs, 6 UID conflicts kept under UIDs of their own.
    assert (summary["written"], summary["quarantined"], summary["uid_conflicts"]) == (10, 0, 6)
    for mode, args in _reid_modes(sealing, owner, db_url, shared.key("key-a")).items():
        back = tmp_path / f"back-{mode}"
        result = run_cli("reid", out, "--out", back, "--json", *args)
        assert result.returncode == 0, result.stderr
        facts = json.loads(result.stdout)
        assert (facts["modes"], facts["unbound"]) == ({mode: 10}, 0)
        _each_restores_its_own(inputs, back)
        assert compare_trees(inputs, back) == (10, 10, [])  # the demo's checker, on shared UIDs too
        if layout == "mirror":  # the mirrored path says which input each output came from
            for path in back.rglob("*.dcm"):
                assert differences(_read(inputs / path.relative_to(back)), _read(path)) == [], path.name


@pytest.mark.parametrize("layout", ["mirror", "pseudonymous"])
@pytest.mark.parametrize("sealing", ["vault", "both"])
def test_every_output_restores_to_its_own_original(
    shared: Shared, tmp_path: Path, db_url: str, layout: str, sealing: str
) -> None:
    _check_all_restored(shared, tmp_path, layout, sealing, db_url)


@pytest.mark.parametrize("layout", ["mirror", "pseudonymous"])
def test_every_output_restores_to_its_own_original_embedded(
    shared: Shared, tmp_path: Path, layout: str
) -> None:
    _check_all_restored(shared, tmp_path, layout, "embedded", "")


def test_by_default_conflicts_are_quarantined_and_the_rest_restores(
    shared: Shared, tmp_path: Path, db_url: str
) -> None:
    quiet_pydicom()
    inputs = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    summary = _deid(shared, inputs, out, "--vault", db_url)
    assert summary["returncode"] == 1  # quarantined inputs: exit 1, as any quarantine
    human = run_cli("deid", inputs, "--out", tmp_path / "again", "--key", shared.key("key-a"))
    assert "uid conflicts       6  (quarantined; report.json lists them by index)" in human.stdout
    assert (summary["written"], summary["quarantined"], summary["uid_conflicts"]) == (4, 6, 6)
    assert summary["reasons"] == {"uid-conflict": 6}
    back = tmp_path / "back"
    result = run_cli("reid", out, "--out", back, "--vault", db_url, "--key", shared.key("key-a"), "--json")
    assert result.returncode == 0, result.stderr
    for path in back.rglob("*.dcm"):  # each matches one input exactly
        restored = _read(path)
        assert any(not differences(_read(o), restored) for o in inputs.rglob("*.dcm")), path.name


def test_two_runs_into_one_vault_restore_each_object_its_own_identity(
    shared: Shared, tmp_path: Path, db_url: str
) -> None:
    """The reported mix-up: another object under the same UID, de-identified later into the same vault."""
    quiet_pydicom()
    key = shared.key("key-a")
    outs = []
    for index, name in enumerate(("a_Smithers.dcm", "b_Smithers_no_accession.dcm")):
        folder = tmp_path / f"in-{index}" / "Smithers_Waylon"
        folder.mkdir(parents=True)
        shutil.copyfile(PAIRS[name], folder / name)
        summary = _deid(shared, folder.parent, tmp_path / f"out-{index}", "--vault", db_url)
        outs.append((folder / name, summary))
    for index, (original, summary) in enumerate(outs):
        assert summary["written"] == 1
        back = tmp_path / f"back-{index}"
        result = run_cli("reid", tmp_path / f"out-{index}", "--out", back, "--vault", db_url, "--key", key)
        assert result.returncode == 0, result.stderr
        (restored,) = back.rglob("*.dcm")
        assert differences(_read(original), _read(restored)) == []
    assert "AccessionNumber" not in dcmread(next((tmp_path / "back-1").rglob("*.dcm")))


def _refused(tmp_path: Path, target: Path, db_url: str, key: Path, audit: str | None = None) -> str:
    back = tmp_path / "refused"
    args = ["--audit", audit] if audit else []
    result = run_cli("reid", target, "--out", back, "--vault", db_url, "--key", key, *args)
    assert result.returncode == SEAL_EXIT, result.stderr
    assert not list(back.rglob("*.dcm"))  # nothing written
    return result.stderr


def test_a_record_never_restores_onto_another_output(shared: Shared, tmp_path: Path, db_url: str) -> None:
    quiet_pydicom()
    key = shared.key("key-a")
    inputs = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    _deid(shared, inputs, out, "--vault", db_url)
    outputs = {str(dcmread(p).SOPInstanceUID): p for p in sorted(out.rglob("*.dcm"))}
    audit = f"sqlite:///{tmp_path / 'audit.db'}"
    # A kept attribute edited after de-identification: not the output the record was made for.
    edited = tmp_path / "edited" / "edited.dcm"
    edited.parent.mkdir()
    ds = dcmread(next(iter(outputs.values())))
    ds.Modality = "OT" if ds.Modality != "OT" else "MR"
    ds.save_as(edited)
    assert "vault-record-mismatch" in _refused(tmp_path, edited, db_url, key, audit)
    # One output's header claiming another instance: that instance's record is not moved onto it.
    first, second = list(outputs.values())[:2]
    swapped = tmp_path / "swapped" / "swapped.dcm"
    swapped.parent.mkdir()
    ds = dcmread(first)
    other = dcmread(second)
    ds.StudyInstanceUID, ds.SOPInstanceUID = other.StudyInstanceUID, other.SOPInstanceUID
    ds.file_meta.MediaStorageSOPInstanceUID = other.SOPInstanceUID
    ds.save_as(swapped)
    assert "vault-record-mismatch" in _refused(tmp_path, swapped, db_url, key)
    log = AuditLog.open(audit)
    refused = [e["facts"] for e in log.events() if e["action"] == "reidentify-refused"]
    log.close()
    assert refused == [{"mode": "vault", "reference": "vault-record-mismatch"}]
