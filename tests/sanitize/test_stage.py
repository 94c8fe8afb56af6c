"""The sanitize stage on real datasets: what it removes, records, keeps, refuses; input untouched."""

from __future__ import annotations

import struct
import warnings
from dataclasses import replace
from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence

from dicomcloak import Deidentifier, Option
from dicomcloak.errors import InputError, UnsafeContentError
from dicomcloak.io import read_dataset
from dicomcloak.io.writer import encode_dataset
from dicomcloak.keys import ProjectKey
from dicomcloak.policy import Disposition, Policy, SanitizeSettings
from dicomcloak.raw.limits import ReadLimits
from dicomcloak.sanitize import PreambleKind, classify_preamble
from dicomcloak.testing.hostile import base_dataset, encode, meta_bomb

from .conftest import run_stage, sanitize


def _add(ds: Dataset, tag: int, vr: str, value: object) -> None:
    """Add an element, invalid values included (pydicom warns about those when set)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.add_new(tag, vr, value)


def _read(ds: Dataset) -> Dataset:
    return read_dataset(encode(ds))


def _sources(changes: object) -> set[tuple[tuple[int, ...], str]]:
    return {(c.path, c.source) for c in changes}  # type: ignore[attr-defined]


def test_the_input_dataset_is_not_modified() -> None:
    source = _read(base_dataset())
    _add(source, 0x00100030, "DA", "2020-01-01")  # invalid DA: removed from the output only
    before = encode_dataset(source)
    elements = dict(source._dict)
    sanitize(source)
    assert encode_dataset(source) == before
    assert all(source._dict[tag] is elem for tag, elem in elements.items())


def test_invalid_values_are_removed_and_recorded_never_repaired() -> None:
    ds = base_dataset()
    _add(ds, 0x00100030, "DA", "2020-01-01")  # PatientBirthDate, not YYYYMMDD
    _add(ds, 0x00180015, "CS", "bad\x01part")  # BodyPartExamined: a control character
    _add(ds, 0x00081030, "LO", "ok\x01bad")  # StudyDescription: a control character
    out = sanitize(_read(ds))
    assert {(0x00100030,), (0x00180015,), (0x00081030,)} <= {c.path for c in out.changes}
    assert all(c.action == "X" and c.source == "sanitize:invalid-value" for c in out.changes)
    for tag in (0x00100030, 0x00180015, 0x00081030):
        assert tag not in out.dataset


def test_a_bad_element_inside_an_item_is_removed_from_the_item_and_items_stay() -> None:
    ds = base_dataset()
    second = Dataset()
    second.ReferencedSOPClassUID = "1.2.3"
    second.ReferencedSOPInstanceUID = "1.2.3.4"
    ds.ReferencedImageSequence.append(second)
    _add(ds.ReferencedImageSequence[0], 0x00081155, "UI", "1..2")  # ReferencedSOPInstanceUID
    out = sanitize(_read(ds))
    path = (0x00081140, 0, 0x00081155)
    assert (path, "sanitize:invalid-value") in _sources(out.changes)
    items = out.dataset.ReferencedImageSequence
    assert len(items) == 2
    assert 0x00081155 not in items[0]
    assert items[1].ReferencedSOPInstanceUID == "1.2.3.4"


def test_output_is_rebuilt_with_zero_preamble_and_fresh_meta() -> None:
    ds = base_dataset()
    ds.file_meta.SourceApplicationEntityTitle = "LEAKY_AE"
    data = encode(ds)
    result = run_stage(b"II*\x00" + data[4:])
    assert result.output is not None
    assert result.output[:128] == bytes(128)
    assert b"LEAKY_AE" not in result.output
    reread = dcmread(BytesIO(result.output))
    assert reread.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert reread.PixelData == ds.PixelData


def test_trailing_padding_is_removed() -> None:
    ds = base_dataset()
    _add(ds, 0xFFFCFFFC, "OB", bytes(64))
    out = sanitize(_read(ds))
    assert ((0xFFFCFFFC,), "sanitize:structural-element") in _sources(out.changes)
    assert 0xFFFCFFFC not in out.dataset


def test_public_elements_get_their_dictionary_vr() -> None:
    ds = base_dataset()
    _add(ds, 0x00181030, "UN", b"PROTO ")  # ProtocolName is LO
    out = sanitize(_read(ds))
    assert out.dataset[0x00181030].VR == "LO"
    assert out.dataset.ProtocolName == "PROTO"


def test_private_elements_follow_the_policy() -> None:
    ds = base_dataset()
    block = ds.private_block(0x0009, "GEMS_IDEN_01", create=True)
    block.add_new(0x01, "SH", "SAFE")  # GEMS_IDEN_01 (0009,xx01) is not on the safe list
    block = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
    block.add_new(0x23, "DS", "1.5")  # (0019,xx23) Table Speed: on the safe list
    source = _read(ds)
    default = sanitize(source)
    assert not any((tag >> 16) % 2 for tag in default.dataset.keys())  # noqa: SIM118 - iterating yields elements
    retained = sanitize(source, Policy(options=frozenset({Option.RETAIN_SAFE_PRIVATE})))
    kept = {int(tag) for tag in retained.dataset.keys() if (tag >> 16) % 2}  # noqa: SIM118
    assert kept == {0x00190010, 0x00191023}


def test_content_choices_keep_remove_quarantine() -> None:
    ds = base_dataset()
    wave = Dataset()
    wave.NumberOfWaveformChannels = 1
    ds.WaveformSequence = Sequence([wave])
    _add(ds, 0x60000010, "US", 8)
    _add(ds, 0x60003000, "OW", bytes(8))
    icon = base_dataset(2, 2)
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientName",
                    "PatientID", "Modality", "StudyDescription", "ReferencedImageSequence"):
        delattr(icon, keyword)
    del icon.file_meta
    ds.IconImageSequence = Sequence([icon])
    source = _read(ds)
    kept = sanitize(source)
    assert {0x54000100, 0x60003000, 0x00880200} <= set(kept.dataset.keys())
    remove = Disposition.REMOVE
    removing = SanitizeSettings(waveforms=remove, icons=remove, overlays=remove)
    removed = sanitize(source, Policy(sanitize=removing))
    assert not {0x54000100, 0x60003000, 0x60000010, 0x00880200} & set(removed.dataset.keys())
    sources = {c.source for c in removed.changes}
    assert {"sanitize:waveform", "sanitize:overlay", "sanitize:icon-image"} <= sources
    reasons = {"waveforms": "waveform-present", "icons": "icon-present", "overlays": "overlay-present"}
    for field, reason in reasons.items():
        settings = replace(SanitizeSettings(), **{field: Disposition.QUARANTINE})
        with pytest.raises(UnsafeContentError) as info:
            sanitize(source, Policy(sanitize=settings))
        assert info.value.reference == reason


def test_encapsulated_documents_are_quarantined_by_default() -> None:
    from dicomcloak.testing.hostile import encapsulated_pdf

    data = encapsulated_pdf()
    assert run_stage(data).verdict == "encapsulated-document"
    removing = Policy(sanitize=SanitizeSettings(encapsulated_documents=Disposition.REMOVE))
    result = run_stage(data, removing)
    assert result.sanitized is not None
    assert ((0x00420011,), "sanitize:encapsulated-document") in _sources(result.sanitized.changes)
    keeping = Policy(sanitize=SanitizeSettings(encapsulated_documents=Disposition.KEEP))
    assert b"%PDF-1.4" in (run_stage(data, keeping).output or b"")


def test_encapsulated_pixel_data_offsets_are_checked() -> None:
    ds = dcmread(get_testdata_file("SC_rgb_rle_2frame.dcm"))
    data = encode(ds)
    assert run_stage(data).verdict == ""
    at = data.index(b"\xfe\xff\x00\xe0\x08\x00\x00\x00")  # a Basic Offset Table with two offsets
    forged = data[: at + 12] + struct.pack("<L", 0x7FFFFFF0) + data[at + 16 :]
    assert run_stage(forged).verdict == "pixel-length-mismatch"


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        (ReadLimits(max_elements=10), "too-many-elements"),
        (ReadLimits(max_element_bytes=100), "element-too-large"),
        (ReadLimits(max_sequence_depth=0), "sequence-too-deep"),
    ],
)
def test_limits_come_from_the_policy(limits: ReadLimits, reason: str) -> None:
    result = run_stage(encode(base_dataset()), Policy(sanitize=SanitizeSettings(limits=limits)))
    assert result.verdict == reason


def test_a_file_meta_bomb_is_refused_before_parsing() -> None:
    assert run_stage(meta_bomb(2**20)).verdict == "meta-too-large"
    assert run_stage(meta_bomb(200)).verdict == ""


def test_only_typed_errors_escape() -> None:
    with pytest.raises(InputError):
        sanitize(Dataset())  # no SOP Instance UID, no File Meta: a typed refusal, not an AttributeError


@pytest.mark.parametrize(
    ("preamble", "kind"),
    [
        (None, PreambleKind.NONE),
        (bytes(128), PreambleKind.ZEROS),
        (b"MZ" + bytes(126), PreambleKind.PE),
        (b"\x7fELF" + bytes(124), PreambleKind.ELF),
        (b"\xcf\xfa\xed\xfe" + bytes(124), PreambleKind.MACHO),
        (b"II*\x00" + bytes(124), PreambleKind.TIFF),
        (b"#!/bin/sh\n" + bytes(118), PreambleKind.SCRIPT),
        (b"hello" + bytes(123), PreambleKind.OTHER),
    ],
)
def test_preamble_classification(preamble: bytes | None, kind: PreambleKind) -> None:
    assert classify_preamble(preamble) is kind


def test_deidentifier_runs_sanitize_first_and_reports_its_changes() -> None:
    ds = base_dataset()
    _add(ds, 0x00080060, "CS", "C\x01T")  # Modality: kept by the Basic Profile, a control character
    source = _read(ds)
    key = ProjectKey(bytes(range(32)))
    outcome = Deidentifier(Policy(), key).deidentify(source)
    sources = _sources(outcome.changes)
    assert ((0x00080060,), "sanitize:invalid-value") in sources
    assert 0x00080060 not in outcome.dataset
    assert outcome.dataset.PatientIdentityRemoved == "YES"
    assert [c.path for c in outcome.changes] == sorted(c.path for c in outcome.changes)
    unsanitized = Deidentifier(Policy(), key, sanitize=False).deidentify(source)
    assert not any(c.source.startswith("sanitize:") for c in unsanitized.changes)


def test_deidentifier_quarantines_what_sanitize_refuses() -> None:
    from dicomcloak.testing.hostile import with_preamble

    source = read_dataset(with_preamble("pe"))
    with pytest.raises(UnsafeContentError) as info:
        Deidentifier(Policy(), ProjectKey(bytes(range(32)))).deidentify(source)
    assert info.value.reference == "preamble-executable"


def test_elements_deidentification_removes_are_left_to_it() -> None:
    ds = base_dataset()
    _add(ds, 0x00102160, "SH", "bad\x01group")  # EthnicGroup: X in the Basic Profile
    source = _read(ds)
    assert Policy().rule(0x00102160, "SH").action.value == "X"
    deid = Deidentifier(Policy(), ProjectKey(bytes(range(32))))
    assert (0x00102160,) not in {c.path for c in deid.sanitize(source).changes}
    assert ((0x00102160,), "sanitize:invalid-value") in _sources(sanitize(source).changes)
    outcome = deid.deidentify(source)
    assert ((0x00102160,), "table:basic") in _sources(outcome.changes)
    assert 0x00102160 not in outcome.dataset


def test_sequences_de_identification_walks_are_still_sanitized() -> None:
    deid = Deidentifier(Policy(), ProjectKey(bytes(range(32))))
    for tag, vr in ((0x00081140, "SQ"), (0x00081110, "SQ")):  # X/Z/U* and X/Z/D-resolved reference sequences
        action = Policy().rule(tag, vr).action.value
        ds = base_dataset()
        item = Dataset()
        _add(item, 0x00081155, "UI", "1..2")
        _add(ds, tag, "SQ", Sequence([item]))
        changes = deid.sanitize(_read(ds)).changes
        walked = action not in ("X", "Z", "X/Z")
        assert ((tag, 0, 0x00081155) in {c.path for c in changes}) is walked, action


def test_a_public_sequence_written_as_un_is_sanitized() -> None:
    data = encode(base_dataset())
    at = data.index(b"\x08\x00\x40\x11SQ")  # Referenced Image Sequence, explicit VR, defined length
    end = at + 12 + struct.unpack_from("<I", data, at + 8)[0]
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.3"
    _add(item, 0x00081155, "UI", "1..2")
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, True  # PS3.5 6.2.2: UN-wrapped items are implicit
    write_dataset(body, item)
    payload = struct.pack("<HHI", 0xFFFE, 0xE000, len(body.getvalue())) + body.getvalue()
    element = struct.pack("<HH2sHI", 0x0008, 0x1140, b"UN", 0, len(payload)) + payload
    out = sanitize(read_dataset(data[:at] + element + data[end:]))
    assert ((0x00081140, 0, 0x00081155), "sanitize:invalid-value") in _sources(out.changes)
    assert out.dataset[0x00081140].VR == "SQ"


def test_a_dataset_whose_elements_were_already_decoded_is_sanitized() -> None:
    ds = dcmread(BytesIO(encode(base_dataset())))
    assert ds.SOPInstanceUID and ds.SOPClassUID and ds.PatientName  # decoded in place by pydicom
    out = sanitize(ds)
    assert out.dataset.SOPInstanceUID == ds.SOPInstanceUID
    assert out.dataset.PixelData == ds.PixelData
