"""The vault's tables (SQLAlchemy Core): study data keys, sealed records, the pseudonym map, metadata.

Only pseudonyms, key ids, binding digests and ciphertext are stored; every
original is inside an AES-256-GCM blob (:mod:`dicomcloak.keys.aead`). A
shredded study keeps its row with ``wrapped`` and ``key_id`` NULL and
``shredded`` set, so opening its records fails as shredded, not as missing.

Records are sealed in ``dicomcloak_bound_records``, one per (study, instance,
binding digest of the output it was made for, hex; empty when sealed without
one): two objects sharing a SOP Instance UID keep a record each.
``dicomcloak_records`` holds the records of earlier versions, bound to
(study, instance) only: still read, never written.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["BOUND_RECORDS", "META", "METADATA", "RECORDS", "SCHEMA_VERSION", "STUDY_KEYS", "UID_MAP"]

SCHEMA_VERSION = "1"
METADATA = sa.MetaData()

META = sa.Table(
    "dicomcloak_vault_meta", METADATA,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
STUDY_KEYS = sa.Table(
    "dicomcloak_study_keys", METADATA,
    sa.Column("study", sa.String(128), primary_key=True),
    sa.Column("patient", sa.String(128), nullable=False, index=True),
    sa.Column("key_id", sa.String(32), nullable=True, index=True),
    sa.Column("wrapped", sa.LargeBinary, nullable=True),
    sa.Column("created", sa.Text, nullable=False),
    sa.Column("shredded", sa.Text, nullable=True),
)
RECORDS = sa.Table(
    "dicomcloak_records", METADATA,
    sa.Column("study", sa.String(128), primary_key=True),
    sa.Column("instance", sa.String(128), primary_key=True),
    sa.Column("sealed", sa.LargeBinary, nullable=False),
)
BOUND_RECORDS = sa.Table(
    "dicomcloak_bound_records", METADATA,
    sa.Column("study", sa.String(128), primary_key=True),
    sa.Column("instance", sa.String(128), primary_key=True),
    sa.Column("binding", sa.String(64), primary_key=True),
    sa.Column("sealed", sa.LargeBinary, nullable=False),
)
UID_MAP = sa.Table(
    "dicomcloak_uid_map", METADATA,
    sa.Column("pseudonym", sa.String(128), primary_key=True),
    sa.Column("study", sa.String(128), primary_key=True),
    sa.Column("sealed", sa.LargeBinary, nullable=False),
)
