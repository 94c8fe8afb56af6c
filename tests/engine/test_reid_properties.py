"""Hypothesis: reidentify(deidentify(ds)) restores ds, whatever the identifying values (STYLE.md habit 10)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomcloak.api import Deidentifier, Sealer
from dicomcloak.engine.originals import decode_modified
from dicomcloak.engine.reidentify import restore
from dicomcloak.io.reader import read_dataset
from dicomcloak.io.writer import encode_dataset
from dicomcloak.keys import ProjectKey
from dicomcloak.policy.model import Policy
from dicomcloak.testing.restored import differences

from .conftest import load

DEID = Deidentifier(Policy(), ProjectKey(b"R" * 32), "props")
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\")
TEXT = st.text(alphabet=PRINTABLE, max_size=40)
NAMES = st.from_regex(r"[A-Z][a-z]{0,12}\^[A-Z][a-z]{0,12}", fullmatch=True)
DATES = st.dates().map(lambda day: day.strftime("%Y%m%d"))
PRIVATE = st.binary(max_size=64).map(lambda data: data + b"\x00" * (len(data) % 2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES, patient_id=TEXT, birth=DATES, comment=TEXT, blob=PRIVATE, referenced=st.booleans())
def test_restore_undoes_deidentification(
    name: str, patient_id: str, birth: str, comment: str, blob: bytes, referenced: bool
) -> None:
    ds = load("CT_small.dcm")
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.ImageComments = name, patient_id, birth, comment
    block = ds.private_block(0x0099, "PROPS TEST", create=True)
    block.add_new(0x01, "OB", blob)
    if referenced:
        item = Dataset()
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.ReferencedSOPInstanceUID = ds.SOPInstanceUID + ".7"
        ds.ReferencedImageSequence = Sequence([item])
    source = read_dataset(encode_dataset(ds))
    outcome = DEID.deidentify(source)
    payload = Sealer(vault=True).seal(source, outcome).payload
    restored = restore(read_dataset(encode_dataset(outcome.dataset)), decode_modified(payload))
    assert differences(source, read_dataset(encode_dataset(restored.dataset))) == []
