"""``type: apprise``: a real Apprise delivery (its ``json://`` service) to a local receiver, its
URLs kept secret everywhere, and a clear error when the extra is not installed."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import logging
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fraiseql_checks.notifiers.apprise import MISSING, Apprise
from fraiseql_checks.notify.message import Event, Message
from fraiseql_checks.notify.notifier import DeliveryError, Notification, NotifierType, Transport
from fraiseql_checks.outbox import Kind
from tests.support.checkdir import CheckDir
from tests.support.services import Reply, WebhookReceiver, require, webhook_receiver

T0 = 1_767_225_600.0
PASSWORD = "ap-pa55-e41c"
PATH_TOKEN = "tok-0b9d27f1"

FIRING = Event(
    kind=Kind.FIRING,
    check_id="checks/check_db.py::check_pool",
    name="check_pool",
    state="failing",
    severity="critical",
    suite="health",
    message="pool exhausted",
    at=T0,
    since=T0 - 90,
    runbook_url="https://git.example.org/ops/blob/main/docs/runbooks/Pool.md",
)
MESSAGE = Message("chat", "k-1", (FIRING,))


def secret_url(receiver: WebhookReceiver) -> str:
    return f"json://bot:{PASSWORD}@127.0.0.1:{receiver.port}/hook/{PATH_TOKEN}"


def notifier(**table: Any) -> Apprise:
    made, _ = NotifierType("apprise", Apprise).make("chat", table, "notify.receivers[0] (chat)")
    assert isinstance(made, Apprise)
    return made


def send(receiver: Apprise, message: Message = MESSAGE) -> None:
    async def main() -> None:
        async with httpx.AsyncClient() as client:
            for item in receiver.render(message):
                await receiver.send(item, Transport(client, timeout=5.0))

    asyncio.run(main())


@pytest.fixture(autouse=True)
def _apprise_installed() -> None:
    require(importlib.util.find_spec("apprise") is not None, "apprise (the test extra) is not installed")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as found:
        yield found


def test_render_is_the_title_and_the_text_pure_and_small() -> None:
    chat = notifier(urls=["json://127.0.0.1:9/hook"])
    (item,) = chat.render(MESSAGE)
    assert isinstance(item, Notification)
    assert item.title == "[FIRING] check_pool failing"
    assert item.body.startswith("[FIRING] check_pool failing\n")
    assert "Runbook: https://git.example.org/ops/blob/main/docs/runbooks/Pool.md" in item.body
    assert item.level == "failure"
    resolved = Event(kind=Kind.RESOLVED, check_id=FIRING.check_id, name="check_pool", state="passing", at=T0)
    (back,) = chat.render(Message("chat", "k-2", (resolved,)))
    assert isinstance(back, Notification)
    assert (back.title, back.level, back.what) == ("[RESOLVED] check_pool passing again", "success", "message k-2")
    assert chat.render(Message("chat", "k-2", (resolved,))) == [back]  # pure: the same message, the same value
    warning = Event(kind=Kind.FIRING, check_id="c.py::check_w", name="check_w", state="failing", severity="warning")
    assert [item.level for item in chat.render(Message("chat", "k-3", (warning,)))] == ["warning"]


def test_apprise_delivers_the_title_and_the_text(receiver: WebhookReceiver) -> None:
    send(notifier(urls=[secret_url(receiver)]))
    (got,) = receiver.received(f"/hook/{PATH_TOKEN}")
    assert got.body["title"] == "[FIRING] check_pool failing"
    assert got.body["message"].startswith("[FIRING] check_pool failing\n")
    assert "pool exhausted" in got.body["message"]
    assert got.body["type"] == "failure"
    assert got.headers["authorization"] == "Basic " + base64.b64encode(f"bot:{PASSWORD}".encode()).decode()


def test_a_failed_delivery_is_retried_and_no_url_is_in_the_error_or_the_logs(
    receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # INFO, as a service logs; at DEBUG urllib3 (under Apprise, as under any HTTP client) logs request paths.
    caplog.set_level(logging.INFO)
    receiver.default = Reply(503)
    url = secret_url(receiver)
    with pytest.raises(DeliveryError) as caught:
        send(notifier(urls=[url]))
    assert not caught.value.permanent
    assert str(caught.value) == "Apprise could not deliver it to 1 of 1 services (JSON)"
    printed = capsys.readouterr()
    for text in (str(caught.value), caplog.text, printed.out, printed.err):
        for secret in (url, PASSWORD, PATH_TOKEN):
            assert secret not in text
    assert len(receiver.answered) == 1  # it did try


def test_a_url_apprise_cannot_use_is_refused_at_config_time_without_showing_it() -> None:
    with pytest.raises(ValueError) as caught:
        notifier(urls=["json://127.0.0.1:9/ok", f"nosuchservice://{PATH_TOKEN}@example.org"])
    assert str(caught.value) == "notify.receivers[0] (chat): urls[1]: Apprise cannot use this nosuchservice:// URL"


def test_the_urls_are_secrets_and_describe_names_only_their_services(receiver: WebhookReceiver) -> None:
    url = secret_url(receiver)
    made, secrets = NotifierType("apprise", Apprise).make("chat", {"urls": [url, "ntfy://ntfy.example.org/t"]}, "w")
    assert secrets == [url, "ntfy://ntfy.example.org/t"]
    assert made.describe() == "apprise 2 URLs (json, ntfy)"
    one, _ = NotifierType("apprise", Apprise).make("chat", {"urls": url}, "w")
    assert one.options["urls"] == [url] and one.describe() == "apprise 1 URL (json)"


def test_without_the_extra_the_config_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # "import apprise" raises ImportError
    with pytest.raises(ValueError) as caught:
        notifier(urls=["json://127.0.0.1:9/hook"])
    assert str(caught.value) == f"notify.receivers[0] (chat): {MISSING}"
    assert MISSING == "type apprise needs the apprise extra: pip install 'fraiseql-checks[apprise]'"


# ---- the user's path: the CLI --------------------------------------------------------------


CONFIG = """
notify:
  receivers:
    - {name: chat, type: apprise, urls: ["${CHAT_URL}"]}
"""


def test_notify_test_goes_through_apprise_and_prints_no_url(checkdir: CheckDir, receiver: WebhookReceiver) -> None:
    url = secret_url(receiver)
    checkdir.write("fraiseql-checks.yaml", CONFIG)
    result = checkdir.run("notify", "test", "chat", env={"CHAT_URL": url})
    assert result.ret == 0, result.stderr
    assert result.stdout.strip() == "sent a test message to chat (apprise 1 URL (json))"
    (got,) = receiver.received(f"/hook/{PATH_TOKEN}")
    assert got.body["title"] == "[TEST] a test message from fraiseql-checks to chat"
    receiver.default = Reply(500)
    result = checkdir.run("notify", "test", "chat", env={"CHAT_URL": url})
    assert result.ret == 1
    assert result.stderr.splitlines() == [
        "ERROR: notify test chat: Apprise could not deliver it to 1 of 1 services (JSON)"
    ]
    for secret in (PASSWORD, PATH_TOKEN, str(receiver.port)):
        assert secret not in result.stdout + result.stderr


def test_the_missing_extra_is_one_line_and_exit_code_4(checkdir: CheckDir) -> None:
    checkdir.write("fraiseql-checks.yaml", CONFIG)
    checkdir.write("apprise.py", "raise ImportError(\"No module named 'apprise'\")\n")  # first on sys.path
    result = checkdir.run("notify", "list", env={"CHAT_URL": "json://127.0.0.1:9/hook"})
    assert result.ret == 4
    assert result.stderr.splitlines() == [f"ERROR: notify.receivers[0] (chat): {MISSING}"]
