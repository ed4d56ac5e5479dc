"""A service's domain errors (RuleViolation subclasses) become 422 problems without any code in the service."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures"))

from app_support import CANARY, bearer, build_demo_app  # noqa: E402


def test_a_rule_violation_is_422_with_every_pointer_under_body_and_no_message():
    app, logs = build_demo_app()
    with app.test_client() as client:
        response = client.post(
            "/v1/demo/things", json={"name": "rule", "kind": "small"}, headers=bearer("manager")
        )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"].endswith("/validation-failed")
    assert body["errors"] == [
        {"pointer": "/body/name", "code": "name_reserved"},
        {"pointer": "/body", "code": "form"},
    ]
    # The message is for developers: it never reaches the answer or the request log.
    assert CANARY not in response.text and CANARY not in logs.getvalue()
    assert "unhandled exception" not in logs.getvalue()
