"""What people recorded on a return case, at rest: one AES-GCM token per record (consent, family assessment,
best-interests assessment, determination, plan) under the owning country's data key, associated data = case id +
`return.<record>`, so a token copied into another case or another record does not decrypt."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plumbing.crypto import FieldCipher


class CaseSealer:
    def __init__(self, cipher: FieldCipher) -> None:
        self.cipher = cipher

    def seal(self, country: str, case_id: str, record: str, value: Mapping[str, Any]) -> str:
        return self.cipher.encrypt_json(country, case_id, f"return.{record}", value)

    def open(self, country: str, case_id: str, record: str, token: str) -> dict[str, Any]:
        """Raises `plumbing.errors.DecryptionError` when the stored token was altered or moved."""
        return self.cipher.decrypt_json(country, case_id, f"return.{record}", token)
