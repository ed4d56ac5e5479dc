"""Name folding, phonetic keys and blocking keys."""

from __future__ import annotations

from datetime import date

import pytest

from identification.domain.ages import BirthRange
from identification.domain.names import (
    blocking_keys,
    dated_search_keys,
    dated_sound_keys,
    fold,
    phonetic_key,
)

EQUIVALENT = [
    ("Đorđe Petrović", "Djordje Petrovic", "Ђорђе Петровић", "ĐORĐE PETROVIĆ", "djordje  petrovic "),
    ("Ëngjëll Hoxha", "Engjell Hoxha", "ENGJËLL HOXHA"),
    ("Hoxha", "Hodža", "Хоџа", "Hodza", "HODŽA"),
    ("Shala", "Šala", "Шала"),
    ("Zhuja", "Žuja", "Жуја"),
    ("Çeku", "Čeku", "Чеку", "Ceku"),
    ("Qazim", "Ćazim", "Ћазим", "Cazim"),
    ("Gjergj", "Đerđ", "Ђерђ", "Djerdj"),
    ("Ljubica Njegoš", "Љубица Његош", "Ǉubica Ǌegoš"),
    ("Ѓорѓи", "Gjorgji", "Đorđi"),
    ("Ќерим", "Qerim", "Ćerim"),
    ("Śekira", "Сјекира", "С\u0301екира", "Sjekira"),
    ("Jovanović", "Jovanovich", "Jovanovitch"),
    ("Mirëlla", "Mirela"),
    ("Anna-Maria", "Ana Maria"),
    ("E\u0308ngjell", "Ëngjell"),  # decomposed and precomposed ë
]


@pytest.mark.parametrize("variants", EQUIVALENT, ids=[v[0] for v in EQUIVALENT])
def test_equivalent_spellings_fold_together(variants: tuple[str, ...]) -> None:
    folded = {fold(v) for v in variants}
    assert len(folded) == 1, folded


def test_required_examples_exact_form() -> None:
    assert fold("Ђорђе Петровић") == "djordje petrovic"
    assert fold("Ëngjëll Hoxha") == "endjel hodza"
    assert fold("Хоџа") == "hodza"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Petrović", "Petrovski"),
        ("Marko", "Mirko"),
        ("Ana", "Ena"),
        ("Hoxha", "Hoti"),
        ("Đorđe", "Goran"),
        ("Engjëll", "Angel"),
        ("Dardan", "Dragan"),
    ],
)
def test_different_names_stay_different(a: str, b: str) -> None:
    assert fold(a) != fold(b)


def test_fold_output_is_plain_ascii_words() -> None:
    folded = fold("  O'Brien–Хоџа, Jr.  ")
    assert folded == "o brien hodza jr"
    assert fold("") == ""


def test_phonetic_key_catches_spelling_slips_but_not_different_names() -> None:
    assert phonetic_key("Jovanovic") == phonetic_key("Jovanovič") == phonetic_key("Јовановић")
    assert phonetic_key("Hoxha") == phonetic_key("Хоџа")
    assert phonetic_key("Petrović") != phonetic_key("Hoxha")
    assert phonetic_key("") == ""


def test_blocking_keys() -> None:
    keys = blocking_keys(["Ëngjëll"], ["Hoxha"], BirthRange(date(1990, 1, 1), date(1991, 12, 31)))
    assert keys == {
        "n:endjel hodza",
        "s:hodza",
        "p:" + phonetic_key("Engjell"),
        "p:" + phonetic_key("Hoxha"),
        "q:" + " ".join(sorted([phonetic_key("Engjell"), phonetic_key("Hoxha")])),
        "y:1990",
        "y:1991",
        "t:" + " ".join(sorted([phonetic_key("Engjell"), phonetic_key("Hoxha")])) + " 1990",
        "t:" + " ".join(sorted([phonetic_key("Engjell"), phonetic_key("Hoxha")])) + " 1991",
        *(f"u:{phonetic_key(word)} {year}" for word in ("Engjell", "Hoxha") for year in (1990, 1991)),
    }


def test_a_pair_of_sounds_without_a_usable_birth_is_dated_no_year() -> None:
    pair = " ".join(sorted([phonetic_key("Arben"), phonetic_key("Hoxha")]))
    unknown = blocking_keys(["Arben"], ["Hoxha"], None)
    wide = blocking_keys(["Arben"], ["Hoxha"], BirthRange(date(1960, 1, 1), date(1990, 12, 31)))
    sounds = {f"u:{phonetic_key('Arben')} ?", f"u:{phonetic_key('Hoxha')} ?"}
    assert {k for k in unknown if k.startswith(("t:", "u:"))} == {f"t:{pair} ?", *sounds}
    assert {k for k in wide if k.startswith(("t:", "u:", "y:"))} == {f"t:{pair} ?", *sounds}


def test_a_dated_search_reads_its_pairs_in_its_years_and_of_unknown_birth() -> None:
    pair = " ".join(sorted([phonetic_key("Arben"), phonetic_key("Hoxha")]))
    keys = blocking_keys(["Arben"], ["Hoxha"], BirthRange(date(2010, 1, 1), date(2010, 12, 31)))
    # The full name "arben hoxha" is not read: those of its holders born in 2010 hold its `t:` key.
    assert dated_search_keys(keys) == {f"t:{pair} 2010", f"t:{pair} ?"}
    # A name of one word has no pair: its full name is read.
    alone = blocking_keys(["Arben"], [], BirthRange(date(2010, 1, 1), date(2010, 12, 31)))
    assert dated_search_keys(alone) == {"n:arben"}
    # When nobody shares a pair: the single sounds in its years and of unknown birth.
    arben, hoxha = phonetic_key("Arben"), phonetic_key("Hoxha")
    assert dated_sound_keys(keys) == {f"u:{arben} 2010", f"u:{arben} ?", f"u:{hoxha} 2010", f"u:{hoxha} ?"}


def test_blocking_keys_agree_across_scripts_and_order() -> None:
    latin = blocking_keys(["Đorđe"], ["Petrović"], None)
    cyrillic = blocking_keys(["Ђорђе"], ["Петровић"], None)
    swapped = blocking_keys(["Petrovic"], ["Djordje"], None)
    assert latin == cyrillic
    assert "n:djordje petrovic" in swapped
    assert "s:djordje" in swapped


def test_the_sound_pairs_of_a_name_are_shared_across_spelling_order_and_a_slip() -> None:
    def pairs(given: list[str], family: list[str]) -> set[str]:
        return {key for key in blocking_keys(given, family, None) if key.startswith("q:")}

    assert pairs(["Ana", "Marija"], ["Popović"]) == pairs(["Popovich"], ["Marija", "Ana"])
    assert len(pairs(["Ana", "Marija"], ["Popović"])) == 3  # each two of the three words
    assert pairs(["Jovan"], ["Jovanovic"]) == pairs(["Jovan"], ["Jovanovich"])
    assert pairs(["Arben"], ["Hoxha"]) != pairs(["Arben"], ["Krasniqi"])
    assert pairs(["Arben"], []) == set()  # one word: no pair


def test_blocking_keys_without_name_or_with_wide_range() -> None:
    assert blocking_keys([], [], BirthRange(date(1960, 1, 1), date(1990, 12, 31))) == frozenset()
    assert blocking_keys([], [], BirthRange(date(1990, 1, 1), date(1990, 12, 31))) == {"y:1990"}
