"""``/api/v1/silences``: make, list, read and delete silences; they hold at once.

A silence names the checks it holds by matchers (a glob on the check id, tags,
labels, severity), says why, and ends at a time in the future. While it holds, the
checks still run and are stored, marked silenced; ``fraiseql_check_silenced`` is 1
and notifications stay quiet. The watcher keeps the silences in its store
(``watch/silences.py``); one made while the store is away holds all the same and
is answered with ``"persisted": false``, and stored once the store is back.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from fraiseql_checks.api import web
from fraiseql_checks.api.endpoint import (
    PAGINATION,
    PREFIX,
    Access,
    APIError,
    Endpoint,
    Param,
    iso,
    not_found,
    page_of,
    paginated,
    parse_time,
    watcher_of,
)
from fraiseql_checks.config import Config
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.silences import Matchers, Silence, new_silence_id
from fraiseql_checks.stores import StoreUnavailable
from fraiseql_checks.watch import silences as watching

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fraiseql_checks.watch.silences import Silences
    from fraiseql_checks.watch.watcher import Watcher

#: The longest reason kept.
MAX_REASON = 2000
STATUSES = ["pending", "active", "expired"]
TIME_INPUT = {
    "oneOf": [
        {"type": "string", "minLength": 1, "description": "RFC 3339 date-time"},
        {"type": "number", "description": "seconds since the epoch"},
    ]
}
MATCHERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "which checks the silence holds: every matcher given must match (at least one)",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "check": {"type": "string", "minLength": 1, "description": "a glob on the check id (checks/db/*)"},
        "tags": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": 1,
            "description": "any of these among the check's tags",
        },
        "labels": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "minProperties": 1,
            "description": "each equal to the check's label of that name",
        },
        "severity": {"type": "string", "minLength": 1},
    },
}
CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["matchers", "reason", "ends_at"],
    "additionalProperties": False,
    "properties": {
        "matchers": MATCHERS_SCHEMA,
        "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON, "pattern": "\\S"},
        "starts_at": {**TIME_INPUT, "description": "when it starts holding (default: now)"},
        "ends_at": {**TIME_INPUT, "description": "when it ends: in the future"},
        "created_by": {"type": "string", "maxLength": 200},
    },
}
SILENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "matchers",
        "reason",
        "starts_at",
        "ends_at",
        "created_at",
        "created_by",
        "status",
        "persisted",
    ],
    "properties": {
        "id": {"type": "string"},
        "matchers": MATCHERS_SCHEMA,
        "reason": {"type": "string"},
        "starts_at": {"type": "string", "format": "date-time"},
        "ends_at": {"type": "string", "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"},
        "created_by": {"type": "string"},
        "status": {"type": "string", "enum": STATUSES, "description": "pending: starts later"},
        "persisted": {
            "type": "boolean",
            "description": "the store has it (false: made while the store was away; it holds all the same)",
        },
    },
}
ID_PARAM = Param("id", "path", {"type": "string"}, "the silence's id")
NOT_FOUND = not_found("silence")
STARTING = {503: ("the watcher is starting: its silences are not loaded yet", None)}


def silences_of(watcher: Watcher) -> Silences:
    found = watching.silences_of(watcher)
    if found is None:
        raise APIError(503, "not_ready", "the watcher is starting; silences are not loaded yet")
    return found


def silence_json(silence: Silence, silences: Silences, now: float) -> dict[str, Any]:
    status = "pending" if now < silence.starts_at else "active" if now < silence.ends_at else "expired"
    return {
        "id": silence.id,
        "matchers": silence.matchers.to_json(),
        "reason": silence.reason,
        "starts_at": iso(silence.starts_at),
        "ends_at": iso(silence.ends_at),
        "created_at": iso(silence.created_at),
        "created_by": silence.created_by,
        "status": status,
        "persisted": silence.id not in silences.unsaved,
    }


#: The latest time a silence may end: the last second of the year 9999 (RFC 3339's last).
LATEST = 253_402_300_799.0


def _time(value: Any, name: str) -> float:
    try:
        moment = parse_time(value, name)
    except APIError as error:
        raise APIError(422, "invalid_body", error.message) from None
    if not 0 <= moment <= LATEST:
        raise APIError(422, "invalid_body", f"{name} must be between 1970 and the end of 9999, got {value!r}")
    return moment


def _unicode(value: Any, where: str) -> None:
    """``APIError`` 422 for a string JSON could carry but no store can keep (a lone surrogate)."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            raise APIError(422, "invalid_body", f"{where}: not valid Unicode (a lone surrogate)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _unicode(key, where)
            _unicode(item, f"{where}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _unicode(item, f"{where}/{index}")


def silence_of_body(body: dict[str, Any], now: float) -> Silence:
    """The silence a request asks for; ``APIError`` 422 when its times make no sense."""
    for name, value in body.items():
        _unicode(value, name)
    starts_at = _time(body["starts_at"], "starts_at") if "starts_at" in body else now
    ends_at = _time(body["ends_at"], "ends_at")
    if ends_at <= now:
        raise APIError(
            422,
            "invalid_body",
            f"ends_at: {iso(ends_at)} is in the past (now is {iso(now)}); a silence must end in the future",
        )
    if ends_at <= starts_at:
        raise APIError(422, "invalid_body", f"ends_at ({iso(ends_at)}) must be after starts_at ({iso(starts_at)})")
    return Silence(
        id=new_silence_id(),
        matchers=Matchers.of(body["matchers"]),
        reason=body["reason"].strip(),
        starts_at=starts_at,
        ends_at=ends_at,
        created_at=now,
        created_by=body.get("created_by", ""),
    )


def _found(silences: Silences, request: Request) -> Silence:
    silence_id = request.path_params["id"]
    silence = silences.by_id.get(silence_id)
    if silence is None:
        raise APIError(404, "not_found", f"no silence {silence_id!r} (GET {PREFIX}/silences lists them)")
    return silence


async def list_silences(request: Request) -> Response:
    silences = silences_of(watcher_of(request))
    every = request.query_params.get("all") == "true"  # the declared boolean: checked before this runs
    now = time.time()
    chosen = [s for s in silences.listed() if every or s.ends_at > now]
    page = page_of(request, chosen)
    page["items"] = [silence_json(s, silences, now) for s in page["items"]]
    return web.JSONResponse(page)


async def create_silence(request: Request) -> Response:
    silences = silences_of(watcher_of(request))
    silence = silence_of_body(request.state.json_body, time.time())
    await silences.add(silence)
    location = {"Location": f"{PREFIX}/silences/{silence.id}"}
    return web.JSONResponse(silence_json(silence, silences, time.time()), 201, headers=location)


async def get_silence(request: Request) -> Response:
    silences = silences_of(watcher_of(request))
    return web.JSONResponse(silence_json(_found(silences, request), silences, time.time()))


async def delete_silence(request: Request) -> Response:
    watcher = watcher_of(request)
    silences = silences_of(watcher)
    silence_id = request.path_params["id"]
    try:
        existed = await silences.remove(silence_id)
    except StoreUnavailable as exc:
        raise APIError(503, "store_unavailable", watcher.config.mask(str(exc))) from None
    if not existed:
        raise APIError(404, "not_found", f"no silence {silence_id!r} (GET {PREFIX}/silences lists them)")
    return web.Response(status_code=204)


def endpoints() -> Sequence[Endpoint]:
    return [
        Endpoint(
            "GET",
            f"{PREFIX}/silences",
            list_silences,
            Access.READ,
            "The silences that have not ended (all=true: the ended ones too), newest first",
            "listSilences",
            "silences",
            params=(
                Param("all", "query", {"type": "boolean", "default": False}, "include the silences that ended"),
                *PAGINATION,
            ),
            responses={200: ("a page of silences", paginated(SILENCE_SCHEMA)), **STARTING},
        ),
        Endpoint(
            "POST",
            f"{PREFIX}/silences",
            create_silence,
            Access.ADMIN,
            "Silence the checks the matchers name until ends_at; it holds at once",
            "createSilence",
            "silences",
            body=CREATE_SCHEMA,
            responses={
                201: ("the silence, holding (persisted: false when the store was away)", SILENCE_SCHEMA),
                **STARTING,
            },
        ),
        Endpoint(
            "GET",
            f"{PREFIX}/silences/{{id}}",
            get_silence,
            Access.READ,
            "One silence",
            "getSilence",
            "silences",
            params=(ID_PARAM,),
            responses={200: ("the silence", SILENCE_SCHEMA), **NOT_FOUND, **STARTING},
        ),
        Endpoint(
            "DELETE",
            f"{PREFIX}/silences/{{id}}",
            delete_silence,
            Access.ADMIN,
            "End a silence now and forget it",
            "deleteSilence",
            "silences",
            params=(ID_PARAM,),
            responses={
                204: ("deleted", None),
                **NOT_FOUND,
                503: ("the watcher is starting, or the store cannot say whether it has that silence now", None),
            },
        ),
    ]


@hookimpl
def fraiseql_api_endpoints(config: Config) -> Sequence[Endpoint]:
    return endpoints()


@hookimpl
def fraiseql_watch_start(watcher: Watcher) -> Awaitable[None]:
    return watching.start(watcher)


@hookimpl
def fraiseql_watch_stop(watcher: Watcher) -> Awaitable[None] | None:
    return watching.stop(watcher)
