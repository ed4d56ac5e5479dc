"""Identification's statistics through the platform's suppression (plumbing.suppression, whose algorithm is tested
in libs/plumbing/tests/unit/test_suppression.py): a table the suppression refuses is still this service's
DomainError `statistics_table_invalid`, which the endpoint answers under `/query` like every rule of the request."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from identification.adapters import statistics_source
from identification.domain.errors import DomainError, ErrorDetail
from identification.service_layer import statistics
from plumbing.suppression import InvalidTable

DEPS = SimpleNamespace(config=SimpleNamespace(country_codes=frozenset({"AL", "XK", "ME"})))
ANALYST = SimpleNamespace(country="AL")
FACT = {"month": 2, "country": "AL", "category": "victim", "sex": "female", "agency": "police", "forms": []}


def test_a_table_the_suppression_refuses_is_a_domain_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise InvalidTable("labels do not match the counts")

    monkeypatch.setattr(statistics_source, "decision_facts", lambda start, end, country: [dict(FACT)])
    monkeypatch.setattr(statistics, "series_pattern", refuse)
    with pytest.raises(DomainError) as caught:
        statistics.table(DEPS, ANALYST, period="2026", rows="category", columns=None, scope="country")  # type: ignore[arg-type]
    assert caught.value.code == "statistics_table_invalid"
    assert caught.value.details == (ErrorDetail("statistics_table_invalid", ""),)


def test_the_services_own_rules_pass_unchanged() -> None:
    with pytest.raises(DomainError) as caught:
        statistics.table(DEPS, ANALYST, period="2026-13", rows="category", columns=None, scope="country")  # type: ignore[arg-type]
    assert caught.value.details == (ErrorDetail("period_invalid", "/period"),)
