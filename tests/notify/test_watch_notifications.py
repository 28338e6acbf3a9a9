"""Watch mode tells people itself: a real watcher, a local receiver, the outbox in the store."""

from __future__ import annotations

import hashlib
import hmac
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.checkdir import CheckDir
from tests.support.services import WebhookReceiver, wait_until, webhook_receiver
from tests.support.watcher import Samples, WatchProcess

Watch = Callable[..., WatchProcess]

TOGGLE = """
from pathlib import Path

from fraiseql_checks import check

FLAG = Path(__file__).parent / "broken"


@check(interval="{interval}", severity="critical", runbook="docs/runbooks/Toggle.md")
def check_toggle():
    assert not FLAG.exists(), "the flag file says broken"
"""


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as found:
        yield found


def config(receiver: WebhookReceiver, extra: str = "") -> str:
    return f"""
start_jitter: 10ms
notify:
  runbook_base_url: https://git.example.org/ops/blob/main/
  group_wait: 200ms
  receivers:
    - {{name: hook, type: webhook, url: "{receiver.url("/hook")}", secret: s3cret-signing-key}}
  default: [hook]
{extra}"""


def outbox_rows(checkdir: CheckDir) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(checkdir.path / ".fraiseql-checks" / "results.db") as conn:
        return conn.execute("SELECT receiver, check_id, kind, status FROM outbox ORDER BY created_at").fetchall()


def outbox(checkdir: CheckDir) -> list[tuple[str, str, str]]:
    with sqlite3.connect(checkdir.path / ".fraiseql-checks" / "results.db") as conn:
        return conn.execute("SELECT receiver, kind, status FROM outbox ORDER BY created_at").fetchall()


def test_a_failing_check_is_announced_once_and_its_recovery_too(
    checkdir: CheckDir, watch: Watch, receiver: WebhookReceiver
) -> None:
    checkdir.write("fraiseql-checks.yaml", config(receiver))
    checkdir.write("checks/check_toggle.py", TOGGLE.format(interval="100ms"))
    watcher = watch()
    (checkdir.path / "checks" / "broken").write_text("")
    firing = wait_until(lambda: receiver.received("/hook"), timeout=30, what="the firing message")
    assert isinstance(firing, list)
    (checkdir.path / "checks" / "broken").unlink()
    wait_until(lambda: len(receiver.received("/hook")) >= 2, timeout=30, what="the resolved message")
    assert watcher.stop() == 0
    bodies = [d.body for d in receiver.received("/hook")]
    assert [b["status"] for b in bodies] == ["firing", "resolved"]
    event = bodies[0]["events"][0]
    assert event["check_id"] == "checks/check_toggle.py::check_toggle"
    assert event["kind"] == "firing" and event["severity"] == "critical"
    assert event["message"].startswith("the flag file says broken")
    assert event["runbook_url"] == "https://git.example.org/ops/blob/main/docs/runbooks/Toggle.md"
    assert [row[1:] for row in outbox(checkdir)] == [("firing", "sent"), ("resolved", "sent")]
    # signed as documented: HMAC-SHA256 of "<t>.<body>" with the receiver's secret
    first = receiver.received("/hook")[0]
    fields = dict(part.split("=", 1) for part in first.headers["x-fraiseql-checks-signature"].split(","))
    expected = hmac.new(b"s3cret-signing-key", fields["t"].encode() + b"." + first.raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert first.headers["idempotency-key"] == first.body["key"]
    assert "s3cret-signing-key" not in watcher.stdout + watcher.stderr


def two_receivers(receiver: WebhookReceiver, extra: str = "") -> str:
    return f"""
start_jitter: 10ms
notify:
  group_wait: 2s
  receivers:
    - {{name: chat, type: webhook, url: "{receiver.url("/chat")}"}}
    - {{name: pager, type: webhook, url: "{receiver.url("/pager")}"}}
  default: [chat, pager]
{extra}"""


def test_thirty_checks_on_a_database_that_goes_away_make_one_message_per_receiver(
    checkdir: CheckDir, watch: Watch, receiver: WebhookReceiver
) -> None:
    from tests.support.services import throwaway_postgres

    queries = "\n".join(
        f'@check(interval="300ms", timeout="2s")\nasync def check_query_{n}(db):\n'
        f'    assert await db.fetchval("select {n}") == {n}\n'
        for n in range(30)
    )
    checkdir.write("checks/check_queries.py", "from fraiseql_checks import check\n\n" + queries)
    with throwaway_postgres() as server:
        checkdir.write("fraiseql-checks.yaml", two_receivers(receiver, f"database:\n  dsn: {server.dsn}\n"))
        watcher = watch()
        query = "checks/check_queries.py::check_query_{}"

        def runs(samples: Samples, n: int, outcome: str) -> float:
            labels = (("check", query.format(n)), ("outcome", outcome))
            return samples.get(("fraiseql_check_runs_total", labels), 0)

        watcher.wait_for(lambda s: all(runs(s, n, "passed") for n in range(30)), what="every check passing")
        server.stop()
        wait_until(lambda: receiver.received("/chat") and receiver.received("/pager"), what="the messages")
        watcher.wait_for(lambda s: all(runs(s, n, "failed") >= 3 for n in range(30)), what="three failures each")
        assert len(receiver.received("/chat")) == len(receiver.received("/pager")) == 1
        server.start()
        wait_until(lambda: len(receiver.received("/chat")) == 2, what="the database reachable again")
        wait_until(lambda: len(receiver.received("/pager")) == 2, what="the database reachable again")
        watcher.wait_for(
            lambda s: all(s.get(("fraiseql_check_state", (("check", query.format(n)),))) == 0 for n in range(30)),
            what="every check passing again",
        )
        assert watcher.stop() == 0
    every = {query.format(n) for n in range(30)}
    rows = outbox_rows(checkdir)
    for name in ("chat", "pager"):
        down, up = (d.body for d in receiver.received(f"/{name}"))
        (cause,) = down["causes"]
        assert cause["target"] == "database"
        # the failures within the group wait are in the message (on a busy machine a late
        # one may miss it); any later one is recorded as folded under the cause, not sent
        folded = {check for to, check, kind, status in rows if to == name and status == "folded" and kind == "firing"}
        assert set(cause["checks"]) | folded == every and len(cause["checks"]) >= 20
        count = len(cause["checks"])
        assert down["title"] == f"[FIRING:{count}] database unreachable: {count} checks failing because of it"
        assert up["status"] == "resolved" and [e["kind"] for e in up["events"]] == ["cause_resolved"]
        assert set(up["events"][0]["affected"]) == every
    assert {row[3] for row in rows} <= {"sent", "folded"}


def test_a_watcher_killed_while_the_receiver_is_down_sends_after_restart_once(
    checkdir: CheckDir, watch: Watch, receiver: WebhookReceiver
) -> None:
    from tests.support.services import Reply

    receiver.default = Reply(503, body=b"down for maintenance")
    checkdir.write("fraiseql-checks.yaml", config(receiver))
    checkdir.write("checks/check_toggle.py", TOGGLE.format(interval="100ms"))
    (checkdir.path / "checks" / "broken").write_text("")
    first = watch()
    wait_until(lambda: receiver.answered, what="a first delivery attempt")
    wait_until(lambda: outbox(checkdir), what="the entry in the outbox")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert [row[1:] for row in outbox(checkdir)] == [("firing", "pending")]
    receiver.default = Reply()
    second = watch()
    wait_until(lambda: receiver.received("/hook"), what="the pending message after the restart")
    second.wait_for(lambda s: second.runs("checks/check_toggle.py::check_toggle", "failed") >= 10, what="more runs")
    assert second.stop() == 0
    (delivery,) = receiver.received("/hook")  # once: no new "firing" after the restart
    assert [e["kind"] for e in delivery.body["events"]] == ["firing"]
    keys = {d.headers["idempotency-key"] for d, _ in receiver.answered}
    assert len(keys) == 1  # every attempt, before and after the crash, carried the same key
    assert [row[1:] for row in outbox(checkdir)] == [("firing", "sent")]


def test_a_maintenance_window_holds_messages_then_says_still_failing_or_resolved_during_it(
    checkdir: CheckDir, watch: Watch, receiver: WebhookReceiver
) -> None:
    import datetime

    def iso(seconds: float) -> str:
        return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    checks = checkdir.path / "checks"
    checkdir.write("checks/check_broken.py", TOGGLE.format(interval="100ms").replace("check_toggle", "check_broken"))
    checkdir.write(  # a flag file of its own
        "checks/check_healed.py",
        TOGGLE.format(interval="100ms").replace("check_toggle", "check_healed").replace('"broken"', '"healed-flag"'),
    )
    (checks / "healed-flag").write_text("")  # failing before the window: announced
    start = time.time() + 8
    window = f"maintenance:\n  - {{start: '{iso(start)}', end: '{iso(start + 6)}', reason: upgrade}}\n"
    checkdir.write("fraiseql-checks.yaml", config(receiver, window))
    watcher = watch()
    wait_until(lambda: receiver.received("/hook"), what="check_healed announced failing before the window")
    watcher.wait_for(
        lambda s: s.get(("fraiseql_check_silenced", (("check", "checks/check_healed.py::check_healed"),))) == 1,
        timeout=30,
        what="the window to begin",
    )
    (checks / "broken").write_text("")
    (checks / "healed-flag").unlink()
    watcher.wait_for(
        lambda s: (
            s.get(("fraiseql_check_state", (("check", "checks/check_broken.py::check_broken"),))) == 1
            and s.get(("fraiseql_check_state", (("check", "checks/check_healed.py::check_healed"),))) == 0
        ),
        what="both changes during the window",
    )
    assert len(receiver.received("/hook")) == 1  # nothing while the window holds
    wait_until(lambda: len(receiver.received("/hook")) == 2, timeout=30, what="the message when the window ends")
    assert watcher.stop() == 0
    after = receiver.received("/hook")[1].body
    kinds = sorted((e["check_id"].rsplit("::", 1)[1], e["kind"]) for e in after["events"])
    assert kinds == [("check_broken", "still_failing"), ("check_healed", "resolved_during_silence")]


def test_reminders_and_one_flapping_notice(checkdir: CheckDir, watch: Watch, receiver: WebhookReceiver) -> None:
    checkdir.write(
        "checks/check_flaps.py",
        """
        import itertools
        from fraiseql_checks import check

        RUNS = itertools.count()

        @check(interval="100ms")
        def check_flaps():
            assert next(RUNS) % 2, "every other run fails"
        """,
    )
    checkdir.write("checks/check_toggle.py", TOGGLE.format(interval="100ms"))
    (checkdir.path / "checks" / "broken").write_text("")
    checkdir.write(
        "fraiseql-checks.yaml",
        config(receiver, "").replace("group_wait: 200ms", "group_wait: 200ms\n  repeat_interval: 2s"),
    )
    watcher = watch()
    wait_until(
        lambda: sum(e["kind"] == "reminder" for d in receiver.received("/hook") for e in d.body["events"]) >= 2,
        timeout=40,
        what="two reminders",
    )
    assert watcher.stop() == 0
    events = [
        (e["check_id"].rsplit("::", 1)[1], e["kind"]) for d in receiver.received("/hook") for e in d.body["events"]
    ]
    flaps = [kind for name, kind in events if name == "check_flaps"]
    assert "flapping" in flaps and flaps.count("flapping") == 1
    toggle = [kind for name, kind in events if name == "check_toggle"]
    assert toggle[0] == "firing" and toggle.count("firing") == 1 and toggle.count("reminder") >= 2
