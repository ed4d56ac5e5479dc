"""The country's own identification API, read on behalf of the referrer (plumbing.on_behalf).

Her token is exchanged at Keycloak for one whose only audience is identification, so identification applies her
own scope (a case she may not see is 404, as for her directly) and its access log names her and `referral-api`.
Referral only reads the case a referral names and that case's person, when the referral is sent or its copy
refreshed; it never writes to identification.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plumbing.config import Settings
from plumbing.on_behalf import OnBehalfClient

TARGET = "identification"


class OnBehalfCaseRecords:
    def __init__(self, client: OnBehalfClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> OnBehalfCaseRecords | None:
        """None where the deployment has no identification service (no THB_UPSTREAM_IDENTIFICATION): its
        referrers type the case fields in. Otherwise refuses to start (ConfigError) without OIDC_ISSUER and
        OIDC_CLIENT_SECRET."""
        if TARGET not in settings.upstreams:
            return None
        return cls(OnBehalfClient.from_settings(settings, targets=(TARGET,)))

    def case_and_person(self, case_id: str) -> dict[str, Mapping[str, Any]]:
        case = dict(self.client.get(TARGET, f"/v1/identification/cases/{case_id}"))
        person_id = case.get("person_id")
        person = self.client.get(TARGET, f"/v1/identification/persons/{person_id}") if person_id else {}
        return {"case": case, "person": dict(person)}

    def close(self) -> None:
        self.client.close()
