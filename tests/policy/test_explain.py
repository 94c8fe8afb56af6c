"""``policy explain``: every table row, the site rules and the defaults, reflecting options."""

from __future__ import annotations

import json
from pathlib import Path

from dicomcloak.policy import build_policy, explain, render_json, render_text
from dicomcloak.standard.beyond import beyond_rows
from dicomcloak.standard.safe_private import safe_private_entries
from dicomcloak.standard.table import table_rows

N_TABLE = 656

DEFAULT_SOURCES = {
    "default:private-creator",
    "default:group-length",
    "default:dictionary",
    "default:unknown-public",
}


def test_lists_every_table_row_then_beyond_table_rows_then_defaults() -> None:
    rows = explain(build_policy())
    beyond = len(beyond_rows())
    assert len(table_rows()) == N_TABLE
    assert [row.tag for row in rows[:N_TABLE]] == [row.tag for row in table_rows()]
    assert [row.tag for row in rows[N_TABLE : N_TABLE + beyond]] == [row.tag_text for row in beyond_rows()]
    assert {row.source for row in rows[N_TABLE : N_TABLE + beyond]} == {"beyond-table"}
    assert {row.source for row in rows[N_TABLE + beyond :]} == DEFAULT_SOURCES
    assert len(rows) == N_TABLE + beyond + 4


def test_reflects_options() -> None:
    basic = {row.tag: row for row in explain(build_policy())}
    retained = {row.tag: row for row in explain(build_policy(["retain-institution-identity"]))}
    assert basic["(0008,0080)"].action == "X/Z/D"
    assert basic["(0008,0080)"].note
    assert (retained["(0008,0080)"].action, retained["(0008,0080)"].source) == (
        "K",
        "table:retain-institution-identity",
    )


def test_safe_list_shown_with_retain_safe_private() -> None:
    rows = explain(build_policy(["retain-safe-private"]))
    safe = [row for row in rows if row.note == "safe list"]
    assert len(safe) == len(safe_private_entries())
    assert all(row.action == "C" for row in safe)
    private_row = next(row for row in rows if row.tag.startswith("(gggg,eeee)"))
    assert private_row.action == "X"


def test_site_rows(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[tags]\n"(0008,0080)" = "K"\n"(0028,0010)" = "X"\n'
        '[private]\n"0019,GEMS_ACQU_01,23" = "K"\n[vr]\nUN = "X"\n',
        encoding="utf-8",
    )
    rows = explain(build_policy([], path))
    by_tag = {row.tag: row for row in rows}
    assert (by_tag["(0008,0080)"].action, by_tag["(0008,0080)"].source) == ("K", "site:tag")
    assert (by_tag["(0028,0010)"].name, by_tag["(0028,0010)"].source) == ("Rows", "site:tag")
    assert (by_tag["(0019,xx23)"].action, by_tag["(0019,xx23)"].source) == ("K", "site:private")
    assert by_tag["VR UN"].source == "site:vr"
    dictionary = next(row for row in rows if row.source == "default:dictionary")
    assert dictionary.action == "K"  # the site rule on Rows does not leak into the default row


def test_reference_sequence_note_follows_setting(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[policy]\nkeep_reference_sequences = false\n", encoding="utf-8")
    keep = {row.tag: row for row in explain(build_policy())}
    drop = {row.tag: row for row in explain(build_policy([], path))}
    assert keep["(0008,1140)"].action == "X/Z/U*"
    assert keep["(0008,1140)"].note.startswith("U:")
    assert not drop["(0008,1140)"].note.startswith("U:")


def test_render_text_is_aligned() -> None:
    text = render_text(explain(build_policy()))
    lines = text.splitlines()
    assert lines[0].split() == ["TAG", "NAME", "ACTION", "SOURCE", "NOTE"]
    assert len(lines) == N_TABLE + len(beyond_rows()) + 4 + 1
    column = lines[0].index("ACTION")
    assert all(line[column - 2 : column] == "  " for line in lines)


def test_render_json_round_trips() -> None:
    rows = explain(build_policy(["retain-uids"]))
    document = json.loads(render_json(rows))
    assert document["edition"].startswith("2025c")
    assert len(document["rows"]) == len(rows)
    assert document["rows"][0] == {
        "tag": rows[0].tag,
        "name": rows[0].name,
        "action": rows[0].action,
        "source": rows[0].source,
        "note": rows[0].note,
    }
