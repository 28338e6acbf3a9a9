"""The metrics contract: rule files and dashboards against the target's /metrics and Prometheus."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from fraiseql_checks.targets.exposition import Exposition
from tests.support import DATA, REPO
from tests.support.checkdir import CheckDir
from tests.support.fraiseql_v2 import PAGE_WITHOUT_OBSERVERS, FakeFraiseQLV2, fake_fraiseql_v2, recorded_page
from tests.support.services import prometheus as run_prometheus

CHECKS = str(REPO / "checks" / "health" / "check_metrics_contract.py")
SHIPPED = DATA / "fraiseql-shipped-dashboard.json"
TOKEN = "contract-token-42"

RULES = """
groups:
  - name: fraiseql
    rules:
      - record: job:fraiseql_graphql_errors:rate5m
        expr: sum by (job) (rate(fraiseql_graphql_queries_error[5m]))
      - alert: HighErrorRate
        expr: job:fraiseql_graphql_errors:rate5m / sum by (job) (rate(fraiseql_graphql_queries_total[5m])) > 0.05
        for: 5m
      - alert: CheckFailing
        expr: fraiseql_check_up == 0
      - alert: HighCPUUsage
        expr: 1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m])) > 0.8
"""


@pytest.fixture
def server() -> Iterator[FakeFraiseQLV2]:
    with fake_fraiseql_v2(TOKEN) as fake:
        yield fake


def run(checkdir: CheckDir, *args: str, **env: str) -> tuple[dict, str]:  # type: ignore[type-arg]
    checkdir.write("fraiseql-checks.yaml", "paths: [.]\n")
    result, report = checkdir.run_json("-c", "fraiseql-checks.yaml", CHECKS, *args, env=env)
    (only,) = report["results"]
    return only, result.stdout


def test_fraiseqls_shipped_dashboard_breaks_the_contract(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    (checkdir.path / "dashboards").mkdir()
    shutil.copy(SHIPPED, checkdir.path / "dashboards" / "fraiseql.json")
    result, _stdout = run(checkdir, FRAISEQL_URL=server.url, FRAISEQL_METRICS_TOKEN=TOKEN)
    assert result["outcome"] == "failed"
    assert result["metrics_contract"]["missing"] == [
        "fraiseql_cache_hits_total",
        "fraiseql_db_errors_total",
        "fraiseql_request_duration_seconds_bucket",
    ]
    lines = result["message"].splitlines()
    assert lines[0] == f"3 series queried by alert rules or dashboards do not exist on {server.url}/metrics:"
    assert "  fraiseql_request_duration_seconds_bucket  (dashboards/fraiseql.json: panel 'Latency p99')" in lines
    assert "  fraiseql_cache_hits_total  (dashboards/fraiseql.json: panel 'Cache hit rate')" in lines
    assert "  fraiseql_db_errors_total  (dashboards/fraiseql.json: panel 'Database errors')" in lines
    assert result["values"] == {"series_referenced": 7.0, "series_missing": 3.0, "series_unchecked": 0.0}


def test_a_dashboard_of_real_v2_names_passes(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    dashboard = json.loads(SHIPPED.read_text())
    text = json.dumps(dashboard)
    for wrong, right in [
        ("fraiseql_request_duration_seconds_bucket", "fraiseql_http_request_duration_seconds_bucket"),
        ("fraiseql_cache_hits_total", "fraiseql_cache_hits"),
        ("fraiseql_db_errors_total", "fraiseql_execution_errors_total"),
    ]:
        text = text.replace(wrong, right)
    checkdir.write("dashboards/fraiseql.json", text)
    checkdir.write("alerts/fraiseql.yml", RULES)
    result, _ = run(checkdir, FRAISEQL_URL=server.url, FRAISEQL_METRICS_TOKEN=TOKEN)
    assert result["outcome"] == "passed", result["message"]
    # Names that are not FraiseQL's can only be confirmed by Prometheus: the result says so.
    assert result["metrics_contract"]["unchecked"] == [
        "fraiseql_check_up",
        "job:fraiseql_graphql_errors:rate5m",
        "node_cpu_seconds_total",
    ]
    assert "PROMETHEUS_URL" in result["metrics_contract"]["unchecked_reason"]
    assert result["values"]["series_unchecked"] == 3


def test_prometheus_confirms_the_other_names(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    checkdir.write("alerts/fraiseql.yml", RULES)
    with run_prometheus([]) as prometheus:
        prometheus.wait_for_series("up")
        result, _ = run(checkdir, FRAISEQL_URL=server.url, FRAISEQL_METRICS_TOKEN=TOKEN, PROMETHEUS_URL=prometheus.url)
    assert result["outcome"] == "failed"
    assert result["metrics_contract"]["unchecked"] == []
    assert result["metrics_contract"]["sources"] == [f"{server.url}/metrics", f"Prometheus {prometheus.url}"]
    # Nothing exports these in this test's Prometheus (no watcher, no node_exporter, no recording rule loaded).
    assert result["metrics_contract"]["missing"] == [
        "fraiseql_check_up",
        "job:fraiseql_graphql_errors:rate5m",
        "node_cpu_seconds_total",
    ]


def test_prometheus_alone_can_check_fraiseql_names(checkdir: CheckDir) -> None:
    checkdir.write("alerts/up.yml", "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n")
    with run_prometheus([]) as prometheus:
        prometheus.wait_for_series("up")
        result, _ = run(checkdir, PROMETHEUS_URL=prometheus.url)
    assert result["outcome"] == "passed", result["message"]


def test_invalid_promql_in_a_rule_file(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    checkdir.write("alerts/broken.yaml", "groups:\n- name: g\n  rules:\n  - alert: Broken\n    expr: sum(rate(x[5m])\n")
    result, stdout = run(checkdir, FRAISEQL_URL=server.url, FRAISEQL_METRICS_TOKEN=TOKEN)
    assert result["outcome"] == "failed"
    assert result["message"] == (
        "alerts/broken.yaml: alert Broken: invalid PromQL 'sum(rate(x[5m])': unclosed left parenthesis"
    )
    assert "Traceback" not in stdout


def test_nothing_to_check_is_a_skip(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    result, _ = run(checkdir, FRAISEQL_URL=server.url, FRAISEQL_METRICS_TOKEN=TOKEN)
    assert result["outcome"] == "skipped"


def test_without_a_target_it_names_what_to_set(checkdir: CheckDir) -> None:
    shutil.copytree(SHIPPED.parent, checkdir.path / "dashboards")
    result, _ = run(checkdir)
    assert result["outcome"] == "skipped"
    assert (
        result["message"]
        == "FraiseQL or Prometheus is not configured: set FRAISEQL_URL or `fraiseql.url` in the config"
    )


def test_folders_are_configurable(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    checkdir.write(
        "monitoring/rules.yml", "groups:\n- name: g\n  rules:\n  - alert: Gone\n    expr: fraiseql_gone == 1\n"
    )
    checkdir.write("fraiseql-checks.yaml", "metrics_contract:\n  rules: [monitoring]\n  dashboards: []\n")
    report = checkdir.run_json(
        "-c", "fraiseql-checks.yaml", CHECKS, env={"FRAISEQL_URL": server.url, "FRAISEQL_METRICS_TOKEN": TOKEN}
    )[1]
    assert report["results"][0]["metrics_contract"]["missing"] == ["fraiseql_gone"]


def test_an_observer_series_exists_only_on_builds_with_observer_metrics(
    checkdir: CheckDir, server: FakeFraiseQLV2
) -> None:
    """fraiseql_observer_* are optional (FRAISEQL.md): a rule reading one holds only where the build has them."""
    checkdir.write(
        "alerts/observers.yml",
        "groups:\n- name: g\n  rules:\n  - alert: ObserverQueueGrowing\n"
        "    expr: fraiseql_observer_job_queue_depth > 1000\n",
    )
    result, _ = run(checkdir, FRAISEQL_URL=server.url, FRAISEQL_METRICS_TOKEN=TOKEN)
    assert result["outcome"] == "passed", result["message"]
    server.metrics_text = recorded_page(PAGE_WITHOUT_OBSERVERS)
    result, _ = run(checkdir, FRAISEQL_URL=server.url, FRAISEQL_METRICS_TOKEN=TOKEN)
    assert result["outcome"] == "failed"
    assert result["metrics_contract"]["missing"] == ["fraiseql_observer_job_queue_depth"]


def test_exposition_keeps_names_as_written() -> None:
    """prometheus_client's parser adds _total to counters; the contract must see what the server wrote."""
    exposition = Exposition.parse(
        "# TYPE fraiseql_cache_hits counter\nfraiseql_cache_hits 5\n"
        "# TYPE a_total counter\n"
        "# TYPE h histogram\n"
        '# TYPE l counter\nl_total{x="1"} 2\n'
    )
    assert exposition.series_names == {"fraiseql_cache_hits", "a_total", "h_bucket", "h_sum", "h_count", "l_total"}
    assert exposition.value("fraiseql_cache_hits") == 5
    assert exposition.value("l_total", x="1") == 2
    assert "fraiseql_cache_hits_total" not in exposition
