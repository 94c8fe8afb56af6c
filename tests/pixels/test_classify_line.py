"""Regions judged with their neighbours on the same text line (classify_line)."""

from __future__ import annotations

from dicomcloak.pixels.classify import NOT_PHI, UNREAD, HeaderValues, classify_line
from dicomcloak.pixels.model import Rect, TextBox

NO_HEADER = HeaderValues()


def box(text: str | None, left: int, top: int = 10, width: int | None = None, height: int = 12) -> TextBox:
    """A box as an OCR back-end reports it: about 7 px a character at a 12 px font."""
    right = left + (width if width is not None else 7 * len(text or "x"))
    return TextBox(Rect(top, left, top + height, right), text, 0.9)


def rules(boxes: list[TextBox], header: HeaderValues = NO_HEADER) -> list[str]:
    return [verdict.rule for verdict in classify_line(boxes, header)]


def test_label_box_makes_the_next_box_phi() -> None:
    label = box("Sono:", 10)
    value = box("Kenji", label.rect.right + 4)
    assert rules([label, value]) == ["label:Operator", "label:Operator+next"]


def test_first_name_and_surname_split_over_two_boxes() -> None:
    first = box("SCOTT", 10)
    last = box("KAUFMAN", first.rect.right + 5)
    assert rules([first, last]) == ["names:first+last", "names:first+last"]
    last_comma = box("KAUFMAN,", 10)
    given = box("SCOTT", last_comma.rect.right + 5)
    assert rules([last_comma, given]) == ["names:last,first", "names:last,first"]


def test_title_box_then_name_box() -> None:
    title = box("Dr.", 10)
    assert rules([title, box("Okafor", title.rect.right + 4)]) == ["names:title", "names:title"]


def test_boxes_far_apart_on_one_line_are_no_phrase() -> None:
    """The top-left block and the top-right block of an ultrasound share rows but not phrases."""
    assert rules([box("Name:", 10), box("KIDNEY", 500)]) == ["label:Name", "none"]
    assert rules([box("SCOTT", 10), box("KAUFMAN", 500)]) == ["none", "none"]


def test_boxes_on_different_lines_are_no_phrase() -> None:
    assert rules([box("Sono:", 10, top=10), box("Kenji", 50, top=40)]) == ["label:Operator", "none"]


def test_verdicts_follow_the_order_of_the_boxes() -> None:
    label = box("DOB:", 10)
    value = box("Jul", label.rect.right + 4)
    annotation = box("GAIN 52", 300, top=200)
    verdicts = classify_line([annotation, value, label], NO_HEADER)
    assert [v.rule for v in verdicts] == ["none", "label:DOB+next", "label:DOB"]
    assert verdicts[1].kind == "date" and verdicts[0] == NOT_PHI


def test_unread_boxes_are_phi() -> None:
    assert classify_line([box(None, 10)], NO_HEADER) == [UNREAD]
    assert UNREAD.phi
