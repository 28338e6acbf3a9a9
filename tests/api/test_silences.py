"""``/api/v1/silences`` on a real watcher: made, listed, read, deleted; holding at once (the
metric, the stored results, the notifications); bad input; kept across a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.api.test_checks_api import ADMIN, READ, call, quoted
from tests.support.checkdir import CheckDir
from tests.support.services import WebhookReceiver, wait_until, webhook_receiver
from tests.support.watcher import WatchProcess

CHECKS = """
from pathlib import Path

from fraiseql_checks import check

FLAG = Path(__file__).parent / "broken"


@check(interval="200ms", severity="critical", tags=["db"])
def check_db():
    assert not FLAG.exists(), "the flag file says broken"


@check(interval="200ms", labels={"team": "payments"})
def check_web():
    pass
"""
DB = "checks/check_things.py::check_db"
WEB = "checks/check_things.py::check_web"


def silenced(watcher: WatchProcess, check: str) -> float | None:
    return watcher.value("fraiseql_check_silenced", check=check)


def post(watcher: WatchProcess, body: Any, token: str | None = ADMIN) -> tuple[int, Any, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return call(watcher, "POST", "/api/v1/silences", token, raw)


def later(seconds: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(time.time() + seconds, tz=datetime.UTC).isoformat()


@pytest.fixture
def start(checkdir: CheckDir, watch: Callable[..., WatchProcess]) -> Callable[..., WatchProcess]:
    checkdir.write("checks/check_things.py", CHECKS)

    def started(config: str = "") -> WatchProcess:
        checkdir.write("fraiseql-checks.yaml", "start_jitter: 10ms\n" + config)
        found = watch(env=checkdir.env(FRAISEQL_CHECKS_API_TOKEN=ADMIN, FRAISEQL_CHECKS_API_READ_TOKEN=READ))
        found.wait_for(lambda s: found.runs(DB) >= 1 and found.runs(WEB) >= 1, what="a first run of each")
        return found

    return started


@pytest.fixture
def watcher(start: Callable[..., WatchProcess]) -> Iterator[WatchProcess]:
    found = start()
    yield found
    assert found.stop() == 0
    assert ADMIN not in found.stdout + found.stderr and READ not in found.stdout + found.stderr


def test_a_silence_holds_at_once_and_ends_when_deleted(watcher: WatchProcess) -> None:
    assert silenced(watcher, DB) == 0
    status, made, headers = post(
        watcher, {"matchers": {"tags": ["db"]}, "reason": "failover drill", "ends_at": later(3600), "created_by": "ann"}
    )
    assert status == 201, made
    assert headers["location"] == f"/api/v1/silences/{made['id']}"
    assert (made["status"], made["persisted"], made["matchers"], made["created_by"]) == (
        "active",
        True,
        {"tags": ["db"]},
        "ann",
    )
    assert silenced(watcher, DB) == 1 and silenced(watcher, WEB) == 0  # the very next scrape
    assert call(watcher, "GET", f"/api/v1/checks/{quoted(DB)}")[1]["silenced"] is True

    def latest_silenced() -> bool:
        items = call(watcher, "GET", f"/api/v1/checks/{quoted(DB)}/results?since={time.time() - 5}")[1]["items"]
        return bool(items) and items[-1]["silenced"]

    wait_until(latest_silenced, timeout=20, what="a stored run marked silenced")

    status, page, _ = call(watcher, "GET", "/api/v1/silences")
    assert status == 200 and [s["id"] for s in page["items"]] == [made["id"]] and page["total"] == 1
    status, one, _ = call(watcher, "GET", f"/api/v1/silences/{made['id']}")
    assert status == 200 and one == made

    status, body, _ = call(watcher, "DELETE", f"/api/v1/silences/{made['id']}", ADMIN)
    assert (status, body) == (204, None)
    assert silenced(watcher, DB) == 0
    assert call(watcher, "GET", f"/api/v1/silences/{made['id']}")[0] == 404
    assert call(watcher, "DELETE", f"/api/v1/silences/{made['id']}", ADMIN)[0] == 404
    assert call(watcher, "GET", "/api/v1/silences?all=true")[1]["items"] == []


def test_an_ended_silence_is_listed_only_with_all(watcher: WatchProcess) -> None:
    status, made, _ = post(watcher, {"matchers": {"check": "*::check_web"}, "reason": "short", "ends_at": later(1.5)})
    assert status == 201 and silenced(watcher, WEB) == 1
    watcher.wait_for(lambda s: silenced(watcher, WEB) == 0, what="the silence to end")
    assert call(watcher, "GET", "/api/v1/silences")[1]["items"] == []
    (ended,) = call(watcher, "GET", "/api/v1/silences?all=true")[1]["items"]
    assert (ended["id"], ended["status"]) == (made["id"], "expired")
    status, future, _ = post(
        watcher,
        {"matchers": {"severity": "critical"}, "reason": "tonight", "starts_at": later(3600), "ends_at": later(7200)},
    )
    assert status == 201 and future["status"] == "pending" and silenced(watcher, DB) == 0


def test_bad_input_gets_a_4xx_json_error(watcher: WatchProcess) -> None:
    good = {"matchers": {"check": "*"}, "reason": "x", "ends_at": later(60)}
    cases: list[tuple[Any, int, str]] = [
        ({**good, "ends_at": later(-60)}, 422, "in the past"),
        ({**good, "ends_at": time.time() - 1}, 422, "in the past"),
        ({**good, "starts_at": later(120)}, 422, "after starts_at"),
        ({**good, "ends_at": "next tuesday"}, 422, "RFC 3339"),
        (b'{"matchers": {"check": "*"}, "reason": ', 400, "not JSON"),
        ({**good, "reason": 5}, 422, "reason"),
        ({**good, "reason": "   "}, 422, "reason"),
        ({**good, "matchers": {}}, 422, "matchers"),
        ({**good, "matchers": {"tags": "db"}}, 422, "matchers/tags"),
        ({**good, "matchers": {"nope": "x"}}, 422, "matchers"),
        ({"matchers": {"check": "*"}, "reason": "x"}, 422, "ends_at"),
        ({**good, "ends_at": 3.6e16}, 422, "9999"),
        (b'{"matchers": {"check": "*"}, "reason": "\\ud926", "ends_at": 9e9}', 422, "lone surrogate"),
    ]
    for body, want, said in cases:
        status, answer, _ = post(watcher, body)
        assert status == want, (body, answer)
        assert answer["error"]["status"] == want and said in answer["error"]["message"], (body, answer)
    assert post(watcher, good, READ)[0] == 403
    assert post(watcher, good, None)[0] == 401
    assert call(watcher, "GET", "/api/v1/silences", None)[0] == 401
    assert call(watcher, "DELETE", "/api/v1/silences/abc", READ)[0] == 403
    status, answer, _ = call(watcher, "GET", "/api/v1/silences/nope")
    assert status == 404 and answer["error"]["code"] == "not_found"
    assert call(watcher, "DELETE", "/api/v1/silences/nope", ADMIN)[0] == 404
    assert call(watcher, "GET", "/api/v1/silences?all=maybe")[0] == 400
    assert call(watcher, "GET", "/api/v1/silences")[1]["items"] == []  # nothing was made


def test_a_silence_is_kept_across_a_restart(start: Callable[..., WatchProcess]) -> None:
    first = start()
    status, made, _ = post(first, {"matchers": {"labels": {"team": "payments"}}, "reason": "x", "ends_at": later(600)})
    assert status == 201 and made["persisted"] is True
    assert first.stop() == 0
    second = start()
    assert silenced(second, WEB) == 1 and silenced(second, DB) == 0
    assert [s["id"] for s in call(second, "GET", "/api/v1/silences")[1]["items"]] == [made["id"]]
    assert second.stop() == 0
    assert f"silence {made['id']} made" in first.stderr + first.stdout


def test_notifications_stay_quiet_under_a_silence_and_say_still_failing_after(
    start: Callable[..., WatchProcess], checkdir: CheckDir
) -> None:
    receiver: WebhookReceiver
    with webhook_receiver() as receiver:
        config = (
            "notify:\n  group_wait: 200ms\n  receivers:\n"
            f'    - {{name: hook, type: webhook, url: "{receiver.url("/hook")}"}}\n  default: [hook]\n'
        )
        watcher = start(config)
        status, made, _ = post(watcher, {"matchers": {"check": DB}, "reason": "known", "ends_at": later(600)})
        assert status == 201
        (checkdir.path / "checks" / "broken").write_text("")
        watcher.wait_for(
            lambda s: s.get(("fraiseql_check_state", (("check", DB),))) == 1, what="the check to fail, silenced"
        )
        time.sleep(1.5)  # a tick or two of the notification policy
        assert receiver.received("/hook") == []
        assert call(watcher, "DELETE", f"/api/v1/silences/{made['id']}", ADMIN)[0] == 204
        wait_until(lambda: receiver.received("/hook"), timeout=30, what="the message once the silence is gone")
        assert watcher.stop() == 0
        events = receiver.received("/hook")[0].body["events"]
        assert [(e["check_id"], e["kind"]) for e in events] == [(DB, "still_failing")]
