"""Small helpers for the cross-process platform tests (devstack's `platform` fixture): calls through the
gateway, the skeleton services' received-events lists, reading Kafka topics, polling with deadlines; and
identification's runtime on the session's Mongo-wire server, for service-layer tests without the API process."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

import thb_contracts
from plumbing.clock import FixedClock

T = TypeVar("T")

BASE = "/v1/identification"
PURPOSE = {"X-Purpose": "identification"}
EVENTS_TOPIC = "identification.events.v1"
# Every service but the one that publishes identification events consumes them (the skeletons, for now).
CONSUMING_SERVICES = tuple(s.name for s in thb_contracts.services() if s.name != "identification")


@dataclass(frozen=True)
class Probe:
    """One listing per service, by a user who may read it: a request that validates the token and reads the
    service's database (the fault drills ask each service with it)."""

    service: str
    user: str
    purpose: str
    path: str


PROBES = (
    Probe("identification", "me-border", "identification", "/v1/identification/persons"),
    Probe("referral", "me-case-manager", "referral", "/v1/referral/referrals"),
    Probe("exchange", "me-coordinator", "cross-border-exchange", "/v1/exchange/cases"),
    Probe("return", "me-case-manager", "return", "/v1/return/cases"),
)


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT the test already trusts (its `sub`, `aud`): decoded, not verified."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def poll(probe: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.2) -> T:
    """Call `probe` until it returns something truthy; fail with `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


class Client:
    """One demo user's calls through the gateway (token fetched once; it lives for minutes)."""

    def __init__(self, platform: Any, username: str, base_url: str | None = None) -> None:
        self.platform = platform
        self.username = username
        self.base_url = base_url or platform.gateway
        self.token = platform.token(username)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **PURPOSE, **(extra or {})}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = self.headers(kwargs.pop("headers", None))
        if method == "POST":
            # A well-behaved client: one Idempotency-Key per POST, kept across its retries.
            headers.setdefault("Idempotency-Key", f"test-{uuid.uuid4()}")
        for _ in range(20):  # the gateway's per-user budget may answer 429 with Retry-After
            response = httpx.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)
            if response.status_code != 429:
                return response
            time.sleep(min(5.0, float(response.headers.get("Retry-After", "1"))))
        return response

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.request("POST", BASE + path, json=body, **kwargs)

    def register(self, body: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        response = self.post("/persons", body or anonymous_person(), **kwargs)
        assert response.status_code == 201, (response.status_code, response.text)
        return dict(response.json())


def anonymous_person() -> dict[str, Any]:
    """A registration without a name (allowed at first contact): nothing personal to leak from these tests."""
    return {
        "date_of_birth": "2009",
        "sex": "unknown",
        "duplicate_check": {"outcome": "new_person", "reason": "no_candidates"},
    }


def received_events(platform: Any, service: str, country: str) -> list[dict[str, Any]]:
    """Every event the service's consumer applied for `country`, from its API (directly, so that polling is not
    counted against the gateway's per-user budget), all pages."""
    client = _coordinators(platform, service, country)
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        response = client.request("GET", f"/v1/{service}/received-events", params=params)
        assert response.status_code == 200, (service, response.status_code, response.text)
        page = response.json()
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


_CLIENTS: dict[tuple[int, str, str], Client] = {}


def _coordinators(platform: Any, service: str, country: str) -> Client:
    key = (id(platform), service, country)
    client = _CLIENTS.get(key)
    if client is None or time.monotonic() - getattr(client, "made", 0.0) > 120:
        client = Client(platform, f"{country.lower()}-coordinator", base_url=platform.urls[service])
        client.made = time.monotonic()  # type: ignore[attr-defined]
        _CLIENTS[key] = client
    return client


def read_topic(bootstrap: str, topic: str, *, group: str | None = None, timeout_s: float = 20) -> list[Any]:
    """Every record of `topic` from the beginning up to the end offsets seen at start (a fresh group)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group or f"test-read-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in consumer.poll(timeout_ms=300).values():
                records.extend(batch)
        return records
    finally:
        consumer.close(autocommit=False)


def list_topics(bootstrap: str) -> list[str]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return sorted(consumer.topics())
    finally:
        consumer.close()


def header(record: Any, name: str) -> bytes | None:
    return next((value for key, value in record.headers or [] if key == name), None)


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines of a process log (other lines, e.g. gunicorn's own, are skipped)."""
    lines = []
    for raw in text.splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
    return lines


# A child whose views were heard: the subject of the exchange's test forms.
CHILD = {
    "age_group": "child",
    "child_views": {"heard": True, "position": "agrees", "recorded_on": "2026-05-30"},
}


def notification(given: str) -> dict[str, Any]:
    """A notification of a child identified in Kosovo, to Montenegro (no legal basis: the sender chooses it)."""
    return {
        "form_type": "notification",
        "recipient": "ME",
        "subject": CHILD,
        "content": {
            "person": {
                "given_names": [given],
                "surnames": ["Hoxha"],
                "date_of_birth": "2013",
                "sex": "female",
                "nationalities": ["ME"],
            },
            "category": "potential-victim",
            "links": ["national"],
            "forms_of_exploitation": ["forced-begging"],
            "unaccompanied": True,
            "identified_on": "2026-05-28",
            "immediate_needs": ["shelter", "guardian"],
        },
    }


def adult_notification(person: dict[str, Any]) -> dict[str, Any]:
    """A notification of an adult victim identified in Albania, to Montenegro, on her consent; `person` is her
    registration body (given names, surnames, birth, sex), which the form's content repeats."""
    return {
        "form_type": "notification",
        "recipient": "ME",
        "legal_basis": "protection-of-vital-interests",
        "subject": {"age_group": "adult", "consent": {"given": True, "recorded_on": "2026-12-01"}},
        "content": {
            "person": dict(person),
            "category": "victim",
            "links": ["national"],
            "forms_of_exploitation": ["labour"],
            "identified_on": "2026-12-01",
        },
    }


# An adult's informed consent to return, as the return service records it (all the topics it must cover).
RETURN_CONSENT = {
    "topics": ["voluntary_nature", "right_to_withdraw", "data_shared_with_other_country", "risks_on_return"],
    "language": "sqi",
    "interpreter": False,
    "given_on": "2026-12-01",
}


def known_to_every_service(
    gateway: Any, country: str, person: dict[str, Any], notification_form: dict[str, Any], *, send: bool
) -> dict[str, str]:
    """A person registered by `country`'s case manager (`person`: the registration body), a referral proposed
    from her case, a return case to Montenegro on it, and a transnational case record drafted by its contact point
    (`notification_form`: the draft's body) and linked to her case, sent when `send`: the ids of each (`form`: the
    notification's)."""
    prefix = country.lower()
    registered = gateway.call(
        f"{prefix}-case-manager", "POST", "/v1/identification/persons", person, purpose="identification"
    )
    case_id = registered["case_id"]
    referral = gateway.call(
        f"{prefix}-case-manager",
        "POST",
        "/v1/referral/referrals",
        {"service_type": "shelter", "case_id": case_id},
        purpose="referral",
    )
    age_group = notification_form["subject"]["age_group"]
    returning = gateway.call(
        f"{prefix}-case-manager",
        "POST",
        "/v1/return/cases",
        {"origin_country": "ME", "identification_case_id": case_id, "age_group": age_group},
        purpose="return",
    )
    contact_point = f"{prefix}-contact-point"
    drafted, form = gateway.located(
        contact_point, "/v1/exchange/drafts", notification_form, purpose="cross-border-exchange"
    )
    record = drafted["id"]
    gateway.call(
        contact_point,
        "PUT",
        f"/v1/exchange/cases/{record}/identification-case",
        {"identification_case_id": case_id},
        purpose="cross-border-exchange",
    )
    if send:
        gateway.call(
            contact_point,
            "POST",
            f"/v1/exchange/cases/{record}/forms/{form}/send",
            purpose="cross-border-exchange",
        )
    return {
        "person": registered["id"],
        "case": case_id,
        "referral": referral["id"],
        "return": returning["id"],
        "exchange": record,
        "form": form,
    }


def identification_runtime(mongo: Any, keys_dir: Path, database: str, now: datetime) -> Any:
    """identification's `bootstrap.Runtime` on the session's Mongo-wire server (`mongo` fixture): database
    `database`, a key file of its own in `keys_dir`, the clock fixed at `now`."""
    from identification.bootstrap import build_runtime

    env = {
        "THB_MODE": "local",
        "MONGODB_URI": mongo.env["MONGODB_URI"],
        "MONGODB_DB": database,
        "THB_KEYS_FILE": str(keys_dir / "keys.json"),
    }
    return build_runtime(env, FixedClock(now))


def register_person(runtime: Any, caller: Any, given: str, surname: str, sex: str = "female") -> str:
    """A person registered through identification's service layer on `runtime` (born 2010): her id."""
    from identification.service_layer import persons

    body = {"given_names": [given], "surnames": [surname], "date_of_birth": "2010", "sex": sex}
    view, _ = persons.register_person(runtime.deps, caller, body)
    return str(view["id"])
