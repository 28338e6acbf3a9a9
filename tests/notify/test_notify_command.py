"""``fraiseql-check notify list|test`` and the ``notify`` section's errors: one line, exit 4, secrets masked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.checkdir import CheckDir
from tests.support.services import Reply, WebhookReceiver, webhook_receiver

TOKEN = "xoxb-hook-token-7f3a9c"
SIGNING = "sign-me-8c1e2d"
SMTP_PASSWORD = "smtp-pa55-4b9d"

CHECKS = """
from fraiseql_checks import check

@check(severity="critical")
def check_primary():
    pass

@check(tags=["audit"])
def check_audit_log():
    pass

@check(notify=["mail", "nobody-by-that-name"])
def check_routed():
    pass

@check()
def check_plain():
    pass
"""


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as found:
        yield found


def config(receiver_url: str) -> str:
    return f"""
notify:
  group_wait: 5s
  repeat_interval: 1h
  receivers:
    - {{name: hook, type: webhook, url: "{receiver_url}?token={TOKEN}", headers: {{Authorization: "Bearer ${{HOOK_TOKEN}}"}}, secret: "${{HOOK_SIGNING_SECRET}}"}}
    - {{name: mail, type: webhook, url: "{receiver_url}"}}
  routes:
    - {{match: {{severity: critical}}, receivers: [hook, mail]}}
    - {{match: {{tags: audit}}, receivers: [mail]}}
  default: [hook]
"""


def test_notify_list_shows_receivers_routes_and_each_checks_receivers_with_secrets_masked(
    checkdir: CheckDir, receiver: WebhookReceiver
) -> None:
    checkdir.write("fraiseql-checks.yaml", config(receiver.url("/hook")))
    checkdir.write("checks/check_things.py", CHECKS)
    found = checkdir.run("notify", "list", env=checkdir.env(HOOK_TOKEN=TOKEN, HOOK_SIGNING_SECRET=SIGNING))
    assert found.ret == 0, found.stderr
    out = found.stdout
    assert TOKEN not in out + found.stderr and SIGNING not in out + found.stderr
    found.fnmatch_lines(
        [
            "receivers:",
            "  hook  webhook ***?token=***",  # a webhook URL is a secret: it may hold a token
            "  mail  webhook ***",
            "routes (the first that matches, unless it says continue):",
            "  1. severity=critical -> hook, mail",
            "  2. tags=audit -> mail",
            "  default -> hook",
            "group_wait 5s, repeat_interval 1h",
            "checks (4):",
            "  checks/check_things.py::check_primary [critical] -> hook, mail",
            "  checks/check_things.py::check_audit_log [warning] -> mail",
            "  checks/check_things.py::check_routed [warning] -> mail (unknown in @check(notify=...): nobody-by-that-name)",
            "  checks/check_things.py::check_plain [warning] -> hook",
        ]
    )


def test_notify_test_sends_one_test_message_to_the_receiver(checkdir: CheckDir, receiver: WebhookReceiver) -> None:
    checkdir.write("fraiseql-checks.yaml", config(receiver.url("/hook")))
    found = checkdir.run("notify", "test", "hook", env=checkdir.env(HOOK_TOKEN=TOKEN, HOOK_SIGNING_SECRET=SIGNING))
    assert found.ret == 0, found.stderr
    assert found.stdout.startswith("sent a test message to hook (webhook ***")
    assert TOKEN not in found.stdout
    (delivery,) = receiver.received(f"/hook?token={TOKEN}")
    assert delivery.body["test"] is True and delivery.body["title"].startswith("[TEST]")
    assert delivery.headers["authorization"] == f"Bearer {TOKEN}"
    assert "x-fraiseql-checks-signature" in delivery.headers


def test_notify_test_to_a_receiver_that_refuses_exits_1_with_one_line(
    checkdir: CheckDir, receiver: WebhookReceiver
) -> None:
    receiver.default = Reply(403, body=b"forbidden")
    checkdir.write("fraiseql-checks.yaml", config(receiver.url("/hook")))
    found = checkdir.run("notify", "test", "hook", env=checkdir.env(HOOK_TOKEN=TOKEN, HOOK_SIGNING_SECRET=SIGNING))
    assert found.ret == 1
    assert found.stderr.strip().splitlines() == ["ERROR: notify test hook: HTTP 403: forbidden"]


@pytest.mark.parametrize(
    ("notify", "args", "line"),
    [
        (
            "  receivers:\n    - {name: chat, type: slak, url: http://127.0.0.1:9/x}\n",
            ("notify", "list"),
            "notify.receivers[0] (chat): unknown type 'slak'",
        ),
        (
            "  receivers:\n    - {name: hook, type: webhook, url: http://127.0.0.1:9/x, sekret: x}\n",
            ("notify", "list"),
            "notify.receivers[0] (hook): unknown key 'sekret' for type webhook (did you mean 'secret'?)",
        ),
        (
            "  receivers:\n    - {name: hook, type: webhook}\n",
            ("notify", "list"),
            "notify.receivers[0] (hook): a webhook receiver needs a url",
        ),
        (
            "  receivers:\n    - {name: hook, type: webhook, url: http://127.0.0.1:9/x}\n  default: [hook, chat]\n",
            ("notify", "list"),
            "notify.default: unknown receiver 'chat'",
        ),
        (
            "  receivers:\n    - {name: hook, type: webhook, url: http://127.0.0.1:9/x}\n",
            ("notify", "test", "hoook"),
            "notify test: unknown receiver 'hoook' (did you mean 'hook'?)",
        ),
        (
            "  receivers:\n    - {name: hook, type: webhook, url: '${UNSET_HOOK_URL}'}\n",
            ("notify", "list"),
            "notify.receivers[0].url: environment variable UNSET_HOOK_URL is not set",
        ),
        (
            "  receivers:\n    - {name: hook, type: webhook, url: http://127.0.0.1:9/x, secret_file: /nonexistent/s}\n",
            ("notify", "list"),
            "notify.receivers[0] (hook).secret_file: cannot read /nonexistent/s: No such file or directory",
        ),
        (
            "  receivers:\n    - {name: hook, type: webhook, url: http://127.0.0.1:9/x}\n  group_wait: soon\n",
            ("--watch",),
            "notify: group_wait: expected a duration like '30s', '1m' or '1h30m', got 'soon'",
        ),
    ],
)
def test_bad_notify_config_is_exit_4_with_one_line_naming_the_key(
    checkdir: CheckDir, notify: str, args: tuple[str, ...], line: str
) -> None:
    checkdir.write("fraiseql-checks.yaml", "notify:\n" + notify)
    checkdir.write("checks/check_ok.py", "def check_ok():\n    pass\n")
    found = checkdir.run(*args, timeout=60)
    assert found.ret == 4, found.stdout + found.stderr
    errors = found.stderr.strip().splitlines()
    assert len(errors) == 1 and line in errors[0], errors


def test_secret_files_hold_secrets_and_they_stay_masked(checkdir: CheckDir, receiver: WebhookReceiver) -> None:
    (checkdir.path / "signing").write_text(SIGNING + "\n")
    checkdir.write(
        "fraiseql-checks.yaml",
        f"""
notify:
  receivers:
    - {{name: hook, type: webhook, url: "{receiver.url("/s")}", secret_file: signing, headers: {{X-Token: "{TOKEN}"}}}}
""",
    )
    found = checkdir.run("notify", "test", "hook")
    assert found.ret == 0, found.stderr
    (delivery,) = receiver.received("/s")
    assert delivery.headers["x-token"] == TOKEN
    assert delivery.headers["x-fraiseql-checks-signature"].startswith("t=")
    assert SIGNING not in found.stdout + found.stderr and TOKEN not in found.stdout + found.stderr
