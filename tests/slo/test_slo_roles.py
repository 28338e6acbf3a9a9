"""SLO queries written with roles (``{{graphql_errors}}``): one SLO per profile that has the roles."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from fraiseql_checks.slo.load import load_files
from fraiseql_checks.slo.model import SLO, LatencySLI, RatioSLI, SLOError
from tests.support.checkdir import CheckDir


def load(tmp_path: Path, text: str) -> list[SLO]:
    path = tmp_path / "slos.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return load_files([(path, "slos.yaml")])


def test_a_ratio_with_roles_becomes_one_slo_per_profile(tmp_path: Path) -> None:
    slos = load(
        tmp_path,
        """
        slos:
          - name: http-errors
            objective: 99.5%
            sli:
              ratio:
                bad: sum(rate({{http_5xx}}[{{window}}]))
                total: sum(rate({{http_requests}}[{{window}}]))
        """,
    )
    assert [(slo.name, slo.profiles) for slo in slos] == [
        ("http-errors", ("fraiseql-v2",)),
        ("http-errors", ("fraiseql-v1",)),
    ]
    v2, v1 = (slo.sli for slo in slos)
    assert isinstance(v2, RatioSLI) and isinstance(v1, RatioSLI)
    assert v2.bad == "sum(rate(fraiseql_http_responses_5xx[{{window}}]))"
    assert v1.bad == 'sum(rate(fraiseql_http_requests_total{status=~"5.."}[{{window}}]))'
    assert v1.error_ratio_query("1h") == (
        '(sum(rate(fraiseql_http_requests_total{status=~"5.."}[1h]))) / (sum(rate(fraiseql_http_requests_total[1h])))'
    )


def test_a_profile_without_a_role_has_no_such_slo(tmp_path: Path) -> None:
    (slo,) = load(
        tmp_path,
        """
        slos:
          - name: cost
            objective: 99%
            sli: {error_ratio: 'sum(rate({{query_cost}}[{{window}}])) / sum(rate({{graphql_requests}}[{{window}}]))'}
        """,
    )
    assert slo.profiles == ("fraiseql-v2",)
    assert slo.sli.error_ratio_query("5m") == (
        "sum(rate(fraiseql_graphql_queries_cost_total[5m])) / sum(rate(fraiseql_graphql_queries_total[5m]))"
    )


def test_profile_narrows_the_profiles_a_role_slo_is_made_for(tmp_path: Path) -> None:
    (slo,) = load(
        tmp_path,
        """
        slos:
          - name: errors
            profile: fraiseql-v1
            objective: 99%
            sli: {ratio: {bad: 'sum(rate({{graphql_errors}}[{{window}}]))', total: 'sum(rate({{graphql_requests}}[{{window}}]))'}}
        """,
    )
    assert slo.profiles == ("fraiseql-v1",)
    assert (
        isinstance(slo.sli, RatioSLI) and slo.sli.bad == "sum(rate(fraiseql_graphql_queries_errors_total[{{window}}]))"
    )


def test_a_latency_histogram_named_by_role(tmp_path: Path) -> None:
    latency, scoped = load(
        tmp_path,
        """
        slos:
          - name: http-latency
            objective: 99%
            sli: {latency: {histogram: '{{http_latency}}', threshold: 0.5}}
          - name: api-latency
            objective: 99%
            sli: {latency: {histogram: '{{http_latency{job="api"}}}', threshold: 0.5, selector: '{env="prod"}'}}
        """,
    )
    # the same histogram on every profile: one SLO, for all of them, as written
    assert latency.profiles == ()
    assert latency.sli == LatencySLI("fraiseql_http_request_duration_seconds", "0.5", "")
    assert scoped.sli == LatencySLI("fraiseql_http_request_duration_seconds", "0.5", '{job="api",env="prod"}')


@pytest.mark.parametrize(
    ("sli", "message"),
    [
        (
            "{error_ratio: 'sum(rate({{graphql_erors}}[{{window}}]))'}",
            "SLO 'a': sli.error_ratio: unknown role 'graphql_erors' in {{graphql_erors}}"
            " (did you mean 'graphql_errors'?); known roles: graphql_requests,",
        ),
        (
            "{error_ratio: 'sum(rate({{pool_waiting}}[{{window}}])) and sum(rate({{errors_by_type}}[{{window}}]))'}",
            "SLO 'a': no target profile has every role its queries read"
            " (fraiseql-v2 has no errors_by_type; fraiseql-v1 has no pool_waiting)",
        ),
        ("{latency: {histogram: '{{cache_hits}}', threshold: 1}}", "cache_hits is a counter, not a histogram"),
        ("{error_ratio: 'sum(rate({{query_latency}}[{{window}}]))'}", "query_latency is a histogram: write"),
        (
            "{error_ratio: 'sum(rate({{http_5xx}}[{{window}}])'}",
            "SLO 'a': sli (fraiseql-v2): unclosed left parenthesis",
        ),
    ],
)
def test_bad_roles_are_one_line_errors(tmp_path: Path, sli: str, message: str) -> None:
    with pytest.raises(SLOError) as info:
        load(tmp_path, f"slos:\n  - name: a\n    objective: 99%\n    sli: {sli}\n")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_the_slo_command_uses_the_configured_profiles_series(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_a.py", "def check_a():\n    pass\n")
    checkdir.write(
        "slos.yaml",
        """
        slos:
          - {name: errors, objective: 99%, sli: {error_ratio: 'sum(rate({{graphql_errors}}[{{window}}]))'}}
        """,
    )
    report = checkdir.path / "slo.json"
    for profile, metric in (
        ("fraiseql-v2", "fraiseql_graphql_queries_error"),
        ("fraiseql-v1", "fraiseql_graphql_queries_errors_total"),
    ):
        assert checkdir.run("slo", "--report-json", str(report), env={"FRAISEQL_PROFILE": profile}).ret == 0
        (entry,) = json.loads(report.read_text())["slos"]
        assert entry["id"] == "fraiseql-errors"
        assert entry["error_ratio_query"] == f"sum(rate({metric}[{{{{window}}}}]))", profile


def test_roles_in_openslo_and_sloth_definitions(tmp_path: Path) -> None:
    slos = load(
        tmp_path,
        """
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: graphql}
        spec:
          service: fraiseql
          budgetingMethod: Occurrences
          timeWindow: [{duration: 28d, isRolling: true}]
          objectives: [{target: 0.999}]
          indicator:
            metadata: {name: graphql-errors}
            spec:
              ratioMetric:
                counter: true
                bad: {metricSource: {type: Prometheus, spec: {query: '{{graphql_errors}}'}}}
                total: {metricSource: {type: Prometheus, spec: {query: '{{graphql_requests}}'}}}
        ---
        version: prometheus/v1
        service: fraiseql
        slos:
          - name: http
            objective: 99.5
            sli:
              events:
                error_query: sum(rate({{http_5xx}}[{{.window}}]))
                total_query: sum(rate({{http_requests}}[{{.window}}]))
        """,
    )
    by_profile = {(slo.name, slo.profiles): slo.sli.error_ratio_query("5m") for slo in slos}
    assert by_profile == {
        ("http", ("fraiseql-v2",)): "(sum(rate(fraiseql_http_responses_5xx[5m])))"
        " / (sum(rate(fraiseql_http_requests_total[5m])))",
        ("http", ("fraiseql-v1",)): '(sum(rate(fraiseql_http_requests_total{status=~"5.."}[5m])))'
        " / (sum(rate(fraiseql_http_requests_total[5m])))",
        ("graphql", ("fraiseql-v2",)): "(sum(rate(fraiseql_graphql_queries_error[5m])))"
        " / (sum(rate(fraiseql_graphql_queries_total[5m])))",
        ("graphql", ("fraiseql-v1",)): "(sum(rate(fraiseql_graphql_queries_errors_total[5m])))"
        " / (sum(rate(fraiseql_graphql_queries_total[5m])))",
    }
