"""Controlled vocabularies shared by the identification service.

Values are stable codes: they are stored, sent in events and used as statistics dimensions, so a value is never
renamed; a retired value stays in the enum so old records still load.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    # Only a formal identification decision sets VICTIM; screening stops at POTENTIAL_VICTIM.
    VICTIM = "victim"
    POTENTIAL_VICTIM = "potential_victim"
    PERSON_AT_RISK = "person_at_risk"
    NO_INDICATION = "no_indication"


class FormOfExploitation(StrEnum):
    SEXUAL = "sexual"
    LABOUR = "labour"
    FORCED_BEGGING = "forced_begging"
    FORCED_CRIMINALITY = "forced_criminality"
    FORCED_MARRIAGE = "forced_marriage"
    DOMESTIC_SERVITUDE = "domestic_servitude"
    OTHER = "other"


class AgeGroup(StrEnum):
    ADULT = "adult"
    CHILD = "child"


class Element(StrEnum):
    DECEPTIVE_RECRUITMENT = "deceptive_recruitment"
    COERCIVE_RECRUITMENT = "coercive_recruitment"
    RECRUITMENT_ABUSE_OF_VULNERABILITY = "recruitment_abuse_of_vulnerability"
    EXPLOITATIVE_CONDITIONS = "exploitative_conditions"
    COERCION_AT_DESTINATION = "coercion_at_destination"
    ABUSE_OF_VULNERABILITY_AT_DESTINATION = "abuse_of_vulnerability_at_destination"


class Group(StrEnum):
    RECRUITMENT = "recruitment"
    EXPLOITATION = "exploitation"
    MEANS = "means"


ELEMENT_GROUP: dict[Element, Group] = {
    Element.DECEPTIVE_RECRUITMENT: Group.RECRUITMENT,
    Element.COERCIVE_RECRUITMENT: Group.RECRUITMENT,
    Element.RECRUITMENT_ABUSE_OF_VULNERABILITY: Group.RECRUITMENT,
    Element.EXPLOITATIVE_CONDITIONS: Group.EXPLOITATION,
    Element.COERCION_AT_DESTINATION: Group.MEANS,
    Element.ABUSE_OF_VULNERABILITY_AT_DESTINATION: Group.MEANS,
}


class Strength(StrEnum):
    STRONG = "strong"
    MEDIUM = "medium"
    WEAK = "weak"


class VulnerabilityFlag(StrEnum):
    CHILD_ON_THE_MOVE = "child_on_the_move"
    UNACCOMPANIED = "unaccompanied"
    SEPARATED = "separated"
    BEGGING = "begging"
    LIVING_ON_STREET = "living_on_street"


class Need(StrEnum):
    SAFETY = "safety"
    SHELTER = "shelter"
    MEDICAL = "medical"
    PSYCHOLOGICAL = "psychological"
    INTERPRETER = "interpreter"
    CULTURAL_MEDIATOR = "cultural_mediator"
    GUARDIAN = "guardian"
    LEGAL_AID = "legal_aid"
    FOOD_AND_CLOTHING = "food_and_clothing"
    DOCUMENTS = "documents"
    FAMILY_TRACING = "family_tracing"
    EDUCATION = "education"
    EMPLOYMENT = "employment"
    FINANCIAL = "financial"


class ClosureReason(StrEnum):
    REINTEGRATION_COMPLETED = "reintegration_completed"
    RETURNED_TO_ORIGIN = "returned_to_origin"
    DURABLE_SOLUTION_IN_HOST_COUNTRY = "durable_solution_in_host_country"
    RESETTLED_THIRD_COUNTRY = "resettled_third_country"
    TRANSFERRED_TO_OTHER_COUNTRY = "transferred_to_other_country"
    NOT_IDENTIFIED = "not_identified"
    ASSISTANCE_DECLINED = "assistance_declined"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    LOST_CONTACT = "lost_contact"
    DECEASED = "deceased"
    DUPLICATE_RECORD = "duplicate_record"
    OTHER = "other"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"
