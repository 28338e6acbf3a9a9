"""The status page of a running watcher in a real browser (headless Chromium, Playwright): every check's
name and state, a check's detail page, a silence made through the API shown after a reload, no console
errors. ``FRAISEQL_CHECKS_SCREENSHOT=docs/status-page.png`` also writes the screenshot there."""

from __future__ import annotations

import datetime
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import chromium
from tests.support.checkdir import CheckDir
from tests.support.watcher import WatchProcess

ADMIN, READ = "admin-token-browser-90c1", "read-token-browser-3e7a"
CHECKS = """
from fraiseql_checks import check

@check(interval="300ms", severity="critical", tags=["db"])
def check_database_answers():
    assert 1 + 1 == 3, "the database said 3"

@check(interval="300ms")
def check_login_page():
    pass

@check(interval="300ms", labels={"team": "payments"})
def check_payments_api():
    pass
"""
SILENCED = "checks/check_site.py::check_login_page"


def api(watcher: WatchProcess, method: str, path: str, body: Any = None, token: str = READ) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{watcher.address}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def watcher(checkdir: CheckDir, watch: Callable[..., WatchProcess]) -> Iterator[WatchProcess]:
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 10ms\n")
    checkdir.write("checks/check_site.py", CHECKS)
    found = watch(env=checkdir.env(FRAISEQL_CHECKS_API_TOKEN=ADMIN, FRAISEQL_CHECKS_API_READ_TOKEN=READ))
    found.wait_for(
        lambda s: (
            found.runs("checks/check_site.py::check_database_answers", "failed") >= 2 and found.runs(SILENCED) >= 2
        ),
        what="a few runs",
    )
    yield found
    assert found.stop() == 0


def test_the_status_page_shows_every_check_its_detail_and_a_new_silence(watcher: WatchProcess, tmp_path: Path) -> None:
    assert watcher.get("/")[0] == 200  # the status page is there: its absence is a failure, not a skip
    status, checks = api(watcher, "GET", "/api/v1/checks")
    assert status == 200 and checks["total"] == 3
    paths = api(watcher, "GET", "/api/v1/openapi.json")[1]["paths"]
    base = f"http://{watcher.address}"

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
        page.on("response", lambda r: problems.append(f"{r.status} for {r.url}") if r.status >= 400 else None)

        answer = page.goto(f"{base}/")
        assert answer is not None and answer.status == 200
        assert page.title()
        for check in checks["items"]:
            card = page.locator("article", has=page.get_by_role("link", name=re.compile(re.escape(check["name"]))))
            assert card.count() == 1, f"{check['name']} is not on the page once"
            assert check["state"] in card.inner_text(), (check["state"], card.inner_text())
        page.screenshot(path=str(tmp_path / "status-page.png"), full_page=True)

        # a check's detail page, by its link
        page.get_by_role("link", name=re.compile("check_database_answers")).first.click()
        page.wait_for_load_state()
        assert "/checks/" in page.url
        detail = page.locator("body").inner_text()
        assert "check_database_answers" in detail and "failing" in detail
        assert "the database said 3" in detail

        assert "post" in paths["/api/v1/silences"]
        ends = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2)
        silence = {
            "matchers": {"check": "*::check_login_page"},
            "reason": "deploying the login page",
            "ends_at": ends.isoformat().replace("+00:00", "Z"),
        }
        status, created = api(watcher, "POST", "/api/v1/silences", silence, token=ADMIN)
        assert status == 201, created

        page.goto(f"{base}/")
        card = page.locator("article", has=page.get_by_role("link", name=re.compile("check_login_page")))
        assert "silenced" in card.inner_text().lower()
        other = page.locator("article", has=page.get_by_role("link", name=re.compile("check_payments_api")))
        assert "silenced" not in other.inner_text().lower()

        shot = tmp_path / "status-page-silenced.png"
        page.set_viewport_size({"width": 1100, "height": 700})
        page.screenshot(path=str(shot), full_page=False)
        assert shot.stat().st_size > 5_000
        wanted = os.environ.get("FRAISEQL_CHECKS_SCREENSHOT")
        if wanted:
            Path(wanted).write_bytes(shot.read_bytes())
        # a missing /favicon.ico shows here too: browsers ask for it unless the page names an icon
        assert problems == []
