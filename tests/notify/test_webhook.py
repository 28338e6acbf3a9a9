"""``type: webhook``: our body against its published JSON Schema, Alertmanager's body against
what a real Alertmanager sends, headers, signature, idempotency and the receiver's answers."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from fraiseql_checks.notifiers.webhook import NOT_ENDED, Webhook, body_of, fingerprint
from fraiseql_checks.notify.message import Event, Message
from fraiseql_checks.notify.notifier import DeliveryError, HTTPRequest, NotifierType, Transport
from fraiseql_checks.outbox import Kind
from tests.support.services import Delivery, Reply, WebhookReceiver, alertmanager, wait_until, webhook_receiver

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "notification-webhook.schema.json").read_text())
T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
SIGNING = "whsec-5d1c9a"
TOKEN = "Bearer tok-77e0b1"

POOL = Event(
    kind=Kind.FIRING,
    check_id="checks/check_db.py::check_pool",
    name="check_pool",
    state="failing",
    severity="critical",
    suite="health",
    message="pool exhausted",
    reason="3 failing runs in a row",
    at=T0,
    since=T0 - 90,
    trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    runbook_url="https://git.example.org/ops/blob/main/docs/runbooks/Pool.md",
    dashboard_url="https://grafana.example.org/d/health",
    description="the pool has free connections",
    labels={"team": "db", "severity": "page"},
    tags=("db",),
    values={"in_use": 20.0},
)
RESOLVED = dataclasses.replace(POOL, kind=Kind.RESOLVED, state="passing", message="", at=T0 + 300, since=T0 + 300)
BLAMED = tuple(
    dataclasses.replace(POOL, check_id=f"checks/check_db.py::check_{n}", name=f"check_{n}", root_cause="database")
    for n in ("orders", "users")
)
CAUSE_BACK = Event(
    kind=Kind.CAUSE_RESOLVED,
    check_id="",
    name="database",
    state="passing",
    severity="critical",
    message="2 checks could not run because database was unreachable",
    at=T0 + 600,
    since=T0,
    root_cause="database",
    affected=("checks/check_db.py::check_orders", "checks/check_db.py::check_users"),
)
TEST = Event(
    kind=Kind.TEST, check_id="", name="fraiseql-checks", state="passing", severity="info", message="hello", at=T0
)

MESSAGES = {
    "firing": Message("hook", "k-firing", (POOL,)),
    "resolved": Message("hook", "k-resolved", (RESOLVED,)),
    "grouped cause": Message("hook", "k-cause", (*BLAMED, POOL)),
    "cause resolved": Message("hook", "k-back", (CAUSE_BACK,)),
    "test": Message("hook", "k-test", (TEST,), test=True),
}


def webhook(**table: Any) -> Webhook:
    made, _ = NotifierType("webhook", Webhook).make("hook", table, "notify.receivers[0] (hook)")
    assert isinstance(made, Webhook)
    return made


def request(receiver: Webhook, message: Message, now: float | None = None) -> HTTPRequest:
    (item,) = receiver.render(message, now=now)
    assert isinstance(item, HTTPRequest)
    return item


def send(receiver: Webhook, message: Message) -> None:
    async def main() -> None:
        async with httpx.AsyncClient() as client:
            for item in receiver.render(message):
                await receiver.send(item, Transport(client, timeout=5.0))

    asyncio.run(main())


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as found:
        yield found


# ---- format: json and its schema ------------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_every_body_validates_against_the_published_schema(name: str) -> None:
    body = json.loads(request(webhook(url="http://127.0.0.1:9/hook"), MESSAGES[name]).body)
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(body)


def test_the_schema_requires_exactly_what_the_body_has() -> None:
    """The schema is the contract: a field added to or dropped from the body must be in the schema too."""
    message = MESSAGES["grouped cause"]
    body = body_of(message, "text")
    assert set(SCHEMA["required"]) == set(body) == set(SCHEMA["properties"])
    cause = SCHEMA["properties"]["causes"]["items"]
    assert set(cause["required"]) == set(body["causes"][0]) == set(cause["properties"])
    event = SCHEMA["$defs"]["event"]
    assert set(event["required"]) == set(body["events"][0]) == set(event["properties"])
    assert set(event["required"]) == {field.name for field in dataclasses.fields(Event)}
    assert event["properties"]["kind"]["enum"] == [kind.value for kind in Kind]
    assert SCHEMA["properties"]["version"]["const"] == body["version"]


def test_the_schema_rejects_a_body_that_drifted() -> None:
    body = json.loads(request(webhook(url="http://127.0.0.1:9/hook"), MESSAGES["firing"]).body)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for broken in (
        {**body, "extra": 1},
        {key: value for key, value in body.items() if key != "key"},
        {**body, "events": [{**body["events"][0], "kind": "exploded"}]},
        {**body, "events": [{**body["events"][0], "at": "yesterday"}]},
    ):
        assert not validator.is_valid(broken)


def test_the_grouped_cause_names_its_target_and_checks() -> None:
    body = json.loads(request(webhook(url="http://127.0.0.1:9/hook"), MESSAGES["grouped cause"]).body)
    assert body["causes"] == [
        {
            "target": "database",
            "summary": "database unreachable: 2 checks failing because of it",
            "checks": ["checks/check_db.py::check_orders", "checks/check_db.py::check_users"],
        }
    ]
    assert body["status"] == "firing" and body["severity"] == "critical"
    assert body["title"].startswith("[FIRING:3] database unreachable")


# ---- headers, signature, idempotency ---------------------------------------------------------


def test_custom_headers_are_sent_and_their_values_are_secrets() -> None:
    made, secrets = NotifierType("webhook", Webhook).make(
        "hook", {"url": "http://127.0.0.1:9/hook", "headers": {"Authorization": TOKEN}}, "where"
    )
    assert TOKEN in secrets
    assert isinstance(made, Webhook)
    item = request(made, MESSAGES["firing"])
    assert item.headers["Authorization"] == TOKEN
    assert item.headers["Content-Type"] == "application/json"


def test_the_signature_verifies_as_a_receiver_checks_it(receiver: WebhookReceiver) -> None:
    before = int(time.time())
    send(webhook(url=receiver.url("/hook"), secret=SIGNING), MESSAGES["firing"])
    (got,) = receiver.received("/hook")
    fields = dict(part.split("=", 1) for part in got.headers["x-fraiseql-checks-signature"].split(","))
    assert before <= int(fields["t"]) <= time.time()  # fresh: a receiver rejects old timestamps
    expected = hmac.new(SIGNING.encode(), fields["t"].encode() + b"." + got.raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    forged = hmac.new(b"another-secret", fields["t"].encode() + b"." + got.raw, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(fields["v1"], forged)
    assert SIGNING.encode() not in got.raw


def test_the_idempotency_key_is_the_same_for_two_renders_of_one_message() -> None:
    hook = webhook(url="http://127.0.0.1:9/hook", secret=SIGNING)
    first, again = request(hook, MESSAGES["firing"], now=T0), request(hook, MESSAGES["firing"], now=T0 + 30)
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"] == "k-firing"
    assert first.body == again.body  # only the signature's timestamp differs
    assert first.headers["X-Fraiseql-Checks-Signature"] != again.headers["X-Fraiseql-Checks-Signature"]
    assert request(hook, MESSAGES["resolved"]).headers["Idempotency-Key"] == "k-resolved"


@pytest.mark.parametrize(
    ("reply", "permanent", "retry_after"),
    [
        (Reply(429, {"Retry-After": "7"}, b"slow down"), False, 7.0),
        (Reply(503), False, None),
        (Reply(410, body=b"gone"), True, None),
        (Reply(400, body=b"bad body"), True, None),
    ],
)
def test_the_receivers_answer_decides_retry_or_refusal(
    receiver: WebhookReceiver, reply: Reply, permanent: bool, retry_after: float | None
) -> None:
    receiver.replies.append(reply)
    with pytest.raises(DeliveryError) as caught:
        send(webhook(url=receiver.url("/hook")), MESSAGES["firing"])
    assert caught.value.permanent is permanent
    assert caught.value.retry_after == retry_after
    assert str(caught.value).startswith(f"HTTP {reply.status}")
    send(webhook(url=receiver.url("/hook")), MESSAGES["firing"])  # the next attempt goes
    assert len(receiver.received("/hook")) == 1


def test_an_unknown_format_is_a_config_error() -> None:
    with pytest.raises(ValueError) as caught:
        webhook(url="http://127.0.0.1:9/hook", format="slack")
    assert str(caught.value) == ("notify.receivers[0] (hook).format: expected one of json, alertmanager, got 'slack'")


# ---- format: alertmanager ---------------------------------------------------------------------


def alertmanager_bodies(message: Message, url: str = "http://127.0.0.1:9/am") -> list[dict[str, Any]]:
    return [json.loads(item.body) for item in webhook(url=url, format="alertmanager").render(message)]


def test_a_firing_check_is_alertmanagers_failing_alert() -> None:
    (body,) = alertmanager_bodies(MESSAGES["firing"])
    (alert,) = body["alerts"]
    assert alert["labels"] == {
        "alertname": "FraiseQLCheckFailing",
        "check": "checks/check_db.py::check_pool",
        "severity": "critical",
        "suite": "health",
        "team": "db",
        "label_severity": "page",
    }
    assert alert["annotations"] == {
        "summary": "check_pool is failing",
        "description": "pool exhausted",
        "runbook_url": POOL.runbook_url,
        "dashboard_url": POOL.dashboard_url,
    }
    assert (alert["status"], alert["startsAt"], alert["endsAt"]) == ("firing", "2025-12-31T23:58:30.000Z", NOT_ENDED)
    assert alert["generatorURL"] == POOL.dashboard_url
    assert alert["fingerprint"] == fingerprint(alert["labels"])
    assert body["groupKey"] == '{}:{alertname="FraiseQLCheckFailing", check="checks/check_db.py::check_pool"}'
    assert body["groupLabels"] == {"alertname": "FraiseQLCheckFailing", "check": "checks/check_db.py::check_pool"}
    assert body["commonLabels"] == alert["labels"] and body["commonAnnotations"] == alert["annotations"]
    assert (body["version"], body["status"], body["receiver"], body["truncatedAlerts"]) == ("4", "firing", "hook", 0)
    (resolved,) = alertmanager_bodies(MESSAGES["resolved"])
    assert resolved["status"] == resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == "2026-01-01T00:05:00.000Z"
    assert resolved["groupKey"] == body["groupKey"]  # the same group: a receiver closes what it opened
    assert resolved["alerts"][0]["fingerprint"] == alert["fingerprint"]


def test_a_root_cause_is_one_group_and_each_other_check_one_more_request() -> None:
    hook = webhook(url="http://127.0.0.1:9/am", format="alertmanager")
    items = hook.render(MESSAGES["grouped cause"])
    assert all(isinstance(item, HTTPRequest) for item in items)
    assert [item.headers["Idempotency-Key"] for item in items if isinstance(item, HTTPRequest)] == [
        "k-cause-1",
        "k-cause-2",
    ]
    cause, other = (json.loads(item.body) for item in items if isinstance(item, HTTPRequest))
    assert cause["groupLabels"] == {"root_cause": "database"}
    assert cause["groupKey"] == '{}:{root_cause="database"}'
    assert [alert["labels"]["check"] for alert in cause["alerts"]] == [e.check_id for e in BLAMED]
    assert cause["commonLabels"]["root_cause"] == "database"
    assert other["groupLabels"]["check"] == POOL.check_id
    (back,) = alertmanager_bodies(MESSAGES["cause resolved"])
    assert back["groupKey"] == cause["groupKey"] and back["status"] == "resolved"
    assert back["alerts"][0]["labels"] == {
        "alertname": "FraiseQLTargetUnreachable",
        "target": "database",
        "root_cause": "database",
        "severity": "critical",
    }
    (test,) = alertmanager_bodies(MESSAGES["test"])
    assert test["alerts"][0]["labels"] == {"alertname": "FraiseQLNotificationTest", "severity": "info"}


def _shape(value: Any) -> Any:
    """The keys at every level and the types of the leaves (label and annotation names vary
    with the alert: those maps are compared as "a map of strings")."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value[:1]]
    return type(value).__name__


def _comparable(body: dict[str, Any]) -> Any:
    shape = _shape(body)
    for alert in shape["alerts"]:
        alert["labels"] = alert["annotations"] = "map of strings"
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        shape[key] = "map of strings"
    return shape


def test_the_alertmanager_body_has_the_shape_a_real_alertmanager_sends(receiver: WebhookReceiver) -> None:
    ours = alertmanager_bodies(MESSAGES["firing"])[0]
    ours_resolved = alertmanager_bodies(MESSAGES["resolved"])[0]
    config = f"""
route:
  receiver: hook
  group_by: [alertname, check]
  group_wait: 100ms
  group_interval: 1s
receivers:
  - name: hook
    webhook_configs:
      - url: {receiver.url("/am")}
        send_resolved: true
"""
    alert = {
        "labels": ours["alerts"][0]["labels"],
        "annotations": ours["alerts"][0]["annotations"],
        "generatorURL": POOL.dashboard_url,
    }
    with alertmanager(config) as am:
        am.post_alerts([alert])
        wait_until(lambda: receiver.received("/am"), timeout=30, what="Alertmanager's firing notification")
        ended = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        am.post_alerts([{**alert, "endsAt": ended}])
        wait_until(lambda: len(receiver.received("/am")) >= 2, timeout=30, what="Alertmanager's resolved notification")
    theirs: list[Delivery] = receiver.received("/am")[:2]
    firing, resolved = (delivery.body for delivery in theirs)
    assert (firing["status"], resolved["status"]) == ("firing", "resolved")
    assert _comparable(ours) == _comparable(firing)
    assert _comparable(ours_resolved) == _comparable(resolved)
    for label_map in ("groupLabels", "commonLabels", "commonAnnotations"):
        assert all(isinstance(v, str) for v in {**ours[label_map], **firing[label_map]}.values())
    # The same labels give the same group and the same fingerprint as Alertmanager's own.
    assert ours["groupKey"] == firing["groupKey"]
    assert ours["groupLabels"] == firing["groupLabels"]
    assert ours["alerts"][0]["fingerprint"] == firing["alerts"][0]["fingerprint"]
    assert ours["alerts"][0]["endsAt"] == firing["alerts"][0]["endsAt"] == NOT_ENDED
    assert ours["commonLabels"] == firing["commonLabels"]


def test_the_alertmanager_format_is_sent_and_signed(receiver: WebhookReceiver) -> None:
    hook = webhook(url=receiver.url("/am"), format="alertmanager", secret=SIGNING)
    send(hook, MESSAGES["grouped cause"])
    got = receiver.received("/am")
    assert [d.body["groupKey"] for d in got] == [
        '{}:{root_cause="database"}',
        '{}:{alertname="FraiseQLCheckFailing", check="checks/check_db.py::check_pool"}',
    ]
    for delivery in got:
        fields = dict(part.split("=", 1) for part in delivery.headers["x-fraiseql-checks-signature"].split(","))
        digest = hmac.new(SIGNING.encode(), fields["t"].encode() + b"." + delivery.raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(fields["v1"], digest)
