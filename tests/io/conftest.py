"""Real DICOM bytes for the io tests, with a planted, distinctive patient name."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

#: A value that must never appear in an error message, a reason file or a log.
PLANTED_NAME = "Quarantotto^Zebedee"


def encode(source: str, *, undefined_sequences: bool = False) -> bytes:
    """Return pydicom test file `source` re-encoded with :data:`PLANTED_NAME` planted."""
    ds = dcmread(str(get_testdata_file(source)))
    ds.PatientName = PLANTED_NAME
    if undefined_sequences:
        for elem in ds.iterall():
            if elem.VR == "SQ":
                elem.value.is_undefined_length = True
                for item in elem.value:
                    item.is_undefined_length_sequence_item = True
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def planted_name() -> str:
    """:data:`PLANTED_NAME`, for assertions that it never leaks."""
    return PLANTED_NAME


@pytest.fixture(scope="session")
def mr_bytes() -> bytes:
    """MR_small (Explicit VR Little Endian, native pixels) with a planted name."""
    return encode("MR_small.dcm")


@pytest.fixture(scope="session")
def rtplan_bytes() -> bytes:
    """rtplan (Implicit VR Little Endian, undefined-length sequences) with a planted name."""
    return encode("rtplan.dcm", undefined_sequences=True)


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    """JPEG2000 (encapsulated, undefined-length Pixel Data) with a planted name."""
    return encode("JPEG2000.dcm")
