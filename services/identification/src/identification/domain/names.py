"""Folding of personal names for search and duplicate detection.

``fold`` maps every spelling of a name seen in the region to one comparable form: Cyrillic or Latin script,
with or without diacritics, Albanian or Serbian/Montenegrin spelling of the same sound. The result is a
deliberately coarse ASCII skeleton (recall over precision); scoring in ``duplicates`` restores precision with
the other facts. See docs/identification-domain.md for the full table.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable

import jellyfish

from .ages import BirthRange

# Serbian, Montenegrin and Macedonian Cyrillic, plus the common Russian/Ukrainian letters that appear in
# documents of people on the move. Letters map to Serbian Latin (with diacritics) so that one later step
# handles Latin input and transliterated input alike.
_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "ђ": "đ", "е": "e", "ж": "ž", "з": "z", "и": "i",
    "ј": "j", "к": "k", "л": "l", "љ": "lj", "м": "m", "н": "n", "њ": "nj", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "ћ": "ć", "у": "u", "ф": "f", "х": "h", "ц": "c", "ч": "č", "џ": "dž", "ш": "š",
    # Macedonian: ѓ and ќ are the sounds Serbian writes đ and ć and Albanian gj and q.
    "ѓ": "đ", "ќ": "ć", "ѕ": "dz", "ѐ": "e", "ѝ": "i",
    "й": "j", "ы": "y", "э": "e", "ь": "", "ъ": "", "я": "ja", "ю": "ju", "ё": "jo", "щ": "šč",
    "є": "je", "і": "i", "ї": "ji", "ґ": "g",
}  # fmt: skip

# Letters that Unicode decomposition does not reduce to a base letter.
_LATIN_SPECIAL = {
    "ǆ": "dž", "ǅ": "dž", "ǉ": "lj", "ǈ": "lj", "ǌ": "nj", "ǋ": "nj",
    "ł": "l", "ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "ı": "i", "ð": "d", "þ": "th",
}  # fmt: skip

# Montenegrin ś and ź (Cyrillic с́ з́) are written sj and zj by most people, so they fold to those.
_MONTENEGRIN = (("с\u0301", "sj"), ("з\u0301", "zj"), ("ś", "sj"), ("ź", "zj"))

# Albanian digraphs and letters rewritten to the Serbian letter for the same sound, before diacritics go.
# Order matters: digraphs before single letters.
_ALBANIAN_TO_SERBIAN = (("xh", "dž"), ("gj", "đ"), ("sh", "š"), ("zh", "ž"), ("ç", "č"), ("q", "ć"))

# English and German transliterations of č/ć, which no spelling used in the region writes otherwise.
_AFTER_STRIP = (("tsch", "c"), ("tch", "c"), ("ch", "c"))

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_REPEAT = re.compile(r"([a-z])\1+")


def fold(text: str) -> str:
    """Canonical comparable form of a name (lower-case ASCII words separated by single spaces).

    Equal folds mean "may be the same name"; e.g. Đorđe/Djordje/Ђорђе, Hoxha/Hodža/Хоџа, Ëngjëll/Engjell.
    """
    value = unicodedata.normalize("NFC", text).casefold()
    for source, target in _MONTENEGRIN:
        value = value.replace(source, target)
    value = "".join(_CYRILLIC.get(ch, ch) for ch in value)
    value = "".join(_LATIN_SPECIAL.get(ch, ch) for ch in value)
    for source, target in _ALBANIAN_TO_SERBIAN:
        value = value.replace(source, target)
    # đ has no decomposition; the usual ASCII spelling is dj (Djordje), which Albanian gj also reaches here.
    value = value.replace("đ", "dj")
    value = unicodedata.normalize("NFKD", value)
    value = "".join(ch for ch in value if not unicodedata.combining(ch))
    for source, target in _AFTER_STRIP:
        value = value.replace(source, target)
    value = _NON_ALNUM.sub(" ", value)
    # Albanian ll/rr and transcription doubles (Anna/Ana) carry no identity information across scripts.
    value = _REPEAT.sub(r"\1", value)
    return " ".join(value.split())


def name_parts(names: Iterable[str]) -> list[str]:
    """Folded words of all given names or surnames, in order, without empties."""
    parts: list[str] = []
    for name in names:
        parts.extend(fold(name).split())
    return parts


def phonetic_key(part: str) -> str:
    """Metaphone of the folded word, so that vowel and spelling slips (Jovanovic/Jovanovich) share a key."""
    folded = fold(part).replace(" ", "")
    if not folded:
        return ""
    return jellyfish.metaphone(folded).upper() or folded.upper()


# The kinds of key `blocking_keys` makes. Raise it when they change: the identification scheduler rewrites the
# keys of every person stored under an older scheme (service_layer/rekeying.py). 2: pairs of sounds (`q:`);
# 3: pairs of sounds and single sounds with the birth year (`t:`, `u:`).
KEY_SCHEME = 3

# Birth ranges wider than this give no year keys: they would select far too many candidates.
MAX_YEAR_KEYS = 10
# The year of a `t:` or `u:` key when the birth gives no year keys (not recorded, or a range wider than
# MAX_YEAR_KEYS).
NO_YEAR = "?"


def blocking_keys(
    given_names: Iterable[str], surnames: Iterable[str], birth: BirthRange | None
) -> frozenset[str]:
    """Plaintext blocking keys of a person (or of a search); another layer HMACs them before storage.

    Each key has a kind prefix so that keys of different kinds never collide:
    ``n:`` folded full name with its words sorted (order of given name and surname is often swapped),
    ``s:`` folded surname, ``p:`` metaphone of each name word, ``q:`` each pair of those sounds (sorted),
    ``y:`` each possible birth year, ``t:`` each pair of sounds and ``u:`` each sound with each possible birth year
    (with NO_YEAR when the birth gives no year keys).

    Why pairs: the sound of a common given name and that of a common surname are each held by a fixed share of a
    country (thousands at a million people); the pair "Arben" + "Hoxha" by far fewer. A search reads the holders
    of its pairs (two parts of the name shared) instead of every holder of each sound
    (service_layer/duplicates.py, docs/performance.md "Scale"). Why pairs with the year: a pair of common sounds
    is still held by hundreds at a million people, all but a few born in other years; a search with a birth reads
    the holders of its pairs in its years (and those of unknown birth, `dated_search_keys`) instead; and when
    nobody shares a pair, the holders of its single sounds in its years (`dated_sound_keys`), not in every year.
    """
    given = name_parts(given_names)
    family = name_parts(surnames)
    keys: set[str] = set()
    if given or family:
        keys.add("n:" + " ".join(sorted(given + family)))
    if family:
        keys.add("s:" + " ".join(family))
    sounds = sorted({key for key in map(phonetic_key, given + family) if key})
    keys.update("p:" + sound for sound in sounds)
    pairs = [f"{first} {second}" for first, second in itertools.combinations(sounds, 2)]
    keys.update("q:" + pair for pair in pairs)
    years = [str(year) for year in birth.years()] if birth is not None else []
    if len(years) > MAX_YEAR_KEYS:
        years = []
    keys.update(f"y:{year}" for year in years)
    keys.update(f"t:{pair} {year}" for pair in pairs for year in years or [NO_YEAR])
    keys.update(f"u:{sound} {year}" for sound in sounds for year in years or [NO_YEAR])
    return frozenset(keys)


def _with_unknown_birth(keys: Iterable[str]) -> set[str]:
    """Dated keys (`t:`, `u:`) and the same keys with NO_YEAR: a person whose birth gives no year keys may have
    been born in any year searched."""
    dated = set(keys)
    return dated | {key.rsplit(" ", 1)[0] + " " + NO_YEAR for key in dated}


def dated_search_keys(keys: Iterable[str]) -> frozenset[str]:
    """Of a search's keys (`blocking_keys` with birth years), those whose holders it reads first: its pairs of
    sounds in its years; the same pairs with NO_YEAR (a person whose birth gives no year keys may have been born
    in any year searched); and each full name without a pair (one word, or words of one sound), which no `t:` key
    reaches. A full name with a pair is not read: its holders born in the years searched hold its `t:` keys."""
    keys = set(keys)
    pairs = _with_unknown_birth(key for key in keys if key.startswith("t:"))
    lone = {
        key
        for key in keys
        if key.startswith("n:") and len({phonetic_key(word) for word in key[2:].split()} - {""}) < 2
    }
    return frozenset(pairs | lone)


def dated_sound_keys(keys: Iterable[str]) -> frozenset[str]:
    """Of a search's keys (`blocking_keys` with birth years), its single sounds in its years and with NO_YEAR:
    whom it reads when nobody shares two parts of its name (a slip that changed the sound of one word), a few
    dozen people where the sound in any year is held by thousands."""
    return frozenset(_with_unknown_birth(key for key in keys if key.startswith("u:")))


def blocking_evidence(given_names: Iterable[str], surnames: Iterable[str]) -> list[frozenset[str]]:
    """The parts of a searched name that a candidate can share, each as the plaintext keys that show it (keys of
    `blocking_keys`): the full name, and each word by its sound (a surname word also by the surname key).

    Counting parts, not keys, is what tells a likely match from a namesake: everyone called Hoxha shares both
    ``s:hoxha`` and the sound of Hoxha, which are one part (the surname); sharing the given name too is two.
    """
    given = name_parts(given_names)
    family = name_parts(surnames)
    parts: list[frozenset[str]] = []
    if given or family:
        parts.append(frozenset({"n:" + " ".join(sorted(given + family))}))
    for word in given:
        if key := phonetic_key(word):
            parts.append(frozenset({"p:" + key}))
    for word in family:
        keys = {"s:" + " ".join(family)}
        if key := phonetic_key(word):
            keys.add("p:" + key)
        parts.append(frozenset(keys))
    return parts
