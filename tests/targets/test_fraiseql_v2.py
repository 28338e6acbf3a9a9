"""The health suite's FraiseQL checks against a server giving FraiseQL v2's recorded answers (tests/data/fraiseql/v2)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import REPO
from tests.support.checkdir import CheckDir
from tests.support.fraiseql_v2 import PAGE_WITHOUT_OBSERVERS, FakeFraiseQLV2, fake_fraiseql_v2, recorded_page

CHECKS = str(REPO / "checks" / "health" / "check_fraiseql.py")
TOKEN = "metrics-secret-token"
#: What tests/data/fraiseql/v2/health-*.json report.
RECORDED = "version=2.15.0 schema_hash=sha256:4f2a9c1e"


@pytest.fixture
def server() -> Iterator[FakeFraiseQLV2]:
    with fake_fraiseql_v2(TOKEN) as fake:
        yield fake


def run(checkdir: CheckDir, server: FakeFraiseQLV2, *args: str, **env: str):  # type: ignore[no-untyped-def]
    # Latency under a busy CI machine is not what these tests are about.
    checkdir.write("fraiseql-checks.yaml", "paths: [.]\nthresholds:\n  graphql.latency_max_seconds: 5\n")
    environ = {"FRAISEQL_URL": server.url, "FRAISEQL_METRICS_TOKEN": TOKEN, **env}
    return checkdir.run_json("-c", "fraiseql-checks.yaml", CHECKS, *args, env=environ)


def by_name(report: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {r["name"]: r for r in report["results"]}


def test_healthy_server_passes_and_requests_carry_the_checks_trace(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    result, report = run(checkdir, server)
    results = by_name(report)
    assert result.ret == 0, result.stdout
    assert {name: r["outcome"] for name, r in results.items()} == {
        "check_fraiseql_healthy": "passed",
        "check_fraiseql_ready": "passed",
        "check_replicas_agree": "skipped",
        "check_graphql_answers": "passed",
        "check_metrics_endpoint": "passed",
    }
    assert "list the replicas in FRAISEQL_URL" in results["check_replicas_agree"]["message"]
    # Every request carried a W3C traceparent naming the trace of the check that sent it.
    sent = {h["traceparent"].split("-")[1] for h in server.headers_of("/health")}
    assert results["check_fraiseql_healthy"]["trace_id"] in sent
    (graphql_headers,) = server.headers_of("/graphql")
    version, trace_id, span_id, flags = graphql_headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", results["check_graphql_answers"]["trace_id"], "01")
    assert len(span_id) == 16
    assert results["check_graphql_answers"]["values"]["graphql_latency_seconds"] > 0
    assert results["check_fraiseql_healthy"]["values"] == {"healthy_ratio": 1.0}


def test_degraded_is_http_200_but_not_healthy(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    server.status = "degraded"
    result, report = run(checkdir, server, "-k", "healthy")
    (health,) = report["results"]
    assert result.ret == 1
    assert health["outcome"] == "failed"
    assert f"{server.url}/health: degraded (HTTP 200): cache: not connected" in health["message"]
    assert health["values"] == {"healthy_ratio": 0.0}


def test_unhealthy_answers_503_with_a_body(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    server.status = "unhealthy"
    _result, report = run(checkdir, server, "-k", "healthy")
    (health,) = report["results"]
    assert health["outcome"] == "failed"
    assert "unhealthy (HTTP 503): database: not connected" in health["message"]


def test_not_ready(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    server.ready = False
    _result, report = run(checkdir, server, "-k", "ready")
    (ready,) = report["results"]
    assert ready["outcome"] == "failed"
    assert ready["message"].startswith(f"not ready: {server.url}/readiness: not_ready (HTTP 503): database unavailable")


def test_replicas_must_agree_on_version_and_schema_hash(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    with fake_fraiseql_v2(TOKEN) as other:
        urls = f"{server.url},{other.url}"
        _, report = run(checkdir, server, "-k", "replicas", FRAISEQL_URL=urls)
        assert [r["outcome"] for r in report["results"]] == ["passed"]
        other.health["schema_hash"] = "sha256:9999"
        _result, report = run(checkdir, server, "-k", "replicas or healthy", FRAISEQL_URL=urls)
        results = by_name(report)
        assert results["check_fraiseql_healthy"]["outcome"] == "passed"  # both replicas asked
        assert len(other.headers_of("/health")) >= 2
        message = results["check_replicas_agree"]["message"]
        assert results["check_replicas_agree"]["outcome"] == "failed"
        assert f"{server.url} {RECORDED}" in message
        assert f"{other.url} version=2.15.0 schema_hash=sha256:9999" in message


def test_graphql_errors_fail_the_smoke_check(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    server.graphql_answer = {"data": None, "errors": [{"message": "permission denied for view v_user"}]}
    _result, report = run(checkdir, server, "-k", "graphql")
    (smoke,) = report["results"]
    assert smoke["outcome"] == "failed"
    assert "{ __typename } answered errors: permission denied for view v_user" in smoke["message"]


def test_smoke_query_is_configurable(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    checkdir.write("fraiseql-checks.yaml", "fraiseql:\n  smoke_query: 'query Smoke { users { id } }'\n")
    _result, report = checkdir.run_json(
        "-c", "fraiseql-checks.yaml", CHECKS, "-k", "graphql", env={"FRAISEQL_URL": server.url}
    )
    assert [r["outcome"] for r in report["results"]] == ["passed"]


def test_metrics_with_a_wrong_token_is_one_line_and_masked(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    wrong = "wrong-token-5f3a9"
    result, report = run(checkdir, server, "-k", "metrics", FRAISEQL_METRICS_TOKEN=wrong)
    (metrics,) = report["results"]
    assert metrics["outcome"] == "failed"
    assert metrics["message"] == (
        f"GET {server.url}/metrics: HTTP 401 Unauthorized: wrong or missing credentials "
        "(check FRAISEQL_METRICS_TOKEN): Unauthorized"
    )
    assert "Traceback" not in result.stdout and 'File "' not in result.stdout
    result.fnmatch_lines(["E   GET http://127.0.0.1:*/metrics: HTTP 401 Unauthorized: wrong or missing credentials*"])
    assert wrong not in result.stdout + result.stderr
    verbose = run(checkdir, server, "-k", "metrics", "-v", FRAISEQL_METRICS_TOKEN=wrong)[0]
    assert "Traceback" in verbose.stdout


def test_metrics_without_a_token_skips_naming_the_variable(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    result, report = run(checkdir, server, "-k", "metrics", FRAISEQL_METRICS_TOKEN="")
    (metrics,) = report["results"]
    assert metrics["outcome"] == "skipped"
    assert "set FRAISEQL_METRICS_TOKEN or `fraiseql.metrics_token`" in metrics["message"]
    result, report = run(checkdir, server, "-k", "metrics", "--require-targets", FRAISEQL_METRICS_TOKEN="")
    assert report["results"][0]["outcome"] == "error"
    assert result.ret == 1


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((200, "text/html", "<html><body>Welcome to nginx</body></html>"), "expected JSON, got text/html (HTTP 200)"),
        ((502, "text/html", "<html>Bad Gateway</html>"), "HTTP 502 Bad Gateway: <html>Bad Gateway</html>"),
        ((404, "text/plain", "no such page"), "HTTP 404 Not Found (is `fraiseql.health_path` = '/health' right?)"),
    ],
)
def test_answers_that_are_not_health_are_one_line(
    checkdir: CheckDir, server: FakeFraiseQLV2, answer: tuple[int, str, str], message: str
) -> None:
    server.health_override = answer
    result, report = run(checkdir, server, "-k", "healthy")
    (health,) = report["results"]
    assert health["outcome"] == "failed"
    assert health["message"].startswith(f"GET {server.url}/health: ")
    assert message in health["message"]
    assert "Traceback" not in result.stdout


# ---- both shapes of /health, both /metrics pages ----------------------------------------------


def test_a_lifetime_counter_is_not_read_as_an_observer_backlog(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    """2.15+ reports observers.events_processed (a lifetime counter): no backlog is recorded from it."""
    assert server.health["observers"] == {"running": True, "events_processed": 48213}
    _result, report = run(checkdir, server, "-k", "healthy")
    (health,) = report["results"]
    assert health["outcome"] == "passed"
    assert health["values"] == {"healthy_ratio": 1.0}


def test_an_older_servers_pending_events_is_the_observer_backlog(checkdir: CheckDir, server: FakeFraiseQLV2) -> None:
    server.use_health("health-before-2.15.json")
    assert server.health["observers"] == {"running": True, "pending_events": 12}
    with fake_fraiseql_v2(TOKEN) as newer:  # replicas mid-upgrade: only the older one has a backlog to add
        _result, report = run(checkdir, server, "-k", "healthy", FRAISEQL_URL=f"{server.url},{newer.url}")
    (health,) = report["results"]
    assert health["outcome"] == "passed"
    assert health["values"] == {"healthy_ratio": 1.0, "observer_backlog": 12.0}


def test_stopped_observers_are_named_and_their_counter_is_not_a_backlog(
    checkdir: CheckDir, server: FakeFraiseQLV2
) -> None:
    server.use_health("health-degraded-observers.json")
    _result, report = run(checkdir, server, "-k", "healthy")
    (health,) = report["results"]
    assert health["outcome"] == "failed"
    assert health["message"].splitlines()[0] == (
        f"not healthy: {server.url}/health: degraded (HTTP 200): "
        "observers: not running, observers: listener connection lost"
    )
    assert "1048576" not in health["message"]
    assert health["values"] == {"healthy_ratio": 0.0}


@pytest.mark.parametrize("page", ["metrics.txt", PAGE_WITHOUT_OBSERVERS])
def test_metrics_with_and_without_observer_metrics(checkdir: CheckDir, page: str) -> None:
    """fraiseql_observer_* exist only in builds with observer metrics: the endpoint check passes without them."""
    with fake_fraiseql_v2(TOKEN, page) as server:
        _result, report = run(checkdir, server, "-k", "metrics")
    (metrics,) = report["results"]
    assert metrics["outcome"] == "passed", metrics["message"]
    has_observers = "fraiseql_observer_job_queue_depth" in recorded_page(page)
    assert has_observers == (page == "metrics.txt")


def test_the_fake_refuses_a_metrics_token_fraiseql_would_refuse() -> None:
    """FraiseQL v2 does not start with a metrics token under 16 characters (FRAISEQL.md)."""
    with pytest.raises(ValueError, match="at least 16 characters, got 15"):
        FakeFraiseQLV2("fifteen-chars-x")
    assert len(TOKEN) >= 16
