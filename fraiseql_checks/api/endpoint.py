"""One declaration per route: Starlette serves it, the OpenAPI document describes it.

Each API module lists its ``Endpoint``s (method, path, who may call it, the
handler, its parameters and its answers as JSON Schema). ``app.build_app`` turns
them into Starlette routes behind the token check; ``openapi.document`` turns the
same declarations into ``/api/v1/openapi.json``. A route that is not declared here
is neither served nor documented: the two cannot drift.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fraiseql_checks.api import web

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from fraiseql_checks.watch.watcher import Watcher

PREFIX = "/api/v1"
#: A list answers at most this many items per page, ``limit`` at most ``MAX_LIMIT``.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

Schema = Mapping[str, Any]
Handler = Callable[["Request"], Awaitable["Response"]]

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.fullmatch(value):
        return False
    datetime.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    return True


@functools.cache
def formats() -> Any:
    """The formats the API enforces in query parameters and bodies (JSON Schema only
    annotates them): a ``jsonschema.FormatChecker``, made when the API is first built
    (jsonschema is imported then, not at every start of the tool)."""
    import jsonschema  # type: ignore[import-untyped]

    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date-time", raises=ValueError)(_is_date_time)
    return checker


#: A time in a query parameter: RFC 3339, or seconds since the epoch (``parse_time`` reads both).
TIME_PARAM: Schema = {
    "type": "string",
    "description": "a time (RFC 3339 or epoch seconds)",
    "anyOf": [{"format": "date-time"}, {"pattern": r"^[0-9]{1,11}(\.[0-9]{1,9})?$"}],
}
#: A time in an answer: RFC 3339 (UTC), ``null`` when there is none.
TIME: Schema = {"type": ["string", "null"], "format": "date-time"}
#: The window a list of results, changes or notifications covers when the request gives no ``since``.
DEFAULT_WINDOW = 24 * 3600.0
#: The answer of a route that reads the store when the store cannot be read.
STORE_DOWN: Mapping[int, tuple[str, Schema | None]] = {503: ("the result store cannot be read now", None)}


def not_found(what: str) -> Mapping[int, tuple[str, Schema | None]]:
    """The 404 answer of a route about one ``what`` (``check``, ``silence``)."""
    return {404: (f"no such {what}", None)}


class Access(enum.StrEnum):
    """Who may call a route."""

    #: Anyone (``/``, badges, the Statuspage summary) unless ``api.private`` is set.
    PUBLIC = "public"
    #: The read token or the admin token.
    READ = "read"
    #: The admin token only.
    ADMIN = "admin"


@dataclasses.dataclass(frozen=True)
class Param:
    """A path or query parameter."""

    name: str
    where: str  # "path" or "query"
    schema: Schema
    description: str = ""
    required: bool = False


@dataclasses.dataclass(frozen=True)
class Endpoint:
    method: str
    #: Starlette's path, e.g. ``/api/v1/checks/{check:path}/results``; ``:path`` lets a
    #: check id hold ``/`` (sent URL-encoded or not).
    path: str
    handler: Handler
    access: Access
    summary: str
    #: The operation's id in the OpenAPI document (unique).
    operation: str
    tag: str
    params: Sequence[Param] = ()
    #: The JSON Schema of the request body (``None``: no body).
    body: Schema | None = None
    #: Status → (description, JSON Schema of the body or ``None``); errors are added.
    responses: Mapping[int, tuple[str, Schema | None]] = dataclasses.field(default_factory=dict)
    #: The media type of the 200 answer when it is not JSON (``text/html``, ``image/svg+xml``).
    media_type: str = "application/json"
    #: Shown in the OpenAPI document (``False`` for the status page's HTML routes).
    documented: bool = True

    @property
    def openapi_path(self) -> str:
        """The path as OpenAPI writes it: ``{check}`` without Starlette's converter (``:path``, ...)."""
        return re.sub(r"\{(\w+):\w+\}", r"{\1}", self.path)


# ---- what handlers share ---------------------------------------------------------------------


class APIError(Exception):
    """Answered as ``{"error": {"status", "code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message}}


def error_response(error: APIError) -> JSONResponse:
    return web.JSONResponse(error_body(error.status, error.code, error.message), error.status, headers=error.headers)


def watcher_of(request: Request) -> Watcher:
    watcher: Watcher = request.app.state.watcher
    return watcher


def query_int(request: Request, name: str, default: int, lowest: int = 0, highest: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise APIError(400, "bad_parameter", f"{name} must be a whole number, got {raw!r}") from None
    if value < lowest or (highest is not None and value > highest):
        top = f" and {highest}" if highest is not None else ""
        raise APIError(400, "bad_parameter", f"{name} must be between {lowest}{top}, got {value}")
    return value


def query_time(request: Request, name: str, default: float) -> float:
    """A time parameter: seconds since the epoch or an RFC 3339 date-time."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    return parse_time(raw, name)


def query_window(request: Request, until: float) -> tuple[float, float]:
    """``since`` and ``until`` (``WINDOW_PARAMS``): by default the ``DEFAULT_WINDOW`` before ``until``."""
    end = query_time(request, "until", until)
    start = query_time(request, "since", end - DEFAULT_WINDOW)
    if start > end:
        raise APIError(400, "bad_parameter", "since must not be after until")
    return start, end


def parse_time(raw: Any, name: str) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if not math.isfinite(raw):
            raise APIError(400, "bad_parameter", f"{name} must be a finite time")
        return float(raw)
    if not isinstance(raw, str):
        raise APIError(400, "bad_parameter", f"{name} must be a time (RFC 3339 or epoch seconds), got {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        try:
            moment = datetime.datetime.fromisoformat(raw.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            raise APIError(
                400, "bad_parameter", f"{name} must be a time (RFC 3339 or epoch seconds), got {raw!r}"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return moment.timestamp()
    if not math.isfinite(value):
        raise APIError(400, "bad_parameter", f"{name} must be a finite time")
    return value


def iso(epoch: float | None) -> str | None:
    """An epoch time as RFC 3339 (UTC), ``None`` for ``None``."""
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).isoformat().replace("+00:00", "Z")


def page_of(request: Request, items: Sequence[Any]) -> dict[str, Any]:
    """``items`` cut to the request's ``limit`` and ``offset``, with the total and the next page's offset."""
    limit = query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = query_int(request, "offset", 0, 0)
    chosen = list(items[offset : offset + limit])
    following = offset + limit if offset + limit < len(items) else None
    return {"items": chosen, "total": len(items), "limit": limit, "offset": offset, "next_offset": following}


PAGINATION = (
    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
    Param("offset", "query", {"type": "integer", "minimum": 0, "default": 0}),
)

#: ``since`` and ``until`` of a route listing what happened in a window (``query_window`` reads them).
WINDOW_PARAMS = (
    Param("since", "query", TIME_PARAM, "RFC 3339 or epoch seconds (default: 24 hours ago)"),
    Param("until", "query", TIME_PARAM, "RFC 3339 or epoch seconds (default: now)"),
)


def paginated(item: Schema) -> Schema:
    """The schema of a page of ``item``s."""
    return {
        "type": "object",
        "required": ["items", "total", "limit", "offset", "next_offset"],
        "properties": {
            "items": {"type": "array", "items": item},
            "total": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1},
            "offset": {"type": "integer", "minimum": 0},
            "next_offset": {"type": ["integer", "null"], "minimum": 0},
        },
        "additionalProperties": False,
    }
