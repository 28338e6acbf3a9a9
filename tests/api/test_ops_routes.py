"""SLOs, alerts, dashboards and the PromQL proxy of the API, on a real watcher scraped by a real Prometheus.

One watcher, one Prometheus (loading the rules ``generate alerts`` wrote) and the
Grafana API stand-in serve the whole module; the answers are compared with what
the CLI makes of the same folder (``generate``, ``slo --report-json``).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from fraiseql_checks.targets.profiles import DEFAULT_PROFILE
from tests.support.checkdir import CheckDir
from tests.support.grafana_api import GrafanaAPI, grafana_api
from tests.support.services import free_port, prometheus, require_binary, wait_until
from tests.support.watcher import WatchProcess

ADMIN, READ = "admin-token-3e9d41", "read-token-7c02bb"
CHECKS = """
from fraiseql_checks import check

@check(interval="200ms", severity="critical")
def check_bad():
    assert False, "always failing"

@check(interval="200ms", slo="99% / 30d")
def check_good():
    pass
"""
OTHER_SUITE = """
from fraiseql_checks import check

@check(interval="1h")
def check_elsewhere():
    pass
"""
BAD = "checks/core/check_things.py::check_bad"
GOOD = "checks/core/check_things.py::check_good"
SEED = [
    "operations-overview",
    "cache-performance",
    "database-health",
    "error-analysis",
    "user-activity",
    "compliance-audit",
]


def call(watcher: WatchProcess, method: str, path: str, token: str | None = READ, **params: str) -> tuple[int, Any]:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    request = urllib.request.Request(f"http://{watcher.address}{path}{query}", method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            raw, status = answer.read(), answer.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    return status, json.loads(raw)


def write_project(checkdir: CheckDir) -> None:
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 10ms\n")
    checkdir.write("checks/core/check_things.py", CHECKS)
    checkdir.write("checks/edge/check_other.py", OTHER_SUITE)


class Ops:
    def __init__(self, checkdir: CheckDir, watcher: WatchProcess, grafana: GrafanaAPI, prom_url: str) -> None:
        self.checkdir, self.watcher, self.grafana, self.prom_url = checkdir, watcher, grafana, prom_url


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ops]:
    require_binary("prometheus")
    checkdir = CheckDir(tmp_path_factory.mktemp("ops"))
    write_project(checkdir)
    generated = checkdir.run("generate", "alerts", "dashboards")
    assert generated.ret == 0, generated.stdout + generated.stderr
    port = free_port()
    with contextlib.ExitStack() as stack:
        grafana = stack.enter_context(grafana_api())
        prom = stack.enter_context(
            prometheus(
                [f"127.0.0.1:{port}"],
                job="fraiseql-check",
                rule_files=[checkdir.path / "alerts" / "fraiseql-checks.rules.yml"],
            )
        )
        env = checkdir.env(
            FRAISEQL_CHECKS_API_TOKEN=ADMIN,
            FRAISEQL_CHECKS_API_READ_TOKEN=READ,
            PROMETHEUS_URL=prom.url,
            GRAFANA_URL=grafana.url,
            GRAFANA_TOKEN=grafana.token,
        )
        watcher = WatchProcess(checkdir, (), env, port)
        try:
            watcher.wait_ready()
            watcher.wait_for(lambda s: watcher.runs(BAD, "failed") >= 2 and watcher.runs(GOOD) >= 2, what="runs")
            yield Ops(checkdir, watcher, grafana, prom.url)
        finally:
            code = watcher.stop()
        assert code == 0, watcher.stderr
        output = watcher.stdout + watcher.stderr
        assert ADMIN not in output and READ not in output and grafana.token not in output


def test_the_promql_proxy_answers_prometheus_json(ops: Ops) -> None:
    def both_series() -> Any:
        status, body = call(ops.watcher, "GET", "/api/v1/query", query="fraiseql_check_up")
        assert status == 200, body
        return len(body["data"]["result"]) == 3 and body

    body: Any = wait_until(both_series, timeout=30, every=0.3, what="fraiseql_check_up scraped")
    assert body["status"] == "success" and body["data"]["resultType"] == "vector"
    values = {s["metric"]["check"]: s["value"][1] for s in body["data"]["result"]}
    assert values[BAD] == "0" and values[GOOD] == "1"
    now = time.time()
    status, body = call(
        ops.watcher,
        "GET",
        "/api/v1/query_range",
        query=f'fraiseql_check_up{{check="{GOOD}"}}',
        start=str(now - 30),
        end=str(now),
        step="1s",
    )
    assert status == 200 and body["data"]["resultType"] == "matrix"
    assert [series["metric"]["check"] for series in body["data"]["result"]] == [GOOD]
    status, body = call(ops.watcher, "GET", "/api/v1/query", query="fraiseql_check_up", time=str(now - 3600))
    assert status == 200 and body["data"]["result"] == []


def test_bad_queries_are_json_errors_with_prometheus_message(ops: Ops) -> None:
    status, body = call(ops.watcher, "GET", "/api/v1/query")
    assert (status, body["error"]) == (400, {"status": 400, "code": "bad_parameter", "message": "query is required"})
    status, body = call(ops.watcher, "GET", "/api/v1/query", query="fraiseql_check_up{")
    assert (status, body["error"]["code"]) == (400, "bad_query")
    assert "parse error" in body["error"]["message"]
    status, body = call(ops.watcher, "GET", "/api/v1/query", query="fraiseql_check_up + on() fraiseql_check_up")
    assert (status, body["error"]["code"]) == (422, "query_failed")
    assert "many-to-many" in body["error"]["message"] or "duplicate" in body["error"]["message"]
    status, body = call(ops.watcher, "GET", "/api/v1/query_range", query="up", start="0", end="10")
    assert (status, body["error"]["message"]) == (400, "step is required")
    status, body = call(ops.watcher, "GET", "/api/v1/query", query="up", timeout="2h")
    assert (status, body["error"]["code"]) == (400, "bad_parameter")
    status, body = call(ops.watcher, "GET", "/api/v1/query", query="up", time="yesterday")
    assert (status, body["error"]["code"]) == (400, "bad_parameter")
    assert ops.prom_url not in json.dumps(body)


def test_the_rules_are_what_generate_alerts_writes(ops: Ops) -> None:
    status, body = call(ops.watcher, "GET", "/api/v1/alerts/rules", limit="1000")
    assert status == 200 and body["next_offset"] is None
    on_disk = sorted(p.relative_to(ops.checkdir.path).as_posix() for p in ops.checkdir.path.glob("alerts/**/*.yml"))
    assert sorted(item["file"] for item in body["items"]) == on_disk
    for item in body["items"]:
        written = yaml.safe_load((ops.checkdir.path / item["file"]).read_text(encoding="utf-8"))
        assert item["groups"] == written["groups"], item["file"]
    default = [item for item in body["items"] if item["file"] == "alerts/fraiseql-checks.rules.yml"]
    assert default and default[0]["profile"] == DEFAULT_PROFILE
    failing = [r for r in default[0]["groups"][0]["rules"] if r["alert"] == "FraiseQLCheckFailing"]
    assert sorted(r["labels"]["check"] for r in failing) == sorted(
        [BAD, GOOD, "checks/edge/check_other.py::check_elsewhere"]
    )
    profile = default[0]["profile"]
    status, body = call(ops.watcher, "GET", "/api/v1/alerts/rules", profile=profile)
    assert status == 200 and body["items"] and {item["profile"] for item in body["items"]} == {profile}


def test_firing_alerts_come_from_prometheus(ops: Ops) -> None:
    def firing() -> Any:
        status, body = call(ops.watcher, "GET", "/api/v1/alerts", state="firing", alertname="FraiseQLCheckFailing")
        assert status == 200, body
        return body["items"]

    alerts: Any = wait_until(firing, timeout=30, every=0.3, what="FraiseQLCheckFailing firing")
    assert [alert["labels"]["check"] for alert in alerts] == [BAD]
    assert alerts[0]["state"] == "firing" and alerts[0]["labels"]["severity"] == "critical"
    assert call(ops.watcher, "GET", "/api/v1/alerts", state="resolved")[0] == 400


def test_slos_are_the_numbers_of_the_slo_command(ops: Ops) -> None:
    def known() -> Any:
        status, body = call(ops.watcher, "GET", "/api/v1/slos")
        assert status == 200, body
        return body["items"][0]["status"] == "ok" and body

    body: Any = wait_until(known, timeout=30, every=0.3, what="the SLO computed")
    [slo] = body["items"]
    assert (slo["check"], slo["objective"], slo["period"]) == (GOOD, 0.99, "30d")
    assert slo["sli"] == 1.0 and slo["error_budget"]["remaining_ratio"] == 1.0
    assert set(slo["burn_rates"]) >= {"5m", "1h"}
    at = f"{time.time() - 2:.0f}"
    time.sleep(1.5)  # the runs before ``at`` are in the store
    body = call(ops.watcher, "GET", "/api/v1/slos", at=at)[1]
    report = ops.checkdir.path / "slo.json"
    done = ops.checkdir.run("slo", "--at", at, "--report-json", str(report))
    assert done.ret == 0, done.stdout + done.stderr
    assert body["items"] == json.loads(report.read_text(encoding="utf-8"))["slos"]
    assert body["items"][0]["sli"] == 1.0  # a fact, not the same code twice: the check never failed


def test_dashboards_list_and_json_are_the_generated_ones(ops: Ops) -> None:
    status, body = call(ops.watcher, "GET", "/api/v1/dashboards")
    assert status == 200
    names = [item["name"] for item in body["items"]]
    assert names == [*SEED, "checks-core", "checks-edge"]
    by_name = {item["name"]: item for item in body["items"]}
    assert by_name["checks-core"]["suite"] == "core" and by_name["operations-overview"]["suite"] is None
    for name in ("operations-overview", "checks-core"):
        written = json.loads((ops.checkdir.path / "dashboards" / f"{name}.json").read_text(encoding="utf-8"))
        item = by_name[name]
        assert (item["uid"], item["title"]) == (written["uid"], written["title"])
        assert item["panels"] > 0
        status, dashboard = call(ops.watcher, "GET", item["url"])
        assert status == 200 and dashboard == written
    assert call(ops.watcher, "GET", "/api/v1/dashboards/operations-overview")[1]["uid"] == by_name[SEED[0]]["uid"]
    status, body = call(ops.watcher, "GET", "/api/v1/dashboards/no-such-uid")
    assert (status, body["error"]["code"]) == (404, "not_found")
    assert call(ops.watcher, "GET", "/api/v1/dashboards/push")[0] == 405
    status, again = call(ops.watcher, "POST", "/api/v1/dashboards/regenerate", token=ADMIN)
    assert status == 200 and [item["name"] for item in again["items"]] == names
    assert again["built_at"] >= body.get("built_at", "")


def test_push_and_diff_against_grafana(ops: Ops) -> None:
    status, body = call(ops.watcher, "GET", "/api/v1/dashboards")
    uid = body["items"][0]["uid"]
    status, change = call(ops.watcher, "GET", f"/api/v1/dashboards/{uid}/diff")
    assert status == 200 and (change["uid"], change["status"], change["diff"]) == (uid, "new", "")
    status, pushed = call(ops.watcher, "POST", "/api/v1/dashboards/push", token=ADMIN)
    assert status == 200, pushed
    assert pushed["folder"]["created"] and pushed["pushed"] == len(body["items"]) == len(ops.grafana.dashboards)
    assert all(item["pushed"] and item["version"] == 1 for item in pushed["items"])
    stored = ops.grafana.dashboards[uid]
    assert stored["dashboard"]["title"] == body["items"][0]["title"]
    status, change = call(ops.watcher, "GET", f"/api/v1/dashboards/{uid}/diff")
    assert (status, change["status"], change["diff"]) == (200, "unchanged", "")
    status, again = call(ops.watcher, "POST", "/api/v1/dashboards/push", token=ADMIN)
    assert (status, again["pushed"], again["folder"]["created"]) == (200, 0, False)
    stored["dashboard"]["title"] = "edited in Grafana"
    status, change = call(ops.watcher, "GET", f"/api/v1/dashboards/{uid}/diff")
    assert change["status"] == "changed" and '-  "title": "edited in Grafana"' in change["diff"]
    status, forced = call(ops.watcher, "POST", "/api/v1/dashboards/push", token=ADMIN, force="true")
    assert forced["pushed"] == len(body["items"])


def test_tokens_decide_who_reads_and_who_pushes(ops: Ops) -> None:
    reads = [
        "/api/v1/slos",
        "/api/v1/alerts",
        "/api/v1/alerts/rules",
        "/api/v1/dashboards",
        "/api/v1/query?query=up",
        "/api/v1/query_range?query=up&start=0&end=1&step=1",
    ]
    for path in reads:
        status, body = call(ops.watcher, "GET", path, token=None)
        assert (status, body["error"]["code"]) == (401, "unauthorized"), path
        assert call(ops.watcher, "GET", path, token="wrong")[0] == 401, path
    for path in ("/api/v1/dashboards/push", "/api/v1/dashboards/regenerate"):
        status, body = call(ops.watcher, "POST", path, token=READ)
        assert (status, body["error"]["code"]) == (403, "forbidden"), path
        assert call(ops.watcher, "POST", path, token=None)[0] == 401, path
    status, document = call(ops.watcher, "GET", "/api/v1/openapi.json")
    assert status == 200
    for path in ("/slos", "/alerts", "/alerts/rules", "/dashboards", "/dashboards/{uid}", "/dashboards/{uid}/diff"):
        assert f"/api/v1{path}" in document["paths"], path
    assert {"/api/v1/query", "/api/v1/query_range", "/api/v1/dashboards/push"} <= set(document["paths"])


@pytest.mark.parametrize("configured", [False, True], ids=["not-configured", "unreachable"])
def test_without_prometheus_or_grafana_the_answer_is_a_json_503_or_502(
    checkdir: CheckDir, watch: Callable[..., WatchProcess], configured: bool
) -> None:
    write_project(checkdir)
    extra: dict[str, str] = {}
    if configured:
        closed = free_port()
        extra = {
            "PROMETHEUS_URL": f"http://prom:s3cret-pw@127.0.0.1:{closed}",
            "GRAFANA_URL": f"http://127.0.0.1:{closed}",
            "GRAFANA_TOKEN": "glsa_unused_0123456789",
        }
    watcher = watch(env=checkdir.env(FRAISEQL_CHECKS_API_TOKEN=ADMIN, FRAISEQL_CHECKS_API_READ_TOKEN=READ, **extra))
    prom_code = "prometheus_unavailable" if configured else "prometheus_not_configured"
    for path in ("/api/v1/query?query=up", "/api/v1/alerts"):
        status, body = call(watcher, "GET", path)
        assert (status, body["error"]["code"]) == (503, prom_code), body
        assert "s3cret-pw" not in body["error"]["message"]
    status, body = call(watcher, "POST", "/api/v1/dashboards/push", token=ADMIN)
    assert (status, body["error"]["code"]) == (
        (502, "grafana_error") if configured else (503, "grafana_not_configured")
    )
    status, body = call(watcher, "GET", "/api/v1/dashboards")
    uid = body["items"][0]["uid"]
    assert call(watcher, "GET", f"/api/v1/dashboards/{uid}/diff")[0] == (502 if configured else 503)
    status, body = call(watcher, "GET", "/api/v1/slos")
    assert status == 200 and body["items"][0]["check"] == GOOD
    status, body = call(watcher, "GET", "/api/v1/alerts/rules")
    assert status == 200 and body["total"] > 0
