"""The audit API of every service: its access log for the auditors and data protection officers of a country
(`GET /v1/<service>/access-log`, `GET /v1/<service>/access-log/verification`; docs/data-protection.md).

What a country's auditor sees: the entries written for readers of her own country (`country` of the entry is the
reader's), filtered by a record id (a person, a case, a referral, a form: every id the read returned), by actor
(the reader's `sub`), by purpose and by period, oldest first. That answers "who read this child's file, when and
why" for the records of her country; what another country's officers read of data sent to them is that country's
processing and its own auditors' to see. Entries hold ids and codes only, never case content.

The verification walks the whole hash chain of the service's log (every country's entries: one chain) and names
the first broken link; it returns no entry, so any country's auditor may run it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from plumbing import request_context
from plumbing.access_log import AccessLog, AccessLogEntry
from plumbing.clock import rfc3339, to_millis
from plumbing.errors import InvalidCursor
from plumbing.pagination import PageRequest, build_page, parse_updated_since
from plumbing.problems import FieldError, Problem


def entry_view(entry: AccessLogEntry) -> dict[str, Any]:
    """An entry as the audit API shows it: who (sub, client, acting user, agency, roles), what (operation,
    resource type, record ids, outcome), when, why (purpose), and the request and trace ids to follow it."""
    return {
        "seq": entry.seq,
        "time": rfc3339(entry.time),
        "actor": entry.sub,
        "client": entry.azp,
        "acting_user": entry.acting_user,
        "country": entry.country,
        "agency": entry.agency,
        "roles": list(entry.roles),
        "purpose": entry.purpose,
        "operation": entry.operation_id,
        "resource_type": entry.resource_type,
        "record_ids": list(entry.ids),
        "outcome": entry.outcome,
        "request_id": entry.request_id,
        "trace_id": entry.trace_id,
    }


def _key(entry: AccessLogEntry) -> tuple[datetime, str]:
    # The cursor's (time, id) pair: seq zero-padded so that it orders as a number; the page continues after it.
    return to_millis(entry.time), f"{entry.seq:012d}"


def _instant(value: Any, name: str) -> datetime | None:
    # The same parsing and problems as `updated_since` (RFC 3339 with an offset), pointed at this parameter.
    try:
        return parse_updated_since(value)
    except Problem as problem:
        raise Problem(
            problem.slug, errors=[FieldError(f"/query/{name}", e.code) for e in problem.errors]
        ) from None


def access_log_page(
    access_log: AccessLog,
    country: str,
    *,
    record_id: str | None = None,
    actor: str | None = None,
    purpose: str | None = None,
    since: Any = None,
    until: Any = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One page of the entries of readers of `country`, oldest first (chain order). The cursor continues strictly
    after the last entry of the previous page, whatever the filters; `since` is inclusive, `until` exclusive."""
    request = PageRequest.parse(limit, cursor)
    start, end = _instant(since, "since"), _instant(until, "until")
    if start is not None and end is not None and end <= start:
        raise Problem("validation-failed", errors=[FieldError("/query/until", "after_since")])
    after_seq = None
    if request.after is not None:
        try:
            after_seq = int(request.after.id)
        except ValueError:
            raise InvalidCursor() from None
    rows = access_log.query(
        person_id=record_id,
        actor_sub=actor,
        purpose=purpose,
        since=start,
        until=end,
        country=country,
        after_seq=after_seq,
        limit=request.fetch,
    )
    return build_page(rows, request, key=_key).body(entry_view)


def verification_view(access_log: AccessLog) -> dict[str, Any]:
    """The chain check: `ok`, how many entries were checked, and where and why it breaks."""
    report = access_log.verify_chain()
    return {
        "ok": report.ok,
        "checked": report.checked,
        "first_broken_seq": report.first_bad_seq,
        "reason": report.reason,
    }


def handlers(
    built_log: Callable[[], AccessLog | None],
) -> tuple[Callable[..., dict[str, Any]], Callable[[], dict[str, Any]]]:
    """The two operations as a service's HTTP module binds them (`list_access_log, verify_access_log =
    audit.handlers(...)`): `built_log` gives the service's log once the app is built (None before); the caller
    is the verified one of the request."""

    def access_log() -> AccessLog:
        log = built_log()
        if log is None:
            raise RuntimeError("the app was not built")
        return log

    def list_access_log(
        record_id: str | None = None,
        actor: str | None = None,
        purpose: str | None = None,
        since: Any = None,
        until: Any = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        return access_log_page(
            access_log(),
            request_context.current_caller().country,
            record_id=record_id,
            actor=actor,
            purpose=purpose,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )

    def verify_access_log() -> dict[str, Any]:
        return verification_view(access_log())

    return list_access_log, verify_access_log


def entries_naming(
    access_log: AccessLog, country: str, ids: Iterable[str], *, limit_per_id: int = 1000
) -> list[dict[str, Any]]:
    """Every entry of readers of `country` that names any of `ids`, once each, oldest first: the access-log part
    of a data subject's access request (plumbing.subject_access). At most `limit_per_id` entries per id (the
    most recent are cut; the answer says how many it holds)."""
    found: dict[int, AccessLogEntry] = {}
    for record_id in dict.fromkeys(ids):
        for entry in access_log.query(person_id=record_id, country=country, limit=limit_per_id):
            found.setdefault(entry.seq, entry)
    return [entry_view(found[seq]) for seq in sorted(found)]
