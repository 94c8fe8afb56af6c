"""The needle index's precision rules, and that its two search strategies agree."""

from __future__ import annotations

import random

from dicomcloak.verify.needles import NeedleIndex, make_needle


def _found(index: NeedleIndex, hay: str) -> set[str]:
    return {needle.text for _, needle in index.search(hay.lower())}


def test_short_values_and_short_numbers_are_not_searched() -> None:
    assert make_needle("ABC", "text") is None
    assert make_needle("12345", "text") is None
    assert make_needle("72.5", "text") is None
    assert make_needle("ABCD", "text") is not None
    assert make_needle("123456", "time") is not None


def test_long_numbers_must_stand_alone() -> None:
    index = NeedleIndex()
    index.add("135803", "time")
    assert _found(index, "-158.135803\\0") == set()
    assert _found(index, "at 135803 today") == {"135803"}
    assert _found(index, "x1358031") == set()


def test_three_letter_name_parts_are_whole_words_only() -> None:
    index = NeedleIndex()
    index.add("LEE", "name-part")
    index.add("LEE", "text")  # a 3-character text value is not searched
    assert _found(index, "Sleep study") == set()
    assert _found(index, "Dr Lee^Ann") == {"lee"}


def test_case_insensitive_and_first_kind_wins() -> None:
    index = NeedleIndex()
    index.add("Qelvar^Zor", "person-name")
    index.add("QELVAR^ZOR", "text")
    assert [(n.text, n.kind) for _, n in index.search("pt qelvar^zor")] == [("qelvar^zor", "person-name")]


def test_discard_removes_a_needle() -> None:
    index = NeedleIndex()
    index.add("Memorial Hospital", "text")
    index.discard("  MEMORIAL HOSPITAL ")
    assert len(index) == 0


def test_prefix_search_matches_find_search() -> None:
    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(3, 9))) for _ in range(400)]
    big = NeedleIndex()
    for word in words:
        big.add(word, "text")
    hay = " ".join(rng.choice(words) + rng.choice(["", "x", "ab"]) for _ in range(300))
    slow = {(pos, word) for word in big.texts() for pos in range(len(hay)) if hay.startswith(word, pos)}
    assert {(pos, needle.text) for pos, needle in big.search(hay)} == slow
    small = NeedleIndex()
    for word in sorted(big.texts())[:20]:
        small.add(word, "text")
    expected = {(pos, word) for pos, word in slow if word in small.texts()}
    assert {(pos, needle.text) for pos, needle in small.search(hay)} == expected
