"""The packaged safe-private list: well formed, sourced, numeric or coded values only."""

from __future__ import annotations

import csv

from pydicom._private_dict import private_dictionaries

from dicomcloak.policy.model import default_safe_private, normalize_creator
from dicomcloak.standard import generate
from dicomcloak.standard.safe_private import safe_private_entries, safe_private_rows

_SAFE_VRS = {"DS", "IS", "SS", "US", "SL", "UL", "FL", "FD", "CS"}


def test_columns() -> None:
    with (generate.DATA_DIR / "safe_private.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["group", "private_creator", "element", "vr", "name", "source"]
        assert sum(1 for _ in reader) == len(safe_private_rows())


def test_rows_are_private_sourced_and_value_safe() -> None:
    rows = safe_private_rows()
    assert len(rows) > 100
    for row in rows:
        assert row.group % 2 == 1
        assert 0 <= row.element <= 0xFF
        assert row.vr in _SAFE_VRS, row
        assert row.source
        known = private_dictionaries[row.creator][f"{row.group:04X}xx{row.element:02X}"]
        assert known[0] == row.vr
        assert known[2] == row.name


def test_entries_are_normalised_and_unique() -> None:
    entries = safe_private_entries()
    assert len(entries) == len(safe_private_rows())
    assert all(creator == normalize_creator(creator) for _, creator, _ in entries)
    assert (0x0043, "GEMS_PARM_01", 0x39) in entries  # GE diffusion b-value
    assert (0x0019, "SIEMENS MR HEADER", 0x0C) in entries  # Siemens B_value
    assert (0x2001, "PHILIPS IMAGING DD 001", 0x03) in entries  # Philips Diffusion B-Factor
    assert default_safe_private() == entries
