"""``type: webhook``: a JSON POST to any URL, signed and idempotent.

The body is documented by ``docs/notification-webhook.schema.json`` (``format:
json``, the default), or is Alertmanager's webhook body, version 4 (``format:
alertmanager``), so a receiver written for Alertmanager works unchanged.

- ``headers``: added to every request (``Authorization: Bearer ${TOKEN}``); their
  values are secrets.
- ``secret``: signs each request as GitHub and Stripe do: the header
  ``X-Fraiseql-Checks-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``
  lets the receiver check the body came from us and is fresh.
- ``Idempotency-Key``: the message's key; a retry after a lost answer repeats it.

With ``format: alertmanager`` each event is an alert as the generated rules would
make it (``FraiseQLCheckFailing`` with the labels ``check``, ``severity``, ``suite``
and the check's own; ``FraiseQLTargetUnreachable`` with ``target`` for an
unreachable target; ``FraiseQLNotificationTest`` for ``notify test``), with the
fingerprint Alertmanager would give it. Alertmanager sends one body per group, and
receivers key incidents on ``groupKey``: so does this format, one request per root
cause (grouped by ``root_cause``) and one per other check (by ``alertname`` and
``check``); a message of several groups sends several requests, their
``Idempotency-Key`` the message's key with ``-1``, ``-2``, ... appended.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from fraiseql_checks.alerting.rules import DESCRIPTION, FAILING, RUNBOOK_URL, SUMMARY
from fraiseql_checks.config import Setting, as_str, one_of
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.notify import templates
from fraiseql_checks.notify.message import Event, Message
from fraiseql_checks.notify.notifier import HTTPRequest, Notifier, Notifiers, Outgoing
from fraiseql_checks.outbox import Kind

SIGNATURE_HEADER = "X-Fraiseql-Checks-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: The version of our own body (``format: json``); the schema names it.
BODY_VERSION = "1"
FORMATS = ("json", "alertmanager")

#: Alertmanager's webhook body version, and its ``endsAt`` of an alert still firing.
ALERTMANAGER_VERSION = "4"
NOT_ENDED = "0001-01-01T00:00:00Z"
#: The alert names of events that are not about one check.
TARGET_UNREACHABLE = "FraiseQLTargetUnreachable"
NOTIFICATION_TEST = "FraiseQLNotificationTest"
#: Labels the alert sets itself: a check label of that name is sent as ``label_<name>``.
OWN_LABELS = ("alertname", "check", "severity", "target", "root_cause")


def as_headers(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"expected a table of header names to strings, got {value!r}")
    return dict(value)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def body_of(message: Message, text: str) -> dict[str, Any]:
    """Our JSON body (``format: json``)."""
    return {
        "version": BODY_VERSION,
        "key": message.key,
        "receiver": message.receiver,
        "status": "firing" if message.problem else "resolved",
        "severity": message.severity,
        "title": message.title,
        "text": text,
        "source": message.source,
        "test": message.test,
        "causes": [
            {
                "target": cause.target,
                "summary": cause.summary,
                "checks": [event.check_id for event in cause.events if event.check_id],
            }
            for cause in message.causes
        ],
        "events": [event.to_json() for event in message.events],
    }


# -- format: alertmanager ----------------------------------------------------------------------


def rfc3339(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: 64-bit FNV-1a over the sorted names and
    values, each followed by the byte 0xff, as 16 hex digits."""
    digest = 0xCBF29CE484222325
    for name in sorted(labels):
        for byte in name.encode() + b"\xff" + labels[name].encode() + b"\xff":
            digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{digest:016x}"


def alert_labels(event: Event) -> dict[str, str]:
    """The alert's labels: its name, what it is about, severity, suite, the check's labels."""
    if event.kind is Kind.TEST:
        labels = {"alertname": NOTIFICATION_TEST}
    elif not event.check_id:
        labels = {"alertname": TARGET_UNREACHABLE, "target": event.name}
    else:
        labels = {"alertname": FAILING, "check": event.check_id}
    labels |= {"severity": event.severity, "suite": event.suite, "root_cause": event.root_cause}
    for name, value in event.labels.items():
        if name != "suite":  # the check's suite is the label, as in the generated rules
            labels[f"label_{name}" if name in OWN_LABELS else name] = value
    return {name: value for name, value in labels.items() if value}  # an empty label is no label


def alert_of(event: Event) -> dict[str, Any]:
    """One alert of Alertmanager's webhook body."""
    labels = alert_labels(event)
    summary = f"{event.name} is {event.verb}"
    annotations = {SUMMARY: summary, DESCRIPTION: event.message or event.reason or event.description or summary}
    if event.runbook_url:
        annotations[RUNBOOK_URL] = event.runbook_url
    if event.dashboard_url:
        annotations["dashboard_url"] = event.dashboard_url
    if event.problem:
        status, starts, ends = "firing", rfc3339(event.since or event.at), NOT_ENDED
    else:
        began = event.since if event.since and event.since <= event.at else event.at
        status, starts, ends = "resolved", rfc3339(began), rfc3339(event.at)
    return {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": event.dashboard_url,
        "fingerprint": fingerprint(labels),
    }


def group_key(labels: Mapping[str, str]) -> str:
    """``{}:{alertname="...", check="..."}``: the root route, then the group's labels."""
    pairs = ", ".join(f"{name}={json.dumps(labels[name], ensure_ascii=False)}" for name in sorted(labels))
    return "{}:{" + pairs + "}"


def _common(items: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not items:
        return {}
    return {name: value for name, value in items[0].items() if all(item.get(name) == value for item in items[1:])}


def groups_of(message: Message) -> list[tuple[dict[str, str], tuple[Event, ...]]]:
    """The message's alert groups: one per root cause, one per other event."""
    groups = [({"root_cause": cause.target}, cause.events) for cause in message.causes]
    for event in message.others:
        labels = alert_labels(event)
        groups.append(({name: labels[name] for name in ("alertname", "check", "target") if name in labels}, (event,)))
    return groups


def alertmanager_body(message: Message, group_labels: Mapping[str, str], events: Iterable[Event]) -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) for one group of ``message``."""
    alerts = [alert_of(event) for event in events]
    return {
        "version": ALERTMANAGER_VERSION,
        "groupKey": group_key(group_labels),
        "truncatedAlerts": 0,
        "status": "firing" if any(alert["status"] == "firing" for alert in alerts) else "resolved",
        "receiver": message.receiver,
        "groupLabels": dict(group_labels),
        "commonLabels": _common([alert["labels"] for alert in alerts]),
        "commonAnnotations": _common([alert["annotations"] for alert in alerts]),
        "externalURL": "",
        "alerts": alerts,
    }


class Webhook(Notifier):
    type: ClassVar[str] = "webhook"
    description: ClassVar[str] = "a signed JSON POST to any URL (our body, or Alertmanager's webhook body)"
    settings = (
        Setting("url", as_str, help="where to POST", secret=True),
        Setting("headers", as_headers, help="headers added to every request (values are secrets)", secret=True),
        Setting("secret", as_str, help="signs every request (HMAC-SHA256 of timestamp and body)", secret=True),
        Setting(
            "format",
            one_of(*FORMATS),
            default="json",
            help="the body: json (ours, docs/notification-webhook.schema.json) or alertmanager (its webhook body v4)",
        ),
    )

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        if not options.get("url"):
            raise ValueError("a webhook receiver needs a url")

    def render(self, message: Message, now: float | None = None) -> list[Outgoing]:
        if self.options.get("format") == "alertmanager":
            groups = groups_of(message)
            keyed = [
                (message.key if len(groups) == 1 else f"{message.key}-{index}", alertmanager_body(message, *group))
                for index, group in enumerate(groups, 1)
            ]
        else:
            keyed = [(message.key, body_of(message, templates.text(message, message.templates)))]
        timestamp = int(time.time() if now is None else now)
        return [self._request(key, payload, timestamp) for key, payload in keyed]

    def _request(self, key: str, payload: Mapping[str, Any], timestamp: int) -> HTTPRequest:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key, **self.options.get("headers", {})}
        secret = self.options.get("secret")
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
        return HTTPRequest(self.options["url"], body, headers, what=f"message {key}")


@hookimpl
def fraiseql_add_notifiers(notifiers: Notifiers) -> None:
    notifiers.register(Webhook)
