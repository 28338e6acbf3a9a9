"""The ASGI app the watcher's HTTP server hands every request its own pages do not serve.

Starlette routes, parses and answers; each route is an ``Endpoint`` some plugin
declared (``fraiseql_api_endpoints``), wrapped here with what every route shares:
the token check, the query parameters and the request body (read as JSON)
checked against the endpoint's JSON Schemas, so that what the OpenAPI document
says is what the route accepts, and errors answered as ``{"error": {"status", "code",
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
from fraiseql_checks.api.endpoint import (
    PREFIX,
    APIError,
    Endpoint,
    Handler,
    Param,
    error_body,
    error_response,
    formats,
)

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
    by_path: dict[str, dict[str, Handler]] = {}
    for e in endpoints:
        by_path.setdefault(e.path, {})[e.method] = _wrap(e, tokens, watcher)
    # One route per path, so that a 405 names every method of the path in its Allow header.
    routes = [Route(path, _by_method(handlers), methods=list(handlers)) for path, handlers in by_path.items()]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    app.state.watcher = watcher
    app.state.endpoints = endpoints
    app.state.tokens = tokens
    return app


def _by_method(handlers: dict[str, Handler]) -> Handler:
    if len(handlers) == 1:
        return next(iter(handlers.values()))

    async def handle(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    handle.__name__ = "_".join(h.__name__ for h in handlers.values())
    return handle


def _wrap(endpoint: Endpoint, tokens: Tokens, watcher: Watcher) -> Handler:
    validator = jsonschema.Draft202012Validator(endpoint.body) if endpoint.body is not None else None
    query = [
        (p, jsonschema.Draft202012Validator(p.schema, format_checker=formats()))
        for p in endpoint.params
        if p.where == "query"
    ]
    # The API says which parameters it takes: a misspelt one is an error, not silently ignored.
    known = {p.name for p, _ in query} if endpoint.path.startswith(PREFIX) else None

    async def handle(request: Request) -> Response:
        try:
            tokens.check(request, endpoint.access)
            _check_query(request, query, known)
            if validator is not None:
                request.state.json_body = await _body(request, validator)
            return await endpoint.handler(request)
        except APIError as error:
            return error_response(error)

    handle.__name__ = endpoint.operation
    return handle


def _check_query(
    request: Request, params: Sequence[tuple[Param, jsonschema.Draft202012Validator]], known: set[str] | None
) -> None:
    """Each declared query parameter against its schema (read as its type: ``limit=5`` is 5);
    with ``known``, a parameter not in it is refused."""
    if known is not None:
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            takes = ", ".join(sorted(known)) or "none"
            raise APIError(
                400, "unknown_parameter", f"unknown query parameter {unknown[0]!r}; this route takes: {takes}"
            )
    for param, validator in params:
        raw = request.query_params.get(param.name)
        if raw is None:
            if param.required:
                raise APIError(400, "bad_parameter", f"{param.name} is required")
            continue
        error = jsonschema.exceptions.best_match(validator.iter_errors(_typed(raw, param.schema)))
        if error is not None:
            what = param.schema.get("description")
            if error.validator in ("anyOf", "oneOf") and what:  # "not valid under any of the given schemas"
                raise APIError(400, "bad_parameter", f"{param.name} must be {what}, got {raw!r}")
            raise APIError(400, "bad_parameter", f"{param.name}: {error.message}")


def _typed(raw: str, schema: Any) -> Any:
    kinds = schema.get("type", "string")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    if "string" in kinds:
        return raw
    if "boolean" in kinds and raw in ("true", "false"):
        return raw == "true"
    for kind, read in (("integer", int), ("number", float)):
        if kind in kinds:
            try:
                return read(raw)
            except ValueError:
                pass
    return raw


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
    if request.url.path.startswith("/api/") or request.url.path == "/api":  # any version: JSON
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
