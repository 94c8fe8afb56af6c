"""Typed access to DICOM PS3.15 Table E.1-1 and CID 7050, packaged as data.

The table is data (``data/ps3.15-table-e1-1.csv``, edition in ``EDITION``);
this module only interprets it. Regenerate the data with
``python -m dicomcloak.standard.generate`` (see that module).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources

__all__ = [
    "EDITION",
    "Action",
    "MethodCode",
    "Option",
    "TableRow",
    "method_codes",
    "table_rows",
]

#: Edition of PS3.15 the packaged table was taken from.
EDITION = "2025c (+7 Basic Profile rows from 2026c)"


class Action(StrEnum):
    """Actions of PS3.15 E.1.1 (Table E.1-1 codes), single and combined."""

    D = "D"  # replace with a non-zero-length dummy consistent with the VR
    Z = "Z"  # replace with zero length (or a dummy)
    X = "X"  # remove
    K = "K"  # keep (sequences: keep, clean recursively)
    C = "C"  # clean: values of similar meaning without identifying information
    U = "U"  # replace with a UID consistent within the set of instances
    ZD = "Z/D"
    XZ = "X/Z"
    XD = "X/D"
    XZD = "X/Z/D"
    XZU = "X/Z/U*"

    @property
    def is_combined(self) -> bool:
        """True for the combined actions that depend on the IOD's attribute type."""
        return self in _COMBINED


_COMBINED = frozenset({Action.ZD, Action.XZ, Action.XD, Action.XZD, Action.XZU})


class Option(StrEnum):
    """The ten options of PS3.15 Table E.1-1, named in kebab-case for the CLI."""

    RETAIN_SAFE_PRIVATE = "retain-safe-private"
    RETAIN_UIDS = "retain-uids"
    RETAIN_DEVICE_IDENTITY = "retain-device-identity"
    RETAIN_INSTITUTION_IDENTITY = "retain-institution-identity"
    RETAIN_PATIENT_CHARACTERISTICS = "retain-patient-characteristics"
    RETAIN_LONG_FULL_DATES = "retain-long-full-dates"
    RETAIN_LONG_MODIFIED_DATES = "retain-long-modified-dates"
    CLEAN_DESCRIPTORS = "clean-descriptors"
    CLEAN_STRUCTURED_CONTENT = "clean-structured-content"
    CLEAN_GRAPHICS = "clean-graphics"

    @property
    def column(self) -> str:
        """The CSV column of Table E.1-1 this option corresponds to."""
        return _COLUMNS[self]


_COLUMNS: Mapping[Option, str] = {
    Option.RETAIN_SAFE_PRIVATE: "rtn_safe_priv_opt",
    Option.RETAIN_UIDS: "rtn_uids_opt",
    Option.RETAIN_DEVICE_IDENTITY: "rtn_dev_id_opt",
    Option.RETAIN_INSTITUTION_IDENTITY: "rtn_inst_id_opt",
    Option.RETAIN_PATIENT_CHARACTERISTICS: "rtn_pat_chars_opt",
    Option.RETAIN_LONG_FULL_DATES: "rtn_long_full_dates_opt",
    Option.RETAIN_LONG_MODIFIED_DATES: "rtn_long_modif_dates_opt",
    Option.CLEAN_DESCRIPTORS: "clean_desc_opt",
    Option.CLEAN_STRUCTURED_CONTENT: "clean_struct_cont_opt",
    Option.CLEAN_GRAPHICS: "clean_graph_opt",
}


@dataclass(frozen=True, slots=True)
class TableRow:
    """One row of Table E.1-1.

    ``tag`` is the table's text, e.g. ``"(0010,0010)"``, ``"(50xx,xxxx)"`` or the
    private-attributes row; ``options`` holds only the options that change
    the Basic Profile action for this row.
    """

    tag: str
    name: str
    keyword: str
    retired: bool
    in_std_comp_iod: bool | None
    basic: Action
    options: Mapping[Option, Action]
    first_listed: str


@dataclass(frozen=True, slots=True)
class MethodCode:
    """A CID 7050 code for De-identification Method Code Sequence (0012,0064)."""

    value: str
    scheme: str
    meaning: str
    column: str


def _read_data(name: str) -> str:
    return resources.files("dicomcloak.standard").joinpath("data", name).read_text("utf-8")


#: (option, column) in table order: iterating the Enum itself costs a generator step per member, per row.
_OPTION_COLUMNS = tuple((opt, opt.column) for opt in Option)


def _parse_row(raw: Mapping[str, str]) -> TableRow:
    options = {opt: Action(raw[column]) for opt, column in _OPTION_COLUMNS if raw[column]}
    in_iod = {"Y": True, "N": False}.get(raw["in_std_comp_iod"])
    return TableRow(
        tag=raw["tag"],
        name=raw["attribute_name"],
        keyword=raw["keyword"],
        retired=raw["retired"] == "Y",
        in_std_comp_iod=in_iod,
        basic=Action(raw["basic_profile"]),
        options=options,
        first_listed=raw["first_listed"],
    )


@cache
def table_rows() -> tuple[TableRow, ...]:
    """Return every row of the packaged Table E.1-1, in table order."""
    reader = csv.DictReader(io.StringIO(_read_data("ps3.15-table-e1-1.csv")))
    return tuple(_parse_row(raw) for raw in reader)


@cache
def method_codes() -> Mapping[str, MethodCode]:
    """Return the CID 7050 codes keyed by Table E.1-1 column (or code value)."""
    reader = csv.DictReader(io.StringIO(_read_data("cid-7050-deidentification-method.csv")))
    codes: dict[str, MethodCode] = {}
    for raw in reader:
        code = MethodCode(
            raw["code_value"], raw["coding_scheme_designator"], raw["code_meaning"],
            raw["table_e1_1_column"],
        )
        codes[code.column if code.column.endswith(("_opt", "profile")) else code.value] = code
    return codes
