"""Hypothesis properties of the pure core (STYLE.md habit 10)."""

from __future__ import annotations

import datetime as dt
import io

import pydicom
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomcloak.engine import dates
from dicomcloak.engine.deidentify import deidentify
from dicomcloak.keys import ProjectKey, Pseudonymizer
from dicomcloak.keys.pseudonyms import DateShift
from dicomcloak.policy.model import Policy
from dicomcloak.standard.table import Option

from .conftest import load

KEY_A = Pseudonymizer(ProjectKey(b"A" * 32))
UIDS = st.lists(st.integers(min_value=1, max_value=10**30), min_size=1, max_size=40, unique=True).map(
    lambda numbers: [f"1.2.826.0.1.{n}" for n in numbers]
)
SHIFTS = st.builds(DateShift, st.integers(-3650, -1), st.integers(1, 86399))
MOMENTS = st.datetimes(min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(2040, 12, 31)).map(
    lambda moment: moment.replace(microsecond=0)
)
# Planted values: distinctive uppercase words that cannot appear by chance in a dummy.
SECRETS = st.text(alphabet="BCDFGHJKLMNPQRSTVWXZ", min_size=8, max_size=12)


@given(UIDS)
def test_uid_map_is_deterministic_and_injective(uids: list[str]) -> None:
    first = [KEY_A.uid(u) for u in uids]
    again = [Pseudonymizer(ProjectKey(b"A" * 32)).uid(u) for u in uids]
    assert first == again
    assert len(set(first)) == len(uids)
    assert all(len(u) <= 64 and u.startswith("2.25.") for u in first)


@given(UIDS)
def test_other_key_or_domain_share_nothing(uids: list[str]) -> None:
    other_key = Pseudonymizer(ProjectKey(b"B" * 32))
    other_domain = Pseudonymizer(ProjectKey(b"A" * 32), "partner")
    mine = {KEY_A.uid(u) for u in uids}
    assert not mine & {other_key.uid(u) for u in uids}
    assert not mine & {other_domain.uid(u) for u in uids}


@given(MOMENTS, MOMENTS, SHIFTS)
def test_intervals_preserved_under_date_shift(a: dt.datetime, b: dt.datetime, shift: DateShift) -> None:
    def moved(moment: dt.datetime) -> dt.datetime:
        day = dates.shift_date(moment.strftime("%Y%m%d"), moment.strftime("%H%M%S"), shift)
        time = dates.shift_time(moment.strftime("%H%M%S"), moment.strftime("%Y%m%d"), shift)
        assert day is not None and time is not None
        return dt.datetime.strptime(day + time, "%Y%m%d%H%M%S")

    assert moved(b) - moved(a) == b - a
    assert moved(a) != a
    text = a.strftime("%Y%m%d%H%M%S")
    shifted = dates.shift_datetime(text, shift)
    assert shifted is not None
    assert dt.datetime.strptime(shifted, "%Y%m%d%H%M%S") - a == dt.timedelta(seconds=shift.total_seconds)


def _plant(ds: Dataset, secret: str) -> None:
    """Put ``secret`` in every string element the profile treats as identifying, nested, private."""
    basic = Policy()
    for elem in ds.iterall():
        listed = basic.rule(int(elem.tag), elem.VR).source.startswith("table:")
        if elem.VR in ("LO", "SH", "LT", "ST", "UT", "PN") and not elem.tag.is_private and listed:
            elem.value = secret[:16] if elem.VR == "SH" else secret
    nested = Dataset()
    nested.AccessionNumber = secret[:16]
    nested.RequestedProcedureDescription = f"for {secret}"
    ds.RequestAttributesSequence = Sequence([nested])
    other = Dataset()
    other.PatientID = secret
    ds.OtherPatientIDsSequence = Sequence([other])
    block = ds.private_block(0x0011, "PLANTED", create=True)
    block.add_new(0x01, "LO", secret)
    block.add_new(0x02, "LT", f"exam of {secret}")


def _all_text(ds: Dataset) -> str:
    parts = [str(elem.value) for elem in ds.iterall() if elem.VR not in ("OB", "OW", "SQ")]
    parts += [str(elem.value) for elem in ds.file_meta]
    return "\n".join(parts)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(SECRETS, st.sampled_from([(), (Option.RETAIN_LONG_MODIFIED_DATES, Option.CLEAN_DESCRIPTORS)]))
def test_no_planted_value_survives_and_output_rereads(secret: str, options: tuple[Option, ...]) -> None:
    ds = load("CT_small.dcm")
    _plant(ds, secret)
    outcome = deidentify(ds, Policy(options=frozenset(options)), KEY_A)
    buffer = io.BytesIO()
    outcome.dataset.save_as(buffer, enforce_file_format=True)
    back = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    assert secret.lower() not in _all_text(back).lower()
    assert secret[:16].lower() not in _all_text(back).lower()
    assert back.PixelData == ds.PixelData
