"""Notifications in a running watcher: the policy fed by its results and changes, the
sender delivering, both on the watcher's event loop.

Registered as a plugin of the watcher's plugin manager at ``fraiseql_watch_start``
when receivers are configured: it sees each result (``fraiseql_report_result``,
before the result's state change) and each change (``fraiseql_check_state_changed``),
and adds the outbox entries they make to the store's writer right after the
change — the same batch, the same transaction. A ticker asks the policy every
second for reminders and ended silences.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.notify.notifier import Transport
from fraiseql_checks.notify.policy import Policy
from fraiseql_checks.notify.sender import Sender
from fraiseql_checks.notify.settings import NotifySettings
from fraiseql_checks.outbox import OutboxEntry, Status
from fraiseql_checks.stores import StoreUnavailable

if TYPE_CHECKING:
    from fraiseql_checks.checks import CheckInfo
    from fraiseql_checks.result import Result
    from fraiseql_checks.states import StateChange, StateRecord
    from fraiseql_checks.stores.postgres import PostgresStore
    from fraiseql_checks.watch.watcher import Watcher

PLUGIN_NAME = "notify-watching"
#: How far back a restart reads what was announced (at least a day; more with a long repeat_interval).
HISTORY = 24 * 3600.0
#: How often the policy is asked about time passing.
TICK = 1.0
#: How long a stopping watcher lets deliveries in flight finish.
STOP_TIMEOUT = 5.0
#: How long reading the outbox at start may take before notifications start without it.
READ_TIMEOUT = 10.0
#: In a cluster: how often a watcher looks for notifications nobody live will send ...
SWEEP = 3.0
#: ... among them, unclaimed ones this long past their time (their maker claims them sooner).
SWEEP_AFTER = 30.0


class ScheduledChecks(Mapping[str, "CheckInfo"]):
    """The watcher's checks by id, as they are now (reloads included)."""

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def __getitem__(self, check_id: str) -> CheckInfo:
        entry = self._watcher.schedule.get(check_id)
        if entry is None:
            raise KeyError(check_id)
        return entry.item.check

    def __iter__(self) -> Iterator[str]:
        return (entry.key for entry in self._watcher.schedule)

    def __len__(self) -> int:
        return len(self._watcher.schedule)


class Notifications:
    """The policy and the sender of one watcher."""

    def __init__(self, watcher: Watcher, settings: NotifySettings, http: object | None = None) -> None:
        import httpx

        from fraiseql_checks._version import __version__

        self.watcher = watcher
        self.settings = settings
        self._client = (
            http
            if isinstance(http, httpx.AsyncClient)
            else httpx.AsyncClient(headers={"User-Agent": f"fraiseql-checks/{__version__}"}, follow_redirects=False)
        )
        self.policy = Policy(settings, mask=watcher.config.mask, dashboard_url=self._dashboard_url)
        self.policy.checks = ScheduledChecks(watcher)
        writer = watcher.writer
        cluster = watcher.cluster
        self.sender = Sender(
            settings,
            Transport(self._client),
            write=writer.add,
            unwritten=writer.unwritten_outbox,
            store_up=lambda: writer.up,
            say=watcher.say,
            mask=watcher.config.mask,
            source=f"{socket.gethostname()} {watcher.server.address}",
            claim=self._claim if cluster is not None else None,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def _dashboard_url(self, check: CheckInfo) -> str:
        if not self.settings.grafana_url:
            return ""
        from fraiseql_checks.dashboards.suites import suite_dashboard_url

        return suite_dashboard_url(self.settings.grafana_url, check.suite)

    async def start(self) -> None:
        watcher = self.watcher
        now = time.time()
        for entry in watcher.schedule:
            state = entry.item.state
            self.policy.state[entry.key] = state.state
            self.policy.since[entry.key] = state.since
            unknown = self.settings.unknown_receivers(entry.item.check)
            if unknown:
                watcher.say(f"{entry.key}: @check(notify=...) names no receiver {unknown[0]!r}; the routes decide")
        store = watcher.writer.store
        if watcher.writer.up:
            try:
                history, pending = await asyncio.wait_for(
                    asyncio.gather(
                        store.outbox(now - max(HISTORY, 2 * self.settings.repeat_interval), now + 1),
                        store.outbox(0.0, now + 1, status=Status.PENDING),
                    ),
                    READ_TIMEOUT,
                )
            except (StoreUnavailable, TimeoutError) as exc:
                watcher.say(f"notify: the outbox could not be read ({exc}); what was announced before is not known")
            else:
                self.policy.restore({}, history)
                if watcher.cluster is not None:  # another cluster may share the store: its entries are its own
                    ours = set(watcher.check_ids())
                    pending = [entry for entry in pending if not entry.check_id or entry.check_id in ours]
                self.sender.load(pending)
                if pending:
                    watcher.say(f"notify: {len(pending)} notifications left from before are being sent")
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.sender.run()), loop.create_task(self._tick())]
        if watcher.cluster is not None:
            watcher.cluster.on_adopt.append(self._adopted)
            watcher.cluster.on_disown.append(self._disowned)
            self._tasks.append(loop.create_task(self._sweep()))

    # -- in a cluster (``watch.cluster``): what a takeover must know, and claims -------------------

    def _coordinator(self) -> PostgresStore:
        from fraiseql_checks.stores.postgres import PostgresStore

        store = self.watcher.writer.store
        assert isinstance(store, PostgresStore)
        return store

    async def _adopted(self, check_ids: list[str], states: dict[str, StateRecord]) -> None:
        """Checks taken over from another watcher: learn what was announced for them, so that
        their next results neither announce again what was, nor miss a reminder."""
        since = time.time() - max(HISTORY, 2 * self.settings.repeat_interval)
        history = await self._coordinator().outbox_of(check_ids, since)
        self.policy.adopt(check_ids, states, history)

    def _disowned(self, check_ids: list[str]) -> None:
        """Checks handed to another watcher: it announces them from now on."""
        self.policy.disown(check_ids)

    async def _claim(self, entry_ids: list[str]) -> set[str]:
        cluster = self.watcher.cluster
        assert cluster is not None
        until = time.time() + cluster.ttl
        return await self._coordinator().claim_entries(cluster.member, entry_ids, until)

    async def _sweep(self) -> None:
        """Every few seconds, take the pending entries nobody live will send: those claimed by a
        watcher whose lease is gone, and those left unclaimed well past their time."""
        cluster = self.watcher.cluster
        assert cluster is not None
        while True:
            await asyncio.sleep(SWEEP)
            if cluster.away or not cluster.members:
                continue
            now = time.time()
            try:
                entries = await asyncio.wait_for(
                    self._coordinator().claim_outbox(
                        cluster.member,
                        self.watcher.check_ids(),  # this cluster's checks: another cluster's entries are its own
                        until=now + cluster.ttl,
                        older_than=now - SWEEP_AFTER,
                    ),
                    READ_TIMEOUT,
                )
            except (StoreUnavailable, TimeoutError):
                continue
            except Exception as exc:  # a bug here must not end the sweeps for the watcher's life, unsaid
                self.watcher.error(f"notify: internal error sweeping the outbox: {type(exc).__name__}: {exc}")
                continue
            unwritten = self.watcher.writer.unwritten_outbox()  # this watcher's newer news of them is on its way
            unsent = [
                entry
                for entry in entries
                if entry.id not in self.sender.pending.get(entry.receiver, {}) and entry.id not in unwritten
            ]
            if unsent:
                self.watcher.say(f"notify: sending {len(unsent)} notifications another watcher of the cluster left")
                self.sender.load(unsent)

    async def stop(self) -> None:
        cluster = self.watcher.cluster
        if cluster is not None and self._adopted in cluster.on_adopt:
            cluster.on_adopt.remove(self._adopted)
            cluster.on_disown.remove(self._disowned)
        ticker = self._tasks[1:] if len(self._tasks) > 1 else []
        for task in ticker:
            task.cancel()
        await asyncio.gather(*ticker, return_exceptions=True)
        await self.sender.stop(STOP_TIMEOUT)
        for task in self._tasks[:1]:
            task.cancel()
        await asyncio.gather(*self._tasks[:1], return_exceptions=True)
        await self._client.aclose()
        self.sender.transport.close()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                self.handle(self.policy.tick(time.time(), self._silenced_now()))
            except Exception as exc:  # a bug here must not stop the ticks
                self.watcher.say(f"notify: internal error: {type(exc).__name__}: {exc}")

    def _silenced_now(self) -> set[str]:
        now = time.time()
        watcher = self.watcher
        return {entry.key for entry in watcher.schedule if watcher.is_silenced(entry.item, now)}

    def handle(self, entries: list[OutboxEntry]) -> None:
        for entry in entries:
            self.watcher.writer.add(entry)
        self.sender.add(entries)

    # -- the watcher's hooks -----------------------------------------------------------------

    @hookimpl
    def fraiseql_report_result(self, result: Result) -> None:
        if result.kind == "check":
            self.handle(self.policy.observe(result, time.time()))

    @hookimpl
    def fraiseql_check_state_changed(self, change: StateChange, check: CheckInfo | None) -> None:
        self.handle(self.policy.changed(change, time.time()))

    def metric_lines(self) -> Iterator[str]:
        yield from self.sender.metric_lines()
