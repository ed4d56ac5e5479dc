"""Token checks at the edge, with the services' own validator (plumbing.auth.TokenValidator).

A service's validator accepts only its own audience. The gateway must check the audience of the *target*
service of the matched route, so it holds one validator per service (all sharing one JWKS cache) and asks the
one of the route's service. That keeps every check (RS256 only, kid, signature, exp/nbf/iat, iss, aud, typ,
azp allow-list, one partner country, one agency) identical at the edge and in the service.

Validated tokens are remembered per (service, token), bounded and only until their `exp`: a gateway sees the
same short-lived token many times and RS256 verification is most of its per-request CPU. A tampered token is a
different string, so it never hits the memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Protocol

import jwt

from gateway.contracts import audience_of
from plumbing.auth import AuthError, Caller, bearer_token

__all__ = ["AuthError", "Caller", "EdgeAuthenticator", "bearer_token"]


class Validator(Protocol):
    def validate(self, token: str, acting_user: str | None = None) -> Caller: ...


class EdgeAuthenticator:
    def __init__(
        self,
        validators: Mapping[str, Validator],
        clock: Callable[[], float] = time.time,
        memory_size: int = 10_000,
    ) -> None:
        self.validators = dict(validators)
        self.clock = clock
        self.memory_size = memory_size
        self._memory: OrderedDict[tuple[str, str], tuple[Caller, float]] = OrderedDict()

    def authenticate(self, service: str, token: str) -> Caller:
        """The caller, if `token` may call `service`; AuthError otherwise (`audience_invalid`: not this one)."""
        key = (service, token)
        remembered = self._memory.get(key)
        now = self.clock()
        if remembered is not None:
            caller, expires = remembered
            if now < expires:
                return caller
            del self._memory[key]
        try:
            caller = self.validators[service].validate(token)
        except AuthError as exc:
            if exc.code == "audience_invalid":
                self._check_identity_elsewhere(service, token, exc)
            raise
        # The signature is verified at this point; read exp again only to bound the memory.
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
        if isinstance(exp, int | float):
            self._memory[key] = (caller, float(exp))
            if len(self._memory) > self.memory_size:
                self._memory.popitem(last=False)
        return caller

    def _check_identity_elsewhere(self, service: str, token: str, wrong_audience: AuthError) -> None:
        """A token without `service` in `aud` is a 403 only if it is otherwise acceptable (valid for a service it
        does name). Otherwise the identity itself is not acceptable (no or two countries, a client not allowed,
        no platform audience at all): raise that, so the gateway answers 401 as the services do."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise wrong_audience from None
        audience = claims.get("aud")
        named = (
            {audience}
            if isinstance(audience, str)
            else set(audience)
            if isinstance(audience, list)
            else set()
        )
        others = [name for name in self.validators if name != service and audience_of(name) in named]
        if not others:
            raise AuthError("audience_invalid_everywhere", "token not issued for any service of the platform")
        self.validators[others[0]].validate(token)  # raises the identity's own problem (401) if it has one
