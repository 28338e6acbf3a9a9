"""``fraiseql-check contract --dashboards DIR --rules DIR``: someone else's files against the target.

The target is the fake FraiseQL v2 serving its recorded page (tests/data/fraiseql/v2),
and a real Prometheus where names other than FraiseQL's need one. The files under test
are FraiseQL's own known-broken ones (FRAISEQL.md, "Known defects upstream").
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from tests.support import DATA
from tests.support.checkdir import CheckDir, RunResult
from tests.support.fraiseql_v2 import FakeFraiseQLV2, fake_fraiseql_v2
from tests.support.services import prometheus as run_prometheus

SHIPPED = DATA / "fraiseql-shipped-dashboard.json"
RUNBOOK_ALERTS = DATA / "fraiseql-runbook-alerts.yml"
TOKEN = "contract-command-token"
#: FRAISEQL.md: the series the dashboard FraiseQL ships queries and no FraiseQL server emits.
SHIPPED_MISSING = [
    "fraiseql_cache_hits_total  (theirs/fraiseql.json: panel 'Cache hit rate')",
    "fraiseql_db_errors_total  (theirs/fraiseql.json: panel 'Database errors')",
    "fraiseql_request_duration_seconds_bucket  (theirs/fraiseql.json: panel 'Latency p99')",
]


@pytest.fixture
def server() -> Iterator[FakeFraiseQLV2]:
    with fake_fraiseql_v2(TOKEN) as fake:
        yield fake


def contract(checkdir: CheckDir, server: FakeFraiseQLV2 | None, *args: str, **env: str) -> RunResult:
    target = {"FRAISEQL_URL": server.url, "FRAISEQL_METRICS_TOKEN": TOKEN} if server else {}
    return checkdir.run("contract", *args, env={**target, **env})


@pytest.fixture
def theirs(checkdir: CheckDir) -> CheckDir:
    (checkdir.path / "theirs").mkdir()
    shutil.copy(SHIPPED, checkdir.path / "theirs" / "fraiseql.json")
    return checkdir


def test_fraiseqls_shipped_dashboard_queries_three_series_the_server_does_not_expose(
    theirs: CheckDir, server: FakeFraiseQLV2
) -> None:
    result = contract(theirs, server, "--dashboards", "theirs")
    assert result.ret == 1, result.stdout + result.stderr
    assert result.outlines == [
        *SHIPPED_MISSING,
        f"3 of 7 series queried by 1 dashboard and 0 rule files do not exist on {server.url}/metrics",
    ]
    assert result.stderr == ""


def test_the_json_report_lists_each_missing_series_and_where(theirs: CheckDir, server: FakeFraiseQLV2) -> None:
    result = contract(theirs, server, "--dashboards", "theirs/fraiseql.json", "--report-json", "out/contract.json")
    assert result.ret == 1
    report = json.loads((theirs.path / "out" / "contract.json").read_text())
    assert report["missing"] == [
        {"series": "fraiseql_cache_hits_total", "used_in": ["theirs/fraiseql.json: panel 'Cache hit rate'"]},
        {"series": "fraiseql_db_errors_total", "used_in": ["theirs/fraiseql.json: panel 'Database errors'"]},
        {
            "series": "fraiseql_request_duration_seconds_bucket",
            "used_in": ["theirs/fraiseql.json: panel 'Latency p99'"],
        },
    ]
    assert report["sources"] == [f"{server.url}/metrics"]
    assert len(report["referenced"]) == 7 and "fraiseql_cache_misses" in report["referenced"]
    assert (report["unchecked"], report["unreadable"], report["error"], report["exitcode"]) == ([], [], None, 1)


def test_with_the_names_fixed_nothing_is_missing(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    text = SHIPPED.read_text()
    for wrong, right in [
        ("fraiseql_request_duration_seconds_bucket", "fraiseql_http_request_duration_seconds_bucket"),
        ("fraiseql_cache_hits_total", "fraiseql_cache_hits"),
        ("fraiseql_db_errors_total", "fraiseql_execution_errors_total"),
    ]:
        text = text.replace(wrong, right)
    checkdir.write("theirs/fraiseql.json", text)
    result = contract(checkdir, server, "--dashboards", "theirs", "--report-json", "contract.json")
    assert result.ret == 0, result.stdout
    assert result.outlines == [
        f"all 7 series checked of the 7 queried by 1 dashboard and 0 rule files exist on {server.url}/metrics"
    ]
    assert json.loads((checkdir.path / "contract.json").read_text())["missing"] == []


def test_fraiseqls_runbook_alerts_against_the_server_and_prometheus(theirs: CheckDir, server: FakeFraiseQLV2) -> None:
    shutil.copy(RUNBOOK_ALERTS, theirs.path / "runbook-alerts.yml")
    result = contract(theirs, server, "--rules", "runbook-alerts.yml", "--dashboards", "theirs")
    # Without Prometheus, FraiseQL's /metrics confirms only fraiseql_* names; the rest are named, not failed.
    assert result.ret == 1
    assert result.outlines == [
        "fraiseql_cache_hits_total  (theirs/fraiseql.json: panel 'Cache hit rate')",
        "fraiseql_db_errors_total  (theirs/fraiseql.json: panel 'Database errors')",
        "fraiseql_request_duration_seconds_bucket  (theirs/fraiseql.json: panel 'Latency p99')",
        "fraiseql_secrets_connected  (runbook-alerts.yml: alert FraiseQLSecretsBackendDown)",
        "not checked (only Prometheus can confirm them: set PROMETHEUS_URL): auth_failures_total,"
        " db_pool_connections_max, request_duration_seconds_bucket, request_errors_total",
        f"4 of 13 series queried by 1 dashboard and 1 rule file do not exist on {server.url}/metrics",
    ]
    with run_prometheus([]) as prometheus:
        prometheus.wait_for_series("up")
        result = contract(theirs, server, "--rules", "runbook-alerts.yml", PROMETHEUS_URL=prometheus.url)
    assert result.ret == 1
    assert result.outlines == [
        "auth_failures_total  (runbook-alerts.yml: alert FraiseQLAuthFailures)",
        "db_pool_connections_max  (runbook-alerts.yml: alert FraiseQLPoolExhausted)",
        "fraiseql_secrets_connected  (runbook-alerts.yml: alert FraiseQLSecretsBackendDown)",
        "request_duration_seconds_bucket  (runbook-alerts.yml: alert FraiseQLHighLatency)",
        "request_errors_total  (runbook-alerts.yml: alert FraiseQLHighErrorRate)",
        f"5 of 7 series queried by 0 dashboards and 1 rule file do not exist on {server.url}/metrics"
        f" and Prometheus {prometheus.url}",
    ]


def test_prometheus_alone_is_a_target(theirs: CheckDir) -> None:
    with run_prometheus([]) as prometheus:
        prometheus.wait_for_series("up")
        result = contract(theirs, None, "--dashboards", "theirs", PROMETHEUS_URL=prometheus.url)
    assert result.ret == 1
    # Nothing scrapes a FraiseQL here: every FraiseQL name is missing from this Prometheus.
    assert (
        result.outlines[-1]
        == f"7 of 7 series queried by 1 dashboard and 0 rule files do not exist on Prometheus {prometheus.url}"
    )


def test_several_folders_and_files_of_each(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    checkdir.write("a/one.json", SHIPPED.read_text())
    checkdir.write("b/nested/two.json", SHIPPED.read_text().replace("fraiseql_db_errors_total", "fraiseql_gone"))
    checkdir.write("b/notes.txt", "not a dashboard")
    checkdir.write(
        "r1/rules.yaml", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: fraiseql_parse_errors_total > 0\n"
    )
    checkdir.write("r2.yml", "groups:\n- name: g\n  rules:\n  - record: x:y\n    expr: sum(fraiseql_nope)\n")
    args = ["--dashboards", "a", "--dashboards", "b", "--rules", "r1", "--rules", "r2.yml"]
    result = contract(checkdir, server, *args)
    assert result.ret == 1
    assert result.outlines[:5] == [
        "fraiseql_cache_hits_total  (a/one.json: panel 'Cache hit rate'; b/nested/two.json: panel 'Cache hit rate')",
        "fraiseql_db_errors_total  (a/one.json: panel 'Database errors')",
        "fraiseql_gone  (b/nested/two.json: panel 'Database errors')",
        "fraiseql_nope  (r2.yml: record x:y)",
        "fraiseql_request_duration_seconds_bucket"
        "  (a/one.json: panel 'Latency p99'; b/nested/two.json: panel 'Latency p99')",
    ]
    assert result.outlines[-1].endswith(
        "queried by 2 dashboards and 2 rule files do not exist on " + server.url + "/metrics"
    )


def test_a_file_that_cannot_be_read_is_named_and_the_others_are_checked(
    theirs: CheckDir, server: FakeFraiseQLV2
) -> None:
    theirs.write("theirs/broken.json", "{ not json")
    theirs.write("rules/bad.yml", "groups:\n- name: g\n  rules:\n  - alert: Bad\n    expr: sum(rate(x[5m])\n")
    result = contract(theirs, server, "--dashboards", "theirs", "--rules", "rules")
    assert result.ret == 1
    assert result.outlines[:3] == SHIPPED_MISSING
    errors = result.stderr.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith("ERROR: theirs/broken.json: cannot read the dashboard: ")
    assert errors[1] == "ERROR: rules/bad.yml: alert Bad: invalid PromQL 'sum(rate(x[5m])': unclosed left parenthesis"


def test_queries_of_other_datasources_are_not_promql(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    """A Loki panel's expr is LogQL: left out, not a parse error; a mixed panel's Prometheus target is read."""
    loki = {"type": "loki", "uid": "logs"}
    dashboard = {
        "panels": [
            {"title": "Logs", "datasource": loki, "targets": [{"expr": '{app="fraiseql"} |= "error"'}]},
            {
                "title": "Mixed",
                "datasource": {"type": "datasource", "uid": "-- Mixed --"},
                "targets": [
                    {"datasource": loki, "expr": 'count_over_time({app="fraiseql"}[5m])'},
                    {"datasource": {"type": "prometheus", "uid": "p"}, "expr": "rate(fraiseql_missing_total[5m])"},
                ],
            },
        ]
    }
    checkdir.write("d/logs.json", json.dumps(dashboard))
    result = contract(checkdir, server, "--dashboards", "d")
    assert result.ret == 1, result.stderr
    assert result.outlines[0] == "fraiseql_missing_total  (d/logs.json: panel 'Mixed')"


def test_files_that_query_nothing_exit_5(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    (checkdir.path / "empty").mkdir()
    checkdir.write("rules/other.yaml", "kind: Kustomization\n")
    result = contract(checkdir, server, "--dashboards", "empty", "--rules", "rules")
    assert result.ret == 5
    assert result.outlines == ["no series queried in 1 file: nothing to check"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {}, "give the files to check: --dashboards DIR and/or --rules DIR"),
        (("--dashboards", "nowhere"), {}, "--dashboards nowhere: no such file or folder"),
        (("--rules", "theirs", "--rules", "gone.yml"), {}, "--rules gone.yml: no such file or folder"),
        (("--dashboards",), {}, "argument --dashboards: expected one argument"),
        (
            ("--dashboards", "theirs"),
            {"FRAISEQL_URL": ""},
            "no target to compare with: set FRAISEQL_URL (or `fraiseql.url`) and/or PROMETHEUS_URL",
        ),
        (
            ("--dashboards", "theirs"),
            {"FRAISEQL_METRICS_TOKEN": ""},
            "http://127.0.0.1:*/metrics needs a token: set FRAISEQL_METRICS_TOKEN (or `fraiseql.metrics_token`),"
            " or PROMETHEUS_URL",
        ),
    ],
)
def test_bad_usage_exits_4_with_one_line(
    theirs: CheckDir, server: FakeFraiseQLV2, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = contract(theirs, server, *args, **env)
    assert result.ret == 4, result.stdout + result.stderr
    assert result.stdout == ""
    theirs_lines = result.stderr.splitlines()
    assert len(theirs_lines) == 1
    result.stderr_lines([f"ERROR: {message}"])


def test_a_target_that_refuses_is_one_line_and_exit_1(theirs: CheckDir, server: FakeFraiseQLV2) -> None:
    result = contract(
        theirs,
        server,
        "--dashboards",
        "theirs",
        "--report-json",
        "r.json",
        FRAISEQL_METRICS_TOKEN="wrong-token-0123456",
    )
    assert result.ret == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"ERROR: GET {server.url}/metrics: HTTP 401 Unauthorized")
    assert "wrong-token-0123456" not in result.stderr
    report = json.loads((theirs.path / "r.json").read_text())
    assert report["error"].startswith(f"GET {server.url}/metrics: HTTP 401") and report["exitcode"] == 1


def test_the_command_is_listed(checkdir: CheckDir) -> None:
    result = checkdir.run("--help")
    result.fnmatch_lines(["*contract*list the series other dashboards and rule files query that the target*"])
