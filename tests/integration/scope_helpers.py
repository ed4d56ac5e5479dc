"""Helpers of the generated scope test (test_platform_scope.py): who the demo users are, what each may do, and a
thread-safe HTTP caller with a token cache that honours the gateway's rate budgets.

Everything about a user is read from the realm files (realm/local-realm.json for users and their groups,
realm/base-realm.json for the services each agency group may use) and what each role reads from the platform
configuration (config/platform.yaml `need_to_know`), so the expectations follow the realm and the configuration.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from plumbing.config import load_platform_config
from tests.integration.contract_requests import purpose_for

REPO = Path(__file__).resolve().parents[2]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Need-to-know (docs/conventions.md; plumbing.repository), from `need_to_know` in config/platform.yaml like the
# services: these roles read their whole country; agency roles read their own agency's records; everyone else
# reads no owned record through the request path (nothing in this test is assigned to anyone).
NEED_TO_KNOW = load_platform_config(REPO / "config" / "platform.yaml").need_to_know
COUNTRY_WIDE_ROLES = NEED_TO_KNOW.country_wide
AGENCY_ROLES = NEED_TO_KNOW.agency


@dataclass(frozen=True)
class DemoUser:
    username: str
    country: str | None  # None for a user whose token every service must reject
    agency: str | None
    roles: frozenset[str]
    audiences: frozenset[str]  # the `<service>-api` clients the user's group gives access to

    @property
    def valid(self) -> bool:
        return self.country is not None

    def may_use(self, service: str) -> bool:
        return f"{service}-api" in self.audiences

    def sees(self, owner_country: str, owner_agency: str) -> bool:
        """Need-to-know for one owned record (assignment aside: nothing in this test is assigned)."""
        if owner_country != self.country:
            return False
        if self.roles & COUNTRY_WIDE_ROLES:
            return True
        return bool(self.roles & AGENCY_ROLES) and owner_agency == self.agency


def demo_users() -> list[DemoUser]:
    base = json.loads((REPO / "realm" / "base-realm.json").read_text())
    local = json.loads((REPO / "realm" / "local-realm.json").read_text())
    access: dict[str, frozenset[str]] = {}
    for country in base["groups"]:
        for agency in country["subGroups"]:
            access[f"/{country['name']}/{agency['name']}"] = frozenset(agency.get("clientRoles", {}))
    users = []
    for user in local["users"]:
        groups = user.get("groups", [])
        roles = frozenset(user.get("realmRoles", []))
        if len(groups) == 1:
            _, country, agency = groups[0].split("/")
            users.append(DemoUser(user["username"], country, agency, roles, access[groups[0]]))
        else:  # no group or two countries: a token without exactly one country
            audiences = frozenset().union(*(access[g] for g in groups)) if groups else frozenset()
            users.append(DemoUser(user["username"], None, None, roles, audiences))
    return users


class Tokens:
    """One access token per user, fetched once and renewed well before its 300 s lifetime ends.

    One login per user at a time: with brute-force protection on, Keycloak refuses a second login of the same
    user while the first is in flight (400 invalid_grant), so threads that find the same token stale wait for the
    one that renews it.
    """

    def __init__(self, fetch: Callable[[str], str], max_age_s: float = 180.0) -> None:
        self._fetch = fetch
        self._max_age = max_age_s
        self._lock = threading.Lock()
        self._user_locks: dict[str, threading.Lock] = {}
        self._tokens: dict[str, tuple[float, str]] = {}

    def __call__(self, username: str) -> str:
        with self._lock:
            user_lock = self._user_locks.setdefault(username, threading.Lock())
        with user_lock:
            cached = self._tokens.get(username)
            if cached and time.monotonic() - cached[0] < self._max_age:
                return cached[1]
            token = self._fetch(username)
            self._tokens[username] = (time.monotonic(), token)
            return token

    def prefetch(self, usernames: Iterable[str], pool: Any) -> None:
        list(pool.map(self, usernames))


class Caller:
    """Sends one request and retries a 429 after its Retry-After (the gateway's per-user budget)."""

    def __init__(self, tokens: Tokens, max_retries: int = 20) -> None:
        self.tokens = tokens
        self.client = httpx.Client(
            timeout=60, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)
        )
        self.max_retries = max_retries
        self.retries: Counter[int] = Counter()
        self._lock = threading.Lock()

    def __call__(
        self,
        username: str,
        method: str,
        url: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        # A well-behaved client: one Idempotency-Key per POST, kept across its retries.
        key = {"Idempotency-Key": f"scope-{uuid.uuid4()}"} if method == "POST" else {}
        response: httpx.Response | None = None
        for _ in range(self.max_retries):
            request_headers = {
                "Authorization": f"Bearer {self.tokens(username)}",
                "X-Purpose": purpose_for(url),
                **key,
                **(headers or {}),
            }
            try:
                response = self.client.request(method, url, headers=request_headers, json=body, params=params)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                # A kept-alive connection the server closed as the request went out (httpx says either,
                # depending on when the close is seen: "Bad file descriptor" is a ReadError): retry, as a national
                # system would (a POST keeps its Idempotency-Key, so a retry cannot register twice).
                with self._lock:
                    self.retries[0] += 1
                continue
            # 429: the gateway's per-user budget. 503 (with Retry-After): the service could not write the access
            # log in time (it refuses rather than leak); a client retries both after Retry-After.
            if response.status_code not in (429, 503):
                return response
            with self._lock:
                self.retries[response.status_code] += 1
            time.sleep(min(float(response.headers.get("retry-after", "1")), 5.0))
        assert response is not None, f"{method} {url}: the connection failed {self.max_retries} times"
        return response

    def conditional(self, username: str, url: str, body: Any, attempts: int = 5) -> httpx.Response:
        """A change guarded by `If-Match`, made as a client makes it: read the record's ETag, send the change, and
        read again when another writer came in between (412). A record the user cannot read has no ETag: the
        change's own answer (403, 404) decides."""
        response: httpx.Response | None = None
        for _ in range(attempts):
            etag = self(username, "GET", url).headers.get("ETag", '"0"')
            response = self(username, "PATCH", url, body, headers={"If-Match": etag})
            if response.status_code != 412:
                return response
        assert response is not None
        return response

    def close(self) -> None:
        self.client.close()


def owner_countries(value: Any) -> list[str]:
    """Every `owner_country` anywhere in a JSON document."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "owner_country" and isinstance(item, str):
                found.append(item)
            else:
                found += owner_countries(item)
    elif isinstance(value, list):
        for item in value:
            found += owner_countries(item)
    return found


def ids_in(text: str) -> set[str]:
    return set(UUID.findall(text.lower()))
