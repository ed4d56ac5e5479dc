"""Scoring of a candidate person against duplicate-search criteria.

Blocking (``names.blocking_keys``) picks the candidates; this module ranks them and says why. Names are
compared on their folded form so script, diacritics and Albanian/Serbian spelling never count as differences.
Birth dates weigh heavily: two people with equivalent names born years apart are different people.

A search names what the officer knows. With a surname only (or a given name only, or a one-word alias) the
missing part is not held against a candidate: the known part carries its own weight plus half of the other's,
so an equivalent surname with nothing contradicting it is a "possible" match; with so little, never "likely".
A search without any name (sex, an age range, nationality) shows the candidates nothing contradicts, as
"possible" only, ranked by how precisely their birth, sex and nationality agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rapidfuzz import fuzz

from .ages import BirthRange
from .categories import Sex
from .names import fold, phonetic_key

# A candidate at or above MATCH_THRESHOLD is presented as "likely the same person"; between the two
# thresholds as "possible". Below POSSIBLE_THRESHOLD it is not shown.
MATCH_THRESHOLD = 75
POSSIBLE_THRESHOLD = 55
# A proven contradiction caps the score below the match threshold however well the names agree.
CONFLICT_CAP = 50

SURNAME_WEIGHT = 35
GIVEN_WEIGHT = 30
BIRTH_WEIGHT = 25
SEX_WEIGHT = 5
NATIONALITY_WEIGHT = 5

SIMILAR = 85  # rapidfuzz ratio from which a name counts as "similar" (a typo or transcription slip)
# A search that names only one part of a name, or none, is never "likely": at most this.
PARTIAL_CAP = MATCH_THRESHOLD - 1
NEAR_BIRTH_DAYS = 366  # non-overlapping birth ranges closer than this are a likely recording slip


@dataclass(frozen=True)
class PersonFacts:
    """What is known about a person (or what a search asks for). Names may be absent."""

    given_names: tuple[str, ...] = ()
    surnames: tuple[str, ...] = ()
    birth: BirthRange | None = None
    sex: Sex = Sex.UNKNOWN
    nationality: str | None = None
    # Other known names, each as (given names, surnames).
    aliases: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()

    def name_variants(self) -> list[tuple[str, str]]:
        variants = [(self.given_names, self.surnames), *self.aliases]
        out = []
        for given, family in variants:
            pair = (fold(" ".join(given)), fold(" ".join(family)))
            if any(pair):
                out.append(pair)
        return out


@dataclass(frozen=True)
class MatchScore:
    score: int
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def level(self) -> str:
        if self.score >= MATCH_THRESHOLD:
            return "likely"
        if self.score >= POSSIBLE_THRESHOLD:
            return "possible"
        return "unlikely"


def _part_similarity(a: str, b: str, kind: str) -> tuple[float, str]:
    if not a or not b:
        return 0.0, f"{kind}_unknown"
    if a == b:
        return 1.0, f"{kind}_equivalent"
    ratio = max(fuzz.ratio(a, b), fuzz.token_set_ratio(a, b))
    if ratio < 100 and [phonetic_key(w) for w in a.split()] == [phonetic_key(w) for w in b.split()]:
        ratio = max(ratio, 90.0)
    if ratio >= SIMILAR:
        return ratio / 100, f"{kind}_similar"
    return ratio / 100 * 0.5, f"{kind}_different"


def _partial(c_given: str, c_family: str, k_given: str, k_family: str) -> tuple[float, list[str]]:
    """A search variant with one part of the name only: that part against either part of the candidate's name
    (a lone word is as often a surname as a given name), weighted with half of the missing part's weight."""
    if c_family:
        weight, missing = SURNAME_WEIGHT + GIVEN_WEIGHT / 2, "given_name_not_searched"
        word, kind, same, other = c_family, "surname", k_family, k_given
    else:
        weight, missing = GIVEN_WEIGHT + SURNAME_WEIGHT / 2, "surname_not_searched"
        word, kind, same, other = c_given, "given_name", k_given, k_family
    similarity, reason = _part_similarity(word, same, kind)
    crossed, _ = _part_similarity(word, other, kind)
    if crossed > similarity and crossed >= SIMILAR / 100:
        return crossed * weight, ["name_order_swapped", missing]
    return similarity * weight, [reason, missing]


def _names(criteria: PersonFacts, candidate: PersonFacts) -> tuple[float, list[str]]:
    best = (0.0, ["name_unknown"])
    for c_given, c_family in criteria.name_variants():
        for k_given, k_family in candidate.name_variants():
            if not (c_given and c_family):
                value, reasons = _partial(c_given, c_family, k_given, k_family)
                if value > best[0]:
                    best = (value, reasons)
                continue
            given_sim, given_reason = _part_similarity(c_given, k_given, "given_name")
            family_sim, family_reason = _part_similarity(c_family, k_family, "surname")
            value = given_sim * GIVEN_WEIGHT + family_sim * SURNAME_WEIGHT
            reasons = [family_reason, given_reason]
            # Given name and surname are often recorded the wrong way round.
            swapped_given, _ = _part_similarity(c_given, k_family, "given_name")
            swapped_family, _ = _part_similarity(c_family, k_given, "surname")
            swapped = swapped_given * GIVEN_WEIGHT + swapped_family * SURNAME_WEIGHT
            if swapped > value and swapped_given >= SIMILAR / 100 and swapped_family >= SIMILAR / 100:
                value, reasons = swapped, ["name_order_swapped"]
            if value > best[0]:
                best = (value, reasons)
    return best


def _birth(criteria: BirthRange | None, candidate: BirthRange | None) -> tuple[float, str, bool]:
    """(points, reason, conflict)."""
    if criteria is None or candidate is None:
        return BIRTH_WEIGHT * 0.4, "birth_date_unknown", False
    if criteria.earliest == criteria.latest == candidate.earliest == candidate.latest:
        return BIRTH_WEIGHT, "birth_date_match", False
    if criteria.overlaps(candidate):
        # A narrow overlap is stronger evidence than "both born some time in the same decade".
        span = max((criteria.latest - criteria.earliest).days, (candidate.latest - candidate.earliest).days)
        return BIRTH_WEIGHT * (0.85 if span <= 366 else 0.6), "birth_year_match", False
    if criteria.gap_days(candidate) <= NEAR_BIRTH_DAYS:
        return BIRTH_WEIGHT * 0.4, "birth_year_near", False
    return 0.0, "birth_year_conflict", True


def _searched_parts(criteria: PersonFacts) -> str:
    """ "full" (a given name and a surname in one variant), "partial" (one part only) or "none"."""
    variants = criteria.name_variants()
    if any(given and family for given, family in variants):
        return "full"
    return "partial" if variants else "none"


def score(criteria: PersonFacts, candidate: PersonFacts) -> MatchScore:
    """Score 0-100 with reason codes; see the module docstring and constants for weights and thresholds."""
    searched = _searched_parts(criteria)
    if searched == "none":
        name_points, reasons = 0.0, ["name_not_searched"]
    else:
        name_points, reasons = _names(criteria, candidate)
    birth_points, birth_reason, conflict = _birth(criteria.birth, candidate.birth)
    reasons.append(birth_reason)
    points = name_points + birth_points
    if Sex.UNKNOWN in (criteria.sex, candidate.sex) or Sex.OTHER in (criteria.sex, candidate.sex):
        points += SEX_WEIGHT * 0.5
    elif criteria.sex is candidate.sex:
        points += SEX_WEIGHT
        reasons.append("sex_match")
    else:
        reasons.append("sex_conflict")
        conflict = True
    if criteria.nationality is None or candidate.nationality is None:
        points += NATIONALITY_WEIGHT * 0.5
    elif criteria.nationality == candidate.nationality:
        points += NATIONALITY_WEIGHT
        reasons.append("nationality_match")
    else:
        # Dual nationals and wrongly recorded nationality are common: a difference is no contradiction.
        reasons.append("nationality_differs")
    if searched == "none":
        # Birth, sex and nationality only (35 points at most): nothing contradicting makes a "possible" match,
        # ranked by how precisely they agree.
        facts_weight = BIRTH_WEIGHT + SEX_WEIGHT + NATIONALITY_WEIGHT
        points = POSSIBLE_THRESHOLD + (points / facts_weight) * (PARTIAL_CAP - POSSIBLE_THRESHOLD)
    total = round(points)
    if searched != "full":
        total = min(total, PARTIAL_CAP)
    if conflict:
        total = min(total, CONFLICT_CAP)
    return MatchScore(max(0, min(100, total)), tuple(reasons))


def rank(criteria: PersonFacts, candidates: dict[str, PersonFacts]) -> list[tuple[str, MatchScore]]:
    """Candidates at or above POSSIBLE_THRESHOLD, best first; ties by id so the order is stable."""
    scored = [(key, score(criteria, facts)) for key, facts in candidates.items()]
    kept = [item for item in scored if item[1].score >= POSSIBLE_THRESHOLD]
    return sorted(kept, key=lambda item: (-item[1].score, item[0]))
