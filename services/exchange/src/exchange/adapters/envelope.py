"""The delivery envelope: signed by the sending country's key, then encrypted to the receiving country's key.

    JWE (compact; ECDH-ES+A256KW, A256GCM; to the recipient's current encryption key)
      protected header: kid, typ, thb-from, thb-to, thb-envelope   (authenticated, not secret)
      payload: JWS (compact; EdDSA; the sender's current signing key)
        protected header: kid, typ, thb-from
        payload: the message (canonical JSON: envelope id, sender, recipient, case reference, form ...)

Nothing of the form is readable on the wire: a transport sees the routing header only (countries and the
envelope id). `open` verifies everything before the caller stores anything, and refuses with a distinct reason:

- `malformed`: not a JWE of this shape;
- `not-addressed-to-us`: the header names another recipient (delivered to the wrong inbox);
- `undecryptable`: no key of ours opens it, or the bytes were altered (the AES-GCM tag fails);
- `forged`: the signature does not verify under a signing key of the country it claims to come from
  (signed with another country's key, or altered after signing);
- `re-addressed`: a genuine signed message put into a new envelope with other routing (recipient, sender or
  envelope id in the header differ from the signed message).

Keys: `plumbing.country_keys` (two rings per country in the key file). JOSE: jwcrypto.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jwcrypto import jwe, jwk, jws
from jwcrypto.common import JWException

from exchange.domain.evidence import canonical
from plumbing.country_keys import CountryKeys

JWE_TYPE = "thb-exchange+jwe"
JWS_TYPE = "thb-exchange+jws"
KEY_ALGORITHM, CONTENT_ALGORITHM, SIGNING_ALGORITHM = "ECDH-ES+A256KW", "A256GCM", "EdDSA"
REFUSALS = ("malformed", "not-addressed-to-us", "undecryptable", "forged", "re-addressed")


class EnvelopeRefused(Exception):
    """The envelope is not stored. `reason` is one of `REFUSALS`; the message never quotes content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Sealed:
    token: str
    envelope_id: str
    signature_id: str


@dataclass(frozen=True)
class Opened:
    message: dict[str, Any]
    sender: str
    recipient: str
    envelope_id: str
    signature_id: str


@dataclass(frozen=True)
class Routing:
    """What the outer header says, readable without any key (what a transport routes by)."""

    sender: str
    recipient: str
    envelope_id: str


def signature_id(signed: str) -> str:
    """A stable id of one signature: the digest of the compact JWS (kept in both message logs)."""
    return "sha256:" + hashlib.sha256(signed.encode("ascii")).hexdigest()


def routing(token: str) -> Routing:
    header = _outer_header(token)
    return Routing(str(header["thb-from"]), str(header["thb-to"]), str(header["thb-envelope"]))


class EnvelopeSealer:
    def __init__(self, keys: CountryKeys) -> None:
        self.keys = keys

    def seal(self, message: Mapping[str, Any], *, sender: str, recipient: str, envelope_id: str) -> Sealed:
        body = {**message, "envelope_id": envelope_id, "sender": sender, "recipient": recipient}
        sign_kid, sign_key = self.keys.signing_key(sender)
        signer = jws.JWS(canonical(body))
        signer.add_signature(
            jwk.JWK.from_pyca(sign_key),
            None,
            json.dumps({"alg": SIGNING_ALGORITHM, "kid": sign_kid, "typ": JWS_TYPE, "thb-from": sender}),
        )
        signed = signer.serialize(compact=True)
        enc_kid, enc_key = self.keys.encryption_key(recipient)
        header = {
            "alg": KEY_ALGORITHM,
            "enc": CONTENT_ALGORITHM,
            "kid": enc_kid,
            "typ": JWE_TYPE,
            "cty": JWS_TYPE,
            "thb-from": sender,
            "thb-to": recipient,
            "thb-envelope": envelope_id,
        }
        sealed = jwe.JWE(signed.encode("ascii"), json.dumps(header))
        sealed.add_recipient(jwk.JWK.from_pyca(enc_key))
        return Sealed(sealed.serialize(compact=True), envelope_id, signature_id(signed))

    def open(self, token: str, *, recipient: str) -> Opened:
        header = _outer_header(token)
        if header.get("thb-to") != recipient:
            raise EnvelopeRefused("not-addressed-to-us")
        claimed = header.get("thb-from")
        if not isinstance(claimed, str) or claimed not in self.keys.countries:
            raise EnvelopeRefused("forged")
        signed = self._decrypt(token, header, recipient)
        message = self._verify(signed, claimed)
        if (
            message.get("sender") != claimed
            or message.get("recipient") != recipient
            or message.get("envelope_id") != header.get("thb-envelope")
        ):
            raise EnvelopeRefused("re-addressed")
        return Opened(message, claimed, recipient, str(message["envelope_id"]), signature_id(signed))

    def _decrypt(self, token: str, header: Mapping[str, Any], recipient: str) -> str:
        key = self.keys.decryption_keys(recipient).get(str(header.get("kid")))
        if key is None:
            raise EnvelopeRefused("undecryptable")
        envelope = jwe.JWE()
        try:
            envelope.deserialize(token, key=jwk.JWK.from_pyca(key))
            return bytes(envelope.payload).decode("ascii")
        except (JWException, ValueError, UnicodeDecodeError):
            raise EnvelopeRefused("undecryptable") from None

    def _verify(self, signed: str, sender: str) -> dict[str, Any]:
        verifier = jws.JWS()
        try:
            verifier.deserialize(signed)
            header = verifier.jose_header
        except (JWException, ValueError):
            raise EnvelopeRefused("forged") from None
        if (
            not isinstance(header, Mapping)
            or header.get("alg") != SIGNING_ALGORITHM
            or header.get("thb-from") != sender
        ):
            raise EnvelopeRefused("forged")
        # Only keys of the country the envelope claims to come from: a partner's valid key is still a forgery.
        key = self.keys.verification_keys(sender).get(str(header.get("kid")))
        if key is None:
            raise EnvelopeRefused("forged")
        try:
            verifier.verify(jwk.JWK.from_pyca(key), alg=SIGNING_ALGORITHM)
            message = json.loads(bytes(verifier.payload))
        except (JWException, ValueError):
            raise EnvelopeRefused("forged") from None
        if not isinstance(message, dict):
            raise EnvelopeRefused("forged")
        return message


def _outer_header(token: str) -> dict[str, Any]:
    envelope = jwe.JWE()
    try:
        envelope.deserialize(token)
        header = envelope.jose_header
    except (JWException, ValueError, TypeError):
        raise EnvelopeRefused("malformed") from None
    if not isinstance(header, dict) or header.get("typ") != JWE_TYPE:
        raise EnvelopeRefused("malformed")
    if header.get("alg") != KEY_ALGORITHM or header.get("enc") != CONTENT_ALGORITHM:
        raise EnvelopeRefused("malformed")
    if not all(isinstance(header.get(name), str) for name in ("thb-from", "thb-to", "thb-envelope")):
        raise EnvelopeRefused("malformed")
    return header
