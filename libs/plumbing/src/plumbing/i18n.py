"""Language negotiation (Accept-Language) and Serbian/Montenegrin Latin -> Cyrillic transliteration.

The platform answers in the BCP 47 tags of docs/conventions.md and falls back to English. Babel's negotiation does the
matching; we add what it does not know: region subtags are dropped one at a time (`sr-Cyrl-RS` -> `sr-Cyrl`),
bare `sr`/`cnr` mean the Latin script (the script used by the authorities in Kosovo and Montenegro), and the
answer is always our canonical spelling of the tag, not the client's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from babel.core import negotiate_locale

SUPPORTED: tuple[str, ...] = ("en", "sq", "sr-Latn", "sr-Cyrl", "cnr-Latn", "cnr-Cyrl", "mk")
DEFAULT = "en"
_CANONICAL = {tag.lower(): tag for tag in SUPPORTED}
_ALIASES = {"sr": "sr-Latn", "cnr": "cnr-Latn", "sh": "sr-Latn", "me": "cnr-Latn"}
# A language range is short and plain; anything else in the header is ignored rather than parsed.
_RANGE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$|^\*$")


def parse_accept_language(header: str | None) -> list[str]:
    """Language ranges of an Accept-Language header, best first (q=0 dropped, order stable on ties)."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header[:500].split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip()
        if not tag or not _RANGE.match(tag):
            continue
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def _match(tag: str) -> str | None:
    candidate = tag
    while candidate:
        found = negotiate_locale([candidate], list(SUPPORTED), sep="-")
        if found:
            return _CANONICAL[found.lower()]
        if candidate.lower() in _ALIASES:
            return _ALIASES[candidate.lower()]
        candidate = candidate.rpartition("-")[0]
    return None


def negotiate(header: str | None, available: Iterable[str] = SUPPORTED) -> str:
    """The best supported language for an Accept-Language header; English when nothing matches."""
    allowed = set(available)
    for tag in parse_accept_language(header):
        if tag == "*":
            return DEFAULT
        found = _match(tag)
        if found and found in allowed:
            return found
    return DEFAULT


_DIGRAPHS = {
    "lj": "љ",
    "nj": "њ",
    "dž": "џ",
    "Lj": "Љ",
    "Nj": "Њ",
    "Dž": "Џ",
    "LJ": "Љ",
    "NJ": "Њ",
    "DŽ": "Џ",
}
_LETTERS = dict(
    zip(
        "abvgdđežzijklmnoprstćufhcčšABVGDĐEŽZIJKLMNOPRSTĆUFHCČŠ",
        "абвгдђежзијклмнопрстћуфхцчшАБВГДЂЕЖЗИЈКЛМНОПРСТЋУФХЦЧШ",
        strict=True,
    )
)


def latin_to_cyrillic(text: str, keep: Iterable[str] = ()) -> str:
    """Serbian/Montenegrin Latin to Cyrillic; the words in `keep` (header or member names) stay as they are."""
    protected = sorted(set(keep), key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(word) for word in protected)) if protected else None
    out: list[str] = []
    position = 0
    for match in pattern.finditer(text) if pattern else ():
        out.append(_transliterate(text[position : match.start()]))
        out.append(match.group(0))
        position = match.end()
    out.append(_transliterate(text[position:]))
    return "".join(out)


def with_cyrillic(texts: Mapping[str, str], keep: Iterable[str] = ()) -> dict[str, str]:
    """Labels or texts by language tag, with sr-Cyrl / cnr-Cyrl transliterated from their Latin text where they
    are missing (catalogues write the Latin script once; the words in `keep` stay as they are)."""
    out = dict(texts)
    for language in ("sr", "cnr"):
        if f"{language}-Cyrl" not in out and f"{language}-Latn" in out:
            out[f"{language}-Cyrl"] = latin_to_cyrillic(out[f"{language}-Latn"], keep)
    return out


def _transliterate(text: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        pair = text[index : index + 2]
        if pair in _DIGRAPHS:
            out.append(_DIGRAPHS[pair])
            index += 2
            continue
        out.append(_LETTERS.get(text[index], text[index]))
        index += 1
    return "".join(out)
