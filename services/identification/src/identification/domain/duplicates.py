"""Scoring of a candidate person against duplicate-search criteria.

Blocking (``names.blocking_keys``) picks the candidates; this module ranks them and says why. Names are
compared on their folded form so script, diacritics and Albanian/Serbian spelling never count as differences.
Birth dates weigh heavily: two people with equivalent names born years apart are different people.
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


def _names(criteria: PersonFacts, candidate: PersonFacts) -> tuple[float, list[str]]:
    best = (0.0, ["name_unknown"])
    for c_given, c_family in criteria.name_variants():
        for k_given, k_family in candidate.name_variants():
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


def score(criteria: PersonFacts, candidate: PersonFacts) -> MatchScore:
    """Score 0-100 with reason codes; see the module constants for weights and thresholds."""
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
    total = round(points)
    if conflict:
        total = min(total, CONFLICT_CAP)
    return MatchScore(max(0, min(100, total)), tuple(reasons))


def rank(criteria: PersonFacts, candidates: dict[str, PersonFacts]) -> list[tuple[str, MatchScore]]:
    """Candidates at or above POSSIBLE_THRESHOLD, best first; ties by id so the order is stable."""
    scored = [(key, score(criteria, facts)) for key, facts in candidates.items()]
    kept = [item for item in scored if item[1].score >= POSSIBLE_THRESHOLD]
    return sorted(kept, key=lambda item: (-item[1].score, item[0]))
