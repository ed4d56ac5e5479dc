"""The return catalogue as data: what the packaged files hold, labels in every language the partner countries
work in (Cyrillic derived from Latin), and that a broken file or reference stops the service from starting,
naming file and pointer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from voluntary_return.domain.catalogue import ReturnCatalogue
from voluntary_return.domain.errors import CatalogueError, DomainError

REFERRAL_SERVICE_TYPES = (
    Path(__file__).resolve().parents[3] / "referral" / "src" / "referral" / "catalogue" / "service-types.yaml"
)


def test_required_languages_are_the_partner_countries_languages(build: Any) -> None:
    assert set(build.languages) == {"en", "sq", "sr-Latn", "sr-Cyrl", "cnr-Latn", "cnr-Cyrl"}


def test_the_packaged_catalogue_loads_with_what_the_rules_need(catalogue: ReturnCatalogue) -> None:
    assert {"consent_withdrawn", "other_durable_solution"} <= set(catalogue.reasons["stop"])
    assert {"reintegration_completed", "lost_contact"} <= set(catalogue.reasons["close"])
    assert catalogue.panel_rule.min_members == 3
    assert catalogue.panel_rule.at_least_one_of == {"legal_guardian", "child_protection_officer"}
    assert {"local_integration", "third_country_resettlement"} <= catalogue.other_solutions
    assert "return_to_family" in catalogue.return_solutions
    assert catalogue.required_topics == {
        "voluntary_nature",
        "right_to_withdraw",
        "data_shared_with_other_country",
    }
    assert {"AL", "XK", "ME", "RS", "NO"} <= catalogue.countries
    assert catalogue.partners == {"AL", "XK", "ME"}


def test_every_label_is_in_every_language_and_marked_unreviewed(catalogue: ReturnCatalogue) -> None:
    items = [
        *(r for codes in catalogue.reasons.values() for r in codes.values()),
        *catalogue.consent_topics.values(),
        *catalogue.panel_roles.values(),
        *catalogue.family_assessment_outcomes.values(),
        *catalogue.durable_solutions.values(),
        *catalogue.hearing_methods.values(),
        *catalogue.document_types.values(),
        *catalogue.escort_roles.values(),
        *catalogue.special_needs.values(),
    ]
    for item in items:
        assert set(catalogue.languages) <= set(item.labels), item.code
        assert item.reviewed is False, item.code


def test_cyrillic_labels_are_transliterated_from_the_latin_ones(catalogue: ReturnCatalogue) -> None:
    assert catalogue.reasons["stop"]["consent_withdrawn"].label("sr-Cyrl") == "Сагласност повучена"
    assert catalogue.panel_roles["legal_guardian"].label("cnr-Cyrl") == "Законски старатељ"
    assert catalogue.reasons["stop"]["other"].label("mk") == "Other"  # no Macedonian yet: English


def test_reception_services_are_referral_service_types(catalogue: ReturnCatalogue) -> None:
    referral = yaml.safe_load(REFERRAL_SERVICE_TYPES.read_text(encoding="utf-8"))
    assert catalogue.reception_services <= set(referral["service_types"])
    assert {
        "shelter",
        "child_shelter",
        "psycho_social",
        "reintegration_support",
    } <= catalogue.reception_services


def test_reasons_are_looked_up_by_list(catalogue: ReturnCatalogue) -> None:
    assert catalogue.reason("stop", "risk_on_return").label("sq") == "Rrezik shumë i lartë në rast kthimi"
    with pytest.raises(DomainError) as error:
        catalogue.reason("close", "risk_on_return")
    assert error.value.codes == {("unknown_reason", "/reason")}


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (
            lambda d: d["best-interests"]["panel_rule"]["at_least_one_of"].append("family_friend"),
            "best-interests: /panel_rule/at_least_one_of: unknown panel role 'family_friend'",
        ),
        (
            lambda d: d["reasons"]["stop"].pop("consent_withdrawn"),
            "reasons: /stop: the stop reason 'consent_withdrawn' is required",
        ),
        (
            lambda d: d["reasons"]["stop"].pop("other_durable_solution"),
            "reasons: /stop: the stop reason 'other_durable_solution' is required",
        ),
        (
            lambda d: d["plan"]["special_needs"]["medical_escort"]["labels"].pop("sq"),
            "plan: /special_needs/medical_escort/labels: labels missing in sq",
        ),
        (
            lambda d: d["reasons"]["close"]["other"]["labels"].pop("cnr-Latn"),
            "reasons: /close/other/labels: labels missing in cnr-Latn, cnr-Cyrl",
        ),
        (
            lambda d: [s.update({"return": True}) for s in d["best-interests"]["durable_solutions"].values()],
            "best-interests: /durable_solutions: no solution other than return",
        ),
        (
            lambda d: d["countries"]["countries"].remove("XK"),
            "countries: /countries: the partner country XK is not a known country code",
        ),
        (
            lambda d: d["plan"].update(diagnoses={"ptsd": {"labels": {"en": "PTSD"}, "reviewed": False}}),
            "plan: /: additionalProperties failed",
        ),
        (
            lambda d: d["deadlines"]["reintegration"].update(plan_within_days=0),
            "deadlines: /reintegration/plan_within_days: minimum failed",
        ),
    ],
)
def test_a_broken_catalogue_refuses_to_load(build: Any, break_it: Any, message: str) -> None:
    documents = build.documents()
    break_it(documents)
    with pytest.raises(CatalogueError) as error:
        build.load(documents)
    assert message in str(error.value)


def test_a_new_partner_country_must_be_a_known_country(build: Any) -> None:
    assert "MK" in build.load(build.documents(), countries={"AL", "XK", "ME", "MK"}).partners
    with pytest.raises(CatalogueError, match="the partner country QQ is not a known country code"):
        build.load(build.documents(), countries={"AL", "QQ"})
