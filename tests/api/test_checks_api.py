"""``/api/v1/checks`` on a real watcher: the list, one check, its results and changes, a run on demand, tokens."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.checkdir import CheckDir
from tests.support.watcher import WatchProcess

ADMIN, READ = "admin-token-5f1c0e", "read-token-92ab7d"
CHECKS = """
from fraiseql_checks import check

@check(interval="200ms", severity="critical", tags=["db"])
def check_bad():
    assert False, "always failing"

@check(interval="200ms")
def check_good():
    pass

@check(interval="1h", labels={"team": "payments"})
def check_slow_interval():
    pass
"""
BAD = "checks/check_things.py::check_bad"
GOOD = "checks/check_things.py::check_good"


def call(
    watcher: WatchProcess, method: str, path: str, token: str | None = READ, body: bytes | None = None
) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(f"http://{watcher.address}{path}", data=body, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw, status, headers = answer.read(), answer.status, dict(answer.headers)
    except urllib.error.HTTPError as exc:
        raw, status, headers = exc.read(), exc.code, dict(exc.headers)
    return status, json.loads(raw) if raw else None, {k.lower(): v for k, v in headers.items()}


def quoted(check_id: str) -> str:
    return urllib.parse.quote(check_id, safe="")


@pytest.fixture
def watcher(checkdir: CheckDir, watch: Callable[..., WatchProcess]) -> Iterator[WatchProcess]:
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 10ms\n")
    checkdir.write("checks/check_things.py", CHECKS)
    found = watch(env=checkdir.env(FRAISEQL_CHECKS_API_TOKEN=ADMIN, FRAISEQL_CHECKS_API_READ_TOKEN=READ))
    found.wait_for(lambda s: found.runs(BAD, "failed") >= 2 and found.runs(GOOD) >= 2, what="a few runs")
    yield found
    assert found.stop() == 0
    assert ADMIN not in found.stdout + found.stderr and READ not in found.stdout + found.stderr


def test_the_list_pages_and_filters(watcher: WatchProcess) -> None:
    status, body, _ = call(watcher, "GET", "/api/v1/checks")
    assert status == 200
    assert [c["id"] for c in body["items"]] == sorted([BAD, GOOD, "checks/check_things.py::check_slow_interval"])
    assert body["total"] == 3 and body["next_offset"] is None
    bad = body["items"][0]
    assert (bad["state"], bad["severity"], bad["tags"], bad["silenced"]) == ("failing", "critical", ["db"], False)
    assert bad["since"].endswith("Z") and bad["consecutive_failures"] >= 2
    status, body, _ = call(watcher, "GET", "/api/v1/checks?limit=2")
    assert [len(body["items"]), body["next_offset"]] == [2, 2]
    status, body, _ = call(watcher, "GET", "/api/v1/checks?limit=2&offset=2")
    assert len(body["items"]) == 1 and body["next_offset"] is None
    assert [c["id"] for c in call(watcher, "GET", "/api/v1/checks?state=failing")[1]["items"]] == [BAD]
    assert [c["id"] for c in call(watcher, "GET", "/api/v1/checks?tag=db")[1]["items"]] == [BAD]
    assert call(watcher, "GET", "/api/v1/checks?limit=0")[0] == 400
    assert call(watcher, "GET", "/api/v1/checks?limit=many")[1]["error"]["code"] == "bad_parameter"


def test_one_check_its_results_and_changes_by_encoded_or_plain_id(watcher: WatchProcess) -> None:
    from tests.support.services import wait_until

    wait_until(lambda: call(watcher, "GET", f"/api/v1/checks/{quoted(BAD)}")[1]["recent_results"], what="stored")
    status, body, _ = call(watcher, "GET", f"/api/v1/checks/{quoted(BAD)}")
    assert status == 200 and body["id"] == BAD and body["state"] == "failing"
    assert body["recent_results"][0]["outcome"] == "failed"
    assert body["recent_results"][0]["message"].startswith("always failing")
    assert call(watcher, "GET", f"/api/v1/checks/{BAD}")[1]["id"] == BAD
    results = f"/api/v1/checks/{quoted(BAD)}/results?since=0"
    wait_until(lambda: len(call(watcher, "GET", results)[1]["items"]) >= 2, what="two results stored")
    status, body, _ = call(watcher, "GET", results)
    assert status == 200 and len(body["items"]) >= 2
    assert all(r["outcome"] == "failed" for r in body["items"])
    starts = [r["started_at"] for r in body["items"]]
    assert starts == sorted(starts)
    status, body, _ = call(watcher, "GET", f"/api/v1/checks/{quoted(BAD)}/changes?since=2000-01-01T00:00:00Z")
    assert status == 200 and [(c["previous"], c["state"]) for c in body["items"]] == [("unknown", "failing")]
    assert call(watcher, "GET", f"/api/v1/checks/{quoted(BAD)}/results?since=10&until=5")[0] == 400
    assert call(watcher, "GET", f"/api/v1/checks/{quoted(BAD)}/results?since=yesterday")[0] == 400
    status, body, _ = call(watcher, "GET", "/api/v1/checks/checks%2Fnope.py%3A%3Acheck_x")
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_a_run_on_demand_needs_the_admin_token_and_is_counted(watcher: WatchProcess) -> None:
    slow = quoted("checks/check_things.py::check_slow_interval")
    before = watcher.runs("checks/check_things.py::check_slow_interval")
    status, body, _ = call(watcher, "POST", f"/api/v1/checks/{slow}/run", token=READ)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body, headers = call(watcher, "POST", f"/api/v1/checks/{slow}/run", token=None)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    status, body, _ = call(watcher, "POST", f"/api/v1/checks/{slow}/run", token=ADMIN)
    assert status == 200 and body["result"]["outcome"] == "passed" and body["check"]["state"] == "passing"
    assert watcher.runs("checks/check_things.py::check_slow_interval") == before + 1


def test_tokens_decide_who_reads(watcher: WatchProcess) -> None:
    assert call(watcher, "GET", "/api/v1/checks", token=None)[0] == 401
    status, body, _ = call(watcher, "GET", "/api/v1/checks", token="wrong")
    assert (status, body["error"]["message"]) == (401, "the token is not valid")
    assert call(watcher, "GET", "/api/v1/checks", token=ADMIN)[0] == 200
    status, body, _ = call(watcher, "GET", "/api/v1/openapi.json")
    assert status == 200 and "/api/v1/checks/{check}/results" in body["paths"]
    assert watcher.get("/metrics")[0] == 200  # the watcher's own pages need no token


def test_without_an_admin_token_the_api_is_read_only(checkdir: CheckDir, watch: Callable[..., WatchProcess]) -> None:
    checkdir.write("checks/check_things.py", CHECKS)
    watcher = watch(env=checkdir.env(FRAISEQL_CHECKS_API_READ_TOKEN=READ))
    status, body, _ = call(watcher, "POST", f"/api/v1/checks/{quoted(GOOD)}/run", token=READ)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert "no admin token" in body["error"]["message"]
    assert watcher.stop() == 0


def test_a_run_asked_for_while_the_watcher_stops_is_refused_as_stopping(
    checkdir: CheckDir, watch: Callable[..., WatchProcess]
) -> None:
    """After SIGTERM the watcher starts no run but still answers while a long run ends:
    a run on demand is a 503 saying so, not a hang or a 200 that never ran."""
    from tests.support.services import wait_until

    checkdir.write("fraiseql-checks.yaml", "start_jitter: 10ms\n")
    checkdir.write(
        "checks/check_stop.py",
        """
        import time
        from fraiseql_checks import check

        @check(interval="1h", timeout="30s")
        def check_long():
            time.sleep(4)

        @check(interval="1h")
        def check_quick():
            pass
        """,
    )
    watcher = watch(env=checkdir.env(FRAISEQL_CHECKS_API_TOKEN=ADMIN))
    quick = "checks/check_stop.py::check_quick"
    watcher.wait_for(lambda s: watcher.runs(quick) >= 1 and watcher.value("fraiseql_check_runs_in_progress") == 1)
    watcher.send(signal.SIGTERM)
    answers: list[tuple[int, Any]] = []

    def refused() -> bool:
        status, body, _ = call(watcher, "POST", f"/api/v1/checks/{quoted(quick)}/run", token=ADMIN)
        answers.append((status, body))
        return status == 503

    wait_until(refused, 3, every=0.05, what="a 503 while stopping")
    _, body = answers[-1]
    assert (body["error"]["code"], body["error"]["message"]) == (
        "stopping",
        f"this watcher is stopping: {quick} was not run",
    )
    assert all(status == 200 for status, _ in answers[:-1])  # before the signal was seen: runs as usual
    assert watcher.stop() == 0
