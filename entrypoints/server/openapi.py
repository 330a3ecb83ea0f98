"""The OpenAPI 3.1 description of the HTTP API, built from the routes themselves.

Each route is declared as an ``OperationRoute`` carrying its ``Operation`` (summary, body,
answers), so the description lives beside the route it describes and cannot drift from it:
``openapi_document`` walks the application's routes and reads the path, the methods and the
path parameters from the routes, and the rest from their operations.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from entrypoints.operations_json import STAGE_FIGURES_SCHEMA
from entrypoints.server.errors import ERROR_CODES
from entrypoints.server.params import MAX_ID

OPENAPI_VERSION = "3.1.0"
API_TITLE = "InsightHub Status"
API_VERSION = "1"
_CONVERTOR = re.compile(r"\{(\w+)(?::\w+)?\}")

Endpoint = Callable[[Request], Awaitable[Response]]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_TIMESTAMP = {"type": "string", "format": "date-time"}
_ID = {"type": "integer", "minimum": 0, "maximum": MAX_ID}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "code"],
        "properties": {
            "error": {"type": "string", "description": "what went wrong, for people"},
            "code": {"type": "string", "enum": sorted(set(ERROR_CODES.values()))},
            "field": {"type": "string", "description": "the request value that was refused"},
        },
    },
    "Workspace": {
        "type": "object",
        "required": ["id", "user_id", "name", "status", "status_message", "version"],
        "properties": {
            "id": _ID,
            "user_id": _ID,
            "name": {"type": "string"},
            "status": {"type": "string", "enum": ["provisioning", "ready", "error"]},
            "status_message": {"type": ["string", "null"]},
            "version": {"type": "integer"},
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
        },
    },
    "Document": {
        "type": "object",
        "required": ["id", "user_id", "workspace_id", "filename", "processing_status", "version"],
        "properties": {
            "id": _ID,
            "user_id": _ID,
            "workspace_id": _ID,
            "filename": {"type": "string"},
            "processing_status": {
                "type": "string",
                "enum": ["pending", "processing", "ready", "failed"],
            },
            "processing_error": {"type": ["string", "null"]},
            "chunk_count": {"type": "integer"},
            "metadata": {"type": "object"},
            "progress": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "string"},
                        "completed": {"type": "boolean"},
                        "state": {
                            "type": "string",
                            "enum": ["pending", "active", "completed", "failed"],
                        },
                        "started_at": _TIMESTAMP,
                        "finished_at": _TIMESTAMP,
                    },
                },
            },
            "eta_seconds": {
                "type": ["number", "null"],
                "minimum": 0,
                "description": "Estimated seconds left while processing; null without history.",
            },
            "version": {"type": "integer"},
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
        },
    },
    "Workspaces": {
        "type": "object",
        "required": ["workspaces"],
        "properties": {"workspaces": {"type": "array", "items": _ref("Workspace")}},
    },
    "Documents": {
        "type": "object",
        "required": ["documents"],
        "properties": {"documents": {"type": "array", "items": _ref("Document")}},
    },
    "HistoryEntry": {
        "type": "object",
        "required": ["at", "from_status", "to_status", "version", "position"],
        "properties": {
            "at": _TIMESTAMP,
            "from_status": {"type": ["string", "null"]},
            "to_status": {"type": "string"},
            "version": {"type": "integer"},
            "position": {"type": "integer"},
            "actor": {"type": ["string", "null"], "description": "a worker's identity, or user"},
            "step": {"type": ["string", "null"]},
            "step_seconds": {"type": ["number", "null"]},
            "error": {"type": ["string", "null"]},
        },
    },
    "History": {
        "type": "object",
        "required": ["history", "next"],
        "properties": {
            "history": {"type": "array", "items": _ref("HistoryEntry")},
            "next": {"type": ["string", "null"]},
        },
    },
    "Session": {
        "type": "object",
        "required": ["user_id", "expires_at"],
        "properties": {"user_id": _ID, "expires_at": {"type": "integer"}},
    },
    "NewWorkspace": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200}},
    },
    "Upload": {
        "type": "object",
        "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}},
    },
    "Health": {"type": "object", "properties": {"status": {"type": "string"}}},
    "Readiness": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ready", "unready"]},
            "database": {"type": "string"},
            "subscription": {"type": "string"},
        },
    },
    "OpenApi": {"type": "object"},
    # The operator's console (``/api/admin``); see docs/operations.md.
    "DeadLetterQueues": {
        "type": "object",
        "required": ["queues"],
        "properties": {
            "queues": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": _ref("DeadLetter")},
            }
        },
    },
    "DeadLetter": {
        "type": "object",
        "required": ["letter_id", "queue", "routing_key", "reason", "entity"],
        "properties": {
            "letter_id": {"type": "string"},
            "queue": {"type": "string"},
            "routing_key": {"type": "string"},
            "reason": {"type": "string"},
            "attempts": {"type": ["integer", "null"]},
            "first_failed_at": {"type": ["string", "null"], "format": "date-time"},
            "last_failed_at": {"type": ["string", "null"], "format": "date-time"},
            "entity": {"type": "object", "additionalProperties": {"type": "integer"}},
            "event_id": {"type": ["string", "null"]},
            "malformed": {"type": "boolean"},
        },
    },
    "LetterRef": {
        "type": "object",
        "required": ["queue", "letter_id"],
        "properties": {"queue": {"type": "string"}, "letter_id": {"type": "string"}},
    },
    "QueueRef": {
        "type": "object",
        "required": ["queue"],
        "properties": {"queue": {"type": "string"}},
    },
    "Settled": {
        "type": "object",
        "required": ["queue", "count"],
        "properties": {"queue": {"type": "string"}, "count": {"type": "integer"}},
    },
    "Workers": {
        "type": "object",
        "required": ["workers"],
        "properties": {
            "workers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["worker_id", "stage", "host", "pid", "processed", "failed"],
                    "properties": {
                        "worker_id": {"type": "string"},
                        "stage": {"type": "string"},
                        "host": {"type": "string"},
                        "pid": {"type": "integer"},
                        "current_documents": {"type": "array", "items": {"type": "integer"}},
                        "processed": {"type": "integer"},
                        "failed": {"type": "integer"},
                        "seen_at": {"type": ["string", "null"], "format": "date-time"},
                    },
                },
            }
        },
    },
    "OperatorAction": {
        "type": "object",
        "required": ["actor", "action", "target", "outcome"],
        "properties": {
            "actor": {"type": "string"},
            "action": {"type": "string"},
            "target": {"type": "string"},
            "outcome": {"type": "string"},
            "at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "OperatorActions": {
        "type": "object",
        "required": ["actions"],
        "properties": {"actions": {"type": "array", "items": _ref("OperatorAction")}},
    },
    "Stuck": {
        "type": "object",
        "required": ["documents", "recoveries"],
        "properties": {
            "documents": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["document_id", "status"],
                    "properties": {
                        "document_id": {"type": "integer"},
                        "status": {"type": "string"},
                        "owner": {"type": ["string", "null"]},
                        "seconds_left": {"type": ["number", "null"]},
                    },
                },
            },
            "recoveries": {"type": "array", "items": _ref("OperatorAction")},
        },
    },
    "Stages": {
        "type": "object",
        "required": ["stages", "dead_letters"],
        "properties": {
            "stages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "stage": {"type": "string"},
                        "workers": {"type": "integer"},
                        "processed": {"type": "integer"},
                        "failed": {"type": "integer"},
                        "window_seconds": {"type": "number"},
                        "per_minute": {"type": "number"},
                        "failure_rate": {"type": "number"},
                    },
                },
            },
            "dead_letters": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    },
    "StageFigures": {
        "type": "object",
        "required": ["stages"],
        "properties": {"stages": {"type": "array", "items": STAGE_FIGURES_SCHEMA}},
    },
    "AsyncApi": {"type": "object"},
}


@dataclass(frozen=True, kw_only=True)
class Operation:
    """What one route does, for the API description: its answers and the body it takes."""

    summary: str
    status: int = 200
    schema: str | None = None
    media_type: str = "application/json"
    errors: tuple[int, ...] = ()
    body: str | None = None
    body_media_type: str = "application/json"
    authenticated: bool = False
    extra: Mapping[int, str] = field(default_factory=dict)

    def as_json(self, path_parameters: Iterable[str]) -> dict[str, Any]:
        success: dict[str, Any] = {"description": self.summary}
        if self.schema is not None:
            success["content"] = {self.media_type: {"schema": _ref(self.schema)}}
        elif self.media_type != "application/json":
            success["content"] = {self.media_type: {"schema": {"type": "string"}}}
        responses: dict[str, Any] = {str(self.status): success}
        for status, schema in self.extra.items():
            responses[str(status)] = {
                "description": schema,
                "content": {"application/json": {"schema": _ref(schema)}},
            }
        errors = set(self.errors) | ({401} if self.authenticated else set())
        for status in sorted(errors):
            responses[str(status)] = {
                "description": ERROR_CODES[status],
                "content": {"application/json": {"schema": _ref("Error")}},
            }
        operation: dict[str, Any] = {"summary": self.summary, "responses": responses}
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": _ID}
            for name in path_parameters
        ]
        if parameters:
            operation["parameters"] = parameters
        if self.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {self.body_media_type: {"schema": _ref(self.body)}},
            }
        if self.authenticated:
            operation["security"] = [{"bearer": []}]
        return operation


class OperationRoute(Route):
    """A route with the ``Operation`` that describes it."""

    def __init__(self, path: str, endpoint: Endpoint, *, method: str, operation: Operation):
        super().__init__(path, endpoint, methods=[method])
        self.method = method
        self.operation = operation


def openapi_path(path: str) -> str:
    """A route's path as OpenAPI writes it: ``{name}`` without a convertor."""
    return _CONVERTOR.sub(r"{\1}", path)


def openapi_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every ``OperationRoute`` among ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if isinstance(route, OperationRoute):
            operations = paths.setdefault(openapi_path(route.path), {})
            operations[route.method.lower()] = route.operation.as_json(route.param_convertors)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": API_TITLE, "version": API_VERSION},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def serve_openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(request.app.routes))


PAGE_OPERATION = Operation(summary="the status page", media_type="text/html")
ADMIN_PAGE_OPERATION = Operation(
    summary="the operator's console (its data needs an operator token)", media_type="text/html"
)
HEALTH_OPERATION = Operation(summary="alive while the process runs", schema="Health")
READINESS_OPERATION = Operation(
    summary="ready when the database answers and the status subscription is alive",
    schema="Readiness",
    extra={503: "Readiness"},
)
METRICS_OPERATION = Operation(summary="Prometheus metrics", media_type="text/plain")
EVENTS_OPERATION = Operation(
    summary="status changes as server-sent events (token and scopes in the query; see docs/api.md)",
    media_type="text/event-stream",
    errors=(400, 401, 429),
)
ASYNCAPI_OPERATION = Operation(
    summary="the AsyncAPI 3.0 document of every broker event and WebSocket frame",
    schema="AsyncApi",
)

OPENAPI_ROUTE = OperationRoute(
    "/openapi.json",
    serve_openapi,
    method="GET",
    operation=Operation(summary="this API's OpenAPI 3.1 description", schema="OpenApi"),
)
