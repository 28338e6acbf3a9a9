"""Every folder of ``examples/`` run as its README says, against real local services.

Each test copies its example into a temporary folder and runs the example's own
commands: the ``fraiseql-check`` steps of its GitHub Actions workflow (with the
environment those steps name), its script, its Prometheus and Alertmanager files.
FraiseQL is the recorded fake of ``tests/support/fraiseql_v2.py``; PostgreSQL is the
machine's, in a database of each test's own; Prometheus and Alertmanager are the real
binaries. Where a test changes an example's file to run it here (a host name, a
30-second interval), the docstring says so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import asyncpg
import jsonschema
import pytest
import yaml

from fraiseql_checks.result import Outcome
from fraiseql_checks.stores import StoredResult
from fraiseql_checks.stores.postgres import PostgresStore
from tests.audit.audit_db import V2_SCHEMA, create_database, drop_database, dsn_for, insert_v2, run, v2_event
from tests.support.checkdir import CheckDir, RunResult
from tests.support.fraiseql_v2 import DEFAULT_TOKEN, FakeFraiseQLV2, fake_fraiseql_v2
from tests.support.services import Prometheus, alertmanager, require_binary, wait_until
from tests.support.watcher import WatchProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def fraiseql() -> Iterator[FakeFraiseQLV2]:
    """One fake FraiseQL v2 for every example; a test that changes its health sets it back."""
    with fake_fraiseql_v2() as server:
        yield server


@pytest.fixture
def healthy(fraiseql: FakeFraiseQLV2) -> Iterator[FakeFraiseQLV2]:
    fraiseql.status = "healthy"
    yield fraiseql
    fraiseql.status = "healthy"


@pytest.fixture
def database() -> Iterator[str]:
    """A database of this test's own on the machine's PostgreSQL, with FraiseQL v2's audit tables."""
    name = f"fqc_example_{secrets.token_hex(4)}"
    run(create_database(name, V2_SCHEMA))
    yield dsn_for(name)
    run(drop_database(name))


def copy_example(name: str, tmp_path: Path) -> CheckDir:
    target = tmp_path / name
    shutil.copytree(EXAMPLES / name, target)
    return CheckDir(target)


def workflow_steps(project: CheckDir, workflow: str) -> list[tuple[list[str], dict[str, str]]]:
    """The ``fraiseql-check`` steps of a GitHub Actions workflow: their arguments and the
    names of the environment variables they set."""
    document = yaml.safe_load((project.path / ".github" / "workflows" / workflow).read_text(encoding="utf-8"))
    steps = []
    for job in document["jobs"].values():
        for step in job["steps"]:
            command = shlex.split(step.get("run", ""))
            if command[:1] == ["fraiseql-check"]:
                steps.append((command[1:], dict(step.get("env", {}))))
    assert steps, f"{workflow} runs no fraiseql-check step"
    return steps


def run_step(project: CheckDir, step: tuple[list[str], dict[str, str]], env: dict[str, str]) -> RunResult:
    """Run a workflow step here, with ``env`` standing for the step's secrets and variables."""
    args, names = step
    assert set(names) == set(env), f"the step sets {sorted(names)}"
    return project.run(*args, env=env)


def junit_cases(path: Path) -> dict[str, str]:
    """Each test case of a JUnit file and its outcome."""
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        cases[case.get("name", "")] = outcome
    return cases


# -- (a) a FraiseQL v2 service with its own checks and a CI gate -----------------------


def test_the_service_gate_passes_on_a_healthy_service_and_blocks_a_degraded_one(
    tmp_path: Path, healthy: FakeFraiseQLV2
) -> None:
    project = copy_example("fraiseql-v2-service", tmp_path)
    [step] = workflow_steps(project, "checks.yml")
    env = {"FRAISEQL_URL": healthy.url, "FRAISEQL_METRICS_TOKEN": DEFAULT_TOKEN, "DATABASE_URL": dsn_for("test")}

    passed = run_step(project, step, env)
    assert passed.ret == 0, passed.stdout + passed.stderr
    cases = junit_cases(project.path / "checks.xml")
    assert cases == {
        "check_server_is_healthy": "passed",
        "check_database_is_connected": "passed",
        "check_graphql_answers": "passed",
        "check_pool_has_room": "passed",
        "check_view_answers[pg_catalog.pg_tables]": "passed",
        "check_view_answers[pg_catalog.pg_views]": "passed",
    }
    # the fake answers /metrics only with the token: check_pool_has_room passing says it was sent

    healthy.status = "degraded"
    blocked = run_step(project, step, env)
    assert blocked.ret == 1, blocked.stdout + blocked.stderr
    failed = {name for name, outcome in junit_cases(project.path / "checks.xml").items() if outcome != "passed"}
    assert failed == {"check_server_is_healthy"}

    # --require-targets: a job whose secrets are missing fails instead of skipping everything
    unset = project.run(*step[0])
    assert unset.ret == 1
    assert "the database is not configured: set DATABASE_URL" in unset.stdout


# -- (b) an SLO gate in GitHub Actions --------------------------------------------------


def write_history(dsn: str, check_id: str, outcomes: list[Outcome], interval: float) -> None:
    """Runs as the production watchers write them to their PostgreSQL store, the last one
    half an interval ago."""

    async def go() -> None:
        store = PostgresStore(dsn)
        await store.open()
        try:
            start = time.time() - len(outcomes) * interval + interval / 2
            results = [
                StoredResult(check_id, start + i * interval, 0.01, outcome, interval_s=interval)
                for i, outcome in enumerate(outcomes)
            ]
            await store.write(results, [])
        finally:
            await store.close()

    run(go())


def test_the_slo_gate_lets_a_deploy_through_and_stops_it_when_the_budget_is_spent(
    tmp_path: Path, database: str
) -> None:
    project = copy_example("slo-gate-github-actions", tmp_path)
    [step] = workflow_steps(project, "slo-gate.yml")
    graphql = "checks/check_api.py::check_graphql_answers"
    health = "checks/check_api.py::check_server_is_healthy"
    write_history(database, graphql, [Outcome.PASSED] * 1000, 30)
    write_history(database, health, [Outcome.PASSED] * 500, 60)

    through = run_step(project, step, {"FRAISEQL_CHECKS_STORE": database})
    assert through.ret == 0, through.stdout + through.stderr
    assert junit_cases(project.path / "slo.xml") == {
        "check_graphql_answers": "passed",
        "check_server_is_healthy": "passed",
    }

    # two failed runs of 30 s in the last hour, in a history of about 8 hours: 99.8%
    # against 99.9%, the budget is overspent, and it burns faster than 6x over the hour
    write_history(database, graphql, [Outcome.FAILED] * 2, 30)
    stopped = run_step(project, step, {"FRAISEQL_CHECKS_STORE": database})
    assert stopped.ret == 1, stopped.stdout + stopped.stderr
    assert "checks-check_graphql_answers: error budget is spent" in stopped.stdout
    assert "SLO gate: FAILED (1 of 2 SLOs fails it)" in stopped.stdout
    assert junit_cases(project.path / "slo.xml") == {
        "check_graphql_answers": "failure",
        "check_server_is_healthy": "passed",
    }


# -- (c) watch mode with Prometheus and Alertmanager ------------------------------------


def here(prometheus_yml: str, *, watcher: str, fraiseql: str, alertmanager: str, token_file: Path) -> str:
    """The example's prometheus.yml with this machine's addresses, and the intervals at 1s."""
    text = prometheus_yml.replace("fraiseql-check:9470", watcher).replace("fraiseql:8000", fraiseql)
    text = text.replace("alertmanager:9093", alertmanager)
    text = text.replace("/etc/prometheus/secrets/fraiseql-metrics-token", str(token_file))
    return re.sub(r"(scrape_interval|evaluation_interval): 15s", r"\1: 1s", text)


def firing(am_alerts: list[dict[str, Any]], check: str) -> list[dict[str, Any]]:
    return [
        alert
        for alert in am_alerts
        if alert["labels"].get("alertname") == "FraiseQLCheckFailing" and alert["labels"].get("check") == check
    ]


def test_the_watcher_is_scraped_its_rules_load_and_a_failing_check_reaches_alertmanager(
    tmp_path: Path, healthy: FakeFraiseQLV2
) -> None:
    """Runs the example's files with two changes for this machine: the addresses and the
    token file of prometheus.yml (and its intervals: 1s), and the checks' interval (1s)."""
    promtool = require_binary("promtool")
    amtool = require_binary("amtool")
    project = copy_example("watch-prometheus-alertmanager", tmp_path)
    # the committed rules and routing are what the checks and the config generate
    current = project.run("generate", "alerts", "alertmanager", "--check")
    assert current.ret == 0, current.stdout + current.stderr
    checked = subprocess.run(
        [amtool, "check-config", "alerts/alertmanager.yml"], cwd=project.path, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    config = project.path / "fraiseql-checks.yaml"
    config.write_text(config.read_text().replace("interval: 30s", "interval: 1s"))
    token_file = tmp_path / "fraiseql-metrics-token"
    token_file.write_text(DEFAULT_TOKEN)
    env = {"FRAISEQL_URL": healthy.url, "DATABASE_URL": dsn_for("test")}
    failing_check = "checks/check_orders.py::check_server_is_healthy"

    with alertmanager((project.path / "alerts" / "alertmanager.yml").read_text()) as am:
        watcher = WatchProcess(project, ("--store", str(tmp_path / "results.db"), "--workers", "1"), env)
        try:
            watcher.wait_ready()
            server = Prometheus([])
            server.config = project.path / "prometheus.local.yml"
            server.config.write_text(
                here(
                    (project.path / "prometheus.yml").read_text(),
                    watcher=watcher.address,
                    fraiseql=healthy.url.removeprefix("http://"),
                    alertmanager=am.url.removeprefix("http://"),
                    token_file=token_file,
                )
            )
            valid = subprocess.run(
                [promtool, "check", "config", str(server.config)], capture_output=True, text=True, timeout=60
            )
            assert valid.returncode == 0, valid.stdout + valid.stderr
            server.start()
            try:
                server.wait_for_series('up{job="fraiseql"} == 1')  # scraped with its token
                server.wait_for_series("fraiseql_db_pool_connections_active")
                server.wait_for_series(f'fraiseql_check_up{{job="fraiseql-check",check="{failing_check}"}} == 1')
                assert firing(am.alerts(), failing_check) == []

                healthy.status = "degraded"
                found = cast(
                    "list[dict[str, Any]]",
                    wait_until(lambda: firing(am.alerts(), failing_check), timeout=20, every=0.2, what="the alert"),
                )
            finally:
                server.stop()
        finally:
            watcher.stop()
    [alert] = found
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["runbook_url"] == (
        "https://github.com/acme/orders/blob/main/docs/runbooks/orders-api-unhealthy.md"
    )
    assert alert["receivers"] == [{"name": "pagerduty"}]  # critical pages, as the routing says


# -- (d) audit evidence for an auditor ---------------------------------------------------


def evidence_files(project: CheckDir) -> tuple[Path, Path]:
    [folder] = (project.path / "evidence").iterdir()
    return folder / "evidence.html", folder / "evidence.json"


def run_script(project: CheckDir, dsn: str, *args: str) -> RunResult:
    env = project.env(DATABASE_URL=dsn, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        ["sh", "evidence.sh", *args], cwd=project.path, capture_output=True, text=True, env=env, timeout=120
    )
    return RunResult(done.returncode, done.stdout, done.stderr)


def test_the_evidence_script_writes_html_and_json_that_say_what_was_checked(tmp_path: Path, database: str) -> None:
    project = copy_example("audit-evidence", tmp_path)
    now = dt.datetime.now(dt.UTC)
    rows = [v2_event(now - dt.timedelta(hours=h), action="delete", resource_id=str(h)) for h in range(1, 4)]
    rows += [v2_event(now - dt.timedelta(days=2), action="login", status="failure")]

    async def insert(more: list[dict[str, Any]]) -> None:
        conn = await asyncpg.connect(database)
        try:
            await insert_v2(conn, more)
        finally:
            await conn.close()

    run(insert(rows))
    passed = run_script(project, database, "30d")
    assert passed.ret == 0, passed.stdout + passed.stderr
    html, document = evidence_files(project)
    evidence = json.loads(document.read_text())
    jsonschema.validate(evidence, json.loads((ROOT / "docs" / "audit-evidence.schema.json").read_text()))
    outcomes = {entry["name"]: entry["outcome"] for entry in evidence["checks"]}
    assert outcomes["check_deletes_are_attributed"] == "passed"
    assert outcomes["check_no_failed_exports"] == "passed"
    assert outcomes["check_failed_logins"] == "passed"  # the shipped suite ran too
    assert "check_deletes_are_attributed" in html.read_text()
    assert f"evidence of the last 30d in evidence/{now:%Y-%m-%d}-30d/" in passed.stdout

    run(insert([v2_event(now - dt.timedelta(minutes=5), action="delete", user_id=None, username=None)]))
    shutil.rmtree(project.path / "evidence")
    failed = run_script(project, database, "30d")
    assert failed.ret == 1, failed.stdout + failed.stderr
    _, document = evidence_files(project)  # written all the same
    entries = {entry["name"]: entry for entry in json.loads(document.read_text())["checks"]}
    assert entries["check_deletes_are_attributed"]["outcome"] == "failed"
    assert "1 deletions without a user" in entries["check_deletes_are_attributed"]["message"]
    assert "delete" in json.dumps(entries["check_deletes_are_attributed"]["queries"])


def test_every_example_has_a_readme_and_a_test() -> None:
    examples = sorted(path.name for path in EXAMPLES.iterdir() if path.is_dir())
    tested = re.findall(r'copy_example\("([^"]+)"', Path(__file__).read_text(encoding="utf-8"))
    assert examples == sorted(set(tested))
    for name in examples:
        assert (EXAMPLES / name / "README.md").is_file(), name
    index = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in examples:
        assert f"({urllib.parse.quote(name)}/)" in index, name
