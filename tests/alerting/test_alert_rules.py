"""``generate alerts``: the committed rule files, promtool's verdict on them, and what they read."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fraiseql_checks import metrics
from fraiseql_checks.alerting.rules import failing_expr, yaml_text
from fraiseql_checks.cli import configure
from fraiseql_checks.promql import metric_names, parse, promql_string, regex_escape
from fraiseql_checks.targets.contract import collect_references, is_fraiseql_series
from fraiseql_checks.targets.profiles import PROFILES
from tests.support import REPO
from tests.support.checkdir import CheckDir
from tests.support.services import require_binary

ALERTS = REPO / "alerts"
#: The runbook base the repository's pyproject.toml sets, so its committed files link to GitHub.
RUNBOOK_BASE = "https://github.com/fraiseql/fraiseql-checks/blob/main/"
V1 = ALERTS / "fraiseql-v1"
TESTS = ALERTS / "tests"

#: The seed's 15 alerts (seed file, "Alert Rules"): severity and `for`.
SEED = {
    "HighErrorRate": ("warning", "5m"),
    "HighLatency": ("warning", "5m"),
    "SlowQueryRate": ("warning", "5m"),
    "LowCacheHitRate": ("info", "10m"),
    "DatabasePoolExhausted": ("critical", "2m"),
    "DatabaseDown": ("critical", "1m"),
    "CacheDown": ("critical", None),
    "HealthCheckFailing": ("critical", "2m"),
    "HighFailedAuthAttempts": ("critical", None),
    "SuspiciousQueryPattern": ("warning", None),
    "UnauthorizedDataAccess": ("critical", None),
    "HighMemoryUsage": ("warning", "10m"),
    "HighCPUUsage": ("warning", "5m"),
    "DiskSpaceRunningLow": ("warning", None),
    "AuditLogLag": ("warning", None),
}
CHECK_ALERTS = {"FraiseQLCheckFailing", "FraiseQLCheckStale", "FraiseQLCheckWatcherDown", "FraiseQLCheckWatcherAbsent"}
#: node_exporter's standard names the resource alerts read.
NODE_EXPORTER = {
    "node_memory_MemAvailable_bytes",
    "node_memory_MemTotal_bytes",
    "node_cpu_seconds_total",
    "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes",
}
#: Variables that would change what the generator writes.
GENERATOR_ENV = (
    "FRAISEQL_CHECKS_RUNBOOK_BASE_URL",
    "PAGERDUTY_ROUTING_KEY",
    "SLACK_WEBHOOK_URL",
    "SLACK_CHANNEL",
    "ALERT_EMAIL_TO",
    "ALERT_EMAIL_FROM",
    "SMTP_SMARTHOST",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
)


def rule_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.rules.yml"))


def rules_in(path: Path) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def alerts_of(folder: Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for path in rule_files(folder):
        for rule in rules_in(path):
            found.setdefault(rule["alert"], []).append(rule)
    return found


def test_committed_files_are_what_the_generator_makes(checkdir: CheckDir) -> None:
    env = {name: "" for name in GENERATOR_ENV}
    result = subprocess.run(
        checkdir.command("generate", "alerts", "alertmanager", "--check"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=checkdir.env(**env),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "differs" not in result.stdout


def test_a_changed_rule_file_is_reported_by_check(checkdir: CheckDir) -> None:
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\nfailure_threshold: 4\n")
    checkdir.write(
        "checks/check_x.py",
        """
        from fraiseql_checks import alert, check

        @alert(expr='up == 0', for_="2m", severity="critical")
        def check_target_down():
            '''A target is down.'''

        @check(interval="30s", failure_threshold=3)
        def check_ok():
            pass

        @check(interval="10s", labels={"service": "payments", "team": "db"})
        def check_configured(db):
            pass
        """,
    )
    assert checkdir.run("generate", "alerts").ret == 0
    written = sorted(str(p.relative_to(checkdir.path)) for p in (checkdir.path / "alerts").rglob("*.yml"))
    assert written == [
        "alerts/fraiseql-checks.rules.yml",
        "alerts/fraiseql-v1/fraiseql-checks.rules.yml",
        "alerts/fraiseql-v1/x.rules.yml",
        "alerts/x.rules.yml",
    ]
    generated = rules_in(checkdir.path / "alerts/fraiseql-checks.rules.yml")
    failing = {r["labels"]["check"]: r for r in generated if r["alert"] == "FraiseQLCheckFailing"}
    assert set(failing) == {"checks/check_x.py::check_ok", "checks/check_x.py::check_configured"}, "none for @alert"
    ok, configured = failing["checks/check_x.py::check_ok"], failing["checks/check_x.py::check_configured"]
    assert ok["for"] == "1m", "3 failing runs 30s apart: up stays 0 for 1 minute"
    assert ok["labels"] == {
        "severity": "warning",
        "service": "fraiseql",
        "suite": "checks",
        "check": "checks/check_x.py::check_ok",
    }
    assert configured["for"] == "30s", "the config's failure_threshold (4) runs, 10s apart"
    assert configured["labels"] == {
        "severity": "warning",
        "service": "payments",
        "suite": "checks",
        "check": "checks/check_x.py::check_configured",
        "team": "db",
        "depends_on": "database",
    }
    target = checkdir.path / "alerts/x.rules.yml"
    target.write_text(target.read_text().replace("for: 2m", "for: 5m"))
    result = checkdir.run("generate", "alerts", "--check")
    assert result.ret == 1
    result.fnmatch_lines(["-    for: 5m", "+    for: 2m", "alerts/x.rules.yml: differs from what the generator makes"])


def test_an_alert_written_with_roles_becomes_each_profiles_rule(checkdir: CheckDir) -> None:
    """One expression; each profile's series in its rule; no rule where the profile lacks a role."""
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\n")
    checkdir.write(
        "checks/check_x.py",
        """
        from fraiseql_checks import alert

        @alert(expr="sum(rate({{http_5xx}}[5m])) / sum(rate({{http_requests}}[5m])) > 0.01", for_="5m")
        def check_server_errors():
            '''More than 1% of requests fail.'''

        @alert(expr="{{pool_waiting}} > 0", for_="1m")
        def check_requests_wait():
            '''Requests wait for a database connection.'''

        @alert(expr={"fraiseql-v1": "{{pool_active}} > 10"})
        def check_pool_busy():
            '''The old way: an expression per profile, roles allowed in it.'''
        """,
    )
    assert checkdir.run("generate", "alerts").ret == 0
    v2 = {rule["alert"]: rule["expr"] for rule in rules_in(checkdir.path / "alerts/x.rules.yml")}
    v1 = {rule["alert"]: rule["expr"] for rule in rules_in(checkdir.path / "alerts/fraiseql-v1/x.rules.yml")}
    assert v2 == {
        "ServerErrors": "sum(rate(fraiseql_http_responses_5xx[5m])) / sum(rate(fraiseql_http_requests_total[5m]))"
        " > 0.01",
        "RequestsWait": "fraiseql_db_pool_requests_waiting > 0",
    }
    assert v1 == {
        "ServerErrors": 'sum(rate(fraiseql_http_requests_total{status=~"5.."}[5m]))'
        " / sum(rate(fraiseql_http_requests_total[5m])) > 0.01",
        "PoolBusy": "fraiseql_db_connections_active > 10",
    }


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (
            '"{{graphql_erors}} > 0"',
            "expr: unknown role 'graphql_erors' in {{graphql_erors}} (did you mean 'graphql_errors'?);"
            " known roles: graphql_requests, graphql_errors, ",
        ),
        ('"{{query_latency}} > 1"', "expr: {{query_latency}}: query_latency is a histogram: write"),
        (
            '"{{pool_waiting}} > 0 and {{errors_by_type}} > 0"',
            "expr: no target profile has every role it reads"
            " (fraiseql-v2 has no errors_by_type; fraiseql-v1 has no pool_waiting)",
        ),
        (
            '{"fraiseql-v1": "{{pool_waiting}} > 0"}',
            "expr['fraiseql-v1']: profile fraiseql-v1 has no series for the role 'pool_waiting'",
        ),
    ],
)
def test_a_bad_role_stops_generation_in_one_line(checkdir: CheckDir, expr: str, message: str) -> None:
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\n")
    checkdir.write(
        "checks/check_x.py",
        f"""
        from fraiseql_checks import alert

        @alert(expr={expr})
        def check_broken():
            '''Broken.'''
        """,
    )
    result = checkdir.run("generate", "alerts")
    assert result.ret == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("ERROR: collecting checks/check_x.py::check_broken: cannot collect check_broken: ")
    assert message in line
    assert not (checkdir.path / "alerts").exists()


def test_promtool_accepts_every_rule_file() -> None:
    promtool = require_binary("promtool")
    files = rule_files(ALERTS) + rule_files(V1)
    assert len(files) == 12
    result = subprocess.run([promtool, "check", "rules", *map(str, files)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def test_promtool_unit_tests_pass() -> None:
    promtool = require_binary("promtool")
    tests = sorted(TESTS.glob("*.yml"))
    result = subprocess.run([promtool, "test", "rules", *map(str, tests)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


def _unit_tests() -> dict[Path, dict[str, set[str]]]:
    """For each rule file, which alerts its unit tests see fire, stay quiet, and stay pending."""
    covered: dict[Path, dict[str, set[str]]] = {}
    for test_file in sorted(TESTS.glob("*.yml")):
        document = yaml.safe_load(test_file.read_text())
        for rule_file in document["rule_files"]:
            seen = covered.setdefault((TESTS / rule_file).resolve(), {"fires": set(), "quiet": set(), "pending": set()})
            for test in document["tests"]:
                for case in test.get("alert_rule_test", []):
                    seen["fires" if case["exp_alerts"] else "quiet"].add(case["alertname"])
                for case in test.get("promql_expr_test", []):
                    for sample in case["exp_samples"]:
                        if 'alertstate="pending"' in sample["labels"]:
                            seen["pending"].add(sample["labels"].split('alertname="', 1)[1].split('"', 1)[0])
    return covered


def _assert_tested(rule: dict[str, Any], seen: dict[str, set[str]], where: str) -> None:
    name = rule["alert"]
    assert name in seen["fires"], (where, name, "no test fires it")
    assert name in seen["quiet"], (where, name, "no test keeps it quiet")
    if "for" in rule:
        assert name in seen["pending"], (where, name, "no burst shorter than `for`")


def test_every_alert_has_unit_tests_that_fire_it_and_keep_it_quiet() -> None:
    """Each alert fires in a test and stays quiet in another; an alert with `for` is seen
    pending in a burst shorter than `for`, and does not fire. v1's rules are tested where
    they differ from v2's, and must be v2's rules elsewhere."""
    covered = _unit_tests()
    none: dict[str, set[str]] = {"fires": set(), "quiet": set(), "pending": set()}
    v2 = alerts_of(ALERTS)
    for path in rule_files(ALERTS):
        for rule in rules_in(path):
            _assert_tested(rule, covered.get(path.resolve(), none), path.name)
    for path in rule_files(V1):
        seen = covered.get(path.resolve(), none)
        for rule in rules_in(path):
            if rule["alert"] in seen["fires"]:
                _assert_tested(rule, seen, f"fraiseql-v1/{path.name}")
            else:
                assert rule in v2[rule["alert"]], (path.name, rule["alert"], "differs from v2 but is not tested")
    assert set(v2) == set(SEED) | CHECK_ALERTS
    assert (V1 / "fraiseql-checks.rules.yml").read_text() == (ALERTS / "fraiseql-checks.rules.yml").read_text().replace(
        "(profile fraiseql-v2)", "(profile fraiseql-v1)"
    )


def test_the_fifteen_seed_alerts_keep_the_seeds_names_severities_and_durations() -> None:
    for folder, expected in ((ALERTS, set(SEED)), (V1, set(SEED) - {"SuspiciousQueryPattern"})):
        found = {name: rules for name, rules in alerts_of(folder).items() if name not in CHECK_ALERTS}
        assert set(found) == expected, folder
        for name, (rule,) in found.items():
            severity, hold = SEED[name]
            assert rule["labels"]["severity"] == severity, name
            assert rule.get("for") == hold, name
            assert rule["labels"]["service"] == "fraiseql"
            assert rule["annotations"]["runbook_url"] == f"{RUNBOOK_BASE}docs/runbooks/{name}.md"
            assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}


@pytest.mark.parametrize(("folder", "profile"), [(ALERTS, "fraiseql-v2"), (V1, "fraiseql-v1")])
def test_rules_read_only_series_that_exist(folder: Path, profile: str) -> None:
    """FraiseQL's names as the profile's server emits them, this tool's from metrics.py, node_exporter's,
    Prometheus' own (up, ALERTS)."""
    emitted = PROFILES[profile].series_names()
    for path in rule_files(folder):
        for rule in rules_in(path):
            for name in metric_names(rule["expr"]):
                if is_fraiseql_series(name):
                    assert name in emitted, (path.name, rule["alert"], name)
                elif name.startswith(metrics.NAMESPACE):
                    metrics.by_name(name)
                else:
                    assert name in NODE_EXPORTER | {"up", "ALERTS"}, (path.name, rule["alert"], name)


def test_every_rule_on_a_check_failing_is_silenced_by_a_maintenance_window() -> None:
    """FraiseQLCheckFailing and the seed alerts that read a health check (DatabaseDown,
    CacheDown, HealthCheckFailing) go through one builder, which adds the maintenance window."""
    readers: set[str] = set()
    for folder in (ALERTS, V1):
        for path in rule_files(folder):
            for rule in rules_in(path):
                # The condition: the first line, when the rest keeps the alert while the watcher is gone.
                condition = rule["expr"].split("\nor (\n", 1)[0]
                if metrics.UP.name in metric_names(condition):
                    readers.add(rule["alert"])
                    assert metric_names(condition) == {metrics.UP.name, metrics.SILENCED.name}, rule["alert"]
                    silenced = f" == 0 unless on(check) max by (check) ({metrics.SILENCED.name}{{"
                    assert silenced in condition, rule["alert"]
    assert readers == {"FraiseQLCheckFailing", "DatabaseDown", "CacheDown", "HealthCheckFailing"}


def test_failing_expr_quotes_and_escapes_the_check() -> None:
    assert failing_expr("checks/a.py::check_x") == (
        'max by (check) (fraiseql_check_up{check="checks/a.py::check_x"}) == 0'
        ' unless on(check) max by (check) (fraiseql_check_silenced{check="checks/a.py::check_x"}) == 1'
    )
    assert failing_expr(function="check_db") == (
        'max by (check) (fraiseql_check_up{check=~".*::check_db"}) == 0'
        ' unless on(check) max by (check) (fraiseql_check_silenced{check=~".*::check_db"}) == 1'
    )
    odd = 'checks/a.py::check_x["q\\1.5"]'
    parse(failing_expr(odd))
    assert f"check={promql_string(odd)}" in failing_expr(odd)
    assert r'check=~".*::check\\.x\\[1\\]"' in failing_expr(function="check.x[1]")
    with pytest.raises(TypeError):
        failing_expr()
    with pytest.raises(TypeError):
        failing_expr("a", function="b")


def test_promql_strings_and_regular_expressions() -> None:
    assert promql_string('a "b" \\ c\n') == '"a \\"b\\" \\\\ c\\n"'
    assert promql_string("café 😀") == '"café 😀"'  # Go reads no surrogate pair (\\ud83d\\ude00)
    parse(f"up{{job={promql_string('café 😀')}}}")
    assert regex_escape("a.b*c") == "a\\.b\\*c"
    assert regex_escape("plain_name") == "plain_name"


@pytest.mark.parametrize("profile", ["fraiseql-v2", "fraiseql-v1"])
def test_the_metrics_contract_reads_the_rules_of_the_targets_profile(
    profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAISEQL_PROFILE", profile)
    config, _ = configure(["checks"], invocation_dir=REPO)
    refs = collect_references(config)
    folders = {ref.where.split(":", 1)[0].rsplit("/", 1)[0] for ref in refs if ref.where.startswith("alerts/")}
    # The SLO rules too: alerts/slo/ for the default profile, alerts/fraiseql-v1/slo/ where v1's differ.
    if profile == "fraiseql-v2":
        assert folders == {"alerts", "alerts/slo"}
    else:
        assert folders == {"alerts/fraiseql-v1", "alerts/fraiseql-v1/slo", "alerts/slo"}
    replaced = {ref.where.split(":", 1)[0] for ref in refs}
    assert ("alerts/slo/fraiseql.rules.yml" in replaced) == (profile == "fraiseql-v2")
    fraiseql = {ref.name for ref in refs if is_fraiseql_series(ref.name)}
    assert fraiseql
    assert fraiseql <= PROFILES[profile].series_names()


def test_every_alert_has_a_runbook_that_says_what_it_means_how_to_confirm_and_silence_it() -> None:
    for folder in (ALERTS, V1):
        for name, rules in alerts_of(folder).items():
            for rule in rules:
                link = rule["annotations"]["runbook_url"]
                assert link.startswith(RUNBOOK_BASE), (name, link)  # absolute, as notify.runbook_base_url says
                runbook = REPO / link.removeprefix(RUNBOOK_BASE)
                assert runbook.is_file(), (name, runbook)
                if runbook.stem != name:
                    continue  # a check's own runbook (FraiseQLCheckFailing of a shipped check)
                text = runbook.read_text()
                assert text.startswith(f"# {name}\n")
                assert "## What it means" in text, name
                assert "confirm" in text, name
                assert "## What to do" in text, name
                assert f"amtool silence add alertname={name}" in text, name


@pytest.mark.parametrize(
    "path", [*rule_files(ALERTS), *rule_files(V1), ALERTS / "alertmanager.yml"], ids=lambda p: p.name
)
def test_files_do_not_depend_on_libyaml(path: Path) -> None:
    """libyaml's emitter (used when PyYAML has it) and the pure-Python one write the same files."""
    text = path.read_text()
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    document = yaml.safe_load(body)
    assert yaml_text(document) == body
    assert yaml_text(document, pure=True) == body


# ---- the watcher gone: alerts on its series keep firing until it reports again ------------

MANY_FAILING = """
from fraiseql_checks import alert, check

@alert(expr="count(fraiseql_check_up == 0) >= 2", severity="critical")
def check_many_failing():
    '''Two checks or more fail.'''

@check
def check_ok():
    pass
"""


def test_an_alert_over_all_checks_is_kept_while_the_watcher_is_not_scraped(checkdir: CheckDir) -> None:
    """A result without a check label is kept while Prometheus cannot scrape the watcher, and
    ends as soon as it scrapes it again and the expression says otherwise."""
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\n")
    checkdir.write("checks/check_x.py", MANY_FAILING)
    assert checkdir.run("generate", "alerts").ret == 0
    (rule,) = rules_in(checkdir.path / "alerts/x.rules.yml")
    assert "keep_firing_for" not in rule, "the rule field would hold every recovery too"
    assert 'unless on(check) (fraiseql_check_up or up{job="fraiseql-check"} == 1)' in rule["expr"]
    watcher = '{job="fraiseql-check", instance="w:9470"}'
    firing = 'ALERTS{alertname="ManyFailing", alertstate="firing"}'
    fired = [{"labels": firing[:-1] + ', severity="critical", service="fraiseql"}', "value": 1}]
    test = {
        "rule_files": ["../x.rules.yml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    # Scrapes fail from 45s to 1m30s; both checks pass at their first run after.
                    {"series": f"up{watcher}", "values": "1 1 1 0 0 0 0 1x6"},
                    {"series": f'fraiseql_check_up{{check="a",{watcher[1:]}', "values": "0 0 0 stale _ _ _ 1x6"},
                    {"series": f'fraiseql_check_up{{check="b",{watcher[1:]}', "values": "0 0 0 stale _ _ _ 1x6"},
                ],
                "promql_expr_test": [
                    {"expr": firing, "eval_time": "30s", "exp_samples": fired},
                    {"expr": firing, "eval_time": "1m30s", "exp_samples": fired},  # nothing says otherwise
                    {"expr": firing, "eval_time": "1m45s", "exp_samples": []},  # scraped again: resolved at once
                ],
            }
        ],
    }
    test_file = checkdir.write("alerts/tests/x.yml", yaml.safe_dump(test))
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_keep_firing_for_0_leaves_the_expressions_as_they_are(checkdir: CheckDir) -> None:
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\nalerts:\n  keep_firing_for: 0\n")
    checkdir.write("checks/check_x.py", MANY_FAILING)
    assert checkdir.run("generate", "alerts").ret == 0
    (rule,) = rules_in(checkdir.path / "alerts/x.rules.yml")
    assert rule["expr"] == "count(fraiseql_check_up == 0) >= 2"
    failing, _stale, down, _absent = rules_in(checkdir.path / "alerts/fraiseql-checks.rules.yml")
    assert failing["expr"] == failing_expr("checks/check_x.py::check_ok")
    assert down["annotations"]["description"].endswith("resolve, though nothing says their checks pass.")
