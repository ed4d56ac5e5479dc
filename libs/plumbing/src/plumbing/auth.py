"""Access-token validation for every service (docs/conventions.md "Identity, scope and need-to-know").

A service builds one ``TokenValidator`` at start-up and calls ``validate(token)`` per request; the result, a
``Caller``, is what handlers, the scoped repository and the access log see. Every rejection is an ``AuthError``
with a stable ``code`` (for logs, metrics and tests) and an HTTP status (401; 503 only while no key set has
ever been loaded). The problem ``detail`` must not echo token content.

Checks, in order: RS256 only (the algorithm is fixed by us, never taken from the token: this is what defeats
``alg: none`` and HS256 signed with the public key), a known ``kid``, the signature, ``exp``/``nbf``/``iat``
against the injected clock with a small leeway, ``iss``, ``aud`` contains this service, ``typ`` is Bearer,
``azp`` in the allow-list, ``sub`` present, exactly one ``country`` (a partner country) and exactly one
``agency``. Keycloak emits ``country``/``agency`` as lists (multivalued mappers, so that a person wrongly in two
countries' groups shows up as two values instead of Keycloak picking one at random); a string or a one-element
list is accepted, anything else is rejected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from plumbing.jwks import JwksCache

__all__ = ["AuthError", "Caller", "JwksCache", "TokenValidator", "bearer_token"]

ALGORITHM = "RS256"


class AuthError(Exception):
    """A token was rejected. ``code`` is stable; ``str()`` is a short English reason without token content."""

    def __init__(self, code: str, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Caller:
    sub: str
    azp: str
    country: str
    agency: str
    roles: frozenset[str]
    # For machine clients only: the person the national system says it acts for (X-Acting-User header).
    # Recorded in the access log; never used for authorisation, because nothing vouches for it.
    acting_user: str | None
    is_machine: bool
    token: str  # exchanged at Keycloak (plumbing.on_behalf) when this service calls another on the caller's behalf

    @classmethod
    def job(cls, actor: str, service: str, country: str, agency: str) -> Caller:
        """What a job's access-log entry names (the retention job, identification's re-keying): the job as
        `actor` of `service`, in the record owner's country and agency; no roles, and no token, since a job
        calls nobody on anyone's behalf."""
        return cls(actor, service, country, agency, frozenset(), None, True, "")

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_any_role(self, *roles: str | Iterable[str]) -> bool:
        """``has_any_role("a", "b")`` or ``has_any_role({"a", "b"})``."""
        wanted: set[str] = set()
        for item in roles:
            if isinstance(item, str):
                wanted.add(item)
            else:
                wanted.update(item)
        return not self.roles.isdisjoint(wanted)

    def __repr__(self) -> str:  # the token is a credential: keep it out of logs and tracebacks
        return (
            f"Caller(sub={self.sub!r}, azp={self.azp!r}, country={self.country!r}, agency={self.agency!r}, "
            f"roles={sorted(self.roles)!r}, is_machine={self.is_machine!r})"
        )


def bearer_token(authorization: str | None) -> str:
    """The token from an ``Authorization: Bearer ...`` header value."""
    if not authorization:
        raise AuthError("token_missing", "no bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("token_missing", "authorization is not a bearer token")
    return token.strip()


def _single(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if isinstance(value, list):
        if len(value) != 1:
            return None
        value = value[0]
    if isinstance(value, str) and value.strip():
        return value
    return None


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class TokenValidator:
    def __init__(
        self,
        issuer: str,
        audience: str,
        allowed_azp: Iterable[str],
        jwks: JwksCache,
        partner_countries: Iterable[str],
        clock: Callable[[], float] = time.time,
        leeway: float = 10.0,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.allowed_azp = frozenset(allowed_azp)
        self.jwks = jwks
        self.partner_countries = frozenset(partner_countries)
        self.clock = clock
        self.leeway = leeway

    def validate(self, token: str, acting_user: str | None = None) -> Caller:
        claims = self._verified_claims(token)
        self._check_time(claims)
        if claims.get("iss") != self.issuer:
            raise AuthError("issuer_invalid", "token issued by another issuer")
        audience = claims.get("aud")
        audiences = (
            [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
        )
        if self.audience not in audiences:
            raise AuthError("audience_invalid", "token not issued for this service")
        token_type = claims.get("typ")
        if token_type is not None and str(token_type).lower() != "bearer":
            # ID and refresh tokens are not access tokens, even if signed by the realm
            raise AuthError("token_type_invalid", "not an access token")
        azp = claims.get("azp")
        if not isinstance(azp, str) or azp not in self.allowed_azp:
            raise AuthError("client_not_allowed", "token obtained by a client that may not call this service")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise AuthError("claims_invalid", "token has no subject")
        country = _single(claims, "country")
        if country is None:
            raise AuthError("country_claim_invalid", "token must carry exactly one country")
        if country not in self.partner_countries:
            raise AuthError("country_not_partner", "country is not a partner country")
        agency = _single(claims, "agency")
        if agency is None:
            raise AuthError("agency_claim_invalid", "token must carry exactly one agency")
        realm_access = claims.get("realm_access") or {}
        roles = realm_access.get("roles", []) if isinstance(realm_access, dict) else None
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise AuthError("claims_invalid", "realm roles are malformed")
        # Keycloak sets client_id only on service-account (client credentials) tokens.
        is_machine = isinstance(claims.get("client_id"), str)
        return Caller(
            sub=sub,
            azp=azp,
            country=country,
            agency=agency,
            roles=frozenset(roles),
            acting_user=acting_user if is_machine and acting_user else None,
            is_machine=is_machine,
            token=token,
        )

    def _verified_claims(self, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or token.count(".") != 2:
            raise AuthError("token_malformed", "not a signed JWT")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
            # InvalidTokenError, not only DecodeError: PyJWT refuses a `kid` that is not a string that way.
            raise AuthError("token_malformed", "unreadable token header") from exc
        if header.get("alg") != ALGORITHM:
            raise AuthError("algorithm_not_allowed", "only RS256 tokens are accepted")
        if not self.jwks.loaded:
            raise AuthError("keys_unavailable", "signing keys not loaded yet", status=503)
        kid = header.get("kid")
        key = self.jwks.get_key(kid if isinstance(kid, str) else None)
        if key is None:
            raise AuthError("unknown_key", "token signed with an unknown key")
        try:
            # Time, issuer and audience are checked by us afterwards against the injected clock; PyJWT would use
            # the wall clock. The algorithm list is ours, never the header's.
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise AuthError("signature_invalid", "token signature does not verify") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise AuthError("algorithm_not_allowed", "only RS256 tokens are accepted") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError("token_malformed", "token cannot be decoded") from exc
        if not isinstance(claims, dict):
            raise AuthError("token_malformed", "token payload is not an object")
        return claims

    def _check_time(self, claims: Mapping[str, Any]) -> None:
        now = self.clock()
        exp = _number(claims, "exp")
        if exp is None:
            raise AuthError("claims_invalid", "token has no expiry")
        if now > exp + self.leeway:
            raise AuthError("token_expired", "token expired")
        nbf = _number(claims, "nbf")
        if "nbf" in claims and nbf is None:
            raise AuthError("claims_invalid", "malformed nbf")
        if nbf is not None and now + self.leeway < nbf:
            raise AuthError("token_not_yet_valid", "token not valid yet")
        iat = _number(claims, "iat")
        if iat is not None and now + self.leeway < iat:
            raise AuthError("token_not_yet_valid", "token issued in the future")
