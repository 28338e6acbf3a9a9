"""End to end, for real: the watcher scraped by Prometheus with the generated rules, Alertmanager
with the generated routing, a local receiver; and ``@alert``'s ``for_`` across watch-mode runs."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fraiseql_checks.alerting.rules import STALE
from tests.support.checkdir import CheckDir
from tests.support.services import (
    Delivery,
    WebhookReceiver,
    alertmanager,
    free_port,
    prometheus,
    wait_until,
    webhook_receiver,
)
from tests.support.watcher import WatchProcess

TOGGLE = """
import time
from pathlib import Path

from fraiseql_checks import check

ROOT = Path(__file__).resolve().parent.parent


@check(interval="{interval}", severity="{severity}", runbook="docs/runbooks/Toggle.md")
def check_toggle():
    '''Fails while the file `broken` exists.'''
    if (ROOT / "broken").exists():
        first = ROOT / "first-failure"
        if not first.exists():
            first.write_text(repr(time.time()))
        raise AssertionError("the file `broken` exists")
"""
TOGGLE_ID = "checks/check_toggle.py::check_toggle"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as found:
        yield found


def test_a_failing_check_reaches_the_receiver_and_its_recovery_resolves(
    checkdir: CheckDir, receiver: WebhookReceiver
) -> None:
    checkdir.write(
        "fraiseql-checks.yaml",
        f"""
        paths: [checks]
        notify:
          runbook_base_url: https://git.example.org/monitoring/blob/main/
        alertmanager:
          slack_webhook_url: {receiver.url("/slack")}
          pagerduty_url: {receiver.url("/pagerduty")}
          group_wait: 1s
          group_interval: 1s
        """,
    )
    checkdir.write("checks/check_toggle.py", TOGGLE.format(interval="1s", severity="warning"))
    generated = checkdir.run("generate", "alerts", "alertmanager", env={"PAGERDUTY_ROUTING_KEY": "k" * 32})
    assert generated.ret == 0, generated.stdout + generated.stderr
    rules = sorted((checkdir.path / "alerts").glob("*.rules.yml"))
    assert [p.name for p in rules] == ["fraiseql-checks.rules.yml"]
    config = (checkdir.path / "alerts" / "alertmanager.yml").read_text()

    def notified(status: str) -> list[Delivery]:
        """The Slack messages of that status, but for FraiseQLCheckStale: with a 1s interval and a
        3-interval threshold, a machine starved for a second (CI, two cores) may rightly announce
        the check as stale too, which is not what this test is about."""
        return [
            d
            for d in receiver.received("/slack")
            if (title := d.body["attachments"][0]["title"]).startswith(status) and f"] {STALE} " not in title
        ]

    with alertmanager(config) as am:
        watcher = WatchProcess(checkdir, ("--store", str(checkdir.path / "results.db")), None)
        try:
            watcher.wait_ready()
            with prometheus([watcher.address], job="fraiseql-check", rule_files=rules, alertmanager=am.url) as prom:
                prom.wait_for_series(f'fraiseql_check_up{{check="{TOGGLE_ID}"}} == 1')
                (checkdir.path / "broken").touch()

                wait_until(lambda: notified("[FIRING"), timeout=60, every=0.1, what="the firing notification")
                delivered = notified("[FIRING")[0]
                first_failure = float((checkdir.path / "first-failure").read_text())
                (checkdir.path / "broken").unlink()
                recovered_at = time.time()

                wait_until(lambda: notified("[RESOLVED"), timeout=60, every=0.1, what="the resolved notification")
                resolution = notified("[RESOLVED")[0]
        finally:
            watcher.stop()
    attachment = delivered.body["attachments"][0]
    assert attachment["title"].startswith("[FIRING:1] FraiseQLCheckFailing fraiseql")
    assert attachment["text"] == (
        "*check_toggle is failing*\n"
        f"{TOGGLE_ID} failed its last run (it runs every 1s). The check: Fails while the file `broken` exists.\n"
        "Runbook: https://git.example.org/monitoring/blob/main/docs/runbooks/Toggle.md\n"
    )
    assert receiver.received("/pagerduty") == [], "a warning goes to Slack, not PagerDuty"
    print(
        f"\nfirst failing run -> notification delivered: {delivered.at - first_failure:.2f}s"
        f"; recovery -> resolved delivered: {resolution.at - recovered_at:.2f}s"
    )


ALERT_ON_TOGGLE = f"""
from fraiseql_checks import alert


@alert(expr='fraiseql_check_up{{check="{TOGGLE_ID}"}} == 0', for_="3s", interval="0.5s", severity="critical")
def check_toggle_down():
    '''The toggle check has failed for 3 seconds.'''
"""


def _runs(database: Path, check_id: str) -> list[tuple[float, str, dict[str, float], str]]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "select started_at, outcome, recorded_values, message from results where check_id = ? order by started_at",
            (check_id,),
        ).fetchall()
    return [(started, outcome, json.loads(values), message) for started, outcome, values, message in rows]


def test_for_is_honoured_across_watch_mode_runs(checkdir: CheckDir) -> None:
    """The @alert check passes while the series is pending and fails once it has held for 3s."""
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\nstart_jitter: 0.1s\n")
    checkdir.write("checks/check_toggle.py", TOGGLE.format(interval="0.5s", severity="warning"))
    checkdir.write("checks/check_alert.py", ALERT_ON_TOGGLE)
    store = checkdir.path / "results.db"
    prometheus_port = free_port()
    watcher = WatchProcess(checkdir, ("--store", str(store)), {"PROMETHEUS_URL": f"http://127.0.0.1:{prometheus_port}"})
    try:
        watcher.wait_ready()
        with prometheus([watcher.address], job="fraiseql-check", port=prometheus_port) as prom:
            prom.wait_for_series(f'fraiseql_check_up{{check="{TOGGLE_ID}"}} == 1')
            alert_id = "checks/check_alert.py::check_toggle_down"
            wait_until(lambda: watcher.runs(alert_id) >= 2, timeout=30, what="passing runs of the alert check")
            (checkdir.path / "broken").touch()
            wait_until(lambda: watcher.runs(alert_id, "failed"), timeout=60, what="the alert check to fail")
    finally:
        watcher.stop()
    runs = [run for run in _runs(store, alert_id) if run[1] != "error"]  # before Prometheus was up: errors
    pending = [i for i, (_, outcome, values, _) in enumerate(runs) if values.get("pending_series") == 1]
    failed = [i for i, (_, outcome, _, _) in enumerate(runs) if outcome == "failed"]
    assert pending and failed
    first_pending, first_failed = pending[0], failed[0]
    assert first_pending < first_failed
    for _started, outcome, values, _message in runs[first_pending:first_failed]:
        assert outcome == "passed" and values == {"firing_series": 0.0, "pending_series": 1.0}
    held = runs[first_failed][0] - runs[first_pending][0]
    assert held >= 2.9, f"failed after the series was true for {held:.2f}s, before for_=3s"
    assert len(range(first_pending, first_failed)) >= 4, "several passing runs while pending (every 0.5s)"
    message = runs[first_failed][3]
    assert message.startswith("ToggleDown is firing for 1 series, true for at least 3s: ")
    assert f'fraiseql_check_up{{check="{TOGGLE_ID}"' in message
