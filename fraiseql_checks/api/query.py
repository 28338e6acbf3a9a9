"""``/api/v1/query`` and ``/api/v1/query_range``: PromQL through to the configured Prometheus.

The answer is Prometheus' own JSON (``{"status": "success", "data": ...}``), passed
through. A query Prometheus rejects (its 400 or 422) comes back with that status as
this API's error, carrying Prometheus' message; no Prometheus configured, or one
that cannot be reached, is a 503. Every query is bounded in time: ``timeout``
(default 15s, at most 60s) is sent to Prometheus, which stops evaluating then, and
this side waits a little longer for its answer. The Prometheus URL — which may
hold a password — never appears in an answer. ``alerts.py`` reads Prometheus'
alerts through ``prometheus_get`` too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fraiseql_checks.api import web
from fraiseql_checks.api.endpoint import PREFIX, Access, APIError, Endpoint, Param, parse_time, watcher_of
from fraiseql_checks.config import Config
from fraiseql_checks.durations import parse_duration
from fraiseql_checks.hookspec import hookimpl

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fraiseql_checks.watch.watcher import Watcher

#: How long Prometheus may evaluate a query when the request does not say (``timeout``), and the most.
DEFAULT_TIMEOUT = 15.0
MAX_TIMEOUT = 60.0
#: What this side waits beyond the evaluation timeout for Prometheus' answer to arrive.
GRACE = 2.0
NOT_CONFIGURED = "no Prometheus is configured: set prometheus.url (or PROMETHEUS_URL) where the watcher runs"

PROMETHEUS_ANSWER: dict[str, Any] = {
    "type": "object",
    "description": "Prometheus' answer, passed through (see its HTTP API documentation)",
    "required": ["status", "data"],
    "properties": {
        "status": {"type": "string", "enum": ["success"]},
        "data": {
            "type": "object",
            "required": ["resultType", "result"],
            "properties": {
                "resultType": {"type": "string", "enum": ["vector", "matrix", "scalar", "string"]},
                "result": {"type": "array"},
            },
        },
        "warnings": {"type": "array", "items": {"type": "string"}},
        "infos": {"type": "array", "items": {"type": "string"}},
    },
}
ERRORS = {
    400: ("Prometheus rejected the query (its message), or a parameter is missing", None),
    422: ("Prometheus could not execute the query (its message)", None),
    502: ("Prometheus answered something other than its API's JSON, or refused the credentials", None),
    503: ("no Prometheus is configured, it cannot be reached, or the query timed out", None),
}


def prometheus_of(watcher: Watcher) -> tuple[str, str | None]:
    """The configured Prometheus' base URL and bearer token; a 503 when there is none."""
    from fraiseql_checks.targets.plugin import targets_of

    targets = targets_of(watcher.config)
    if not targets.prometheus_url:
        raise APIError(503, "prometheus_not_configured", NOT_CONFIGURED)
    return targets.prometheus_url, targets.prometheus_token


async def prometheus_get(
    watcher: Watcher, path: str, params: Mapping[str, str], timeout: float = DEFAULT_TIMEOUT
) -> dict[str, Any]:
    """The JSON body of a successful ``GET <prometheus.url><path>``; ``APIError`` otherwise.

    Messages name ``prometheus.url``, never its value: it may hold a password.
    """
    import httpx

    from fraiseql_checks.targets.failures import describe_connection_error
    from fraiseql_checks.targets.http import HTTPClient
    from fraiseql_checks.targets.transport import default_ssl_context

    url, token = prometheus_of(watcher)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # One small pool per request: the API calls Prometheus rarely, the checks' pools stay theirs.
    transport = httpx.AsyncHTTPTransport(verify=default_ssl_context())
    try:
        async with HTTPClient(timeout=timeout + GRACE, transport=transport) as http:
            response = await http.get(url + path, params=dict(params), headers=headers)
    except Exception as exc:  # TargetError from HTTPClient, or an invalid URL
        cause = exc.__cause__ if isinstance(exc.__cause__, httpx.TransportError) else exc
        if isinstance(cause, httpx.TimeoutException):
            why = f"it did not answer within {timeout + GRACE:g}s"
        else:
            why = describe_connection_error(cause)
        raise APIError(
            503, "prometheus_unavailable", watcher.config.mask(f"Prometheus (prometheus.url): {why}")
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code in (401, 403):
        raise APIError(
            502,
            "prometheus_refused",
            f"Prometheus refused the configured credentials (HTTP {response.status_code}): check prometheus.token",
        )
    if not isinstance(body, dict) or "status" not in body:
        raise APIError(
            502,
            "prometheus_bad_answer",
            f"Prometheus (prometheus.url) answered HTTP {response.status_code} without its API's JSON",
        )
    if body["status"] != "success":
        kind, error = str(body.get("errorType") or "unknown"), str(body.get("error") or "")
        message = watcher.config.mask(f"Prometheus: {kind}: {error}")
        if response.status_code in (400, 422):
            raise APIError(
                response.status_code, "bad_query" if response.status_code == 400 else "query_failed", message
            )
        if kind in ("timeout", "canceled"):
            raise APIError(503, "prometheus_timeout", message)
        raise APIError(502, "prometheus_error", message)
    return body


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name, "")
    if not value.strip():
        raise APIError(400, "bad_parameter", f"{name} is required")
    return value


def _timeout(request: Request) -> float:
    """``timeout``: seconds or a duration (``30s``), at most ``MAX_TIMEOUT``."""
    raw = request.query_params.get("timeout", "")
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        seconds = parse_duration(raw)
    except ValueError:
        raise APIError(400, "bad_parameter", f"timeout must be a duration such as 10s, got {raw!r}") from None
    if not 0 < seconds <= MAX_TIMEOUT:
        raise APIError(400, "bad_parameter", f"timeout must be above 0 and at most {MAX_TIMEOUT:g}s, got {raw!r}")
    return seconds


def _epoch(request: Request, name: str) -> str:
    return f"{parse_time(request.query_params[name], name):.3f}"


async def query(request: Request) -> Response:
    watcher = watcher_of(request)
    timeout = _timeout(request)
    params = {"query": _required(request, "query"), "timeout": f"{timeout:g}s"}
    if request.query_params.get("time"):
        params["time"] = _epoch(request, "time")
    return web.JSONResponse(await prometheus_get(watcher, "/api/v1/query", params, timeout))


async def query_range(request: Request) -> Response:
    watcher = watcher_of(request)
    timeout = _timeout(request)
    params = {"query": _required(request, "query"), "timeout": f"{timeout:g}s"}
    for name in ("start", "end"):
        _required(request, name)
        params[name] = _epoch(request, name)
    params["step"] = _required(request, "step")  # a duration or seconds; Prometheus says what it takes
    return web.JSONResponse(await prometheus_get(watcher, "/api/v1/query_range", params, timeout))


def endpoints() -> Sequence[Endpoint]:
    expr = Param("query", "query", {"type": "string", "minLength": 1}, "the PromQL expression", required=True)
    timeout = Param(
        "timeout",
        "query",
        {"type": "string"},
        f"how long Prometheus may evaluate (seconds or a duration; default {DEFAULT_TIMEOUT:g}s,"
        f" at most {MAX_TIMEOUT:g}s)",
    )
    when = "RFC 3339 or epoch seconds"
    return [
        Endpoint(
            "GET",
            f"{PREFIX}/query",
            query,
            Access.READ,
            "An instant PromQL query on the configured Prometheus (its answer, passed through)",
            "promQuery",
            "promql",
            params=(expr, Param("time", "query", {"type": "string"}, f"{when} (default: now)"), timeout),
            responses={200: ("Prometheus' answer", PROMETHEUS_ANSWER), **ERRORS},
        ),
        Endpoint(
            "GET",
            f"{PREFIX}/query_range",
            query_range,
            Access.READ,
            "A range PromQL query on the configured Prometheus (its answer, passed through)",
            "promQueryRange",
            "promql",
            params=(
                expr,
                Param("start", "query", {"type": "string"}, when, required=True),
                Param("end", "query", {"type": "string"}, when, required=True),
                Param("step", "query", {"type": "string"}, "seconds or a duration (15s)", required=True),
                timeout,
            ),
            responses={200: ("Prometheus' answer", PROMETHEUS_ANSWER), **ERRORS},
        ),
    ]


@hookimpl
def fraiseql_api_endpoints(config: Config) -> Sequence[Endpoint]:
    return endpoints()
