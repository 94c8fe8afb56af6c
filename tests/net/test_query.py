"""C-FIND identifiers to pseudonyms and answers back (dicomcloak.net.query): the real engine and vault.

The invariant: a translated key equals what ``deid`` (the engine) wrote for the
same original, so the remote archive finds it; an answer made of what ``deid``
wrote comes back with the originals the vault's map holds. Refusals name the
keyword, never the value, and nothing of a refused query is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom.dsutils import decode, encode

from dicomcloak.engine.deidentify import deidentify
from dicomcloak.engine.outcome import Outcome
from dicomcloak.errors import SealError
from dicomcloak.keys import Keyring, ProjectKey
from dicomcloak.keys.pseudonyms import Pseudonymizer
from dicomcloak.net.query import (
    AnswerTranslator,
    QueryRefusedError,
    plan_query,
    retrieve_ae_title,
    translate_answer,
    translate_query,
)
from dicomcloak.policy.model import Policy
from dicomcloak.standard.table import Option
from dicomcloak.vault import Vault, VaultRecord

PROJECT = ProjectKey.generate()
PSEUDONYMS = Pseudonymizer(PROJECT, "site-a")
MODIFIED = Policy(options=frozenset({Option.RETAIN_LONG_MODIFIED_DATES}))
BASIC = Policy()
FULL_DATES = Policy(options=frozenset({Option.RETAIN_LONG_FULL_DATES}))


def _original(patient_id: str = "MRN-77", *, time: str = "231500", issuer: str | None = None,
               study: str = "1.2.826.0.1.3680043.10.777.1") -> Dataset:
    ds = dcmread(str(get_testdata_file("CT_small.dcm")))
    ds.PatientID, ds.PatientName, ds.AccessionNumber = patient_id, "Doe^Jane", "ACC-0042"
    ds.StudyDate, ds.StudyTime, ds.StudyInstanceUID, ds.StudyID = "20190315", time, study, "S-9"
    ds.SeriesInstanceUID, ds.SOPInstanceUID = f"{study}.1", f"{study}.1.1"
    if issuer is not None:
        ds.IssuerOfPatientID = issuer
    return ds


def _deid(ds: Dataset, policy: Policy = MODIFIED) -> Outcome:
    return deidentify(ds, policy, PSEUDONYMS)


def _query(level: str = "STUDY", **keys: object) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


@dataclass
class Sealed:
    vault: Vault
    original: Dataset
    outcome: Outcome


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sealed]:
    """One instance de-identified by the engine, its pseudonym map sealed in a real vault (as deid does)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('vault') / 'vault.db'}"
    vault = Vault.open(url, Keyring.create(PROJECT))
    original = _original()
    outcome = _deid(original)
    out = outcome.dataset
    vault.seal_records([VaultRecord(outcome.patient_pseudonym, str(out.StudyInstanceUID),
                                    str(out.SOPInstanceUID), b"originals", outcome.replaced)])
    try:
        yield Sealed(vault, original, outcome)
    finally:
        vault.close()


# -- the keys equal what deid wrote ------------------------------------------------------------------


@pytest.mark.parametrize("policy", [MODIFIED, BASIC], ids=["modified-dates", "basic"])
def test_keys_equal_what_deid_wrote(policy: Policy) -> None:
    original = _original()
    written = _deid(original, policy).dataset
    query = _query(PatientID=original.PatientID, AccessionNumber=original.AccessionNumber,
                   StudyInstanceUID=original.StudyInstanceUID, SeriesInstanceUID=original.SeriesInstanceUID,
                   SOPInstanceUID=original.SOPInstanceUID)
    remote = translate_query(query, "STUDY", PSEUDONYMS, policy)
    keywords = ("PatientID", "AccessionNumber", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    for keyword in keywords:
        assert remote[keyword].value == written[keyword].value, keyword
        assert remote[keyword].value != original[keyword].value, keyword


def test_issuer_enters_the_patient_key_and_is_not_sent() -> None:
    original = _original(issuer="HOSPITAL-A")
    written = _deid(original).dataset
    remote = translate_query(_query(PatientID="MRN-77", IssuerOfPatientID="HOSPITAL-A"), "STUDY", PSEUDONYMS,
                             MODIFIED)
    assert remote.PatientID == written.PatientID
    assert "IssuerOfPatientID" not in remote  # removed by the profile: the remote has none
    without = translate_query(_query(PatientID="MRN-77"), "STUDY", PSEUDONYMS, MODIFIED)
    assert without.PatientID != written.PatientID  # another patient key, another pseudonym


def test_uid_lists_are_keyed_one_by_one() -> None:
    uids = ["1.2.3.4", "1.2.3.5", "1.2.3.6"]
    remote = translate_query(_query(StudyInstanceUID=uids), "STUDY", PSEUDONYMS, MODIFIED)
    assert list(remote.StudyInstanceUID) == [PSEUDONYMS.uid(uid) for uid in uids]


def test_uids_retained_by_the_policy_are_sent_as_kept() -> None:
    policy = Policy(options=frozenset({Option.RETAIN_UIDS}))
    remote = translate_query(_query(StudyInstanceUID="1.2.3.4"), "STUDY", PSEUDONYMS, policy)
    assert remote.StudyInstanceUID == "1.2.3.4"  # what deid wrote under retain-uids


@pytest.mark.parametrize("time", ["000000", "120000", "235959", ""])
def test_an_exact_date_finds_the_study_whatever_its_time(time: str) -> None:
    original = _original(time=time)
    if not time:
        del original.StudyTime
    written = _deid(original).dataset
    plan = plan_query(_query(PatientID="MRN-77", StudyDate="20190315"), "STUDY", PSEUDONYMS, MODIFIED)
    low, high = str(plan.remote.StudyDate).split("-")
    assert low <= str(written.StudyDate) <= high
    assert low != "20190315"  # shifted
    assert "StudyTime" in plan.remote and 0x00080030 in plan.added  # asked to shift the date back exactly


def test_open_date_ranges_are_shifted() -> None:
    remote = translate_query(_query(PatientID="MRN-77", StudyDate="20190101-"), "STUDY", PSEUDONYMS, MODIFIED)
    low, high = str(remote.StudyDate).split("-")
    assert low < "20190101" and high == ""
    remote = translate_query(_query(PatientID="MRN-77", SeriesDate="-20190101"), "SERIES", PSEUDONYMS,
                             MODIFIED)
    assert str(remote.SeriesDate).startswith("-")


def test_dates_kept_by_the_policy_pass_as_given() -> None:
    remote = translate_query(_query(StudyDate="20190101-20190131"), "STUDY", PSEUDONYMS, FULL_DATES)
    assert remote.StudyDate == "20190101-20190131"


def test_return_keys_and_non_identifying_keys_pass() -> None:
    query = _query(PatientName="", StudyDescription="", PatientBirthDate="", ModalitiesInStudy="CT\\MR")
    item = Dataset()
    item.ReferencedSOPInstanceUID = ""
    query.ReferencedStudySequence = Sequence([item])
    query.SpecificCharacterSet = "ISO_IR 100"
    remote = translate_query(query, "STUDY", PSEUDONYMS, BASIC)
    assert list(remote.ModalitiesInStudy) == ["CT", "MR"]
    assert remote.PatientName == "" and remote.StudyDescription == "" and remote.PatientBirthDate == ""
    assert remote.ReferencedStudySequence[0].ReferencedSOPInstanceUID == ""
    assert remote.SpecificCharacterSet == "ISO_IR 100" and remote.QueryRetrieveLevel == "STUDY"
    assert "StudyTime" not in remote  # the Basic Profile does not shift dates: nothing to shift back


# -- refusals ----------------------------------------------------------------------------------------


REFUSED = [
    ("PatientName", {"PatientName": "Smi*"}, BASIC),
    ("PatientName", {"PatientName": "*"}, BASIC),
    ("PatientName", {"PatientName": "Smithers^Waylon"}, BASIC),
    ("PatientBirthDate", {"PatientBirthDate": "19700101"}, MODIFIED),
    ("PatientID", {"PatientID": "MRN*"}, BASIC),
    ("PatientID", {"PatientID": "MRN-?7"}, BASIC),
    ("PatientID", {"PatientID": ["MRN-1", "MRN-2"]}, BASIC),
    ("AccessionNumber", {"AccessionNumber": "ACC*"}, BASIC),
    ("StudyInstanceUID", {"StudyInstanceUID": "1.2.3.*"}, BASIC),
    ("StudyDate", {"StudyDate": "20190315"}, MODIFIED),  # without the patient: no shift to apply
    ("StudyDate", {"PatientID": "MRN-77", "StudyDate": "20190315"}, BASIC),  # emptied by the profile
    ("SeriesDate", {"PatientID": "MRN-77", "SeriesDate": "2019*"}, MODIFIED),
    ("StudyDate", {"PatientID": "MRN-77", "StudyDate": "20191345"}, MODIFIED),
    ("StudyDate", {"PatientID": "MRN-77", "StudyDate": "-"}, MODIFIED),
    ("StudyDescription", {"StudyDescription": "CHEST"}, BASIC),
    ("IssuerOfPatientID", {"IssuerOfPatientID": "HOSPITAL-A"}, BASIC),
    ("StudyID", {"StudyID": "S-9"}, BASIC),
]


_IDS = [f"{row[0]}-{n}" for n, row in enumerate(REFUSED)]


@pytest.mark.parametrize(("keyword", "keys", "policy"), REFUSED, ids=_IDS)
def test_untranslatable_keys_are_refused_by_keyword(
    keyword: str, keys: dict[str, object], policy: Policy
) -> None:
    with pytest.raises(QueryRefusedError) as caught:
        translate_query(_query(**keys), "STUDY", PSEUDONYMS, policy)
    error = caught.value
    assert (error.reference, error.keyword) == ("query-not-translatable", keyword)
    for value in keys.values():
        for text in value if isinstance(value, list) else [value]:
            assert len(str(text)) < 2 or str(text) not in str(error)  # never the value


def test_a_sequence_with_a_value_is_refused() -> None:
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    query = _query()
    query.ReferencedStudySequence = Sequence([item])
    with pytest.raises(QueryRefusedError, match="ReferencedStudySequence"):
        translate_query(query, "STUDY", PSEUDONYMS, BASIC)


def test_private_and_unknown_levels_are_refused() -> None:
    query = _query()
    query.add_new(0x00091001, "LO", "secret")
    with pytest.raises(QueryRefusedError, match=r"\(0009,1001\)"):
        translate_query(query, "STUDY", PSEUDONYMS, BASIC)
    with pytest.raises(QueryRefusedError, match="QueryRetrieveLevel"):
        translate_query(_query("FRAME"), "FRAME", PSEUDONYMS, BASIC)


# -- answers back ------------------------------------------------------------------------------------


def _answer(outcome: Outcome) -> Dataset:
    """A C-FIND answer made of what deid wrote (as the remote archive returns it)."""
    out = outcome.dataset
    answer = Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "Modality",
                    "PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "StudyID"):
        answer[keyword] = out[keyword]
    answer.QueryRetrieveLevel = "IMAGE"
    answer.RetrieveAETitle = "ORTHANC"
    return answer


KEYWORDS = ("SOPClassUID", "SOPInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "Modality",
            "PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "StudyID")


@pytest.mark.parametrize("by", ["patient", "study-uid"])
def test_answers_come_back_with_the_originals(sealed: Sealed, by: str) -> None:
    original = sealed.original
    if by == "patient":
        query = _query("IMAGE", PatientID=original.PatientID, StudyDate="", StudyTime="", StudyInstanceUID="")
    else:  # the patient is found through the vault's map and confirmed by its pseudonym
        query = _query("IMAGE", StudyInstanceUID=original.StudyInstanceUID, StudyDate="", StudyTime="")
    plan = plan_query(query, "IMAGE", PSEUDONYMS, MODIFIED)
    back = translate_answer(_answer(sealed.outcome), plan, sealed.vault)
    for keyword in KEYWORDS:
        assert back[keyword].value == original[keyword].value, keyword


def test_gateway_added_return_keys_are_removed(sealed: Sealed) -> None:
    plan = plan_query(_query(PatientID="MRN-77", StudyDate=""), "STUDY", PSEUDONYMS, MODIFIED)
    answer = Dataset()
    out = sealed.outcome.dataset
    answer.PatientID, answer.StudyDate, answer.StudyTime = out.PatientID, out.StudyDate, out.StudyTime
    back = translate_answer(answer, plan, sealed.vault)
    assert back.StudyDate == "20190315"  # shifted back with the time the gateway asked for
    assert "StudyTime" not in back


def test_what_the_vault_does_not_map_stays_pseudonymous(sealed: Sealed) -> None:
    plan = plan_query(_query("IMAGE", StudyInstanceUID=""), "IMAGE", PSEUDONYMS, MODIFIED)
    answer = Dataset()
    answer.StudyInstanceUID = PSEUDONYMS.uid("9.9.9.9")  # deid'd elsewhere: not in this vault
    answer.PatientID = PSEUDONYMS.patient("pid:\x00SOMEONE-ELSE")
    answer.StudyDate = "20100101"
    back = translate_answer(answer, plan, sealed.vault)
    assert back.StudyInstanceUID == answer.StudyInstanceUID
    assert back.PatientID == answer.PatientID
    assert back.StudyDate == "20100101"  # the patient is unknown: no shift is guessed


def test_widened_date_answers_outside_the_asked_range_are_dropped(sealed: Sealed) -> None:
    plan = plan_query(_query(PatientID="MRN-77", StudyDate="20190316"), "STUDY", PSEUDONYMS, MODIFIED)
    translator = AnswerTranslator(plan, sealed.vault)
    out = sealed.outcome.dataset  # 2019-03-15 23:15: shifted into the widened range's first day
    answer = Dataset()
    answer.PatientID, answer.StudyDate, answer.StudyTime = out.PatientID, out.StudyDate, out.StudyTime
    back = translator.translate(answer)
    assert back.StudyDate == "20190315"
    assert not plan.matches(back)
    same_day = plan_query(_query(PatientID="MRN-77", StudyDate="20190315"), "STUDY", PSEUDONYMS, MODIFIED)
    assert same_day.matches(translate_answer(answer, same_day, sealed.vault))


def test_retrieve_ae_title_points_at_the_gateway(sealed: Sealed) -> None:
    answer = _answer(sealed.outcome)
    retrieve_ae_title(answer, "DICOMCLOAK")
    assert answer.RetrieveAETitle == "DICOMCLOAK"


def test_an_answer_without_the_matched_patient_id_is_still_that_patient(sealed: Sealed) -> None:
    plan = plan_query(_query(PatientID="MRN-77", StudyDate="20190315"), "STUDY", PSEUDONYMS, MODIFIED)
    out = sealed.outcome.dataset
    answer = Dataset()
    answer.StudyDate, answer.StudyTime = out.StudyDate, out.StudyTime
    back = translate_answer(answer, plan, sealed.vault)
    assert back.StudyDate == "20190315" and plan.matches(back)


def test_a_shredded_study_answers_pseudonymous(tmp_path: Path) -> None:
    vault = Vault.open(f"sqlite:///{tmp_path}/shredded.db", Keyring.create(PROJECT))
    try:
        outcome = _deid(_original(study="1.2.826.0.1.3680043.10.777.2"))
        study = str(outcome.dataset.StudyInstanceUID)
        vault.seal_records([VaultRecord(outcome.patient_pseudonym, study, str(outcome.dataset.SOPInstanceUID),
                                        b"originals", outcome.replaced)])
        vault.shred(study=study)
        plan = plan_query(_query(StudyInstanceUID=""), "STUDY", PSEUDONYMS, MODIFIED)
        answer = Dataset()
        answer.StudyInstanceUID = study
        with pytest.raises(SealError, match="vault-key-shredded"):
            vault.lookup(study)  # crypto-shredded: the original is gone for good
        assert translate_answer(answer, plan, vault).StudyInstanceUID == study
    finally:
        vault.close()


def test_non_ascii_originals_key_alike_and_come_back_declared(tmp_path: Path) -> None:
    original = _original("MÜLLER-7", study="1.2.826.0.1.3680043.10.777.3")
    original.SpecificCharacterSet = "ISO_IR 100"
    original.PatientName = "Müller^Jürgen"
    original = dcmread(_saved(original, tmp_path))  # read back: decoded with its character set, as deid does
    outcome = _deid(original)
    query = _query(PatientID="MÜLLER-7", PatientName="")
    plan = plan_query(query, "STUDY", PSEUDONYMS, MODIFIED)
    assert plan.remote.PatientID == outcome.dataset.PatientID
    vault = Vault.open(f"sqlite:///{tmp_path}/names.db", Keyring.create(PROJECT))
    try:
        out = outcome.dataset
        vault.seal_records([VaultRecord(outcome.patient_pseudonym, str(out.StudyInstanceUID),
                                        str(out.SOPInstanceUID), b"originals", outcome.replaced)])
        answer = Dataset()
        answer.PatientID, answer.PatientName = out.PatientID, out.PatientName
        back = translate_answer(answer, plan, vault)
    finally:
        vault.close()
    assert (back.PatientID, str(back.PatientName)) == ("MÜLLER-7", "Müller^Jürgen")
    assert back.SpecificCharacterSet == "ISO_IR 192"
    wire = encode(back, False, True)  # as pynetdicom sends it
    assert wire is not None and str(decode(BytesIO(wire), False, True).PatientName) == "Müller^Jürgen"


def _saved(ds: Dataset, folder: Path) -> Path:
    path = folder / "original.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path
