"""Handler resolution: operationIds of the contract name the handlers; their results are JSON by default, and
their database work is bounded by the request's budget (plumbing.mongo.request_budget)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flask
from connexion import NoContent
from connexion.resolver import Resolver

from plumbing.mongo import request_budget


class JsonByDefaultResolver(Resolver):
    """Resolve operationIds as usual; handler results without a Content-Type are sent as application/json.

    Every operation documents its problem+json error responses, so connexion sees two content types and refuses
    to guess. Problems are rendered by the error handlers, never returned by handlers, so JSON is the answer.
    """

    def resolve_function_from_operation_id(self, operation_id: str) -> Callable[..., Any]:
        function = super().resolve_function_from_operation_id(operation_id)

        @functools.wraps(function)
        def json_by_default(*args: Any, **kwargs: Any) -> Any:
            with request_budget():  # the request's database work is bounded in all (plumbing.mongo)
                result = function(*args, **kwargs)
            if isinstance(result, flask.Response):
                return result
            data, status, headers = _unpack(result)
            if data is None or data is NoContent:
                return result
            headers = dict(headers or {})
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
            return data, status, headers

        return json_by_default


def _unpack(result: Any) -> tuple[Any, int | None, Any]:
    if not isinstance(result, tuple):
        return result, None, {}
    if len(result) == 1:
        return result[0], None, {}
    if len(result) == 2:
        data, second = result
        return (data, int(second), {}) if isinstance(second, int) else (data, None, second)
    data, status, headers = result
    return data, status, headers
