"""Mutation fuzzing over real files: only typed errors, every input decided within 5 s, bounded memory.

Two halves of 5,000 mutated inputs each (10,000 in all, run side by side
under ``pytest -n 2``), every one through the whole per-instance pipeline
(read with limits, sanitize, de-identify, encode). The count and the
histogram of outcomes are printed in the terminal summary (``fuzz:`` lines).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import psutil
import pydicom
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dicomcloak import Deidentifier
from dicomcloak.errors import InputError
from dicomcloak.io import read_dataset
from dicomcloak.io.writer import encode_dataset
from dicomcloak.keys import ProjectKey
from dicomcloak.policy import Policy
from dicomcloak.testing.hostile import base_bytes, nested_sequences

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
HALVES = {
    "a": ["CT_small.dcm", "rtplan.dcm", "image_dfl.dcm", "SC_rgb_rle_2frame.dcm"],
    "b": ["MR_small.dcm", "JPEG2000.dcm", "ExplVR_BigEnd.dcm", "test-SR.dcm"],
}
EXAMPLES = 5_000
_INTERESTING = [0, 1, 3, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF]
_position = st.one_of(st.integers(0, 1024), st.integers(0, 2**20))
_mutation = st.one_of(
    st.tuples(st.just("byte"), _position, st.integers(0, 255)),
    st.tuples(st.just("u32"), _position, st.sampled_from(_INTERESTING)),
    st.tuples(st.just("u16"), _position, st.sampled_from([0, 1, 0xFFFF, 0x7FE0, 0xFFFE, 0x0002])),
    st.tuples(st.just("cut"), _position, st.just(0)),
    st.tuples(st.just("insert"), _position, st.binary(max_size=24)),
    st.tuples(st.just("delete"), _position, st.integers(1, 64)),
)


def _mutate(data: bytes, mutations: list[tuple[str, int, object]]) -> bytes:
    buffer = bytearray(data)
    for kind, position, arg in mutations:
        at = position % (len(buffer) + 1)
        if kind == "byte" and at < len(buffer):
            buffer[at] = int(arg)  # type: ignore[call-overload]
        elif kind in ("u32", "u16"):
            size = 4 if kind == "u32" else 2
            buffer[at : at + size] = int(arg).to_bytes(size, "little")  # type: ignore[call-overload]
        elif kind == "cut":
            del buffer[at:]
        elif kind == "insert":
            buffer[at:at] = arg  # type: ignore[index]
        elif kind == "delete":
            del buffer[at : at + int(arg)]  # type: ignore[call-overload]
    return bytes(buffer)


def _outcome(data: bytes, deid: Deidentifier) -> str:
    """The reason code, or "accepted"; any other exception propagates and fails the test."""
    try:
        outcome = deid.deidentify(read_dataset(data, deid.policy.sanitize.limits))
        encode_dataset(outcome.dataset)
    except InputError as error:
        return error.reference
    return "accepted"


@pytest.mark.slow
@pytest.mark.parametrize("half", sorted(HALVES))
def test_mutated_real_files_only_raise_typed_errors(
    half: str, record_property: pytest.RecordProperty
) -> None:
    bases = [(TEST_FILES / name).read_bytes() for name in HALVES[half]]
    bases += [base_bytes(), nested_sequences(30, undefined=half == "a")]
    deid = Deidentifier(Policy(), ProjectKey(bytes(range(32))))
    histogram: Counter[str] = Counter()
    process = psutil.Process(os.getpid())
    rss_before = process.memory_info().rss

    @settings(
        max_examples=EXAMPLES,
        deadline=5000,  # ms: every input decided within 5 s
        database=None,
        derandomize=True,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    @given(base=st.integers(0, len(bases) - 1), mutations=st.lists(_mutation, min_size=1, max_size=5))
    def fuzz(base: int, mutations: list[tuple[str, int, object]]) -> None:
        histogram[_outcome(_mutate(bases[base], mutations), deid)] += 1

    fuzz()
    growth_mb = (process.memory_info().rss - rss_before) / 2**20
    total = sum(histogram.values())
    record_property("fuzz", json.dumps({"half": half, "inputs": total, "rss_growth_mb": round(growth_mb),
                                        "outcomes": dict(histogram.most_common())}))
    assert total >= EXAMPLES
    assert growth_mb < 512
