"""The envelope with real keys (jwcrypto, Ed25519 and X25519 from the key file's rings): what opens, and every
way a tampered, forged or re-addressed envelope is refused with its own reason."""

from __future__ import annotations

import json

import pytest
from jwcrypto import jwe, jwk

from exchange.adapters.envelope import EnvelopeRefused, EnvelopeSealer, routing
from plumbing.country_keys import CountryKeys, signing_ring
from plumbing.keys import with_new_key
from services.exchange.tests.unit.fakes import in_memory_keys

COUNTRIES = ("AL", "XK", "ME")
MESSAGE = {
    "form": {"form_type": "notification"},
    "body": {"content": {"person": {"surnames": ["Hoxha-canary"]}}},
}


@pytest.fixture(scope="module")
def sealer() -> EnvelopeSealer:
    return EnvelopeSealer(CountryKeys.from_keyset(in_memory_keys(COUNTRIES), COUNTRIES))


def refusal(sealer: EnvelopeSealer, token: str, recipient: str = "ME") -> str:
    with pytest.raises(EnvelopeRefused) as error:
        sealer.open(token, recipient=recipient)
    return error.value.reason


def test_an_envelope_opens_only_for_its_recipient_and_hides_its_content(sealer: EnvelopeSealer) -> None:
    sealed = sealer.seal(MESSAGE, sender="XK", recipient="ME", envelope_id="env-1")
    assert "Hoxha" not in sealed.token and "notification" not in sealed.token
    opened = sealer.open(sealed.token, recipient="ME")
    assert opened.message["body"] == MESSAGE["body"]
    assert (opened.sender, opened.recipient, opened.envelope_id) == ("XK", "ME", "env-1")
    assert opened.signature_id == sealed.signature_id
    assert routing(sealed.token).recipient == "ME"
    assert refusal(sealer, sealed.token, recipient="AL") == "not-addressed-to-us"


def test_altered_bytes_are_refused(sealer: EnvelopeSealer) -> None:
    token = sealer.seal(MESSAGE, sender="XK", recipient="ME", envelope_id="env-2").token
    parts = token.split(".")
    ciphertext = parts[3]
    flipped = ciphertext[:10] + ("A" if ciphertext[10] != "A" else "B") + ciphertext[11:]
    assert refusal(sealer, ".".join([*parts[:3], flipped, parts[4]])) == "undecryptable"
    assert refusal(sealer, "not.a.jwe") == "malformed"


def test_a_header_altered_to_another_recipient_is_refused(sealer: EnvelopeSealer) -> None:
    """Rewriting the routing header (e.g. to deliver ME's envelope to AL) breaks the authenticated header."""
    token = sealer.seal(MESSAGE, sender="XK", recipient="ME", envelope_id="env-3").token
    header = json.loads(jwk.base64url_decode(token.split(".")[0]))
    header["thb-to"] = "AL"
    forged_header = jwk.base64url_encode(json.dumps(header))
    assert (
        refusal(sealer, ".".join([forged_header, *token.split(".")[1:]]), recipient="AL") == "undecryptable"
    )


def inner_jws(sealer: EnvelopeSealer, token: str, recipient: str) -> str:
    envelope = jwe.JWE()
    key_id = json.loads(jwk.base64url_decode(token.split(".")[0]))["kid"]
    envelope.deserialize(token, key=jwk.JWK.from_pyca(sealer.keys.decryption_keys(recipient)[key_id]))
    return bytes(envelope.payload).decode("ascii")


def rewrap(sealer: EnvelopeSealer, signed: str, *, sender: str, recipient: str, envelope_id: str) -> str:
    """What an attacker holding a recipient's key (or a buggy partner) could do: put a signed message into a new
    envelope with other routing."""
    kid, key = sealer.keys.encryption_key(recipient)
    header = {
        "alg": "ECDH-ES+A256KW",
        "enc": "A256GCM",
        "kid": kid,
        "typ": "thb-exchange+jwe",
        "cty": "thb-exchange+jws",
        "thb-from": sender,
        "thb-to": recipient,
        "thb-envelope": envelope_id,
    }
    envelope = jwe.JWE(signed.encode("ascii"), json.dumps(header))
    envelope.add_recipient(jwk.JWK.from_pyca(key))
    return str(envelope.serialize(compact=True))


def test_a_signed_message_re_addressed_to_another_country_is_refused(sealer: EnvelopeSealer) -> None:
    token = sealer.seal(MESSAGE, sender="XK", recipient="ME", envelope_id="env-4").token
    signed = inner_jws(sealer, token, "ME")
    assert (
        refusal(sealer, rewrap(sealer, signed, sender="XK", recipient="AL", envelope_id="env-4"), "AL")
        == "re-addressed"
    )
    # the same signed message under a new envelope id (to slip past replay detection) is refused too
    assert (
        refusal(sealer, rewrap(sealer, signed, sender="XK", recipient="ME", envelope_id="env-5"))
        == "re-addressed"
    )


def test_a_message_signed_with_another_countrys_key_is_refused(sealer: EnvelopeSealer) -> None:
    """AL signs (with its own, valid key) a message claiming to come from XK."""
    al_signed = sealer.seal({**MESSAGE}, sender="AL", recipient="ME", envelope_id="env-6").token
    signed = inner_jws(sealer, al_signed, "ME")
    assert (
        refusal(sealer, rewrap(sealer, signed, sender="XK", recipient="ME", envelope_id="env-6")) == "forged"
    )


def test_a_signature_that_does_not_verify_is_refused(sealer: EnvelopeSealer) -> None:
    token = sealer.seal(MESSAGE, sender="XK", recipient="ME", envelope_id="env-7").token
    header, payload, signature = inner_jws(sealer, token, "ME").split(".")
    bad_signature = ("A" if signature[0] != "A" else "B") + signature[1:]
    forged = rewrap(
        sealer, f"{header}.{payload}.{bad_signature}", sender="XK", recipient="ME", envelope_id="env-7"
    )
    assert refusal(sealer, forged) == "forged"
    altered_payload = jwk.base64url_encode(jwk.base64url_decode(payload).replace(b"Hoxha", b"Hodza"))
    forged = rewrap(
        sealer, f"{header}.{altered_payload}.{signature}", sender="XK", recipient="ME", envelope_id="env-7"
    )
    assert refusal(sealer, forged) == "forged"


def test_envelopes_sealed_before_a_key_rotation_still_open() -> None:
    keys = in_memory_keys(COUNTRIES)
    before = EnvelopeSealer(CountryKeys.from_keyset(keys, COUNTRIES))
    token = before.seal(MESSAGE, sender="XK", recipient="ME", envelope_id="env-8").token
    rotated, _ = with_new_key(keys, signing_ring("XK"))
    rotated, _ = with_new_key(rotated, "me-exchange-encryption")
    after = EnvelopeSealer(CountryKeys.from_keyset(rotated, COUNTRIES))
    assert after.open(token, recipient="ME").envelope_id == "env-8"
    newer = after.seal(MESSAGE, sender="XK", recipient="ME", envelope_id="env-9").token
    assert refusal(before, newer) == "undecryptable"  # the old key set does not know the new keys
