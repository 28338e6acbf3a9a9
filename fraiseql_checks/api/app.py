"""The ASGI app the watcher's HTTP server hands every request its own pages do not serve.

Starlette routes, parses and answers; each route is an ``Endpoint`` some plugin
declared (``fraiseql_api_endpoints``), wrapped here with what every route shares:
the token check, the request body read as JSON and checked against the
endpoint's JSON Schema, and errors answered as ``{"error": {"status", "code",
"message"}}`` — never a traceback, never a 5xx for bad input.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jsonschema  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fraiseql_checks.api.auth import Tokens
from fraiseql_checks.api.endpoint import PREFIX, APIError, Endpoint, Handler, error_body, error_response

if TYPE_CHECKING:
    from fraiseql_checks.watch.watcher import Watcher

log = logging.getLogger(__name__)

#: The request's parsed JSON body, for handlers of endpoints that declare one.
BODY = "json_body"


def endpoints_of(watcher: Watcher) -> list[Endpoint]:
    """Every endpoint the plugins declare, in declaration order."""
    found: list[Endpoint] = []
    for declared in watcher.config.hook.fraiseql_api_endpoints(config=watcher.config):
        found.extend(declared)
    return found


def build_app(watcher: Watcher, endpoints: Sequence[Endpoint] | None = None) -> Starlette:
    endpoints = list(endpoints_of(watcher) if endpoints is None else endpoints)
    tokens = Tokens.of(watcher.config)
    routes = [Route(e.path, _wrap(e, tokens, watcher), methods=[e.method]) for e in endpoints]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    app.state.watcher = watcher
    app.state.endpoints = endpoints
    app.state.tokens = tokens
    return app


def _wrap(endpoint: Endpoint, tokens: Tokens, watcher: Watcher) -> Handler:
    validator = jsonschema.Draft202012Validator(endpoint.body) if endpoint.body is not None else None

    async def handle(request: Request) -> Response:
        try:
            tokens.check(request, endpoint.access)
            if validator is not None:
                request.state.json_body = await _body(request, validator)
            return await endpoint.handler(request)
        except APIError as error:
            return error_response(error)

    handle.__name__ = endpoint.operation
    return handle


async def _body(request: Request, validator: jsonschema.Draft202012Validator) -> Any:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        raise APIError(415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)")
    raw = await request.body()
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, "malformed_json", f"the body is not JSON: {exc}") from None
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        raise APIError(422, "invalid_body", f"{where + ': ' if where else ''}{error.message}")
    return value


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = {
        404: f"no such route: {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    if request.url.path.startswith(PREFIX) or request.url.path == PREFIX.rstrip("/"):
        return JSONResponse(error_body(exc.status_code, code, message), exc.status_code, headers=exc.headers)
    if exc.status_code == 404:
        watcher: Watcher = request.app.state.watcher
        served = sorted({*watcher.server.routes, f"{PREFIX}/ (the API: {PREFIX}/openapi.json)"})
        message = "not found; this watcher serves:\n" + "\n".join(served)
    return Response(message + "\n", exc.status_code, media_type="text/plain; charset=utf-8", headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    watcher: Watcher = request.app.state.watcher
    watcher.say(f"the API answered 500 to {request.method} {request.url.path}: {type(exc).__name__}: {exc}")
    return JSONResponse(error_body(500, "internal_error", "an internal error; the watcher's log says what"), 500)
