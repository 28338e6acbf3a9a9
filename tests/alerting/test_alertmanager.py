"""``generate alertmanager``: amtool's verdict, routing, and a real Alertmanager grouping, inhibiting, delivering."""

from __future__ import annotations

import email
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.support import REPO
from tests.support.checkdir import CheckDir
from tests.support.services import (
    Alertmanager,
    WebhookReceiver,
    alertmanager,
    free_port,
    require_binary,
    wait_until,
    webhook_receiver,
)

COMMITTED = REPO / "alerts" / "alertmanager.yml"
ROUTING_KEY = "R0UT1NGK3Y00000000000000000000ab"
SMTP_PASSWORD = "smtp-pa55word"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("amtool"), *args], capture_output=True, text=True, timeout=60)


def test_the_committed_config_passes_amtool_check_config() -> None:
    result = amtool("check-config", str(COMMITTED))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "3 receivers" in result.stdout
    assert "4 inhibit rules" in result.stdout  # DatabaseDown, CacheDown, the watcher down, a check stuck


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=DatabaseDown"], "pagerduty"),
        (["severity=warning", "alertname=HighErrorRate"], "slack"),
        (["severity=info", "alertname=LowCacheHitRate"], "email"),
        (["alertname=SomethingWithoutASeverity"], "slack"),
    ],
)
def test_routes_by_severity(labels: list[str], receiver: str) -> None:
    result = amtool("config", "routes", "test", f"--config.file={COMMITTED}", f"--verify.receivers={receiver}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_receivers_come_from_the_environment_and_are_masked_in_output(checkdir: CheckDir) -> None:
    webhook = "https://hooks.slack.com/services/T000/B000/s3cr3tw3bh00k"
    env = {
        "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "SLACK_WEBHOOK_URL": webhook,
        "SLACK_CHANNEL": "#ops",
        "ALERT_EMAIL_TO": "oncall@example.org",
        "ALERT_EMAIL_FROM": "am@example.org",
        "SMTP_SMARTHOST": "mail.example.org:587",
        "SMTP_USERNAME": "am",
        "SMTP_PASSWORD": SMTP_PASSWORD,
    }
    checkdir.write("fraiseql-checks.yaml", "paths: [.]\n")
    result = checkdir.run("generate", "alertmanager", env=env)
    assert result.ret == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "wrote alerts/alertmanager.yml"
    assert result.stderr == ""
    path = checkdir.path / "alerts" / "alertmanager.yml"
    document = yaml.safe_load(path.read_text())
    receivers = {r["name"]: r for r in document["receivers"]}
    (pagerduty,) = receivers["pagerduty"]["pagerduty_configs"]
    assert (pagerduty["routing_key"], pagerduty["send_resolved"]) == (ROUTING_KEY, True)
    (slack,) = receivers["slack"]["slack_configs"]
    assert (slack["api_url"], slack["channel"]) == (webhook, "#ops")
    assert receivers["email"]["email_configs"] == [
        {
            "to": "oncall@example.org",
            "from": "am@example.org",
            "smarthost": "mail.example.org:587",
            "auth_username": "am",
            "auth_password": SMTP_PASSWORD,
            "send_resolved": True,
        }
    ]
    assert amtool("check-config", str(path)).returncode == 0
    # What the tool prints about the file never shows a secret: here, the diff of --check.
    tampered = path.read_text().replace("send_resolved: true", "send_resolved: false")
    path.write_text(tampered.replace(f"routing_key: {ROUTING_KEY}", "routing_key: an-old-key"))
    result = checkdir.run("generate", "alertmanager", "--check", env=env)
    assert result.ret == 1
    printed = result.stdout + result.stderr
    assert "routing_key: ***" in printed
    for secret in (ROUTING_KEY, "s3cr3tw3bh00k", SMTP_PASSWORD):
        assert secret not in printed


def test_unconfigured_receivers_are_warnings_and_the_config_still_loads(checkdir: CheckDir) -> None:
    checkdir.write("fraiseql-checks.yaml", "paths: [.]\n")
    result = checkdir.run("generate", "alertmanager")
    assert result.ret == 0
    assert result.stderr.splitlines() == [
        "WARNING: critical alerts go to PagerDuty, which has no routing key: set alertmanager.pagerduty_routing_key"
        " (or PAGERDUTY_ROUTING_KEY, or alertmanager.pagerduty_routing_key_file)",
        "WARNING: warnings go to Slack, which has no webhook URL: set alertmanager.slack_webhook_url"
        " (or SLACK_WEBHOOK_URL, or alertmanager.slack_webhook_url_file)",
        "WARNING: info alerts go to email, which is not configured: set alertmanager.email_to,"
        " alertmanager.email_from, alertmanager.smtp_smarthost",
    ]
    assert amtool("check-config", str(checkdir.path / "alerts" / "alertmanager.yml")).returncode == 0


def test_a_wrong_setting_is_one_line_and_exit_code_4(checkdir: CheckDir) -> None:
    checkdir.write("fraiseql-checks.yaml", "paths: [.]\nalertmanager:\n  group_wait: soon\n")
    result = checkdir.run("generate", "alertmanager")
    assert result.ret == 4
    assert result.stderr.splitlines() == [
        "ERROR: fraiseql-checks.yaml: alertmanager: group_wait: expected a duration like '30s', '1m' or '1h30m', got 'soon'"
    ]


# ---- a real Alertmanager with the generated config ------------------------------------------


class SMTPServer:
    """aiosmtpd on loopback, keeping the messages it gets."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.Message] = []
        server = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
                server.messages.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer()
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as found:
        yield found


def generated_config(checkdir: CheckDir, receiver: WebhookReceiver, smtp: SMTPServer) -> str:
    """The config generated for the shipped checks (their causes give the inhibitions), its
    PagerDuty and Slack pointed at the local receiver, email at the local SMTP server."""
    checkdir.write(
        "fraiseql-checks.yaml",
        f"""
        paths: [{REPO / "checks"}]
        alertmanager:
          pagerduty_url: {receiver.url("/pagerduty")}
          slack_webhook_url: {receiver.url("/slack")}
          slack_channel: "#ops"
          email_to: oncall@example.org
          email_from: alertmanager@example.org
          smtp_smarthost: 127.0.0.1:{smtp.port}
          smtp_require_tls: false
          group_wait: 1s
          group_interval: 1s
        """,
    )
    result = checkdir.run("generate", "alertmanager", env={"PAGERDUTY_ROUTING_KEY": ROUTING_KEY})
    assert result.ret == 0, result.stderr
    return (checkdir.path / "alerts" / "alertmanager.yml").read_text()


def committed_rule_labels() -> dict[tuple[str, str | None], dict[str, str]]:
    """The labels each committed alerting rule gives its alerts, by alert name and check."""
    found: dict[tuple[str, str | None], dict[str, str]] = {}
    for path in (REPO / "alerts").glob("*.rules.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    labels = rule.get("labels", {})
                    found[(rule["alert"], labels.get("check"))] = labels
    return found


def alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    """An alert as Prometheus sends it: the committed rule's labels (if it is one of ours) and ``labels``."""
    rules = committed_rule_labels()
    from_rule = (
        rules.get((name, labels.get("check")))
        or rules.get((name, None))
        or {"severity": severity, "service": "fraiseql"}
    )
    assert from_rule["severity"] == severity, f"{name} is {from_rule['severity']} in the committed rules"
    return {
        "labels": {"alertname": name, **from_rule, **labels},
        "annotations": {"summary": f"{name} summary", "description": f"{name} description"},
        "generatorURL": "http://prometheus.invalid/graph",
    }


DB_CHECK = "checks/health/check_database.py::check_database_answers"


def test_a_real_alertmanager_inhibits_what_follows_from_a_cause(
    checkdir: CheckDir, receiver: WebhookReceiver, smtp: SMTPServer
) -> None:
    with alertmanager(generated_config(checkdir, receiver, smtp)) as am:
        am.post_alerts(
            [
                alert("DatabaseDown", "critical", check=DB_CHECK),
                alert("FraiseQLCheckFailing", "critical", check=DB_CHECK, depends_on="database", suite="health"),
                alert("HighErrorRate", "warning", job="fraiseql"),
                alert(
                    "HealthCheckFailing", "critical", check="checks/health/check_fraiseql.py::check_fraiseql_healthy"
                ),
                alert(
                    "FraiseQLCheckFailing",
                    "critical",
                    check="checks/audit/check_audit.py::check_failed_logins",
                    depends_on="database",
                    suite="audit",
                ),
                alert("FraiseQLCheckFailing", "warning", check="checks/host/check_host.py::check_memory_usage"),
                alert("HighErrorRate", "warning", job="payments", service="payments"),
                alert("CacheDown", "critical", check="checks/health/check_cache.py::check_cache_answers"),
                alert("LowCacheHitRate", "info", job="fraiseql"),
            ]
        )

        def states() -> dict[tuple[str, str], list[str]] | None:
            found = {
                (a["labels"]["alertname"], a["labels"].get("check") or a["labels"]["service"]): a["status"][
                    "inhibitedBy"
                ]
                for a in am.alerts()
            }
            return found if len(found) == 9 and any(found.values()) else None

        found = wait_until(states, timeout=30, what="Alertmanager to process the alerts")
        assert isinstance(found, dict)
        inhibited = {key for key, by in found.items() if by}
        assert inhibited == {
            ("FraiseQLCheckFailing", DB_CHECK),  # DatabaseDown says it, and it depends on the database
            ("HighErrorRate", "fraiseql"),
            ("HealthCheckFailing", "checks/health/check_fraiseql.py::check_fraiseql_healthy"),
            ("FraiseQLCheckFailing", "checks/audit/check_audit.py::check_failed_logins"),
            ("LowCacheHitRate", "fraiseql"),
        }
        # Still notified: the causes, what does not depend on them, another service.
        wait_until(lambda: receiver.received("/pagerduty"), timeout=30, what="PagerDuty notifications")
        wait_until(lambda: receiver.received("/slack"), timeout=30, what="Slack notifications")
        time.sleep(2)  # one more group interval: anything inhibited would have been sent by now
    paged = {d.body["payload"]["summary"] for d in receiver.received("/pagerduty")}
    assert paged == {"DatabaseDown summary", "CacheDown summary"}
    slack_texts = "\n".join(d.body["attachments"][0]["text"] for d in receiver.received("/slack"))
    assert "FraiseQLCheckFailing summary" in slack_texts and "HighErrorRate summary" in slack_texts
    assert {d.body["channel"] for d in receiver.received("/slack")} == {"#ops"}
    assert smtp.messages == [], "LowCacheHitRate, the only info alert, is inhibited by CacheDown"


def test_pagerduty_payloads_follow_events_v2_and_resolve(
    checkdir: CheckDir, receiver: WebhookReceiver, smtp: SMTPServer
) -> None:
    with alertmanager(generated_config(checkdir, receiver, smtp)) as am:
        firing = alert("DatabaseDown", "critical", check=DB_CHECK)
        am.post_alerts([firing])
        wait_until(lambda: receiver.received("/pagerduty"), timeout=30, what="the PagerDuty trigger")
        am.post_alerts([{**firing, "endsAt": _iso(time.time() - 1)}])
        wait_until(lambda: len(receiver.received("/pagerduty")) >= 2, timeout=30, what="the PagerDuty resolve")
    trigger, resolve = (d.body for d in receiver.received("/pagerduty")[:2])
    for event in (trigger, resolve):
        assert event["routing_key"] == ROUTING_KEY
        assert event["dedup_key"]
        assert len(event["payload"]["summary"]) <= 1024
        assert event["payload"]["source"]
        assert event["payload"]["severity"] in ("critical", "error", "warning", "info")
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["payload"]["severity"] == "critical"


RUNBOOKS = "https://runbooks.example.org/docs/runbooks/"


def test_pagerduty_events_carry_the_alerts_summary_description_and_runbook(
    checkdir: CheckDir, receiver: WebhookReceiver, smtp: SMTPServer
) -> None:
    """One alert: its summary is the incident's title, its runbook a link. A group of alerts
    with different runbooks: every summary, and the first alert's runbook, named."""
    database = alert("DatabaseDown", "critical", check=DB_CHECK)
    database["annotations"] = {
        "summary": "The database is down",
        "description": "check_database_answers has failed for 1 minute.",
        "runbook_url": f"{RUNBOOKS}DatabaseDown.md",
    }
    failing = []
    for name in ("check_fraiseql_ready", "check_graphql_answers"):  # not held back by DatabaseDown
        failing.append(alert("FraiseQLCheckFailing", "critical", check=f"checks/health/check_fraiseql.py::{name}"))
        failing[-1]["annotations"] = {
            "summary": f"{name} is failing",
            "description": f"{name} failed its last run.",
            "runbook_url": f"{RUNBOOKS}{name}.md",
        }
    with alertmanager(generated_config(checkdir, receiver, smtp)) as am:
        am.post_alerts([database, *failing])
        wait_until(lambda: len(receiver.received("/pagerduty")) >= 2, timeout=30, what="two PagerDuty triggers")
    events = {d.body["payload"]["summary"]: d.body for d in receiver.received("/pagerduty")}
    assert set(events) == {"The database is down", "check_fraiseql_ready is failing; check_graphql_answers is failing"}
    one, group = (
        events["The database is down"],
        events["check_fraiseql_ready is failing; check_graphql_answers is failing"],
    )
    assert one["links"] == [{"href": f"{RUNBOOKS}DatabaseDown.md", "text": "Runbook"}]
    assert one["payload"]["custom_details"]["description"] == "check_database_answers has failed for 1 minute."
    assert one["payload"]["source"] == "fraiseql"
    assert one["payload"]["custom_details"]["num_firing"] == "1", "Alertmanager's own details stay"
    assert group["links"] == [
        {"href": f"{RUNBOOKS}check_fraiseql_ready.md", "text": "Runbook: check_fraiseql_ready is failing"}
    ]
    assert group["payload"]["custom_details"]["description"] == (
        "check_fraiseql_ready failed its last run.\ncheck_graphql_answers failed its last run."
    )
    assert f"runbook_url = {RUNBOOKS}check_graphql_answers.md" in group["payload"]["custom_details"]["firing"]


def test_info_alerts_arrive_by_email_and_alerts_group_by_name_and_service(
    checkdir: CheckDir, receiver: WebhookReceiver, smtp: SMTPServer
) -> None:
    with alertmanager(generated_config(checkdir, receiver, smtp)) as am:
        am.post_alerts(
            [
                alert("LowCacheHitRate", "info", job="fraiseql", instance="api-1:8000"),
                alert("LowCacheHitRate", "info", job="fraiseql", instance="api-2:8000"),
                alert("FraiseQLCheckFailing", "warning", check="checks/a.py::check_a"),
                alert("FraiseQLCheckFailing", "warning", check="checks/b.py::check_b"),
                alert("FraiseQLCheckFailing", "warning", check="checks/c.py::check_c", service="payments"),
            ]
        )
        wait_until(lambda: smtp.messages, timeout=30, what="the email")
        wait_until(lambda: len(receiver.received("/slack")) >= 2, timeout=30, what="two Slack messages")
        time.sleep(2)
    (message,) = smtp.messages
    assert message["To"] == "oncall@example.org"
    assert message["Subject"].startswith("[FIRING:2] LowCacheHitRate fraiseql")
    groups = sorted(d.body["attachments"][0]["title"].split(" (")[0] for d in receiver.received("/slack"))
    assert groups == ["[FIRING:1] FraiseQLCheckFailing payments", "[FIRING:2] FraiseQLCheckFailing fraiseql"]


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + "Z"


def test_the_helper_serves_alertmanager_with_a_given_config() -> None:
    """The Alertmanager helper answers on its own port (a config with one null receiver)."""
    with alertmanager("route:\n  receiver: none\nreceivers:\n  - name: none\n") as am:
        assert isinstance(am, Alertmanager)
        assert am.alerts() == []
