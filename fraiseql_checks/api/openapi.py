"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 document, made from the endpoints' declarations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fraiseql_checks._version import __version__
from fraiseql_checks.api import web
from fraiseql_checks.api.endpoint import PREFIX, Access, Endpoint

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message"],
            "properties": {
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "code": {"type": "string"},
                "message": {"type": "string"},
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def operation(endpoint: Endpoint, private: bool) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": endpoint.operation,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
    }
    if endpoint.params:
        op["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "schema": dict(p.schema),
                **({"description": p.description} if p.description else {}),
            }
            for p in endpoint.params
        ]
    if endpoint.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": dict(endpoint.body)}}}
    responses: dict[str, Any] = {}
    for status, (description, schema) in sorted(endpoint.responses.items()):
        entry: dict[str, Any] = {"description": description}
        if schema is not None:
            media = endpoint.media_type if 200 <= status < 300 else "application/json"
            entry["content"] = {media: {"schema": dict(schema)}}
        responses[str(status)] = entry
    guarded = endpoint.access is not Access.PUBLIC or private
    if guarded:
        responses.setdefault("401", _error("no token, or not a valid one"))
        op["security"] = [{"bearer": []}]
    if endpoint.access is Access.ADMIN:
        responses.setdefault("403", _error("the token may not write, or writing is turned off"))
    if endpoint.params:
        responses.setdefault("400", _error("a parameter is not valid"))
    if endpoint.body is not None:
        responses.setdefault("400", _error("the body is not JSON"))
        responses.setdefault("413", _error("the body is too large"))
        responses.setdefault("415", _error("the body is not sent as application/json"))
        responses.setdefault("422", _error("the body does not match the schema"))
    op["responses"] = responses
    return op


def document(endpoints: Sequence[Endpoint], private: bool = False) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        if endpoint.documented:
            paths.setdefault(endpoint.openapi_path, {})[endpoint.method.lower()] = operation(endpoint, private)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fraiseql-check watcher API",
            "version": __version__,
            "description": "The checks, their results and states, silences, notifications, SLOs, alerts and "
            "dashboards of one fraiseql-check --watch. See docs/api.md.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi_json(request: Request) -> Response:
    return web.JSONResponse(document(request.app.state.endpoints, request.app.state.tokens.private))


ENDPOINTS = [
    Endpoint(
        "GET",
        f"{PREFIX}/openapi.json",
        openapi_json,
        Access.READ,
        "This document",
        "getOpenAPI",
        "meta",
        responses={200: ("the OpenAPI 3.1 document of every route", {"type": "object"})},
    )
]
