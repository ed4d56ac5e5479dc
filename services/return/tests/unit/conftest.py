"""Fixtures for the return domain tests: the packaged catalogue under the checkout's platform configuration, a
fixed clock time, and builders for the bodies a case manager, a panel and a coordinator send.

The package folder is `services/return`, and `return` is a Python keyword, so test modules cannot import helpers
from a sibling module: everything shared is a fixture here (`build` hands out the builders)."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from importlib import resources
from typing import Any

import pytest
import yaml

from plumbing.fake_store import checkout_config
from voluntary_return.domain.best_interests import Determination, parse_determination
from voluntary_return.domain.case import ReturnCase
from voluntary_return.domain.catalogue import FILES, ReturnCatalogue
from voluntary_return.domain.consent import Consent, parse_consent
from voluntary_return.domain.lifecycle import Status
from voluntary_return.domain.plan import ReturnPlan, parse_plan
from voluntary_return.domain.subject import Subject

# A Monday, 09:30 UTC (10:30 in Pristina and Podgorica).
NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
TODAY = NOW.date()
CASE_MANAGER = "xk-case-manager"
COORDINATOR = frozenset({"coordinator"})

CHILD = Subject("child", age_uncertain=False)
ADULT = Subject("adult", age_uncertain=False)
# Recorded as adult (looks adult), but an age determination is pending: a presumed child.
LOOKS_ADULT_AGE_UNCERTAIN = Subject("adult", age_uncertain=True)


def catalogue_documents() -> dict[str, Any]:
    folder = resources.files("voluntary_return.catalogue")
    return {
        name: yaml.safe_load(folder.joinpath(f"{name}.yaml").read_text(encoding="utf-8")) for name in FILES
    }


_DOCUMENTS = catalogue_documents()
_CONFIG = checkout_config()
LANGUAGES = tuple(_CONFIG.label_languages)
PARTNERS = frozenset(_CONFIG.country_codes)
PACKAGED = ReturnCatalogue.from_documents(_DOCUMENTS, languages=LANGUAGES, countries=PARTNERS)


class Builders:
    """Valid bodies (a case in the first XK-ME story: identified in Kosovo, returning to Montenegro) that a test
    changes in one place to see one rule at work, and the parsed values built from them."""

    now = NOW
    today = TODAY
    catalogue = PACKAGED
    languages = LANGUAGES
    partners = PARTNERS
    child = CHILD
    adult = ADULT
    looks_adult_age_uncertain = LOOKS_ADULT_AGE_UNCERTAIN
    coordinator = COORDINATOR

    @staticmethod
    def documents() -> dict[str, Any]:
        """A fresh copy of the packaged catalogue files, to break."""
        return copy.deepcopy(_DOCUMENTS)

    @staticmethod
    def load(documents: dict[str, Any], countries: Any = PARTNERS) -> ReturnCatalogue:
        return ReturnCatalogue.from_documents(documents, languages=LANGUAGES, countries=countries)

    # ------------------------------------------------------------------------------------------- bodies

    @staticmethod
    def consent_body(**changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "topics": [
                "voluntary_nature",
                "right_to_withdraw",
                "data_shared_with_other_country",
                "risks_on_return",
            ],
            "language": "sqi",
            "interpreter": False,
            "given_on": "2026-05-28",
        }
        body.update(changes)
        return body

    @staticmethod
    def family_assessment_body(**changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "received_on": "2026-05-20",
            "outcome": "family_can_care_with_support",
            "from_country": "ME",
            "agency": "me-csw-podgorica",
        }
        body.update(changes)
        return body

    @staticmethod
    def assessment_body(**changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "assessed_on": "2026-05-25",
            "assessed_by": "BIA officer",
            "agency": "xk-csw-prizren",
        }
        body.update(changes)
        return body

    @staticmethod
    def close_reason() -> str:
        return "reintegration_completed"

    @staticmethod
    def determination_body(**changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "decided_on": "2026-05-29",
            "members": [
                {"role": "legal_guardian", "agency": "me-csw-podgorica"},
                {"role": "social_worker", "agency": "xk-csw-prizren"},
                {"role": "psychologist"},
            ],
            "decision": "return",
            "solution": "return_to_family",
            "reasons": {"language": "en", "text": "The family assessment supports return with services."},
            "child_views": {
                "method": "interview_with_guardian",
                "language": "sq",
                "text": "Dëshiron të kthehet te gjyshja.",
            },
            "alternatives_considered": ["return_to_family", "local_integration"],
        }
        body.update(changes)
        return body

    @staticmethod
    def plan_body(**changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "travel_documents": [
                {"type": "emergency_travel_document", "status": "ready"},
                {"type": "birth_certificate", "status": "ready"},
            ],
            "travel_date": "2026-06-10",
            "route": {"origin": "XK", "destination": "ME", "transit": []},
            "escort": {"role": "social_worker", "agency": "xk-csw-prizren"},
            "special_needs": ["interpreter_during_travel"],
            "fit_to_travel": True,
            "reception": {"agency": "me-csw-podgorica", "services": ["child_shelter", "psycho_social"]},
        }
        body.update(changes)
        return body

    # ------------------------------------------------------------------------------------- parsed values

    def consent(self, **changes: Any) -> Consent:
        return parse_consent(
            self.consent_body(**changes), recorded_by=CASE_MANAGER, now=NOW, catalogue=PACKAGED
        )

    def determination(self, **changes: Any) -> Determination:
        return parse_determination(
            self.determination_body(**changes), recorded_by=CASE_MANAGER, now=NOW, catalogue=PACKAGED
        )

    def refusing_determination(self) -> Determination:
        """A panel's decision for another durable solution (local integration)."""
        return self.determination(decision="other_durable_solution", solution="local_integration")

    def plan(self, *, child: bool = True, **changes: Any) -> ReturnPlan:
        return parse_plan(self.plan_body(**changes), child=child, now=NOW, catalogue=PACKAGED)

    @staticmethod
    def case(
        status: Status = Status.DECIDED,
        subject: Subject = CHILD,
        *,
        consent: Consent | None = None,
        determination: Determination | None = None,
    ) -> ReturnCase:
        return ReturnCase(status, subject, consent, determination)


@pytest.fixture(scope="session")
def build() -> Builders:
    return Builders()


@pytest.fixture(scope="session")
def catalogue() -> ReturnCatalogue:
    return PACKAGED


@pytest.fixture
def today() -> date:
    return TODAY


# ------------------------------------------------------------------------------------ the service layer


class World:
    """The service layer on fakes: plumbing's in-memory store under need-to-know, a real sealer under in-memory
    keys, a fixed clock, an access-log recorder, callers like the local realm's demo users and, when a test
    sets it, a fake of identification read on the caller's behalf."""

    def __init__(self) -> None:
        from types import MappingProxyType

        from plumbing.clock import FixedClock
        from plumbing.crypto import FieldCipher
        from plumbing.fake_store import FakeStore
        from plumbing.keys import KeySet, required_rings, with_new_key
        from voluntary_return.adapters.sealing import CaseSealer
        from voluntary_return.service_layer.deps import Deps

        keys = KeySet(rings=MappingProxyType({}))
        for ring in required_rings(_CONFIG.countries.values()):
            keys, _ = with_new_key(keys, ring)
        self.clock = FixedClock(NOW)
        self.store = FakeStore(_CONFIG)
        self.reads: list[tuple[str, str, tuple[str, ...]]] = []
        self.deps = Deps(
            clock=self.clock,
            config=_CONFIG,
            catalogue=PACKAGED,
            sealer=CaseSealer(FieldCipher.from_config(keys, _CONFIG)),
            repository=self.store.repositories(self.clock),
            system_repository=self.store.system_repositories(self.clock),
            record_read=lambda caller, kind, ids: self.reads.append((caller.sub, kind, tuple(ids))),
            new_event=self.new_event,
            statistics_source=self.statistics_source,
        )

    def statistics_source(self, country: str | None) -> list[Any]:
        from voluntary_return.adapters.documents import ReturnCaseDocument

        return [
            d for d in self.store.all(ReturnCaseDocument) if country is None or d.owner_country == country
        ]

    def new_event(self, event_type: str, aggregate_id: str, data: Any) -> dict[str, Any]:
        """`Deps.new_event` as bootstrap wires it (plumbing.events.new_event: the payload checked against its
        schema in openapi/events, source /return, this world's clock), after the service's own list of members
        (domain/events.PAYLOAD_FIELDS)."""
        from plumbing.events import new_event
        from voluntary_return.domain.events import check_payload
        from voluntary_return.service_layer.deps import SOURCE

        check_payload(event_type, data)
        return new_event(event_type, aggregate_id, dict(data), SOURCE, clock=self.clock.now)

    USERS = {
        "xk-case-manager": ("XK", "social-services", "case-manager"),
        "xk-coordinator": ("XK", "coordinator-office", "coordinator"),
        "xk-social-worker": ("XK", "social-services", "social-worker"),
        "xk-bid-panel": ("XK", "child-protection", "bid-panel-member"),
        "xk-police": ("XK", "state-police", "police-officer"),
        "me-coordinator": ("ME", "coordinator-office", "coordinator"),
        "al-analyst": ("AL", "coordinator-office", "analyst"),
        "xk-dpo": ("XK", "coordinator-office", "data-protection-officer"),
        "me-dpo": ("ME", "coordinator-office", "data-protection-officer"),
    }

    def user(self, username: str) -> Any:
        from plumbing.auth import Caller

        country, agency, role = self.USERS[username]
        return Caller(
            sub=f"sub-{username}",
            azp="thb-test",
            country=country,
            agency=agency,
            roles=frozenset({role}),
            acting_user=None,
            is_machine=False,
            token="not-a-token",
        )


@pytest.fixture
def world() -> World:
    return World()
