"""Evidence of a country's exchange: its message log's hash chain, and each stored form against the digest
logged when it was sent or received. Either side can prove what was sent, when, by whom, and that it was
received; altering a stored form's bytes, or removing them, is detected. Auditors and coordinators read the log
(metadata only) and the result of the check through the API.

A record anonymised at the end of its retention period (service_layer/retention.py) has no content left to check:
its sent and received forms are counted in `anonymised_forms`, not reported as altered. What crossed stays proven
by the message log (chain, digests, signature ids), which anonymisation never touches, and by the digest and
signature id each form keeps. A sent or received form whose content is missing from a record that was NOT
anonymised is altered."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exchange.domain.evidence import ChainReport, content_digest, logged_at
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import cases, inbox_caller, to_case
from plumbing.clock import to_millis
from plumbing.errors import DecryptionError, InvalidCursor
from plumbing.pagination import PageRequest, build_page

# What an entry shows: its metadata and its links in the chain (never content; `country` is the caller's own).
ENTRY_FIELDS = (
    "seq",
    "direction",
    "envelope_id",
    "form_id",
    "form_type",
    "version",
    "case_reference",
    "sender",
    "recipient",
    "refers_to",
    "sent_at",
    "received_at",
    "logged_at",
    "content_digest",
    "signature_id",
    "receipt_id",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class EvidenceReport:
    chain: ChainReport
    altered_forms: list[str] = field(default_factory=list)  # form ids whose stored content no longer matches
    # Sent or received forms of anonymised records: their content was removed on purpose, so it is not checked.
    anonymised_forms: int = 0

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.altered_forms


def verify_evidence(deps: Deps, country: str) -> EvidenceReport:
    """The `verify` of one country: the chain, then every sent or received form's content against its log."""
    chain = deps.message_log.verify(country)
    logged = {
        (entry["form_id"], entry["envelope_id"]): entry["content_digest"]
        for entry in deps.message_log.entries(country)
    }
    altered: list[str] = []
    anonymised = 0
    for doc in cases(deps, inbox_caller(country)).find():
        for form in to_case(doc).forms:
            if form.envelope_id is None:
                continue  # a draft: nothing was logged for it
            if doc.anonymised_at is not None:
                anonymised += 1  # its content removed at the end of the retention period: nothing to check
                continue
            if form.id not in doc.contents:
                altered.append(form.id)  # sent or received, its content gone without an anonymisation
                continue
            try:
                digest = content_digest(deps.contents.open(country, doc.id, form.id, doc.contents[form.id]))
            except (DecryptionError, ValueError):
                altered.append(form.id)
                continue
            expected = logged.get((form.id, form.envelope_id))
            if digest != form.content_digest or (expected is not None and digest != expected):
                altered.append(form.id)
    return EvidenceReport(chain, sorted(altered), anonymised)


def report_view(report: EvidenceReport) -> dict[str, Any]:
    chain = report.chain
    return {
        "ok": report.ok,
        "chain": {
            "ok": chain.ok,
            "checked": chain.checked,
            "first_broken_seq": chain.first_broken_seq,
            "reason": chain.reason,
        },
        "altered_forms": list(report.altered_forms),
        "anonymised_forms": report.anonymised_forms,
    }


def log_page(
    deps: Deps,
    country: str,
    *,
    limit: int | None = None,
    cursor: str | None = None,
    updated_since: datetime | None = None,
) -> dict[str, Any]:
    """One page of the country's message log, metadata only, in the chain's order (`seq`: entries are logged in
    turn). The cursor is the platform's (plumbing.pagination) and continues strictly after the last entry of the
    previous page; `updated_since` starts at the first entry logged at or after it. A page reads only its own
    entries (a range of `seq`), so its cost does not grow with the log."""
    request = PageRequest.parse(limit, cursor)
    if request.after is not None:
        try:
            start = int(request.after.id)
        except ValueError:
            raise InvalidCursor() from None
    elif updated_since is not None:
        start = deps.message_log.first_since(country, updated_since) - 1
    else:
        start = 0
    rows = deps.message_log.after(country, start, request.fetch)
    page = build_page(rows, request, key=_key)
    return page.body(lambda entry: {name: entry.get(name) for name in ENTRY_FIELDS})


def _key(entry: Mapping[str, Any]) -> tuple[datetime, str]:
    # Milliseconds, as the cursor keeps them (a finer time would bring the page's last entry back); `seq`
    # zero-padded, so that it orders as a number inside the cursor's (time, id) pair.
    return to_millis(logged_at(entry)), f"{int(entry['seq']):012d}"
