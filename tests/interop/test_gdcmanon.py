"""Interoperability with GDCM's ``gdcmanon`` (PS3.15 E.1.1/E.1.2), both directions, real tool, real files.

* ours -> ``gdcmanon -d``: it restores every attribute we sealed (our integrity
  check sits after the Modified Attributes Sequence, which gdcmanon ignores);
  our markers it does not know, (0012,0064) and (0028,0303), are all it leaves.
* ``gdcmanon -e`` -> ours: ``reid --accept-unverified`` restores its output
  exactly (its content has no integrity check: refused without the flag).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom import dcmread

from dicomcloak.api import Deidentifier, Reidentifier, Sealer
from dicomcloak.errors import SealError
from dicomcloak.io.reader import read_dataset
from dicomcloak.io.writer import encode_dataset
from dicomcloak.keys import ProjectKey
from dicomcloak.keys.cms import OwnerKey, load_certificate, load_owner_key, make_owner
from dicomcloak.policy.model import Policy
from dicomcloak.testing.restored import differences

pytestmark = [
    pytest.mark.external,
    pytest.mark.skipif(shutil.which("gdcmanon") is None, reason="gdcmanon (libgdcm-tools) not installed"),
]
TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
FILES = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "SC_rgb_jpeg.dcm", "JPEG2000.dcm", "ExplVR_BigEnd.dcm"]
GDCM_LEFT_OVER = {"(0012,0064)", "(0028,0303)"}  # our markers; gdcmanon removes (0012,0062/0063) only


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, OwnerKey]:
    directory = tmp_path_factory.mktemp("owner")
    key_pem, cert_pem = make_owner()
    (directory / "k.pem").write_bytes(key_pem)
    (directory / "c.pem").write_bytes(cert_pem)
    owner = load_owner_key(key_pem, load_certificate(cert_pem, "c"), "k")
    return directory / "k.pem", directory / "c.pem", owner


def _gdcmanon(*args: str | Path) -> None:
    command = ["gdcmanon", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", FILES)
def test_gdcmanon_restores_our_output(name: str, keys: tuple[Path, Path, OwnerKey], tmp_path: Path) -> None:
    key, cert, owner = keys
    source = read_dataset((TEST_FILES / name).read_bytes())
    outcome = Deidentifier(Policy(), ProjectKey.generate(ephemeral=True)).deidentify(source)
    Sealer([owner.certificate]).seal(source, outcome)
    (tmp_path / "ours.dcm").write_bytes(encode_dataset(outcome.dataset))
    _gdcmanon("-d", "-k", key, "-c", cert, "-i", tmp_path / "ours.dcm", "-o", tmp_path / "back.dcm")
    back = dcmread(tmp_path / "back.dcm")
    found = set(differences(source, back))
    assert found <= GDCM_LEFT_OVER | {"(0012,0062)"}
    assert "PatientIdentityRemoved" not in back or "PatientIdentityRemoved" in source


@pytest.mark.filterwarnings("ignore:Expected explicit VR")  # SC_rgb_jpeg.dcm has an implicit VR item
@pytest.mark.parametrize("name", FILES)
def test_we_restore_gdcmanon_output(name: str, keys: tuple[Path, Path, OwnerKey], tmp_path: Path) -> None:
    _, cert, owner = keys
    _gdcmanon("-e", "-c", cert, "-i", TEST_FILES / name, "-o", tmp_path / "theirs.dcm")
    theirs = read_dataset((tmp_path / "theirs.dcm").read_bytes())
    assert theirs.PatientIdentityRemoved == "YES"
    with pytest.raises(SealError, match="seal-unverified"):
        Reidentifier(owner).reidentify(theirs)
    result = Reidentifier(owner, accept_unverified=True).reidentify(theirs)
    assert not result.verified and result.restored
    back = read_dataset(encode_dataset(result.dataset))
    source = dcmread(TEST_FILES / name)
    assert differences(source, back) == []
