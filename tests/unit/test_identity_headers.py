"""One list of identity headers (plumbing.identity_headers): what the services strip is what the gateway drops."""

from __future__ import annotations

import pytest

from gateway.headers import forwarded_headers
from plumbing.identity_headers import IDENTITY_HEADER_PREFIXES, is_identity_header
from plumbing.security import strip_identity_headers

# One concrete name per entry of the list, and family members a prefix covers; among them the names each side used
# to miss (the gateway X-Email and X-Groups; the services X-Sub, X-Azp, X-Principal and more).
CLAIMS = [prefix + "user" if prefix.endswith("-") else prefix for prefix in IDENTITY_HEADER_PREFIXES] + [
    "X-User-Id",
    "X-Userinfo",
    "X-Roles",
    "X-Forwarded-Preferred-Username",
    "X-Authenticated-Userid",
    "X-Jwt-Payload",
]
ORDINARY = [
    "Authorization",
    "X-Purpose",
    "X-Acting-User",
    "Idempotency-Key",
    "Accept-Language",
    "Content-Type",
]


def test_the_list_is_lower_case_and_covers_what_either_side_used_to_miss() -> None:
    assert all(prefix == prefix.lower() for prefix in IDENTITY_HEADER_PREFIXES)
    for name in (
        "X-Email",
        "X-Groups",
        "X-Sub",
        "X-Azp",
        "X-Principal",
        "X-User",
        "X-Country",
        "Remote-User",
    ):
        assert is_identity_header(name), name


@pytest.mark.parametrize("name", CLAIMS)
def test_the_gateway_and_the_services_both_strip_it(name: str) -> None:
    assert is_identity_header(name) and is_identity_header(name.lower().encode())
    raw = [(name.lower().encode(), b"XK"), (b"x-purpose", b"identification")]
    assert forwarded_headers(raw) == [(b"x-purpose", b"identification")]
    scope = {"headers": [(name.encode(), b"XK"), (b"x-purpose", b"identification")]}
    strip_identity_headers(scope)
    assert scope["headers"] == [(b"x-purpose", b"identification")]


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_headers_pass_both(name: str) -> None:
    assert not is_identity_header(name)
    assert forwarded_headers([(name.lower().encode(), b"v")]) == [(name.lower().encode(), b"v")]
    scope = {"headers": [(name.lower().encode(), b"v")]}
    strip_identity_headers(scope)
    assert scope["headers"] == [(name.lower().encode(), b"v")]
