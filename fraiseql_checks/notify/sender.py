"""Delivering the outbox: each receiver's due events as one message, retried until they go.

The sender keeps the pending entries in memory (loaded from the store at start,
added by the policy as it makes them) and delivers them on the watcher's event
loop without ever blocking it: one delivery in flight per receiver, so a slow or
dead receiver delays nobody else and a receiver gets its messages in order.

- An entry goes once it is written to the store (the state change that made it is
  then written too: a restart finds it), or at once while the store is away —
  a notification must not wait for the database that is down. In a cluster
  (``claim`` given) an entry goes only once this watcher has claimed it in the
  store, so one watcher sends it; while the store is away entries wait, and go
  once it is back: late, neither lost nor doubled.
- A receiver's due entries go as one message (at most ``max_per_message``
  events), whose idempotency key is fixed at the first attempt and kept for the
  retries, so a receiver that got it but whose answer was lost recognises it.
- A failed delivery is retried with exponential backoff and full jitter (or after
  the receiver's ``Retry-After``), until ``give_up_after``; a permanent refusal
  (a 4xx other than 429, a message that cannot be rendered) goes to the dead
  letters at once. Each outcome is written back to the store as the entry's new
  status, and logged in one line (a receiver's failures once until it recovers).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from fraiseql_checks import metrics as m
from fraiseql_checks.notify.message import message_of
from fraiseql_checks.notify.notifier import DeliveryError, Notifier, Transport
from fraiseql_checks.notify.settings import NotifySettings
from fraiseql_checks.outbox import OutboxEntry, Status, message_key

#: The first retry waits about this long; each next one twice as long, up to ``BACKOFF_MAX``.
BACKOFF_BASE = 2.0
BACKOFF_MAX = 300.0
#: The longest one delivery (every request of one message) may take.
DELIVERY_TIMEOUT = 60.0
#: How often the loop looks again when nothing wakes it (new entries and due times do).
_IDLE = 1.0
#: How long the loop waits after a wake-up before it looks: wake-ups within it are one look.
_SETTLE = 0.02
#: How long a finished entry's id is remembered (far longer than its status takes to be written).
_DONE_KEPT = 600.0


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """The wait before retry ``attempts`` (1: the first retry): ``BACKOFF_BASE * 2**(n-1)``,
    at most ``BACKOFF_MAX``, with full jitter (a random share of it, at least a tenth)."""
    ceiling: float = min(BACKOFF_MAX, BACKOFF_BASE * 2.0 ** max(attempts - 1, 0))
    return ceiling * (0.1 + 0.9 * rng())


@dataclasses.dataclass
class ReceiverStats:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    #: The receiver's last delivery failed (its failures are logged once until it recovers).
    failing: bool = False


class Sender:
    """Delivers outbox entries to the receivers of ``settings``."""

    def __init__(
        self,
        settings: NotifySettings,
        transport: Transport,
        *,
        write: Callable[[OutboxEntry], None],
        unwritten: Callable[[], set[str]] = set,
        store_up: Callable[[], bool] = lambda: True,
        say: Callable[[str], None] = lambda line: None,
        mask: Callable[[str], str] = str,
        source: str = "fraiseql-checks",
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        claim: Callable[[list[str]], Awaitable[set[str]]] | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self._write = write
        self._unwritten = unwritten
        self._store_up = store_up
        self._say = say
        #: Masks secrets in what a failure says (a receiver's answer, an exception naming a URL):
        #: it is stored as the entry's last error and shown by the API.
        self._mask = mask
        self.source = source
        self._clock = clock
        self._rng = rng
        #: In a cluster: claims entries by id in the store, returning those now this watcher's.
        self._claim = claim
        #: Pending entries by receiver, by id.
        self.pending: dict[str, dict[str, OutboxEntry]] = {name: {} for name in settings.receivers}
        self.stats: dict[str, ReceiverStats] = {name: ReceiverStats() for name in settings.receivers}
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        #: Entries this sender finished lately (sent, dead), by id: the store may not say so yet,
        #: and an entry loaded again meanwhile (a cluster's sweep of the outbox) must not go twice.
        self._done: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    # -- entries in ------------------------------------------------------------------------

    def add(self, entries: Iterable[OutboxEntry]) -> None:
        """Entries the policy made (written by the caller); the pending ones are to send."""
        for entry in entries:
            if entry.status is Status.PENDING and entry.receiver in self.pending:
                self.pending[entry.receiver][entry.id] = entry
        self._wake.set()

    def load(self, entries: Iterable[OutboxEntry]) -> None:
        """The entries the store still had pending at start (a restart after a crash), or
        that a cluster's sweep found nobody live will send."""
        for entry in entries:
            if entry.status is not Status.PENDING or entry.id in self._done:
                continue
            if entry.receiver not in self.pending:  # a receiver removed from the config
                self._finish([entry], Status.DEAD, f"the receiver {entry.receiver!r} is no longer configured")
                continue
            self.pending[entry.receiver].setdefault(entry.id, entry)
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until ``stop``."""
        while not self._stopping:
            self._start_due(self._clock())
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self._sleep(self._clock()))
            except TimeoutError:
                pass
            else:
                # Woken (new entries, a delivery done): let the others of a burst arrive, so that
                # a thousand changes cost a few scans of the pending entries, not a thousand.
                await asyncio.sleep(_SETTLE)

    async def stop(self, timeout: float) -> None:
        """Stop starting deliveries; let those in flight finish for at most ``timeout`` seconds."""
        self._stopping = True
        self._wake.set()
        tasks = list(self._in_flight.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def _sleep(self, now: float) -> float:
        """Until the next entry is due (bounded), so a due entry goes at once."""
        upcoming = [
            entry.next_attempt_at
            for name, entries in self.pending.items()
            if name not in self._in_flight
            for entry in entries.values()
        ]
        if not upcoming:
            return _IDLE
        return min(max(min(upcoming) - now, 0.005), _IDLE)

    def _start_due(self, now: float) -> None:
        if self._stopping:
            return
        unwritten: set[str] | None = None
        for name, entries in self.pending.items():
            if not entries or name in self._in_flight:
                continue
            due = [entry for entry in entries.values() if entry.next_attempt_at <= now]
            if not due:
                continue
            if unwritten is None:
                up = self._store_up()
                if self._claim is not None and not up:
                    return  # a cluster sends only what it claimed, and cannot claim now
                unwritten = self._unwritten() if up else set()
            batch = self._batch(name, due, unwritten)
            if batch:
                task = asyncio.get_running_loop().create_task(self._deliver(name, batch))
                self._in_flight[name] = task
                task.add_done_callback(functools.partial(self._delivered, name))

    def _delivered(self, name: str, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(name, None)
        self._wake.set()

    def _batch(self, name: str, due: list[OutboxEntry], unwritten: set[str]) -> list[OutboxEntry]:
        """The next message for ``name``: the group of the oldest due entry if it was attempted
        already (the same entries, the same key), else the due entries not yet in a group."""
        due.sort(key=lambda entry: (entry.created_at, entry.id))
        oldest = due[0]
        if oldest.message_key:
            group = [entry for entry in self.pending[name].values() if entry.message_key == oldest.message_key]
            return sorted(group, key=lambda entry: (entry.created_at, entry.id))
        fresh = [entry for entry in due if not entry.message_key and entry.id not in unwritten]
        return fresh[: self.settings.max_per_message]

    async def _deliver(self, name: str, batch: list[OutboxEntry]) -> None:
        notifier = self.settings.receivers[name]
        if self._claim is not None:
            batch = await self._claimed(name, batch)
            if not batch:
                return
        key = batch[0].message_key or message_key(entry.id for entry in batch)
        if not batch[0].message_key:
            batch = [dataclasses.replace(entry, message_key=key) for entry in batch]
            for entry in batch:
                self.pending[name][entry.id] = entry
                self._write(entry)
        try:
            await asyncio.wait_for(self.deliver(notifier, batch, key), DELIVERY_TIMEOUT)
        except DeliveryError as exc:
            self._failed(name, batch, exc)
        except TimeoutError:
            self._failed(name, batch, DeliveryError(f"no answer within {DELIVERY_TIMEOUT:g}s"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a notifier's bug: say so, keep the entries, try again later
            self._failed(name, batch, DeliveryError(f"internal error: {type(exc).__name__}: {exc}"))
        else:
            self._finish(batch, Status.SENT, "")
            stats = self.stats[name]
            stats.sent += 1
            if stats.failing:
                stats.failing = False
                self._say(f"notify: receiver {name!r} accepts messages again")

    async def _claimed(self, name: str, batch: list[OutboxEntry]) -> list[OutboxEntry]:
        """The entries of ``batch`` this watcher claimed; the others are another's to send."""
        assert self._claim is not None
        from fraiseql_checks.stores import StoreUnavailable

        try:
            claimed = await asyncio.wait_for(self._claim([entry.id for entry in batch]), 10.0)
        except Exception as exc:
            if not isinstance(exc, StoreUnavailable | TimeoutError):  # a bug: say so, do not spin on it
                self._say(f"notify: internal error claiming notifications: {type(exc).__name__}: {exc}")
            later = self._clock() + _IDLE
            for entry in batch:  # not a failed delivery: try again shortly
                self.pending[name][entry.id] = dataclasses.replace(entry, next_attempt_at=later)
            return []
        for entry in batch:
            if entry.id not in claimed:
                self.pending[name].pop(entry.id, None)
        return [entry for entry in batch if entry.id in claimed]

    async def deliver(self, notifier: Notifier, entries: Sequence[OutboxEntry], key: str) -> None:
        """Render the message of ``entries`` and send every item of it (``DeliveryError``)."""
        message = message_of(notifier.name, key, entries, self.source, self.settings.templates)
        try:  # off the loop: templates and JSON of fifty events are milliseconds the runs need
            outgoing = await self.transport.run(notifier.render, message)
        except (ValueError, KeyError, TypeError) as exc:  # a broken template: retrying cannot help
            raise DeliveryError(f"cannot render the message: {exc}", permanent=True) from None
        for item in outgoing:
            await notifier.send(item, self.transport)

    def _failed(self, name: str, batch: list[OutboxEntry], error: DeliveryError) -> None:
        now = self._clock()
        stats = self.stats[name]
        reason = self._mask(str(error))
        expired = now - min(entry.created_at for entry in batch) >= self.settings.give_up_after
        if error.permanent or expired:
            why = reason if error.permanent else f"still failing after {self.settings.give_up_after:g}s: {reason}"
            self._say(
                f"notify: receiver {name!r} refused a message of {len(batch)} events ({why}); it is in the dead letters"
            )
            self._finish(batch, Status.DEAD, why)
            stats.dead += len(batch)
            return
        stats.failed += 1
        if not stats.failing:
            stats.failing = True
            self._say(f"notify: delivery to receiver {name!r} failed ({reason}); retrying")
        attempts = max(entry.attempts for entry in batch) + 1
        wait = error.retry_after if error.retry_after is not None else backoff(attempts, self._rng)
        for entry in batch:
            updated = dataclasses.replace(entry, attempts=attempts, next_attempt_at=now + wait, last_error=reason)
            self.pending[name][entry.id] = updated
            self._write(updated)

    def _finish(self, batch: Iterable[OutboxEntry], status: Status, error: str) -> None:
        now = self._clock()
        if len(self._done) > 10_000:
            self._done = {key: at for key, at in self._done.items() if now - at < _DONE_KEPT}
        for entry in batch:
            self._done[entry.id] = now
            self.pending.get(entry.receiver, {}).pop(entry.id, None)
            done = dataclasses.replace(
                entry,
                status=status,
                attempts=entry.attempts + 1,
                last_error=self._mask(error),
                sent_at=now if status is Status.SENT else entry.sent_at,
            )
            self._write(done)

    # -- /metrics ------------------------------------------------------------------------------

    def metric_lines(self) -> Iterable[str]:
        from fraiseql_checks.watch import exposition

        now = self._clock()
        names = sorted(self.stats)
        oldest = {
            name: max((now - min(e.created_at for e in entries.values())), 0.0) if entries else 0.0
            for name, entries in self.pending.items()
        }
        yield exposition.labelled(m.NOTIFY_SENT, {name: self.stats[name].sent for name in names})
        yield exposition.labelled(m.NOTIFY_FAILED, {name: self.stats[name].failed for name in names})
        yield exposition.labelled(m.NOTIFY_DEAD, {name: self.stats[name].dead for name in names})
        yield exposition.labelled(m.NOTIFY_PENDING, {name: len(self.pending[name]) for name in names})
        yield exposition.labelled(m.NOTIFY_OLDEST, oldest)

    def counts(self) -> collections.Counter[str]:
        """Pending entries by receiver."""
        return collections.Counter({name: len(entries) for name, entries in self.pending.items()})
