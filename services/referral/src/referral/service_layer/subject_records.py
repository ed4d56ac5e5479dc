"""What referral holds about one person, for her request of access (plumbing.subject_access): every referral of
the caller's country that names her identification person id or one of her case ids, in the view the API gives
the referring side, with the case fields copied into it (opened: they are hers)."""

from __future__ import annotations

from collections.abc import Sequence

from plumbing.auth import Caller
from plumbing.subject_access import SubjectRecord, naming
from referral.adapters.documents import ReferralDocument
from referral.service_layer.deps import Deps
from referral.service_layer.referrals import referral_view

RECORD_TYPE = "referral"


def records_about(deps: Deps, caller: Caller, person_id: str, case_ids: Sequence[str]) -> list[SubjectRecord]:
    referrals = deps.repository(ReferralDocument, caller)
    found = naming(referrals, person_id, case_ids, case_field="case_id")
    return [SubjectRecord(RECORD_TYPE, doc.id, _content(deps, caller, doc)) for doc in found]


def _content(deps: Deps, caller: Caller, doc: ReferralDocument) -> dict[str, object]:
    view = referral_view(deps, caller, doc)
    copied = deps.sealer.open(doc.owner_country, doc.id, doc.sealed_fields) if doc.sealed_fields else {}
    return {**view, "case_fields": copied}
