"""A country's own identification records, read on behalf of the current user (plumbing.on_behalf).

Exchange pre-fills forms from an identification case, referral copies case fields into a referral and return
takes a person's age facts from it: each reads the case, and that case's person, with the user's own token
exchanged for one whose only audience is identification. Identification then applies her own scope (a case she
may not see is 404, as for her directly) and its access log names her and the calling service. Only reads: no
service writes to identification this way. The services map what they read into their own terms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plumbing.config import Settings
from plumbing.on_behalf import OnBehalfClient

TARGET = "identification"


class IdentificationRecords:
    def __init__(self, client: OnBehalfClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentificationRecords:
        """Refuses to start (ConfigError) without OIDC_ISSUER, OIDC_CLIENT_SECRET and THB_UPSTREAM_IDENTIFICATION."""
        return cls(OnBehalfClient.from_settings(settings, targets=(TARGET,)))

    @classmethod
    def where_deployed(cls, settings: Settings) -> IdentificationRecords | None:
        """None where the deployment has no identification service (no THB_UPSTREAM_IDENTIFICATION), for the
        services that work without it; otherwise as `from_settings`."""
        return cls.from_settings(settings) if TARGET in settings.upstreams else None

    # `purpose`: the X-Purpose sent to identification; by default the current request's (an operation that
    # answers no personal data itself, such as drafting a correction from identification, names it).
    def case(self, case_id: str, *, purpose: str | None = None) -> Mapping[str, Any]:
        return dict(self.client.get(TARGET, f"/v1/identification/cases/{case_id}", purpose=purpose))

    def person(self, person_id: str, *, purpose: str | None = None) -> Mapping[str, Any]:
        return dict(self.client.get(TARGET, f"/v1/identification/persons/{person_id}", purpose=purpose))

    def case_and_person(self, case_id: str) -> dict[str, Mapping[str, Any]]:
        case = self.case(case_id)
        person_id = case.get("person_id")
        return {"case": case, "person": self.person(str(person_id)) if person_id else {}}

    def close(self) -> None:
        self.client.close()
