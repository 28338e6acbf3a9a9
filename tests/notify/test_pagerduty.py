"""The ``pagerduty`` notifier: every event it renders keeps the Events API v2 rules, is what
PagerDuty's own Python client would send, has the shape of what Alertmanager sends to
PagerDuty, and PagerDuty's answers (202, 429, 5xx, 400) become the right outcomes."""

from __future__ import annotations

import asyncio
import datetime
import fnmatch
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pagerduty
import pytest

from fraiseql_checks._plugins import create_pluginmanager
from fraiseql_checks.notify.message import Event, Message
from fraiseql_checks.notify.notifier import DeliveryError, HTTPRequest, Notifier, Notifiers, Transport
from fraiseql_checks.outbox import Kind
from tests.support.checkdir import CheckDir
from tests.support.services import Reply, WebhookReceiver, alertmanager, wait_until, webhook_receiver

ROUTING_KEY = "R0UT1NGK3Y0123456789abcdefSECRET"
NOW = 1_760_000_000.0
RUNBOOK = "https://git.example.org/ops/blob/main/docs/runbooks/Pool.md"
DASHBOARD = "https://grafana.example.org/d/fraiseql-health"
CHECK = "checks/health/check_pool.py::check_pool"

# The Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/),
# as ../shared/VALIDATORS.md sums it up.
ACTIONS = {"trigger", "acknowledge", "resolve"}
SEVERITIES = {"critical", "error", "warning", "info"}
TOP_LEVEL = {"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client", "client_url"}
PAYLOAD = {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}


def events_v2_problems(body: dict[str, Any]) -> list[str]:
    """What breaks the Events API v2 rules in ``body`` (nothing: it is valid)."""
    problems = [f"unknown key {key}" for key in set(body) - TOP_LEVEL]
    if not isinstance(body.get("routing_key"), str) or not body["routing_key"]:
        problems.append("routing_key is required")
    action = body.get("event_action")
    if action not in ACTIONS:
        problems.append(f"event_action {action!r} is not one of {sorted(ACTIONS)}")
    key = body.get("dedup_key")
    if action != "trigger" and not isinstance(key, str):
        problems.append("dedup_key is required unless the action is trigger")
    if key is not None and not (isinstance(key, str) and 0 < len(key) <= 255):
        problems.append("dedup_key is a string of at most 255 characters")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            return [*problems, "a trigger needs a payload"]
        problems += [f"unknown payload key {key}" for key in set(payload) - PAYLOAD]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not summary or len(summary) > 1024:
            problems.append("payload.summary is a string of 1 to 1024 characters")
        if not isinstance(payload.get("source"), str) or not payload["source"]:
            problems.append("payload.source is required")
        if payload.get("severity") not in SEVERITIES:
            problems.append(f"payload.severity {payload.get('severity')!r} is not one of {sorted(SEVERITIES)}")
        if "timestamp" in payload:
            try:
                datetime.datetime.fromisoformat(payload["timestamp"])
            except (TypeError, ValueError):
                problems.append("payload.timestamp is ISO 8601")
        if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
            problems.append("payload.custom_details is an object")
    for link in body.get("links", []):
        if set(link) != {"href", "text"} or not all(isinstance(v, str) and v for v in link.values()):
            problems.append(f"a link is {{href, text}}: {link}")
    for key in ("client", "client_url"):
        if key in body and not isinstance(body[key], str):
            problems.append(f"{key} is a string")
    return problems


def make(table: dict[str, Any], name: str = "pager") -> tuple[Notifier, list[str]]:
    """A receiver built as the ``notify`` section builds it: the type the plugin registered."""
    notifiers = Notifiers()
    create_pluginmanager(autoload=False).hook.fraiseql_add_notifiers.call_historic(kwargs={"notifiers": notifiers})
    found = notifiers.get("pagerduty")
    assert found is not None, "the pagerduty plugin registers its type"
    return found.make(name, table, f"receivers[0] ({name})")


def event(kind: Kind = Kind.FIRING, number: int | None = None, **fields: Any) -> Event:
    suffix = "" if number is None else f"_{number}"
    values: dict[str, Any] = {
        "kind": kind,
        "check_id": CHECK + suffix,
        "name": "check_pool" + suffix,
        "state": "failing" if kind in (Kind.FIRING, Kind.REMINDER, Kind.STILL_FAILING) else "passing",
        "severity": "critical",
        "suite": "health",
        "message": "the pool has 0 free connections",
        "reason": "3 failing runs in a row",
        "at": NOW,
        "since": NOW - 300,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "runbook_url": RUNBOOK,
        "dashboard_url": DASHBOARD,
        "values": {"free_connections": 0.0},
        "labels": {"team": "db"},
    }
    values.update(fields)
    return Event(**values)


def message(*events: Event, test: bool = False) -> Message:
    return Message("pager", "k-0123456789abcdef", tuple(events), source="watcher-1", test=test)


CAUSE_RESOLVED = Event(
    kind=Kind.CAUSE_RESOLVED,
    check_id="",
    name="database",
    state="passing",
    severity="critical",
    message="30 checks could not run because database was unreachable",
    at=NOW,
    since=NOW - 600,
    root_cause="database",
    affected=tuple(f"{CHECK}_{n}" for n in range(30)),
)
TEST_EVENT = Event(
    kind=Kind.TEST, check_id="", name="fraiseql-checks", state="passing", severity="info", message="a test", at=NOW
)

#: Each message, and the (event_action, dedup_key) of the requests it makes.
CASES: dict[str, tuple[Message, list[tuple[str, str]]]] = {
    "firing": (message(event()), [("trigger", f"fraiseql-checks/{CHECK}")]),
    "resolved": (message(event(Kind.RESOLVED)), [("resolve", f"fraiseql-checks/{CHECK}")]),
    "flapping": (message(event(Kind.FLAPPING, state="flapping")), [("trigger", f"fraiseql-checks/{CHECK}")]),
    "settled failing": (message(event(Kind.SETTLED, state="failing")), [("trigger", f"fraiseql-checks/{CHECK}")]),
    "settled passing": (message(event(Kind.SETTLED, state="passing")), [("resolve", f"fraiseql-checks/{CHECK}")]),
    "still failing after a silence": (message(event(Kind.STILL_FAILING)), [("trigger", f"fraiseql-checks/{CHECK}")]),
    "resolved during a silence": (
        message(event(Kind.RESOLVED_DURING_SILENCE)),
        [("resolve", f"fraiseql-checks/{CHECK}")],
    ),
    "a reminder": (message(event(Kind.REMINDER)), []),
    "a change and its recovery in one message, in order": (
        message(event(), event(Kind.RESOLVED, at=NOW + 5), event(Kind.FIRING, 2, severity="warning")),
        [
            ("trigger", f"fraiseql-checks/{CHECK}"),
            ("resolve", f"fraiseql-checks/{CHECK}"),
            ("trigger", f"fraiseql-checks/{CHECK}_2"),
        ],
    ),
    "a cause with 30 checks": (
        message(*(event(number=n, root_cause="database", message="connection refused") for n in range(30))),
        [("trigger", "fraiseql-checks/target:database")],
    ),
    "a cause's reminder": (
        message(
            Event(kind=Kind.REMINDER, check_id="", name="database", state="failing", root_cause="database", at=NOW)
        ),
        [],
    ),
    "a cause resolved": (message(CAUSE_RESOLVED), [("resolve", "fraiseql-checks/target:database")]),
    "a test message": (
        message(TEST_EVENT, test=True),
        [
            ("trigger", "fraiseql-checks/test/k-0123456789abcdef"),
            ("resolve", "fraiseql-checks/test/k-0123456789abcdef"),
        ],
    ),
    "a very long message and check id": (
        message(event(check_id="checks/" + "d" * 300 + ".py::check_x", message="x" * 5000, severity="page")),
        [("trigger", "fraiseql-checks/sha256:*")],
    ),
}


def bodies(notifier: Notifier, msg: Message) -> list[dict[str, Any]]:
    found = []
    for request in notifier.render(msg):
        assert isinstance(request, HTTPRequest)
        assert request.headers["Content-Type"] == "application/json"
        found.append(json.loads(request.body))
    return found


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_event_keeps_the_events_v2_rules(name: str) -> None:
    notifier, secrets = make({"routing_key": ROUTING_KEY, "component": "pool", "group": "db", "class": "health"})
    msg, expected = CASES[name]
    rendered = bodies(notifier, msg)
    assert [(b["event_action"], b["dedup_key"]) for b in rendered] == [
        (action, b["dedup_key"] if fnmatch.fnmatchcase(b["dedup_key"], key) else key)
        for (action, key), b in zip(expected, rendered, strict=True)
    ]
    for body in rendered:
        assert events_v2_problems(body) == [], body
        assert body["routing_key"] == ROUTING_KEY
        # the routing key is in the field PagerDuty needs it in, nowhere else
        assert secrets == [ROUTING_KEY]
        assert ROUTING_KEY not in json.dumps({k: v for k, v in body.items() if k != "routing_key"})


def test_a_trigger_carries_summary_severity_details_and_links() -> None:
    notifier, _ = make({"routing_key": ROUTING_KEY})
    [body] = bodies(notifier, CASES["firing"][0])
    assert body == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": f"fraiseql-checks/{CHECK}",
        "payload": {
            "summary": "check_pool failing: the pool has 0 free connections",
            "source": "watcher-1",
            "severity": "critical",
            "timestamp": "2025-10-09T08:53:20+00:00",
            "component": "health",
            "custom_details": {
                "check": CHECK,
                "state": "failing",
                "event": "firing",
                "severity": "critical",
                "message": "the pool has 0 free connections",
                "reason": "3 failing runs in a row",
                "suite": "health",
                "since": "2025-10-09T08:48:20+00:00",
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "values": {"free_connections": 0.0},
                "labels": {"team": "db"},
            },
        },
        "client": "fraiseql-checks",
        "client_url": DASHBOARD,
        "links": [{"href": RUNBOOK, "text": "Runbook"}, {"href": DASHBOARD, "text": "Dashboard"}],
    }


def test_severity_summary_and_dedup_key_limits() -> None:
    notifier, _ = make({"routing_key": ROUTING_KEY, "source": "db-primary"})
    [body] = bodies(notifier, CASES["a very long message and check id"][0])
    assert body["payload"]["severity"] == "error"  # "page" is not PagerDuty's
    assert len(body["payload"]["summary"]) == 1024 and body["payload"]["summary"].endswith("…")
    assert len(body["dedup_key"]) <= 255
    assert body["payload"]["source"] == "db-primary"
    again = bodies(notifier, CASES["a very long message and check id"][0])
    assert again[0]["dedup_key"] == body["dedup_key"], "the same check, the same alert"
    for level, expected in (("critical", "critical"), ("warning", "warning"), ("info", "info"), ("", "error")):
        [found] = bodies(notifier, message(event(severity=level)))
        assert found["payload"]["severity"] == expected


def test_thirty_checks_of_one_cause_are_one_alert_for_the_cause() -> None:
    notifier, _ = make({"routing_key": ROUTING_KEY})
    [body] = bodies(notifier, CASES["a cause with 30 checks"][0])
    assert body["payload"]["summary"].startswith(
        "database unreachable: 30 checks failing because of it: check_pool_0, check_pool_1"
    )
    details = body["payload"]["custom_details"]
    assert details["root_cause"] == "database"
    assert details["checks"] == [f"{CHECK}_{n}" for n in range(30)]
    assert details["messages"][f"{CHECK}_0"] == "connection refused"
    [resolve] = bodies(notifier, CASES["a cause resolved"][0])
    assert resolve["dedup_key"] == body["dedup_key"]


def reference_client(sent: list[dict[str, Any]]) -> pagerduty.EventsApiV2Client:
    """PagerDuty's own client, its HTTP answered here (202) instead of by PagerDuty."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        sent.append(json.loads(request.content))
        return httpx2.Response(202, json={"status": "success", "message": "Event processed", "dedup_key": "k"})

    return pagerduty.EventsApiV2Client(ROUTING_KEY, transport=httpx2.MockTransport(answer))


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_event_is_what_pagerdutys_client_sends(name: str) -> None:
    notifier, _ = make({"routing_key": ROUTING_KEY, "component": "pool", "group": "db", "class": "health"})
    for ours in bodies(notifier, CASES[name][0]):
        sent: list[dict[str, Any]] = []
        client = reference_client(sent)
        if ours["event_action"] == "resolve":
            client.resolve(ours["dedup_key"])
            assert sent == [ours]
            continue
        payload = dict(ours["payload"])
        client.trigger(
            summary=payload.pop("summary"),
            source=payload.pop("source"),
            dedup_key=ours["dedup_key"],
            severity=payload.pop("severity"),
            payload=payload,
            custom_details=payload.pop("custom_details", None),
            links=ours.get("links"),
        )
        # the client has no arguments for client and client_url; the rest is the same
        assert sent == [{k: v for k, v in ours.items() if k not in ("client", "client_url")}]


def test_the_reference_client_refuses_what_the_api_refuses() -> None:
    """The client's checks used above are not a no-op."""
    client = reference_client([])
    with pytest.raises(ValueError):
        client.send_event("page", dedup_key="x")
    with pytest.raises(ValueError):
        client.send_event("resolve")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as found:
        yield found


def test_the_same_shape_as_what_alertmanager_sends(receiver: WebhookReceiver) -> None:
    """A real Alertmanager's PagerDuty receiver, pointed here, as the reference producer."""
    config = f"""
route:
  receiver: pager
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: pager
    pagerduty_configs:
      - routing_key: "{ROUTING_KEY}"
        url: {receiver.url("/alertmanager")}
        severity: critical
        component: pool
        group: db
        class: health
        links:
          - {{href: "{RUNBOOK}", text: Runbook}}
"""
    labels = {"alertname": "FraiseQLCheckFailing", "check": CHECK, "severity": "critical"}
    started = datetime.datetime.fromtimestamp(NOW, tz=datetime.UTC).isoformat()
    with alertmanager(config) as am:
        am.post_alerts([{"labels": labels, "annotations": {"summary": "check_pool is failing"}, "startsAt": started}])
        wait_until(lambda: receiver.received("/alertmanager"), timeout=30, what="Alertmanager's trigger")
        ended = datetime.datetime.now(datetime.UTC).isoformat()
        am.post_alerts([{"labels": labels, "startsAt": started, "endsAt": ended}])
        wait_until(lambda: len(receiver.received("/alertmanager")) >= 2, timeout=30, what="Alertmanager's resolve")
    theirs_trigger, theirs_resolve = (d.body for d in receiver.received("/alertmanager")[:2])
    assert theirs_trigger["event_action"] == "trigger" and theirs_resolve["event_action"] == "resolve"

    notifier, _ = make(
        {
            "routing_key": ROUTING_KEY,
            "url": receiver.url("/ours"),
            "component": "pool",
            "group": "db",
            "class": "health",
        }
    )
    asyncio.run(deliver(notifier, message(event(), event(Kind.RESOLVED))))
    trigger, resolve = (d.body for d in receiver.received("/ours"))
    for ours, theirs in ((trigger, theirs_trigger), (resolve, theirs_resolve)):
        assert events_v2_problems(theirs) == [], "the rules above hold for Alertmanager's own events"
        assert set(ours) <= set(theirs), f"keys Alertmanager does not send: {set(ours) - set(theirs)}"
        for key in set(ours) & set(theirs):
            assert type(ours[key]) is type(theirs[key]), key
    assert set(trigger) == set(theirs_trigger)  # routing_key, event_action, dedup_key, payload, links, client(_url)
    # the payload: Alertmanager's fields, and the timestamp the API documents, which Alertmanager leaves out
    assert set(trigger["payload"]) - {"timestamp"} == set(theirs_trigger["payload"])
    for key in theirs_trigger["payload"]:
        assert type(trigger["payload"][key]) is type(theirs_trigger["payload"][key]), key
    assert [set(link) for link in trigger["links"]] == [set(link) for link in theirs_trigger["links"]] * 2
    assert trigger["routing_key"] == theirs_trigger["routing_key"] == ROUTING_KEY
    # Alertmanager repeats its payload on a resolve, which PagerDuty ignores: ours is what the API needs
    assert set(resolve) == {"routing_key", "event_action", "dedup_key"}
    assert resolve["dedup_key"] == trigger["dedup_key"]
    assert theirs_resolve["dedup_key"] == theirs_trigger["dedup_key"]


async def deliver(notifier: Notifier, msg: Message) -> None:
    async with httpx.AsyncClient() as client:
        for item in notifier.render(msg):
            await notifier.send(item, Transport(client))


def test_accepted_with_202(receiver: WebhookReceiver) -> None:
    receiver.default = Reply(202, {"Content-Type": "application/json"}, b'{"status":"success","dedup_key":"k"}')
    notifier, _ = make({"routing_key": ROUTING_KEY, "url": receiver.url("/v2/enqueue")})
    msg = CASES["a change and its recovery in one message, in order"][0]
    asyncio.run(deliver(notifier, msg))
    delivered = receiver.received("/v2/enqueue")
    assert [d.body for d in delivered] == [
        json.loads(r.body) for r in notifier.render(msg) if isinstance(r, HTTPRequest)
    ]
    assert all(d.headers["content-type"] == "application/json" for d in delivered)


def failure(receiver: WebhookReceiver, reply: Reply) -> DeliveryError:
    receiver.replies = [reply]
    notifier, _ = make({"routing_key": ROUTING_KEY, "url": receiver.url("/v2/enqueue")})
    with pytest.raises(DeliveryError) as caught:
        asyncio.run(deliver(notifier, CASES["firing"][0]))
    assert ROUTING_KEY not in str(caught.value)
    return caught.value


def test_429_and_5xx_are_retried_400_is_permanent(receiver: WebhookReceiver) -> None:
    error = failure(receiver, Reply(429, {"Retry-After": "30"}, b'{"status":"throttle event"}'))
    assert not error.permanent and error.retry_after == 30.0
    error = failure(receiver, Reply(503, {}, b"unavailable"))
    assert not error.permanent and error.retry_after is None
    invalid = b'{"status":"invalid event","message":"Event object is invalid","errors":["Length of \'routing_key\' is incorrect"]}'
    error = failure(receiver, Reply(400, {"Content-Type": "application/json"}, invalid))
    assert error.permanent and "HTTP 400" in str(error)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({}, "receivers[0] (pager): a pagerduty receiver needs a routing_key (or routing_key_file)"),
        ({"source": "db"}, "a pagerduty receiver needs a routing_key"),
        (
            {"routing_key": ROUTING_KEY, "url": "events.pagerduty.com"},
            "receivers[0] (pager): url: expected an http(s) URL",
        ),
        ({"routing_key": ROUTING_KEY, "severity": "critical"}, "unknown key 'severity' for type pagerduty"),
        ({"routing_key": ROUTING_KEY, "routing_key_file": "/x"}, "give routing_key or routing_key_file, not both"),
    ],
)
def test_config_errors_name_the_key(table: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError) as caught:
        make(table)
    assert expected in str(caught.value)
    assert ROUTING_KEY not in str(caught.value)


def test_the_routing_key_can_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(ROUTING_KEY + "\n")
    notifier, secrets = make({"routing_key_file": str(tmp_path / "key")})
    assert notifier.options["routing_key"] == ROUTING_KEY and secrets == [ROUTING_KEY]
    assert notifier.options["url"] == "https://events.pagerduty.com/v2/enqueue"


def test_the_cli_sends_a_test_that_triggers_and_resolves(checkdir: CheckDir, receiver: WebhookReceiver) -> None:
    receiver.default = Reply(202, {}, b'{"status":"success"}')
    checkdir.write(
        "fraiseql-checks.yaml",
        f"""
        paths: [checks]
        notify:
          receivers:
            - {{name: pager, type: pagerduty, routing_key: "{ROUTING_KEY}", url: "{receiver.url("/v2/enqueue")}"}}
        """,
    )
    (checkdir.path / "checks").mkdir()
    listed = checkdir.run("notify", "list")
    assert listed.ret == 0, listed.stderr
    listed.fnmatch_lines(["*pager*pagerduty*/v2/enqueue*"])
    sent = checkdir.run("notify", "test", "pager")
    assert sent.ret == 0, sent.stderr
    assert ROUTING_KEY not in listed.stdout + sent.stdout + sent.stderr
    trigger, resolve = (d.body for d in receiver.received("/v2/enqueue"))
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] and trigger["payload"]["severity"] == "info"
    assert events_v2_problems(trigger) == events_v2_problems(resolve) == []


def test_a_receiver_without_routing_key_exits_4_naming_it(checkdir: CheckDir) -> None:
    checkdir.write(
        "fraiseql-checks.yaml",
        """
        paths: [checks]
        notify:
          receivers:
            - {name: pager, type: pagerduty, url: "https://events.eu.pagerduty.com/v2/enqueue"}
        """,
    )
    (checkdir.path / "checks").mkdir()
    result = checkdir.run("notify", "list")
    assert result.ret == 4
    assert result.stderr.strip() == (
        "ERROR: notify.receivers[0] (pager): a pagerduty receiver needs a routing_key (or routing_key_file)"
    )
