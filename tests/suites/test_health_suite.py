"""checks/health as shipped: every check has a severity and a runbook that exists, and collects alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import REPO
from tests.support.checkdir import CheckDir
from tests.support.fraiseql_v2 import FakeFraiseQLV2
from tests.support.services import PG_DSN, cpu_load, wait_until
from tests.support.watcher import WatchProcess


def test_every_health_check_has_severity_and_an_existing_runbook(checkdir: CheckDir) -> None:
    result = checkdir.run("--collect-only", str(REPO / "checks" / "health"))
    assert result.ret == 0, result.stdout
    ids = [line for line in result.outlines if "::check_" in line]
    metadata = [line for line in result.outlines if line.startswith("    severity=")]
    assert len(ids) == len(metadata) == 16
    for line in metadata:
        runbook = line.split("runbook=")[1].split()[0]
        assert (REPO / runbook).is_file(), runbook


def test_the_coherency_example_runbook_exists() -> None:
    text = (REPO / "docs" / "examples" / "check_coherency.py").read_text()
    runbook = text.split('runbook="')[1].split('"')[0]
    assert (REPO / runbook).is_file()


@pytest.fixture
def healthy_stack() -> Iterator[dict[str, str]]:
    """A healthy local stack: a FraiseQL v2 answering as documented, PostgreSQL and Redis."""
    fake = FakeFraiseQLV2()
    fake.thread.start()
    try:
        yield {
            "FRAISEQL_URL": f"http://127.0.0.1:{fake.port}",
            "FRAISEQL_METRICS_TOKEN": fake.metrics_token,
            "DATABASE_URL": PG_DSN,
            "REDIS_URL": "redis://127.0.0.1:6379/0",
        }
    finally:
        fake.server.shutdown()


def test_the_health_suite_passes_on_a_healthy_stack_with_the_machine_under_load(
    checkdir: CheckDir, healthy_stack: dict[str, str]
) -> None:
    """No false alarm from a busy machine: every core spinning, one run and a watcher."""
    health = str(REPO / "checks" / "health")
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 100ms\n")
    with cpu_load():
        result, report = checkdir.run_json(health, env=healthy_stack)
        outcomes = {r["id"].rsplit("::", 1)[1]: r["outcome"] for r in report["results"]}
        assert result.ret == 0, result.stdout
        assert "failed" not in outcomes.values() and "error" not in outcomes.values(), outcomes
        assert outcomes["check_cache_answers"] == outcomes["check_database_answers"] == "passed"

        watcher = WatchProcess(checkdir, (health,), healthy_stack)
        try:
            watcher.wait_ready(timeout=60)
            ids = [r["id"] for r in report["results"]]
            wait_until(lambda: all(_ran(watcher, check_id) for check_id in ids), timeout=60, what="a run of each")
            bad = {i: o for i in ids for o in ("failed", "error") if watcher.runs(i, o)}
            assert bad == {}, watcher.metrics_text()
        finally:
            assert watcher.stop() == 0


def _ran(watcher: WatchProcess, check_id: str) -> bool:
    return any(watcher.runs(check_id, outcome) for outcome in ("passed", "failed", "error", "skipped"))
