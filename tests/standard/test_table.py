"""The packaged Table E.1-1 parses completely."""

from __future__ import annotations

import csv
from pathlib import Path

from dicomcloak.standard import generate
from dicomcloak.standard.table import Action, Option, method_codes, table_rows


def test_row_count() -> None:
    assert len(table_rows()) == 656


def test_every_action_parses() -> None:
    with (generate.DATA_DIR / "ps3.15-table-e1-1.csv").open(encoding="utf-8", newline="") as handle:
        raw = list(csv.DictReader(handle))
    assert len(raw) == 656
    for row in raw:
        Action(row["basic_profile"])
        for option in Option:
            if row[option.column]:
                Action(row[option.column])


def test_known_rows() -> None:
    by_tag = {row.tag: row for row in table_rows()}
    assert by_tag["(0010,0010)"].basic is Action.Z
    assert by_tag["(0010,0020)"].basic is Action.ZD
    assert by_tag["(0008,0080)"].options[Option.RETAIN_INSTITUTION_IDENTITY] is Action.K
    assert {"(50xx,xxxx)", "(60xx,3000)", "(60xx,4000)"} <= set(by_tag)
    assert any(tag.startswith("(gggg,eeee)") for tag in by_tag)


def test_method_codes_present() -> None:
    assert method_codes()["basic_profile"].value == "113100"


def test_data_dir_is_the_package_data() -> None:
    assert Path(generate.__file__).parent / "data" == generate.DATA_DIR
