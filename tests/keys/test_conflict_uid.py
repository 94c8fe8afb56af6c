"""The UID of the later of two objects under one SOP Instance UID (``Pseudonymizer.conflict_uid``)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from dicomcloak.keys import ProjectKey, Pseudonymizer

KEY_A = Pseudonymizer(ProjectKey(b"A" * 32))
UIDS = st.integers(min_value=1, max_value=10**30).map(lambda n: f"1.2.826.0.1.{n}")
DIGESTS = st.binary(min_size=32, max_size=32)


@given(UIDS, DIGESTS, DIGESTS)
def test_keyed_deterministic_and_distinct_from_other_uids(original: str, digest: bytes, other: bytes) -> None:
    uid = KEY_A.conflict_uid(original, digest)
    assert uid == Pseudonymizer(ProjectKey(b"A" * 32)).conflict_uid(original, digest)
    assert uid != KEY_A.uid(original)  # never the first object's UID
    assert (uid == KEY_A.conflict_uid(original, other)) == (digest == other)  # one UID per content
    assert uid != Pseudonymizer(ProjectKey(b"B" * 32)).conflict_uid(original, digest)
    assert uid != Pseudonymizer(ProjectKey(b"A" * 32), "partner").conflict_uid(original, digest)
    # The same form as uid(): 2.25 + a version-8 UUID (PS3.5 B.2, RFC 9562), at most 64 characters.
    assert uid.startswith("2.25.") and len(uid) <= 64
    as_uuid = uuid.UUID(int=int(uid.removeprefix("2.25.")))
    assert (as_uuid.version, as_uuid.variant) == (8, uuid.RFC_4122)
