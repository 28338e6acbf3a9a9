"""``@alert``: collected as a check, its PromQL parsed at collection, run against a real Prometheus."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from fraiseql_checks.alerting.alerts import (
    PendingAlerts,
    alert_name,
    continuous_since,
    label_set,
    lookback_step,
    make_alert,
)
from fraiseql_checks.targets.prometheus import Series
from tests.support.checkdir import CheckDir
from tests.support.services import Prometheus, free_port, prometheus


@pytest.fixture(scope="module")
def prom() -> Iterator[Prometheus]:
    """A Prometheus scraping itself: ``up{job="self"}`` is 1 from its first scrape on."""
    with prometheus([]) as server:
        server.wait_for_series('up{job="self"}')
        yield server


ALERTS = """
from fraiseql_checks import alert

@alert(expr='up{job="self"} == 1', severity="critical", labels={"team": "platform"})
def check_self_scraped():
    '''Prometheus scrapes itself.'''

@alert(expr='up{job="self"} == 1', for_="1h")
def check_self_scraped_for_an_hour():
    '''Prometheus has scraped itself for an hour.'''

@alert(expr='up{job="nothing-here"} == 1', for_="1m")
def check_nothing():
    '''No such series.'''

@alert(expr={"fraiseql-v2": 'up{job="self"} == 1'})
def check_v2_only():
    '''Only FraiseQL v2 has the series.'''
"""


def test_a_firing_alert_fails_with_its_series_labels_and_values(checkdir: CheckDir, prom: Prometheus) -> None:
    checkdir.write("check_alerts.py", ALERTS)
    result, report = checkdir.run_json("check_alerts.py", env={"PROMETHEUS_URL": prom.url})
    results = {r["name"]: r for r in report["results"]}
    firing = results["check_self_scraped"]
    assert firing["outcome"] == "failed"
    assert firing["severity"] == "critical"
    assert firing["labels"] == {"team": "platform"}
    assert firing["message"].splitlines() == [
        "SelfScraped is firing for 1 series: Prometheus scrapes itself.",
        f'  up{{instance="127.0.0.1:{prom.port}", job="self"}} = 1',
    ]
    assert firing["values"] == {"firing_series": 1.0, "pending_series": 0.0}
    assert firing["alert"]["firing"][0]["labels"] == {
        "__name__": "up",
        "instance": f"127.0.0.1:{prom.port}",
        "job": "self",
    }
    assert results["check_nothing"]["outcome"] == "passed"
    assert results["check_nothing"]["values"] == {"firing_series": 0.0, "pending_series": 0.0}
    assert results["check_v2_only"]["outcome"] == "failed"
    assert result.ret == 1
    assert "Traceback" not in result.stdout


def test_for_looks_back_over_the_history_on_the_first_run(checkdir: CheckDir, prom: Prometheus) -> None:
    """The series has existed for seconds, not an hour: pending, so the check passes."""
    checkdir.write("check_alerts.py", ALERTS)
    _result, report = checkdir.run_json("check_alerts.py", "-k", "hour", env={"PROMETHEUS_URL": prom.url})
    (only,) = report["results"]
    assert only["outcome"] == "passed", only["message"]
    assert only["values"] == {"firing_series": 0.0, "pending_series": 1.0}
    (pending,) = only["alert"]["pending"]
    assert pending["labels"]["job"] == "self"
    assert time.time() - pending["since"] < 3600


def test_for_is_met_when_the_series_held_for_the_whole_lookback(checkdir: CheckDir, prom: Prometheus) -> None:
    """A hold shorter than the series' life: present at every step of the range query, so firing."""
    prom.wait_for_series('up{job="self"} offset 3s')
    checkdir.write(
        "check_held.py",
        """
        from fraiseql_checks import alert

        @alert(expr='up{job="self"} == 1', for_="2s", interval="1s")
        def check_held():
            '''Prometheus has scraped itself for 2 seconds.'''
        """,
    )
    _result, report = checkdir.run_json("check_held.py", env={"PROMETHEUS_URL": prom.url})
    (only,) = report["results"]
    assert only["outcome"] == "failed"
    assert only["message"].startswith("Held is firing for 1 series, true for at least 2s: ")


def test_a_profile_without_an_expression_skips_with_the_reason(checkdir: CheckDir, prom: Prometheus) -> None:
    checkdir.write("check_alerts.py", ALERTS)
    env = {"PROMETHEUS_URL": prom.url, "FRAISEQL_PROFILE": "fraiseql-v1"}
    _result, report = checkdir.run_json("check_alerts.py", "-k", "v2_only", env=env)
    (only,) = report["results"]
    assert only["outcome"] == "skipped"
    assert only["message"] == "V2Only has no expression for fraiseql-v1: that server exports nothing it could read"


def test_without_prometheus_the_alert_is_skipped_with_the_setting_to_set(checkdir: CheckDir) -> None:
    checkdir.write("check_alerts.py", ALERTS)
    result, outcomes = checkdir.outcomes("check_alerts.py")
    assert set(outcomes.values()) == {"skipped"}
    assert result.ret == 0
    result.fnmatch_lines(["*Prometheus is not configured: set PROMETHEUS_URL or `prometheus.url` in the config*"])


def test_prometheus_down_is_an_error_not_a_firing_alert(checkdir: CheckDir) -> None:
    checkdir.write("check_alerts.py", ALERTS)
    url = f"http://127.0.0.1:{free_port()}"
    _result, report = checkdir.run_json("check_alerts.py", "-k", "check_self_scraped", env={"PROMETHEUS_URL": url})
    outcomes = {r["name"]: (r["outcome"], r["message"]) for r in report["results"]}
    outcome, message = outcomes["check_self_scraped"]
    assert outcome == "error"
    assert message.startswith(f"AlertNotEvaluated: SelfScraped not evaluated: GET {url}/api/v1/query?")
    assert message.endswith(": connection refused")


def test_an_expression_that_is_not_a_vector_is_an_error(checkdir: CheckDir, prom: Prometheus) -> None:
    checkdir.write(
        "check_scalar.py",
        """
        from fraiseql_checks import alert

        @alert(expr='scalar(up{job="self"})')
        def check_scalar():
            '''A number, not series.'''
        """,
    )
    _result, report = checkdir.run_json("check_scalar.py", env={"PROMETHEUS_URL": prom.url})
    (only,) = report["results"]
    assert only["outcome"] == "error"
    assert only["message"] == (
        "AlertNotEvaluated: Scalar not evaluated: 'scalar(up{job=\"self\"})' returns a scalar, not an instant"
        " vector (an alert condition must return series)"
    )


def test_alert_checks_are_checks_tagged_alert(checkdir: CheckDir) -> None:
    checkdir.write("check_alerts.py", ALERTS)
    result = checkdir.run("--collect-only", "-m", "alert", "check_alerts.py")
    result.fnmatch_lines(
        [
            "check_alerts.py::check_self_scraped",
            "    severity=critical interval=1m timeout=10s tags=alert labels=team=platform",
            "    Prometheus scrapes itself.",
        ]
    )
    assert result.ret == 0


# ---- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decorator", "message"),
    [
        (
            "@alert(expr='sum(rate(fraiseql_graphql_queries_total[5m])')",
            "cannot collect check_broken: alert Broken: invalid PromQL "
            "'sum(rate(fraiseql_graphql_queries_total[5m])': unclosed left parenthesis",
        ),
        (
            "@alert(expr={'fraiseql-v2': 'up == 1', 'fraiseql-v1': 'rate(up[5z])'})",
            "cannot collect check_broken: alert Broken (fraiseql-v1): invalid PromQL 'rate(up[5z])': "
            "bad number or duration syntax: 5z",
        ),
        (
            "@alert(expr={'fraiseql-v3': 'up == 1'})",
            "cannot collect check_broken: expr: unknown profile 'fraiseql-v3' (expected one of: fraiseql-v1, fraiseql-v2)",
        ),
        (
            "@alert(expr='up == 0', severity='page')",
            "cannot collect check_broken: severity must be one of critical, warning, info, got 'page'",
        ),
        (
            "@alert(expr='up == 0', labels={'severity': 'critical'})",
            "cannot collect check_broken: labels may not set 'severity': use severity=",
        ),
        (
            "@alert(expr='up == 0', name='Not valid')",
            "cannot collect check_broken: alert name 'Not valid' must match [a-zA-Z_:][a-zA-Z0-9_:]* "
            "(Prometheus' rule format)",
        ),
    ],
)
def test_a_bad_alert_is_a_collection_error_naming_the_check(checkdir: CheckDir, decorator: str, message: str) -> None:
    checkdir.write(
        "check_alerts.py",
        f"""
        from fraiseql_checks import alert

        {decorator}
        def check_broken():
            '''Broken.'''

        @alert(expr='up == 0')
        def check_fine():
            '''Fine.'''
        """,
    )
    result = checkdir.run("--collect-only", "check_alerts.py")
    assert result.ret == 2
    result.fnmatch_lines(["check_alerts.py::check_fine", f"ERROR check_alerts.py::check_broken - {message}"])
    assert "Traceback" not in result.stdout + result.stderr


def test_generation_stops_on_an_alert_that_does_not_parse(checkdir: CheckDir) -> None:
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\n")
    checkdir.write(
        "checks/check_alerts.py",
        """
        from fraiseql_checks import alert

        @alert(expr='sum(rate(fraiseql_graphql_queries_error[5m]) > 0.05', for_="5m")
        def check_high_error_rate():
            '''Errors.'''
        """,
    )
    result = checkdir.run("generate", "alerts")
    assert result.ret == 2
    assert result.stderr.splitlines() == [
        "ERROR: collecting checks/check_alerts.py::check_high_error_rate: cannot collect check_high_error_rate:"
        " alert HighErrorRate: invalid PromQL 'sum(rate(fraiseql_graphql_queries_error[5m]) > 0.05':"
        " unclosed left parenthesis"
    ]
    assert not (checkdir.path / "alerts").exists()


# ---- units -------------------------------------------------------------------------------


def test_default_alert_names() -> None:
    assert alert_name("check_high_error_rate") == "HighErrorRate"
    assert alert_name("check_database_down") == "DatabaseDown"
    assert alert_name("slow_queries") == "SlowQueries"


def test_an_expression_invalid_in_every_profile_is_reported_for_the_default_profile() -> None:
    spec = make_alert(
        lambda: None,
        expr={"fraiseql-v1": "up ==", "fraiseql-v2": "up >"},
        for_=None,
        severity="warning",
        labels=None,
        summary=None,
        description=None,
        runbook=None,
        name="Broken",
    )
    with pytest.raises(ValueError, match=r"alert Broken \(fraiseql-v2\): invalid PromQL 'up >'"):
        spec.validate()


def test_importing_the_package_does_not_import_pytest() -> None:
    """``import fraiseql_checks`` (every check module does) leaves pytest's assertion rewriter
    for the first ``@alert`` run that needs ``Failed``/``Skipped``."""
    code = (
        "import sys, fraiseql_checks; print(sorted(m for m in sys.modules if m.split('.')[0] in ('_pytest', 'pytest')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_pending_state_keeps_since_when_a_series_is_true_and_starts_over_when_it_goes() -> None:
    state = PendingAlerts()
    a, b = label_set({"job": "a"}), label_set({"job": "b"})
    assert not state.known("c", "up == 0")
    assert state.update("c", "up == 0", {a: 100.0}) == {a: 100.0}
    assert state.known("c", "up == 0")
    assert state.update("c", "up == 0", {a: 160.0, b: 160.0}) == {a: 100.0, b: 160.0}
    assert state.update("c", "up == 0", {b: 220.0}) == {b: 160.0}
    assert state.update("c", "up == 0", {a: 280.0, b: 280.0}) == {a: 280.0, b: 160.0}
    assert not state.known("c", "up == 1"), "another expression (after a reload) starts afresh"


def test_continuous_since_walks_back_to_the_last_gap() -> None:
    def series(*times: float) -> Series:
        return Series({"job": "a"}, tuple((t, 1.0) for t in times))

    assert continuous_since(series(0, 10, 20, 30), end=30, step=10) == 0
    assert continuous_since(series(0, 20, 30), end=30, step=10) == 20
    assert continuous_since(series(0, 10, 20), end=30, step=10) is None, "not true at the end: not firing now"
    assert continuous_since(series(30), end=30, step=10) == 30


def test_lookback_steps_stay_fine_and_few() -> None:
    assert lookback_step(300, 60) == 15.0
    assert lookback_step(300, 5) == 5.0
    assert lookback_step(3600, 60) == 60.0  # at most 60 points
    assert lookback_step(2, 1) == 1.0
