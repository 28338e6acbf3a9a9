"""The status page of a real watcher: HTML parsed strictly, badges, the Statuspage summary, privacy."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable

import html5lib  # type: ignore[import-untyped]
import jsonschema  # type: ignore[import-untyped]
import pytest
from starlette.routing import Route

from fraiseql_checks.result import Outcome
from fraiseql_checks.states import State, StateChange
from fraiseql_checks.status.page import incidents_of, notices
from fraiseql_checks.status.routes import SUMMARY_SCHEMA
from fraiseql_checks.stores import StoredResult
from fraiseql_checks.stores.sqlite import SQLiteStore
from fraiseql_checks.watch.maintenance import as_windows
from tests.support.checkdir import CheckDir
from tests.support.services import wait_until
from tests.support.watcher import WatchProcess

Watch = Callable[..., WatchProcess]
HOURLY = "checks/check_api.py::check_hourly"
BLOCKED = "checks/check_api.py::check_database"
HOUR = 3600.0
#: Hours ago of the hourly check's failed runs: 8 in the last 30 days (none in the last 7).
FAILED = {200, 250, 300, 350, 400, 450, 500, 700}
CONFIG = """
start_jitter: 50ms
maintenance:
  - checks: ["checks/check_api.py::*"]
    start: "2099-01-01T02:00:00Z"
    end: "2099-01-01T04:00:00Z"
    reason: "PostgreSQL upgrade"
  - checks: ["*::check_backup*"]
    from: "01:00"
    to: "01:00"
    reason: "nightly backup"
"""
CHECKS = """
from fraiseql_checks import check
from fraiseql_checks.errors import TargetError

@check(interval="1h", labels={"team": "api"})
def check_hourly():
    pass

@check(interval="300ms", severity="critical", labels={"team": "data"})
def check_database():
    raise TargetError("database: connection refused <127.0.0.1:5432>", target="database", unreachable=True)
"""


def strict(html: str) -> ET.Element:
    html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(html)  # raises on any parse error
    tree: ET.Element = html5lib.parse(html, namespaceHTMLElements=False)
    return tree


def text_of(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def fill_history(checkdir: CheckDir) -> None:
    """90 days of the hourly check: 8 failed hours in the last 30 days."""
    now = time.time()
    rows = [
        StoredResult(
            HOURLY,
            now - (k + 0.5) * HOUR,
            0.05 + (k % 7) / 100,
            Outcome.FAILED if k in FAILED else Outcome.PASSED,
            message="HTTP 502" if k in FAILED else "",
            trace_id=f"h{k}",
            interval_s=HOUR,
        )
        for k in range(90 * 24)
    ]
    changes = [
        StateChange(HOURLY, now - 700.4 * HOUR, State.PASSING, State.FAILING, message="HTTP 502 from /graphql"),
        StateChange(HOURLY, now - 699.4 * HOUR, State.FAILING, State.PASSING),
    ]

    async def write() -> None:
        store = SQLiteStore(checkdir.path / ".fraiseql-checks" / "results.db")
        await store.open()
        try:
            await store.write(rows, changes)
        finally:
            await store.close()

    (checkdir.path / ".fraiseql-checks").mkdir(exist_ok=True)
    asyncio.run(write())


@pytest.fixture
def watcher(checkdir: CheckDir, watch: Watch) -> WatchProcess:
    checkdir.write("fraiseql-checks.yaml", CONFIG)
    checkdir.write("checks/check_api.py", CHECKS)
    fill_history(checkdir)
    process = watch()

    def database_failing() -> bool:
        status, body = process.get("/api/v2/summary.json")
        return status == 200 and any(
            c["id"] == BLOCKED and c["status"] == "major_outage" for c in json.loads(body)["components"]
        )

    wait_until(database_failing, 30, every=0.2, what="check_database to be failing")
    return process


def test_the_status_page_shows_each_check_its_state_and_its_uptime(watcher: WatchProcess) -> None:
    status, html = watcher.get("/")
    assert status == 200
    tree = strict(html)
    assert tree.find(".//meta[@http-equiv='refresh']").get("content") == "30"  # type: ignore[union-attr]
    assert tree.find(".//meta[@name='viewport']") is not None
    assert "prefers-color-scheme: dark" in text_of(tree.find(".//style"))  # type: ignore[arg-type]
    assert "1 of 2 checks failing" in text_of(tree.find(".//p[@role='status']"))  # type: ignore[arg-type]
    (group,) = [text_of(h) for h in tree.iter("h2")]
    assert group == "checks (2)"  # the suite: the folder under the project
    cards = {text_of(a): a for a in tree.iter("article")}
    hourly = next(text for text in cards if text.startswith("check_hourly"))
    assert "passing" in hourly
    assert "24h 100% 7d 100% 30d 98.89% 90d 99.63%" in hourly  # 8 bad of 721 and of 2161 runs (its first run)
    assert "failing from " in hourly and ", for 1 h: HTTP 502 from /graphql" in hourly
    database = next(text for text in cards if text.startswith("check_database"))
    assert "failing — blocked by database" in database
    # maintenance: the one-off window is too far ahead; the daily one is listed as recurring
    assert "Maintenance recurring: nightly backup" in text_of(tree.find(".//section[@aria-label='Maintenance']"))  # type: ignore[arg-type]
    for svg in tree.iter("svg"):
        assert svg.get("role") == "img" and svg.get("aria-label"), svg.attrib
        assert svg.find("title") is not None
    for link in tree.iter("a"):
        assert text_of(link) or link.get("aria-label"), link.attrib
    links = [a.get("href") for a in tree.iter("a")]
    assert "checks/" + urllib.parse.quote(HOURLY, safe="") in links
    assert "./?group=team" in links


def test_grouping_by_a_label(watcher: WatchProcess) -> None:
    status, html = watcher.get("/?group=team")
    assert status == 200
    assert [text_of(h).split(" (")[0] for h in strict(html).iter("h2")] == ["api", "data"]


def test_a_check_has_a_detail_page(watcher: WatchProcess) -> None:
    for path in (urllib.parse.quote(HOURLY, safe=""), HOURLY):
        status, html = watcher.get("/checks/" + path)
        assert status == 200, html
        tree = strict(html)
        assert text_of(tree.find(".//h1")) == "check_hourly"  # type: ignore[arg-type]
        assert "30d 98.89%" in text_of(tree.find(".//dl[@class='uptime']"))  # type: ignore[arg-type]
        assert len(tree.findall(".//tbody/tr")) == 20
        back = tree.find(".//nav/a")
        assert back is not None and urllib.parse.urljoin("/checks/" + path, back.get("href") or "") == "/"
    status, _ = watcher.get("/checks/checks/nope.py::check_nothing")
    assert status == 404


def test_badges_are_svg_with_the_state_or_the_uptime(watcher: WatchProcess) -> None:
    ns = "{http://www.w3.org/2000/svg}"
    for path in (BLOCKED, urllib.parse.quote(BLOCKED, safe="")):
        status, body = watcher.get(f"/badge/{path}.svg")
        assert status == 200
        root = ET.fromstring(body)
        assert root.get("aria-label") == "check_database: failing"
        assert [t.text for t in root.iter(f"{ns}text")][2] == "failing"
    status, body = watcher.get(f"/badge/{HOURLY}.svg?window=30d")
    assert status == 200
    assert ET.fromstring(body).get("aria-label") == "check_hourly uptime 30d: 98.89%"
    assert watcher.get(f"/badge/{HOURLY}.svg?window=1y")[0] == 400
    assert watcher.get("/badge/checks/nope.py::check_nothing.svg")[0] == 404


def test_the_summary_has_statuspages_shape(watcher: WatchProcess) -> None:
    status, body = watcher.get("/api/v2/summary.json")
    assert status == 200
    summary = json.loads(body)
    jsonschema.validate(summary, SUMMARY_SCHEMA)
    assert set(summary) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    assert summary["status"] == {"indicator": "critical", "description": "Major System Outage"}
    by_id = {c["id"]: c for c in summary["components"]}
    assert by_id[HOURLY]["status"] == "operational"
    group = by_id[by_id[HOURLY]["group_id"]]
    assert group["group"] is True and set(group["components"]) == {HOURLY, BLOCKED}
    (incident,) = summary["incidents"]
    assert incident["impact"] == "critical" and incident["components"][0]["id"] == BLOCKED
    assert summary["scheduled_maintenances"] == []


def test_a_private_status_page_needs_the_read_token(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 50ms\napi:\n  private: true\n")
    checkdir.write("checks/check_api.py", CHECKS)
    process = watch(env={"FRAISEQL_CHECKS_API_READ_TOKEN": "s3cret-read"})
    for path in ("/", f"/checks/{HOURLY}", f"/badge/{HOURLY}.svg", "/api/v2/summary.json"):
        assert process.get(path)[0] == 401, path
        request = urllib.request.Request(
            f"http://{process.address}{path}", headers={"Authorization": "Bearer s3cret-read"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, path
        request = urllib.request.Request(f"http://{process.address}{path}", headers={"Authorization": "Bearer wrong"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 401


def test_starlette_matches_a_badge_path_whose_check_id_holds_slashes_colons_and_dots() -> None:
    route = Route("/badge/{check:path}.svg", lambda request: None)
    for path, check in [
        ("/badge/checks/x.py::y.svg", "checks/x.py::y"),
        ("/badge/checks/a.b/x.py::y[1.5].svg", "checks/a.b/x.py::y[1.5]"),
    ]:
        match, child = route.matches({"type": "http", "path": path, "method": "GET"})
        assert match.name == "FULL" and child["path_params"] == {"check": check}
    match, _ = route.matches({"type": "http", "path": "/badge/checks/x.py::y", "method": "GET"})
    assert match.name == "NONE"


def test_incidents_are_told_from_state_changes() -> None:
    changes = [
        StateChange("c", 100.0, State.FAILING, State.PASSING),  # one that began before the window
        StateChange("c", 200.0, State.PASSING, State.FAILING, message="boom"),
        StateChange("c", 260.0, State.FAILING, State.FLAPPING),
        StateChange("c", 4000.0, State.FLAPPING, State.PASSING),
        StateChange("c", 5000.0, State.PASSING, State.FAILING, message="again"),
    ]
    newest, middle, oldest = incidents_of(changes)
    assert (newest.started, newest.ended, newest.message) == (5000.0, None, "again")
    assert (middle.state, middle.started, middle.ended, middle.message) == ("flapping", 200.0, 4000.0, "boom")
    assert middle.duration == "1 h 3 min"
    assert (oldest.started, oldest.ended) == (None, 100.0)


def test_maintenance_notices_in_progress_upcoming_and_recurring() -> None:
    windows = as_windows(
        [
            {"start": "2025-06-01T02:00:00Z", "end": "2025-06-01T04:00:00Z", "reason": "upgrade"},
            {"start": "2025-06-03T02:00:00Z", "end": "2025-06-03T04:00:00Z", "checks": ["db/*"]},
            {"start": "2025-09-01T02:00:00Z", "end": "2025-09-01T04:00:00Z", "reason": "too far ahead"},
            {"from": "23:00", "to": "01:00", "days": ["sun"], "reason": "backup"},
        ]
    )
    now = 1_748_743_200.0 + 1800  # 2025-06-01T02:30:00Z, a Sunday
    found = [(n.status, n.title, n.text) for n in notices(windows, now)]
    assert found == [
        ("in progress", "upgrade", "until 2025-06-01 04:00 UTC; covers all checks"),
        ("upcoming", "maintenance", "2025-06-03 02:00 UTC to 2025-06-03 04:00 UTC; covers db/*"),
        ("recurring", "backup", "23:00–01:00 UTC, Sun; covers all checks"),
    ]
