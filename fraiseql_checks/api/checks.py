"""``/api/v1/checks``: every watched check, its state and metadata, its results and state
changes from the store, and a run on demand."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fraiseql_checks.api import web
from fraiseql_checks.api.endpoint import (
    DEFAULT_WINDOW,
    PAGINATION,
    PREFIX,
    STORE_DOWN,
    TIME,
    WINDOW_PARAMS,
    Access,
    APIError,
    Endpoint,
    Param,
    iso,
    not_found,
    page_of,
    paginated,
    query_int,
    query_window,
    watcher_of,
)
from fraiseql_checks.config import Config
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.stores import StoreUnavailable

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fraiseql_checks.result import Result
    from fraiseql_checks.stores import StoredResult
    from fraiseql_checks.watch.state import StateChange
    from fraiseql_checks.watch.watcher import Watched, Watcher

#: The most results one request returns (``limit``).
MAX_RESULTS = 10_000
#: The latest results ``GET /api/v1/checks/{check}`` shows, newest first.
RECENT = 20
STATES = ["unknown", "passing", "failing", "flapping"]
OUTCOMES = ["passed", "failed", "error", "skipped"]

CHECK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "suite", "severity", "interval", "timeout", "state", "since", "silenced"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "suite": {"type": "string"},
        "severity": {"type": "string"},
        "interval": {"type": "number", "description": "seconds"},
        "timeout": {"type": "number", "description": "seconds"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "runbook": {"type": ["string", "null"]},
        "owner": {"type": ["string", "null"]},
        "description": {"type": "string"},
        "targets": {"type": "array", "items": {"type": "string"}},
        "state": {"type": "string", "enum": STATES},
        "since": TIME,
        "consecutive_failures": {"type": "integer", "minimum": 0},
        "last_run": TIME,
        "silenced": {"type": "boolean"},
        "running": {"type": "boolean"},
        "runs_here": {
            "type": "boolean",
            "description": "whether this watcher runs it (in a cluster another may; the state is then the stored one)",
        },
    },
}
RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["check", "started_at", "duration_s", "outcome", "message"],
    "properties": {
        "check": {"type": "string"},
        "started_at": {"type": "string", "format": "date-time"},
        "duration_s": {"type": "number"},
        "outcome": {"type": "string", "enum": OUTCOMES},
        "message": {"type": "string"},
        "trace_id": {"type": "string"},
        "values": {"type": "object", "additionalProperties": {"type": "number"}},
        "timed_out": {"type": "boolean"},
        "silenced": {"type": "boolean"},
    },
}
CHANGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["check", "at", "previous", "state"],
    "properties": {
        "check": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
        "previous": {"type": "string", "enum": STATES},
        "state": {"type": "string", "enum": STATES},
        "silenced": {"type": "boolean"},
        "reason": {"type": "string"},
        "message": {"type": "string"},
        "trace_id": {"type": "string"},
    },
}
CHECK_PARAM = Param("check", "path", {"type": "string"}, "the check's node id (URL-encoded)")
NOT_FOUND = not_found("check")


def watched_of(request: Request) -> Watched:
    watcher = watcher_of(request)
    check_id = request.path_params["check"]
    found = watcher.find(check_id)
    if found is None:
        raise APIError(404, "not_found", f"no check {check_id!r} is watched (GET {PREFIX}/checks lists them)")
    return found[0]


def check_json(watcher: Watcher, watched: Watched, running: bool = False) -> dict[str, Any]:
    check, state = watched.check, watched.state
    return {
        "id": check.id,
        "name": check.name,
        "suite": check.suite,
        "severity": check.severity,
        "interval": check.interval,
        "timeout": check.timeout,
        "labels": check.labels,
        "tags": list(check.tags),
        "runbook": check.runbook,
        "owner": check.spec.owner,
        "description": check.description,
        "targets": list(check.targets),
        "state": state.state.value,
        "since": iso(state.since),
        "consecutive_failures": state.consecutive_failures,
        "last_run": iso(state.updated_at),
        "silenced": watcher.is_silenced(watched, time.time()),
        "running": running,
        "runs_here": watcher.schedule.get(check.id) is not None,
    }


def result_json(result: StoredResult | Result, check_id: str) -> dict[str, Any]:
    return {
        "check": check_id,
        "started_at": iso(result.started_at),
        "duration_s": result.duration_s,
        "outcome": result.outcome.value,
        "message": result.message,
        "trace_id": result.trace_id,
        "values": dict(result.values),
        "timed_out": result.timed_out,
        "silenced": bool(getattr(result, "silenced", False)),
    }


def change_json(change: StateChange) -> dict[str, Any]:
    return {
        "check": change.check_id,
        "at": iso(change.at),
        "previous": change.previous.value,
        "state": change.state.value,
        "silenced": change.silenced,
        "reason": change.reason,
        "message": change.message,
        "trace_id": change.trace_id,
    }


def filtered(request: Request, watcher: Watcher) -> list[Watched]:
    """The watched checks, filtered by ``state``, ``suite``, ``severity`` and ``tag``, in id order."""
    wanted = {name: request.query_params.get(name) for name in ("state", "suite", "severity", "tag")}
    chosen = []
    for watched in watcher.view():
        if wanted["state"] and watched.state.state.value != wanted["state"]:
            continue
        if wanted["suite"] and watched.check.suite != wanted["suite"]:
            continue
        if wanted["severity"] and watched.check.severity != wanted["severity"]:
            continue
        if wanted["tag"] and wanted["tag"] not in watched.check.tags:
            continue
        chosen.append(watched)
    return chosen


async def list_checks(request: Request) -> Response:
    watcher = watcher_of(request)
    page = page_of(request, filtered(request, watcher))
    page["items"] = [check_json(watcher, watched) for watched in page["items"]]
    return web.JSONResponse(page)


async def get_check(request: Request) -> Response:
    watcher = watcher_of(request)
    watched = watched_of(request)
    entry = watcher.schedule.get(watched.check.id)
    body = check_json(watcher, watched, running=bool(entry and entry.running))
    now = time.time()
    # the store answers oldest first: ask for a window that holds about the latest RECENT runs
    since = now - min(DEFAULT_WINDOW, watched.check.interval * (RECENT + 5) + 60)
    try:
        results = await watcher.writer.store.results(watched.check.id, since, now + 1)
    except StoreUnavailable:
        results = []
    body["recent_results"] = [result_json(r, watched.check.id) for r in reversed(results[-RECENT:])]
    return web.JSONResponse(body)


async def check_results(request: Request) -> Response:
    watcher = watcher_of(request)
    watched = watched_of(request)
    since, until = query_window(request, time.time())
    limit = query_int(request, "limit", 1000, 1, MAX_RESULTS)
    try:
        results = await watcher.writer.store.results(watched.check.id, since, until, limit=limit)
    except StoreUnavailable as exc:
        raise APIError(503, "store_unavailable", watcher.config.mask(str(exc))) from None
    items = [result_json(r, watched.check.id) for r in results]
    return web.JSONResponse({"check": watched.check.id, "since": iso(since), "until": iso(until), "items": items})


async def check_changes(request: Request) -> Response:
    watcher = watcher_of(request)
    watched = watched_of(request)
    since, until = query_window(request, time.time())
    try:
        changes = await watcher.writer.store.state_changes(since, until, watched.check.id)
    except StoreUnavailable as exc:
        raise APIError(503, "store_unavailable", watcher.config.mask(str(exc))) from None
    return web.JSONResponse(page_of(request, [change_json(change) for change in changes]))


async def run_check(request: Request) -> Response:
    watcher = watcher_of(request)
    watched = watched_of(request)
    if watcher.schedule.get(watched.check.id) is None:
        raise APIError(409, "elsewhere", f"{watched.check.id} runs on another watcher of the cluster; ask that one")
    try:
        result = await watcher.run_now(watched.check.id)
    except KeyError:  # removed by a reload meanwhile
        raise APIError(404, "not_found", f"no check {watched.check.id!r} is watched") from None
    if result is None and watcher.stopping:
        raise APIError(503, "stopping", f"this watcher is stopping: {watched.check.id} was not run")
    if result is None:
        raise APIError(409, "running", f"{watched.check.id} is running now; its result will be stored as usual")
    body = {"result": result_json(result, watched.check.id), "check": check_json(watcher, watched)}
    return web.JSONResponse(body)


def endpoints() -> Sequence[Endpoint]:
    filters = (
        Param("state", "query", {"type": "string", "enum": STATES}),
        Param("suite", "query", {"type": "string"}),
        Param("severity", "query", {"type": "string"}),
        Param("tag", "query", {"type": "string"}),
    )
    detail = dict(CHECK_SCHEMA)
    detail["properties"] = {
        **CHECK_SCHEMA["properties"],
        "recent_results": {"type": "array", "items": RESULT_SCHEMA},
    }
    results_page = {
        "type": "object",
        "required": ["check", "since", "until", "items"],
        "properties": {
            "check": {"type": "string"},
            "since": {"type": "string", "format": "date-time"},
            "until": {"type": "string", "format": "date-time"},
            "items": {"type": "array", "items": RESULT_SCHEMA},
        },
    }
    run_answer = {
        "type": "object",
        "required": ["result", "check"],
        "properties": {"result": RESULT_SCHEMA, "check": CHECK_SCHEMA},
    }
    return [
        Endpoint(
            "GET",
            f"{PREFIX}/checks",
            list_checks,
            Access.READ,
            "Every watched check with its state",
            "listChecks",
            "checks",
            params=(*filters, *PAGINATION),
            responses={200: ("a page of checks, in id order", paginated(CHECK_SCHEMA))},
        ),
        Endpoint(
            "GET",
            f"{PREFIX}/checks/{{check:path}}/results",
            check_results,
            Access.READ,
            "A check's results in a window, oldest first",
            "listCheckResults",
            "checks",
            params=(
                CHECK_PARAM,
                *WINDOW_PARAMS,
                Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "default": 1000}),
            ),
            responses={200: ("the results", results_page), **NOT_FOUND, **STORE_DOWN},
        ),
        Endpoint(
            "GET",
            f"{PREFIX}/checks/{{check:path}}/changes",
            check_changes,
            Access.READ,
            "A check's state changes in a window, oldest first",
            "listCheckChanges",
            "checks",
            params=(CHECK_PARAM, *WINDOW_PARAMS, *PAGINATION),
            responses={200: ("a page of state changes", paginated(CHANGE_SCHEMA)), **NOT_FOUND, **STORE_DOWN},
        ),
        Endpoint(
            "POST",
            f"{PREFIX}/checks/{{check:path}}/run",
            run_check,
            Access.ADMIN,
            "Run a check now and answer its result (stored and counted as any run)",
            "runCheck",
            "checks",
            params=(CHECK_PARAM,),
            responses={
                200: ("the run's result and the check's state after it", run_answer),
                **NOT_FOUND,
                409: ("the check is running now, or runs on another watcher of the cluster", None),
                503: ("this watcher is stopping: the check was not run", None),
            },
        ),
        Endpoint(
            "GET",
            f"{PREFIX}/checks/{{check:path}}",
            get_check,
            Access.READ,
            "One check: its state, metadata and latest results",
            "getCheck",
            "checks",
            params=(CHECK_PARAM,),
            responses={200: ("the check, with its latest results (newest first)", detail), **NOT_FOUND},
        ),
    ]


@hookimpl
def fraiseql_api_endpoints(config: Config) -> Sequence[Endpoint]:
    return endpoints()
