"""Interoperability with GDCM's ``gdcmanon`` (PS3.15 E.1.1/E.1.2), both directions, real tool, real files.

* ours -> ``gdcmanon -d``: it restores every attribute we sealed (our binding,
  signature and integrity check sit after the Modified Attributes Sequence,
  which is all gdcmanon reads); our markers it does not know, (0012,0064) and
  (0028,0303), are all it leaves. It checks none of them: it restores a seal
  spliced from another patient's file, which our ``reid`` refuses.
* ``gdcmanon -e`` -> ours: ``reid --accept-unverified`` restores its output
  exactly (its content has no integrity check, binding or signature: refused
  without the flag).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom import dcmread

from dicomcloak.api import Deidentifier, Reidentifier
from dicomcloak.engine.embedded import ENCRYPTED_ATTRIBUTES
from dicomcloak.errors import SealError
from dicomcloak.io.reader import read_dataset
from dicomcloak.io.writer import encode_dataset
from dicomcloak.keys import ProjectKey
from dicomcloak.keys.cms import load_certificate, load_owner_key, make_owner
from dicomcloak.keys.sealing import load_sealer_key, load_trusted_sealers, make_sealer
from dicomcloak.policy.model import Policy
from dicomcloak.testing.restored import differences
from dicomcloak.testing.sealing import SealingKeys

pytestmark = [
    pytest.mark.external,
    pytest.mark.skipif(shutil.which("gdcmanon") is None, reason="gdcmanon (libgdcm-tools) not installed"),
]
TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
FILES = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "SC_rgb_jpeg.dcm", "JPEG2000.dcm", "ExplVR_BigEnd.dcm"]
GDCM_LEFT_OVER = {"(0012,0064)", "(0028,0303)"}  # our markers; gdcmanon removes (0012,0062/0063) only


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, SealingKeys]:
    """The owner's key and certificate as files (for gdcmanon), with a sealer our reid trusts."""
    directory = tmp_path_factory.mktemp("owner")
    key_pem, cert_pem = make_owner()
    (directory / "k.pem").write_bytes(key_pem)
    (directory / "c.pem").write_bytes(cert_pem)
    owner = load_owner_key(key_pem, load_certificate(cert_pem, "c"), "k")
    sealer_pem, sealer_cert = make_sealer()
    trusted = load_trusted_sealers([(sealer_cert, "sealer")])
    sealing = SealingKeys(owner, load_sealer_key(sealer_pem, "sealer"), trusted, sealer_cert)
    return directory / "k.pem", directory / "c.pem", sealing


def _gdcmanon(*args: str | Path) -> None:
    command = ["gdcmanon", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", FILES)
def test_gdcmanon_restores_our_output(
    name: str, keys: tuple[Path, Path, SealingKeys], tmp_path: Path
) -> None:
    key, cert, sealing = keys
    source = read_dataset((TEST_FILES / name).read_bytes())
    outcome = Deidentifier(Policy(), ProjectKey.generate(ephemeral=True)).deidentify(source)
    sealing.sealer().seal(source, outcome)
    (tmp_path / "ours.dcm").write_bytes(encode_dataset(outcome.dataset))
    assert sealing.reidentifier().reidentify(read_dataset((tmp_path / "ours.dcm").read_bytes())).verified
    _gdcmanon("-d", "-k", key, "-c", cert, "-i", tmp_path / "ours.dcm", "-o", tmp_path / "back.dcm")
    back = dcmread(tmp_path / "back.dcm")
    found = set(differences(source, back))
    assert found <= GDCM_LEFT_OVER | {"(0012,0062)"}
    assert "PatientIdentityRemoved" not in back or "PatientIdentityRemoved" in source


@pytest.mark.filterwarnings("ignore:Expected explicit VR")  # SC_rgb_jpeg.dcm has an implicit VR item
@pytest.mark.parametrize("name", FILES)
def test_we_restore_gdcmanon_output(
    name: str, keys: tuple[Path, Path, SealingKeys], tmp_path: Path
) -> None:
    _, cert, sealing = keys
    owner = sealing.owner
    _gdcmanon("-e", "-c", cert, "-i", TEST_FILES / name, "-o", tmp_path / "theirs.dcm")
    theirs = read_dataset((tmp_path / "theirs.dcm").read_bytes())
    assert theirs.PatientIdentityRemoved == "YES"
    with pytest.raises(SealError, match="seal-unverified"):
        Reidentifier(owner).reidentify(theirs)
    with pytest.raises(SealError, match="seal-unverified"):
        sealing.reidentifier().reidentify(theirs)  # trusting our sealer says nothing about theirs
    result = Reidentifier(owner, accept_unverified=True).reidentify(theirs)
    assert not result.verified and not result.bound and result.restored
    back = read_dataset(encode_dataset(result.dataset))
    source = dcmread(TEST_FILES / name)
    assert differences(source, back) == []


def test_gdcmanon_checks_no_binding_but_our_reid_does(
    keys: tuple[Path, Path, SealingKeys], tmp_path: Path
) -> None:
    """What gdcmanon cannot check (docs/reidentification.md): a seal spliced from another patient's file."""
    key, cert, sealing = keys
    outputs = []
    for name in ("Alpha^Ann", "Bravo^Bob"):
        source = read_dataset((TEST_FILES / "CT_small.dcm").read_bytes())
        source.PatientName, source.SOPInstanceUID = name, f"1.2.826.0.1.{len(name)}{ord(name[0])}"
        source = read_dataset(encode_dataset(source))
        outcome = Deidentifier(Policy(), ProjectKey.generate(ephemeral=True)).deidentify(source)
        sealing.sealer().seal(source, outcome)
        outputs.append(outcome.dataset)
    alpha, bravo = outputs
    bravo[ENCRYPTED_ATTRIBUTES] = alpha[ENCRYPTED_ATTRIBUTES]
    (tmp_path / "spliced.dcm").write_bytes(encode_dataset(bravo))
    with pytest.raises(SealError, match="seal-mismatch"):
        sealing.reidentifier().reidentify(read_dataset((tmp_path / "spliced.dcm").read_bytes()))
    _gdcmanon("-d", "-k", key, "-c", cert, "-i", tmp_path / "spliced.dcm", "-o", tmp_path / "back.dcm")
    assert dcmread(tmp_path / "back.dcm").PatientName == "Alpha^Ann"  # gdcmanon restores A's identity
