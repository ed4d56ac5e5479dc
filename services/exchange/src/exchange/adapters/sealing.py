"""Form content at rest: one AES-GCM ciphertext per form under the owning country's data key
(`plumbing.crypto.FieldCipher`), associated data = case record id + `forms.<form id>.content`, so a
ciphertext copied to another form or record does not decrypt."""

from __future__ import annotations

import json
from typing import Any

from exchange.domain.evidence import canonical
from plumbing.crypto import FieldCipher


def content_field(form_id: str) -> str:
    return f"forms.{form_id}.content"


class ContentSealer:
    def __init__(self, cipher: FieldCipher) -> None:
        self.cipher = cipher

    def seal(self, country: str, record_id: str, form_id: str, content: Any) -> str:
        return self.cipher.encrypt_bytes(country, record_id, content_field(form_id), canonical(content))

    def open(self, country: str, record_id: str, form_id: str, token: str) -> Any:
        """Raises `plumbing.errors.DecryptionError` when the stored bytes were altered."""
        return json.loads(self.cipher.decrypt_bytes(country, record_id, content_field(form_id), token))
