"""The sender against real local HTTP receivers: grouping, retries, Retry-After, dead letters."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from fraiseql_checks.notifiers.webhook import Webhook
from fraiseql_checks.notify.notifier import Transport
from fraiseql_checks.notify.sender import Sender
from fraiseql_checks.notify.settings import NotifySettings
from fraiseql_checks.outbox import Kind, OutboxEntry, Status, entry_id
from tests.support.services import Reply, WebhookReceiver, webhook_receiver

T0 = 1_800_000_000.0


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as found:
        yield found


def entry(receiver: str, n: int, at: float = T0) -> OutboxEntry:
    check_id = f"checks/check_n.py::check_{n}"
    return OutboxEntry(
        id=entry_id(receiver, check_id, "firing", at),
        receiver=receiver,
        check_id=check_id,
        kind=Kind.FIRING,
        created_at=at,
        not_before=at,
        next_attempt_at=at,
        event={"name": f"check_{n}", "state": "failing", "severity": "warning", "message": f"run {n} failed"},
    )


class Harness:
    """A sender on a clock the test moves, recording what it writes and says."""

    def __init__(self, urls: dict[str, str], **options: object) -> None:
        self.now = T0
        self.written: list[OutboxEntry] = []
        self.said: list[str] = []
        self.unwritten: set[str] = set()
        self.store_up = True
        receivers = {name: Webhook(name, {"url": url, "format": "json"}) for name, url in urls.items()}
        self.settings = NotifySettings(receivers=receivers, default=tuple(urls), **options)  # type: ignore[arg-type]
        self.http = httpx.AsyncClient()
        self.sender = Sender(
            self.settings,
            Transport(self.http, timeout=float(options.get("timeout", 5.0))),  # type: ignore[arg-type]
            write=self.written.append,
            unwritten=lambda: set(self.unwritten),
            store_up=lambda: self.store_up,
            say=self.said.append,
            clock=lambda: self.now,
            rng=lambda: 0.0,
        )

    def status(self, entry_id: str) -> Status | None:
        found = [written for written in self.written if written.id == entry_id]
        return found[-1].status if found else None

    def latest(self, entry_id: str) -> OutboxEntry:
        return [written for written in self.written if written.id == entry_id][-1]

    async def until(self, condition: Callable[[], object], what: str) -> None:
        for _ in range(400):
            if condition():
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"gave up waiting for {what}")

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.sender.add([])  # wakes the loop


def run(test: Callable[[Harness], Awaitable[None]], urls: dict[str, str], **options: object) -> Harness:
    harness = Harness(urls, **options)

    async def main() -> None:
        task = asyncio.create_task(harness.sender.run())
        try:
            await test(harness)
        finally:
            await harness.sender.stop(1.0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await harness.http.aclose()

    asyncio.run(main())
    return harness


def test_a_receivers_due_entries_go_as_one_message_and_a_retry_repeats_its_key(receiver: WebhookReceiver) -> None:
    receiver.replies = [Reply(503, body=b"try later")]
    entries = [entry("hook", n) for n in range(3)]

    async def test(h: Harness) -> None:
        h.sender.add(entries)
        await h.until(lambda: receiver.answered, "the first attempt")
        await h.until(lambda: all(h.status(e.id) is Status.PENDING for e in entries), "the retry written")
        assert h.latest(entries[0].id).attempts == 1 and "HTTP 503" in h.latest(entries[0].id).last_error
        await asyncio.sleep(0.2)
        assert len(receiver.answered) == 1  # not before its backoff is over
        h.advance(60)
        await h.until(lambda: receiver.received("/hook"), "the retry")

    h = run(test, {"hook": receiver.url("/hook")})
    (first, _), (second, status) = receiver.answered
    assert status == 200
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == second.body["key"]
    assert [event["check_id"] for event in second.body["events"]] == [e.check_id for e in entries]
    assert {h.status(e.id) for e in entries} == {Status.SENT}
    assert h.said == [
        "notify: delivery to receiver 'hook' failed (HTTP 503: try later); retrying",
        "notify: receiver 'hook' accepts messages again",
    ]


def test_retry_after_is_honoured(receiver: WebhookReceiver) -> None:
    receiver.replies = [Reply(429, {"Retry-After": "120"})]
    one = entry("hook", 1)

    async def test(h: Harness) -> None:
        h.sender.add([one])
        await h.until(lambda: h.status(one.id) is Status.PENDING and h.latest(one.id).attempts, "the 429")
        assert h.latest(one.id).next_attempt_at == T0 + 120
        h.advance(119)
        await asyncio.sleep(0.2)
        assert len(receiver.answered) == 1
        h.advance(1)
        await h.until(lambda: receiver.received("/hook"), "the retry after 120 s")

    run(test, {"hook": receiver.url("/hook")})


def test_a_permanent_refusal_goes_to_the_dead_letters_with_one_line(receiver: WebhookReceiver) -> None:
    receiver.default = Reply(400, body=b"invalid payload")
    entries = [entry("hook", 1), entry("hook", 2)]

    async def test(h: Harness) -> None:
        h.sender.add(entries)
        await h.until(lambda: all(h.status(e.id) is Status.DEAD for e in entries), "the dead letters")
        h.advance(3600)
        await asyncio.sleep(0.2)

    h = run(test, {"hook": receiver.url("/hook")})
    assert len(receiver.answered) == 1
    assert h.said == [
        "notify: receiver 'hook' refused a message of 2 events (HTTP 400: invalid payload); it is in the dead letters"
    ]
    assert h.sender.stats["hook"].dead == 2
    assert 'fraiseql_check_notifications_dead_total{receiver="hook"} 2' in "\n".join(h.sender.metric_lines())


def test_a_receiver_failing_past_give_up_after_gives_up(receiver: WebhookReceiver) -> None:
    receiver.default = Reply(503)
    one = entry("hook", 1)

    async def test(h: Harness) -> None:
        h.sender.add([one])
        await h.until(lambda: h.latest(one.id).attempts if h.written else False, "the first failure")
        h.advance(7200)
        await h.until(lambda: h.status(one.id) is Status.DEAD, "giving up")

    h = run(test, {"hook": receiver.url("/hook")}, give_up_after=3600.0)
    assert "still failing after 3600s" in h.latest(one.id).last_error


def test_an_entry_waits_until_it_is_written_unless_the_store_is_away(receiver: WebhookReceiver) -> None:
    one, two = entry("hook", 1), entry("hook", 2)

    async def test(h: Harness) -> None:
        h.unwritten = {one.id}
        h.sender.add([one])
        await asyncio.sleep(0.3)
        assert receiver.answered == []
        h.unwritten = set()
        h.advance(0.1)
        await h.until(lambda: receiver.received("/hook"), "the written entry")
        h.unwritten, h.store_up = {two.id}, False
        h.sender.add([two])
        await h.until(lambda: len(receiver.received("/hook")) == 2, "the entry sent while the store is away")

    run(test, {"hook": receiver.url("/hook")})


def test_a_receiver_that_never_answers_delays_no_other(receiver: WebhookReceiver) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections, never answers
    slow, fast = entry("slow", 1), entry("fast", 1)

    async def test(h: Harness) -> None:
        h.sender.add([slow, fast])
        await h.until(lambda: receiver.received("/fast"), "the fast receiver's message")
        assert h.status(slow.id) is None or h.status(slow.id) is Status.PENDING

    try:
        h = run(test, {"slow": f"http://127.0.0.1:{silent.getsockname()[1]}/x", "fast": receiver.url("/fast")})
    finally:
        silent.close()
    assert h.status(fast.id) is Status.SENT


def test_pending_entries_of_a_receiver_no_longer_configured_are_dead_at_load(receiver: WebhookReceiver) -> None:
    gone = entry("removed", 1)

    async def test(h: Harness) -> None:
        h.sender.load([gone])

    h = run(test, {"hook": receiver.url("/hook")})
    assert h.status(gone.id) is Status.DEAD
    assert "no longer configured" in h.latest(gone.id).last_error


def test_in_a_cluster_only_claimed_entries_go_and_none_while_the_store_is_away(receiver: WebhookReceiver) -> None:
    mine, theirs, later = entry("hook", 1), entry("hook", 2), entry("hook", 3)
    asked: list[list[str]] = []

    async def claim(ids: list[str]) -> set[str]:
        asked.append(sorted(ids))
        return {entry_id for entry_id in ids if entry_id != theirs.id}  # another watcher holds "theirs"

    async def test(h: Harness) -> None:
        h.sender._claim = claim
        h.sender.add([mine, theirs])
        # the receiver records the request before its answer is back: wait for the sender's word
        await h.until(lambda: h.status(mine.id) is Status.SENT, "the claimed entry sent")
        (delivery,) = receiver.received("/hook")
        assert [event["check_id"] for event in delivery.body["events"]] == [mine.check_id]
        assert asked == [sorted([mine.id, theirs.id])]
        assert h.sender.pending["hook"] == {}  # "theirs" is another watcher's to send
        h.store_up = False
        h.sender.add([later])
        await asyncio.sleep(0.3)
        assert len(receiver.received("/hook")) == 1  # waits for the store: it cannot be claimed now
        h.store_up = True
        h.advance(0.1)
        await h.until(lambda: len(receiver.received("/hook")) == 2, "the entry once the store is back")
        h.sender.load([mine])  # a sweep that finds it again before its status is written
        await asyncio.sleep(0.3)
        assert len(receiver.received("/hook")) == 2

    run(test, {"hook": receiver.url("/hook")})
