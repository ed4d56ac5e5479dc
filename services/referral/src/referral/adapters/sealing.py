"""The granted case fields a referral carries, at rest: one AES-GCM ciphertext per referral under the owning
country's data key (`plumbing.crypto.FieldCipher`), associated data = referral id + `referral.fields`, so a
ciphertext copied into another referral does not decrypt."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plumbing.crypto import FieldCipher

FIELDS = "referral.fields"


class ReferralSealer:
    def __init__(self, cipher: FieldCipher) -> None:
        self.cipher = cipher

    def seal(self, country: str, referral_id: str, fields: Mapping[str, Any]) -> str:
        return self.cipher.encrypt_json(country, referral_id, FIELDS, fields)

    def open(self, country: str, referral_id: str, token: str) -> dict[str, Any]:
        """Raises `plumbing.errors.DecryptionError` when the stored text was altered or moved."""
        return self.cipher.decrypt_json(country, referral_id, FIELDS, token)

    @property
    def decryptions(self) -> int:
        return self.cipher.decryptions
