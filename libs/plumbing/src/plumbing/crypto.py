"""Field encryption (AES-256-GCM) and blind indexes (HMAC-SHA256) with one key ring per owning country.

Ciphertext format (a string, so it fits any field and a prefix query finds what a key encrypted):

    v1:<key id>:<nonce, base64url without padding>:<ciphertext+tag, base64url without padding>

The associated data binds a ciphertext to its record and field (`["<record id>", "<field>"]` as compact JSON):
a value copied into another record or another field fails to decrypt. Blind-index tokens look like
`<key id>:<base64url HMAC>`; see docs/keys.md and docs/data-protection.md for the reasoning.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import threading
import unicodedata
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from prometheus_client import Counter

from plumbing.errors import DecryptionError, KeyConfigurationError
from plumbing.keys import KeySet

VERSION = "v1"
NONCE_BYTES = 12  # 96-bit random nonces: the GCM standard size; far below the collision bound at our volumes

DECRYPTIONS = Counter("thb_field_decryptions", "Field decryptions attempted, by outcome", ["outcome"])


def associated_data(record_id: str, field: str) -> bytes:
    # JSON of a two-element list is unambiguous (unlike plain concatenation of the two strings).
    return json.dumps([record_id, field], separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def normalise_for_index(value: str) -> str:
    """NFC, case-folded, inner whitespace collapsed: "Ana  Hoxha" and "ana hoxha" give the same token.
    Callers with stronger rules (document numbers without separators, transliteration) apply them first."""
    return " ".join(unicodedata.normalize("NFC", value).casefold().split())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FieldCipher:
    """Encrypts and decrypts sensitive fields and computes blind indexes for the configured countries.

    `country_rings` maps a country code to `(data ring, blind-index ring)`; `from_config` builds it from the
    platform configuration. Thread-safe: the counters are guarded; AESGCM objects are stateless.
    """

    def __init__(self, keys: KeySet, country_rings: Mapping[str, tuple[str, str]]) -> None:
        self._keys = keys
        self._rings = dict(country_rings)
        for data_ring, index_ring in self._rings.values():
            if data_ring == index_ring:
                raise KeyConfigurationError("encryption and blind-index keys must be separate rings")
        keys.require(ring for pair in self._rings.values() for ring in pair)
        self._lock = threading.Lock()
        self._decryptions = 0
        self._failures = 0

    @classmethod
    def from_config(cls, keys: KeySet, config: object) -> FieldCipher:
        countries = config.countries  # type: ignore[attr-defined]  # a plumbing.config.PlatformConfig
        return cls(keys, {c.code: (c.data_key_ring, c.blind_index_key_ring) for c in countries.values()})

    # -------------------------------------------------------------------------------------- counters

    @property
    def decryptions(self) -> int:
        """Successful decryptions by this cipher (tests assert, e.g., that a list decrypts nothing)."""
        with self._lock:
            return self._decryptions

    @property
    def decryption_failures(self) -> int:
        with self._lock:
            return self._failures

    # ------------------------------------------------------------------------------------ encryption

    def encrypt(self, country: str, record_id: str, field: str, plaintext: str) -> str:
        return self.encrypt_bytes(country, record_id, field, plaintext.encode("utf-8"))

    def encrypt_bytes(self, country: str, record_id: str, field: str, plaintext: bytes) -> str:
        key_id, key = self._keys.ring(self._data_ring(country)).current_key()
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext, associated_data(record_id, field))
        return f"{VERSION}:{key_id}:{_b64(nonce)}:{_b64(sealed)}"

    def encrypt_json(self, country: str, record_id: str, field: str, value: Mapping[str, Any]) -> str:
        """A JSON object sealed as one token (canonical text: sorted keys, no spaces, UTF-8 kept)."""
        text = json.dumps(dict(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        return self.encrypt(country, record_id, field, text)

    def decrypt_json(self, country: str, record_id: str, field: str, token: str) -> dict[str, Any]:
        """The object `encrypt_json` sealed; DecryptionError when the token was altered or moved."""
        value = json.loads(self.decrypt(country, record_id, field, token))
        if not isinstance(value, dict):
            raise DecryptionError(f"{field}: the sealed value is not an object")
        return value

    def decrypt(self, country: str, record_id: str, field: str, token: str) -> str:
        return self.decrypt_bytes(country, record_id, field, token).decode("utf-8")

    def decrypt_bytes(self, country: str, record_id: str, field: str, token: str) -> bytes:
        try:
            key_id, nonce, sealed = self._parse(token)
            ring = self._keys.ring(self._data_ring(country))
            if key_id not in ring.keys:
                # Either another country's key or one this deployment does not have: both are refusals.
                raise DecryptionError("the ciphertext's key is not one of the owning country's keys")
            plaintext = AESGCM(ring.keys[key_id]).decrypt(nonce, sealed, associated_data(record_id, field))
        except (DecryptionError, InvalidTag, KeyConfigurationError) as exc:
            self._count(ok=False)
            if isinstance(exc, DecryptionError):
                raise
            raise DecryptionError(
                "ciphertext failed authentication (wrong key, record, field or tampered)"
            ) from None
        self._count(ok=True)
        return plaintext

    def key_id_of(self, token: str) -> str:
        return self._parse(token)[0]

    def needs_reencryption(self, country: str, token: str) -> bool:
        """True when `token` was not made with the country's current key (rotation job selects these)."""
        return self.key_id_of(token) != self._keys.ring(self._data_ring(country)).current

    def reencrypt(self, country: str, record_id: str, field: str, token: str) -> str:
        return self.encrypt_bytes(
            country, record_id, field, self.decrypt_bytes(country, record_id, field, token)
        )

    # --------------------------------------------------------------------------------- blind indexes

    def blind_index(self, country: str, field: str, value: str) -> str:
        """Token under the country's current index key: store it beside the ciphertext, query by equality."""
        ring = self._keys.ring(self._index_ring(country))
        return self._token(ring.current, ring.keys[ring.current], field, value)

    def blind_index_candidates(self, country: str, field: str, value: str) -> list[str]:
        """Tokens under every index key of the country (current first): query with `$in` so records indexed
        before an index-key rotation are still found until they are re-indexed."""
        ring = self._keys.ring(self._index_ring(country))
        return [self._token(key_id, ring.keys[key_id], field, value) for key_id in ring.ids()]

    @staticmethod
    def _token(key_id: str, key: bytes, field: str, value: str) -> str:
        # The field name is part of the message: the same value in two fields gives unrelated tokens.
        message = json.dumps([field, normalise_for_index(value)], separators=(",", ":"), ensure_ascii=False)
        return f"{key_id}:{_b64(hmac.new(key, message.encode('utf-8'), hashlib.sha256).digest())}"

    # ----------------------------------------------------------------------------------------- helpers

    def _data_ring(self, country: str) -> str:
        return self._country(country)[0]

    def _index_ring(self, country: str) -> str:
        return self._country(country)[1]

    def _country(self, country: str) -> tuple[str, str]:
        try:
            return self._rings[country]
        except KeyError:
            raise KeyConfigurationError(f"no keys configured for country {country!r}") from None

    @staticmethod
    def _parse(token: str) -> tuple[str, bytes, bytes]:
        parts = token.split(":") if isinstance(token, str) else []
        if len(parts) != 4 or parts[0] != VERSION:
            raise DecryptionError("not a field ciphertext of format v1")
        try:
            nonce, sealed = _unb64(parts[2]), _unb64(parts[3])
        except (binascii.Error, ValueError):
            raise DecryptionError("ciphertext is not valid base64url") from None
        if len(nonce) != NONCE_BYTES or len(sealed) < 16:
            raise DecryptionError("ciphertext is truncated")
        return parts[1], nonce, sealed

    def _count(self, *, ok: bool) -> None:
        with self._lock:
            if ok:
                self._decryptions += 1
            else:
                self._failures += 1
        DECRYPTIONS.labels(outcome="ok" if ok else "failed").inc()


STORED_RESPONSES_RING = "stored-responses"


class ResponseSealer:
    """AES-256-GCM for whole stored responses (Idempotency-Key replays), which can hold personal data.

    One platform-level ring (`stored-responses`), separate from the per-country data keys: the stored response
    is the service's own copy of what it already answered, bound to its record id as associated data. Sealed
    form: `<key id>:<nonce><ciphertext+tag>` as bytes; rotation adds a key, old ones still open.
    """

    def __init__(self, keys: KeySet) -> None:
        self.ring = keys.ring(STORED_RESPONSES_RING)

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        key_id, key = self.ring.current_key()
        nonce = os.urandom(12)
        return key_id.encode() + b":" + nonce + AESGCM(key).encrypt(nonce, plaintext, associated)

    def open(self, sealed: bytes, associated: bytes) -> bytes:
        key_id, _, rest = sealed.partition(b":")
        key = self.ring.keys.get(key_id.decode(errors="replace"))
        if key is None or len(rest) < 28:
            raise DecryptionError("stored response sealed with an unknown key or truncated")
        try:
            return AESGCM(key).decrypt(rest[:12], rest[12:], associated)
        except InvalidTag:
            raise DecryptionError("stored response failed authentication") from None


REQUEST_FINGERPRINTS_RING = "request-fingerprints"


class RequestFingerprinter:
    """Keyed fingerprints of request bodies for the Idempotency-Key store (HMAC-SHA256).

    The body of a registration holds names and dates of birth: an unkeyed hash of it would let anyone who reads
    the idempotency store confirm a guessed identity offline. The key comes from the `request-fingerprints`
    ring, narrowed to this service (HMAC of the ring key over the service name), so two services never share a
    fingerprint key even when they share a key file. A fingerprint names its key id (`<key id>:<hex>`): after a
    rotation, a retry of a request stored under the old key still matches while that key is in the ring.
    """

    def __init__(self, keys: KeySet, service: str) -> None:
        ring = keys.ring(REQUEST_FINGERPRINTS_RING)
        self.current = ring.current
        self._keys = {
            key_id: hmac.new(key, b"thb-idempotency/" + service.encode(), hashlib.sha256).digest()
            for key_id, key in ring.keys.items()
        }

    def fingerprint(self, operation_id: str, body: bytes) -> str:
        return self._with(self.current, operation_id, body)

    def matches(self, stored: str, operation_id: str, body: bytes) -> bool:
        key_id, _, _ = stored.partition(":")
        if key_id not in self._keys:
            return False
        return hmac.compare_digest(stored, self._with(key_id, operation_id, body))

    def _with(self, key_id: str, operation_id: str, body: bytes) -> str:
        digest = hmac.new(self._keys[key_id], _canonical(operation_id, body), hashlib.sha256).hexdigest()
        return f"{key_id}:{digest}"


def _canonical(operation_id: str, body: bytes) -> bytes:
    """Same operation and same JSON content (key order and whitespace ignored) -> same bytes."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        material = canonical.encode("utf-8", "surrogatepass")
    except (ValueError, UnicodeDecodeError, RecursionError):
        material = body
    return operation_id.encode() + b"\x00" + material
