"""The needle index's precision rules, and that its two search strategies agree."""

from __future__ import annotations

import random

from dicomcloak.verify.needles import NeedleIndex, make_needle


def _found(index: NeedleIndex, hay: str) -> set[str]:
    return {needle.text for _, needle in index.search(hay.lower())}


def _index(*values: tuple[str, str]) -> NeedleIndex:
    index = NeedleIndex()
    for value, kind in values:
        index.add(value, kind)
    return index


def test_short_values_short_numbers_and_punctuation_are_not_searched() -> None:
    assert make_needle("ABC", "text") is None
    assert make_needle("123", "text") is None
    assert make_needle("72.5", "number") is None  # 3 digits
    assert make_needle("^^^^", "text") is None
    assert make_needle("----", "text") is None
    assert make_needle("ABCD", "text") is not None
    assert make_needle("0010", "text") is not None
    assert make_needle("123456", "time") is not None


def test_long_numbers_must_not_touch_another_number() -> None:
    index = _index(("135803", "time"))
    assert _found(index, "-158.135803\\0") == set()
    assert _found(index, "x1358031") == set()
    assert _found(index, "at 135803 today") == {"135803"}
    assert _found(index, "MRN135803") == {"135803"}  # an ID glued to its prefix is still found


def test_short_numbers_count_only_as_whole_tokens() -> None:
    index = _index(("0010", "text"))
    assert _found(index, "19000101") == set()  # the example: inside the dummy date
    assert _found(index, "A0010") == set()
    assert _found(index, "1.0010") == set()
    assert _found(index, "0010B") == set()
    assert _found(index, "room 0010, left") == {"0010"}
    assert _found(index, "0010") == {"0010"}


def test_words_are_not_found_inside_longer_words() -> None:
    index = _index(("Smith", "name-part"), ("Mary", "name-part"), ("General Hospital", "text"))
    assert _found(index, "Smithsonian") == set()
    assert _found(index, "ORIGINAL\\PRIMARY") == set()  # "mary" in "priMARY"
    assert _found(index, "Dr Smith, MD") == {"smith"}
    assert _found(index, "SMITH^JOHN") == {"smith"}
    assert _found(index, "the general hospital's") == {"general hospital"}


def test_three_letter_name_parts_are_whole_words_only() -> None:
    index = _index(("LEE", "name-part"), ("LEE", "text"))  # a 3-character text value is not searched
    assert _found(index, "Sleep study") == set()
    assert _found(index, "Dr Lee^Ann") == {"lee"}


def test_case_insensitive_and_first_needle_wins() -> None:
    index = NeedleIndex()
    index.add("Qelvar^Zor", "person-name", owner=3, source=(0x00100010,))
    index.add("QELVAR^ZOR", "text", owner=4, source=(0x00081030,))
    [(_, needle)] = list(index.search("pt qelvar^zor"))
    assert (needle.text, needle.kind, needle.owner) == ("qelvar^zor", "person-name", 3)
    assert needle.source == (0x00100010,)


def test_discard_removes_a_needle() -> None:
    index = _index(("Memorial Hospital", "text"))
    index.discard("  MEMORIAL HOSPITAL ")
    assert len(index) == 0


def test_prefix_search_matches_find_search() -> None:
    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(3, 9))) for _ in range(400)]
    words += [str(rng.randint(1000, 99999999)) for _ in range(100)]
    big = _index(*((word, "name-part") for word in words))
    hay = " ".join(rng.choice(words) + rng.choice(["", "x", "ab", "7", ".", "^"]) for _ in range(300))
    slow = {
        (pos, needle.text)
        for needle in big.needles()
        for pos in range(len(hay))
        if hay.startswith(needle.text, pos) and needle.fits(hay, pos)
    }
    assert len(slow) > 100
    assert {(pos, needle.text) for pos, needle in big.search(hay)} == slow
    small = NeedleIndex(needle for needle in big.needles() if needle.text in sorted(big.texts())[:20])
    expected = {(pos, text) for pos, text in slow if text in small}
    assert {(pos, needle.text) for pos, needle in small.search(hay)} == expected
