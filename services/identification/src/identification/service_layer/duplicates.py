"""Duplicate search: keyed blocking keys select candidates, ranked by how much of the searched name they share
and capped (`choose`); only those are decrypted and scored by the domain (`duplicates.rank`). The search is
stored with ids, scores and reason codes only.

Candidates come from the whole of the caller's country (`Deps.existence_repository`), because the duplicate a
protocol exists to avoid is the child registered by another agency. What the caller may read (need-to-know,
`Deps.repository`) is answered in full; a match in a record the caller may not read is answered as *restricted*:
its level, score and reasons, the owning agency and the case to ask about — never a name or a date of birth."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from identification.adapters.documents import CaseDocument, DuplicateSearchDocument, PersonDocument
from identification.domain import duplicates, names
from identification.domain.categories import Sex
from identification.domain.errors import ErrorDetail, raise_all
from identification.service_layer.deps import Deps
from identification.service_layer.persons import (
    _nfc_list,
    _split_alias,
    birth_from_record,
    parse_birth,
)
from plumbing.auth import Caller
from plumbing.errors import NotFound

MAX_CANDIDATES = 300
MAX_RESULTS = 20
# A key shared by more people of the country than this is common (`choose`).
COMMON_KEY = 50
# The most holders a search reads of its pairs and full names, and of its common keys when nothing better is
# shared: a bound on its work whatever the size of the country (`select_candidates`).
MAX_WALK = 2000
# Keys that show two parts of the name or more (names.blocking_keys): the full name, a pair of sounds (`q:`), a
# pair of sounds with a birth year (`t:`). A search reads the holders of these first (`select_candidates`).
STRONG_KEYS = ("n:", "q:", "t:")
# Keys that show one part: the surname, the sound of one word. A search reads only the first few holders of each.
SINGLE_KEYS = ("s:", "p:")


def _facts(details: dict[str, Any], sex: str, nationalities: list[str]) -> duplicates.PersonFacts:
    return duplicates.PersonFacts(
        given_names=tuple(details.get("given_names", [])),
        surnames=tuple(details.get("surnames", [])),
        birth=birth_from_record(details.get("birth")),
        sex=Sex(sex or "unknown"),
        nationality=nationalities[0] if nationalities else None,
        aliases=tuple(_split_alias(a) for a in details.get("aliases", [])),
    )


def select_by_birth_and_sex(
    deps: Deps, caller: Caller, keys: frozenset[str], sex: Sex
) -> list[PersonDocument]:
    """A search without a name: people who may have been born in one of the searched years (or whose birth is
    not recorded) and whose recorded sex does not contradict the search. The first MAX_CANDIDATES in list
    order are examined (the answer says how many were)."""
    year_tokens = deps.sealer.search_tokens(caller.country, {k for k in keys if k.startswith("y:")})
    condition: dict[str, Any] = {"$or": [{"year_keys": {"$in": year_tokens}}, {"year_keys": {"$size": 0}}]}
    if sex in (Sex.FEMALE, Sex.MALE):
        condition = {"$and": [condition, {"sex": {"$in": [str(sex), str(Sex.UNKNOWN), str(Sex.OTHER)]}}]}
    return deps.existence_repository(PersonDocument, caller).find(limit=MAX_CANDIDATES, __raw__=condition)


def select_candidates(
    deps: Deps, caller: Caller, keys: frozenset[str], evidence: Sequence[frozenset[str]]
) -> list[PersonDocument]:
    """Name keys select; when the search has birth years, a candidate must share one or have none recorded.
    `evidence`: the parts of the searched name (`names.blocking_evidence`), to rank by (`choose`).

    What is read does not grow with the country (`_Holders`): every holder of the search's full name and of its
    pairs of sounds (two parts of the name shared; born in its years, if it has some: `SearchKeys`), up to
    MAX_WALK; of each single key (a surname, the sound of one word) only its first COMMON_KEY + 1 holders,
    enough to tell a rare key from a common one, and nothing of a key an earlier search found common
    (`_common_keys`); only when no candidate has better evidence, the holders of its sounds in its years (or of
    the common keys, without years), up to MAX_WALK."""
    reads = SearchKeys.of(keys, deps.keys_outdated())
    if not reads.looked_for:
        return []
    year_tokens = set(deps.sealer.search_tokens(caller.country, {k for k in keys if k.startswith("y:")}))
    holders = _Holders(deps, caller, reads.looked_for, year_tokens)
    holders.read(reads.first, MAX_WALK)
    common = _common_keys(deps, holders, reads.single)
    shared = holders.shared()
    # The sounds in the searched years are read only by the walk below: until then, their holders among those
    # read are a sample (of a common key's first holders, say), and a key seen a few times in a sample is no rare
    # key. Counted as common, they make nobody a candidate alone.
    uncounted = frozenset(reads.fallback)
    if common and not qualified(shared, evidence, common | uncounted):
        holders.read(reads.fallback or sorted(common), MAX_WALK)
        shared, uncounted = holders.shared(), frozenset()
    chosen = choose(shared, evidence, common | uncounted)
    if not chosen:
        return []
    # The documents of the chosen only, through the repository again (scope and restrictions as for any read).
    docs = {doc.id: doc for doc in holders.repo.find(__raw__={"_id": {"$in": chosen}})}
    return [docs[pid] for pid in chosen if pid in docs]


@dataclass(frozen=True)
class SearchKeys:
    """Which of a search's keys (its `names.blocking_keys`) it reads the holders of, and how."""

    looked_for: list[str]  # every key a holder read is checked for (the evidence `choose` ranks by)
    first: list[str]  # every holder read, up to MAX_WALK: two parts of the name shared
    single: list[str]  # the first COMMON_KEY + 1 holders read, to tell a rare key from a common one
    fallback: list[str]  # read when nobody has better evidence than a common key (none: the common keys)

    @classmethod
    def of(cls, keys: frozenset[str], outdated: bool) -> SearchKeys:
        """With birth years, the holders of its pairs of sounds in those years are read first (`t:`,
        `names.dated_search_keys`), and of its single sounds in those years when nobody shares a pair (`u:`,
        `names.dated_sound_keys`); without years, those of its full names and its pairs in any year (`n:`, `q:`),
        and of its common keys. The latter also while some person's keys are `outdated` (made before the dated
        keys, not yet re-keyed: service_layer/rekeying.py); the birth years of what they read are checked in the
        process (`_Holders`)."""
        single = sorted(k for k in keys if k.startswith(SINGLE_KEYS))
        if any(k.startswith("y:") for k in keys) and not outdated:
            first, fallback = names.dated_search_keys(keys), names.dated_sound_keys(keys)
            dated = {k for k in keys if k.startswith("n:")} | first | fallback
            return cls(sorted(dated | set(single)), sorted(first), single, sorted(fallback))
        looked_for = sorted(k for k in keys if k.startswith(("n:", "q:", *SINGLE_KEYS)))
        return cls(looked_for, [k for k in looked_for if k.startswith(STRONG_KEYS)], single, [])


def _common_keys(deps: Deps, holders: _Holders, single_keys: Sequence[str]) -> frozenset[str]:
    """Which of the single keys are common: those an earlier search found common (`Deps.common_keys`, not read
    again), and those whose first COMMON_KEY + 1 holders read now show it (recorded for the next search)."""
    now = deps.clock.now()
    known = deps.common_keys.known((t for key in single_keys for t in holders.tokens[key]), now)
    common = {key for key in single_keys if known & set(holders.tokens[key])}
    for key in single_keys:
        if key not in common and holders.read([key], COMMON_KEY + 1) > COMMON_KEY:
            common.add(key)
            deps.common_keys.add(holders.tokens[key], now)
    return frozenset(common)


class _Holders:
    """The people of the caller's country who hold some of a search's keys, read key by key with a limit.

    The server is asked only `{blocking_keys: {$in: tokens}}` (with the country the repository adds) and a
    limit, a flat filter it serves from an index, without a sort, for raw rows (ids and keys, no document built);
    the birth years are checked here. A filter with `$or` for the years made it scan the whole collection, and a
    sort with a limit does (docs/performance.md, Scale)."""

    def __init__(self, deps: Deps, caller: Caller, name_keys: Sequence[str], year_tokens: set[str]) -> None:
        # Each key as its tokens (one per index key of the country, so that records keyed before a rotation are
        # found), and back: which of the search's keys a stored token is.
        self.tokens = {key: deps.sealer.search_tokens(caller.country, {key}) for key in name_keys}
        self.key_of = {token: key for key, tokens in self.tokens.items() for token in tokens}
        self.year_tokens = year_tokens
        self.repo = deps.existence_repository(PersonDocument, caller)
        self._held: dict[str, tuple[Any, frozenset[str]]] = {}  # id: (updated_at, the search's keys held)

    def read(self, keys: Sequence[str], limit: int) -> int:
        """Read up to `limit` holders of any of `keys`; answers how many the server returned (before the years
        are checked), so that `limit` of them means there may be more."""
        if not keys:
            return 0
        tokens = sorted(token for key in keys for token in self.tokens[key])
        rows = self.repo.rows({"blocking_keys": {"$in": tokens}}, ("blocking_keys", "year_keys"), limit=limit)
        for row in rows:
            years = row.get("year_keys") or []
            if self.year_tokens and years and self.year_tokens.isdisjoint(years):
                continue  # born in none of the searched years (no years recorded: kept)
            held = frozenset(self.key_of[t] for t in row.get("blocking_keys") or [] if t in self.key_of)
            if held:
                self._held[str(row["_id"])] = (row.get("updated_at"), held)
        return len(rows)

    def shared(self) -> dict[str, frozenset[str]]:
        """Each holder read so far and the search's keys they hold, in list order (updated_at, id)."""
        ordered = sorted(self._held.items(), key=lambda item: (item[1][0], item[0]))
        return {pid: held for pid, (_, held) in ordered}


def _parts(keys: frozenset[str], evidence: Sequence[frozenset[str]]) -> int:
    return sum(1 for part in evidence if part & keys)


def qualified(
    shared: Mapping[str, frozenset[str]], evidence: Sequence[frozenset[str]], common: frozenset[str]
) -> list[str]:
    """The candidates with evidence beyond a common key: two parts of the name (given name and surname, say), or
    a key that is not common (held by at most COMMON_KEY of those read, and not found common by `_Holders`)."""
    held = Counter(key for keys in shared.values() for key in keys)
    return [
        pid
        for pid, keys in shared.items()
        if _parts(keys, evidence) >= 2 or any(key not in common and held[key] <= COMMON_KEY for key in keys)
    ]


def choose(
    shared: Mapping[str, frozenset[str]], evidence: Sequence[frozenset[str]], common: frozenset[str]
) -> list[str]:
    """The candidates to examine (at most MAX_CANDIDATES), best evidence first, from `shared`: each candidate's
    id (in list order) and the search's keys it shares; `common`: keys with more than COMMON_KEY holders in the
    country (of which only some were read).

    A common key (a common surname, the sound of a common given name) is a fixed share of the country: it does
    not select a candidate on its own while any candidate is `qualified`. Otherwise what the cap examined would
    grow with the population, and "the first 300" of a common surname need not hold the person searched for.
    When no candidate is qualified (every key of the search is common), all of them compete for the cap. Ranked
    by the parts of the name shared, then by how rare the shared keys are (the sum of 1 / holders per key, a
    common key counted as COMMON_KEY + 1 holders however few were read), then list order."""
    held = Counter(key for keys in shared.values() for key in keys)

    def rarity(keys: frozenset[str]) -> float:
        return sum(1 / (max(held[key], COMMON_KEY + 1) if key in common else held[key]) for key in keys)

    order = {pid: position for position, pid in enumerate(shared)}
    ranked = sorted(
        qualified(shared, evidence, common) or list(shared),
        key=lambda pid: (-_parts(shared[pid], evidence), -rarity(shared[pid]), order[pid]),
    )
    return ranked[:MAX_CANDIDATES]


@dataclass(frozen=True)
class SearchOutcome:
    """The answer, and every person it tells the caller about (visible or restricted: the access log names
    both, since learning that a record exists is a disclosure too)."""

    view: dict[str, Any]
    person_ids: list[str]


def _restricted(deps: Deps, caller: Caller, doc: PersonDocument, result: dict[str, Any]) -> dict[str, Any]:
    """A match the caller may not read: whom to ask, and nothing about the person."""
    case_id, reference = doc.first_case_id, None
    if case_id:
        try:
            reference = deps.existence_repository(CaseDocument, caller).get(case_id).reference
        except NotFound:
            case_id = None  # the first-contact case is not written yet (its step is pending)
    return {
        "score": result["score"],
        "level": result["level"],
        "reasons": result["reasons"],
        "owner_agency": doc.owner_agency,
        "case_id": case_id,
        "case_reference": reference,
    }


def search(deps: Deps, caller: Caller, body: dict[str, Any]) -> SearchOutcome:
    today = deps.clock.now().date()
    errors: list[ErrorDetail] = []
    birth = parse_birth(body, today, errors)
    given, family = _nfc_list(body.get("given_names")), _nfc_list(body.get("surnames"))
    aliases = _nfc_list(body.get("aliases"))
    named = bool(given or family or aliases)
    if not named and birth is None and not any(e.pointer.startswith("/date_of_birth") for e in errors):
        # Without a name, the birth (an age range will do) selects the candidates.
        errors.append(ErrorDetail("name_or_birth_required", ""))
    raise_all(errors, "invalid search")
    keys = set(names.blocking_keys(given, family, birth))
    evidence = names.blocking_evidence(given, family)
    for alias in aliases:
        g, f = _split_alias(alias)
        keys |= names.blocking_keys(g, f, birth)
        evidence += names.blocking_evidence(g, f)
    if named:
        candidates = select_candidates(deps, caller, frozenset(keys), evidence)
    else:
        candidates = select_by_birth_and_sex(deps, caller, frozenset(keys), Sex(body.get("sex", "unknown")))
    criteria = duplicates.PersonFacts(
        given_names=tuple(given),
        surnames=tuple(family),
        birth=birth,
        sex=Sex(body.get("sex", "unknown")),
        nationality=(body.get("nationalities") or [None])[0],
        aliases=tuple(_split_alias(a) for a in aliases),
    )
    opened: dict[str, dict[str, Any]] = {}
    facts: dict[str, duplicates.PersonFacts] = {}
    for doc in candidates:
        details = deps.sealer.open(doc.owner_country, doc.id, doc.sealed)
        opened[doc.id] = details
        facts[doc.id] = _facts(details, doc.sex, list(doc.nationalities or []))
    ranked = [
        (pid, match)
        for pid, match in duplicates.rank(criteria, facts)
        if match.score >= duplicates.POSSIBLE_THRESHOLD
    ][:MAX_RESULTS]
    # Need-to-know decides which matches are answered in full (one query for all of them).
    found_ids = [pid for pid, _ in ranked]
    readable = (
        {doc.id for doc in deps.repository(PersonDocument, caller).find(__raw__={"_id": {"$in": found_ids}})}
        if found_ids
        else set()
    )
    results = [
        {
            "person_id": pid,
            "score": m.score,
            "level": m.level,
            "reasons": list(m.reasons),
            "restricted": pid not in readable,
        }
        for pid, m in ranked
    ]
    stored = deps.repository(DuplicateSearchDocument, caller).insert(
        DuplicateSearchDocument(candidates_examined=len(candidates), results=results)
    )
    by_id = {doc.id: doc for doc in candidates}
    public = [{k: v for k, v in r.items() if k != "restricted"} for r in results]
    view = {
        "id": stored.id,
        "candidates_examined": len(candidates),
        "candidates": [
            {
                **r,
                "given_names": opened[str(r["person_id"])].get("given_names", []),
                "surnames": opened[str(r["person_id"])].get("surnames", []),
                "date_of_birth_range": opened[str(r["person_id"])].get("birth"),
            }
            for r in public
            if r["person_id"] in readable
        ],
        "restricted_candidates": [
            _restricted(deps, caller, by_id[r["person_id"]], r)
            for r in public
            if r["person_id"] not in readable
        ],
    }
    return SearchOutcome(view, found_ids)
