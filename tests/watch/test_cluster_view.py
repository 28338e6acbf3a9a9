"""A cluster's API and status page show every check of the cluster on every watcher:
its own as they run, the others' as the store has them."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable

from tests.api.test_checks_api import call
from tests.support.checkdir import CheckDir
from tests.support.services import wait_until
from tests.support.watcher import WatchProcess

ADMIN = "cluster-admin-token-4b7e"
CHECKS = 12
CHECK_FILE = "from fraiseql_checks import check\n\n" + "".join(
    f'@check(interval="300ms")\ndef check_{n}():\n    assert {n} != 0, "check_0 always fails"\n\n'
    for n in range(CHECKS)
)
FAILING = "checks/check_spread.py::check_0"


def checks_of(watcher: WatchProcess) -> dict[str, dict[str, object]]:
    status, body, _ = call(watcher, "GET", "/api/v1/checks?limit=100", token=ADMIN)
    assert status == 200, body
    return {item["id"]: item for item in body["items"]}


def test_every_watcher_shows_the_whole_cluster_and_runs_on_demand_only_its_own(
    checkdir: CheckDir, watch: Callable[..., WatchProcess], pg_schema: str
) -> None:
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 10ms\n")
    checkdir.write("checks/check_spread.py", CHECK_FILE)
    env = checkdir.env(FRAISEQL_CHECKS_API_TOKEN=ADMIN)
    first = watch("--store", pg_schema, env=env)
    second = watch("--store", pg_schema, env=env)
    ids = {f"checks/check_spread.py::check_{n}" for n in range(CHECKS)}

    def split() -> bool:
        views = [checks_of(w) for w in (first, second)]
        if any(set(view) != ids for view in views):
            return False
        here = [{c for c, item in view.items() if item["runs_here"]} for view in views]
        return bool(here[0]) and bool(here[1]) and not here[0] & here[1] and here[0] | here[1] == ids

    wait_until(split, 60, every=0.3, what="two watchers, each running a share and listing all")
    # the failing check's state is known on both, whichever runs it
    wait_until(
        lambda: all(checks_of(w)[FAILING]["state"] == "failing" for w in (first, second)),
        30,
        every=0.3,
        what="the failing check failing on both",
    )
    owner, other = (first, second) if checks_of(first)[FAILING]["runs_here"] else (second, first)
    elsewhere = checks_of(other)[FAILING]
    assert elsewhere["runs_here"] is False and elsewhere["consecutive_failures"] >= 1
    # the status page and the summary of the watcher that does not run it show it failing
    status, html = other.get("/")
    assert status == 200 and "check_0" in html
    status, text = other.get("/api/v2/summary.json")
    summary = json.loads(text)
    statuses = {c["id"]: c["status"] for c in summary["components"] if not c["group"]}
    assert set(statuses) == ids
    assert statuses[FAILING] == "partial_outage"  # a warning check failing
    assert {statuses[c] for c in ids - {FAILING}} == {"operational"}
    # a run on demand goes to the watcher that runs the check
    path = f"/api/v1/checks/{urllib.parse.quote(FAILING, safe='')}/run"
    status, body, _ = call(other, "POST", path, token=ADMIN, body=b"")
    assert status == 409 and "another watcher of the cluster" in body["error"]["message"], body
    status, body, _ = call(owner, "POST", path, token=ADMIN, body=b"")
    assert status == 200 and body["result"]["outcome"] == "failed", body
