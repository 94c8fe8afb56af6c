"""The packaged beyond-table list: well-formed, reasoned, disjoint from Table E.1-1, reviewable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom.datadict import dictionary_keyword, dictionary_VR, tag_for_keyword

from dicomcloak.standard import generate
from dicomcloak.standard.beyond import beyond_header, beyond_rows
from dicomcloak.standard.review import candidates, review_text
from dicomcloak.standard.table import EDITION, table_rows

#: Named by the issue and the brief: each must be on the list.
NAMED = (
    "PatientBirthDateInAlternativeCalendar",
    "PatientDeathDateInAlternativeCalendar",
    "PatientAlternativeCalendar",
    "ResponsiblePersonRole",
    "GroupOfPatientsIdentificationSequence",
    "IssuerOfPatientIDQualifiersSequence",
    "BreedRegistrationNumber",
    "BreedRegistrationSequence",
)


def _tabled() -> set[int]:
    return {
        int(row.tag[1:5], 16) << 16 | int(row.tag[6:10], 16)
        for row in table_rows()
        if len(row.tag) == 11 and "x" not in row.tag
    }


def test_header_records_edition_method_and_date() -> None:
    header = " ".join(beyond_header())
    assert "edition:" in header and "2025c" in header
    assert "made:" in header and "highdicom" in header and "pydicom" in header
    assert "date:" in header


def test_no_row_duplicates_table_e1_1() -> None:
    tabled = _tabled()
    assert [row.keyword for row in beyond_rows() if row.tag in tabled] == []


def test_rows_match_the_data_dictionary_and_are_reasoned() -> None:
    rows = beyond_rows()
    assert len({row.tag for row in rows}) == len(rows)
    assert [row.tag for row in rows] == sorted(row.tag for row in rows)
    for row in rows:
        assert tag_for_keyword(row.keyword) == row.tag, row.keyword
        assert dictionary_keyword(row.tag) == row.keyword
        assert dictionary_VR(row.tag) == row.vr, row.keyword
        assert len(row.reason) > 20, row.keyword
        assert row.tag_text == f"({row.tag >> 16:04X},{row.tag & 0xFFFF:04X})"


@pytest.mark.parametrize("keyword", NAMED)
def test_named_attributes_are_listed(keyword: str) -> None:
    assert keyword in {row.keyword for row in beyond_rows()}


def test_combined_actions_have_packaged_types() -> None:
    """The engine resolves a combined action by Type: every such keyword must be in iod_types.json."""
    document = json.loads((generate.DATA_DIR / "iod_types.json").read_text("utf-8"))
    combined = {row.keyword for row in beyond_rows() if row.basic.is_combined}
    assert combined, "the list uses combined actions (e.g. X/Z for Breed Registration Sequence)"
    assert combined <= set(document["keywords"])


def test_option_columns_only_keep_or_clean() -> None:
    for row in beyond_rows():
        assert set(row.options.values()) <= {"K", "C"}, row.keyword


def test_review_lists_no_listed_attribute() -> None:
    listed = _tabled() | {row.tag for row in beyond_rows()}
    found = candidates()
    assert found and not set(found) & listed
    assert 0x00100022 in found  # Type of Patient ID: reviewed, carries no identity
    assert review_text().count("\n") == len(found)


def test_generate_review_prints_candidates(capsys: pytest.CaptureFixture[str]) -> None:
    assert generate.main(["--review"]) == 0
    assert "TypeOfPatientID" in capsys.readouterr().out


def test_edition_names_the_list() -> None:
    edition = (generate.DATA_DIR / "EDITION").read_text("utf-8")
    assert edition.startswith(EDITION)
    assert "beyond-table.csv" in edition


def test_docs_give_the_count() -> None:
    docs = " ".join((Path(__file__).resolve().parents[2] / "docs" / "policy.md").read_text("utf-8").split())
    assert f"`src/dicomcloak/standard/data/beyond-table.csv` ({len(beyond_rows())} attributes)" in docs
