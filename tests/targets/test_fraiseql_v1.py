"""End to end: the health suite against a real FraiseQL v1 application, its PostgreSQL and Redis.

The application is ``tests/support/fraiseql_v1_app.py`` on fraiseql 1.9.16 (Python 3.13,
built by ``tests/support/validators.py``), served by uvicorn on a free port, on a throwaway
PostgreSQL server that the test stops and starts again.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.checkdir import CheckDir
from tests.support.fraiseql_v1_app import SCHEMA
from tests.support.services import (
    ThrowawayPostgres,
    ThrowawayRedis,
    free_port,
    require,
    throwaway_postgres,
    throwaway_redis,
    wait_for_port,
)
from tests.support.validators import fraiseql_v1_python, python313

HEALTH = str(REPO / "checks" / "health")
APP_DIR = Path(__file__).resolve().parents[1] / "support"  # fraiseql_v1_app.py
pytestmark = pytest.mark.slow


@dataclass
class V1Stack:
    url: str
    postgres: ThrowawayPostgres
    redis: ThrowawayRedis

    @property
    def dsn(self) -> str:
        return self.postgres.dsn_for("items")

    def env(self) -> dict[str, str]:
        return {
            "FRAISEQL_URL": self.url,
            "FRAISEQL_PROFILE": "fraiseql-v1",
            "DATABASE_URL": self.dsn,
            "REDIS_URL": self.redis.url,
        }


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def _wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _get(f"{url}/ready")[0] == 200:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{url}/ready did not answer 200 within {timeout}s")


@pytest.fixture(scope="module")
def v1() -> Iterator[V1Stack]:
    if python313() is None:  # the fraiseql 1.9.16 wheel is for CPython 3.13: skip, even under CI
        pytest.skip("NOT TESTED HERE: Python 3.13 is not installed, and the FraiseQL v1 wheel needs it")
    python = fraiseql_v1_python()
    require(
        python.exists(), f"the FraiseQL v1 virtualenv is missing: run `python tests/support/validators.py` ({python})"
    )
    with throwaway_postgres() as postgres, throwaway_redis() as redis:
        postgres.psql("create database items")
        postgres.psql(SCHEMA, database="items")
        port = free_port()
        log = open(postgres.root / "fraiseql-v1.log", "w")
        env = {**os.environ, "FRAISEQL_V1_APP": "1", "DATABASE_URL": postgres.dsn_for("items")}
        server = subprocess.Popen(
            [str(python), "-m", "uvicorn", "fraiseql_v1_app:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=APP_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, timeout=60)
            stack = V1Stack(f"http://127.0.0.1:{port}", postgres, redis)
            _wait_ready(stack.url)
            yield stack
        finally:
            server.terminate()
            server.wait(timeout=20)
            log.close()


# The suite's behaviour with the database up, down and back is under test here, not
# latency: a busy CI machine must not turn a slow PING into a failure.
CONFIG = """
fraiseql:
  smoke_query: "{ items(limit: 2) { id name } }"
thresholds:
  cache.ping_max_seconds: 5
  database.answer_max_seconds: 5
  graphql.latency_max_seconds: 5
"""
V1_DASHBOARD = {
    "title": "FraiseQL v1",
    "panels": [
        {"title": "Requests", "targets": [{"expr": "sum(rate(fraiseql_http_requests_total[$__rate_interval]))"}]},
        {
            "title": "Latency",
            "targets": [
                {
                    "expr": "histogram_quantile(0.99, sum by (le) "
                    "(rate(fraiseql_http_request_duration_seconds_bucket[5m])))"
                }
            ],
        },
        {"title": "Connections", "targets": [{"expr": "fraiseql_db_connections_active"}]},
    ],
}
COHERENT = """
from fraiseql_checks.coherency import assert_coherent


async def check_items_coherent(graphql, db):
    await assert_coherent(
        graphql,
        db,
        query="{ items(limit: 10) { id name } }",
        sql="select id, name from tb_item order by id limit 10",
        path="items",
        key="id",
    )
"""


def run_suite(checkdir: CheckDir, stack: V1Stack) -> tuple[int, dict[str, dict], str]:  # type: ignore[type-arg]
    checkdir.write("fraiseql-checks.yaml", CONFIG)
    checkdir.write("dashboards/v1.json", json.dumps(V1_DASHBOARD))
    checkdir.write("check_coherent.py", COHERENT)
    result, report = checkdir.run_json("-c", "fraiseql-checks.yaml", HEALTH, "check_coherent.py", env=stack.env())
    return result.ret, {r["name"]: r for r in report["results"]}, result.stdout


def test_health_suite_passes_then_fails_with_the_database_down_then_recovers(checkdir: CheckDir, v1: V1Stack) -> None:
    ret, results, stdout = run_suite(checkdir, v1)
    outcomes = {name: r["outcome"] for name, r in results.items()}
    assert ret == 0, stdout
    expected_skips = {
        "check_replicas_agree",  # one URL
        "check_slow_statements",  # no pg_stat_statements
        "check_cache_memory",  # no maxmemory
        "check_cache_hit_ratio",  # a fresh Redis has no lookups
    }
    assert {name for name, outcome in outcomes.items() if outcome == "skipped"} <= expected_skips
    for name in (
        "check_fraiseql_healthy",
        "check_fraiseql_ready",
        "check_graphql_answers",
        "check_metrics_endpoint",
        "check_metrics_contract",
        "check_items_coherent",
        "check_database_answers",
        "check_cache_answers",
    ):
        assert outcomes[name] == "passed", (name, results[name]["message"])
    assert results["check_items_coherent"]["values"] == {"coherency_rows": 3.0}

    v1.postgres.stop()
    try:
        ret, results, stdout = run_suite(checkdir, v1)
        assert ret == 1
        where = f"database 127.0.0.1:{v1.postgres.port}/items"
        assert results["check_database_answers"]["message"] == f"{where}: connection refused"
        ready = results["check_fraiseql_ready"]
        assert ready["outcome"] == "failed"
        # v1's /ready waits for its connection pool (30s) before answering 503, so
        # within http_timeout (5s) the check sees no answer at all.
        assert ready["message"] in (f"GET {v1.url}/ready: timed out waiting for the answer after 5s",) or ready[
            "message"
        ].startswith(f"not ready: {v1.url}/ready: not_ready (HTTP 503): database: failed")
        assert results["check_graphql_answers"]["outcome"] == "failed"
        # v1's /health is a liveness probe: the process is up, so it still says healthy.
        assert results["check_fraiseql_healthy"]["outcome"] == "passed"
        assert results["check_cache_answers"]["outcome"] == "passed"
        assert "Traceback" not in stdout
    finally:
        v1.postgres.start()
    _wait_ready(v1.url)
    ret, results, stdout = run_suite(checkdir, v1)
    assert ret == 0, stdout


def test_coherency_failure_shows_a_diff(checkdir: CheckDir, v1: V1Stack) -> None:
    checkdir.write(
        "check_stale.py",
        COHERENT.replace("select id, name from tb_item", "select id, upper(name) as name from tb_item"),
    )
    _result, report = checkdir.run_json("check_stale.py", env=v1.env())
    (stale,) = report["results"]
    assert stale["outcome"] == "failed"
    lines = stale["message"].splitlines()
    assert lines[0] == "GraphQL at 'items' and SQL disagree:"
    assert '-    "name": "alpha"' in lines and '+    "name": "ALPHA"' in lines
