"""The owner's patient questions to the vault: which pseudonym is this patient, and whose is this pseudonym.

``dicomcloak vault lookup`` (docs/vault.md, "Looking a patient up"). A patient
pseudonym is computed, never searched for: HMAC of the patient key (Issuer of
Patient ID and Patient ID, :func:`dicomcloak.engine.identity.identify`) under
the project key's sub-key for the pseudonym domain (architecture.md decision
2), so one original has one pseudonym per domain, and only the key's holder can
compute it. What the vault holds for a pseudonym is counted from the
study-key table (its ``patient`` column, bound to each wrapped data key:
:mod:`dicomcloak.vault.keyrows`) and the record tables, by pseudonyms only.

The way back reads the vault's pseudonym map: the entry of Patient ID
(0010,0020) qualified by its tag (:func:`dicomcloak.engine.uidmap.map_key`),
one per study of the patient, each sealed under its study's data key. One
entry is opened (the first study whose key is live): nothing else is decrypted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydicom.dataset import Dataset
from sqlalchemy.engine import Connection

from dicomcloak.engine.identity import identify
from dicomcloak.engine.uidmap import map_key
from dicomcloak.keys.project import ProjectKey
from dicomcloak.keys.pseudonyms import Pseudonymizer
from dicomcloak.vault.schema import BOUND_RECORDS, RECORDS, STUDY_KEYS, UID_MAP

__all__ = [
    "PATIENT_ID_TAG",
    "Holdings",
    "holdings",
    "patient_map_key",
    "patient_map_rows",
    "patient_pseudonym",
]

#: Patient ID (0010,0020), PS3.3 C.7.1.1: the pseudonym the de-identified files carry there.
PATIENT_ID_TAG = 0x00100020


@dataclass(frozen=True)
class Holdings:
    """What the vault holds for one patient pseudonym (in one domain): counts, never values."""

    domain: str  # the pseudonym domain it was computed for ("" when given as a pseudonym)
    pseudonym: str
    studies: int  # studies whose data key is live
    shredded: int  # studies whose data key was destroyed
    instances: int  # instances with sealed originals in the live studies

    @property
    def held(self) -> bool:
        """Whether the vault knows this pseudonym at all (live or shredded studies)."""
        return bool(self.studies or self.shredded)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``vault lookup --json``)."""
        return {"domain": self.domain, "pseudonym": self.pseudonym, "studies": self.studies,
                "shredded": self.shredded, "instances": self.instances}


def patient_pseudonym(project: ProjectKey, patient_id: str, issuer: str, domain: str) -> str:
    """The patient pseudonym ``deid --domain DOMAIN`` gives this Patient ID (and Issuer of Patient ID).

    The engine's own derivation (:func:`~dicomcloak.engine.identity.identify`)
    on a data set holding only these two values: the same pseudonym as in the files.
    """
    probe = Dataset()
    probe.PatientID = patient_id
    if issuer:
        probe.IssuerOfPatientID = issuer
    return identify(probe, Pseudonymizer(project, domain)).patient_pseudonym


def holdings(conn: Connection, pseudonyms: Mapping[str, str]) -> list[Holdings]:
    """What the vault holds for each (domain -> pseudonym), in the mapping's order."""
    return [_holdings(conn, domain, pseudonym) for domain, pseudonym in pseudonyms.items()]


def _holdings(conn: Connection, domain: str, pseudonym: str) -> Holdings:
    keys = STUDY_KEYS.c
    query = (sa.select(keys.wrapped.is_(None).label("shredded"), sa.func.count())
             .where(keys.patient == pseudonym).group_by(keys.wrapped.is_(None)))
    counts = {bool(shredded): int(count) for shredded, count in conn.execute(query)}
    return Holdings(domain, pseudonym, counts.get(False, 0), counts.get(True, 0), _instances(conn, pseudonym))


def _instances(conn: Connection, pseudonym: str) -> int:
    """Distinct (study, instance) pairs with a record (bound, or of the first format) in live studies."""
    live = sa.select(STUDY_KEYS.c.study).where(
        sa.and_(STUDY_KEYS.c.patient == pseudonym, STUDY_KEYS.c.wrapped.is_not(None))
    )
    bound = sa.select(BOUND_RECORDS.c.study, BOUND_RECORDS.c.instance).where(BOUND_RECORDS.c.study.in_(live))
    legacy = sa.select(RECORDS.c.study, RECORDS.c.instance).where(RECORDS.c.study.in_(live))
    every = sa.union(bound, legacy).subquery()
    return int(conn.execute(sa.select(sa.func.count()).select_from(every)).scalar() or 0)


def patient_map_key(pseudonym: str) -> str:
    """The pseudonym map's key of a patient's Patient ID entry."""
    return map_key(PATIENT_ID_TAG, pseudonym, "LO")


def patient_map_rows(conn: Connection, pseudonym: str) -> list[Any]:
    """The (study, sealed) map entries of a patient's Patient ID, one per study, in study order."""
    entry = UID_MAP.c.pseudonym == patient_map_key(pseudonym)
    query = sa.select(UID_MAP.c.study, UID_MAP.c.sealed).where(entry)
    return list(conn.execute(query.order_by(UID_MAP.c.study)).all())
