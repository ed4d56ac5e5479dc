"""The problem catalogue at the problem `type` URIs: HTML for browsers, JSON on request, every type listed."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from gateway.app import Gateway
from gateway.testing import RecordingUpstream, SigningKeys, build_gateway
from plumbing.problems import catalogue

Call = Callable[..., httpx.Response]
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def gateway(keys: SigningKeys, upstream: RecordingUpstream) -> Gateway:
    return build_gateway(keys, upstream=upstream)


def test_a_problem_type_is_a_page_of_the_gateway(call: Call, gateway: Gateway) -> None:
    kind = catalogue().get("not-found")
    assert kind.uri == "/problems/not-found"  # the default base: relative to the gateway's public URL
    page = call(gateway, "GET", kind.uri, headers={"Accept": BROWSER})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-language"] == "en"
    assert "Accept" in page.headers["vary"]
    assert "<h1>Not found</h1>" in page.text and "<code>/problems/not-found</code>" in page.text
    # the operations that can answer it, read from the contracts' x-problem-types
    assert "GET /v1/identification/persons/{person_id}" in page.text


def test_json_on_request_with_the_operations_and_their_codes(call: Call, gateway: Gateway) -> None:
    answer = call(
        gateway,
        "GET",
        "/problems/validation-failed",
        headers={"Accept": "application/json", "Accept-Language": "sq"},
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.headers["content-language"] == "sq"
    body = answer.json()
    assert body["type"] == "/problems/validation-failed" and body["status"] == 422
    assert body["title"] == catalogue().get("validation-failed").titles["sq"]
    assert body["when"] == catalogue().get("validation-failed").when
    decisions = next(o for o in body["operations"] if o["operation"].endswith("/decisions"))
    assert "unknown_screening" in decisions["codes"]


def test_the_list_names_every_type(call: Call, gateway: Gateway) -> None:
    listed = call(gateway, "GET", "/problems", headers={"Accept": "application/json"}).json()["items"]
    assert {item["slug"] for item in listed} == set(catalogue().types)
    html = call(gateway, "GET", "/problems/", headers={"Accept": BROWSER}).text
    assert all(f'href="/problems/{slug}"' in html for slug in catalogue().types)


def test_html_unless_json_is_preferred(call: Call, gateway: Gateway) -> None:
    for accept, kind in [
        (None, "text/html"),
        ("*/*", "text/html"),
        ("text/html, application/json;q=0.5", "text/html"),
        ("application/problem+json", "application/json"),
        ("application/json;q=0.9, text/html;q=0.1", "application/json"),
    ]:
        headers = {"Accept": accept} if accept else {}
        answer = call(gateway, "GET", "/problems/conflict", headers=headers)
        assert answer.headers["content-type"].startswith(kind), accept


def test_an_unknown_type_is_a_404_problem_and_only_get_is_allowed(
    call: Call, gateway: Gateway, upstream: RecordingUpstream
) -> None:
    missing = call(gateway, "GET", "/problems/teapot", headers={"Accept": BROWSER})
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert call(gateway, "POST", "/problems/not-found").status_code == 405
    assert call(gateway, "HEAD", "/problems/not-found").status_code == 200
    assert upstream.requests == []


def test_the_combined_document_links_each_operations_problems(call: Call, gateway: Gateway) -> None:
    document = call(gateway, "GET", "/v1/openapi.json").json()
    decide = document["paths"]["/v1/identification/cases/{case_id}/decisions"]["post"]
    assert (
        "- 403 [`forbidden`](/problems/forbidden): `formal_identification_not_authorised`"
        in decide["description"]
    )
    # the shared components are bundled once; every reference is local
    assert "Problem" in document["components"]["schemas"]
    assert "common.yaml" not in str(document)
