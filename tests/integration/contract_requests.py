"""Valid requests for the contracts' operations, shared by the suites that call every operation: the generated
scope test, the contract-enum test and the hostile-input suite. Bodies are minimal and valid; `{case_id}`-style
placeholders take the id of a record the suite created, `{unique}` a number unique within the run."""

from __future__ import annotations

import time
from typing import Any

from plumbing.openapi_bundle import follow_ref

ID = "/v1/identification"
SEED_SURNAME = "Scopeseed"
SEED_AGENCIES = {"police": "state-police", "labour": "labour-inspectorate"}
ADULT_LABOUR = [
    {"list_id": "A-LAB", "indicator_id": "A-LAB-DR-01"},
    {"list_id": "A-LAB", "indicator_id": "A-LAB-EX-01"},
    {"list_id": "A-LAB", "indicator_id": "A-LAB-CD-01"},
]
# The record kind a path parameter (or a body field) names.
PATH_KINDS = {
    "person_id": "person",
    "case_id": "case",
    "screening_id": "screening",
    "notification_id": "notification",
    "request_id": "access_request",
    "provider_id": "provider",
    "referral_id": "referral",
}
X = "exchange.entrypoints.http."
# Exchange paths name the caller's country's case record and one of its forms; which form depends on what the
# operation does to it (a draft is sent or discarded, a received form acknowledged, a sent one read or withdrawn).
SERVICE_PATH_KINDS = {
    "exchange": {"case_id": "exchange_case", "form_id": "exchange_form"},
    "return": {"case_id": "return_case"},  # a child's return case
}
RET = "voluntary_return.entrypoints.http."
OPERATION_PATH_KINDS = {
    # an adult's return case: consent is hers to give and withdraw
    f"{RET}record_consent": {"case_id": "return_adult_case"},
    f"{RET}withdraw_consent": {"case_id": "return_adult_case"},
    # a referral sent with its fields copied from the police officer's identification case (the seed's)
    "referral.entrypoints.http.refresh_case_fields": {"referral_id": "referral_sent"},
    f"{X}send_form": {"case_id": "exchange_draft_case", "form_id": "exchange_draft"},
    f"{X}discard_draft": {"case_id": "exchange_spare_case", "form_id": "exchange_spare"},
    f"{X}acknowledge_form": {"case_id": "exchange_received_case", "form_id": "exchange_received"},
}


def path_kinds(operation_id: str, service: str, path: str) -> dict[str, str]:
    """The record kind each path parameter of an operation names."""
    kinds = {
        **PATH_KINDS,
        **SERVICE_PATH_KINDS.get(service, {}),
        **OPERATION_PATH_KINDS.get(operation_id, {}),
    }
    return {name: kind for name, kind in kinds.items() if "{" + name + "}" in path}


# The year of the indicator-set versions each suite publishes (one platform serves all suites in a session).
PROBE_YEARS = {"scope": "2999", "enums": "2998", "hostile": "2997"}
LABEL_TAGS = ("en", "sq", "sr-Latn", "sr-Cyrl", "cnr-Latn", "cnr-Cyrl")
# Minimal valid bodies of the POST and PATCH operations; `{case_id}`-style placeholders take the probed record's id.
BODIES: dict[str, Any] = {
    "identification.entrypoints.http.register_person": {
        "given_names": ["Probe"],
        "surnames": [SEED_SURNAME],
        "date_of_birth": "1991",
    },
    "identification.entrypoints.http.create_duplicate_search": {"surnames": [SEED_SURNAME]},
    # The first probe of a person corrects it; the same correction again changes nothing and answers 200 without
    # a new version, so concurrent probes rarely meet a 412.
    "identification.entrypoints.http.correct_person": {"aliases": ["Probe"], "reason": "other"},
    "identification.entrypoints.http.create_case": {"person_id": "{person_id}"},
    # A restricted match of a seeded search ({search_id} and {restricted_case_id} come from the seed); decisions
    # refuse, so that no probe changes what another may read.
    "identification.entrypoints.http.create_access_request": {
        "search_id": "{search_id}",
        "case_id": "{restricted_case_id}",
        "reason": "other",
    },
    "identification.entrypoints.http.decide_access_request": {"granted": False, "reason": "other"},
    # A probed person is merged into its country's spare record ({spare_person_id}, seeded): 200 the first time,
    # 409 afterwards; the merges are undone last (LAST).
    "identification.entrypoints.http.merge_person": {
        "into_person_id": "{spare_person_id}",
        "reason": "other",
    },
    "identification.entrypoints.http.unmerge_person": {"reason": "other"},
    # An adult probe's consent is withdrawn once (200), then 409; it ends what rested on it, so it runs last (LAST).
    "identification.entrypoints.http.withdraw_consent": {"expressed": "in_person"},
    # A probe's restriction lists every purpose: it hides nothing from the probes that follow it.
    "identification.entrypoints.http.restrict_processing": {
        "purposes": [
            "case-management",
            "identification",
            "referral",
            "cross-border-exchange",
            "return",
            "statistics",
        ],
        "reason": "objection_pending",
    },
    "identification.entrypoints.http.decide_category": {"category": "potential_victim"},
    # Referral: a provider of its own per probe ({unique}); needs, proposals and withdrawals that name no record;
    # the seeded proposal of the probed country is requested to its seeded provider ({seed_provider_id}) and then
    # cancelled by the transition probes (LAST), so that each succeeds once.
    "referral.entrypoints.http.register_provider": {
        "agency_id": "probe-provider-{unique}",
        "name": "Probe provider",
        "kind": "ngo",
        "service_types": ["medical"],
        "municipalities": ["{seed_municipality}"],
        "accepts": {"children": True, "adults": True},
        "hours": {"always": True},
    },
    "referral.entrypoints.http.set_capacity": {"places": {"women": 3}},
    "referral.entrypoints.http.suggest_providers": {"service_type": "shelter", "age_group": "adult"},
    "referral.entrypoints.http.create_referral": {"service_type": "shelter"},
    "referral.entrypoints.http.request_referral": {
        "provider_id": "{seed_provider_id}",
        "age_group": "adult",
        "sex": "female",
        "consent": {"given": True},
        "case_fields": {"surnames": ["Probe"]},
    },
    "referral.entrypoints.http.transition_referral": {"action": "cancel", "reason": "other"},
    "referral.entrypoints.http.withdraw_consent": {"person_id": "00000000-0000-4000-8000-000000000001"},
    # Exchange: a notification of a child to the caller's next partner country ({partner}); each probe drafts
    # a case of its own. The seeded forms are sent, acknowledged, corrected and withdrawn (LAST) once each.
    f"{X}draft_form": {
        "form_type": "notification",
        "recipient": "{partner}",
        "legal_basis": "protection-of-vital-interests",
        "subject": {
            "age_group": "child",
            "child_views": {"heard": True, "position": "agrees", "recorded_on": "2026-05-30"},
        },
        "content": {
            "person": {
                "given_names": ["Probe"],
                "surnames": [SEED_SURNAME],
                "date_of_birth": "2013",
                "sex": "female",
            },
            "category": "potential-victim",
            "links": ["national"],
            "identified_on": "2026-05-28",
        },
    },
    f"{X}correct_form": {
        "content": {
            "person": {
                "given_names": ["Probe"],
                "surnames": [SEED_SURNAME],
                "date_of_birth": "2012",
                "sex": "female",
            },
            "category": "potential-victim",
            "links": ["national"],
            "identified_on": "2026-05-28",
        },
    },
    f"{X}withdraw_form": {"reason": "sent-in-error"},
    f"{X}notify_consent_withdrawn": {
        "scope": "cross-border-exchange",
        "effective_on": "2026-06-01",
        "legal_basis": "protection-of-vital-interests",
    },
    f"{X}link_identification_case": {"identification_case_id": "3f0c6a4e-9b1d-4c57-8f0e-2a6d9c1b7e55"},
    "identification.entrypoints.http.record_needs": {"needs": ["shelter"]},
    "identification.entrypoints.http.start_recovery_period": {},
    "identification.entrypoints.http.close_case": {"reason": "other"},
    "identification.entrypoints.http.create_screening": {
        "case_id": "{case_id}",
        "indicator_set_version": "2026.1",
        "kind": "first_contact",
    },
    "identification.entrypoints.http.acknowledge_notification": {},
    # A regional version only the probes publish, each probe its own version: each suite its own year
    # ({probe_year}, PROBE_YEARS) and a counter ({unique}), so that two suites never publish the same version.
    "identification.entrypoints.http.publish_indicator_set": {
        "set_id": "regional",
        "version": "{probe_year}.{unique}",
        "kind": "regional",
        "published_on": "2026-12-01",
        "title": {tag: {"text": "Scope probe", "reviewed": False} for tag in LABEL_TAGS},
        "lists": [
            {
                "id": "A-LAB",
                "age_group": "adult",
                "form": "labour",
                "title": {tag: {"text": "Probe list", "reviewed": False} for tag in LABEL_TAGS},
                "indicators": [
                    {
                        "id": "A-LAB-DR-01",
                        "element": "deceptive_recruitment",
                        "strength": "strong",
                        "effective_from": "2026-12-01",
                        "labels": {tag: {"text": "Probe indicator", "reviewed": False} for tag in LABEL_TAGS},
                    }
                ],
            }
        ],
    },
}
BODIES[f"{X}validate_form"] = BODIES[f"{X}draft_form"]
# Return: a child returning to the caller's next partner country ({partner}); records in the order a case takes
# them. A plan is approved only for a decided case and a determination only by the panel member assigned to it
# (NEVER_SUCCEED_HERE; tests/integration/test_return_api.py runs them).
RETURN_CONSENT = {
    "topics": ["voluntary_nature", "right_to_withdraw", "data_shared_with_other_country", "risks_on_return"],
    "language": "sqi",
    "interpreter": False,
    "given_on": "2026-12-01",
}
RETURN_DETERMINATION = {
    "decided_on": "2026-12-02",
    "members": [
        {"role": "legal_guardian", "agency": "child-protection"},
        {"role": "social_worker"},
        {"role": "psychologist"},
    ],
    "decision": "return",
    "solution": "return_to_family",
    "reasons": {"language": "en", "text": "The family assessment supports return with services."},
    "child_views": {"method": "interview_with_guardian", "language": "sq", "text": "Probe views."},
    "alternatives_considered": ["return_to_family", "local_integration"],
}
RETURN_PLAN = {
    "travel_documents": [{"type": "emergency_travel_document", "status": "ready"}],
    "travel_date": "2099-01-15",
    "route": {"origin": "AL", "destination": "ME", "transit": []},
    "escort": {"role": "social_worker", "agency": "social-services"},
    "special_needs": ["interpreter_during_travel"],
    "fit_to_travel": True,
    "reception": {"agency": "social-services", "services": ["child_shelter"]},
}
BODIES.update(
    {
        f"{RET}open_case": {"origin_country": "{partner}", "age_group": "child"},
        f"{RET}record_consent": RETURN_CONSENT,
        f"{RET}record_family_assessment": {
            "received_on": "2026-12-01",
            "outcome": "family_can_care_with_support",
            "from_country": "{partner}",
            "agency": "social-services",
        },
        f"{RET}record_best_interests_assessment": {
            "assessed_on": "2026-12-01",
            "assessed_by": "Probe officer",
            "agency": "child-protection",
        },
        f"{RET}assign_panel_member": {"member": "probe-panel-member"},
        f"{RET}record_determination": RETURN_DETERMINATION,
        f"{RET}approve_plan": RETURN_PLAN,
        f"{RET}transition_case": {"action": "start_assessment"},
    }
)
# Body fields that name a record (the scope of that record decides the answer, as for a path parameter).
BODY_REFERENCES = {
    "identification.entrypoints.http.create_case": "person_id",
    "identification.entrypoints.http.create_screening": "case_id",
}
# Query parameters the contracts require.
QUERIES: dict[str, dict[str, Any]] = {
    "identification.entrypoints.http.get_statistics": {
        "period": str(time.gmtime().tm_year),
        "rows": "category",
    },
    "referral.entrypoints.http.get_statistics": {"period": str(time.gmtime().tm_year)},
    "exchange.entrypoints.http.get_statistics": {"period": str(time.gmtime().tm_year)},
    "voluntary_return.entrypoints.http.get_statistics": {"period": str(time.gmtime().tm_year)},
    # The probed identification case (QUERY_REFERENCES): identification answers with the user's own scope.
    "exchange.entrypoints.http.prefill_form": {
        "form_type": "notification",
        "identification_case_id": "{case_id}",
    },
    # A person no service holds: each answers its (empty) section to its own country's DPO only; what a section
    # holds for a person of the country is tests/integration/test_platform_subject_access.py's.
    **{
        f"{package}.entrypoints.http.get_subject_access": {
            "person_id": "5e0c7f4a-2d3b-4c1e-9f6a-0000000000aa"
        }
        for package in ("identification", "referral", "exchange", "voluntary_return")
    },
}
# Query parameters that name a record, as BODY_REFERENCES (the key is the placeholder its QUERIES entry fills).
QUERY_REFERENCES = {"exchange.entrypoints.http.prefill_form": "case_id"}
FIXED_PATH_VALUES = {"set_id": "regional", "version": "2026.1"}


def purpose_for(url: str) -> str:
    """The X-Purpose a probe of `url` declares: each contract has its own purpose vocabulary."""
    if "/v1/exchange/" in url:
        return "cross-border-exchange"
    if "/v1/return/" in url:
        return "return"
    return "referral" if "/v1/referral/" in url else "identification"


# A municipality of each demo country (the referral catalogue's starting list), for bodies that name one.
SEED_MUNICIPALITY = {"AL": "AL-TIR", "XK": "XK-PRI", "ME": "ME-PG"}
# Operations whose answer to a role holder is decided by rules about other records (whose search it was, who is
# responsible for the case), not by the owner of the record named alone: any of 2xx, 403, 404, 409, 422.
RULE_DECIDED = {
    # Identification answers a pre-fill with the user's own identification scope (on her behalf).
    "exchange.entrypoints.http.prefill_form",
    "identification.entrypoints.http.create_access_request",
    "identification.entrypoints.http.decide_access_request",
    # Referral records are seen by the referring side, the provider addressed and the informed unit
    # (referral.domain.visibility), not by identification's need-to-know that `expected` models; other countries'
    # ids and owner countries in a body are still violations.
    "referral.entrypoints.http.get_provider",
    "referral.entrypoints.http.set_capacity",
    "referral.entrypoints.http.get_referral",
    "referral.entrypoints.http.request_referral",
    "referral.entrypoints.http.transition_referral",
    "referral.entrypoints.http.get_case_fields",
    "referral.entrypoints.http.refresh_case_fields",
}
# Closing a case makes later commands on it 409, a merge is undone only once it was made, and a seeded referral is
# answered only once it was requested: closures, undoing and referral transitions run after everything else.
LAST = {
    "identification.entrypoints.http.close_case",
    "identification.entrypoints.http.unmerge_person",
    "identification.entrypoints.http.withdraw_consent",  # ends the probed person's referrals and returns
    "identification.entrypoints.http.lift_restriction",  # lifts what the restriction probes set
    "referral.entrypoints.http.transition_referral",
    f"{X}withdraw_form",
    f"{RET}withdraw_consent",  # stops the adult's case: after every consent probe
}
# Operations that remove the record they name: once one probe removed it, the others find nothing (404).
REMOVES = {f"{X}discard_draft"}
# Operations no probe can bring to a 2xx, and why (the scope test still judges every refusal they answer).
NEVER_SUCCEED_HERE = {
    f"{X}send_reminder": "a reminder is for an overdue reply: tests/integration/test_exchange_api.py advances the clock",
    f"{RET}approve_plan": "a plan is approved for a decided case: tests/integration/test_return_api.py decides one",
    f"{RET}record_determination": (
        "a panel member reads only the cases assigned to her (the scope model assigns none): test_return_api.py"
    ),
}
# Complete bodies: every optional structure present, so that every enum a request may carry has a place in
# them (the contract-enum test fails when a contract adds an enum these bodies cannot hold).
FULL_BODIES: dict[str, Any] = {
    # Referral (the contract-enum test gives each value a fresh agency and records: {provider_unique},
    # {enum_provider_id}): a provider for children and adults of both sexes, open on weekdays.
    "referral.entrypoints.http.register_provider": {
        "agency_id": "enum-provider-{provider_unique}",
        "name": "Enum provider",
        "kind": "ngo",
        "service_types": ["medical", "shelter"],
        "languages": ["sqi"],
        "municipalities": ["AL-TIR"],
        "accepts": {"children": True, "adults": True, "families": True, "sexes": ["female", "male"]},
        "hours": {"weekly": [{"day": "mon", "from": "08:00", "to": "16:00"}]},
        "capacity": {"women": 2},
        "contacts": [
            {"name": "Duty officer", "role": "duty", "phone": "+355 4 000 000", "email": "duty@example.org"}
        ],
        "active": True,
    },
    "referral.entrypoints.http.suggest_providers": {
        "service_type": "medical",
        "age_group": "adult",
        "sex": "female",
        "languages": ["sqi"],
        "municipality": "AL-TIR",
        "family": False,
        "limit": 5,
    },
    "referral.entrypoints.http.request_referral": {
        "provider_id": "{enum_provider_id}",
        "service_type": "medical",
        "age_group": "adult",
        "sex": "female",
        "municipality": "AL-TIR",
        "family": False,
        "urgent": True,
        "languages": ["sqi"],
        "consent": {"given": True, "explained_in": "sqi", "interpreter": False},
        "legal_basis": "child-protection-duty",
        "field_sets": ["identity"],
        "case_fields": {"given_names": ["Enum"], "surnames": ["Probe"], "sex": "female"},
    },
    "referral.entrypoints.http.transition_referral": {"action": "cancel", "reason": "other"},
    # The contract-enum test merges its fresh person into another fresh one ({other_person_id}).
    "identification.entrypoints.http.merge_person": {
        "into_person_id": "{other_person_id}",
        "reason": "other",
    },
    "identification.entrypoints.http.register_person": {
        "given_names": ["Probe"],
        "surnames": ["Enumtest"],
        "aliases": ["Probi"],
        "sex": "female",
        "date_of_birth": "2009-04",
        "nationalities": ["AL"],
        "languages": ["sqi"],
        "residence_country": "AL",
        "documents": [{"type": "passport", "number": "X0000000", "issuing_country": "AL"}],
        "age_determinations": [
            {
                "decided_on": "2026-01-15",
                "method": "documents",
                "authority": "Probe authority",
                "result": "child",
                "assessed_birth_range": {"earliest": "2009", "latest": "2010"},
            }
        ],
        "unaccompanied_child": True,
        "duplicate_check": {"outcome": "new_person", "reason": "no_candidates"},
    },
    "identification.entrypoints.http.create_duplicate_search": {
        "given_names": ["Probe"],
        "surnames": ["Enumtest"],
        "sex": "female",
        "date_of_birth": "2009",
        "nationalities": ["AL"],
    },
    "identification.entrypoints.http.correct_person": {
        "reason": "document_seen",
        "given_names": ["Probe"],
        "surnames": ["Enumtest"],
        "aliases": ["Probi"],
        "sex": "male",
        "date_of_birth": "1990",
        "nationalities": ["AL"],
        "languages": ["sqi"],
        "residence_country": "AL",
        "documents": [{"type": "passport", "number": "X0000001", "issuing_country": "AL"}],
    },
    "identification.entrypoints.http.decide_category": {
        "category": "potential_victim",
        "screening_id": "{screening_id}",
        "reason_codes": ["indicators_present"],
        "forms_of_exploitation": ["labour"],
        "exploited_in": ["AL"],
    },
    "identification.entrypoints.http.record_needs": {
        "needs": ["interpreter"],
        "interpreter_languages": ["rmy"],
        "urgent": True,
    },
    "identification.entrypoints.http.close_case": {"reason": "other"},
    "identification.entrypoints.http.create_screening": {
        "case_id": "{case_id}",
        "indicator_set_version": "2026.1",
        "kind": "full",
        "screening_date": "2026-01-15",
        "answers": ADULT_LABOUR,
        "flags": ["begging"],
    },
    # Return (test_contract_enums.return_records makes the state each one needs).
    f"{RET}open_case": {"origin_country": "ME", "age_group": "child", "age_uncertain": False},
    f"{RET}record_determination": RETURN_DETERMINATION,
    f"{RET}approve_plan": RETURN_PLAN,
    f"{RET}transition_case": {"action": "stop", "reason": "other"},
}
# A demo user of a country (`<country>-<suffix>`) holding each realm role (realm/local-realm.json).
ROLE_USERS = {
    "case-manager": "case-manager",
    "coordinator": "coordinator",
    "contact-point": "contact-point",
    "police-officer": "police",
    "border-police": "border",
    "social-worker": "social-worker",
    "child-protection-worker": "child-protection",
    "ngo-outreach": "ngo-outreach",
    "labour-inspector": "labour",
    "service-provider": "shelter",
    "guardian": "guardian",
    "bid-panel-member": "bid-panel",
    "analyst": "analyst",
    "auditor": "auditor",
    "data-protection-officer": "dpo",
    "country-admin": "admin",
}


def user_for(roles: list[str] | None, country: str = "al", service: str | None = None) -> str:
    """A demo user allowed to call an operation with these x-roles (in ROLE_USERS order) whose agency reaches
    `service` (the realm gives each agency the audiences of the services it uses)."""
    from tests.integration.scope_helpers import demo_users  # it imports this module

    audiences = {user.username: user.audiences for user in demo_users()}
    for role in ROLE_USERS:
        username = f"{country}-{ROLE_USERS[role]}"
        if role in (roles or []) and (service is None or f"{service}-api" in audiences.get(username, ())):
            return username
    raise LookupError(f"no demo user holds any of {roles} and reaches {service}")


def resolve(document: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """`node` with every local `$ref` replaced by its target, recursively (the contracts have no cycles); one
    reference is followed by `plumbing.openapi_bundle.follow_ref`, as in the gateway and the tools."""
    if depth > 30:
        raise ValueError("$ref nesting too deep")
    if isinstance(node, dict):
        if "$ref" in node:
            return resolve(document, follow_ref(document, node), depth + 1)
        return {key: resolve(document, value, depth + 1) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(document, item, depth + 1) for item in node]
    return node
