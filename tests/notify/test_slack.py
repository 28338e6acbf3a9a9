"""The ``slack`` notifier: every message it renders is valid Block Kit by ``slack_sdk``'s own
models, reaches a local receiver as Slack's SDK would send it, and Slack's answers
(``ok: false``, rate limits) become the right delivery errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.webhook import WebhookClient

from fraiseql_checks._plugins import create_pluginmanager
from fraiseql_checks.notify.message import Event, Message
from fraiseql_checks.notify.notifier import DeliveryError, HTTPRequest, Notifier, Notifiers, Transport
from fraiseql_checks.outbox import Kind
from tests.support.checkdir import CheckDir
from tests.support.services import Reply, WebhookReceiver, webhook_receiver

WEBHOOK_SECRET = "T0SECRET/B0SECRET/webhooksecretpart"
TOKEN = "xoxb-1234-5678-tokensecretpart"
NOW = 1_760_000_000.0
RUNBOOK = "https://git.example.org/ops/blob/main/docs/runbooks/Pool.md"
DASHBOARD = "https://grafana.example.org/d/fraiseql-health"


def make(table: dict[str, Any], name: str = "chat") -> tuple[Notifier, list[str]]:
    """A receiver built as the ``notify`` section builds it: the type the plugin registered."""
    notifiers = Notifiers()
    create_pluginmanager(autoload=False).hook.fraiseql_add_notifiers.call_historic(kwargs={"notifiers": notifiers})
    found = notifiers.get("slack")
    assert found is not None, "the slack plugin registers its type"
    return found.make(name, table, f"receivers[0] ({name})")


def event(number: int = 0, kind: Kind = Kind.FIRING, **fields: Any) -> Event:
    values: dict[str, Any] = {
        "kind": kind,
        "check_id": f"checks/health/check_pool.py::check_pool_{number}",
        "name": f"check_pool_{number}",
        "state": "failing" if kind in (Kind.FIRING, Kind.REMINDER, Kind.STILL_FAILING) else "passing",
        "severity": "critical",
        "suite": "health",
        "message": f"pool {number} has 0 free connections",
        "reason": "3 failing runs in a row",
        "at": NOW,
        "since": NOW - 300,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "runbook_url": RUNBOOK,
        "dashboard_url": DASHBOARD,
        "values": {"free_connections": 0.0, "wait_seconds": 1.25},
    }
    values.update(fields)
    return Event(**values)


def message(*events: Event, test: bool = False) -> Message:
    return Message("chat", "k-0123456789abcdef", tuple(events), source="watcher-1", test=test)


def a_test_event() -> Event:
    return Event(
        kind=Kind.TEST,
        check_id="",
        name="fraiseql-checks",
        state="passing",
        severity="info",
        message="A test message from fraiseql-check notify test to chat: if you read this, it works.",
        at=NOW,
    )


MESSAGES = {
    "a problem": message(event(1)),
    "problems of all kinds": message(
        event(1),
        event(2, Kind.FLAPPING, state="flapping", severity="warning"),
        event(3, Kind.STILL_FAILING),
        event(4, Kind.REMINDER, severity="info"),
        event(5, Kind.SETTLED, state="failing"),
    ),
    "recoveries": message(
        event(1, Kind.RESOLVED),
        event(2, Kind.RESOLVED_DURING_SILENCE, severity="warning"),
        event(3, Kind.SETTLED, state="passing"),
    ),
    "a cause with 30 checks": message(
        *(event(n, root_cause="database", message="connection refused") for n in range(30)),
        event(99, Kind.RESOLVED, root_cause=""),
    ),
    "a cause resolved": message(
        Event(
            kind=Kind.CAUSE_RESOLVED,
            check_id="",
            name="database",
            state="passing",
            message="30 checks could not run because database was unreachable",
            at=NOW,
            since=NOW - 600,
            root_cause="database",
            affected=tuple(f"checks/health/check_pool.py::check_pool_{n}" for n in range(30)),
        )
    ),
    "80 events": message(*(event(n) for n in range(80))),
    "a very long message": message(
        event(1, message=("<!channel> & <https://evil.example|click> " * 400) + "\n" + "line\n" * 500),
        event(2, name="check_" + "x" * 400, runbook_url="https://example.org/" + "r" * 3100),
    ),
    "a test message": message(a_test_event(), test=True),
    "links that are not absolute": message(event(1, runbook_url="docs/runbooks/Pool.md", dashboard_url="")),
}


def validate(body: dict[str, Any]) -> list[Block]:
    """``body`` as Slack takes it: every block known to ``slack_sdk``, within its limits
    (``validate_json`` raises otherwise), unchanged by the round trip, at most 50."""
    assert isinstance(body["text"], str) and body["text"].strip(), "a fallback text for notifications"
    assert 1 <= len(body["blocks"]) <= 50
    parsed = []
    for raw in body["blocks"]:
        block = Block.parse(raw)
        assert block is not None, f"slack_sdk does not know {raw}"
        block.validate_json()
        assert block.to_dict() == raw, "a key slack_sdk does not know would be dropped"
        parsed.append(block)
    return parsed


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as found:
        yield found


@pytest.mark.parametrize("name", sorted(MESSAGES))
@pytest.mark.parametrize("mode", ["webhook", "token"])
def test_every_payload_is_valid_block_kit(name: str, mode: str) -> None:
    table = {"url": f"https://hooks.slack.com/services/{WEBHOOK_SECRET}"} if mode == "webhook" else {}
    if mode == "token":
        table = {"token": TOKEN, "channel": "#ops", "username": "fraiseql", "icon_emoji": ":rotating_light:"}
    slack, secrets = make({**table, "mention": "<!here>"})
    [request] = slack.render(MESSAGES[name])
    assert isinstance(request, HTTPRequest)
    validate(json.loads(request.body))
    assert secrets and not any(secret in request.body.decode() for secret in secrets)
    assert WEBHOOK_SECRET not in request.body.decode() and TOKEN not in request.body.decode()


def render(msg: Message, **table: Any) -> dict[str, Any]:
    slack, _ = make({"url": f"https://hooks.slack.com/services/{WEBHOOK_SECRET}", **table})
    [request] = slack.render(msg)
    assert isinstance(request, HTTPRequest)
    body: dict[str, Any] = json.loads(request.body)
    return body


def sections(body: dict[str, Any]) -> list[str]:
    """The texts of the sections after the status line: causes and events."""
    return [block["text"]["text"] for block in body["blocks"] if block["type"] == "section"][1:]


def test_a_problem_shows_state_severity_the_check_and_its_links() -> None:
    body = render(MESSAGES["a problem"], mention="<!here>")
    header, status, section, actions = body["blocks"]
    assert header["text"]["text"] == ":red_circle: [FIRING] check_pool_1 failing"
    assert body["text"] == "<!here> [FIRING] check_pool_1 failing"
    assert status["text"]["text"].startswith("<!here> *State:* firing   *Severity:* critical")
    text = section["text"]["text"]
    assert text.startswith(":red_circle: *check_pool_1* is failing (critical)\n> pool 1 has 0 free connections\n")
    for part in (
        "_Why:_ 3 failing runs in a row",
        "_Since:_ 2025-10-09 08:48:20 UTC",
        "_Values:_ free_connections = 0, wait_seconds = 1.25",
        "_Check:_ `checks/health/check_pool.py::check_pool_1`",
        "_Trace:_ `4bf92f3577b34da6a3ce929d0e0e4736`",
    ):
        assert part in text
    assert [(b["text"]["text"], b["url"]) for b in actions["elements"]] == [
        ("Runbook", RUNBOOK),
        ("Dashboard", DASHBOARD),
    ]


def test_a_recovery_mentions_nobody_and_is_green() -> None:
    body = render(MESSAGES["recoveries"], mention="<!here>")
    assert body["blocks"][0]["text"]["text"].startswith(":large_green_circle: [RESOLVED:3]")
    assert "<!here>" not in json.dumps(body)
    assert "*check_pool_1* is passing again (critical)" in sections(body)[0]


def test_thirty_checks_of_one_cause_are_one_section() -> None:
    body = render(MESSAGES["a cause with 30 checks"])
    causes = [t for t in sections(body) if "database unreachable" in t]
    assert len(causes) == 1
    assert causes[0].startswith(":rotating_light: *database unreachable: 30 checks failing because of it*")
    assert all(f"`check_pool_{n}` (critical): failing" in causes[0] for n in range(30))
    # header, status, the cause, and the one other event (its section and its links)
    assert len(body["blocks"]) == 5


def test_a_cause_resolved_names_the_checks_it_had_made_fail() -> None:
    body = render(MESSAGES["a cause resolved"])
    [cause] = sections(body)
    assert cause.startswith(":large_green_circle: *database reachable again: 30 checks it had made fail*")
    assert "`check_pool_29`" in cause


def test_eighty_events_fit_in_fifty_blocks_and_say_how_many_are_left_out() -> None:
    body = render(MESSAGES["80 events"])
    assert 48 <= len(body["blocks"]) <= 50
    last = body["blocks"][-1]
    assert last["type"] == "context"
    shown = sum(1 for t in sections(body) if "* is failing (critical)" in t)
    assert last["elements"][0]["text"].startswith(f"… and {80 - shown} more")


def test_a_very_long_message_is_cut_and_cannot_mention_or_link() -> None:
    body = render(MESSAGES["a very long message"])
    section = sections(body)[0]
    assert len(section) <= 3000
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in section
    assert "<!channel>" not in json.dumps(body) and "<https://evil" not in json.dumps(body)
    assert "… (cut)\n_Why:_" in section and "_Trace:_" in section  # the message is cut, not the details
    assert len(body["blocks"][0]["text"]["text"]) <= 150
    # a link too long for a button is not a button
    buttons = [e["text"]["text"] for b in body["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["Runbook", "Dashboard", "Dashboard"]


def test_a_relative_runbook_is_text_not_a_button() -> None:
    body = render(MESSAGES["links that are not absolute"])
    assert all(block["type"] != "actions" for block in body["blocks"])
    assert "_Runbook:_ `docs/runbooks/Pool.md`" in sections(body)[0]


def test_a_test_message() -> None:
    body = render(MESSAGES["a test message"], mention="<!here>")
    assert (
        body["blocks"][0]["text"]["text"] == ":information_source: [TEST] a test message from fraiseql-checks to chat"
    )
    assert sections(body)[0].startswith("A test message from fraiseql-check notify test to chat")
    assert "<!here>" not in json.dumps(body)


def test_block_kit_limits_are_what_slack_sdk_enforces() -> None:
    """The validator used above does refuse what Slack would (it is not a no-op)."""
    with pytest.raises(SlackObjectFormationError):
        Block.parse({"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}).validate_json()  # type: ignore[union-attr]
    with pytest.raises(SlackObjectFormationError):
        Block.parse({"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}).validate_json()  # type: ignore[union-attr]


async def deliver(slack: Notifier, msg: Message) -> None:
    async with httpx.AsyncClient() as client:
        for item in slack.render(msg):
            await slack.send(item, Transport(client))


def test_a_webhook_message_is_what_slack_sdks_webhook_client_sends(receiver: WebhookReceiver) -> None:
    slack, _ = make({"url": receiver.url("/services/ours"), "username": "fraiseql", "icon_emoji": ":robot_face:"})
    msg = MESSAGES["a cause with 30 checks"]
    asyncio.run(deliver(slack, msg))
    [ours] = receiver.received("/services/ours")
    blocks = validate(ours.body)
    reference = WebhookClient(receiver.url("/services/sdk")).send_dict(
        {**ours.body, "blocks": blocks}  # the SDK serialises its own block objects
    )
    assert reference.status_code == 200
    [theirs] = receiver.received("/services/sdk")
    assert ours.body == theirs.body
    assert ours.headers["content-type"].startswith("application/json")
    sent = WebhookClient(receiver.url("/services/send")).send(
        text=ours.body["text"], blocks=blocks, unfurl_links=False, unfurl_media=False
    )
    assert sent.status_code == 200
    [plain] = receiver.received("/services/send")
    assert {k: v for k, v in ours.body.items() if k not in ("username", "icon_emoji")} == plain.body


def test_chat_post_message_is_what_slack_sdks_web_client_sends(receiver: WebhookReceiver) -> None:
    answer = Reply(200, {"Content-Type": "application/json"}, b'{"ok": true, "channel": "C1", "ts": "1.2"}')
    receiver.replies = [answer, answer]
    slack, _ = make(
        {"token": TOKEN, "channel": "#ops", "api_url": receiver.url("/api/chat.postMessage"), "username": "fraiseql"}
    )
    msg = MESSAGES["a problem"]
    asyncio.run(deliver(slack, msg))
    [ours] = receiver.received("/api/chat.postMessage")
    assert ours.headers["authorization"] == f"Bearer {TOKEN}"
    assert ours.body["channel"] == "#ops"
    assert TOKEN not in ours.raw.decode()
    sdk = WebClient(token=TOKEN, base_url=receiver.url("/api/"))
    sdk.chat_postMessage(
        channel="#ops",
        text=ours.body["text"],
        blocks=validate(ours.body),
        username="fraiseql",
        unfurl_links=False,
        unfurl_media=False,
    )
    ours, theirs = receiver.received("/api/chat.postMessage")
    assert ours.body == theirs.body
    assert ours.headers["authorization"] == theirs.headers["authorization"]


def failure(receiver: WebhookReceiver, reply: Reply, token: bool = True) -> DeliveryError:
    receiver.replies = [reply]
    table = {"token": TOKEN, "channel": "#ops", "api_url": receiver.url("/api/chat.postMessage")}
    slack, _ = make(table if token else {"url": receiver.url("/services/x")})
    with pytest.raises(DeliveryError) as caught:
        asyncio.run(deliver(slack, MESSAGES["a problem"]))
    assert TOKEN not in str(caught.value) and "/services/x" not in str(caught.value)
    return caught.value


def ok_false(error: str) -> bytes:
    return json.dumps({"ok": False, "error": error}).encode()


def test_ok_false_is_a_permanent_refusal(receiver: WebhookReceiver) -> None:
    error = failure(receiver, Reply(200, {"Content-Type": "application/json"}, ok_false("channel_not_found")))
    assert error.permanent and "channel_not_found" in str(error)
    error = failure(receiver, Reply(200, {}, b"<html>a proxy</html>"))
    assert error.permanent


def test_ratelimited_is_retried_after_what_slack_asks(receiver: WebhookReceiver) -> None:
    error = failure(receiver, Reply(200, {"Retry-After": "7"}, ok_false("ratelimited")))
    assert not error.permanent and error.retry_after == 7.0
    error = failure(receiver, Reply(429, {"Retry-After": "3"}, ok_false("ratelimited")))
    assert not error.permanent and error.retry_after == 3.0
    error = failure(receiver, Reply(200, {}, ok_false("service_unavailable")))
    assert not error.permanent and error.retry_after is None


def test_incoming_webhook_answers(receiver: WebhookReceiver) -> None:
    error = failure(receiver, Reply(404, {}, b"no_service"), token=False)
    assert error.permanent and "no_service" in str(error)
    error = failure(receiver, Reply(429, {"Retry-After": "30"}, b"rate_limited"), token=False)
    assert not error.permanent and error.retry_after == 30.0
    error = failure(receiver, Reply(500, {}, b"rollup_error"), token=False)
    assert not error.permanent


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({}, "receivers[0] (chat): a slack receiver needs either url (an incoming webhook) or token (with channel)"),
        ({"url": "https://hooks.slack.com/x", "token": TOKEN}, "needs either url"),
        ({"token": TOKEN}, "receivers[0] (chat): a slack receiver with a token needs a channel"),
        ({"url": "hooks.slack.com/x"}, "receivers[0] (chat): url: expected an http(s) URL"),
        ({"url": "https://hooks.slack.com/x", "chanel": "#ops"}, "unknown key 'chanel' for type slack"),
        ({"url": 7}, "receivers[0] (chat).url: expected a string"),
    ],
)
def test_config_errors_name_the_key(table: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError) as caught:
        make(table)
    assert expected in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "url").write_text(f"https://hooks.slack.com/services/{WEBHOOK_SECRET}\n")
    slack, secrets = make({"url_file": str(tmp_path / "url")})
    assert slack.options["url"] == f"https://hooks.slack.com/services/{WEBHOOK_SECRET}"
    assert secrets == [slack.options["url"]]


def test_the_cli_lists_it_masked_and_sends_a_test_message(checkdir: CheckDir, receiver: WebhookReceiver) -> None:
    url = receiver.url(f"/services/{WEBHOOK_SECRET}")
    checkdir.write(
        "fraiseql-checks.yaml",
        f"""
        notify:
          receivers:
            - {{name: chat, type: slack, url: "{url}"}}
            - {{name: bot, type: slack, token: "{TOKEN}", channel: "#ops"}}
          default: [chat]
        """,
    )
    (checkdir.path / "checks").mkdir()
    listed = checkdir.run("notify", "list")
    assert listed.ret == 0, listed.stderr
    assert WEBHOOK_SECRET not in listed.stdout and TOKEN not in listed.stdout
    listed.fnmatch_lines(["*chat*slack*", "*bot*slack chat.postMessage #ops*"])
    sent = checkdir.run("notify", "test", "chat")
    assert sent.ret == 0, sent.stderr
    assert WEBHOOK_SECRET not in sent.stdout + sent.stderr
    [delivery] = receiver.received(f"/services/{WEBHOOK_SECRET}")
    validate(delivery.body)
    assert delivery.body["text"] == "[TEST] a test message from fraiseql-checks to chat"


def test_a_bad_receiver_exits_4_naming_the_key(checkdir: CheckDir) -> None:
    checkdir.write(
        "fraiseql-checks.yaml",
        f"""
        notify:
          receivers:
            - {{name: bot, type: slack, token: "{TOKEN}"}}
        """,
    )
    result = checkdir.run("notify", "list")
    assert result.ret == 4
    assert "notify.receivers[0] (bot): a slack receiver with a token needs a channel" in result.stderr
    assert TOKEN not in result.stdout + result.stderr
