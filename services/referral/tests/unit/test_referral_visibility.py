"""Visibility as functions and scope filters: the referral policy's filter per role, directory parts."""

from __future__ import annotations

from referral.domain.lifecycle import Side
from referral.domain.visibility import ReferralFacts, ReferralScopePolicy, is_informed_only, sides
from services.referral.tests.unit.fakes import repo_config, user

POLICY = ReferralScopePolicy.from_config(repo_config())
NTK = POLICY.need_to_know
SENT = ReferralFacts("AL", "state-police", "shelter-ura-e-re", "requested", frozenset({"child-protection"}))


def test_filters_per_role() -> None:
    assert POLICY.read_filter(user("al-case-manager")) == {"owner_country": "AL"}
    assert POLICY.read_filter(user("al-shelter")) == {
        "owner_country": "AL",
        # Not "assigned to me" nor "my agency's": only what is addressed to its agency, once sent.
        "$or": [{"provider_agency": "shelter-ura-e-re", "status": {"$ne": "proposed"}}],
    }
    assert POLICY.read_filter(user("al-analyst")) is None
    assert POLICY.read_filter(user("al-auditor")) is None
    unit = POLICY.read_filter(user("al-child-protection"))
    assert unit is not None and {"informed_agencies": "child-protection"} in unit["$or"]


def test_who_plays_which_side() -> None:
    assert sides(user("al-police"), SENT, NTK) == {Side.REFERRER}
    assert sides(user("al-case-manager"), SENT, NTK) == {Side.REFERRER}
    assert sides(user("al-shelter"), SENT, NTK) == {Side.PROVIDER}
    assert sides(user("xk-shelter"), SENT, NTK) == set()  # same agency code, another country
    assert sides(user("al-ngo-outreach"), SENT, NTK) == set()
    assert is_informed_only(user("al-child-protection"), SENT, NTK)
    assert not is_informed_only(user("al-shelter"), SENT, NTK)


def test_only_referrers_create_referrals() -> None:
    assert POLICY.may_create(user("al-ngo-outreach"))
    assert not POLICY.may_create(user("al-shelter"))
    assert not POLICY.may_create(user("al-analyst"))
