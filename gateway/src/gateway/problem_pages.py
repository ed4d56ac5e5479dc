"""The problem catalogue as pages of the gateway: every problem `type` the platform answers is an address here.

`GET /problems` lists the types, `GET /problems/<slug>` describes one: its status, title and detail (in the
language negotiated from `Accept-Language`), when it is answered, and which operations can answer it with which
`errors[].code` values (from the contracts' `x-problem-types`). HTML for browsers, JSON when the client prefers
`application/json` (or `application/problem+json`) in `Accept`. The `type` URIs point here: the catalogue's base
is `/problems/` relative to the gateway's public URL, or `THB_PROBLEM_BASE` (plumbing.problems).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.contracts import HTTP_METHODS
from plumbing.problems import ProblemType, catalogue

_JSON_TYPES = ("application/json", "application/problem+json")
_CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Page:
    body: bytes
    content_type: str


@dataclass
class ProblemPages:
    # slug -> [(operation label, codes)] from the contracts
    operations: dict[str, list[tuple[str, tuple[str, ...]]]] = field(default_factory=dict)

    @classmethod
    def from_contracts(cls, contracts: Mapping[str, Mapping[str, Any]]) -> ProblemPages:
        pages = cls()
        for document in contracts.values():
            for template, item in (document.get("paths") or {}).items():
                for method in HTTP_METHODS:
                    spec = item.get(method)
                    if not isinstance(spec, Mapping) or spec.get("x-internal") is True:
                        continue
                    for slug, codes in (spec.get("x-problem-types") or {}).items():
                        label = f"{method.upper()} {template}"
                        pages.operations.setdefault(str(slug), []).append((label, tuple(codes or ())))
        return pages

    def render(self, slug: str | None, accept: str | None, language: str) -> Page | None:
        """The list (slug None) or one type; None for a slug the catalogue does not know."""
        wants_json = _prefers_json(accept)
        if slug is None:
            kinds = list(catalogue().types.values())
            if wants_json:
                items = [self._summary(kind, language) for kind in kinds]
                return _json({"items": items})
            return Page(self._list_html(kinds, language), "text/html; charset=utf-8")
        kind = catalogue().types.get(slug)
        if kind is None:
            return None
        if wants_json:
            return _json(self._detail(kind, language))
        return Page(self._detail_html(kind, language), "text/html; charset=utf-8")

    # -- JSON ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _summary(kind: ProblemType, language: str) -> dict[str, Any]:
        return {
            "type": kind.uri,
            "slug": kind.slug,
            "status": kind.status,
            "title": _text(kind.titles, language),
        }

    def _detail(self, kind: ProblemType, language: str) -> dict[str, Any]:
        return {
            **self._summary(kind, language),
            "detail": _text(kind.details, language),
            "when": kind.when,
            "operations": [
                {"operation": label, "codes": list(codes)}
                for label, codes in self.operations.get(kind.slug, [])
            ],
        }

    # -- HTML ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _list_html(kinds: list[ProblemType], language: str) -> bytes:
        rows = "\n".join(
            f'<tr><td><a href="/problems/{html.escape(k.slug)}"><code>{html.escape(k.slug)}</code></a></td>'
            f"<td>{k.status}</td><td>{html.escape(_text(k.titles, language))}</td></tr>"
            for k in kinds
        )
        body = (
            "<h1>Problem types</h1>\n<p>Every error of the platform is an RFC 9457 problem "
            "(<code>application/problem+json</code>); its <code>type</code> is the address of one of these pages. "
            "Branch on <code>type</code> and, for validation, on <code>errors[].code</code>.</p>\n"
            f"<table>\n<tr><th>type</th><th>status</th><th>title</th></tr>\n{rows}\n</table>"
        )
        return _document("Problem types", body, language)

    def _detail_html(self, kind: ProblemType, language: str) -> bytes:
        operations = self.operations.get(kind.slug, [])
        listed = "\n".join(
            f"<li><code>{html.escape(label)}</code>"
            + (": " + ", ".join(f"<code>{html.escape(c)}</code>" for c in codes) if codes else "")
            + "</li>"
            for label, codes in operations
        )
        title = _text(kind.titles, language)
        body = (
            f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(_text(kind.details, language))}</p>\n<dl>\n"
            f"<dt>type</dt><dd><code>{html.escape(kind.uri)}</code></dd>\n"
            f"<dt>status</dt><dd>{kind.status}</dd>\n"
            f"<dt>when</dt><dd>{_markdown_code(kind.when)}</dd>\n</dl>\n"
            + (
                "<h2>Operations that can answer it</h2>\n<p>With the <code>errors[].code</code> values that can "
                f"come with it.</p>\n<ul>\n{listed}\n</ul>\n"
                if operations
                else ""
            )
            + '<p><a href="/problems">All problem types</a></p>'
        )
        return _document(f"{title} ({kind.slug})", body, language)


def _text(texts: Mapping[str, str], language: str) -> str:
    return texts.get(language) or texts["en"]


def _markdown_code(text: str) -> str:
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html.escape(text, quote=False))


def _document(title: str, body: str, language: str) -> bytes:
    return (
        f'<!doctype html>\n<html lang="{html.escape(language)}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    ).encode()


def _json(document: Any) -> Page:
    return Page(json.dumps(document, ensure_ascii=False).encode("utf-8"), "application/json")


def _prefers_json(accept: str | None) -> bool:
    """JSON only when the client ranks a JSON type above HTML; a browser (text/html first), no Accept or */* get
    the HTML page."""
    if not accept:
        return False
    best_json = best_html = 0.0
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media in _JSON_TYPES:
            best_json = max(best_json, quality)
        elif media in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, quality)
    return best_json > best_html
