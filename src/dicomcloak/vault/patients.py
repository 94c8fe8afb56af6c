"""The owner's patient questions to the vault, as queries: what it holds for a patient pseudonym, and the
map entries of a patient's Patient ID.

``dicomcloak vault lookup`` (docs/vault.md, "Looking a patient up"). Pseudonyms
are computed by the caller with the project key (the engine's derivation,
:func:`dicomcloak.engine.identity.patient_pseudonym`: the vault never reaches
up into the engine). What the vault holds for a pseudonym is counted from the
study-key table (its ``patient`` column, bound to each wrapped data key:
:mod:`dicomcloak.vault.keyrows`) and the record tables, by pseudonyms only;
nothing is decrypted for a count.

The way back reads the vault's pseudonym map: the entry of a patient's Patient
ID (0010,0020), keyed by the pseudonym qualified by its tag
(:func:`dicomcloak.engine.uidmap.map_key`, given by the caller), one per study
of the patient, each sealed under its study's data key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dicomcloak.vault.schema import BOUND_RECORDS, RECORDS, STUDY_KEYS, UID_MAP

__all__ = ["Holdings", "holdings", "map_rows"]


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


def map_rows(conn: Connection, entry: str) -> list[Any]:
    """The (study, sealed) map entries under the key ``entry``, one per study, in study order."""
    query = sa.select(UID_MAP.c.study, UID_MAP.c.sealed).where(UID_MAP.c.pseudonym == entry)
    return list(conn.execute(query.order_by(UID_MAP.c.study)).all())
