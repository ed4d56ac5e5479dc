"""The referral catalogue as data: what the packaged files hold, that every label exists in every language the
partner countries work in, and that a broken file stops the service from starting, naming file and pointer."""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import pytest
import yaml

import thb_contracts
from referral.domain.catalogue import FILES, ReferralCatalogue
from referral.domain.errors import CatalogueError, DomainError
from referral.service_layer.catalogue import catalogue_view
from services.referral.tests.unit.fakes import packaged_catalogue, repo_config

LANGUAGES = repo_config().label_languages
PARTNERS = repo_config().country_codes


def documents() -> dict[str, Any]:
    folder = resources.files("referral.catalogue")
    return {
        name: yaml.safe_load(folder.joinpath(f"{name}.yaml").read_text(encoding="utf-8")) for name in FILES
    }


def load(docs: dict[str, Any], countries: Any = PARTNERS) -> ReferralCatalogue:
    return ReferralCatalogue.from_documents(docs, languages=LANGUAGES, countries=countries)


def test_required_languages_are_the_partner_countries_languages() -> None:
    assert set(LANGUAGES) == {"en", "sq", "sr-Latn", "sr-Cyrl", "cnr-Latn", "cnr-Cyrl"}


def test_the_packaged_catalogue_has_the_services_the_issue_names() -> None:
    catalogue = packaged_catalogue()
    assert {
        "shelter",
        "child_shelter",
        "emergency_accommodation",
        "medical",
        "psycho_social",
        "legal_aid",
        "education",
        "vocational_training_and_employment",
        "interpreter",
        "cultural_mediator",
        "guardian",
        "family_support",
        "reintegration_support",
    } <= set(catalogue.service_types)
    assert catalogue.service_types["shelter"].capacity and not catalogue.service_types["medical"].capacity
    assert catalogue.service_types["child_shelter"].for_groups == {"child"}


def test_every_label_is_in_every_language_and_marked_unreviewed() -> None:
    catalogue = packaged_catalogue()
    items = [
        *catalogue.service_types.values(),
        *catalogue.field_sets.values(),
        *catalogue.capacity_groups.values(),
        *(r for codes in catalogue.reasons.values() for r in codes.values()),
        *(m for entries in catalogue.municipalities.values() for m in entries.values()),
    ]
    for item in items:
        assert set(LANGUAGES) <= set(item.labels), item.code
        assert item.reviewed is False


def test_cyrillic_labels_are_transliterated_from_the_latin_ones() -> None:
    catalogue = packaged_catalogue()
    assert catalogue.service_types["shelter"].label("sr-Cyrl") == "Склониште"
    assert catalogue.municipalities["XK"]["XK-PEJ"].label("sr-Cyrl") == "Пећ"
    assert catalogue.service_types["shelter"].label("mk") == "Shelter"  # no Macedonian yet: English


def test_needs_that_propose_services_are_identification_codes() -> None:
    contract = yaml.safe_load(thb_contracts.contract("identification").read_text(encoding="utf-8"))
    needs = set(contract["components"]["schemas"]["IdentificationNeed"]["enum"])
    catalogue = packaged_catalogue()
    for kind in catalogue.service_types.values():
        assert kind.from_needs <= needs, kind.code
    # Every immediate need identification records has a service type to propose.
    assert {n for n in needs if not catalogue.service_types_for_need(n)} == set()


def test_every_partner_country_has_rules_and_a_starting_list_of_municipalities() -> None:
    catalogue = packaged_catalogue()
    for country in PARTNERS:
        assert catalogue.country(country).child_legal_bases
        assert len(catalogue.municipalities[country]) >= 3
    assert catalogue.child_protection_unit("AL", "AL-TIR") == "child-protection"
    assert catalogue.child_protection_unit("AL", None) == "al-state-agency-child-rights"
    assert catalogue.guardianship_authority("XK", "XK-PRZ") == "xk-csw-prizren"


def test_unknown_codes_in_a_request_are_422_with_a_pointer() -> None:
    catalogue = packaged_catalogue()
    with pytest.raises(DomainError) as error:
        catalogue.service_type("spa")
    assert error.value.codes == {("unknown_service_type", "/service_type")}
    with pytest.raises(DomainError) as error:
        catalogue.reason("decline", "too_busy")
    assert error.value.codes == {("unknown_reason", "/reason")}
    with pytest.raises(DomainError) as error:
        catalogue.reason("decline", None)
    assert error.value.codes == {("reason_required", "/reason")}


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (
            lambda d: d["field-sets"]["sets"]["identity"]["fields"].append("religion"),
            "field-sets: /sets/identity/fields: unknown field 'religion'",
        ),
        (
            lambda d: d["service-types"]["service_types"]["shelter"]["field_sets"]["default"].append(
                "documents"
            ),
            "service-types: /service_types/shelter/field_sets/default: 'documents' is not allowed",
        ),
        (
            lambda d: d["service-types"]["service_types"]["medical"]["labels"].pop("sq"),
            "service-types: /service_types/medical/labels: labels missing in sq",
        ),
        (
            lambda d: d["reasons"]["decline"]["other"]["labels"].pop("sr-Latn"),
            "reasons: /decline/other/labels: labels missing in sr-Latn, sr-Cyrl",
        ),
        (
            lambda d: d["countries"]["countries"].pop("ME"),
            "countries: /countries: the partner country ME has no rules",
        ),
        (
            lambda d: d["countries"]["countries"]["AL"].update(timezone="Europe/Atlantis"),
            "countries: /countries/AL/timezone: unknown time zone",
        ),
        (
            lambda d: d["countries"]["countries"]["XK"]["guardianship"].update(service_type="shelter"),
            "countries: /countries/XK/guardianship/service_type: not a service type for children",
        ),
        (
            lambda d: d["service-types"]["service_types"]["shelter"].update(capacity="yes"),
            "service-types: /service_types/shelter/capacity: type failed",
        ),
        (
            lambda d: d["municipalities"]["AL"]["AL-TIR"].update(child_protection_unit="Not An Agency"),
            "municipalities: /AL/AL-TIR/child_protection_unit: pattern failed",
        ),
    ],
)
def test_a_broken_catalogue_refuses_to_load_naming_file_and_pointer(break_it: Any, message: str) -> None:
    docs = copy.deepcopy(documents())
    break_it(docs)
    with pytest.raises(CatalogueError) as error:
        load(docs)
    assert message in str(error.value)


def test_a_new_partner_country_needs_its_rules_before_start() -> None:
    with pytest.raises(CatalogueError, match="the partner country MK has no rules"):
        load(documents(), countries={*PARTNERS, "MK"})


def test_a_new_service_type_is_a_data_change_only() -> None:
    docs = copy.deepcopy(documents())
    docs["service-types"]["service_types"]["day_centre"] = {
        "labels": {
            "en": "Day centre",
            "sq": "Qendër ditore",
            "sr-Latn": "Dnevni centar",
            "cnr-Latn": "Dnevni centar",
        },
        "reviewed": False,
        "capacity": True,
        "for": ["child"],
        "from_needs": ["education"],
        "field_sets": {"allowed": ["identity"], "default": ["identity"]},
        "deadlines": "standard",
    }
    catalogue = load(docs)
    assert catalogue.service_type("day_centre").labels["cnr-Cyrl"] == "Дневни центар"
    assert "day_centre" in catalogue.service_types_for_need("education")


def test_the_catalogue_as_a_caller_reads_it_is_its_countrys() -> None:
    view = catalogue_view(packaged_catalogue(), "XK")
    shelter = next(kind for kind in view["service_types"] if kind["code"] == "shelter")
    assert shelter["capacity"] is True and shelter["for_groups"] == ["adult"]
    assert set(shelter["default_field_sets"]) <= set(shelter["allowed_field_sets"])
    assert {"en", "sq", "sr-Latn", "sr-Cyrl"} <= set(shelter["labels"]) and shelter["reviewed"] is False
    assert {m["code"][:3] for m in view["municipalities"]} == {"XK-"}  # its own municipalities only
    assert "decline" in view["reasons"] and all(r["labels"] for r in view["reasons"]["decline"])
    assert view["legal_bases"], "a child's referral needs a legal basis the country knows"
