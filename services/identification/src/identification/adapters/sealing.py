"""Encryption of a person's identifying details and the keyed blocking keys, on top of plumbing.crypto.

One JSON object per person (`sealed`) is encrypted with the owning country's data key and the associated data
(record id, "person.sealed"): a ciphertext copied into another record does not decrypt. Blocking keys from
`domain.names.blocking_keys` are HMACed with the country's blind-index key (field name "person.blocking"), so
equal keys give equal tokens and a duplicate search selects candidates by equality on tokens.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from plumbing.crypto import FieldCipher

SEALED_FIELD = "person.sealed"
CORRECTION_FIELD = "person.correction"
BLOCKING_FIELD = "person.blocking"


class PersonSealer:
    def __init__(self, cipher: FieldCipher) -> None:
        self.cipher = cipher

    def seal(self, country: str, record_id: str, details: dict[str, Any]) -> str:
        text = json.dumps(details, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        return self.cipher.encrypt(country, record_id, SEALED_FIELD, text)

    def open(self, country: str, record_id: str, token: str) -> dict[str, Any]:
        value = json.loads(self.cipher.decrypt(country, record_id, SEALED_FIELD, token))
        return value if isinstance(value, dict) else {}

    def seal_previous(self, country: str, record_id: str, correction_id: str, values: dict[str, Any]) -> str:
        """The values a correction replaced, bound to the person and to that correction."""
        text = json.dumps(values, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        return self.cipher.encrypt(country, record_id, f"{CORRECTION_FIELD}.{correction_id}", text)

    def open_previous(self, country: str, record_id: str, correction_id: str, token: str) -> dict[str, Any]:
        value = json.loads(
            self.cipher.decrypt(country, record_id, f"{CORRECTION_FIELD}.{correction_id}", token)
        )
        return value if isinstance(value, dict) else {}

    def blocking_tokens(self, country: str, keys: Iterable[str]) -> list[str]:
        """Tokens to store (current index key only)."""
        return sorted({self.cipher.blind_index(country, BLOCKING_FIELD, key) for key in keys})

    def search_tokens(self, country: str, keys: Iterable[str]) -> list[str]:
        """Tokens to query with `$in`: every index key of the country, so records indexed before a rotation of
        the index key are still found."""
        tokens: set[str] = set()
        for key in keys:
            tokens.update(self.cipher.blind_index_candidates(country, BLOCKING_FIELD, key))
        return sorted(tokens)

    @property
    def decryptions(self) -> int:
        return self.cipher.decryptions
