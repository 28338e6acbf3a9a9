"""``type: slack``: a Block Kit message, by incoming webhook or ``chat.postMessage``.

Give exactly one of:

- ``url``: an incoming webhook (``https://hooks.slack.com/services/...``); the
  message goes to the webhook's channel;
- ``token`` and ``channel``: a bot token (``xoxb-...``) posting with
  ``chat.postMessage`` (``api_url``, Slack's by default) to ``channel``.

The message has a header (the title), a line with the state and severity (and
``mention``, e.g. ``<!here>``, when something is wrong), one section per root
cause naming the checks it made fail, one section per other event (check, what
happened, severity, message, since when, trace id) with "Runbook" and "Dashboard"
buttons when the event has absolute links to them, and the title again as the
notification's fallback ``text``. Slack's limits hold (a header of 150 characters,
a section of 3,000, 50 blocks: what does not fit is counted in a last line).
Neither the webhook URL nor the token is ever part of the body.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from fraiseql_checks.config import Setting, as_str
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.notify import templates
from fraiseql_checks.notify.message import Cause, Event, Message
from fraiseql_checks.notify.notifier import (
    DeliveryError,
    HTTPRequest,
    Notifier,
    Notifiers,
    Outgoing,
    Transport,
    check_http_response,
    retry_after,
)
from fraiseql_checks.outbox import Kind

API_URL = "https://slack.com/api/chat.postMessage"
#: Slack's limits (https://api.slack.com/reference/block-kit/blocks).
MAX_BLOCKS = 50
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
BUTTON_URL_LIMIT = 3000
#: ``chat.postMessage`` errors that a later attempt may not get (the rest are permanent).
RETRYABLE_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})

_EMOJI = {
    Kind.FIRING: ":red_circle:",
    Kind.REMINDER: ":red_circle:",
    Kind.STILL_FAILING: ":red_circle:",
    Kind.FLAPPING: ":large_orange_circle:",
    Kind.RESOLVED: ":large_green_circle:",
    Kind.RESOLVED_DURING_SILENCE: ":large_green_circle:",
    Kind.CAUSE_RESOLVED: ":large_green_circle:",
    Kind.TEST: ":information_source:",
}
_CUT = " … (cut)"


def escape(text: str) -> str:
    """``text`` safe in Slack ``mrkdwn``: ``&``, ``<`` and ``>`` are control characters there
    (``<!channel>``, ``<https://...|link>``), so a check's message cannot mention or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quote(text: str) -> str:
    """``text`` escaped, as a ``mrkdwn`` block quote's lines."""
    return escape(text).replace("\n", "\n> ")


def fit(text: str, limit: int, escaping: Callable[[str], str] = escape) -> str:
    """``text`` escaped, at most ``limit`` characters, saying so when cut (never mid-entity)."""
    escaped = escaping(text)
    if len(escaped) <= limit:
        return escaped
    budget = limit - len(_CUT)
    kept: list[str] = []
    size = 0
    for char in text:
        piece = escaping(char)
        if size + len(piece) > budget:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept).rstrip() + _CUT


def shorten(text: str, limit: int) -> str:
    """Plain text at most ``limit`` characters, ending in ``…`` when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def emoji(event: Event) -> str:
    if event.kind is Kind.SETTLED:
        return ":red_circle:" if event.problem else ":large_green_circle:"
    return _EMOJI.get(event.kind, ":white_circle:")


def number(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def absolute(url: str) -> bool:
    return url.startswith(("https://", "http://")) and len(url) <= BUTTON_URL_LIMIT


def header_block(message: Message) -> dict[str, Any]:
    if message.test:
        mark = ":information_source:"
    else:
        mark = ":red_circle:" if message.problem else ":large_green_circle:"
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": shorten(f"{mark} {message.title}", HEADER_LIMIT), "emoji": True},
    }


def status_block(message: Message, mention: str) -> dict[str, Any]:
    if message.test:
        status = "test"
    else:
        status = "firing" if message.problem else "resolved"
    count = len(message.events)
    line = f"*State:* {status}   *Severity:* {message.severity}   *Events:* {count}   *From:* {escape(message.source)}"
    if mention and message.problem and not message.test:
        line = f"{mention} {line}"
    return _section(line)


def cause_block(cause: Cause) -> dict[str, Any]:
    """A root cause and the checks it made fail (or that it is reachable again)."""
    checks = [event for event in cause.events if event.kind is not Kind.CAUSE_RESOLVED]
    resolved = [event for event in cause.events if event.kind is Kind.CAUSE_RESOLVED]
    mark = ":rotating_light:" if cause.problem else ":large_green_circle:"
    head = f"{mark} *{escape(cause.summary)}*"
    lines = [f"`{escape(event.name)}` ({escape(event.severity)}): {escape(event.verb)}" for event in checks]
    affected = sorted({name.rsplit("::", 1)[-1] for event in resolved for name in event.affected})
    if affected:
        lines.append("Had failed because of it: " + ", ".join(f"`{escape(name)}`" for name in affected))
    for event in cause.events:
        if event.kind in (Kind.CAUSE_RESOLVED, Kind.REMINDER) and event.message:
            lines.append(f"_{escape(event.message)}_")
    return _section(_join(head, lines))


def event_blocks(event: Event, index: int) -> list[dict[str, Any]]:
    """A section for one event, and an actions block with its links when it has any."""
    if event.kind is Kind.TEST:
        return [_section(fit(event.message or "a test message", SECTION_LIMIT))]
    head = f"{emoji(event)} *{escape(event.name)}* is {escape(event.verb)} ({escape(event.severity)})"
    details: list[str] = []
    if event.reason:
        details.append(f"_Why:_ {escape(event.reason)}")
    if event.since:
        details.append(f"_Since:_ {templates.when(event.since)}")
    if event.values:
        details.append("_Values:_ " + ", ".join(f"{escape(k)} = {number(v)}" for k, v in event.values.items()))
    if event.check_id:
        details.append(f"_Check:_ `{escape(event.check_id)}`")
    if event.trace_id:
        details.append(f"_Trace:_ `{escape(event.trace_id)}`")
    for label, url in (("Runbook", event.runbook_url), ("Dashboard", event.dashboard_url)):
        if url and not absolute(url):
            details.append(f"_{label}:_ `{escape(url)}`")
    if event.message:
        # the message gets what the rest of the section leaves of its limit
        room = SECTION_LIMIT - len("\n".join([head, *details])) - len("\n> ")
        details.insert(0, "> " + fit(event.message, max(room, len(_CUT)), quote))
    blocks = [_section(_join(head, details))]
    buttons = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": label},
            "url": url,
            "action_id": f"{label.lower()}-{index}",
        }
        for label, url in (("Runbook", event.runbook_url), ("Dashboard", event.dashboard_url))
        if absolute(url)
    ]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return blocks


def blocks_of(message: Message, mention: str = "") -> list[dict[str, Any]]:
    """The message's blocks, at most ``MAX_BLOCKS``: what does not fit is counted last."""
    blocks = [header_block(message), status_block(message, mention)]
    parts: list[list[dict[str, Any]]] = [[cause_block(cause)] for cause in message.causes]
    parts += [event_blocks(event, index) for index, event in enumerate(message.others)]
    for shown, part in enumerate(parts):
        left = len(parts) - shown
        room = MAX_BLOCKS - len(blocks) - (0 if left == 1 else 1)  # keep one for "... and N more"
        if len(part) > room:
            more = f"… and {left} more, not shown: a Slack message holds at most {MAX_BLOCKS} blocks"
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
            break
        blocks.extend(part)
    return blocks


def body_of(message: Message, options: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for ``message`` (without the URL or token, which are not in bodies)."""
    mention = options.get("mention") or ""
    fallback = escape(message.title)
    if mention and message.problem and not message.test:
        fallback = f"{mention} {fallback}"
    body: dict[str, Any] = {
        "text": shorten(fallback, SECTION_LIMIT),
        "blocks": blocks_of(message, mention),
        "unfurl_links": False,
        "unfurl_media": False,
    }
    for key in ("channel", "username", "icon_emoji"):
        if options.get(key):
            body[key] = options[key]
    return body


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _join(head: str, lines: list[str]) -> str:
    """``head`` and ``lines`` as one section text, cut to the section limit."""
    text = "\n".join([head, *lines])
    if len(text) <= SECTION_LIMIT:
        return text
    kept = text[: SECTION_LIMIT - len(_CUT)]
    return (kept.rsplit("\n", 1)[0] if "\n" in kept else kept) + _CUT


class Slack(Notifier):
    type: ClassVar[str] = "slack"
    description: ClassVar[str] = "a Block Kit message to Slack (incoming webhook, or chat.postMessage with a bot token)"
    settings = (
        Setting("url", as_str, help="an incoming webhook URL", secret=True),
        Setting("token", as_str, help="a bot token (xoxb-...) for chat.postMessage, instead of url", secret=True),
        Setting("channel", as_str, help="the channel chat.postMessage posts to (#name or an id)"),
        Setting("api_url", as_str, default=API_URL, help="where chat.postMessage is (Slack's by default)"),
        Setting("username", as_str, help="the name messages are posted under"),
        Setting("icon_emoji", as_str, help="the icon messages are posted with (:rotating_light:)"),
        Setting("mention", as_str, help="put before a problem's message, e.g. <!here> or <@U024BE7LH>"),
    )

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        url, token = options.get("url"), options.get("token")
        if bool(url) == bool(token):
            raise ValueError("a slack receiver needs either url (an incoming webhook) or token (with channel)")
        if token and not options.get("channel"):
            raise ValueError("a slack receiver with a token needs a channel")
        where = url or options.get("api_url") or ""
        if not where.startswith(("https://", "http://")):
            raise ValueError(f"{'url' if url else 'api_url'}: expected an http(s) URL")

    def render(self, message: Message) -> list[Outgoing]:
        body = json.dumps(body_of(message, self.options), separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        token = self.options.get("token")
        if token:
            headers["Authorization"] = f"Bearer {token}"
            return [HTTPRequest(self.options["api_url"], body, headers, what=f"chat.postMessage {message.key}")]
        return [HTTPRequest(self.options["url"], body, headers, what=f"message {message.key}")]

    async def send(self, outgoing: Outgoing, transport: Transport) -> None:
        """Post it; ``chat.postMessage`` answers 200 with ``{"ok": false, "error": ...}`` when it
        refuses: permanent, unless the error is one a later attempt may not get."""
        if not isinstance(outgoing, HTTPRequest):
            raise TypeError(f"{self.type} sends HTTP requests, got {type(outgoing).__name__}")
        response = await transport.post(outgoing)
        check_http_response(response)
        if not self.options.get("token"):
            return
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise DeliveryError(
                f"chat.postMessage answered HTTP {response.status_code} without Slack's JSON", permanent=True
            )
        if answer.get("ok") is True:
            return
        error = str(answer.get("error") or "unknown error")
        if error in RETRYABLE_ERRORS:
            raise DeliveryError(
                f"chat.postMessage: {error}", retry_after=retry_after(response.headers.get("retry-after"))
            )
        raise DeliveryError(f"chat.postMessage: {error}", permanent=True)

    def describe(self) -> str:
        if self.options.get("token"):
            return f"slack chat.postMessage {self.options.get('channel', '')} ({self.options.get('api_url', API_URL)})"
        return super().describe()


@hookimpl
def fraiseql_add_notifiers(notifiers: Notifiers) -> None:
    notifiers.register(Slack)
