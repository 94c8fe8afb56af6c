"""The hostile corpus: every input decided fast, with an expected verdict, nothing hostile passed on."""

from __future__ import annotations

import time
from io import BytesIO

import pytest
from pydicom import dcmread

from dicomcloak.sanitize import PreambleKind, classify_prefix, verdict_event
from dicomcloak.testing.hostile import PAYLOAD, base_bytes, hostile_corpus, nested_sequences, with_preamble

from .conftest import run_stage

CORPUS = hostile_corpus()
_SECRETS = ("Hostile^Test", "H0001", "PLANTEDTEXT", "passwd")


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_hostile_input_gets_its_verdict(name: str) -> None:
    data, allowed = CORPUS[name]
    started = time.perf_counter()
    result = run_stage(data)
    assert time.perf_counter() - started < 5
    if allowed and "" not in allowed:
        assert result.verdict in allowed, f"{name}: {result.verdict!r}"
    elif not allowed:
        assert result.verdict == "", f"{name}: quarantined as {result.verdict!r}"
    if result.error is not None:
        text = str(result.error)
        assert not any(secret in text for secret in _SECRETS)
        return
    assert result.output is not None
    assert result.output[:128] == bytes(128)
    assert PAYLOAD[:32] not in result.output
    dcmread(BytesIO(result.output))
    again = run_stage(result.output)
    assert again.output == result.output  # idempotent, byte for byte


@pytest.mark.parametrize("kind", ["pe", "elf", "mach-o"])
def test_executable_preambles_are_quarantined_with_an_alert(kind: str) -> None:
    data = with_preamble(kind)
    assert run_stage(base_bytes()).verdict == ""  # the same file with a zero preamble is fine
    assert run_stage(data).verdict == "preamble-executable"
    event = verdict_event(3, "preamble-executable", classify_prefix(data))
    assert event["alert"] is True
    assert event["verdict"] == "quarantined"
    assert event["preamble"] == kind


def test_a_tiff_preamble_is_replaced_by_zeros() -> None:
    result = run_stage(with_preamble("tiff"))
    assert result.sanitized is not None and result.output is not None
    assert result.sanitized.verdict.preamble is PreambleKind.TIFF
    assert result.output[:132] == bytes(128) + b"DICM"


@pytest.mark.parametrize("undefined", [True, False])
def test_nesting_limit_is_exactly_the_configured_depth(undefined: bool) -> None:
    assert run_stage(nested_sequences(64, undefined=undefined)).verdict == ""
    assert run_stage(nested_sequences(65, undefined=undefined)).verdict == "sequence-too-deep"


def test_private_payloads_are_removed_and_recorded() -> None:
    result = run_stage(CORPUS["private-ob-payload"][0])
    assert result.sanitized is not None
    sources = {(change.path, change.source) for change in result.sanitized.changes}
    assert ((0x00291010,), "sanitize:private") in sources
    assert ((0x00290010,), "sanitize:private-creator") in sources


def test_a_traversal_uid_outside_the_sop_uids_is_removed() -> None:
    result = run_stage(CORPUS["study-uid-traversal"][0])
    assert result.sanitized is not None
    assert ((0x0020000D,), "X", "sanitize:invalid-value") in {
        (c.path, c.action, c.source) for c in result.sanitized.changes
    }
    assert b"../" not in (result.output or b"")


def test_every_97th_byte_truncation_of_a_real_file_is_decided() -> None:
    from pathlib import Path

    import pydicom

    data = (Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm").read_bytes()
    outcomes = []
    for end in range(0, len(data), 97):
        result = run_stage(data[:end])
        if result.output is not None:
            assert result.output[:128] == bytes(128)
            dcmread(BytesIO(result.output))
        outcomes.append(result.verdict)
    assert len(outcomes) > 300
    # only a cut exactly at an element boundary is a complete (shorter) data set and may be accepted
    assert outcomes.count("") < len(outcomes) // 50


def _with_sequence(value: bytes, length: int) -> bytes:
    """base_bytes with a Referenced Study Sequence (0008,1110) of this raw value and length inserted."""
    import struct

    data = base_bytes()
    at = data.index(b"\x08\x00\x40\x11")  # before the Referenced Image Sequence (0008,1140)
    return data[:at] + struct.pack("<HH2sHL", 0x0008, 0x1110, b"SQ", 0, length) + value + data[at:]


@pytest.mark.parametrize("undefined", [True, False])
def test_zero_bytes_in_an_item_pydicom_reads_are_refused(undefined: bool) -> None:
    """Eight zero bytes in an explicit VR item read as an element only through pydicom (its zero "VR"
    means an implicit header): undefined-length sequences at read time, items the fast reader leaves to
    pydicom later. Refused there too, as the fast readers refuse them (``trailing-bytes``)."""
    uid = b"\x08\x00\x55\x11UI\x04\x001.4\x00"
    sop_class = b"\x08\x00\x50\x11UI\x04\x001.2\x00"
    for body in (uid + bytes(8) + sop_class, uid + sop_class):  # refused, then the same without the zeros
        if undefined:
            start, end = b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\x0d\xe0" + bytes(4)
            value, length = start + body + end + b"\xfe\xff\xdd\xe0" + bytes(4), 0xFFFFFFFF
        else:
            value = b"\xfe\xff\x00\xe0" + len(body).to_bytes(4, "little") + body
            length = len(value)
        verdict = run_stage(_with_sequence(value, length)).verdict
        assert verdict == ("trailing-bytes" if len(body) > len(uid + sop_class) else "")
