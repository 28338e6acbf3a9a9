"""promql.py: parsing, the metric names an expression selects, agreement with promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fraiseql_checks import promql
from tests.support.services import require_binary

VALID = [
    "up",
    "sum by (job) (rate(x_total[5m]))",
    "histogram_quantile(0.99, sum by (le) (rate(fraiseql_query_duration_seconds_bucket[5m])))",
    '{__name__="x"}',
    "x offset 5m",
    "max_over_time(x[5m:1m])",
    "x @ 100",
    "sum without (instance) (x) > bool 3",
    'label_replace(up, "a", "$1", "job", "(.*)")',
    "x == on(a) group_left y",
    "topk(3, x)",
    "predict_linear(x[1h], 3600)",
]
INVALID = [
    "sum(rate(x[5m])",
    "rate(x)",
    "x{",
    "foo and 1",
    "{}",
    '{job=~".*"}',
    "nosuchfunction(up)",
    "topk(x, 3)",
]


@pytest.mark.parametrize("expr", VALID)
def test_valid_expressions_parse(expr: str) -> None:
    promql.parse(expr)


@pytest.mark.parametrize("expr", INVALID)
def test_invalid_expressions_raise_promql_error(expr: str) -> None:
    with pytest.raises(promql.PromQLError) as info:
        promql.parse(expr)
    assert info.value.expr == expr
    assert info.value.reason
    assert expr in str(info.value)


def test_empty_expression_is_an_error() -> None:
    with pytest.raises(promql.PromQLError, match="empty expression"):
        promql.parse("  ")


def test_agrees_with_promtool(tmp_path: Path) -> None:
    """promtool (Prometheus' own loader) and promql.parse accept and reject the same expressions."""
    promtool = require_binary("promtool")
    disagreements = []
    for index, expr in enumerate(VALID + INVALID):
        rule_file = tmp_path / f"rules{index}.yml"
        quoted = expr.replace("'", "''")
        rule_file.write_text(f"groups:\n- name: g\n  rules:\n  - record: r:x\n    expr: '{quoted}'\n")
        loads = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True).returncode == 0
        try:
            promql.parse(expr)
            parses = True
        except promql.PromQLError:
            parses = False
        if loads != parses:
            disagreements.append((expr, loads, parses))
    assert disagreements == []


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        (
            "sum(rate(fraiseql_graphql_queries_error[5m])) / sum(rate(fraiseql_graphql_queries_total[5m])) > 0.05",
            {"fraiseql_graphql_queries_error", "fraiseql_graphql_queries_total"},
        ),
        ('{__name__="fraiseql_cache_hits", job="api"} + on() vector(1)', {"fraiseql_cache_hits"}),
        ("job:request_rate:5m > 3 and absent(node_load1)", {"job:request_rate:5m", "node_load1"}),
        ("max_over_time(fraiseql_check_up[5m:1m] offset 1h)", {"fraiseql_check_up"}),
        ('{__name__=~"fraiseql_.*"}', set()),
        ("vector(1) + time()", set()),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert promql.metric_names(expr) == names


def test_name_patterns() -> None:
    assert promql.name_patterns('count({__name__=~"fraiseql_.*", job="x"}) + up') == {"fraiseql_.*"}
    assert promql.name_patterns("up") == set()


def test_metric_names_of_invalid_expression_raises() -> None:
    with pytest.raises(promql.PromQLError):
        promql.metric_names("rate(x[5m]")


@pytest.mark.parametrize(
    ("panel", "expected"),
    [
        ("rate(x_total[$__rate_interval])", "rate(x_total[5m])"),
        ("rate(x_total[${__interval}])", "rate(x_total[5m])"),
        ('sum(x{job="$job", instance=~"${instance}"})', 'sum(x{job=".*", instance=~".*"})'),
        ('x{env="[[env]]"} offset $__range', 'x{env=".*"} offset 5m'),
        ("x / $__range_s", "x / 300"),
    ],
)
def test_without_grafana_variables(panel: str, expected: str) -> None:
    assert promql.without_grafana_variables(panel) == expected
    promql.parse(promql.without_grafana_variables(panel))
