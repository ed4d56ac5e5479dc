"""One JSON line per request with the route template, ids and no personal data; spans named by route."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures"))

from app_support import CANARY, bearer, build_demo_app  # noqa: E402

from plumbing import telemetry  # noqa: E402


def _request_lines(text: str) -> list[dict]:
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [line for line in lines if line["logger"] == "plumbing.http"]


def test_request_line_has_ids_and_route_template_but_no_raw_path_or_canary():
    app, logs = build_demo_app()
    with app.test_client() as client:
        response = client.get(
            f"/v1/demo/things/{CANARY.lower()}?updated_since={CANARY}",
            headers=bearer("manager", **{"X-Purpose": "case-management", "X-Request-Id": "req-abcdef12"}),
        )
        assert response.status_code == 422
    text = logs.getvalue()
    assert CANARY not in text and CANARY.lower() not in text
    (line,) = [line for line in _request_lines(text) if line["request_id"] == "req-abcdef12"]
    assert line["route"] == "/v1/demo/things/{thing_id}"
    assert line["operation_id"] == "demo_handlers.get_thing"
    assert line["status"] == 422 and line["problem"] == "validation-failed"
    assert (line["sub"], line["azp"], line["country"]) == ("u-manager", "test-client", "AL")
    assert len(line["trace_id"]) == 32
    assert "duration_ms" in line and line["method"] == "GET"


def test_span_is_named_by_route_and_continues_the_callers_trace():
    app, _ = build_demo_app()
    parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    with app.test_client() as client:
        exporter = telemetry.memory_exporter()
        assert exporter is not None
        exporter.clear()
        client.get(
            f"/v1/demo/things/t-01?x={CANARY}",
            headers=bearer(
                "manager",
                **{"X-Purpose": "case-management", "traceparent": f"00-{parent_trace}-00f067aa0ba902b7-01"},
            ),
        )
        spans = [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]
    (span,) = spans
    assert span.name == "GET /v1/demo/things/{thing_id}"
    assert format(span.context.trace_id, "032x") == parent_trace
    attributes = dict(span.attributes or {})
    assert attributes["http.route"] == "/v1/demo/things/{thing_id}"
    assert CANARY not in json.dumps(attributes, default=str)
    assert not any("url" in key or "target" in key for key in attributes)


def test_unauthenticated_line_names_the_auth_error_code_only():
    app, logs = build_demo_app()
    with app.test_client() as client:
        client.get("/v1/demo/things", headers=bearer(CANARY, **{"X-Purpose": "case-management"}))
    (line,) = _request_lines(logs.getvalue())
    assert line["status"] == 401 and line["auth_error"] == "bad_signature"
    assert CANARY not in logs.getvalue()
