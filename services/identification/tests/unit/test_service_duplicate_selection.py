"""Which registered people a duplicate search examines (service_layer/duplicates.py `select_candidates`,
`choose`), on fakes: the person searched for is found among many namesakes, only the caller's country is looked
at, and the birth years searched leave out people born in other years."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from identification.adapters import common_keys
from identification.adapters.documents import PersonDocument
from identification.service_layer import duplicates, persons
from identification.service_layer.deps import Deps
from plumbing.fake_store import FakeRepository, FakeStore
from services.identification.tests.unit.fakes import user

COMMON_SURNAME = "Hoxha"
GIVEN = [
    "Arben",
    "Ilir",
    "Besnik",
    "Dritan",
    "Gentian",
    "Artan",
    "Fatmir",
    "Valon",
    "Shpetim",
    "Luan",
    "Erion",
]


def register(deps: Deps, username: str = "al-police", **fields: Any) -> str:
    body = {"given_names": ["Ëngjëll"], "surnames": [COMMON_SURNAME], "date_of_birth": "2010", "sex": "male"}
    view, created = persons.register_person(deps, user(username), {**body, **fields})
    assert created
    return str(view["id"])


def search(deps: Deps, body: dict[str, Any], username: str = "al-case-manager") -> dict[str, Any]:
    return duplicates.search(deps, user(username), body).view


def found(view: dict[str, Any]) -> list[str]:
    return [c["person_id"] for c in view["candidates"]]


@pytest.fixture
def small_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cap of 5 and keys held by more than 3 people common: the same rules as 300 and 50, at a test's size."""
    monkeypatch.setattr(duplicates, "MAX_CANDIDATES", 5)
    monkeypatch.setattr(duplicates, "COMMON_KEY", 3)


@pytest.mark.usefixtures("small_caps")
def test_a_person_with_a_rare_name_is_found_among_more_namesakes_than_the_cap(deps: Deps) -> None:
    for given in GIVEN:  # more people called Hoxha, born the same year, than the search examines
        register(deps, given_names=[given])
    zamir = register(deps, given_names=["Zamir"])

    view = search(deps, {"given_names": ["Zamir"], "surnames": ["Hodža"], "date_of_birth": "2010"})

    assert found(view)[0] == zamir
    # The namesakes who share only the common surname are not examined: their number grows with the country.
    assert view["candidates_examined"] == 1


@pytest.mark.usefixtures("small_caps")
def test_a_misspelt_search_still_finds_the_person_sharing_given_name_and_surname(deps: Deps) -> None:
    for given in GIVEN:
        register(deps, given_names=[given])
    for _ in range(4):  # the given name is common too
        register(deps, given_names=["Arben"], surnames=["Krasniqi"])
    arben = register(deps, given_names=["Arben"])

    # Typos in both names: "Hoxhe" is no stored surname and "Arbin Hoxhe" no stored full name; only the sounds
    # of both words match hers, and each sound alone is common.
    view = search(deps, {"given_names": ["Arbin"], "surnames": ["Hoxhe"], "date_of_birth": "2010"})

    assert arben in found(view)
    assert view["candidates_examined"] <= duplicates.MAX_CANDIDATES


@pytest.fixture
def read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows each `rows` call of the repositories answered."""
    counts: list[int] = []
    rows = FakeRepository.rows

    def counted(self: FakeRepository[Any], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        found = rows(self, *args, **kwargs)
        counts.append(len(found))
        return found

    monkeypatch.setattr(FakeRepository, "rows", counted)
    return counts


@pytest.mark.usefixtures("small_caps")
def test_a_key_found_common_is_not_read_again_until_that_finding_is_old(deps: Deps, read: list[int]) -> None:
    for given in GIVEN:  # Hoxha is common
        register(deps, given_names=[given])
    zamir = register(deps, given_names=["Zamir"])
    body = {"given_names": ["Zamir"], "surnames": ["Hoxha"], "date_of_birth": "2010"}

    def rows_read_by_a_search() -> int:
        read.clear()
        assert found(search(deps, body))[0] == zamir
        return sum(read)

    first = (
        rows_read_by_a_search()
    )  # the first few holders of s:hoxha and of its sound, to learn they are common
    assert rows_read_by_a_search() == first - 2 * (duplicates.COMMON_KEY + 1)
    deps.clock.advance(common_keys.TTL)  # type: ignore[attr-defined]
    assert rows_read_by_a_search() == first


@pytest.mark.usefixtures("small_caps")
def test_what_a_search_reads_does_not_grow_with_the_namesakes(deps: Deps, read: list[int]) -> None:
    """The sounds of "Arben" and of "Hoxha" are each held by many; the search reads the holders of the pair and
    only the first few of each common key (none, once a search found it common), so the namesakes registered
    later add nothing to its work."""
    arben = register(deps, given_names=["Arben"])
    body = {"given_names": ["Arbin"], "surnames": ["Hoxhe"], "date_of_birth": "2010"}

    def rows_read_by_a_search() -> int:
        read.clear()
        view = search(deps, body)
        assert found(view)[0] == arben
        return sum(read)

    others = [given for given in GIVEN if given != "Arben"]
    for given in others:
        register(deps, given_names=[given])
        register(deps, given_names=["Arben"], surnames=["Krasniqi"])
    before = rows_read_by_a_search()
    for given in others * 3:
        register(deps, given_names=[given])
        register(deps, given_names=["Arben"], surnames=["Krasniqi"])

    # No more than before (less: the common keys the first search found are not read again).
    assert rows_read_by_a_search() <= before


@pytest.mark.usefixtures("small_caps")
def test_when_every_key_is_common_the_cap_still_bounds_what_is_examined(deps: Deps) -> None:
    for given in GIVEN:
        register(deps, given_names=[given])

    view = search(deps, {"surnames": [COMMON_SURNAME], "date_of_birth": "2010"})

    assert view["candidates_examined"] == 5


def test_a_person_of_another_country_is_never_a_candidate(deps: Deps) -> None:
    register(deps, "xk-police")
    register(deps, "xk-police", given_names=["Arben"])
    mine = register(deps, "al-labour")

    for username in ("al-case-manager", "al-police"):
        view = search(deps, {"given_names": ["Engjell"], "surnames": ["Hoxha"]}, username)
        ids = found(view) + [c["case_id"] for c in view["restricted_candidates"]]
        assert len(ids) == 1 and view["candidates_examined"] == 1
    assert found(search(deps, {"given_names": ["Engjell"], "surnames": ["Hoxha"]})) == [mine]


def test_a_candidate_born_in_none_of_the_searched_years_is_left_out(deps: Deps) -> None:
    born_2010 = register(deps, date_of_birth="2010-05-01")
    register(deps, date_of_birth="1990")

    view = search(deps, {"given_names": ["Engjell"], "surnames": ["Hoxha"], "date_of_birth": "2010"})

    assert found(view) == [born_2010] and view["candidates_examined"] == 1


def test_a_candidate_without_a_recorded_birth_is_kept_whatever_the_years_searched(deps: Deps) -> None:
    unknown_birth = register(deps, date_of_birth=None)
    register(deps, date_of_birth="1990")

    view = search(deps, {"given_names": ["Engjell"], "surnames": ["Hoxha"], "date_of_birth": "2010"})

    assert found(view) == [unknown_birth]
    # Without years searched, both are candidates.
    assert len(found(search(deps, {"given_names": ["Engjell"], "surnames": ["Hoxha"]}))) == 2


def test_a_search_with_a_birth_reads_only_the_namesakes_of_its_years(deps: Deps, read: list[int]) -> None:
    for _ in range(6):  # the same name, born twenty years earlier
        register(deps, given_names=["Arben"], date_of_birth="1990")
    born_2010 = register(deps, given_names=["Arben"])
    unknown_birth = register(deps, given_names=["Arben"], date_of_birth=None)

    view = search(deps, {"given_names": ["Arben"], "surnames": ["Hoxha"], "date_of_birth": "2010"})

    assert sorted(found(view)) == sorted([born_2010, unknown_birth])
    assert read[0] == 2  # the holders of "Arben Hoxha" read first: those of 2010 and of unknown birth


@pytest.mark.usefixtures("small_caps")
def test_when_nobody_shares_a_pair_the_sounds_are_read_in_the_searched_years_only(
    deps: Deps, read: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slip that changed the sound of the surname: she shares only her given name's sound, which thousands
    hold at a million people. The search reads its holders born in the searched years, not the first MAX_WALK
    of every year."""
    monkeypatch.setattr(duplicates, "MAX_WALK", 3)
    for given in GIVEN:  # the sound of Arben is common, its holders born twenty years earlier
        register(deps, given_names=["Arben"], surnames=[given], date_of_birth="1990")
    arben = register(deps, given_names=["Arben"], surnames=["Gashi"])

    body = {"given_names": ["Arben"], "surnames": ["Zogu"], "date_of_birth": "2010"}
    search(deps, body)  # finds the sound of Arben common: the next search reads none of its first holders
    read.clear()

    assert found(search(deps, body)) == [arben]
    assert read[-1] == 1  # the last read, as nobody shared a pair: those of 2010 (and of unknown birth)


@pytest.mark.usefixtures("small_caps")
def test_a_sound_common_in_the_searched_years_is_walked_in_those_years_only(
    deps: Deps, read: list[int]
) -> None:
    """Nobody shares a pair, and her given name's sound is common. The first holders read to learn that are a
    sample: the few of them born in 2010 hold the sound of 2010, which makes none of them a candidate. The walk
    reads its holders of 2010, who compete for the cap; none of 1990."""
    # Five born in 2010, more than COMMON_KEY; the first two registered first, so that they are in the sample.
    for given in GIVEN[:2]:
        register(deps, given_names=["Arben"], surnames=[given], date_of_birth="2010")
    deps.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    for given in GIVEN:  # the sound of Arben in any year
        register(deps, given_names=["Arben"], surnames=[given], date_of_birth="1990")
    deps.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    for given in GIVEN[2:4]:
        register(deps, given_names=["Arben"], surnames=[given], date_of_birth="2010")
    arben = register(deps, given_names=["Arben"], surnames=["Gashi"])

    view = search(deps, {"given_names": ["Arben"], "surnames": ["Zogu"], "date_of_birth": "2010"})

    assert arben in found(view) and view["candidates_examined"] == 5
    assert max(read) == 5  # the walk: the five holders of 2010


@pytest.mark.usefixtures("small_caps")
def test_a_person_keyed_before_the_dated_pairs_is_found_while_re_keying_is_not_finished(
    deps: Deps, store: FakeStore
) -> None:
    """Persons registered before `t:` keys hold pairs of sounds in any year (`q:`) only, until the re-keying task
    reaches them: meanwhile the search reads those."""
    for given in GIVEN:  # "Hoxha" and the sound of "Arben" are common
        register(deps, given_names=[given])
        register(deps, given_names=["Arben"], surnames=["Krasniqi"])
    earlier = register(deps, given_names=["Arben"], date_of_birth="2010-03-01")
    with store.lock:  # her keys as the scheme before `t:` made them
        row = store.rows(PersonDocument)[earlier]
        details = deps.sealer.open("AL", earlier, row["sealed"])
        older = {k for k in persons.blocking_keys_of(details) if not k.startswith(("y:", "t:"))}
        store.rows(PersonDocument)[earlier] = {
            **row,
            "blocking_keys": deps.sealer.blocking_tokens("AL", older),
            "keys_scheme": 2,
        }
    body = {"given_names": ["Arbin"], "surnames": ["Hoxhe"], "date_of_birth": "2010"}

    search(
        deps, body
    )  # finds the sounds of Arben and Hoxha common: the next search reads none of their holders
    assert earlier not in found(search(deps, body))  # and its dated pair does not reach her
    deps.keys_outdated = lambda: True
    assert earlier in found(search(deps, body))
