"""The vault: sealed originals and the pseudonym map, per-study data keys, crypto-shredding.

architecture.md decision 3. One random 256-bit data key per pseudonymous study,
wrapped (AES-256-GCM) by the key ring's current wrapping key, whose id is
stored beside it. Records and map entries are AES-256-GCM under the study key
with associated data binding them to (study, instance, binding digest of
their output) and (study, pseudonym), so a record swapped between instances,
studies or outputs fails its tag; a record opens only for the output it was
made for (:func:`~dicomcloak.vault.record.choose_record`). Two objects under
one SOP Instance UID keep a record each. Shredding a study deletes its
wrapped data key: its records can never be decrypted again.

Every open, lookup, seal batch, rewrap and shred appends an audit event (in the
same transaction when the audit log lives in the vault database). Unwrapped
data keys are cached per study for the life of the object (the batch seals
one group of files at a time on its commit thread). Errors are
:class:`~dicomcloak.errors.SealError` and carry no values; nothing is returned
on any failure. Database errors are typed where they are raised, and a busy
database is waited for, a bounded time, by running the whole transaction again
(:mod:`dicomcloak.audit.failures`): every public method is one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import Connection, Engine

from dicomcloak.audit.db import insert_missing, make_engine, upsert
from dicomcloak.audit.failures import DEFAULT_WAIT, LOCK_SLICE, BusyWait, retried
from dicomcloak.audit.log import AuditLog
from dicomcloak.errors import SealError, UsageError
from dicomcloak.keys import aead
from dicomcloak.keys.keyring import Keyring
from dicomcloak.vault.keyrows import (
    LEGACY_WRAPPED_BYTES,
    blob,
    key_rows,
    plan_shred,
    text,
    unwrap_row,
    wrap_row,
)
from dicomcloak.vault.record import OpenedRecord, VaultRecord, choose_record

if TYPE_CHECKING:
    from dicomcloak.vault.patients import Holdings
from dicomcloak.vault.schema import (
    BOUND_RECORDS,
    META,
    METADATA,
    RECORDS,
    SCHEMA_VERSION,
    STUDY_KEYS,
    UID_MAP,
)

__all__ = ["Vault"]

_CACHE_LIMIT = 100_000  # unwrapped study keys kept in memory; a batch touches far fewer


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _shredded(study: str) -> SealError:
    return SealError(f"study {study} was shredded: its data key is destroyed", reference="vault-key-shredded",
                     hint="crypto-shredding is irreversible; its records can never be opened again")


class Vault:
    """The vault at one SQLAlchemy URL, opened with a :class:`Keyring`. Use :meth:`open`."""

    def __init__(
        self, engine: Engine, keyring: Keyring, audit: AuditLog, *, audit_shared: bool,
        busy: BusyWait | None = None,
    ) -> None:
        self._engine = engine
        self.busy = busy or BusyWait()
        self._keyring = keyring
        self.audit = audit
        self._audit_shared = audit_shared
        self._keys: dict[str, AESGCM] = {}
        self._mapped: set[tuple[str, str]] = set()

    @classmethod
    def open(
        cls, url: str, keyring: Keyring, *, audit_url: str | None = None, wait: float = DEFAULT_WAIT
    ) -> Vault:
        """Open the vault at ``url`` (``sqlite:///path`` in WAL mode, or ``postgresql+pg8000://...``).

        Creates the tables if missing. The vault remembers the project key id it
        was created with; a key ring for another project fails with
        ``wrong-master-key``. The audit log lives in the same database unless
        ``audit_url`` names another. ``wait``: seconds a busy (locked) database
        is waited for, in total, by each call (:class:`BusyWait`).
        """
        engine = make_engine(url, lock_slice=LOCK_SLICE)
        busy = BusyWait(wait)
        try:
            busy.run(lambda: _prepare(engine, keyring))
            audit = AuditLog(engine) if audit_url is None else _separate_audit(audit_url, busy)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, keyring, audit, audit_shared=audit_url is None, busy=busy)

    # -- writing ---------------------------------------------------------------------------------

    @retried
    def seal_records(self, records: Iterable[VaultRecord]) -> None:
        """Seal many records in ONE transaction (one executemany per table); replaces re-sealed ones.

        A record is keyed by (study, instance, binding): sealing an object that
        reuses another's SOP Instance UID adds a record, it replaces none.
        """
        batch = list({(r.study, r.instance, r.binding): r for r in records}.values())
        if not batch:
            return
        with self._engine.begin() as conn:
            keys = self._study_keys(conn, {r.study: r.patient for r in batch}, create=True)
            rows = [self._record_row(keys[r.study], r) for r in batch]
            upsert(conn, BOUND_RECORDS, rows, ["study", "instance", "binding"])
            pairs = self._new_pairs(batch)
            upsert(conn, UID_MAP, [self._map_row(keys[s], s, p, o) for (s, p), o in pairs.items()],
                   ["pseudonym", "study"])
            facts = {"records": len(batch), "studies": sorted(keys), "uid_pairs": len(pairs)}
            self._audit(conn, "seal", facts)
        self._remember(keys, pairs)

    @retried
    def put_uid_map(self, study: str, pairs: Iterable[tuple[str, str]]) -> None:
        """Store (pseudonym UID/ID, original) pairs, each original sealed under ``study``'s key."""
        fresh = {(study, p): o for p, o in pairs}
        if not fresh:
            return
        with self._engine.begin() as conn:
            keys = self._study_keys(conn, {study: ""}, create=False)
            rows = [self._map_row(keys[study], s, p, o) for (s, p), o in fresh.items()]
            upsert(conn, UID_MAP, rows, ["pseudonym", "study"])
            self._audit(conn, "uid-map", {"study": study, "uid_pairs": len(rows)})
        self._remember(keys, fresh)

    def _record_row(self, key: AESGCM, record: VaultRecord) -> dict[str, Any]:
        binding = record.binding.hex()
        sealed = aead.seal_blob(key, record.payload, aead.record_aad(record.study, record.instance, binding))
        return {"study": record.study, "instance": record.instance, "binding": binding, "sealed": sealed}

    def _map_row(self, key: AESGCM, study: str, pseudonym: str, original: str) -> dict[str, Any]:
        plain = original.encode("utf-8", "surrogateescape")
        return {"pseudonym": pseudonym, "study": study,
                "sealed": aead.seal_blob(key, plain, aead.uid_map_aad(study, pseudonym))}

    def _new_pairs(self, batch: Sequence[VaultRecord]) -> dict[tuple[str, str], str]:
        # The same pairs recur in every instance of a study: write each once per Vault object.
        pairs = {(r.study, p): o for r in batch for p, o in r.uid_pairs}
        return {k: v for k, v in pairs.items() if k not in self._mapped}

    def _remember(self, keys: dict[str, AESGCM], pairs: dict[tuple[str, str], str]) -> None:
        # Only after the commit: a key cached from a rolled-back transaction would seal data under
        # a key the database never stored.
        if len(self._keys) > _CACHE_LIMIT or len(self._mapped) > 10 * _CACHE_LIMIT:
            self._keys.clear()
            self._mapped.clear()
        self._keys.update(keys)
        self._mapped.update(pairs)

    # -- data keys -------------------------------------------------------------------------------

    def _study_keys(self, conn: Connection, studies: dict[str, str], *, create: bool) -> dict[str, AESGCM]:
        """Unwrapped keys for ``studies`` (study -> patient), creating missing ones if ``create``."""
        keys = {s: self._keys[s] for s in studies if s in self._keys}
        missing = [s for s in studies if s not in keys]
        if missing and create:
            insert_missing(conn, STUDY_KEYS, [self._new_key_row(s, studies[s]) for s in missing], ["study"])
        if missing:
            keys.update(self._load_keys(conn, missing))
        return keys

    def _new_key_row(self, study: str, patient: str) -> dict[str, Any]:
        wrapping = self._keyring.current
        wrapped = wrap_row(wrapping.usable_secret(), aead.new_data_key(), study, wrapping.key_id, patient)
        return {"study": study, "patient": patient, "key_id": wrapping.key_id, "wrapped": wrapped,
                "created": _now(), "shredded": None}

    def _load_keys(self, conn: Connection, studies: list[str]) -> dict[str, AESGCM]:
        query = sa.select(STUDY_KEYS.c.study, STUDY_KEYS.c.patient, STUDY_KEYS.c.key_id, STUDY_KEYS.c.wrapped)
        rows = {row.study: row for row in conn.execute(query.where(STUDY_KEYS.c.study.in_(studies)))}
        keys = {}
        for study in studies:
            row = rows.get(study)
            if row is None:
                raise SealError(f"the vault holds no key for study {study}", reference="vault-record-missing",
                                hint="was this study de-identified with this vault (deid --vault)?")
            keys[study] = AESGCM(self._unwrap(study, row.patient, row.key_id, row.wrapped))
        return keys

    def _unwrap(self, study: str, patient: object, key_id: object, wrapped: object) -> bytes:
        if key_id is None or wrapped is None:
            raise _shredded(study)
        (row,) = key_rows([(study, patient, key_id, wrapped)])
        return unwrap_row(self._keyring, row.study, row.patient, row.key_id, row.wrapped)[0]

    def _key_for(self, conn: Connection, study: str) -> AESGCM:
        key = self._keys.get(study) or self._load_keys(conn, [study])[study]
        self._keys[study] = key
        return key

    # -- reading ---------------------------------------------------------------------------------

    @retried
    def open_record(self, study: str, instance: str, binding: bytes | None = None) -> OpenedRecord:
        """The payload sealed for (``study``, ``instance``) and the output of ``binding``, verified.

        ``binding`` is the binding digest of the file being re-identified
        (:func:`dicomcloak.io.binding.binding_digest`); records of other objects
        under the same instance UID are never opened for it
        (``vault-record-mismatch``). Audited as ``open-record``, with ``bound``.
        """
        with self._engine.begin() as conn:
            where = sa.and_(BOUND_RECORDS.c.study == study, BOUND_RECORDS.c.instance == instance)
            query = sa.select(BOUND_RECORDS.c.binding, BOUND_RECORDS.c.sealed).where(where)
            what = f"the vault record of instance {instance}"
            tampered = "vault-record-tampered"
            rows = {text(row.binding, tampered, what): blob(row.sealed, tampered, what)
                    for row in conn.execute(query)}
            legacy_where = sa.and_(RECORDS.c.study == study, RECORDS.c.instance == instance)
            legacy = conn.execute(sa.select(RECORDS.c.sealed).where(legacy_where)).scalar()
            legacy = None if legacy is None else blob(legacy, "vault-record-tampered", what)
            key = self._key_for(conn, study)  # a shredded study says so before "missing"
            where_text = f"instance {instance} of study {study}"
            aad_binding, sealed, bound = choose_record(rows, legacy, binding, where_text)
            payload = aead.open_blob(key, sealed, aead.record_aad(study, instance, aad_binding),
                                     reference="vault-record-tampered",
                                     what=f"the vault record of instance {instance}")
            self._audit(conn, "open-record", {"study": study, "instance": instance, "bound": bound})
        return OpenedRecord(payload, bound)

    @retried
    def lookup(self, pseudonym: str) -> str | None:
        """The original of a pseudonym UID/ID, or None if the vault never mapped it; audited."""
        with self._engine.begin() as conn:
            query = sa.select(UID_MAP.c.study, UID_MAP.c.sealed).where(UID_MAP.c.pseudonym == pseudonym)
            rows = conn.execute(query.order_by(UID_MAP.c.study)).all()
            original = self._first_open(conn, pseudonym, rows)
            self._audit(conn, "lookup", {"pseudonym": pseudonym, "found": original is not None})
        return original

    def _first_open(self, conn: Connection, pseudonym: str, rows: Sequence[Any]) -> str | None:
        shredded: SealError | None = None
        what = f"the vault map entry of pseudonym {pseudonym}"
        for stored_study, stored in rows:
            study = text(stored_study, "vault-record-tampered", what)
            sealed = blob(stored, "vault-record-tampered", what)
            try:
                key = self._key_for(conn, study)
            except SealError as error:
                if error.reference != "vault-key-shredded":
                    raise
                shredded = error
                continue
            plain = aead.open_blob(key, sealed, aead.uid_map_aad(study, pseudonym),
                                   reference="vault-record-tampered", what=what)
            return plain.decode("utf-8", "surrogateescape")
        if shredded is not None:
            raise shredded
        return None

    # -- the owner's patient questions (vault/patients.py) ------------------------------------------

    @retried
    def patient_holdings(self, pseudonyms: Mapping[str, str]) -> list[Holdings]:
        """What the vault holds for the pseudonyms an original Patient ID has (domain -> pseudonym, computed
        by the caller with this project's key). Audited as ``patient-lookup``: pseudonyms and counts only."""
        from dicomcloak.vault.patients import holdings

        with self._engine.begin() as conn:
            found = holdings(conn, pseudonyms)
            facts = {"direction": "patient-id-to-pseudonym", "pseudonyms": [h.pseudonym for h in found],
                     "held": sum(h.held for h in found), "studies": sum(h.studies for h in found)}
            self._audit(conn, "patient-lookup", facts)
        return found

    @retried
    def patient_id_of(self, pseudonym: str, entry: str) -> tuple[str | None, Holdings]:
        """The original Patient ID of a patient pseudonym from its map ``entry`` (the pseudonym qualified
        by the Patient ID tag), None when not held or every study is shredded; and what the vault holds
        for it. One map entry is decrypted. Audited as ``patient-lookup``: the pseudonym and counts only."""
        from dicomcloak.vault.patients import holdings, map_rows

        with self._engine.begin() as conn:
            (held,) = holdings(conn, {"": pseudonym})
            try:
                original = self._first_open(conn, entry, map_rows(conn, entry))
            except SealError as error:
                if error.reference != "vault-key-shredded":
                    raise
                original = None  # every study of the patient was shredded: the answer is gone, by design
            facts = {"direction": "pseudonym-to-patient-id", "pseudonym": pseudonym,
                     "found": original is not None, "studies": held.studies, "shredded": held.shredded}
            self._audit(conn, "patient-lookup", facts)
        return original, held

    # -- key management --------------------------------------------------------------------------

    @retried
    def shred(self, *, study: str | None = None, patient: str | None = None) -> int:
        """Destroy the data keys of one study or of every study of one patient; returns how many.

        Every live row is checked against its wrapped key's associated data
        (:mod:`dicomcloak.vault.keyrows`): a study of the target whose patient
        or study column was edited is found and shredded all the same, and
        then, the shred committed and audited, the edit is reported.

        Raises
        ------
        SealError
            ``vault-key-tampered`` after shredding, when rows fail their check.
        """
        if (study is None) == (patient is None):
            raise UsageError("shred needs exactly one of study or patient", reference="shred-target")
        columns = (STUDY_KEYS.c.study, STUDY_KEYS.c.patient, STUDY_KEYS.c.key_id, STUDY_KEYS.c.wrapped)
        with self._engine.begin() as conn:
            live = STUDY_KEYS.c.wrapped.is_not(None)
            rows = key_rows(conn.execute(sa.select(*columns).where(live)))
            plan = plan_shred(rows, self._keyring, study=study, patient=patient)
            studies = sorted(set(plan.studies))
            if studies:
                chosen = sa.and_(STUDY_KEYS.c.study.in_(studies), live)
                gone = {"wrapped": None, "key_id": None, "shredded": _now()}
                conn.execute(sa.update(STUDY_KEYS).where(chosen).values(**gone))
            # A target that matched nothing may be an original typed by mistake: not recorded (decision 7).
            named: dict[str, str | None] = {"study": study, "patient": patient}
            target = named if studies else {"unmatched": "study" if study else "patient"}
            facts = {**target, "studies": studies, "count": len(studies),
                     "tampered": plan.tampered, "legacy": plan.legacy, "unverifiable": plan.unverifiable}
            self._audit(conn, "shred", facts)
        for name in studies:
            self._keys.pop(name, None)
        if plan.tampered:
            raise SealError(
                f"shredded {len(studies)} data keys, but {plan.tampered} rows of the study-key table fail "
                "their integrity check (an edited patient or study column, or a damaged key)",
                reference="vault-key-tampered",
                hint="the vault database was altered outside dicomcloak: investigate, restore it from a "
                "backup, then shred again",
            )
        return len(studies)

    @retried
    def legacy_key_rows(self) -> int:
        """How many live data keys were wrapped before patients were bound (``keys rewrap`` binds them)."""
        with self._engine.connect() as conn:
            legacy = sa.and_(STUDY_KEYS.c.wrapped.is_not(None),
                             sa.func.length(STUDY_KEYS.c.wrapped) == LEGACY_WRAPPED_BYTES)
            return int(conn.execute(sa.select(sa.func.count()).where(legacy)).scalar() or 0)

    @retried
    def rewrap(self) -> int:
        """Re-wrap every live data key under the current wrapping key, binding its patient; records are
        not touched. Keys wrapped before patients were bound are re-wrapped even under the current key."""
        current = self._keyring.current
        with self._engine.begin() as conn:
            wrapped = STUDY_KEYS.c.wrapped
            stale = sa.and_(wrapped.is_not(None), sa.or_(
                STUDY_KEYS.c.key_id != current.key_id, sa.func.length(wrapped) == LEGACY_WRAPPED_BYTES))
            columns = (STUDY_KEYS.c.study, STUDY_KEYS.c.patient, STUDY_KEYS.c.key_id, wrapped)
            rows = key_rows(conn.execute(sa.select(*columns).where(stale)))
            updates = [self._rewrapped(row.study, row.patient, row.key_id, row.wrapped) for row in rows]
            if updates:
                stmt = (sa.update(STUDY_KEYS).where(STUDY_KEYS.c.study == sa.bindparam("b_study"))
                        .values(key_id=sa.bindparam("b_key_id"), wrapped=sa.bindparam("b_wrapped")))
                conn.execute(stmt, updates)
            facts = {"count": len(updates), "to": current.key_id, "from": sorted({r.key_id for r in rows})}
            self._audit(conn, "rewrap", facts)
        return len(updates)

    def _rewrapped(self, study: str, patient: str, key_id: str, wrapped: bytes) -> dict[str, Any]:
        current = self._keyring.current
        data_key = unwrap_row(self._keyring, study, patient, key_id, wrapped)[0]
        new = wrap_row(current.usable_secret(), data_key, study, current.key_id, patient)
        return {"b_study": study, "b_key_id": current.key_id, "b_wrapped": new}

    @retried
    def key_usage(self) -> dict[str, int]:
        """How many live data keys each wrapping key id wraps (``keys retire`` refuses while > 0)."""
        with self._engine.connect() as conn:
            query = (sa.select(STUDY_KEYS.c.key_id, sa.func.count()).where(STUDY_KEYS.c.key_id.is_not(None))
                     .group_by(STUDY_KEYS.c.key_id))
            return {str(key_id): int(count) for key_id, count in conn.execute(query)}

    # -- audit and life cycle --------------------------------------------------------------------

    def _audit(self, conn: Connection, action: str, facts: dict[str, Any]) -> None:
        if self._audit_shared:
            self.audit.append_in(conn, action, facts)
        else:
            self.audit.append(action, **facts)

    def close(self) -> None:
        """Forget cached keys and release the database connections."""
        self._keys.clear()
        self._mapped.clear()
        self.audit.close()
        self._engine.dispose()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Vault(dialect={self._engine.dialect.name!r}, keyring={self._keyring!r})"


#: The PostgreSQL advisory lock that serialises creating the vault's tables (any constant; "dcvault").
_CREATE_LOCK = 0x6463_7661_756C_74


def _prepare(engine: Engine, keyring: Keyring) -> None:
    """Create the tables if missing and check the project key: one step, retried while busy.

    PostgreSQL's ``CREATE TABLE`` is not safe against a concurrent one: two
    processes opening a new vault at once (Dask workers, gateway routes) both
    find no table and the second fails on the catalogue's unique index
    (SQLSTATE 23505). A transaction-scoped advisory lock makes the check and
    the creation one step; SQLite serialises writers itself.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK})
        METADATA.create_all(conn, checkfirst=True)
    _check_project(engine, keyring)


def _separate_audit(url: str, busy: BusyWait) -> AuditLog:
    """The audit log in its own database, whose locks are waited for like the vault's."""
    engine = make_engine(url, lock_slice=LOCK_SLICE)
    try:
        return busy.run(lambda: AuditLog(engine, owns_engine=True))
    except BaseException:
        engine.dispose()
        raise


def _check_project(engine: Engine, keyring: Keyring) -> None:
    """Bind the vault to the project key it was created with: another key ring is a wrong key."""
    project = keyring.project.key_id
    with engine.begin() as conn:
        rows = [{"name": "schema", "value": SCHEMA_VERSION}, {"name": "project_key_id", "value": project}]
        insert_missing(conn, META, rows, ["name"])
        stored = conn.execute(sa.select(META.c.value).where(META.c.name == "project_key_id")).scalar()
    if stored != project:
        raise SealError(
            f"this vault belongs to project key {stored}, not {project}", reference="wrong-master-key",
            hint="open it with the key file (or its backup) it was created with",
        )
