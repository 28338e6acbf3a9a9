"""Watch mode's control plane: every check on its own schedule, for as long as the process lives.

The watcher runs no check code. Its event loop holds the schedule, each check's
state machine, the store's writer and the HTTP server; the checks themselves run
in worker processes (``watch.workers``) that it starts, feeds and replaces, so no
check can block, crash or exhaust the process that reports on all of them. Each
run's result updates the check's series and state; state changes go to the
``fraiseql_check_state_changed`` hook and, with every result and the new state,
to the store. A check's state is restored from the store at start, so a restart
neither forgets a failing check nor announces it again. SIGHUP re-reads the config
file (``watch.config_reload``) and has the workers collect again; SIGTERM and SIGINT
stop everything cleanly.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import logging
import math
import os
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from collections.abc import Collection as Collected
from typing import TYPE_CHECKING, Any

import psutil

from fraiseql_checks import metrics as m
from fraiseql_checks._plugins import HookCall
from fraiseql_checks.cli import ARGS_KEY
from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.runbooks import runbook_base_url
from fraiseql_checks.stores import StateRecord, Store, StoredResult
from fraiseql_checks.stores.buffer import BufferedWriter, WriterTotals
from fraiseql_checks.watch import heap, turns
from fraiseql_checks.watch.cluster import VIEW_IDLE
from fraiseql_checks.watch.exposition import CheckSeries, Histogram, ScrapeCadence
from fraiseql_checks.watch.http import HTTPServer
from fraiseql_checks.watch.maintenance import MaintenanceWindow, silenced, windows_for
from fraiseql_checks.watch.pages import WatcherPages
from fraiseql_checks.watch.schedule import Entry, Schedule
from fraiseql_checks.watch.state import CheckState, Rules, StateChange
from fraiseql_checks.watch.workers import Collection, Run, RunOutcome, WorkerPool, WorkerProcess

if TYPE_CHECKING:
    from fraiseql_checks.checks import CheckInfo
    from fraiseql_checks.core.session import Session
    from fraiseql_checks.watch.cluster import Cluster


@dataclasses.dataclass(frozen=True)
class WatchSettings:
    """What the watcher was configured with (``watch.plugin`` resolves it)."""

    host: str
    port: int
    store_buffer: int
    retention: float
    start_jitter: float
    failure_threshold: int
    success_threshold: int
    flap_changes: int
    flap_window: float
    maintenance: tuple[MaintenanceWindow, ...] = ()
    #: How long shutdown waits for the store to take what is queued.
    flush_timeout: float = 10.0
    #: How long the store keeps the hourly SLO rollups (``rollup_retention``, 400 days).
    rollup_retention: float = 400 * 86400.0
    #: Worker processes that run the checks.
    workers: int = 1
    #: A worker whose resident memory grows past this many bytes is replaced (0: no limit).
    worker_memory_limit: int = 0
    #: A worker that takes longer than this to import one file is replaced, the file skipped.
    import_timeout: float = 30.0


class Watched:
    """One check under watch: what is known of it, its state and its series."""

    __slots__ = ("check", "series", "state", "windows")

    def __init__(
        self, check: CheckInfo, state: CheckState, series: CheckSeries, windows: tuple[MaintenanceWindow, ...]
    ):
        self.check = check
        self.state = state
        self.series = series
        self.windows = windows


#: Runs due within this much of each other start in one wake-up of the scheduler: with
#: thousands of checks, waking for each due time alone costs more than the checks.
_COALESCE = 0.002
#: A check reported for holding the event loop is named in the log once in this long.
_BLOCK_NOTICE_EVERY = 600.0
#: A message cut for the store is logged whole once per check in this long.
_WHOLE_MESSAGE_EVERY = 600.0
#: Slots that passed while this watcher was late to hand their checks' runs out are logged
#: at most once in this long, all since the line before (they are counted every time).
_LATE_NOTICE_EVERY = 60.0


class NothingToWatch(Exception):
    """The workers collected no check and no file failed: nothing to watch (exit code 5)."""


class Watcher:
    """Runs the session's checks on their intervals, in worker processes, until stopped."""

    def __init__(
        self, session: Session, store: Store, settings: WatchSettings, say: Callable[[str, int], None]
    ) -> None:
        self.session = session
        self.config = session.config
        self.settings = settings
        mask = self.config.mask
        # the log, at a level each (``watch.log``); masked: a store URL may hold a password
        self.say: Callable[[str], None] = lambda line: say(mask(line), logging.INFO)
        self.warn: Callable[[str], None] = lambda line: say(mask(line), logging.WARNING)
        self.error: Callable[[str], None] = lambda line: say(mask(line), logging.ERROR)
        self.writer = BufferedWriter(
            store,
            settings.store_buffer,
            retention=settings.retention,
            rollup_retention=settings.rollup_retention,
            warn=self.warn,
        )
        self.server = HTTPServer()
        self.server.routes.update(WatcherPages(self).routes())
        self.pool = WorkerPool(
            count=settings.workers,
            concurrency=self.config.get("concurrency"),
            args=self.config.stash[ARGS_KEY].copy(),
            cwd=self.config.invocation_dir,
            rootdir=self.config.rootdir,
            memory_limit=settings.worker_memory_limit,
            import_timeout=settings.import_timeout,
            say=self.say,
            mask=self.config.mask,
            on_blocked=self._blocked,
            on_teardown=self._teardown_failed,
            on_collected=self._collected_later,
        )
        self.pool.file_values = dict(self.config.file_values)  # workers run on the watcher's config, not the file's
        self.schedule: Schedule[Watched] = Schedule(settings.start_jitter)
        self.lateness = Histogram(m.LATENESS_BUCKETS)
        #: How often /metrics is read: checks that run less often are rendered as they change.
        self.scrapes = ScrapeCadence()
        self.in_progress = 0
        self.runs = 0
        #: Slots skipped for the lack of capacity (the previous run waited a whole interval for a
        #: concurrency slot, or was in flight a whole interval longer than it ran), and when last.
        self.capacity_skips = 0
        #: Slots that passed while this watcher was a whole interval late to hand the check's run
        #: out (``Schedule.pop_due``'s missed slots of a check not running).
        self.late_skips = 0
        #: When the last log line about them was said; what came since: slots, checks, the latest.
        self._late_said = -math.inf
        self._late_unsaid: tuple[int, int, float] = (0, 0, 0.0)
        self.last_capacity_skip: float | None = None
        self.collection_errors = len(session.collect_errors)
        self.reloads: Counter[str] = Counter({"success": 0, "failure": 0})
        self.fixture_rebuilds: Counter[str] = Counter()
        self.held: Counter[str] = Counter()
        self.loop_interrupts = 0
        self.longest_hold = 0.0
        self.collected = False
        self.started = time.time()
        #: Called once a run: pluggy's own call would cost more than its implementations.
        self._report_result = HookCall(self.config.hook.fraiseql_report_result, self.config.pluginmanager)
        self.process = psutil.Process(os.getpid())
        #: Concurrency slots free, and the runs waiting for one, first come first served. A
        #: run is no task: it is handed to its worker at once when a slot is free, and its
        #: result is accounted for in the callback of its future, which starts the next run
        #: waiting in the same turn of the loop (a task per run, woken by a semaphore,
        #: cost turns of a busy loop per run, and thousands of live tasks past capacity).
        self._free: int = self.config.get("concurrency")
        self._queue: collections.deque[tuple[Entry[Watched], float, asyncio.Future[Result | None] | None]] = (
            collections.deque()
        )
        #: The runs handed to a worker, until their result is accounted for.
        self._inflight: set[Run] = set()
        #: Stopping: set once no run is in flight any more.
        self._no_runs: asyncio.Future[None] | None = None
        #: Runs waiting for their worker to be ready (being replaced): no slot held meanwhile.
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiter: asyncio.Future[None] | None = None
        self._stopping = False
        self._reload = False
        self._scheduler: asyncio.Task[None] | None = None
        self._max_timeout = self.config.get("timeout")
        self._held_noticed: dict[str, float] = {}
        self._whole_logged: dict[str, float] = {}
        self._restored: dict[str, StateRecord] = {}
        #: Every check collected, scheduled here or not (in a cluster, only the owned ones are).
        self._collected: dict[str, CheckInfo] = {}
        #: In a cluster: the checks the other watchers run, as the store last had them
        #: (``others_seen``), so that the API and the status page show the whole cluster.
        self.others: dict[str, Watched] = {}
        #: When (``time.monotonic()``) the API or the status page last asked for the whole view.
        self._view_asked = -math.inf
        #: With a PostgreSQL store: this watcher's membership of its cluster (``watch.cluster``).
        self.cluster: Cluster | None = None
        #: What became of the results and states, once the writer stopped.
        self.totals: WriterTotals | None = None
        #: More ``/metrics`` families from plugins (SLO gauges): each returns its lines.
        self.extra_metrics: list[Callable[[], Iterable[str]]] = []
        #: Besides maintenance windows, what may silence a check (check, time) → bool.
        self.silencers: list[Callable[[CheckInfo, float], bool]] = []

    @property
    def stopping(self) -> bool:
        """A stop was asked for (SIGTERM, SIGINT): finishing the runs under way."""
        return self._stopping

    @property
    def scheduler_failed(self) -> bool:
        """The scheduling loop ended without a stop being asked for: the watcher is broken."""
        scheduler = self._scheduler
        return scheduler is not None and scheduler.done() and not self._stopping

    # -- checks in and out of the schedule ----------------------------------------------

    def rules_for(self, check: CheckInfo) -> Rules:
        spec, settings = check.spec, self.settings
        return Rules(
            failure_threshold=spec.failure_threshold or settings.failure_threshold,
            success_threshold=spec.success_threshold or settings.success_threshold,
            failures_within=spec.failures_within,
            flap_changes=settings.flap_changes,
            flap_window=settings.flap_window,
        )

    def watch(self, checks: list[CheckInfo], now: float, at_once: Collected[str] = ()) -> None:
        """Schedule new checks (``at_once``: these due now), update known ones in place, drop those that are gone."""
        wanted = {check.id: check for check in checks}
        for gone in [key for key in (e.key for e in self.schedule) if key not in wanted]:
            self.schedule.remove(gone)
        for check_id, check in wanted.items():
            windows = windows_for(check_id, self.settings.maintenance)
            entry = self.schedule.get(check_id)
            if entry is None:
                state = CheckState(check_id, self.rules_for(check))
                record = self._restored.pop(check_id, None)
                if record is not None:
                    state.restore(record)
                series = CheckSeries(check, windows, runbook_base_url(self.config))
                series.set_state(m.STATE_VALUES[state.state.value], state.consecutive_failures)
                self.schedule.add(
                    check_id, Watched(check, state, series, windows), check.interval, now, at_once=check_id in at_once
                )
            else:
                watched = entry.item
                watched.check, watched.windows = check, windows
                watched.state.update_rules(self.rules_for(check))
                watched.series.describe(check, windows)
                self.schedule.update(check_id, watched, check.interval, now)
            self._max_timeout = max(self._max_timeout, check.timeout)

    def _apply(self, collection: Collection) -> None:
        """Make a collection the watcher's view: schedule, assignment, errors."""
        session = self.session
        session.checks = collection.checks  # type: ignore[assignment]
        session.collect_errors = list(collection.errors)
        self.collection_errors = len(collection.errors)
        self.pool.assign(collection.checks)
        self._collected = {check.id: check for check in collection.checks}
        checks = collection.checks
        if self.cluster is not None:  # the owned ones; the next heartbeat hands out the new ones
            checks = [check for check in checks if self.schedule.get(check.id) is not None]
        self.watch(checks, asyncio.get_running_loop().time())
        self.config.hook.fraiseql_collection_finish(session=session)
        session.report_collect_errors()
        self._store_collect_errors()

    def check_ids(self) -> list[str]:
        """Every check collected, whether this watcher runs it or not."""
        return list(self._collected)

    def adopt(self, check_ids: Collected[str], states: dict[str, StateRecord] | None, *, at_once: bool) -> None:
        """Start running these checks (a cluster handed them to this watcher), each from its
        stored state in ``states`` (``None``: the states read at start, the store being away);
        ``at_once``: due now rather than spread by the start jitter."""
        if states is not None:
            for check_id in check_ids:
                self._restored.pop(check_id, None)
            self._restored.update(states)
        checks = [entry.item.check for entry in self.schedule]
        checks += [self._collected[c] for c in check_ids if c in self._collected and self.schedule.get(c) is None]
        self.watch(checks, asyncio.get_running_loop().time(), at_once=check_ids if at_once else ())
        self.wake()

    def others_seen(self, states: dict[str, StateRecord]) -> None:
        """The stored states of the checks other watchers of the cluster run (``states``: by
        check id; a check with none has not run yet)."""
        others: dict[str, Watched] = {}
        for check_id, check in self._collected.items():
            if self.schedule.get(check_id) is not None:
                continue
            watched = self.others.get(check_id)
            if watched is None or watched.check is not check:
                windows = windows_for(check_id, self.settings.maintenance)
                state = CheckState(check_id, self.rules_for(check))
                watched = Watched(check, state, CheckSeries(check, windows, runbook_base_url(self.config)), windows)
            record = states.get(check_id)
            # unchanged since the last read (a state is stored with the start of the run that made it): kept
            if record is not None and (record.updated_at is None or record.updated_at != watched.state.updated_at):
                watched.state.restore(record)
            others[check_id] = watched
        self.others = others

    def view_asked(self) -> float:
        return self._view_asked

    def _asked(self) -> None:
        """The API or the status page asks for the cluster's checks: after a quiet while, the
        others' states are read at once (``watch.cluster.VIEW_IDLE``)."""
        now = time.monotonic()
        if self.cluster is not None and now - self._view_asked > VIEW_IDLE:
            self.cluster.view_now()
        self._view_asked = now

    def find(self, check_id: str) -> tuple[Watched, bool] | None:
        """A check of the cluster by id, and whether this watcher runs it; ``None`` if unknown."""
        self._asked()
        entry = self.schedule.get(check_id)
        if entry is not None:
            return entry.item, True
        watched = self.others.get(check_id)
        return None if watched is None else (watched, False)

    def view(self) -> list[Watched]:
        """Every check, in id order: this watcher's own as they are now, and in a cluster the
        others' as stored (refreshed every few seconds while asked for)."""
        self._asked()
        found = {entry.key: entry.item for entry in self.schedule}
        for check_id, watched in self.others.items():
            found.setdefault(check_id, watched)
        return [found[check_id] for check_id in sorted(found)]

    def disown(self, check_ids: Collected[str]) -> None:
        """Stop running these checks (another watcher of the cluster owns them now): their series go too."""
        for check_id in check_ids:
            entry = self.schedule.remove(check_id)
            if entry is not None and self.cluster is not None:
                self.others[check_id] = entry.item  # shown as last seen here until the next read of the store
        if check_ids:
            self.writer.write_soon()  # their new owner goes on from their stored states

    def _collected_later(self, collection: Collection) -> None:
        """A replaced worker found files that no longer import: the view changes."""
        self._apply(collection)

    # -- running -------------------------------------------------------------------------

    async def _scheduler_loop(self) -> None:
        loop = asyncio.get_running_loop()
        schedule = self.schedule
        cluster = self.cluster
        while not self._stopping:
            if self._reload:
                self._reload = False
                await self.reload()
            now = loop.time()
            fenced = cluster is not None and not cluster.may_run()
            render_now, wall = self.scrapes.render_now, time.time()
            # thousands due at once: a ``turns.Step`` at a time, a scrape or a result in between.
            # A step of a fixed 64 runs starved the scheduler behind the workers' readers past
            # capacity: slots came due a whole interval late (counted since as late skips).
            step = turns.Step()
            for handled, (entry, due, missed) in enumerate(schedule.pop_due(now + _COALESCE), 1):
                if not handled % turns.CLOCK_EVERY and step.over():
                    await step.turn()
                if fenced or (cluster is not None and cluster.paused and cluster.paused_now(entry.key)):
                    continue  # no valid lease: another watcher may own it by now (watch.cluster)
                if entry.running:
                    skipped = 1 + missed
                    entry.overlaps += skipped
                    series = entry.item.series
                    series.overlap(skipped)
                    if render_now(entry.interval):
                        series.chunks(wall)  # the time only says whether a window or a silence holds
                    if entry.waiting:
                        self._past_capacity(now, skipped)
                    continue
                if missed:  # this watcher itself was a whole interval late: those slots passed unrun
                    self._late(missed, loop.time() - due)
                entry.running = True
                self._submit(entry, due)
            if self._late_unsaid[0] and now - self._late_said >= _LATE_NOTICE_EVERY:
                self._say_late(now)
            if self.last_capacity_skip is not None and now - self.last_capacity_skip >= m.PAST_CAPACITY_FOR:
                self.last_capacity_skip = None
                self.say(
                    f"back within capacity: for {m.PAST_CAPACITY_FOR:g}s no run waited a whole interval for a slot,"
                    " nor was one in flight a whole interval longer than it ran"
                )
            when = schedule.next_due()
            await self._sleep_until(loop, loop.time() + 3600 if when is None else when)

    def _past_capacity(self, now: float, skipped: int = 1, *, in_flight: bool = False) -> None:
        """Slots skipped for the lack of capacity: runs waited for a concurrency slot, or
        (``in_flight``) a whole interval longer than they ran once handed to their worker."""
        self.capacity_skips += skipped
        if self.last_capacity_skip is None:
            metric = m.PAST_CAPACITY.name
            if in_flight:  # slots to spare: more of them would not help
                line = (
                    "runs in flight a whole interval longer than they run (waiting to start in a busy worker, or for"
                    f" this watcher to take their results), and their next slots are skipped ({metric}); add"
                    " --workers if the workers are busy, split the checks among watchers (a cluster) if this"
                    " watcher's core is, or run the checks less often"
                )
            else:
                line = (
                    "runs wait a whole interval for a concurrency slot, and their next slots are skipped"
                    f" ({metric}); raise --concurrency (now {self.config.get('concurrency')}) or --workers, or run"
                    " the checks less often"
                )
            self.say(f"past capacity: {line}")
        self.last_capacity_skip = now

    def _late(self, missed: int, late: float) -> None:
        """``missed`` slots of a check passed while this watcher was ``late`` seconds late to hand
        its run out: counted, and kept for the next log line. Not past capacity by itself: a
        one-off stall (a reload, the process stopped) makes it too, and a watcher whose core is
        saturated is past capacity by its runs in flight."""
        self.late_skips += missed
        slots, checks, latest = self._late_unsaid
        self._late_unsaid = (slots + missed, checks + 1, max(latest, late))

    def _say_late(self, now: float) -> None:
        """The late slots since the last such line, at most once in ``_LATE_NOTICE_EVERY``."""
        slots, checks, latest = self._late_unsaid
        self._late_said, self._late_unsaid = now, (0, 0, 0.0)
        self.say(
            f"{slots} slot{'s' if slots != 1 else ''} of {checks} check{'s' if checks != 1 else ''} passed while"
            f" this watcher was late to hand their runs out (by up to {latest:.2f}s); each check's run went out"
            f" once, late, and the slots between are counted in {m.LATE_SKIPS.name}, not made up (its event loop"
            " was held, the process stopped or a reload paused it; if it keeps coming, this watcher's core is"
            " saturated: split the checks among watchers)"
        )

    def past_capacity(self) -> bool:
        """Whether a slot was skipped in the last ``m.PAST_CAPACITY_FOR`` because its run was still
        waiting: for a concurrency slot, or in flight a whole interval longer than it ran."""
        last = self.last_capacity_skip
        return last is not None and asyncio.get_running_loop().time() - last < m.PAST_CAPACITY_FOR

    async def _sleep_until(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if when <= loop.time() or self._stopping or self._reload:
            return
        waiter = self._waiter = loop.create_future()
        handle = loop.call_at(when, _wake, waiter)
        try:
            await waiter
        finally:
            handle.cancel()
            self._waiter = None

    def wake(self) -> None:
        if self._waiter is not None:
            _wake(self._waiter)

    async def run_now(self, check_id: str) -> Result | None:
        """Run one check now, outside its schedule (``POST /api/v1/checks/{check}/run``), and
        account for its result as for any run; ``None`` when it is running already.
        ``KeyError`` for a check not watched."""
        entry = self.schedule.get(check_id)
        if entry is None:
            raise KeyError(check_id)
        if entry.running:
            return None
        entry.running = True
        done: asyncio.Future[Result | None] = asyncio.get_running_loop().create_future()
        self._submit(entry, asyncio.get_running_loop().time(), done)
        return await done

    def _submit(self, entry: Entry[Watched], due: float, done: asyncio.Future[Result | None] | None = None) -> None:
        """Hand a run of ``entry`` (due at ``due``, loop time) to its worker if a concurrency
        slot is free, else queue it for the next slot; ``done`` gets its result (``None``
        when it did not run). ``entry.running`` is set already. Once stopping, nothing starts."""
        if self._stopping:
            _not_run(entry, done)
            return
        worker = self.pool.worker_for(entry.item.check.id)
        if worker.state != "ready":
            # a worker being replaced holds no concurrency slot: wait for it without one
            task = asyncio.get_running_loop().create_task(self._when_ready(entry, due, done))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self.in_progress += 1
        if self._free > 0 and not self._queue:
            self._start(entry, due, done, worker)
        else:
            entry.waiting = True
            self._queue.append((entry, due, done))

    async def _when_ready(self, entry: Entry[Watched], due: float, done: asyncio.Future[Result | None] | None) -> None:
        try:
            await self.pool.ready_for(entry.item.check.id)
        except BaseException:  # stopping
            _not_run(entry, done)
            raise
        self._submit(entry, due, done)

    def _start(
        self, entry: Entry[Watched], due: float, done: asyncio.Future[Result | None] | None, worker: WorkerProcess
    ) -> None:
        """Hand the run to ``worker``: the one ``entry``'s check runs in, and ready."""
        loop = asyncio.get_running_loop()
        entry.waiting = False
        check = entry.item.check
        due_wall = due + (time.time() - loop.time())
        try:
            run = self.pool.run(
                worker,
                check.id,
                check.timeout,
                functools.partial(self._finished, entry, due_wall, entry.overlaps, done),
            )
        except BaseException:  # no run, so no slot taken: the watcher must not lose one for good
            self.in_progress -= 1
            _not_run(entry, done)
            raise
        self._free -= 1
        self._inflight.add(run)

    def _finished(
        self,
        entry: Entry[Watched],
        due_wall: float,
        overlaps: int,
        done: asyncio.Future[Result | None] | None,
        run: Run,
        outcome: RunOutcome | None,
    ) -> None:
        """A run ended (``outcome``; ``None``: it was cancelled): account for it, free its
        slot, start the next waiting. ``overlaps``: its check's skipped slots when it was
        handed to its worker. Called from where the run was settled (a worker's message,
        its death, a stop), so nothing may escape."""
        self._inflight.discard(run)
        self._free += 1
        result: Result | None = None
        try:
            if outcome is not None:
                result, rebuilt, whole = outcome
                self._account(entry, due_wall, result, rebuilt, whole)
                self._in_flight_for(entry, run, result, overlaps)
        except Exception:  # a plugin's hook failed: say so, keep watching
            self.error(f"internal error after running {entry.item.check.id}:\n{traceback.format_exc()}")
        finally:
            entry.running = entry.waiting = False
            self.in_progress -= 1
            if done is not None and not done.done():
                done.set_result(result)
            if not self._inflight and self._no_runs is not None and not self._no_runs.done():
                self._no_runs.set_result(None)
            try:
                self._start_waiting()
            except Exception:
                self.error(f"internal error starting the runs waiting for a slot:\n{traceback.format_exc()}")

    def _start_waiting(self) -> None:
        """Give the free slots to the runs waiting for one, first come first served."""
        queue, pool = self._queue, self.pool
        while self._free > 0 and queue and not self._stopping:
            entry, due, done = queue.popleft()
            worker = pool.worker_for(entry.item.check.id)
            if worker.state != "ready":
                # its worker went away while it waited: it waits for the new one without a slot
                self.in_progress -= 1
                entry.waiting = False
                self._submit(entry, due, done)
                continue
            self._start(entry, due, done, worker)

    def _in_flight_for(self, entry: Entry[Watched], run: Run, result: Result, overlaps: int) -> None:
        """Past capacity however many concurrency slots are free: a run in flight a whole
        interval longer than it ran (it waited to start in its worker, or its result waited
        for this watcher) counts the slots its check skipped meanwhile (``overlaps``: the
        check's count when the run was handed over), at most one per interval waited."""
        skipped = entry.overlaps - overlaps
        if not skipped or not run.sent_at or self.schedule.get(entry.key) is not entry:
            return  # nothing skipped; settled before a worker had it; no longer this watcher's
        waited = time.monotonic() - run.sent_at - result.duration_s
        interval = entry.interval
        if waited >= interval:
            self._past_capacity(
                asyncio.get_running_loop().time(), min(skipped, int(waited // interval)), in_flight=True
            )

    def _account(
        self, entry: Entry[Watched], due_wall: float, result: Result, rebuilt: list[str], whole: str | None
    ) -> None:
        watched = entry.item
        check = watched.check
        self.lateness.observe(max(result.started_at - due_wall, 0.0))
        if rebuilt:
            self.fixture_rebuilds.update(rebuilt)
        if whole is not None and self._log_whole(check.id):
            self.say(f"{check.id}: the whole message ({len(whole):,} characters; cut in the store): {whole}")
        if result.extra.get("loop_blocked"):
            self.loop_interrupts += 1
        if self.schedule.get(check.id) is not entry:
            # handed to another watcher of the cluster (or dropped by a reload) while it ran: the
            # new owner went on from the stored state, which this result must not overwrite
            self.writer.add(StoredResult.of(result, time.time(), interval_s=check.interval, silenced=False))
            return
        self._report_result(result=result)
        self.record(watched, result)

    def _drop_queue(self) -> None:
        """Stopping: the runs still waiting for a slot will not start."""
        while self._queue:
            entry, _due, done = self._queue.popleft()
            self.in_progress -= 1
            _not_run(entry, done)

    def record(self, watched: Watched, result: Result) -> None:
        """Account for one result: series, state, store, and the state-change hook."""
        self.runs += 1
        series = watched.series
        series.observe(result)
        state = watched.state
        silent = self.is_silenced(watched, result.started_at)
        change = state.observe(
            result.outcome, result.started_at, silenced=silent, message=result.message, trace_id=result.trace_id
        )
        series.set_state(m.STATE_VALUES[state.state.value], state.consecutive_failures)
        if self.scrapes.render_now(watched.check.interval):
            series.chunks(result.started_at)
        self.writer.add(StoredResult.of(result, time.time(), interval_s=watched.check.interval, silenced=silent))
        self.writer.add_state(state.check_id, state)
        if change is not None:
            self.changed(change, watched.check)

    def is_silenced(self, watched: Watched, at: float) -> bool:
        """Whether a maintenance window or a silence (``silencers``: the API's) holds the check at ``at``."""
        if watched.windows and silenced(watched.windows, at):
            return True
        for silencer in self.silencers:  # once a run: a loop is cheaper than any() over a generator
            if silencer(watched.check, at):
                return True
        return False

    def changed(self, change: StateChange, check: CheckInfo | None) -> None:
        self.writer.add(change)
        self.config.hook.fraiseql_check_state_changed(change=change, check=check)
        if check is not None:  # conftests implement the hook too; they live in the check's worker
            self.pool.worker_for(check.id).send(("changed", change))

    def _log_whole(self, check_id: str) -> bool:
        """A cut message is logged whole once per check in ``_WHOLE_MESSAGE_EVERY``."""
        now = time.monotonic()
        if now - self._whole_logged.get(check_id, -_WHOLE_MESSAGE_EVERY) < _WHOLE_MESSAGE_EVERY:
            return False
        self._whole_logged[check_id] = now
        return True

    def _blocked(self, check_id: str | None, seconds: float) -> None:
        self.longest_hold = max(self.longest_hold, seconds)
        who = check_id or "code outside any check (a task left running?)"
        self.held[check_id or ""] += 1
        now = time.monotonic()
        if now - self._held_noticed.get(who, -_BLOCK_NOTICE_EVERY) >= _BLOCK_NOTICE_EVERY:
            self._held_noticed[who] = now
            self.say(
                f"{who} held the event loop of its worker for {seconds:.2f}s (CPU work or a blocking call in an"
                " async def delays the checks beside it; use asyncio.to_thread or a plain def)"
            )

    def _teardown_failed(self, result: Result) -> None:
        self._report_result(result=result)

    # -- reload and stop ---------------------------------------------------------------

    def request_reload(self) -> None:
        self._reload = True
        self.wake()

    def request_stop(self) -> None:
        if self._stopping:  # the second signal: stop waiting for running checks
            self.say("stopping now: cancelling running checks")
            self.pool.cancel()
            for task in list(self._tasks):
                task.cancel()
            for run in list(self._inflight):
                run.finish(None)
            return
        self._stopping = True
        self.say("stopping: no new runs; waiting for running checks (a second signal cancels them)")
        self.pool.stopping = True
        self.pool.drop_waiting()
        self._drop_queue()
        self.wake()

    async def reload(self) -> None:
        """SIGHUP: re-read the config file (``reread_config``), then have the workers collect again."""
        heap.unfreeze()
        try:
            config_taken = self.reread_config()
            found = await self.pool.reload()
            if isinstance(found, str):
                self.reloads["failure"] += 1
                self.error(f"reload failed, still running the previous checks: {found}")
                if config_taken:  # the new windows and rules still apply to the checks running
                    self.watch([entry.item.check for entry in self.schedule], asyncio.get_running_loop().time())
                return
            self.reloads["failure" if found.errors or not config_taken else "success"] += 1
            self._apply(found)
            if found.kept:
                self.say(
                    f"reloaded; {len(found.kept)} checks keep their previous version (their file does not collect)"
                )
            else:
                self.say(f"reloaded: {len(found.checks)} checks")
        finally:
            heap.freeze()

    def reread_config(self) -> bool:
        """Read the config file again and apply what can change while running (see
        ``watch.config_reload``), saying what changed; a file that does not read or
        validate is refused (one error line) and the previous config stays whole.
        ``False`` when refused."""
        from fraiseql_checks.config import UsageError, locate_config_file
        from fraiseql_checks.watch.config_reload import compare, describe
        from fraiseql_checks.watch.plugin import settings_of

        config = self.config
        if config.config_file is None:  # none at start: one made since would move the root folder
            try:
                found = locate_config_file(config.option, config.invocation_dir)
            except UsageError as exc:
                self.error(f"config not reloaded: {exc}")
                return False
            if found is not None:
                self.warn(f"config {found.name}: was not there at start: needs a restart")
            return True
        name = config.relpath(config.config_file)
        try:
            reread = compare(config, config.reread())
        except UsageError as exc:
            self.error(f"config not reloaded, still running on the previous one: {exc}")
            return False
        if reread.restart:
            self.warn(f"config {name}: needs a restart: {', '.join(reread.restart)} (the previous values stay)")
        for change in reread.applied:
            self.say(f"config {name}: {describe(change, config)}")
        if not reread.applied and not reread.restart:
            self.say(f"config {name}: no change")
        config.take(reread.config, reread.taken)
        settings = settings_of(config)  # the settings kept for a restart are still the old ones
        self.settings = dataclasses.replace(
            self.settings,
            start_jitter=settings.start_jitter,
            failure_threshold=settings.failure_threshold,
            success_threshold=settings.success_threshold,
            flap_changes=settings.flap_changes,
            flap_window=settings.flap_window,
            maintenance=settings.maintenance,
            worker_memory_limit=settings.worker_memory_limit,
            import_timeout=settings.import_timeout,
        )
        self.schedule.spread = self.settings.start_jitter
        self.pool.memory_limit = self.settings.worker_memory_limit
        self.pool.import_timeout = self.settings.import_timeout
        self.pool.file_values = dict(config.file_values)
        return True

    def _store_collect_errors(self) -> None:
        now = time.time()
        mask = self.config.mask
        for error in self.session.collect_errors:
            result = Result(error.id, error.id, Outcome.ERROR, mask(error.message), started_at=now, kind="collect")
            self.writer.add(StoredResult.of(result, now))

    # -- the whole life ------------------------------------------------------------------

    async def run(self) -> None:
        """Watch until SIGTERM or SIGINT; the caller's loop must be the running one.

        ``NothingToWatch`` when the workers find no check and no broken file."""
        loop = asyncio.get_running_loop()
        installed = []
        if sys.platform != "win32":
            for signum, handler in (
                (signal.SIGTERM, self.request_stop),
                (signal.SIGINT, self.request_stop),
                (signal.SIGHUP, self.request_reload),
            ):
                loop.add_signal_handler(signum, handler)
                installed.append(signum)
        writer_task: asyncio.Task[None] | None = None
        try:
            await self.writer.open()
            restored = await self.writer.load_states() if self.writer.up else None
            if restored is None:
                self.warn("the checks' states could not be read from the result store; they start from unknown")
            self._restored = dict(restored or {})
            await self.server.start(self.settings.host, self.settings.port)
            writer_task = loop.create_task(self.writer.run())
            collection = await self.pool.start()
            if not collection.checks and not collection.errors:
                raise NothingToWatch
            self._apply(collection)
            if self.cluster is not None:
                await self.cluster.start()
            for awaitable in self.config.hook.fraiseql_watch_start(watcher=self):
                if awaitable is not None:
                    await awaitable
            self.collected = True
            heap.freeze()
            workers, count = self.settings.workers, len(self.schedule)
            self.say(
                f"watching {count} check{'s' if count != 1 else ''}"
                f" in {workers} worker process{'es' if workers != 1 else ''};"
                f" metrics on http://{self.server.address}/metrics;"
                f" results to {self.config.mask(self.writer.store.url)}"
            )
            self._scheduler = loop.create_task(self._scheduler_loop())
            await self._scheduler
            if self.cluster is not None:
                await self.cluster.stop()
            running: list[asyncio.Future[Any]] = [*self._tasks]  # the queue went at the stop
            if self._inflight:
                self._no_runs = loop.create_future()
                running.append(self._no_runs)
            if running:
                await asyncio.wait(running, timeout=self._max_timeout + 5)
            await self.pool.stop(self._max_timeout + 5)
            for task in self._tasks:
                task.cancel()
            for run in list(self._inflight):
                run.finish(None)
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for awaitable in self.config.hook.fraiseql_watch_stop(watcher=self):
                if awaitable is not None:
                    await awaitable
            self.totals = await self.writer.stop(self.settings.flush_timeout)
            if self.cluster is not None:  # after the flush: the next owner reads what this one wrote
                await self.cluster.leave()
            if self.totals.not_written:
                self.say(
                    f"the result store is unavailable: {self.totals.not_written} results, states and state changes"
                    f" were not written ({self.config.mask(self.writer.last_error)})"
                )
        finally:
            if self.cluster is not None:
                await self.cluster.stop()
            self.pool.kill_all()
            if writer_task is not None and not writer_task.done():
                writer_task.cancel()
                await asyncio.gather(writer_task, return_exceptions=True)
            await self.server.close()
            await self.writer.store.close()
            for signum in installed:
                loop.remove_signal_handler(signum)


def _not_run(entry: Entry[Watched], done: asyncio.Future[Result | None] | None) -> None:
    """A run that will not start (stopping): its check is free again, and ``done`` says it did not run."""
    entry.running = entry.waiting = False
    if done is not None and not done.done():
        done.set_result(None)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
