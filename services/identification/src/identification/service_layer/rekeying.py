"""Re-keying: persons stored before today's `names.KEY_SCHEME` get the blocking keys it makes, from their sealed
details, found by a walk of every country's persons in order of their last change (adapters/person_keys.py),
window after window for up to PASS_BUDGET_S of each scheduler pass (entrypoints/scheduler.py). Without it a
duplicate search, which reads the holders of a name's pairs of sounds (service_layer/duplicates.py), would not
find a person registered before the pairs existed unless she shared a rare key.

The job decrypts names, so each batch is in the access log before anything is decrypted: one entry per owning
country and agency, actor `system:rekey-job`, purpose `identification` (the keys serve the duplicate search),
operation `persons.rekey`, naming every person of the batch. Nothing leaves the process."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from identification.adapters.person_keys import PersonKeys, StalePerson
from identification.domain import names
from identification.service_layer.deps import Deps
from identification.service_layer.persons import keys_for
from plumbing.auth import Caller
from plumbing.errors import DecryptionError

log = logging.getLogger(__name__)

ACTOR = "system:rekey-job"
SERVICE = "identification"  # as bootstrap.SERVICE; the service layer does not import the wiring
PURPOSE = "identification"
BATCH = 200
PASS_BUDGET_S = 20.0  # of the scheduler's 30 s between passes


def rekey_task(
    deps: Deps, access_log: Any, keys: PersonKeys | None = None, *, budget_s: float = PASS_BUDGET_S
) -> Callable[[], int]:
    """The scheduler task: walk each country's persons window by window (adapters/person_keys.py), the countries
    in turn, re-keying the stale persons of a window BATCH at a time, until every walk is at the present or
    `budget_s` is spent; answers how many were rewritten."""
    store = keys or PersonKeys(names.KEY_SCHEME, deps.config.country_codes, deps.clock)

    def rekey() -> int:
        started, rewritten = time.monotonic(), 0
        walking = list(store.countries)
        while walking and time.monotonic() - started < budget_s:
            for country in list(walking):
                window = store.next_window(country, BATCH)
                if window is None:
                    walking.remove(country)  # at the present: nothing to do until the clock moves
                    continue
                done, given_up = _rekey(deps, access_log, store, window.stale)
                rewritten += done
                if window.whole:
                    # A person whose rewrite found her details changed was written meanwhile, so stamped
                    # after the window (its end is MARGIN before the clock): the walk meets her again.
                    store.passed(window)
                    if window.at_present:
                        walking.remove(country)  # until the next pass: the present moves on meanwhile
                elif not done + given_up:
                    walking.remove(
                        country
                    )  # no progress (records changed meanwhile): the next pass looks again
        return rewritten

    return rekey


def _rekey(deps: Deps, access_log: Any, store: PersonKeys, batch: list[StalePerson]) -> tuple[int, int]:
    """Rewrite the batch's keys; how many persons were rewritten, and how many given up."""
    _log(access_log, batch)
    done = given_up = 0
    for person in batch:
        try:
            details = deps.sealer.open(person.owner_country, person.id, person.sealed)
        except DecryptionError as exc:
            # Her keys cannot be made again without her details: she keeps those she has, and is not asked
            # about on every pass (the cause is for an operator: a key missing from the ring, a damaged value).
            log.error("person %s cannot be re-keyed: %s", person.id, exc)
            store.give_up(person)
            given_up += 1
            continue
        blocking, years = keys_for(deps, person.owner_country, details)
        done += store.rewrite(person, blocking, years)
    return done, given_up


def _log(access_log: Any, batch: list[StalePerson]) -> None:
    owners: dict[tuple[str, str], list[str]] = defaultdict(list)
    for person in batch:
        owners[(person.owner_country, person.owner_agency)].append(person.id)
    for (country, agency), ids in owners.items():
        job = Caller.job(ACTOR, SERVICE, country, agency)
        access_log.record_read(job, PURPOSE, "persons.rekey", "person", ids, "rekeyed", None, None)
