"""The raw-element fast path gives the same result as the plain Dataset path (issue 2)."""

from __future__ import annotations

import pydicom
import pytest

from dicomcloak.engine.deidentify import deidentify
from dicomcloak.io.encode import encode_file
from dicomcloak.keys import Pseudonymizer
from dicomcloak.policy.model import Policy
from dicomcloak.standard.table import Option

from .conftest import load

POLICIES = [
    Policy(),
    Policy(options=frozenset({Option.RETAIN_LONG_MODIFIED_DATES, Option.CLEAN_DESCRIPTORS})),
]


def _fully_decoded(name: str) -> pydicom.Dataset:
    """The Dataset path: every element decoded to a DataElement before de-identification."""
    ds = load(name)
    for _ in ds.iterall():
        pass  # iterating converts each raw element, at every depth
    return ds


@pytest.mark.parametrize("policy", POLICIES, ids=["basic", "modified-dates+clean"])
@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "MR_small_implicit.dcm",
                                  "MR_small_bigendian.dcm", "SC_rgb_jpeg_gdcm.dcm", "reportsi.dcm"])
def test_raw_path_equals_dataset_path(name: str, policy: Policy, pseudonymizer: Pseudonymizer) -> None:
    fast = deidentify(load(name), policy, pseudonymizer)
    slow = deidentify(_fully_decoded(name), policy, pseudonymizer)
    assert fast.changes == slow.changes
    fast_bytes, slow_bytes = encode_file(fast.dataset), encode_file(slow.dataset)
    fast_back = pydicom.dcmread(pydicom.filebase.DicomBytesIO(fast_bytes))
    slow_back = pydicom.dcmread(pydicom.filebase.DicomBytesIO(slow_bytes))
    assert fast_back == slow_back
    assert fast_back.file_meta == slow_back.file_meta
