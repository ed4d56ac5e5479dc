"""What the retention job does to referral's records (docs/data-protection.md "Retention"; the mechanism is
plumbing.retention, run by entrypoints/scheduler.py).

- referral (config/platform.yaml `retention.referral`: P5Y from `closed`, anonymise). Its period starts at its end:
  the instant of the timeline entry that moved it to the end status it is in (completed, declined, cancelled,
  revoked or expired; `ended_at` for a record without one). While it is proposed, requested, accepted or in
  progress it is open: the job looks again a period later. Anonymising removes
  - the sealed copy of the granted case fields (`sealed_fields`: names, birth, documents, the guardian's name and
    phone and the free text typed in, `special_needs` and `accompanied_by`), set to None as for a referral never
    sent: the fields read answers an empty copy, a subject access no case fields;
  - every member of a timeline entry that is not one of the codes, ids and instants the service writes there
    (`TIMELINE_MEMBERS`): free text or a copied contact, should an entry ever hold one. Today every entry holds
    codes only, so the timeline reads the same afterwards;
  - the provider's contacts: a referral holds no copy of them (it names the provider by `provider_id`,
    `provider_agency` and `provider_kind`, codes kept), so there is nothing to remove.
  It keeps the service type, status, reason code, every date (requested, answered, started, ended, the copy's
  time), the provider's and the person's codes and ids (kind, municipality, age group, sex, languages, the
  identification and return ids, the basis and the consent's record), the field sets and fields granted (which,
  not their values), deadline keys and the overdue mark: everything `statistics.stat_row` reads, so the statistics
  stay the same. The users' ids on the timeline (`by`) and in the consent's record (`recorded_by`) stay: the
  referral's rule, unlike the case's, does not remove them.
- consent withdrawal (`ConsentWithdrawalDocument`): ids only (the person's and her cases' identification ids, the
  day): nothing to anonymise, no `Retained` (docs: "The withdrawal and restriction records other services keep are
  ids only and stay").
- provider (`ProviderDocument`, the service directory): not retained by this job. It is an organisation's live
  entry; its contact persons (`contacts`) are edited or removed by the coordinator's office, and no rule of the
  docs says when a directory entry is closed or what its anonymisation removes. Its `retention_due_at` (set on
  insert, as it names the `referral` record type) is claimed by no job.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from plumbing.clock import as_utc
from plumbing.retention import Retained
from referral.adapters.documents import ReferralDocument
from referral.domain import lifecycle
from referral.service_layer.deps import Deps

# What a timeline entry may hold after anonymisation: the codes, ids and instants the service writes there
# (domain/lifecycle.timeline_entry and the entries of proposals, requests, corrections, refreshes, deadlines and
# consent withdrawals). Anything else is removed.
TIMELINE_MEMBERS = frozenset(
    {
        "at",
        "by",
        "agency",
        "action",
        "from",
        "to",
        "reason",
        "provider_agency",
        "service_type",
        "field_sets",
        "informed_agencies",
        "fields",
        "correction_id",
        "withdrawal_id",
        "key",
        "need",
        "return_case_id",
        "source_event_id",
    }
)


def retained(deps: Deps) -> list[Retained]:
    """The document classes the retention job anonymises: referrals only (see the module's docstring). `deps` is
    the scheduler's wiring, unused for now: a referral's end and its anonymisation need nothing but the record."""
    return [Retained(ReferralDocument, closed_at=referral_closed_at, anonymise=anonymise_referral)]


def referral_closed_at(doc: ReferralDocument) -> datetime | None:
    """The instant the referral ended (None while it has not): the last timeline entry that moved it to its end
    status, else `ended_at`, else its last change."""
    if doc.status not in lifecycle.ENDED:
        return None
    for entry in reversed(doc.timeline or ()):
        at = entry.get("at")
        if entry.get("to") == doc.status and isinstance(at, datetime):
            return as_utc(at)
    fallback = doc.ended_at or doc.updated_at
    return as_utc(fallback) if fallback is not None else None


def anonymise_referral(doc: ReferralDocument) -> None:
    """Remove the sealed copy of the case fields and any member of the timeline that is not a code, id or
    instant, in place; everything else stays (see the module's docstring)."""
    doc.sealed_fields = None
    doc.timeline = [_codes_only(entry) for entry in doc.timeline or ()]


def _codes_only(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in entry.items() if name in TIMELINE_MEMBERS}
