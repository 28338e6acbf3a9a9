"""``/api/v1/notifications``: the outbox as people read it (what went out, what waits, what
the receivers refused) and sending one entry again.

The list reads the store's outbox, so it shows what earlier watchers sent too,
whether or not receivers are configured now. Sending again needs receivers: a
watcher without any answers 404, saying so. An entry shows what its message says
(check, state, severity, message) and how its delivery went; never a receiver's
URL, key or token (the event's text was masked when it was made).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from fraiseql_checks.api import web
from fraiseql_checks.api.endpoint import (
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
    page_of,
    paginated,
    query_window,
    watcher_of,
)
from fraiseql_checks.config import Config
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.outbox import Kind, OutboxEntry, Status, message_key
from fraiseql_checks.stores import StoreUnavailable

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fraiseql_checks.notify.watching import Notifications
    from fraiseql_checks.watch.watcher import Watcher

T = TypeVar("T")

#: How long one store call may take before the API answers 503.
STORE_TIMEOUT = 5.0
#: What of the event an entry shows.
EVENT_FIELDS = ("name", "state", "severity", "suite", "message", "reason")

ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "receiver", "check", "kind", "status", "attempts", "last_error", "created_at", "sent_at"],
    "properties": {
        "id": {"type": "string"},
        "receiver": {"type": "string"},
        "check": {"type": "string", "description": "the check it is about (empty for a test or a target)"},
        "kind": {"type": "string", "enum": [k.value for k in Kind]},
        "status": {"type": "string", "enum": [s.value for s in Status]},
        "attempts": {"type": "integer", "minimum": 0},
        "last_error": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "sent_at": TIME,
        "next_attempt_at": TIME,
        "root_cause": {"type": "string"},
        "event": {
            "type": "object",
            "description": "what the message says: " + ", ".join(EVENT_FIELDS),
            "properties": {name: {"type": ["string", "null"]} for name in EVENT_FIELDS},
        },
    },
}
ID_PARAM = Param("id", "path", {"type": "string"}, "the entry's id")


def notifications_of(watcher: Watcher) -> Notifications | None:
    from fraiseql_checks.notify.watching import PLUGIN_NAME, Notifications

    plugin = watcher.config.pluginmanager.get_plugin(PLUGIN_NAME)
    return plugin if isinstance(plugin, Notifications) else None


def entry_json(entry: OutboxEntry) -> dict[str, Any]:
    event = {name: _text(entry.event.get(name)) for name in EVENT_FIELDS}
    return {
        "id": entry.id,
        "receiver": entry.receiver,
        "check": entry.check_id,
        "kind": entry.kind.value,
        "status": entry.status.value,
        "attempts": entry.attempts,
        "last_error": entry.last_error,
        "created_at": iso(entry.created_at),
        "sent_at": iso(entry.sent_at),
        "next_attempt_at": iso(entry.next_attempt_at) if entry.status is Status.PENDING else None,
        "root_cause": entry.root_cause,
        "event": event,
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


async def _store(watcher: Watcher, call: Awaitable[T]) -> T:
    import asyncio

    try:
        return await asyncio.wait_for(call, STORE_TIMEOUT)
    except (StoreUnavailable, TimeoutError) as exc:
        reason = str(exc) or f"no answer within {STORE_TIMEOUT:g}s"
        raise APIError(503, "store_unavailable", watcher.config.mask(reason)) from None


async def list_notifications(request: Request) -> Response:
    watcher = watcher_of(request)
    raw_status = request.query_params.get("status") or None
    try:
        status = None if raw_status is None else Status(raw_status)
    except ValueError:
        allowed = ", ".join(s.value for s in Status)
        raise APIError(400, "bad_parameter", f"status must be one of {allowed}, got {raw_status!r}") from None
    since, until = query_window(request, time.time() + 1)
    check_id = request.query_params.get("check") or None
    receiver = request.query_params.get("receiver") or None
    entries = await _store(watcher, watcher.writer.store.outbox(since, until, status=status, check_id=check_id))
    chosen = [e for e in reversed(entries) if receiver is None or e.receiver == receiver]
    page = page_of(request, chosen)
    page["items"] = [entry_json(entry) for entry in page["items"]]
    return web.JSONResponse(page)


async def resend(watcher: Watcher, notifications: Notifications, entry_id: str) -> OutboxEntry:
    """Make a done entry pending again and hand it to the sender: at once, no attempts, under a
    fresh idempotency key (a receiver that had it must not drop it as a repeat)."""
    store = watcher.writer.store
    entry = await _store(watcher, store.outbox_entry(entry_id))
    if entry is None:
        raise APIError(404, "not_found", f"no notification {entry_id!r} (GET {PREFIX}/notifications lists them)")
    if entry.status is Status.PENDING:
        raise APIError(409, "pending", f"notification {entry_id} is still pending: the watcher is sending it")
    if entry.receiver not in notifications.settings.receivers:
        raise APIError(409, "no_receiver", f"the receiver {entry.receiver!r} is no longer configured")
    now = time.time()
    key = message_key([entry.id, f"resent at {now!r}"])
    reopened = await _store(watcher, store.reopen_outbox(entry_id, now, key))
    if reopened is None:  # another request made it pending meanwhile
        raise APIError(409, "pending", f"notification {entry_id} is still pending: the watcher is sending it")
    notifications.sender.add([reopened])
    watcher.say(f"notify: notification {entry_id} to {entry.receiver!r} ({entry.status.value}) is sent again")
    return reopened


async def resend_notification(request: Request) -> Response:
    watcher = watcher_of(request)
    notifications = notifications_of(watcher)
    if notifications is None:
        raise APIError(404, "notifications_off", "this watcher sends no notifications: no notify receivers are set")
    entry = await resend(watcher, notifications, request.path_params["id"])
    return web.JSONResponse(entry_json(entry), 202)


def endpoints() -> Sequence[Endpoint]:
    return [
        Endpoint(
            "GET",
            f"{PREFIX}/notifications",
            list_notifications,
            Access.READ,
            "Notifications in a window (recent, pending, sent, dead, folded), newest first",
            "listNotifications",
            "notifications",
            params=(
                Param("status", "query", {"type": "string", "enum": [s.value for s in Status]}),
                *WINDOW_PARAMS,
                Param("receiver", "query", {"type": "string"}),
                Param("check", "query", {"type": "string"}, "the check's node id"),
                *PAGINATION,
            ),
            responses={200: ("a page of notifications", paginated(ENTRY_SCHEMA)), **STORE_DOWN},
        ),
        Endpoint(
            "POST",
            f"{PREFIX}/notifications/{{id}}/resend",
            resend_notification,
            Access.ADMIN,
            "Send a sent, dead or folded notification again, now",
            "resendNotification",
            "notifications",
            params=(ID_PARAM,),
            responses={
                202: ("the notification, pending again: the sender has it", ENTRY_SCHEMA),
                404: ("no such notification, or this watcher sends none", None),
                409: ("it is still pending, or its receiver is no longer configured", None),
                **STORE_DOWN,
            },
        ),
    ]


@hookimpl
def fraiseql_api_endpoints(config: Config) -> Sequence[Endpoint]:
    return endpoints()
