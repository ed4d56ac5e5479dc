"""Scope, generated: every operation of every contract, called through the gateway and directly on its service,
with the token of every demo user (each country x each role, plus the two broken test users).

Seed first: in each country, an officer of the state police and one of the labour inspectorate each register a
person (same surname everywhere, so a duplicate search would find the other countries' people if scope leaked),
screen the first-contact case and decide a category (which notifies the coordinator's office). Then each
(user, operation, channel) call is checked against what the realm and the contract say:

- `test-two-countries` and `test-no-group` (no single country) get 401, from the gateway and the service;
- a token without the service's audience gets 401 from the service and 403 from the gateway (docs/gateway.md);
- a role not in the operation's `x-roles` gets 403; analysts never get a 2xx on an `x-personal-data` operation;
- a path or body naming a record of ANOTHER country gets 404; a record of the caller's country owned by
  another agency gets 404 unless the caller's role reads the whole country (need-to-know);
- every other call of an allowed caller succeeds (2xx) or fails for a business rule (409/422), never 401/403/404
  or 5xx;
- no response body of any call contains an id (person, case, screening, notification, duplicate search, event)
  owned by another country, nor an `owner_country` other than the caller's, nor (received events) a `country`
  other than the caller's.

Calls run in a thread pool; 429s of the gateway's per-user budget are retried after Retry-After.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.integration.contract_requests import (
    ADULT_LABOUR,
    BODIES,
    BODY_REFERENCES,
    FIXED_PATH_VALUES,
    ID,
    LAST,
    NEVER_SUCCEED_HERE,
    PATH_KINDS,
    PROBE_YEARS,
    QUERIES,
    QUERY_REFERENCES,
    REMOVES,
    RULE_DECIDED,
    SEED_AGENCIES,
    SEED_MUNICIPALITY,
    SEED_SURNAME,
    path_kinds,
)
from tests.integration.platform_helpers import CONSUMING_SERVICES
from tests.integration.scope_helpers import Caller, DemoUser, Tokens, demo_users, ids_in, owner_countries
from tools.contracts import Operation, all_operations

CHANNELS = ("gateway", "direct")


@dataclass
class Seed:
    """Records per channel and country: kind -> owner agency -> id; and every id the country owns. Each channel
    probes records of its own, so that an operation a record allows once (a recovery period) succeeds once on
    each channel, whichever probe comes first."""

    records: dict[str, dict[str, dict[str, dict[str, str]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    )
    owned: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


@dataclass(frozen=True)
class Probe:
    user: DemoUser
    op: Operation
    channel: str  # "gateway" or "direct"
    target: tuple[str, str] | None  # (owner country, owner agency) of the record named, if any
    path: str
    body: Any
    params: dict[str, Any] | None


@dataclass
class Outcome:
    probe: Probe
    status: int
    text: str


# ------------------------------------------------------------------------------------------------- seed


def _ok(response: httpx.Response, *expected: int) -> dict[str, Any]:
    assert response.status_code in expected, (response.status_code, response.text)
    return dict(response.json())


def _seed_country(call: Caller, urls: dict[str, str], country: str, countries: list[str], seed: Seed) -> None:
    direct, prefix = urls["identification"], country.lower()
    for channel, (user_suffix, agency) in itertools.product(CHANNELS, SEED_AGENCIES.items()):
        user = f"{prefix}-{user_suffix}"
        body = {"given_names": ["Seed"], "surnames": [SEED_SURNAME], "date_of_birth": "1989", "sex": "female"}
        person = _ok(call(user, "POST", f"{direct}{ID}/persons", body), 201)
        case_id = person["case_id"]
        screening = _ok(
            call(
                user,
                "POST",
                f"{direct}{ID}/screenings",
                {"case_id": case_id, "indicator_set_version": "2026.1", "answers": ADULT_LABOUR},
            ),
            201,
        )
        _ok(
            call(
                user,
                "POST",
                f"{direct}{ID}/cases/{case_id}/decisions",
                {"category": "potential_victim", "screening_id": screening["id"]},
            ),
            200,
        )
        records = seed.records[channel][country]
        records["person"][agency] = person["id"]
        records["case"][agency] = case_id
        records["screening"][agency] = screening["id"]
        seed.owned[country] |= {person["id"], case_id, screening["id"]}
    for channel in CHANNELS:
        _seed_access_request(call, direct, country, seed.records[channel][country], seed)
        # The record a merge probe keeps: each seeded person of the country may be merged into it once (and the
        # merge is undone by the probes that run last).
        spare = {
            "given_names": ["Spare"],
            "surnames": [SEED_SURNAME],
            "date_of_birth": "1989",
            "sex": "female",
        }
        kept = _ok(call(f"{prefix}-police", "POST", f"{direct}{ID}/persons", spare), 201)
        seed.records[channel][country]["spare_person"][SEED_AGENCIES["police"]] = kept["id"]
        seed.owned[country] |= {kept["id"], kept["case_id"]}
        _seed_referral(call, urls["referral"], country, channel, seed)
        _seed_return(call, urls["return"], country, _next_country(country, countries), channel, seed)
        _seed_exchange(call, urls["exchange"], country, _next_country(country, countries), channel, seed)


def _seed_referral(call: Caller, referral: str, country: str, channel: str, seed: Seed) -> None:
    """A shelter of the country's directory and a police officer's proposal of a referral to shelter (the probes
    request it to that shelter, then cancel it)."""
    prefix, police = country.lower(), SEED_AGENCIES["police"]
    body = {
        "agency_id": f"seed-shelter-{prefix}-{channel}",
        "name": "Seed shelter",
        "kind": "ngo",
        "service_types": ["shelter"],
        "municipalities": [SEED_MUNICIPALITY[country]],
        "accepts": {"children": False, "adults": True, "sexes": ["female"]},
        "hours": {"always": True},
        "capacity": {"women": 3},
    }
    provider = _ok(call(f"{prefix}-coordinator", "POST", f"{referral}/v1/referral/providers", body), 201)
    proposal = _ok(
        call(f"{prefix}-police", "POST", f"{referral}/v1/referral/referrals", {"service_type": "shelter"}),
        201,
    )
    records = seed.records[channel][country]
    # A referral sent with its case fields read from the officer's own identification case (on her behalf): the
    # one the refresh probes copy again.
    named = {"service_type": "shelter", "case_id": records["case"][police]}
    sent = _ok(call(f"{prefix}-police", "POST", f"{referral}/v1/referral/referrals", named), 201)
    request = {
        "provider_id": provider["id"],
        "age_group": "adult",
        "sex": "female",
        "consent": {"given": True},
        "field_sets": ["identity"],
    }
    _ok(
        call(f"{prefix}-police", "POST", f"{referral}/v1/referral/referrals/{sent['id']}/request", request),
        200,
    )
    records["provider"][police] = provider["id"]
    records["referral"][police] = proposal["id"]
    records["referral_sent"][police] = sent["id"]
    seed.owned[country] |= {provider["id"], proposal["id"], sent["id"]}


def _seed_return(call: Caller, service: str, country: str, origin: str, channel: str, seed: Seed) -> None:
    """A case manager's return cases of a child and of an adult returning to `origin` (the next country): the
    child's with its family and best-interests assessments recorded, the adult's for consent and its withdrawal."""
    manager = f"{country.lower()}-case-manager"
    cases = f"{service}/v1/return/cases"
    child = _ok(call(manager, "POST", cases, {"origin_country": origin, "age_group": "child"}), 201)
    family = {**BODIES["voluntary_return.entrypoints.http.record_family_assessment"], "from_country": origin}
    _ok(call(manager, "POST", f"{cases}/{child['id']}/family-assessment", family), 200)
    assessment = BODIES["voluntary_return.entrypoints.http.record_best_interests_assessment"]
    _ok(call(manager, "POST", f"{cases}/{child['id']}/best-interests-assessment", assessment), 200)
    adult = _ok(call(manager, "POST", cases, {"origin_country": origin, "age_group": "adult"}), 201)
    records = seed.records[channel][country]
    records["return_case"][child["owner_agency"]] = child["id"]
    records["return_adult_case"][adult["owner_agency"]] = adult["id"]
    seed.owned[country] |= {child["id"], adult["id"]}


EXCHANGE = "/v1/exchange"
EXCHANGE_AGENCY = "coordinator-office"  # the exchange records of a country belong to its coordinator's office


def _seed_exchange(call: Caller, exchange: str, country: str, partner: str, channel: str, seed: Seed) -> None:
    """Three notifications of the contact point to the next partner country: one sent (read, corrected and
    withdrawn by the probes; its partner acknowledges it), one draft for the send probes, one for the discard
    probes."""
    user, records = f"{country.lower()}-contact-point", seed.records[channel][country]
    body = _fill(BODIES["exchange.entrypoints.http.draft_form"], {"partner": partner})
    for kind in ("exchange", "exchange_draft", "exchange_spare"):
        drafted = call(user, "POST", f"{exchange}{EXCHANGE}/drafts", body)
        case = _ok(drafted, 201)
        form_id = drafted.headers["location"].rsplit("/", 1)[1]
        records[f"{kind}_case"][EXCHANGE_AGENCY] = case["id"]
        records[kind if kind != "exchange" else "exchange_form"][EXCHANGE_AGENCY] = form_id
        seed.owned[country].add(case["id"])  # form ids are shared with the partner: not the country's alone
        if kind == "exchange":
            sent = f"{exchange}{EXCHANGE}/cases/{case['id']}/forms/{form_id}/send"
            records["exchange_reference"][EXCHANGE_AGENCY] = _ok(call(user, "POST", sent, {}), 200)[
                "reference"
            ]


def _collect_received(call: Caller, exchange: str, country: str, sender: str, seed: Seed) -> None:
    """The partner's sent notification as it arrived in `country` (through the transport and the inbox), per
    channel: the form the acknowledge probes take."""
    user = f"{country.lower()}-contact-point"
    for channel in CHANNELS:
        sent = seed.records[channel][sender]
        reference = sent["exchange_reference"][EXCHANGE_AGENCY]
        form_id = sent["exchange_form"][EXCHANGE_AGENCY]
        deadline = time.monotonic() + 60
        while True:
            page = _ok(call(user, "GET", f"{exchange}{EXCHANGE}/cases", params={"limit": 200}), 200)
            arrived = [c for c in page["items"] if c["reference"] == reference]
            if arrived or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert arrived, f"{sender}'s notification {reference} never reached {country}"
        records = seed.records[channel][country]
        records["exchange_received_case"][EXCHANGE_AGENCY] = arrived[0]["id"]
        records["exchange_received"][EXCHANGE_AGENCY] = form_id
        seed.owned[country].add(arrived[0]["id"])


def _seed_access_request(call: Caller, direct: str, country: str, records: Any, seed: Seed) -> None:
    """The police's search finds the labour inspectorate's seeded person as a restricted match; the police ask
    for access to that case (pending)."""
    police, labour = SEED_AGENCIES["police"], SEED_AGENCIES["labour"]
    user = f"{country.lower()}-police"
    criteria = {"given_names": ["Seed"], "surnames": [SEED_SURNAME], "date_of_birth": "1989"}
    search = _ok(call(user, "POST", f"{direct}{ID}/duplicate-searches", criteria), 201)
    wanted = records["case"][labour]
    assert wanted in [c["case_id"] for c in search["restricted_candidates"]], search
    body = {"search_id": search["id"], "case_id": wanted, "reason": "other"}
    request = _ok(call(user, "POST", f"{direct}{ID}/access-requests", body), 201)
    records["search"][police] = search["id"]
    records["restricted_case"][police] = wanted
    records["access_request"][labour] = request["id"]
    seed.owned[country] |= {search["id"], request["id"]}


def _collect_owned(call: Caller, urls: dict[str, str], country: str, seed: Seed) -> None:
    """Every id the country owns that its coordinator can list (other tests of the session add more)."""
    coordinator = f"{country.lower()}-coordinator"
    direct = urls["identification"]
    for path in ("/persons", "/cases", "/notifications"):
        cursor: str | None = None
        for _ in range(20):
            params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            page = _ok(call(coordinator, "GET", f"{direct}{ID}{path}", params=params), 200)
            for item in page["items"]:
                assert item.get("owner_country", country) == country, item
                seed.owned[country] |= ids_in(
                    json.dumps({k: v for k, v in item.items() if k != "cross_border"})
                )
            cursor = page.get("next_cursor")
            if not cursor:
                break
    notes = _ok(call(coordinator, "GET", f"{direct}{ID}/notifications", params={"limit": 200}), 200)["items"]
    for channel in CHANNELS:
        records = seed.records[channel][country]
        seeded_cases = set(records["case"].values())
        for note in notes:
            if note["case_id"] in seeded_cases:
                records["notification"][note["owner_agency"]] = note["id"]
        assert records["notification"], f"no notification for {country}'s seeded decisions ({channel})"
    for service in CONSUMING_SERVICES:
        page = _ok(
            call(coordinator, "GET", f"{urls[service]}/v1/{service}/received-events", params={"limit": 200}),
            200,
        )
        for item in page["items"]:
            seed.owned[country] |= {item["event_id"], item["aggregate_id"]}


# ------------------------------------------------------------------------------------------------ probes


def _fill(template: Any, ids: dict[str, str]) -> Any:
    text = json.dumps(template)
    for name, value in ids.items():
        text = text.replace("{" + name + "}", value)
    return json.loads(text)


def _next_country(country: str, countries: list[str]) -> str:
    return countries[(countries.index(country) + 1) % len(countries)]


def _targets(user: DemoUser, countries: list[str]) -> list[tuple[str, str]]:
    """Whose records a user probes: both seeded agencies of a country, and one agency of another country.

    Users without a country probe the first country's records (they must be refused before any lookup)."""
    home = user.country or countries[0]
    other = _next_country(home, countries)
    return [(home, agency) for agency in SEED_AGENCIES.values()] + [(other, SEED_AGENCIES["police"])]


def _record(seed: Seed, kind: str, target: tuple[str, str], channel: str) -> str:
    country, agency = target
    by_agency = seed.records[channel][country][kind]
    return by_agency.get(agency) or next(iter(by_agency.values()))


def _target_of(seed: Seed, kind: str, target: tuple[str, str], channel: str) -> tuple[str, str]:
    """The real owner of the record probed (a notification may be owned by another agency than asked)."""
    country, agency = target
    by_agency = seed.records[channel][country][kind]
    return (country, agency) if agency in by_agency else (country, next(iter(by_agency)))


def _has_limit(op: Operation) -> bool:
    """Lists take `limit` (a `$ref` to `<Service>Limit`, or an inline parameter named so)."""
    for parameter in op.spec.get("parameters", []):
        if parameter.get("name") == "limit" or str(parameter.get("$ref", "")).endswith("Limit"):
            return True
    return False


def probes(users: list[DemoUser], seed: Seed, urls: dict[str, str], countries: list[str]) -> list[Probe]:
    result: list[Probe] = []
    unique = itertools.count(1)
    for user, op in itertools.product(users, all_operations()):
        named = path_kinds(op.operation_id, op.service, op.path)
        names = list(named)
        reference = BODY_REFERENCES.get(op.operation_id) or QUERY_REFERENCES.get(op.operation_id)
        kinds = [named[n] for n in names] + ([PATH_KINDS[reference]] if reference else [])
        targets: list[tuple[str, str] | None] = list(_targets(user, countries)) if kinds else [None]
        if "notification" in kinds:  # one notification per country is enough
            targets = [t for t in targets if t is not None and t[1] == SEED_AGENCIES["police"]]
        for target, channel in itertools.product(targets, CHANNELS):
            ids: dict[str, str] = {}
            owner = None
            if target is not None:
                kind = kinds[0]
                owner = _target_of(seed, kind, target, channel)
                for name in names:
                    ids[name] = _record(seed, named[name], owner, channel)
                if reference:
                    ids[reference] = _record(seed, PATH_KINDS[reference], owner, channel)
            path = op.path
            for name, value in {**FIXED_PATH_VALUES, **ids}.items():
                path = path.replace("{" + name + "}", value)
            base = urls["gateway"] if channel == "gateway" else urls[op.service]
            template = BODIES.get(op.operation_id, {})
            if op.operation_id in RULE_DECIDED and target is None:
                home = seed.records[channel][user.country or countries[0]]
                police = SEED_AGENCIES["police"]
                ids = {
                    **ids,
                    "search_id": home["search"][police],
                    "restricted_case_id": home["restricted_case"][police],
                }
            if "{seed_provider_id}" in json.dumps(template) and owner is not None:
                ids = {**ids, "seed_provider_id": _record(seed, "provider", owner, channel)}
            if "{seed_municipality}" in json.dumps(template):
                ids = {**ids, "seed_municipality": SEED_MUNICIPALITY.get(user.country or "", "AL-TIR")}
            if "{spare_person_id}" in json.dumps(template) and owner is not None:
                ids = {**ids, "spare_person_id": _record(seed, "spare_person", owner, channel)}
            if "{partner}" in json.dumps(template):
                ids = {**ids, "partner": _next_country(user.country or countries[0], countries)}
            if "{unique}" in json.dumps(template):
                ids = {**ids, "probe_year": PROBE_YEARS["scope"], "unique": str(next(unique))}
            has_body = op.method in ("post", "patch", "put") and "requestBody" in op.spec
            body = _fill(template, ids) if has_body else None
            query = QUERIES.get(op.operation_id)
            params = _fill(query, ids) if query else ({"limit": 200} if _has_limit(op) else None)
            result.append(Probe(user, op, channel, owner, base + path, body, params))
    return result


# --------------------------------------------------------------------------------------------- judgement


def expected(probe: Probe) -> str:
    """'401', '403', '404', 'ok' (2xx), 'allowed' (2xx, 409 or 422) or 'rule' (RULE_DECIDED) for one probe."""
    user, op = probe.user, probe.op
    if not user.valid:
        return "401"
    if not user.may_use(op.service):
        return "401" if probe.channel == "direct" else "403"
    if not user.roles & set(op.roles or []):
        return "403"
    if op.operation_id in RULE_DECIDED:
        return "rule"
    if probe.target is not None:
        return "allowed" if user.sees(*probe.target) else "404"
    return "ok"


def _gone(op: Operation, status: int) -> bool:
    """A 404 from an operation that removes its record (REMOVES): an earlier probe removed it."""
    return status == 404 and op.operation_id in REMOVES


def violations(outcome: Outcome, foreign: set[str]) -> list[str]:
    probe, status = outcome.probe, outcome.status
    user, op = probe.user, probe.op
    where = f"{user.username} {op.method.upper()} {probe.path} [{probe.channel}] -> {status}"
    problems: list[str] = []
    want = expected(probe)
    if status >= 500:
        problems.append(f"{where}: server error")
    elif want in ("401", "403", "404") and status != int(want):
        problems.append(f"{where}: expected {want}")
    elif want == "ok" and not 200 <= status < 300:
        problems.append(f"{where}: expected a 2xx")
    elif want == "allowed" and status not in (200, 201, 204, 409, 422) and not _gone(op, status):
        problems.append(f"{where}: expected 2xx/409/422")
    elif want == "rule" and status not in (200, 201, 204, 403, 404, 409, 422):
        problems.append(f"{where}: expected 2xx/403/404/409/422")
    if 200 <= status < 300 and op.spec.get("x-personal-data") and "analyst" in user.roles:
        problems.append(f"{where}: an analyst received personal data")
    leaked = ids_in(outcome.text) & foreign
    if leaked:
        problems.append(f"{where}: ids of another country in the body: {sorted(leaked)[:3]}")
    if user.valid and outcome.text.startswith(("{", "[")):
        document = json.loads(outcome.text)
        others = {c for c in owner_countries(document) if c != user.country}
        if others:
            problems.append(f"{where}: owner_country {sorted(others)} in the body")
        if op.path.endswith("/received-events") and isinstance(document, dict):
            countries = {item.get("country") for item in document.get("items", [])} - {user.country, None}
            if countries:
                problems.append(f"{where}: received events of {sorted(countries)}")
    return problems


# ---------------------------------------------------------------------------------------------------- test


@pytest.fixture(scope="module")
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=16) as executor:
        yield executor


# Every operation x every demo user x both channels (about 4,000 calls): about 3 minutes on 2 idle cores, more
# on a loaded machine; the suite-wide limit of 300 s is for ordinary tests.
@pytest.mark.timeout(900)
def test_every_operation_with_every_country_and_role(running_platform: Any, pool: ThreadPoolExecutor) -> None:
    platform = running_platform
    started = time.monotonic()
    users = demo_users()
    countries = sorted({u.country for u in users if u.country})
    assert len(users) >= 45 and len(countries) >= 3
    tokens = Tokens(platform.token)
    tokens.prefetch([u.username for u in users], pool)
    call = Caller(tokens)
    try:
        seed = Seed()
        list(pool.map(lambda c: _seed_country(call, platform.urls, c, countries, seed), countries))
        for country in countries:
            _collect_owned(call, platform.urls, country, seed)
            sender = countries[(countries.index(country) - 1) % len(countries)]
            _collect_received(call, platform.urls["exchange"], country, sender, seed)

        all_probes = probes(users, seed, platform.urls, countries)
        first = [p for p in all_probes if p.op.operation_id not in LAST]
        last = [p for p in all_probes if p.op.operation_id in LAST]

        def run(probe: Probe) -> Outcome:
            if probe.op.method == "patch":
                response = call.conditional(probe.user.username, probe.path, probe.body)
            else:
                response = call(
                    probe.user.username, probe.op.method.upper(), probe.path, probe.body, probe.params
                )
            return Outcome(probe, response.status_code, response.text)

        outcomes = list(pool.map(run, first)) + list(pool.map(run, last))
    finally:
        call.close()

    problems: list[str] = []
    for outcome in outcomes:
        home = outcome.probe.user.country
        foreign = set().union(*(ids for c, ids in seed.owned.items() if c != home))
        problems += violations(outcome, foreign)

    # Not vacuous: every operation was answered 2xx to someone, on both channels.
    succeeded = Counter((o.probe.op.operation_id, o.probe.channel) for o in outcomes if 200 <= o.status < 300)
    for op in all_operations():
        for channel in CHANNELS:
            if not succeeded[(op.operation_id, channel)] and op.operation_id not in NEVER_SUCCEED_HERE:
                problems.append(f"{op.label} [{channel}]: no caller ever got a 2xx (the probe is wrong)")
    users_per_op = {(o.probe.op.operation_id, o.probe.user.username) for o in outcomes}
    assert len(users_per_op) == len(all_operations()) * len(users)

    elapsed = time.monotonic() - started
    print(
        f"\nscope: {len(outcomes)} calls, {len(users)} users, retries by status {dict(call.retries)}, {elapsed:.0f}s"
    )
    print("statuses:", dict(Counter(o.status for o in outcomes)))
    assert not problems, f"{len(problems)} scope violations:\n" + "\n".join(problems[:80])
