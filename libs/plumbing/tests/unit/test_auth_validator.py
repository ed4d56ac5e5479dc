"""TokenValidator and JwksCache against locally generated RSA keys: no Keycloak, no sleeping."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from plumbing.auth import AuthError, Caller, JwksCache, TokenValidator, bearer_token

ISSUER = "https://idp.example/realms/thb"
NOW = 1_800_000_000.0
PARTNERS = {"AL", "XK", "ME"}


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Signer:
    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        entry = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        entry.update(kid=self.kid, use="sig", alg="RS256")
        return entry

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": self.kid, **headers})


class FakeJwksEndpoint:
    """Stands in for Keycloak's certs endpoint; can be made to fail."""

    def __init__(self, *signers: Signer) -> None:
        self.signers = list(signers)
        self.failing = False
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.failing:
            raise ConnectionError("keycloak unreachable")
        return {"keys": [s.jwk() for s in self.signers]}


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer("key-1")


@pytest.fixture(scope="module")
def other_signer() -> Signer:
    return Signer("key-2")


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": ["identification-api", "referral-api"],
        "sub": "7c0b7c4e-0000-4000-8000-000000000001",
        "typ": "Bearer",
        "azp": "thb-test",
        "iat": int(NOW) - 5,
        "exp": int(NOW) + 300,
        "country": ["AL"],
        "agency": ["state-police"],
        "realm_access": {"roles": ["police-officer"]},
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_parts(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def endpoint(signer: Signer) -> FakeJwksEndpoint:
    return FakeJwksEndpoint(signer)


@pytest.fixture
def cache(endpoint: FakeJwksEndpoint, clock: FakeClock) -> JwksCache:
    jwks = JwksCache("unused", fetcher=endpoint, clock=clock, unknown_kid_min_interval=30)
    assert jwks.refresh()
    return jwks


@pytest.fixture
def validator(cache: JwksCache, clock: FakeClock) -> TokenValidator:
    return TokenValidator(
        issuer=ISSUER,
        audience="identification-api",
        allowed_azp={"thb-test", "al-national-system"},
        jwks=cache,
        partner_countries=PARTNERS,
        clock=clock,
        leeway=10,
    )


def rejected(validator: TokenValidator, token: str) -> AuthError:
    with pytest.raises(AuthError) as caught:
        validator.validate(token)
    assert caught.value.status == 401
    return caught.value


def test_valid_token_yields_the_caller(validator: TokenValidator, signer: Signer) -> None:
    token = signer.sign(claims())
    caller = validator.validate(token, acting_user="ignored-for-people")
    assert caller == Caller(
        sub="7c0b7c4e-0000-4000-8000-000000000001",
        azp="thb-test",
        country="AL",
        agency="state-police",
        roles=frozenset({"police-officer"}),
        acting_user=None,
        is_machine=False,
        token=token,
    )
    assert caller.has_any_role("coordinator", "police-officer")
    assert not caller.has_any_role({"coordinator", "analyst"})
    assert token not in repr(caller)


def test_single_string_claims_and_machine_client(validator: TokenValidator, signer: Signer) -> None:
    token = signer.sign(
        claims(country="AL", agency="national-system", azp="al-national-system", client_id="x")
    )
    caller = validator.validate(token, acting_user="officer-17")
    assert (caller.country, caller.agency, caller.is_machine, caller.acting_user) == (
        "AL",
        "national-system",
        True,
        "officer-17",
    )


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"exp": int(NOW) - 11}, "token_expired"),
        ({"exp": None}, "claims_invalid"),
        ({"nbf": int(NOW) + 11}, "token_not_yet_valid"),
        ({"iat": int(NOW) + 60}, "token_not_yet_valid"),
        ({"aud": ["referral-api"]}, "audience_invalid"),
        ({"aud": "referral-api"}, "audience_invalid"),
        ({"aud": None}, "audience_invalid"),
        ({"iss": "https://evil.example/realms/thb"}, "issuer_invalid"),
        ({"azp": "some-other-client"}, "client_not_allowed"),
        ({"azp": None}, "client_not_allowed"),
        ({"typ": "Refresh"}, "token_type_invalid"),
        ({"sub": None}, "claims_invalid"),
        ({"country": None}, "country_claim_invalid"),
        ({"country": []}, "country_claim_invalid"),
        ({"country": ""}, "country_claim_invalid"),
        ({"country": ["AL", "XK"]}, "country_claim_invalid"),
        ({"country": ["MK"]}, "country_not_partner"),
        ({"agency": None}, "agency_claim_invalid"),
        ({"agency": ["state-police", "border-police"]}, "agency_claim_invalid"),
        ({"realm_access": {"roles": "coordinator"}}, "claims_invalid"),
    ],
)
def test_claim_violations_are_rejected(
    validator: TokenValidator, signer: Signer, overrides: dict[str, Any], code: str
) -> None:
    assert rejected(validator, signer.sign(claims(**overrides))).code == code


def test_leeway_is_small_but_present(validator: TokenValidator, signer: Signer, clock: FakeClock) -> None:
    token = signer.sign(claims(exp=int(NOW) - 5, nbf=int(NOW) + 5))
    validator.validate(token)  # within 10 s either way
    clock.now = NOW + 6
    assert rejected(validator, token).code == "token_expired"


def test_tampered_signature(validator: TokenValidator, signer: Signer) -> None:
    header, payload, signature = signer.sign(claims()).split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["country"] = ["XK"]
    assert rejected(validator, f"{header}.{b64(json.dumps(forged).encode())}.{signature}").code == (
        "signature_invalid"
    )
    flipped = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    assert rejected(validator, f"{header}.{payload}.{flipped}").code == "signature_invalid"


def test_alg_none_is_rejected(validator: TokenValidator, signer: Signer) -> None:
    token = unsigned_parts({"alg": "none", "typ": "JWT", "kid": signer.kid}, claims()) + "."
    assert rejected(validator, token).code == "algorithm_not_allowed"


def test_hs256_signed_with_the_public_key_is_rejected(validator: TokenValidator, signer: Signer) -> None:
    # The classic key-confusion attack: an HMAC keyed with the (public) RSA key in PEM form.
    signing_input = unsigned_parts({"alg": "HS256", "typ": "JWT", "kid": signer.kid}, claims())
    mac = hmac.new(signer.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    assert rejected(validator, f"{signing_input}.{b64(mac)}").code == "algorithm_not_allowed"


def test_token_signed_by_an_unknown_key(validator: TokenValidator, other_signer: Signer) -> None:
    assert rejected(validator, other_signer.sign(claims())).code == "unknown_key"


def test_token_without_kid(validator: TokenValidator, signer: Signer) -> None:
    token = jwt.encode(claims(), signer.private, algorithm="RS256")
    assert rejected(validator, token).code == "unknown_key"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "x" * 50])
def test_garbage_is_malformed(validator: TokenValidator, token: str) -> None:
    assert rejected(validator, token).code == "token_malformed"


def test_no_key_set_ever_loaded_is_503(clock: FakeClock, signer: Signer) -> None:
    endpoint = FakeJwksEndpoint(signer)
    endpoint.failing = True
    jwks = JwksCache("unused", fetcher=endpoint, clock=clock)
    assert not jwks.refresh()
    validator = TokenValidator(ISSUER, "identification-api", {"thb-test"}, jwks, PARTNERS, clock=clock)
    with pytest.raises(AuthError) as caught:
        validator.validate(signer.sign(claims()))
    assert (caught.value.code, caught.value.status) == ("keys_unavailable", 503)


def test_refresh_failure_keeps_the_last_good_keys(
    validator: TokenValidator, cache: JwksCache, endpoint: FakeJwksEndpoint, signer: Signer, clock: FakeClock
) -> None:
    clock.now = NOW + 100
    endpoint.failing = True
    assert not cache.refresh()
    assert cache.last_error is not None
    assert cache.age_seconds() == 100
    assert validator.validate(signer.sign(claims(exp=int(NOW) + 400))).country == "AL"
    endpoint.failing = False
    assert cache.refresh()
    assert cache.age_seconds() == 0


def test_empty_or_foreign_key_set_keeps_the_last_good_keys(
    cache: JwksCache, endpoint: FakeJwksEndpoint, signer: Signer
) -> None:
    endpoint.signers = []
    assert not cache.refresh()
    enc_only = signer.jwk() | {"use": "enc", "alg": "RSA-OAEP"}
    cache._fetcher = lambda: {"keys": [enc_only]}
    assert not cache.refresh()
    assert cache.kids() == {"key-1"}


def test_unknown_kid_refetch_is_rate_limited_inline(
    clock: FakeClock, signer: Signer, other_signer: Signer
) -> None:
    endpoint = FakeJwksEndpoint(signer)
    jwks = JwksCache(
        "unused", fetcher=endpoint, clock=clock, unknown_kid_min_interval=30, inline_unknown_kid_fetch=True
    )
    jwks.refresh()
    validator = TokenValidator(ISSUER, "identification-api", {"thb-test"}, jwks, PARTNERS, clock=clock)
    rotated = other_signer.sign(claims())

    # a flood of unknown kids costs one fetch per interval, whatever the kids are
    for _ in range(20):
        assert rejected(validator, rotated).code == "unknown_key"
    assert endpoint.calls == 2

    # Keycloak rotated its key meanwhile; still inside the interval: no fetch, still rejected
    endpoint.signers.append(other_signer)
    clock.now = NOW + 29
    assert rejected(validator, rotated).code == "unknown_key"
    assert endpoint.calls == 2

    # after the interval the next unknown kid fetches once and the rotated key is found
    clock.now = NOW + 31
    assert validator.validate(rotated).country == "AL"
    assert endpoint.calls == 3
    assert validator.validate(rotated).country == "AL"
    assert endpoint.calls == 3


def test_unknown_kid_in_background_mode_never_fetches_in_the_caller(
    clock: FakeClock, signer: Signer, other_signer: Signer
) -> None:
    endpoint = FakeJwksEndpoint(signer, other_signer)
    jwks = JwksCache("unused", fetcher=endpoint, clock=clock, unknown_kid_min_interval=30)
    jwks._fetcher = FakeJwksEndpoint(signer)  # the set as it was before the rotation
    jwks.refresh()
    jwks._fetcher = endpoint
    validator = TokenValidator(ISSUER, "identification-api", {"thb-test"}, jwks, PARTNERS, clock=clock)
    assert rejected(validator, other_signer.sign(claims())).code == "unknown_key"
    assert endpoint.calls == 0  # the caller did not fetch
    assert jwks._wake.is_set()  # the background thread was asked to
    assert not jwks.request_refetch()  # and the next request within the interval is refused


def test_background_thread_refreshes_and_survives_failures(signer: Signer, other_signer: Signer) -> None:
    endpoint = FakeJwksEndpoint(signer)
    jwks = JwksCache("unused", fetcher=endpoint, refresh_interval=3600, retry_interval=3600)
    jwks.start()
    try:
        assert jwks.kids() == {"key-1"}
        endpoint.failing = True
        jwks._wake.set()
        _wait_for(lambda: endpoint.calls >= 2)
        assert jwks.kids() == {"key-1"}
        endpoint.failing = False
        endpoint.signers = [signer, other_signer]
        jwks._wake.set()
        _wait_for(lambda: jwks.kids() == {"key-1", "key-2"})
    finally:
        jwks.stop()
    assert jwks._thread is None


def _wait_for(condition: Callable[[], bool]) -> None:
    # waits on the real background thread (bounded), not on time passing in the code under test
    import threading

    done = threading.Event()
    for _ in range(500):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("background refresh did not happen")


def test_bearer_token_header() -> None:
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token("bearer  abc ") == "abc"
    for bad in (None, "", "Basic dXNlcg==", "Bearer "):
        with pytest.raises(AuthError) as caught:
            bearer_token(bad)
        assert caught.value.code == "token_missing"
