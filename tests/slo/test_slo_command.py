"""``fraiseql-check slo``: the table, JSON, JUnit and the CI gate, on a real store and a real Prometheus."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import junitparser
import pytest
import xmlschema

from fraiseql_checks.result import Outcome
from fraiseql_checks.stores import StoredResult
from fraiseql_checks.stores.sqlite import SQLiteStore
from tests.support import validators
from tests.support.checkdir import CheckDir
from tests.support.services import Prometheus, require, require_binary

API = "checks/api/check_api.py::check_api"
SEARCH = "checks/api/check_api.py::check_search"
CHECKS = """
from fraiseql_checks import check

@check(slo="99% / 30d", interval="1m")
def check_api():
    pass

@check(slo="99.9% / 30d", interval="1m")
def check_search():
    pass

@check(slo="99.5% / 7d", interval="1m")
def check_new():
    pass
"""


def store_runs(root: Path, check_id: str, outcomes: list[Outcome], interval: float = 60.0) -> None:
    """Write runs to the default SQLite store, one per interval, the last half an interval
    ago: the command's windows (ending a moment later) then cut between runs."""

    async def go() -> None:
        store = SQLiteStore(root / ".fraiseql-checks" / "results.db")
        await store.open()
        try:
            now = time.time()
            start = now - len(outcomes) * interval + interval / 2
            results = [
                StoredResult(check_id, start + i * interval, 0.01, outcome, interval_s=interval)
                for i, outcome in enumerate(outcomes)
            ]
            await store.write(results, [])
        finally:
            await store.close()

    asyncio.run(go())


@pytest.fixture
def project(checkdir: CheckDir) -> CheckDir:
    checkdir.write("checks/api/check_api.py", CHECKS)
    # check_api: 1000 runs, 5 failed an hour ago: 99.5% against 99% leaves half the budget.
    api = [Outcome.PASSED] * 1000
    for i in range(930, 935):
        api[i] = Outcome.FAILED
    store_runs(checkdir.path, API, api)
    # check_search: 1000 runs, 2 failed in the last 5 minutes: 99.8% against 99.9%, overspent.
    search = [Outcome.PASSED] * 998 + [Outcome.ERROR] * 2
    store_runs(checkdir.path, SEARCH, search)
    return checkdir


def test_the_table_shows_every_slo(project: CheckDir) -> None:
    result = project.run("slo")
    assert result.ret == 0, result.stderr
    project_lines = [line.split() for line in result.outlines if line.startswith("api-")]
    by_id = {cells[0]: cells for cells in project_lines}
    assert by_id["api-check_api"][1:6] == ["99%", "30d", "99.500%", "50.0%", "3h36m"]
    assert by_id["api-check_api"][6:] == ["0.50×", "(1d)", "ok"] or by_id["api-check_api"][-1] == "ok"
    assert by_id["api-check_search"][1:5] == ["99.9%", "30d", "99.800%", "-100.0%"]
    assert by_id["api-check_search"][-1] == "exhausted"
    assert by_id["api-check_new"][1:] == ["99.5%", "7d", "—", "—", "—", "—", "unknown"]


def test_the_json_report_carries_the_numbers(project: CheckDir) -> None:
    report = project.path / "slo.json"
    result = project.run("slo", "--report-json", str(report))
    assert result.ret == 0
    document = json.loads(report.read_text())
    assert document["summary"] == {"total": 3, "ok": 1, "exhausted": 1, "unknown": 1, "error": 0, "gate": None}
    api = {entry["id"]: entry for entry in document["slos"]}["api-check_api"]
    assert api["check"] == API and api["sli_kind"] == "check" and api["period"] == "30d"
    assert api["sli"] == pytest.approx(0.995)
    assert api["good_seconds"] == 995 * 60 and api["bad_seconds"] == 5 * 60
    assert api["error_budget"]["remaining_ratio"] == pytest.approx(0.5)
    assert api["error_budget"]["total_seconds"] == pytest.approx(0.01 * 30 * 86400)
    assert api["burn_rates"]["5m"] == 0.0
    assert api["burn_rates"]["2h"] == pytest.approx(5 / 120 / 0.01)
    assert api["fastest_burn"]["window"] == "2h"


def test_the_gate_fails_on_a_spent_budget_and_names_it(project: CheckDir) -> None:
    result = project.run("slo", "--gate")
    assert result.ret == 1
    assert "api-check_search: error budget is spent: -100.00% left, at least 0.00% required" in result.stdout
    assert "SLO gate: FAILED (1 of 3 SLOs fails it)" in result.stdout
    assert project.run("slo", "--gate", "--slo", "api-check_api").ret == 0
    assert project.run("slo", "--gate", "--slo", "*check_api", "--min-budget", "60%").ret == 1
    assert project.run("slo", "--gate", "--slo", API, "--min-budget", "0.4").ret == 0


def test_the_gate_on_burn_rate(project: CheckDir) -> None:
    fast = project.run("slo", "--gate", "--slo", "*check_api", "--max-burn-rate", "2", "--burn-window", "2h")
    assert fast.ret == 1
    assert "burning 4.17× over 2h, faster than the 2.00× allowed" in fast.stdout
    assert project.run("slo", "--gate", "--slo", "*check_api", "--max-burn-rate", "2", "--burn-window", "5m").ret == 0


def test_no_data_passes_the_gate_unless_data_is_required(project: CheckDir) -> None:
    assert project.run("slo", "--gate", "--slo", "*check_new").ret == 0
    strict = project.run("slo", "--gate", "--slo", "*check_new", "--require-data")
    assert strict.ret == 1 and "no data over the period yet (--require-data)" in strict.stdout


def test_junit_has_one_case_per_slo_and_is_valid(project: CheckDir) -> None:
    xsd = validators.junit_xsd()
    require(xsd.exists(), "junit-10.xsd was not fetched (run tests/support/validators.py)")
    path = project.path / "slo.xml"
    result = project.run("slo", "--gate", "--junitxml", str(path))
    assert result.ret == 1
    xmlschema.XMLSchema(str(xsd)).validate(str(path))
    suite = next(iter(junitparser.JUnitXml.fromfile(str(path))))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (3, 1, 0, 1)
    cases = {case.name: case for case in suite}
    assert set(cases) == {"check_api", "check_search", "check_new"}
    assert cases["check_search"].classname == "slo.api"
    assert "error budget is spent" in cases["check_search"].result[0].message


def test_bad_arguments_and_unreachable_stores_are_one_line(project: CheckDir) -> None:
    bad = project.run("slo", "--gate", "--min-budget", "lots")
    assert bad.ret == 4 and bad.stderr.count("\n") == 1 and "--min-budget" in bad.stderr
    away = project.run("slo", "--store", "postgresql://watcher:s3cr3t@127.0.0.1:1/results")
    assert away.ret == 4 and away.stderr.count("\n") == 1, away.stderr
    assert "unavailable" in away.stderr and "s3cr3t" not in away.stderr + away.stdout


def test_no_slos_at_all(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_a.py", "def check_a():\n    pass\n")
    result = checkdir.run("slo")
    assert result.ret == 5 and "no SLOs" in result.stdout


def test_a_missing_store_file_is_not_created(checkdir: CheckDir) -> None:
    checkdir.write("checks/api/check_api.py", CHECKS)
    result = checkdir.run("slo")
    assert result.ret == 0 and result.stdout.count("unknown") == 3
    assert not (checkdir.path / ".fraiseql-checks" / "results.db").exists()


# ---- request SLOs from a real Prometheus ---------------------------------------------------

SLOS_YAML = """
service: fraiseql
slos:
  - name: graphql-availability
    objective: 99.9%
    period: 30d
    sli:
      ratio:
        bad: sum(rate(fraiseql_graphql_queries_error[{{window}}]))
        total: sum(rate(fraiseql_graphql_queries_total[{{window}}]))
  - name: silent
    objective: 99%
    sli:
      error_ratio: sum(rate(nothing_here_total[{{window}}])) / sum(rate(nothing_here_total[{{window}}]))
"""


def backfilled_prometheus(root: Path, now: float) -> Prometheus:
    """A Prometheus holding two days of GraphQL counters, one sample a minute up to ``now``:
    1000 queries a minute; 1 error a minute, 20 a minute over the last 30 minutes."""
    promtool = require_binary("promtool")
    server = Prometheus([])
    minutes = 2 * 24 * 60
    total, errors = 0, 0
    totals, error_lines = [], []
    for i in range(minutes + 1):
        at = int(now) - (minutes - i) * 60
        totals.append(f"fraiseql_graphql_queries_total {total} {at}")
        error_lines.append(f"fraiseql_graphql_queries_error {errors} {at}")
        total += 1000
        errors += 20 if i >= minutes - 30 else 1
    text = "\n".join(["# TYPE fraiseql_graphql_queries_total unknown", *totals])
    text += "\n" + "\n".join(["# TYPE fraiseql_graphql_queries_error unknown", *error_lines]) + "\n# EOF\n"
    source = root / "backfill.om"
    source.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(source), str(server.root / "data")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    server.start()
    return server


def test_request_slos_come_from_prometheus(checkdir: CheckDir) -> None:
    require_binary("prometheus")
    checkdir.write("checks/check_a.py", "def check_a():\n    pass\n")
    checkdir.write("slos.yaml", SLOS_YAML)
    server = backfilled_prometheus(checkdir.path, time.time() - 30)
    try:
        report = checkdir.path / "slo.json"
        result = checkdir.run("slo", "--report-json", str(report), env={"PROMETHEUS_URL": server.url})
        assert result.ret == 0, result.stderr
        by_id = {entry["id"]: entry for entry in json.loads(report.read_text())["slos"]}
        availability = by_id["fraiseql-graphql-availability"]
        assert availability["sli_kind"] == "ratio" and availability["status"] == "exhausted"
        # Two days at 0.1% errors, and 30 minutes at 2%: (2850 + 600) / 2880000 errors.
        assert availability["sli"] == pytest.approx(1 - 3450 / 2_880_000, abs=2e-5)
        assert availability["burn_rates"]["5m"] == pytest.approx(20.0, rel=0.05)
        assert availability["burn_rates"]["1d"] == pytest.approx((1410 + 600) / 1_440_000 / 0.001, rel=0.05)
        assert availability["fastest_burn"]["window"] in ("5m", "30m")
        assert by_id["fraiseql-silent"]["status"] == "unknown"  # no events: 0/0 is no data

        gate = checkdir.run(
            "slo", "--gate", "--slo", "*availability", "--min-budget=-50%", "--max-burn-rate", "14.4",
            "--burn-window", "5m", env={"PROMETHEUS_URL": server.url},
        )  # fmt: skip
        assert gate.ret == 1 and "faster than the 14.40× allowed" in gate.stdout
    finally:
        server.stop()


def test_an_unreachable_prometheus_fails_the_gate_in_one_line(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_a.py", "def check_a():\n    pass\n")
    checkdir.write("slos.yaml", SLOS_YAML)
    result = checkdir.run(
        "slo", "--gate", "--slo", "*availability", env={"PROMETHEUS_URL": "http://user:pw-s3cr3t@127.0.0.1:1"}
    )
    assert result.ret == 1
    (line,) = [line for line in result.outlines if line.startswith("fraiseql-graphql-availability: ")]
    assert "could not be evaluated" in line
    assert "pw-s3cr3t" not in result.stdout + result.stderr


def test_request_slos_without_prometheus_are_unknown_unless_targets_are_required(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_a.py", "def check_a():\n    pass\n")
    checkdir.write("slos.yaml", SLOS_YAML)
    result = checkdir.run("slo", "--gate")
    assert result.ret == 0 and result.stdout.count("SKIPPED") == 2
    assert "fraiseql-graphql-availability: Prometheus is not configured: set prometheus.url or PROMETHEUS_URL" in (
        result.stdout
    )
    strict = checkdir.run("slo", "--gate", "--require-targets")
    assert strict.ret == 1 and "(--require-targets)" in strict.stdout


def test_at_evaluates_as_of_another_time(project: CheckDir) -> None:
    import datetime as dt

    later = dt.datetime.fromtimestamp(time.time() + 2 * 86400, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    report = project.path / "slo.json"
    assert project.run("slo", "--at", later, "--report-json", str(report)).ret == 0
    api = {entry["id"]: entry for entry in json.loads(report.read_text())["slos"]}["api-check_api"]
    assert api["burn_rates"]["1d"] is None and api["burn_rates"]["3d"] is not None
    assert api["sli"] == pytest.approx(0.995)  # the same runs, still inside the 30 days
    bad = project.run("slo", "--at", "yesterday")
    assert bad.ret == 4 and "--at" in bad.stderr
