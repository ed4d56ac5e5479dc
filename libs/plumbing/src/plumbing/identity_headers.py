"""Request headers that could claim an identity: the one list the gateway and every service strip.

Identity travels only inside the signed token. A proxy, a framework or a future handler might read any of these
headers as "who is calling" (the user, the client, the country, the agency, the roles); a client that sends one
must therefore never get it past the edge (gateway.headers drops them before forwarding) nor into a handler
(plumbing.security.strip_identity_headers removes them before anything reads the request, the second line for
calls that reach a service directly). `X-Acting-User` is not on the list: it is accepted, checked and recorded
for machine clients only, and never authorises anything (docs/conventions.md).

Names are matched case-insensitively by prefix, so each entry also covers its family (`x-user` covers
X-User, X-User-Id, X-Userid, X-Userinfo, X-User-Roles; `x-auth` covers X-Auth-Request-User, X-Authenticated-Userid).
"""

from __future__ import annotations

IDENTITY_HEADER_PREFIXES: tuple[str, ...] = (
    "x-user",  # x-user, x-user-id, x-userid, x-userinfo, x-user-*
    "x-email",
    "x-groups",
    "x-group",
    "x-auth",  # x-auth-*, x-authenticated-*, x-authorization-*
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred",  # x-forwarded-preferred-username
    "x-forwarded-access",  # x-forwarded-access-token
    "x-country",
    "x-agency",
    "x-role",  # x-role, x-roles
    "x-remote-",
    "remote-user",
    "x-consumer-",
    "x-client-id",
    "x-caller",
    "x-sub",
    "x-azp",
    "x-scope",
    "x-gateway-",  # only the gateway may speak as the gateway
    "x-jwt",  # x-jwt, x-jwt-payload, x-jwt-assertion
    "x-id-token",
    "x-access-token",
    "x-principal",
    "x-tenant",
    "x-owner",
)


def is_identity_header(name: str | bytes) -> bool:
    """True for a header name (any case; bytes as ASGI has them) that could claim an identity."""
    text = name.decode("latin-1") if isinstance(name, bytes) else name
    return text.lower().startswith(IDENTITY_HEADER_PREFIXES)
