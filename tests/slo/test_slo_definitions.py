"""Reading SLO definitions: check strings, slos.yaml, OpenSLO v1, Sloth; invalid ones exit 4."""

from __future__ import annotations

import json
import textwrap
from fractions import Fraction
from pathlib import Path

import pytest

from fraiseql_checks.slo.load import load_files
from fraiseql_checks.slo.model import CheckSLI, LatencySLI, Objective, Period, PeriodKind, RatioSLI, SLOError
from tests.support.checkdir import CheckDir


def load(tmp_path: Path, text: str, name: str = "slos.yaml") -> list:  # type: ignore[type-arg]
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return load_files([(path, name)])


@pytest.mark.parametrize(
    ("text", "ratio", "shown"),
    [
        ("99.9%", Fraction(999, 1000), "99.9%"),
        ("99.95 %", Fraction(9995, 10000), "99.95%"),
        (99.9, Fraction(999, 1000), "99.9%"),  # Sloth writes a percentage
        (0.999, Fraction(999, 1000), "99.9%"),  # OpenSLO's target is a ratio
        ("90%", Fraction(9, 10), "90%"),
    ],
)
def test_objectives_are_exact_decimals(text: object, ratio: Fraction, shown: str) -> None:
    objective = Objective.parse(text)
    assert objective.ratio == ratio
    assert objective.budget == 1 - ratio
    assert str(objective) == shown


@pytest.mark.parametrize("text", ["100%", "0%", "abc", "-5%", "101"])
def test_impossible_objectives_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Objective.parse(text)


def test_periods_rolling_and_calendar() -> None:
    assert Period.parse("30d").seconds == 30 * 86400 and Period.parse("30d").label == "30d"
    assert Period.parse("4w").label == "28d"
    month = Period.parse("calendar month")
    assert month.kind is PeriodKind.MONTH and month.prometheus_window == "30d"
    # 2026-02-15T12:00:00Z: February 2026 has 28 days.
    start, end = month.bounds(1771156800.0)
    assert (start, end) == (1769904000.0, 1772323200.0)
    assert month.length(1771156800.0) == 28 * 86400
    week = Period.parse("week")  # ISO weeks start on Monday: 2026-02-09
    assert week.bounds(1771156800.0) == (1770595200.0, 1771200000.0)
    paris = Period.parse("month", "Europe/Paris")
    assert paris.bounds(1771156800.0)[0] == 1769904000.0 - 3600  # midnight in Paris is 23:00 UTC
    with pytest.raises(ValueError, match="too short"):
        Period.parse("5m")
    with pytest.raises(ValueError, match="timezone"):
        Period.parse("month", "Mars/Olympus")


def test_native_file_ratio_latency_and_error_ratio(tmp_path: Path) -> None:
    slos = load(
        tmp_path,
        """
        service: fraiseql
        slos:
          - name: graphql-availability
            objective: 99.9%
            period: 30d
            labels: {team: api}
            sli:
              ratio:
                bad: sum(rate(fraiseql_graphql_queries_error[{{window}}]))
                total: sum(rate(fraiseql_graphql_queries_total[{{window}}]))
          - name: http-latency
            service: edge
            objective: 99%
            period: week
            timezone: Europe/Paris
            sli:
              latency:
                histogram: fraiseql_http_request_duration_seconds
                threshold: 0.5
                selector: '{job="fraiseql"}'
          - name: raw
            objective: 95%
            sli:
              error_ratio: 1 - (sum(rate(fraiseql_http_responses_2xx[{{ window }}])) / sum(rate(fraiseql_http_requests_total[{{window}}])))
        """,
    )
    availability, latency, raw = slos
    assert availability.id == "fraiseql-graphql-availability" and availability.labels == {"team": "api"}
    assert isinstance(availability.sli, RatioSLI)
    assert availability.sli.error_ratio_query("1h") == (
        "(sum(rate(fraiseql_graphql_queries_error[1h]))) / (sum(rate(fraiseql_graphql_queries_total[1h])))"
    )
    assert isinstance(latency.sli, LatencySLI) and latency.id == "edge-http-latency"
    assert latency.period.kind is PeriodKind.WEEK and latency.period.timezone == "Europe/Paris"
    assert latency.sli.error_ratio_query("5m") == (
        '(sum(rate(fraiseql_http_request_duration_seconds_count{job="fraiseql"}[5m]))'
        ' - sum(rate(fraiseql_http_request_duration_seconds_bucket{job="fraiseql",le="0.5"}[5m])))'
        ' / sum(rate(fraiseql_http_request_duration_seconds_count{job="fraiseql"}[5m]))'
    )
    assert raw.period.label == "30d" and "[6h]" in raw.sli.error_ratio_query("6h")


def test_openslo_v1_ratio_metrics_inline_and_by_reference(tmp_path: Path) -> None:
    slos = load(
        tmp_path,
        """
        apiVersion: openslo/v1
        kind: Service
        metadata: {name: fraiseql}
        spec: {description: the API}
        ---
        apiVersion: openslo/v1
        kind: SLI
        metadata: {name: good-requests}
        spec:
          ratioMetric:
            counter: true
            good:
              metricSource: {type: Prometheus, spec: {query: 'fraiseql_http_responses_2xx{job="fraiseql"}'}}
            total:
              metricSource: {type: Prometheus, spec: {query: 'fraiseql_http_requests_total{job="fraiseql"}'}}
        ---
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: api-availability, displayName: API availability}
        spec:
          service: fraiseql
          indicatorRef: good-requests
          timeWindow: [{duration: 28d, isRolling: true}]
          budgetingMethod: Occurrences
          objectives: [{displayName: main, target: 0.995}]
        ---
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: graphql-errors}
        spec:
          service: fraiseql
          indicator:
            metadata: {name: graphql-errors}
            spec:
              ratioMetric:
                counter: true
                bad: {metricSource: {type: prometheus, spec: {query: 'sum(rate(fraiseql_graphql_queries_error[{{window}}]))'}}}
                total: {metricSource: {type: prometheus, spec: {query: 'sum(rate(fraiseql_graphql_queries_total[{{window}}]))'}}}
          timeWindow: [{duration: 1M, isRolling: false, calendar: {startTime: "2026-01-01 00:00:00", timeZone: UTC}}]
          budgetingMethod: Occurrences
          objectives: [{targetPercent: 99.9}]
        """,
        "openslo.yaml",
    )
    availability, errors = slos
    assert availability.id == "fraiseql-api-availability" and availability.period.label == "28d"
    assert availability.objective.ratio == Fraction(995, 1000)
    assert availability.sli.error_ratio_query("5m") == (
        '((sum(rate(fraiseql_http_requests_total{job="fraiseql"}[5m])))'
        ' - (sum(rate(fraiseql_http_responses_2xx{job="fraiseql"}[5m]))))'
        ' / (sum(rate(fraiseql_http_requests_total{job="fraiseql"}[5m])))'
    )
    assert errors.period.kind is PeriodKind.MONTH and errors.objective.ratio == Fraction(999, 1000)


def test_sloth_prometheus_v1_spec(tmp_path: Path) -> None:
    (slo,) = load(
        tmp_path,
        """
        version: "prometheus/v1"
        service: "fraiseql"
        labels: {owner: "platform"}
        slos:
          - name: "requests-availability"
            objective: 99.9
            description: "Common SLO based on availability for HTTP request responses."
            sli:
              events:
                error_query: sum(rate(fraiseql_http_responses_5xx[{{.window}}]))
                total_query: sum(rate(fraiseql_http_requests_total[{{.window}}]))
            alerting:
              name: FraiseQLHighErrorRate
              labels: {category: "availability"}
              annotations: {summary: "High error rate on FraiseQL requests"}
              page_alert: {labels: {severity: pageteam, routing_key: myteam}}
              ticket_alert: {labels: {severity: "slack", slack_channel: "#alerts-myteam"}}
        """,
        "sloth.yaml",
    )
    assert slo.id == "fraiseql-requests-availability" and slo.labels == {"owner": "platform"}
    assert slo.objective.ratio == Fraction(999, 1000) and slo.period.label == "30d"
    assert slo.sli.error_ratio_query("30m") == (
        "(sum(rate(fraiseql_http_responses_5xx[30m]))) / (sum(rate(fraiseql_http_requests_total[30m])))"
    )
    assert slo.alerting.name == "FraiseQLHighErrorRate"
    assert slo.alerting.page_labels == {"severity": "pageteam", "routing_key": "myteam"}
    assert slo.alerting.ticket_labels["slack_channel"] == "#alerts-myteam"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("slos:\n  - name: a\n    objective: 101%\n    sli: {error_ratio: 'vector(0)'}\n", "'a': objective"),
        (
            "slos:\n  - name: a\n    objective: 99%\n    sli: {ratio: {bad: 'sum(rate(x[5m]))', total: 'sum(rate(y[{{window}}]))'}}\n",
            "'a': sli.ratio.bad has no {{window}} placeholder",
        ),
        (
            "slos:\n  - name: a\n    objective: 99%\n    sli: {ratio: {bad: 'sum(rate(x[{{window}}])', total: 'y'}}\n",
            "'a': sli.ratio.bad: ",
        ),
        ("slos:\n  - name: a\n    objective: 99%\n    period: fortnight\n    sli: {error_ratio: 'x'}\n", "'a': period"),
        ("slos:\n  - name: a b\n    objective: 99%\n    sli: {error_ratio: 'x'}\n", "name 'a b'"),
        ("slos:\n  - name: a\n    objective: 99%\n    sli: {}\n", "'a': sli needs exactly one"),
        (
            "slos:\n  - name: a\n    objective: 99%\n    color: red\n    sli: {error_ratio: 'x'}\n",
            "unknown key 'color'",
        ),
        ("slos: [\n", "not valid YAML"),
        ("kind: Deployment\n", "not an SLO file"),
        (
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: t}\nspec:\n  budgetingMethod: Timeslices\n",
            "'t': budgetingMethod 'Timeslices' is not supported",
        ),
        (
            "version: prometheus/v1\nservice: s\nslos:\n  - name: p\n    objective: 99\n    sli: {plugin: {id: x}}\n",
            "plugins",
        ),
    ],
)
def test_invalid_definitions_say_file_slo_and_what(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SLOError) as info:
        load(tmp_path, text)
    assert str(info.value).startswith("slos.yaml")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_two_slos_with_one_id_are_refused(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_a.py", "def check_a():\n    pass\n")
    query = "sum(rate(x[{{window}}]))"
    text = f"slos:\n  - {{name: a, objective: 99%, sli: {{error_ratio: '{query}'}}}}\n"
    checkdir.write("slos.yaml", text + f"  - {{name: a, objective: 98%, sli: {{error_ratio: '{query}'}}}}\n")
    result = checkdir.run("slo")
    assert result.ret == 4
    assert result.stderr.strip() == (
        "ERROR: slos.yaml: SLO 'a': service 'fraiseql' already has an SLO of this name (slos.yaml)"
    )


def test_check_slos_come_from_the_decorator(checkdir: CheckDir) -> None:
    from fraiseql_checks.cli import configure
    from fraiseql_checks.slo.plugin import load_slos

    checkdir.write(
        "checks/web/check_web.py",
        """
        from fraiseql_checks import check

        @check(slo="99.9% / 30d", interval="30s", runbook="docs/runbooks/web.md")
        def check_home():
            pass

        @check(slo="99%")
        def check_default_period():
            pass

        def check_without_slo():
            pass
        """,
    )
    import os

    cwd = os.getcwd()
    os.chdir(checkdir.path)
    try:
        config, _ = configure(["slo"], invocation_dir=checkdir.path)
        config.hook.fraiseql_configure(config=config)
        home, default = load_slos(config)
    finally:
        os.chdir(cwd)
    assert home.id == "web-check_home" and home.runbook == "docs/runbooks/web.md"
    assert home.sli == CheckSLI("checks/web/check_web.py::check_home", 30.0)
    assert default.period.label == "30d"


def test_a_bad_check_slo_exits_4_naming_the_check(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_a.py",
        "from fraiseql_checks import check\n\n@check(slo='most of the time')\ndef check_a():\n    pass\n",
    )
    result = checkdir.run("slo")
    assert result.ret == 4
    assert "checks/check_a.py: SLO 'checks/check_a.py::check_a': slo must read like '99.9% / 30d'" in result.stderr


def test_slos_tied_to_a_profile_apply_to_it_alone(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_a.py", "def check_a():\n    pass\n")
    checkdir.write(
        "slos.yaml",
        """
        slos:
          - {name: errors, profile: fraiseql-v2, objective: 99%, sli: {error_ratio: 'sum(rate(v2_total[{{window}}]))'}}
          - {name: errors, profile: [fraiseql-v1], objective: 99%, sli: {error_ratio: 'sum(rate(v1_total[{{window}}]))'}}
          - {name: latency, objective: 99%, sli: {error_ratio: 'sum(rate(both_total[{{window}}]))'}}
        """,
    )
    report = checkdir.path / "slo.json"
    for profile, metric in (("fraiseql-v2", "v2_total"), ("fraiseql-v1", "v1_total")):
        assert checkdir.run("slo", "--report-json", str(report), env={"FRAISEQL_PROFILE": profile}).ret == 0
        entries = json.loads(report.read_text())["slos"]
        assert [entry["id"] for entry in entries] == ["fraiseql-errors", "fraiseql-latency"], profile
        assert entries[0]["error_ratio_query"] == f"sum(rate({metric}[{{{{window}}}}]))"
    checkdir.write(
        "slos.yaml",
        "slos:\n  - {name: e, profile: fraiseql-v3, objective: 99%, sli: {error_ratio: 'sum(rate(x[{{window}}]))'}}\n",
    )
    bad = checkdir.run("slo")
    assert bad.ret == 4 and "SLO 'e': unknown profile 'fraiseql-v3'" in bad.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "slos:\n  - name: a\n    objective: 99%\n    sli: {error_ratio: 'sum(rate(x[{{window}}]))'}\n"
            "    alerting: {page_alert: 'yes'}\n",
            "'a': alerting.page_alert must be a mapping",
        ),
        (
            "slos:\n  - name: a\n    objective: inf%\n    sli: {error_ratio: 'sum(rate(x[{{window}}]))'}\n",
            "'a': objective",
        ),
        (
            "slos:\n  - name: a\n    objective: 99%\n    profile: [{a: 1}]\n    sli: {error_ratio: 'sum(rate(x[{{window}}]))'}\n",
            "'a': unknown profile",
        ),
        (
            "slos:\n  - name: a\n    objective: 99%\n    period: month\n    timezone: 5\n"
            "    sli: {error_ratio: 'sum(rate(x[{{window}}]))'}\n",
            "'a': unknown timezone",
        ),
        (
            "slos:\n  - name: a\n    objective: 99%\n    sli: {latency: {histogram: h_seconds, le: [1]}}\n",
            "'a': sli.latency.le must be a bucket bound",
        ),
        (
            "slos:\n  - name: a\n    objective: 99%\n    sli: {latency: {histogram: h_seconds, threshold: .inf}}\n",
            "'a': sli.latency.threshold",
        ),
        (
            "slos:\n  - name: a\n    objective: 99%\n    period: 1m\n    sli: {error_ratio: 'x[{{window}}]'}\n",
            "too short",
        ),
    ],
)
def test_odd_values_are_one_line_errors_not_tracebacks(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SLOError) as info:
        load(tmp_path, text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unreadable_files_and_bad_times_are_one_line(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_a.py", "def check_a():\n    pass\n")
    (checkdir.path / "slos.yaml").write_bytes(b"slos:\n  - name: \xff\xfe\n")
    result = checkdir.run("slo")
    assert result.ret == 4 and result.stderr.startswith("ERROR: slos.yaml: cannot read:")
    assert result.stderr.count("\n") == 1
    (checkdir.path / "slos.yaml").unlink()
    checkdir.write("fraiseql-checks.yaml", f"slo:\n  files: ['{checkdir.path}/nowhere/*.yaml']\n")
    result = checkdir.run("slo")
    assert result.ret == 4 and "matches no file" in result.stderr and result.stderr.count("\n") == 1
    for bad in ("nan", "1e300", "-5"):
        result = checkdir.run("slo", "--at", bad)
        assert result.ret == 4 and "--at" in result.stderr, bad
