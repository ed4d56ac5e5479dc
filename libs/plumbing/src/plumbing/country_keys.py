"""Country keys for cross-border messages: each partner country signs what it sends and decrypts what it
receives with keys of its own, kept in the key file beside the field-encryption rings (docs/keys.md,
docs/exchange.md).

Two rings per country, named from the country code (`xk-exchange-signing`, `xk-exchange-encryption`). Their
keys are the 32 random bytes every ring of the key file holds, read as an Ed25519 seed (signing, JWS `EdDSA`)
and as an X25519 private key (key agreement, JWE `ECDH-ES+A256KW`): both curves take any 32 bytes as a private
key, so generation, rotation (`python -m plumbing.keys rotate --ring xk-exchange-signing`) and the file format
stay exactly as they are. A rotated ring keeps its older keys: envelopes signed or encrypted under them still
open while they are in the ring.

Adding a partner country adds its two rings, no code. In one shared deployment the key file holds every
country's rings; a federated deployment would give each installation its own private rings and the partners'
public keys (not built yet: docs/exchange.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from plumbing.errors import KeyConfigurationError
from plumbing.keys import KeySet, ensure_local_keys, load_key_file, required_rings


def signing_ring(country: str) -> str:
    return f"{country.lower()}-exchange-signing"


def encryption_ring(country: str) -> str:
    return f"{country.lower()}-exchange-encryption"


def country_key_rings(countries: Iterable[str]) -> list[str]:
    return [ring for code in sorted(countries) for ring in (signing_ring(code), encryption_ring(code))]


def load_keys_with_country_keys(settings: Any, config: Any) -> KeySet:
    """`plumbing.keys.load_keys` plus the country rings of every configured country: generated in local mode,
    required (KeyConfigurationError, the process refuses to start) everywhere else."""
    rings = required_rings(config.countries.values()) + country_key_rings(config.countries)
    if settings.is_local:
        return ensure_local_keys(Path(settings.keys_file), rings)
    keyset = load_key_file(Path(settings.keys_file), strict_permissions=False)
    keyset.require(rings)
    return keyset


@dataclass(frozen=True)
class CountryKeys:
    """The signing and encryption keys of the configured countries, by key id."""

    keys: KeySet
    countries: frozenset[str]

    @classmethod
    def from_keyset(cls, keys: KeySet, countries: Iterable[str]) -> CountryKeys:
        codes = frozenset(countries)
        keys.require(country_key_rings(codes))
        return cls(keys, codes)

    def _ring(self, name: str, country: str) -> Any:
        if country not in self.countries:
            raise KeyConfigurationError(f"{country!r} is not a configured partner country")
        return self.keys.ring(name)

    def signing_key(self, country: str) -> tuple[str, Ed25519PrivateKey]:
        """The current key a country signs with: (key id, private key)."""
        key_id, seed = self._ring(signing_ring(country), country).current_key()
        return key_id, Ed25519PrivateKey.from_private_bytes(seed)

    def verification_keys(self, country: str) -> Mapping[str, Ed25519PublicKey]:
        """Every key id of the country's signing ring -> its public key: a signature verifies only under a key
        of the country that claims to have sent it."""
        ring = self._ring(signing_ring(country), country)
        return {
            kid: Ed25519PrivateKey.from_private_bytes(seed).public_key() for kid, seed in ring.keys.items()
        }

    def encryption_key(self, country: str) -> tuple[str, X25519PublicKey]:
        """The current key others encrypt to when they send to `country`: (key id, public key)."""
        key_id, secret = self._ring(encryption_ring(country), country).current_key()
        return key_id, X25519PrivateKey.from_private_bytes(secret).public_key()

    def decryption_keys(self, country: str) -> Mapping[str, X25519PrivateKey]:
        """Every key id of the country's encryption ring -> its private key (older keys still decrypt)."""
        ring = self._ring(encryption_ring(country), country)
        return {kid: X25519PrivateKey.from_private_bytes(secret) for kid, secret in ring.keys.items()}
