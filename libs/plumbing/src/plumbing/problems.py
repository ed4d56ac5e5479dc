"""RFC 9457 problem details: the catalogue of problem types and the exception every layer raises.

A `Problem` names a catalogue slug; its status, `type` URI and translated `title`/`detail` come from
problem_catalogue.yaml (listed for humans in docs/problems.md). Nothing a client sent is ever copied into a
problem: validation errors carry only a JSON pointer built from the contract and a code (the JSON Schema
keyword), so a rejected name or document number cannot come back in the response or a log line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from plumbing import i18n

PROBLEM_JSON = "application/problem+json"
# Where problem types live: `type` is base + slug. Default (the catalogue's `base`): `/problems/`, a reference
# relative to the URL the client called, i.e. the gateway, which serves a page for every type (GET /problems).
# THB_PROBLEM_BASE makes it absolute for clients that want it (`https://api.example/problems/`); it must end in
# `/problems/`, the gateway's path, and every process (gateway and services) must get the same value.
PROBLEM_BASE_ENV = "THB_PROBLEM_BASE"

# Status codes produced by connexion, Starlette or Werkzeug, re-shaped into our catalogue.
_BY_STATUS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    429: "rate-limited",
    503: "service-unavailable",
}


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    uri: str
    titles: dict[str, str]
    details: dict[str, str]
    when: str = ""  # when it is answered (English, the docs/problems.md column): the gateway's problem pages


class Catalogue:
    def __init__(self, data: dict[str, Any], base: str | None = None) -> None:
        self.base: str = base or data["base"]
        if not self.base.endswith("/problems/"):
            raise ValueError(
                f"{PROBLEM_BASE_ENV} must end in /problems/ (the gateway serves the types there)"
            )
        keep = data.get("keep_latin", [])
        self.types: dict[str, ProblemType] = {}
        for slug, entry in data["types"].items():
            titles = i18n.with_cyrillic(entry["title"], keep)
            details = i18n.with_cyrillic(entry["detail"], keep)
            missing = set(i18n.SUPPORTED) - set(titles) | set(i18n.SUPPORTED) - set(details)
            if missing:
                raise ValueError(f"problem type {slug} lacks languages {sorted(missing)}")
            self.types[slug] = ProblemType(
                slug, int(entry["status"]), self.base + slug, titles, details, str(entry.get("when", ""))
            )

    def get(self, slug: str) -> ProblemType:
        try:
            return self.types[slug]
        except KeyError:
            raise ValueError(f"unknown problem type {slug!r}: add it to problem_catalogue.yaml") from None

    def slug_for_status(self, status: int) -> str:
        if status in _BY_STATUS:
            return _BY_STATUS[status]
        return "bad-request" if 400 <= status < 500 else "internal-error"


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    text = resources.files("plumbing").joinpath("problem_catalogue.yaml").read_text(encoding="utf-8")
    return Catalogue(yaml.safe_load(text), os.environ.get(PROBLEM_BASE_ENV) or None)


@dataclass(frozen=True)
class FieldError:
    """One validation error: where (a JSON pointer, see docs/problems.md) and what rule (a code)."""

    pointer: str
    code: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "code": self.code}


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem of the catalogue."""

    def __init__(
        self,
        slug: str,
        *,
        errors: list[FieldError] | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        self.problem_type = catalogue().get(slug)
        super().__init__(slug)
        self.slug = slug
        self.errors = list(errors or [])
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})

    @property
    def status(self) -> int:
        # Named like connexion's ProblemException so its security layer ranks 401/403 correctly.
        return self.problem_type.status

    def __repr__(self) -> str:
        return f"Problem({self.slug!r}, status={self.status})"

    def body(self, language: str, instance: str | None) -> dict[str, Any]:
        kind = self.problem_type
        body: dict[str, Any] = {
            "type": kind.uri,
            "title": kind.titles.get(language, kind.titles[i18n.DEFAULT]),
            "status": kind.status,
            "detail": kind.details.get(language, kind.details[i18n.DEFAULT]),
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [error.as_dict() for error in self.errors]
        body.update(self.extensions)
        return body

    def response_headers(self, language: str) -> dict[str, str]:
        headers = {"Content-Language": language, "Vary": "Accept-Language"}
        if self.retry_after is not None:
            headers["Retry-After"] = str(int(self.retry_after))
        elif self.status in (429, 503):
            # Conventions: 429 and 503 always say when to come back.
            headers["Retry-After"] = "5"
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        headers.update(self.headers)
        return headers

    def render(self, language: str, instance: str | None) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps(self.body(language, instance), ensure_ascii=False).encode("utf-8")
        return self.status, self.response_headers(language), body


def validation_failed(*errors: FieldError) -> Problem:
    return Problem("validation-failed", errors=list(errors))
