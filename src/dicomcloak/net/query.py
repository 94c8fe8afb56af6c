"""Q/R identifiers into pseudonyms and answers back (PS3.4 C.2.2.2, C.4.1), without any network.

The remote archive holds what ``dicomcloak deid`` wrote, so a query key must
equal what the engine wrote for the original value. The key is therefore made
by the engine itself: the matching keys go into a small probe data set that
:func:`dicomcloak.engine.deidentify.deidentify` de-identifies under the same
policy, key and domain as the gateway's deidentify route (architecture.md
decision 2: keyed pseudonyms need no lookup one way). Patient ID becomes the
patient pseudonym (Issuer of Patient ID + Patient ID, engine/identity.py),
UIDs their keyed UIDs, Accession Number its keyed identifier; study and series
dates move by the patient's keyed shift (engine/dates.py). Whatever the engine
does not turn into a searchable value, and every other key given a value, is
refused with ``query-not-translatable`` (the error names the keyword, never the
value): it is never forwarded.

Answers come back through the vault's pseudonym map (engine/uidmap.py,
:func:`dicomcloak.engine.reidentify.remap`): UIDs, Patient ID, Patient's Name,
Accession Number and Study ID to their originals where the map holds them;
dates shifted back when the answer's patient is known for certain. Whatever
cannot be translated back stays pseudonymous: never guessed (docs/gateway.md,
"Answers and retrieved instances").
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from dicomcloak.engine import dates
from dicomcloak.engine.deidentify import deidentify
from dicomcloak.engine.identity import identify
from dicomcloak.engine.reidentify import remap
from dicomcloak.engine.uidmap import map_key
from dicomcloak.engine.values import is_well_known_uid
from dicomcloak.errors import DicomcloakError, SealError
from dicomcloak.keys.pseudonyms import DateShift, Pseudonymizer
from dicomcloak.net.querykeys import (
    CHARSET,
    DATE_KEYS,
    ID_KEYS,
    ISSUER,
    LEVEL,
    LEVELS,
    PASSED,
    PATIENT_ID,
    QUERY_NOT_TRANSLATABLE,
    UID_KEYS,
    QueryRefusedError,
    check_keys,
    date_bounds,
    is_return_key,
    refuse,
    text,
)
from dicomcloak.policy.model import Policy
from dicomcloak.standard.table import Action

__all__ = [
    "LEVELS",
    "QUERY_NOT_TRANSLATABLE",
    "AnswerTranslator",
    "MapLookup",
    "QueryPlan",
    "QueryRefusedError",
    "plan_query",
    "refuse",
    "retrieve_ae_title",
    "translate_answer",
    "translate_query",
]

_RETRIEVE_AE = 0x00080054
_SEARCHABLE = frozenset({"P", "U"})  # keyed pseudonyms and UIDs: the engine's deterministic stand-ins


class MapLookup(Protocol):
    """The vault's pseudonym map (:meth:`dicomcloak.vault.Vault.lookup`): original of a map key, or None."""

    def lookup(self, pseudonym: str) -> str | None:
        """The original of a pseudonym UID or tag-qualified ID, or None."""


@dataclass(frozen=True)
class DateRange:
    """A matched date as the requester gave it (``""``: open end), for filtering the widened answers."""

    tag: int
    low: str
    high: str


@dataclass(frozen=True)
class QueryPlan:
    """A translated identifier and what translating its answers back needs."""

    remote: Dataset  # what is sent to the remote archive: pseudonyms and return keys only
    pseudonymizer: Pseudonymizer
    policy: Policy
    known: Mapping[str, str]  # vault map key of a pseudonym made from the query -> its original
    patient: str = ""  # the Patient ID sent (the patient pseudonym), when the query named the patient
    shift: DateShift | None = None  # that patient's date shift
    issuer: str = ""  # Issuer of Patient ID given with it
    ranges: tuple[DateRange, ...] = ()
    added: frozenset[int] = field(default_factory=frozenset)  # return keys the gateway added

    def matches(self, answer: Dataset) -> bool:
        """Whether a translated-back answer lies in the requester's date ranges (the remote's are wider)."""
        for wanted in self.ranges:
            value = text(answer.get(wanted.tag))
            if value and ((wanted.low and value < wanted.low) or (wanted.high and value > wanted.high)):
                return False
        return True


def translate_query(identifier: Dataset, level: str, pseudonymizer: Pseudonymizer, policy: Policy) -> Dataset:
    """The identifier to send to the remote archive; raises :class:`QueryRefusedError`."""
    return plan_query(identifier, level, pseudonymizer, policy).remote


def plan_query(identifier: Dataset, level: str, pseudonymizer: Pseudonymizer, policy: Policy) -> QueryPlan:
    """Translate ``identifier`` with the engine (module docstring); raises :class:`QueryRefusedError`."""
    if level not in LEVELS:
        raise refuse(LEVEL, "not PATIENT, STUDY, SERIES or IMAGE")
    remote = Dataset()
    matching: dict[int, DataElement] = {}
    for elem in identifier:
        tag = int(elem.tag)
        if tag in (LEVEL, CHARSET) or tag in PASSED or is_return_key(elem):
            remote.add(copy.deepcopy(elem))
        else:
            matching[tag] = elem
    check_keys(matching)
    return _translate(remote, matching, pseudonymizer, policy)


def _translate(
    remote: Dataset, matching: dict[int, DataElement], pseudonymizer: Pseudonymizer, policy: Policy
) -> QueryPlan:
    probe = _probe(matching)
    try:
        outcome = deidentify(probe, policy, pseudonymizer)
    except DicomcloakError:
        raise refuse(min(matching, default=LEVEL), "the engine cannot process it") from None
    actions = {change.path[0]: change.action for change in outcome.changes if len(change.path) == 1}
    for tag in sorted(matching.keys() & (ID_KEYS | UID_KEYS | {ISSUER})):
        _copy_translated(remote, tag, actions.get(tag), outcome.dataset)
    patient = text(outcome.dataset.get(PATIENT_ID)) if PATIENT_ID in matching else ""
    shift = identify(probe, pseudonymizer).shift if patient else None
    ranges = tuple(_dates(remote, matching, actions, shift))
    added = _add_paired_times(remote, policy)
    return QueryPlan(
        remote, pseudonymizer, policy, dict(outcome.replaced), patient, shift,
        text(matching.get(ISSUER)), ranges, added,
    )


def _copy_translated(remote: Dataset, tag: int, action: str | None, out: Dataset) -> None:
    """Send what the engine wrote: a keyed value (P, U) or, if the policy keeps it, the value kept."""
    if tag == ISSUER:
        if action is None:  # kept by the policy: the remote holds it as it is
            remote.add(copy.deepcopy(out[tag]))
        return  # otherwise it only enters the patient key (removed by the Basic Profile)
    if action is not None and action not in _SEARCHABLE:
        raise refuse(tag, "the policy leaves no searchable value")
    remote.add(copy.deepcopy(out[tag]))


def _dates(
    remote: Dataset, matching: dict[int, DataElement], actions: dict[int, str], shift: DateShift | None
) -> Iterable[DateRange]:
    """Study/Series Date: kept as given (policy keeps dates) or moved by the patient's shift, a day wider."""
    for tag in sorted(matching.keys() & DATE_KEYS):
        low, high = date_bounds(tag, text(matching[tag]))
        action = actions.get(tag)
        if action is None:
            remote.add_new(tag, "DA", text(matching[tag]))
            continue
        if action != "C":
            raise refuse(tag, "the policy leaves no searchable date")
        if shift is None:
            raise refuse(tag, "a date matches only with the patient's ID: the date shift is per patient")
        remote.add_new(tag, "DA", f"{_moved(low, shift, 0)}-{_moved(high, shift, 1)}")
        yield DateRange(tag, low, high)


def _moved(bound: str, shift: DateShift, extra_days: int) -> str:
    """A bound moved as the engine moves a date without its time; ``extra_days`` widens the upper bound.

    With its paired time the engine moves date and time together by the whole
    shift (engine/dates.py), which lands a date on the day it moves to or the
    day after: the upper bound is one day later, and :meth:`QueryPlan.matches`
    drops what the widening let in once the answer's date is shifted back.
    """
    if not bound:
        return ""
    moved = dates.shift_date(bound, None, shift)
    if moved is None:
        raise ValueError(bound)  # checked by date_bounds: unreachable
    day = dt.datetime.strptime(moved, "%Y%m%d").date() + dt.timedelta(days=extra_days)
    return day.strftime("%Y%m%d")


def _add_paired_times(remote: Dataset, policy: Policy) -> frozenset[int]:
    """Ask for the time paired with each shifted date: shifting the date back exactly needs it."""
    added = set()
    for elem in list(remote):
        tag = int(elem.tag)
        paired = dates.paired_tag(tag) if elem.VR == "DA" else None
        if paired is not None and paired not in remote and _shifted(policy, tag, "DA"):
            remote.add_new(paired, "TM", None)
            added.add(paired)
    return frozenset(added)


def _shifted(policy: Policy, tag: int, vr: str) -> bool:
    """Whether de-identification shifts this date or time (C on DA/TM/DT, engine/actions.py ``_clean``)."""
    return policy.rule(tag, vr).action is Action.C


def _probe(matching: dict[int, DataElement]) -> Dataset:
    """A data set holding the matching keys, which the engine de-identifies as it would an instance."""
    probe = Dataset()
    probe.file_meta = FileMetaDataset()
    probe.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for tag, elem in matching.items():
        if tag in DATE_KEYS:
            low, high = date_bounds(tag, text(elem))
            probe.add_new(tag, "DA", low or high)  # one date tells what the policy does to the key
        else:
            probe.add(copy.deepcopy(elem))
    return probe


class AnswerTranslator:
    """Translates the answers of one plan back; vault lookups are made once per pseudonym.

    Parameters
    ----------
    plan:
        The plan the query was sent with.
    vault:
        The vault's pseudonym map (``Vault.lookup``).
    """

    def __init__(self, plan: QueryPlan, vault: MapLookup) -> None:
        self.plan = plan
        self._vault = vault
        self._cache: dict[str, str | None] = dict(plan.known)

    def lookup(self, key: str) -> str | None:
        """The original behind a vault map key: from the query itself, else the vault (each asked once)."""
        if key in self._cache:
            return self._cache[key]
        if ":" not in key and is_well_known_uid(key):  # a SOP class or a transfer syntax
            return None
        try:
            original = self._vault.lookup(key)
        except SealError as error:
            if error.reference != "vault-key-shredded":
                raise  # tampered or unreadable: fail closed
            original = None  # shredded: the originals are gone by design, the answer stays pseudonymous
        self._cache[key] = original
        return original

    def translate(self, answer: Dataset) -> Dataset:
        """The answer with originals where known (UIDs, IDs, names, dates), the rest left as it came."""
        shift = self._shift(text(answer.get(PATIENT_ID)))
        out, _ = remap(answer, self.lookup)
        if shift is not None:
            _shift_back(out, self.plan.policy, shift)
        for tag in self.plan.added:
            if tag in out:
                del out[tag]
        _declare_charset(out)
        return out

    def _shift(self, patient: str) -> DateShift | None:
        """The date shift of the answer's patient, only when it is known for certain.

        When the query matched on Patient ID every answer is that patient's,
        even one the remote sent without the key (PS3.4 C.2.2.1.1 says it must
        return it).
        """
        if patient == self.plan.patient or (not patient and self.plan.patient):
            return self.plan.shift
        if not patient:
            return None
        original = self.lookup(map_key(PATIENT_ID, patient, "LO"))
        if original is None:
            return None
        for issuer in dict.fromkeys((self.plan.issuer, "")):
            probe = Dataset()
            probe.PatientID = original
            if issuer:
                probe.IssuerOfPatientID = issuer
            identity = identify(probe, self.plan.pseudonymizer)
            if identity.patient_pseudonym == patient:  # the patient key is confirmed, not guessed
                return identity.shift
        return None


def translate_answer(answer: Dataset, plan: QueryPlan, vault: MapLookup) -> Dataset:
    """One answer translated back (see :class:`AnswerTranslator`, which caches across answers)."""
    return AnswerTranslator(plan, vault).translate(answer)


def _shift_back(out: Dataset, policy: Policy, shift: DateShift) -> None:
    """Undo the engine's date shift on the top-level dates and times it shifts (the same functions, negated).

    Values are read as received before any is changed: a date goes back with
    its paired time as it was shifted with it. A value that does not parse is
    left as it is.
    """
    back = DateShift(-shift.days, -shift.seconds)
    received = {int(elem.tag): text(elem) for elem in out if elem.VR in ("DA", "TM", "DT")}
    for tag, value in received.items():
        vr = str(out[tag].VR)
        if not value or "\\" in value or not _shifted(policy, tag, vr):
            continue
        paired = received.get(dates.paired_tag(tag) or -1) or None
        if vr == "DA":
            moved = dates.shift_date(value, paired, back)
        elif vr == "TM":
            moved = dates.shift_time(value, paired, back)
        else:
            moved = dates.shift_datetime(value, back)
        if moved is not None:
            out[tag].value = moved


def _declare_charset(out: Dataset) -> None:
    """Declare UTF-8 (ISO_IR 192, PS3.5 6.1.2.3) when an original brought back is not ASCII.

    The remote's answer was pseudonymous, so ASCII; the original names and
    IDs may not be, and the answer must say how they are encoded.
    """
    texts = (elem.value for elem in out if elem.VR in ("PN", "LO", "SH") and elem.value is not None)
    if any(not str(value).isascii() for value in texts):
        out.SpecificCharacterSet = "ISO_IR 192"


def retrieve_ae_title(answer: Dataset, ae_title: str) -> None:
    """Point Retrieve AE Title at the gateway: a C-MOVE must come through it (PS3.4 C.4.1.1.3.2)."""
    if _RETRIEVE_AE in answer:
        answer[_RETRIEVE_AE].value = ae_title
