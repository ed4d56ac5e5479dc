"""Fixtures for the exchange tests: a shared deployment of fakes (tests/unit/fakes.py) and form bodies."""

from __future__ import annotations

from typing import Any

import pytest

from services.exchange.tests.unit.fakes import World, build_world

CHILD = {
    "age_group": "child",
    "child_views": {"heard": True, "position": "agrees", "recorded_on": "2026-05-30"},
}
ADULT = {"age_group": "adult", "consent": {"given": True, "recorded_on": "2026-05-30"}}
BASIS = "protection-of-vital-interests"


def notification_content(given: str = "Arta", surname: str = "Krasniqi") -> dict[str, Any]:
    return {
        "person": {
            "given_names": [given],
            "surnames": [surname],
            "date_of_birth": "2013",
            "sex": "female",
            "nationalities": ["ME"],
        },
        "category": "potential-victim",
        "forms_of_exploitation": ["forced-begging", "forced-marriage"],
        "links": ["national"],
        "unaccompanied": True,
        "identified_on": "2026-05-28",
        "immediate_needs": ["shelter", "guardian"],
        "placement": "state-shelter",
    }


def notification(
    recipient: str = "ME", subject: dict[str, Any] | None = None, **content: Any
) -> dict[str, Any]:
    return {
        "form_type": "notification",
        "recipient": recipient,
        "legal_basis": BASIS,
        "subject": subject or CHILD,
        "content": {**notification_content(), **content},
    }


@pytest.fixture
def world() -> World:
    return build_world()
