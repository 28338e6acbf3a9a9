"""``/api/v1/notifications`` on a real watcher and a local receiver: the outbox listed, a dead
entry sent again and delivered; without receivers, an empty list and a clear 404."""

from __future__ import annotations

from collections.abc import Callable

from tests.api.test_checks_api import ADMIN, READ, call
from tests.support.checkdir import CheckDir
from tests.support.services import Reply, wait_until, webhook_receiver
from tests.support.watcher import WatchProcess

CHECK = """
from fraiseql_checks import check


@check(interval="200ms", severity="critical")
def check_down():
    assert False, "the database is down"
"""
DOWN = "checks/check_down.py::check_down"
SECRET = "s3cret-signing-key"


def test_a_dead_notification_is_listed_and_sent_again(checkdir: CheckDir, watch: Callable[..., WatchProcess]) -> None:
    with webhook_receiver() as receiver:
        receiver.replies = [Reply(400, body=b"bad payload")]  # refused for good once, then 200
        checkdir.write(
            "fraiseql-checks.yaml",
            "start_jitter: 10ms\nnotify:\n  group_wait: 200ms\n  receivers:\n"
            f'    - {{name: hook, type: webhook, url: "{receiver.url("/hook")}", secret: {SECRET}}}\n'
            "  default: [hook]\n",
        )
        checkdir.write("checks/check_down.py", CHECK)
        watcher = watch(env=checkdir.env(FRAISEQL_CHECKS_API_TOKEN=ADMIN, FRAISEQL_CHECKS_API_READ_TOKEN=READ))

        def dead() -> list[dict[str, object]]:
            items: list[dict[str, object]] = call(watcher, "GET", "/api/v1/notifications?status=dead")[1]["items"]
            return items

        wait_until(dead, timeout=30, what="the firing message refused")
        (entry,) = dead()
        assert (entry["receiver"], entry["check"], entry["kind"], entry["status"]) == ("hook", DOWN, "firing", "dead")
        assert entry["attempts"] == 1 and "400" in str(entry["last_error"]) and entry["sent_at"] is None
        event = entry["event"]
        assert isinstance(event, dict) and event["severity"] == "critical" and event["state"] == "failing"
        assert str(event["message"]).startswith("the database is down")
        status, page, _ = call(watcher, "GET", f"/api/v1/notifications?check={DOWN}&receiver=hook")
        assert status == 200 and [e["id"] for e in page["items"]] == [entry["id"]]
        assert call(watcher, "GET", "/api/v1/notifications?receiver=other")[1]["items"] == []
        assert call(watcher, "GET", "/api/v1/notifications?status=sent")[1]["items"] == []
        assert call(watcher, "GET", "/api/v1/notifications?status=lost")[0] == 400
        assert SECRET not in str(page)

        resend = f"/api/v1/notifications/{entry['id']}/resend"
        assert call(watcher, "POST", resend, READ)[0] == 403
        assert call(watcher, "POST", resend, None)[0] == 401
        assert call(watcher, "POST", "/api/v1/notifications/nope/resend", ADMIN)[0] == 404
        status, again, _ = call(watcher, "POST", resend, ADMIN)
        assert status == 202, again
        assert (again["id"], again["status"], again["attempts"], again["last_error"]) == (entry["id"], "pending", 0, "")
        wait_until(lambda: receiver.received("/hook"), timeout=30, what="the message sent again")
        (delivery,) = receiver.received("/hook")
        assert [e["kind"] for e in delivery.body["events"]] == ["firing"]

        def sent() -> list[dict[str, object]]:
            items: list[dict[str, object]] = call(watcher, "GET", "/api/v1/notifications?status=sent")[1]["items"]
            return items

        wait_until(sent, timeout=10, what="the entry marked sent")
        (done,) = sent()
        assert done["id"] == entry["id"] and done["sent_at"] is not None
        keys = [d.headers["idempotency-key"] for d, _ in receiver.answered]
        assert len(keys) == 2 and keys[0] != keys[1]  # a fresh key: the receiver must not drop it as a repeat
        assert call(watcher, "POST", resend, ADMIN)[0] == 202  # sent: may go again
        assert watcher.stop() == 0


def test_without_receivers_the_list_is_empty_and_resending_says_why(
    checkdir: CheckDir, watch: Callable[..., WatchProcess]
) -> None:
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 10ms\n")
    checkdir.write("checks/check_down.py", CHECK)
    watcher = watch(env=checkdir.env(FRAISEQL_CHECKS_API_TOKEN=ADMIN, FRAISEQL_CHECKS_API_READ_TOKEN=READ))
    status, page, _ = call(watcher, "GET", "/api/v1/notifications")
    assert (status, page["items"], page["total"]) == (200, [], 0)
    status, answer, _ = call(watcher, "POST", "/api/v1/notifications/abc/resend", ADMIN)
    assert status == 404 and answer["error"]["code"] == "notifications_off"
    assert "no notify receivers" in answer["error"]["message"]
    assert watcher.stop() == 0
