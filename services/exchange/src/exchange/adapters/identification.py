"""The country's own identification API, read on behalf of the current user (plumbing.on_behalf).

Her token is exchanged at Keycloak for one whose only audience is identification, so identification applies her
own scope (a case she may not see is 404, as for her directly) and its access log names her and `exchange-api`.
Only reads; the exchange never writes to identification.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plumbing.config import Settings
from plumbing.on_behalf import OnBehalfClient

TARGET = "identification"


class OnBehalfIdentification:
    def __init__(self, client: OnBehalfClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> OnBehalfIdentification:
        """Refuses to start (ConfigError) without OIDC_ISSUER, OIDC_CLIENT_SECRET and THB_UPSTREAM_IDENTIFICATION."""
        return cls(OnBehalfClient.from_settings(settings, targets=(TARGET,)))

    def case(self, case_id: str) -> Mapping[str, Any]:
        return dict(self.client.get(TARGET, f"/v1/identification/cases/{case_id}"))

    def person(self, person_id: str) -> Mapping[str, Any]:
        return dict(self.client.get(TARGET, f"/v1/identification/persons/{person_id}"))

    def close(self) -> None:
        self.client.close()
