"""The OpenAPI description matches the routes, and no request it allows is a server error.

Schemathesis generates requests from ``/openapi.json`` (valid ones and ones that break the
schema) and sends them to a live server process: none may be answered 5xx, and every error
must be JSON with a stable ``code``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from starlette.routing import Match, Mount, Route, WebSocketRoute

from adapters.bootstrap import bootstrap
from entrypoints.server import create_app
from entrypoints.server.errors import ERROR_CODES
from entrypoints.server.openapi import OperationRoute, openapi_document
from tests.e2e.conftest import ServerProcess

SCHEMATHESIS_EXAMPLES = 40


@pytest.fixture(scope="module")
def routes() -> Iterator[list[Any]]:
    services = bootstrap({"DATABASE_URL": "memory://", "TRANSPORT": "memory"})
    try:
        yield list(create_app(services).routes)
    finally:
        services.close()


def _matches(routes: list[Any], path: str, method: str) -> bool:
    concrete = re.sub(r"\{\w+\}", "1", path)
    scope = {"type": "http", "path": concrete, "method": method.upper()}
    return any(
        isinstance(route, OperationRoute) and route.matches(scope)[0] is Match.FULL
        for route in routes
    )


def test_every_route_has_an_operation(routes: list[Any]) -> None:
    undocumented = [
        route.path
        for route in routes
        if isinstance(route, Route) and not isinstance(route, OperationRoute)
    ]
    assert undocumented == []
    # What is left is not an HTTP API operation: the WebSocket and the static files.
    others = {type(route) for route in routes if not isinstance(route, OperationRoute)}
    assert others <= {WebSocketRoute, Mount}


def test_every_operation_has_a_route(routes: list[Any]) -> None:
    document = openapi_document(routes)
    operations = [
        (path, method) for path, methods in document["paths"].items() for method in methods
    ]
    assert len(operations) == sum(isinstance(route, OperationRoute) for route in routes)
    for path, method in operations:
        assert _matches(routes, path, method), f"{method.upper()} {path} has no route"


def test_every_path_parameter_is_described(routes: list[Any]) -> None:
    for path, methods in openapi_document(routes)["paths"].items():
        named = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in methods.items():
            described = {p["name"] for p in operation.get("parameters", [])}
            assert described == named, f"{method} {path}"


def test_the_served_description_is_openapi_3_1(server: ServerProcess) -> None:
    answer = httpx.get(f"{server.base_url}/openapi.json", timeout=10)
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"].startswith("3.1")
    assert "/api/workspaces/{workspace_id}/documents" in document["paths"]
    assert document["paths"]["/api/workspaces"]["post"]["security"] == [{"bearer": []}]


def _errors_are_json_with_a_code(response: Any) -> None:
    if response.status_code < 400:
        return
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), (
        response.status_code,
        response.text[:200],
    )
    error = response.json()
    assert isinstance(error.get("error"), str), error
    assert error.get("code") in ERROR_CODES.values(), error


def test_no_generated_request_is_a_server_error(server: ServerProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {server.token(987_654_321)}"}
    sent: dict[str, int] = {}

    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=SCHEMATHESIS_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any) -> None:
            response = case.call(headers=headers, timeout=15)
            case.validate_response(response, checks=[not_a_server_error])
            _errors_are_json_with_a_code(response)
            sent[case.operation.label] = sent.get(case.operation.label, 0) + 1

        try:
            check()
        except Unsatisfiable:
            # An operation without parameters or body has nothing a negative case could break.
            if mode is GenerationMode.POSITIVE:
                raise
    assert len(sent) == len(operations), sent
    print(f"schemathesis: {sum(sent.values())} requests over {len(sent)} operations")
