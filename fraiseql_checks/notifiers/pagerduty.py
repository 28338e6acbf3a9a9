"""``type: pagerduty``: PagerDuty Events API v2, one event per check change.

Each check has one PagerDuty alert, whose ``dedup_key`` is ``fraiseql-checks/<check
id>`` (a SHA-256 of it when longer than PagerDuty's 255 characters), so a trigger
sent twice (a retry after a lost answer, two watchers) is one alert, and the
resolve finds it. What each event becomes:

- ``firing``, ``flapping``, ``still_failing`` (a silence ended while failing) and
  ``settled`` while failing: ``trigger``, with the check's severity (``critical``,
  ``warning``, ``info``; anything else is ``error``), its message as the summary,
  the details as ``custom_details`` and the runbook and dashboard as ``links``;
- ``resolved``, ``resolved_during_silence`` and ``settled`` otherwise: ``resolve``;
- ``reminder``: nothing. PagerDuty re-notifies through its own escalation policy
  while an incident is open, and a trigger would open a new incident for a check
  someone has resolved by hand on purpose;
- root causes: checks failing because a target is unreachable are one alert for
  the target (``fraiseql-checks/target:<name>``, the summary naming the checks),
  not one page per check; the target's ``cause_resolved`` resolves it. The policy
  does not send the checks' own recoveries (their cause's recovery speaks for
  them), and a check still failing once the target is back is triggered on its own;
- ``test`` (``fraiseql-check notify test``): a ``trigger`` of severity ``info`` and its
  ``resolve`` at once, under a key of its own, so the route is proven end to end and
  nothing stays open.

PagerDuty answers 202; a 429 or 5xx is retried (``Retry-After`` honoured), a 400
(an invalid event or routing key) is permanent.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterable
from typing import Any, ClassVar

from fraiseql_checks.config import Setting, as_str
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.notify.message import Event, Message
from fraiseql_checks.notify.notifier import HTTPRequest, Notifier, Notifiers, Outgoing
from fraiseql_checks.outbox import Kind

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
#: The Events API v2 limits.
DEDUP_KEY_LIMIT = 255
SUMMARY_LIMIT = 1024
SEVERITIES = ("critical", "error", "warning", "info")
DEDUP_PREFIX = "fraiseql-checks/"
#: The most checks a root cause's details list (the summary counts them all).
CAUSE_CHECKS_LIMIT = 100
CLIENT = "fraiseql-checks"

_TRIGGERS = frozenset({Kind.FIRING, Kind.FLAPPING, Kind.STILL_FAILING})
_RESOLVES = frozenset({Kind.RESOLVED, Kind.RESOLVED_DURING_SILENCE})


def dedup_key(name: str) -> str:
    """``fraiseql-checks/<name>``, or its SHA-256 when that is too long for PagerDuty."""
    key = DEDUP_PREFIX + name
    if len(key) <= DEDUP_KEY_LIMIT:
        return key
    return DEDUP_PREFIX + "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def check_key(event: Event) -> str:
    return dedup_key(event.check_id or event.name)


def target_key(target: str) -> str:
    return dedup_key(f"target:{target}")


def severity(value: str) -> str:
    """Our severity as PagerDuty's: ``critical``, ``warning`` and ``info`` as they are, else ``error``."""
    return value if value in ("critical", "warning", "info") else "error"


def timestamp(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).isoformat()


def summary(text: str) -> str:
    """``text`` on one line, at most ``SUMMARY_LIMIT`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= SUMMARY_LIMIT else line[: SUMMARY_LIMIT - 1].rstrip() + "…"


def links(events: Iterable[Event]) -> list[dict[str, str]]:
    """The events' absolute runbook and dashboard links, each once."""
    found: dict[str, str] = {}
    for event in events:
        for text, href in (("Runbook", event.runbook_url), ("Dashboard", event.dashboard_url)):
            if href.startswith(("https://", "http://")) and href not in found:
                found[href] = text
    return [{"href": href, "text": text} for href, text in found.items()]


def check_details(event: Event) -> dict[str, Any]:
    details: dict[str, Any] = {
        "check": event.check_id,
        "state": event.state,
        "event": event.kind.value,
        "severity": event.severity,
        "message": event.message,
    }
    optional: dict[str, Any] = {
        "reason": event.reason,
        "suite": event.suite,
        "since": timestamp(event.since) if event.since else "",
        "trace_id": event.trace_id,
        "values": dict(event.values),
        "labels": dict(event.labels),
        "root_cause": event.root_cause,
        "description": event.description,
    }
    details.update({key: value for key, value in optional.items() if value})
    return details


class PagerDuty(Notifier):
    type: ClassVar[str] = "pagerduty"
    description: ClassVar[str] = "PagerDuty Events API v2: trigger and resolve one alert per check"
    settings = (
        Setting("routing_key", as_str, help="the integration's routing key (Events API v2)", secret=True),
        Setting("url", as_str, default=EVENTS_URL, help="the events endpoint (e.g. the EU one)"),
        Setting("source", as_str, help="payload.source: the affected system (default: the watcher's name)"),
        Setting("component", as_str, help="payload.component (default: the check's suite)"),
        Setting("group", as_str, help="payload.group: a logical grouping of components"),
        Setting("class", as_str, help="payload.class: the class of the event"),
    )
    groups: ClassVar[bool] = False

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        if not options.get("routing_key"):
            raise ValueError("a pagerduty receiver needs a routing_key (or routing_key_file)")
        if not str(options.get("url", "")).startswith(("https://", "http://")):
            raise ValueError("url: expected an http(s) URL")

    def render(self, message: Message) -> list[Outgoing]:
        """One request per event (causes: one per target), in the order they happened."""
        bodies: list[dict[str, Any]] = []
        triggered: set[str] = set()
        for event in message.events:
            if event.kind is Kind.TEST:
                key = dedup_key(f"test/{message.key}")
                bodies.append(self.trigger(message, key, summary(event.message or message.title), "info", [event]))
                bodies.append(self.resolve(key))
            elif event.kind is Kind.REMINDER:
                continue
            elif event.kind is Kind.CAUSE_RESOLVED:
                bodies.append(self.resolve(target_key(event.root_cause or event.name)))
            elif event.root_cause and event.problem:
                if event.root_cause not in triggered:
                    triggered.add(event.root_cause)
                    bodies.append(self.cause_trigger(message, event.root_cause))
            elif event.kind in _TRIGGERS or (event.kind is Kind.SETTLED and event.problem):
                text = f"{event.name} {event.verb}" + (f": {event.message}" if event.message else "")
                bodies.append(self.trigger(message, check_key(event), summary(text), event.severity, [event]))
            elif event.kind in _RESOLVES or event.kind is Kind.SETTLED:
                bodies.append(self.resolve(check_key(event)))
        return [
            HTTPRequest(
                self.options["url"],
                json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
                {"Content-Type": "application/json"},
                what=f"{body['event_action']} {body['dedup_key']}",
            )
            for body in bodies
        ]

    def trigger(
        self,
        message: Message,
        key: str,
        text: str,
        level: str,
        events: list[Event],
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A ``trigger`` event about ``events`` (the first says when and where)."""
        first = events[0]
        payload: dict[str, Any] = {
            "summary": text,
            "source": self.options.get("source") or message.source,
            "severity": severity(level),
            "timestamp": timestamp(first.at) if first.at else None,
            "component": self.options.get("component") or first.suite or None,
            "group": self.options.get("group"),
            "class": self.options.get("class"),
            "custom_details": details if details is not None else check_details(first),
        }
        body: dict[str, Any] = {
            "routing_key": self.options["routing_key"],
            "event_action": "trigger",
            "dedup_key": key,
            "payload": {name: value for name, value in payload.items() if value is not None},
            "client": CLIENT,
        }
        found = links(events)
        if found:
            body["links"] = found
        dashboards = [
            event.dashboard_url for event in events if event.dashboard_url.startswith(("https://", "http://"))
        ]
        if dashboards:
            body["client_url"] = dashboards[0]
        return body

    def cause_trigger(self, message: Message, target: str) -> dict[str, Any]:
        """One ``trigger`` for every check failing because ``target`` is unreachable."""
        cause = next(cause for cause in message.causes if cause.target == target)
        events = [event for event in cause.events if event.problem]
        order = {"critical": 0, "warning": 1, "info": 2}
        level = min((event.severity for event in events), key=lambda s: order.get(s, 3))
        checks = [event.check_id or event.name for event in events]
        details = {
            "root_cause": target,
            "summary": cause.summary,
            "checks": checks[:CAUSE_CHECKS_LIMIT],
            "checks_not_listed": max(len(checks) - CAUSE_CHECKS_LIMIT, 0),
            "messages": {
                event.check_id or event.name: event.message for event in events[:CAUSE_CHECKS_LIMIT] if event.message
            },
        }
        names = ", ".join(event.name for event in events[:5]) + (", ..." if len(events) > 5 else "")
        text = summary(f"{cause.summary}: {names}")
        return self.trigger(message, target_key(target), text, level, events, details)

    def resolve(self, key: str) -> dict[str, Any]:
        return {"routing_key": self.options["routing_key"], "event_action": "resolve", "dedup_key": key}


@hookimpl
def fraiseql_add_notifiers(notifiers: Notifiers) -> None:
    notifiers.register(PagerDuty)
