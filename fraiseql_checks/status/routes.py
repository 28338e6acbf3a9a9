"""The status page's routes: ``/``, ``/checks/{check}``, ``/badge/{check}.svg`` and
``/api/v2/summary.json``, all public unless ``api.private`` is set."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fraiseql_checks.api import web
from fraiseql_checks.api.endpoint import STORE_DOWN, TIME, Access, APIError, Endpoint, Param, not_found, watcher_of
from fraiseql_checks.status import page, svg
from fraiseql_checks.status.board import board_of
from fraiseql_checks.status.summary import COMPONENT_STATUSES, INDICATORS, summary
from fraiseql_checks.status.uptime import WINDOWS
from fraiseql_checks.stores import StoreUnavailable

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fraiseql_checks.watch.watcher import Watched

TAG = "status"
SUMMARY_PATH = "/api/v2/summary.json"
#: Badges and the summary may be cached this long by browsers and aggregators.
MAX_AGE = 30


def _base(request: Request) -> str:
    """The relative way back to ``/`` from the request's path (works behind a path prefix)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    depth = bytes(raw).split(b"?", 1)[0].count(b"/") - 1
    return "../" * max(depth, 0)


def _watched(request: Request, check_id: str) -> Watched:
    found = watcher_of(request).find(check_id)
    if found is None:
        raise APIError(404, "not_found", f"no check {check_id!r} is watched")
    return found[0]


async def status_page(request: Request) -> Response:
    watcher = watcher_of(request)
    label = request.query_params.get("group") or None
    html = await page.overview(watcher, board_of(watcher), label, _base(request))
    return web.HTMLResponse(html, headers={"Cache-Control": "no-cache"})


async def check_page(request: Request) -> Response:
    watcher = watcher_of(request)
    watched = _watched(request, request.path_params["check"])
    html = await page.detail(watcher, board_of(watcher), watched, _base(request))
    return web.HTMLResponse(html, headers={"Cache-Control": "no-cache"})


async def badge(request: Request) -> Response:
    watcher = watcher_of(request)
    check_id = request.path_params["check"]
    watched = _watched(request, check_id)
    window = request.query_params.get("window")
    label = request.query_params.get("label", watched.check.name)
    if window:
        if window not in WINDOWS:
            raise APIError(400, "bad_parameter", f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
        try:
            uptimes = await board_of(watcher).uptime.get([w.check.id for w in watcher.view()])
        except StoreUnavailable:
            raise APIError(503, "store_unavailable", "the result store cannot be read now") from None
        uptime = uptimes.get(check_id)
        image = svg.uptime_badge(label, window, uptime.windows.get(window) if uptime else None)
    else:
        silenced = watcher.is_silenced(watched, time.time())
        image = svg.state_badge(label, watched.state.state.value, silenced)
    return web.Response(
        image, media_type="image/svg+xml", headers={"Cache-Control": f"max-age={MAX_AGE}, must-revalidate"}
    )


async def summary_json(request: Request) -> Response:
    watcher = watcher_of(request)
    url = str(request.base_url)
    return web.JSONResponse(summary(watcher, url=url), headers={"Cache-Control": f"max-age={MAX_AGE}"})


COMPONENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "status", "created_at", "updated_at", "position", "group_id", "page_id", "group"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "status": {"type": "string", "enum": COMPONENT_STATUSES},
        "created_at": TIME,
        "updated_at": TIME,
        "position": {"type": "integer"},
        "description": {"type": ["string", "null"]},
        "showcase": {"type": "boolean"},
        "start_date": {"type": ["string", "null"]},
        "group_id": {"type": ["string", "null"]},
        "page_id": {"type": "string"},
        "group": {"type": "boolean"},
        "only_show_if_degraded": {"type": "boolean"},
        "components": {"type": "array", "items": {"type": "string"}},
    },
}
INCIDENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "status", "created_at", "updated_at", "impact", "incident_updates", "components"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "status": {"type": "string"},
        "impact": {"type": "string", "enum": ["none", "minor", "major", "critical", "maintenance"]},
        "created_at": TIME,
        "updated_at": TIME,
        "started_at": TIME,
        "resolved_at": TIME,
        "monitoring_at": TIME,
        "scheduled_for": TIME,
        "scheduled_until": TIME,
        "incident_updates": {"type": "array", "items": {"type": "object"}},
        "components": {"type": "array", "items": {"type": "object"}},
    },
}
SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["page", "components", "incidents", "scheduled_maintenances", "status"],
    "properties": {
        "page": {
            "type": "object",
            "required": ["id", "name", "url", "time_zone", "updated_at"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "url": {"type": "string"},
                "time_zone": {"type": "string"},
                "updated_at": TIME,
            },
        },
        "components": {"type": "array", "items": COMPONENT_SCHEMA},
        "incidents": {"type": "array", "items": INCIDENT_SCHEMA},
        "scheduled_maintenances": {"type": "array", "items": INCIDENT_SCHEMA},
        "status": {
            "type": "object",
            "required": ["indicator", "description"],
            "properties": {
                "indicator": {"type": "string", "enum": list(INDICATORS)},
                "description": {"type": "string"},
            },
        },
    },
}
CHECK_PARAM = Param("check", "path", {"type": "string"}, "the check's node id (URL-encoded or not)")


def endpoints() -> Sequence[Endpoint]:
    return [
        Endpoint(
            "GET",
            "/",
            status_page,
            Access.PUBLIC,
            "The status page (HTML)",
            "getStatusPage",
            TAG,
            params=(Param("group", "query", {"type": "string"}, "group the checks by this label (default: suite)"),),
            media_type="text/html",
            documented=False,
        ),
        Endpoint(
            "GET",
            "/checks/{check:path}",
            check_page,
            Access.PUBLIC,
            "A check's status page (HTML)",
            "getCheckStatusPage",
            TAG,
            params=(CHECK_PARAM,),
            media_type="text/html",
            documented=False,
        ),
        Endpoint(
            "GET",
            "/badge/{check:path}.svg",
            badge,
            Access.PUBLIC,
            "A check's status badge (SVG): its state, or its uptime over ?window=",
            "getBadge",
            TAG,
            params=(
                CHECK_PARAM,
                Param("window", "query", {"type": "string", "enum": list(WINDOWS)}, "show the uptime over this window"),
                Param("label", "query", {"type": "string"}, "the badge's left text (default: the check's name)"),
            ),
            responses={
                200: ("the badge", {"type": "string"}),
                **not_found("check"),
                400: ("an unknown window", None),
                **STORE_DOWN,
            },
            media_type="image/svg+xml",
        ),
        Endpoint(
            "GET",
            SUMMARY_PATH,
            summary_json,
            Access.PUBLIC,
            "The status in Statuspage's summary.json shape, for status aggregators",
            "getStatusSummary",
            TAG,
            responses={200: ("the summary", SUMMARY_SCHEMA)},
        ),
    ]
