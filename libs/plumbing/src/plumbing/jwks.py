"""The realm's signing keys, kept in memory and refreshed in the background.

Why not PyJWT's ``PyJWKClient`` (pinned 2.15.1): it fetches synchronously inside ``get_signing_key`` (urllib,
on whatever thread validates the token), and once its cached set passes ``lifespan`` a failed fetch raises, so
a Keycloak outage longer than the lifespan still becomes an authentication outage. Here:

- a daemon thread refreshes the key set every ``refresh_interval`` seconds (sooner after a failure);
- a failed or empty fetch never replaces the last good key set; ``age_seconds()`` shows how stale it is;
- the validation path only reads a dict. An unknown ``kid`` may ask for one refetch, at most once per
  ``unknown_kid_min_interval`` seconds for the whole cache (not per kid: attackers choose kids freely). By
  default that refetch runs on the background thread and the token at hand is rejected, because validation may
  run on an event loop (connexion security handlers do) where a blocking HTTP call stalls every request.
  ``inline_unknown_kid_fetch=True`` fetches in the caller instead (bounded by ``fetch_timeout``), for worker
  threads that can afford to wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWKError

log = logging.getLogger(__name__)

Fetcher = Callable[[], Mapping[str, Any]]


class JwksCache:
    def __init__(
        self,
        jwks_url: str,
        *,
        refresh_interval: float = 300.0,
        retry_interval: float = 10.0,
        unknown_kid_min_interval: float = 30.0,
        fetch_timeout: float = 5.0,
        inline_unknown_kid_fetch: bool = False,
        clock: Callable[[], float] = time.monotonic,
        fetcher: Fetcher | None = None,
    ) -> None:
        self.jwks_url = jwks_url
        self.refresh_interval = refresh_interval
        self.retry_interval = retry_interval
        self.unknown_kid_min_interval = unknown_kid_min_interval
        self.fetch_timeout = fetch_timeout
        self.inline_unknown_kid_fetch = inline_unknown_kid_fetch
        self._clock = clock
        self._fetcher = fetcher or self._http_fetch
        self._keys: dict[str, PyJWK] = {}
        self._loaded_at: float | None = None
        self._last_unknown_kid_fetch: float | None = None
        self._last_refresh_ok = False
        self.last_error: str | None = None
        self.fetch_count = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_issuer(cls, issuer: str, **kwargs: Any) -> JwksCache:
        """Keycloak publishes the realm keys at a fixed path below the issuer."""
        return cls(issuer.rstrip("/") + "/protocol/openid-connect/certs", **kwargs)

    # -- fetching ----------------------------------------------------------------------------------------
    def _http_fetch(self) -> Mapping[str, Any]:
        response = httpx.get(self.jwks_url, timeout=self.fetch_timeout)
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError("JWKS document is not a JSON object")
        return data

    @staticmethod
    def _signing_keys(document: Mapping[str, Any]) -> dict[str, PyJWK]:
        keys: dict[str, PyJWK] = {}
        for entry in document.get("keys", []):
            # Keycloak also publishes an encryption key (use=enc, RSA-OAEP); only RSA signing keys matter here,
            # and each is bound to RS256 so a key can never be used with another algorithm.
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
                continue
            if entry.get("alg", "RS256") != "RS256" or not entry.get("kid"):
                continue
            try:
                keys[str(entry["kid"])] = PyJWK(entry, algorithm="RS256")
            except PyJWKError as exc:
                log.warning("skipping unusable JWK %s: %s", entry.get("kid"), exc)
        return keys

    def refresh(self) -> bool:
        """Fetch now. On any failure keep the last good key set and return False."""
        self.fetch_count += 1
        try:
            keys = self._signing_keys(self._fetcher())
            if not keys:
                raise ValueError("JWKS document holds no RS256 signing key")
        except Exception as exc:  # noqa: BLE001 - any failure must leave the last good set in place
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._last_refresh_ok = False
            log.warning("JWKS refresh from %s failed; keeping the last good key set: %s", self.jwks_url, exc)
            return False
        with self._lock:
            self._keys = keys
            self._loaded_at = self._clock()
        self._last_refresh_ok = True
        self.last_error = None
        return True

    # -- reading (the validation path) ------------------------------------------------------------------
    def get_key(self, kid: str | None) -> PyJWK | None:
        if kid is None:
            return None
        key = self._keys.get(kid)
        if key is not None:
            return key
        if self.request_refetch():
            if self.inline_unknown_kid_fetch:
                self.refresh()
                return self._keys.get(kid)
            self._wake.set()
        return None

    def request_refetch(self) -> bool:
        """Whether an unknown kid may trigger a fetch now; at most one per unknown_kid_min_interval."""
        with self._lock:
            now = self._clock()
            last = self._last_unknown_kid_fetch
            if last is not None and now - last < self.unknown_kid_min_interval:
                return False
            self._last_unknown_kid_fetch = now
            return True

    @property
    def loaded(self) -> bool:
        """A key set (current or last good) is in memory: part of an API's readiness."""
        return bool(self._keys)

    def age_seconds(self) -> float | None:
        """Seconds since the key set in memory was fetched (None before the first success): a metric."""
        loaded_at = self._loaded_at
        return None if loaded_at is None else max(0.0, self._clock() - loaded_at)

    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    # -- background refresh -----------------------------------------------------------------------------
    def start(self) -> JwksCache:
        """First fetch in the caller (failure tolerated: the thread retries), then refresh in a daemon thread."""
        if self._thread is not None:
            return self
        self.refresh()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="jwks-refresh", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.fetch_timeout + 1)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            wait = self.refresh_interval if self._last_refresh_ok else self.retry_interval
            self._wake.wait(timeout=wait)
            self._wake.clear()
            if self._stopping.is_set():
                return
            self.refresh()
