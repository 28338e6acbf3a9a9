"""Watch mode: every check on its own schedule, for as long as the process lives.

One event loop runs the scheduler, the checks (through the shared ``Runner``),
the HTTP exporter and the store's writer. Each run's result updates the check's
series and state; state changes go to the ``fraiseql_check_state_changed`` hook
and, with every result, to the store. Session and module fixtures live as long
as the watcher, and are set up again when they fail or lose their connection.
SIGHUP re-collects the checks, SIGTERM and SIGINT stop the watcher cleanly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import re
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from fraiseql_checks import __version__
from fraiseql_checks import metrics as m
from fraiseql_checks._fixture_lifecycle import FixtureError, ScopeState
from fraiseql_checks.fixtures import FixtureLookupError, Scope
from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.runner import Runner
from fraiseql_checks.stores import Store, StoredResult
from fraiseql_checks.stores.buffer import BufferedWriter
from fraiseql_checks.watch import exposition
from fraiseql_checks.watch.exposition import CheckSeries, Histogram
from fraiseql_checks.watch.http import HTTPServer, Page
from fraiseql_checks.watch.maintenance import MaintenanceWindow, silenced, windows_for
from fraiseql_checks.watch.reload import recollect
from fraiseql_checks.watch.schedule import Entry, Schedule
from fraiseql_checks.watch.state import CheckState, Rules, StateChange

if TYPE_CHECKING:
    from fraiseql_checks.checks import Check
    from fraiseql_checks.session import Session


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


class Watched:
    """One check under watch: the check, its state and its series."""

    __slots__ = ("check", "series", "state", "windows")

    def __init__(self, check: Check, state: CheckState, series: CheckSeries, windows: tuple[MaintenanceWindow, ...]):
        self.check = check
        self.state = state
        self.series = series
        self.windows = windows


class WatchRunner(Runner):
    """The shared runner, keeping each failed run's exception for the fixture logic."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.errors: dict[asyncio.Task[Any], BaseException] = {}

    def _classify(self, exc: BaseException) -> tuple[Outcome, str, str]:
        task = asyncio.current_task()
        if task is not None:
            self.errors[task] = exc
        return super()._classify(exc)


#: Runs due within this much of each other start in one wake-up of the scheduler: with
#: thousands of checks, waking for each due time alone costs more than the checks.
_COALESCE = 0.002
#: A check that runs less often than Prometheus scrapes has its /metrics lines rendered
#: right after each run (the same work, off the scrape's path); a faster one renders
#: at the next scrape, once for all the runs in between.
_RENDER_AFTER_RUN = 10.0
_CONNECTION_WORDS = re.compile(r"Connect|Connection|Interface|Transport|Closed|Network|Protocol|Unavailable")


def looks_like_lost_connection(error: BaseException) -> bool:
    """An ``OSError``, or an error whose class (or cause) names a connection problem,
    as client libraries name them (asyncpg, redis, httpx, aiohttp)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            return True
        if any(_CONNECTION_WORDS.search(cls.__name__) for cls in type(current).__mro__[:-2]):
            return True
        current = current.__cause__ or current.__context__
    return False


class Watcher:
    """Runs the session's checks on their intervals until stopped."""

    def __init__(self, session: Session, store: Store, settings: WatchSettings, say: Callable[[str], None]) -> None:
        self.session = session
        self.config = session.config
        self.settings = settings
        mask = self.config.mask
        self.say: Callable[[str], None] = lambda line: say(mask(line))  # a store URL may hold a password
        self.writer = BufferedWriter(
            store,
            settings.store_buffer,
            retention=settings.retention,
            rollup_retention=settings.rollup_retention,
            warn=self.say,
        )
        self.server = HTTPServer()
        self.server.routes.update(
            {"/metrics": self.metrics_page, "/healthz": self.health_page, "/readyz": self.ready_page}
        )
        self.schedule: Schedule[Watched] = Schedule(settings.start_jitter)
        self.lateness = Histogram(m.LATENESS_BUCKETS)
        self.in_progress = 0
        self.runs = 0
        self.collection_errors = len(session.collect_errors)
        self.reloads: Counter[str] = Counter({"success": 0, "failure": 0})
        self.fixture_rebuilds: Counter[str] = Counter()
        self.collected = False
        self.started = time.time()
        self.runner: WatchRunner | None = None
        self._process = psutil.Process(os.getpid())
        self._semaphore = asyncio.Semaphore(self.config.get("concurrency"))
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._retired: list[ScopeState] = []
        self._waiter: asyncio.Future[None] | None = None
        self._stopping = False
        self._reload = False
        self._scheduler: asyncio.Task[None] | None = None
        self._max_timeout = self.config.get("timeout")
        #: More ``/metrics`` families from plugins (SLO gauges): each returns its lines.
        self.extra_metrics: list[Callable[[], Iterable[str]]] = []

    # -- checks in and out of the schedule ----------------------------------------------

    def rules_for(self, check: Check) -> Rules:
        spec, settings = check.spec, self.settings
        return Rules(
            failure_threshold=spec.failure_threshold or settings.failure_threshold,
            success_threshold=spec.success_threshold or settings.success_threshold,
            failures_within=spec.failures_within,
            flap_changes=settings.flap_changes,
            flap_window=settings.flap_window,
        )

    def watch(self, checks: list[Check], now: float) -> None:
        """Schedule new checks, update known ones in place, drop those that are gone."""
        wanted = {check.id: check for check in checks}
        for gone in [key for key in (e.key for e in self.schedule) if key not in wanted]:
            self.schedule.remove(gone)
        for check_id, check in wanted.items():
            windows = windows_for(check_id, self.settings.maintenance)
            entry = self.schedule.get(check_id)
            if entry is None:
                watched = Watched(
                    check, CheckState(check_id, self.rules_for(check)), CheckSeries(check, windows), windows
                )
                self.schedule.add(check_id, watched, check.interval, now)
            else:
                watched = entry.item
                watched.check, watched.windows = check, windows
                watched.state.update_rules(self.rules_for(check))
                watched.series.describe(check, windows)
                self.schedule.update(check_id, watched, check.interval, now)
            self._max_timeout = max(self._max_timeout, check.timeout)

    # -- running -------------------------------------------------------------------------

    async def _scheduler_loop(self) -> None:
        loop = asyncio.get_running_loop()
        schedule = self.schedule
        while not self._stopping:
            if self._reload:
                self._reload = False
                await self.reload()
            now = loop.time()
            for entry, due in schedule.pop_due(now + _COALESCE):
                if entry.running:
                    entry.overlaps += 1
                    entry.item.series.overlap()
                    continue
                entry.running = True
                self.in_progress += 1
                task = loop.create_task(self._run(entry, due))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            when = schedule.next_due()
            await self._sleep_until(loop, loop.time() + 3600 if when is None else when)

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

    async def _run(self, entry: Entry[Watched], due: float) -> None:
        runner = self.runner
        assert runner is not None
        try:
            async with self._semaphore:
                self.lateness.observe(max(asyncio.get_running_loop().time() - due, 0.0))
                watched = entry.item
                check = watched.check
                task = asyncio.current_task()
                result = await runner.run_check(check)
                error = runner.errors.pop(task, None) if task is not None else None
                try:
                    if error is not None and result.outcome is Outcome.ERROR:
                        self._repair_fixtures(check, error)
                    self.session.report(result, check)
                    self.record(watched, result)
                except Exception:  # a plugin's hook failed: say so, keep watching
                    self.say(f"internal error after running {check.id}:\n{traceback.format_exc()}")
        finally:
            entry.running = False
            self.in_progress -= 1

    def record(self, watched: Watched, result: Result) -> None:
        """Account for one result: series, state, store, and the state-change hook."""
        self.runs += 1
        series = watched.series
        series.observe(result)
        state = watched.state
        silent = bool(watched.windows) and silenced(watched.windows, result.started_at)
        change = state.observe(
            result.outcome, result.started_at, silenced=silent, message=result.message, trace_id=result.trace_id
        )
        series.set_state(m.STATE_VALUES[state.state.value], state.consecutive_failures)
        if watched.check.interval >= _RENDER_AFTER_RUN:
            series.chunks(result.started_at)
        self.writer.add(StoredResult.of(result, time.time(), interval_s=watched.check.interval, silenced=silent))
        if change is not None:
            self.changed(change, watched.check)

    def changed(self, change: StateChange, check: Check | None) -> None:
        self.writer.add(change)
        self.config.hook.fraiseql_check_state_changed(change=change, check=check)

    def _repair_fixtures(self, check: Check, error: BaseException) -> None:
        """Drop the module and session values a failed run leaves unusable."""
        try:
            closure = self.session.fixtures.closure(check.path, check.argnames)
        except FixtureLookupError:
            return
        wide = [d for d in closure.order if d.scope is not Scope.CHECK]
        if not wide:
            return
        assert self.runner is not None
        lifecycle = self.runner.fixtures
        if isinstance(error, FixtureError):  # a failed set-up: try again next time
            dropped, retired = lifecycle.drop(wide, check.path, failed_only=True)
        elif self.config.hook.fraiseql_fixture_broken(error=error):
            dropped, retired = lifecycle.drop(wide, check.path, failed_only=False)
        else:
            return
        self.fixture_rebuilds.update(d.name for d in dropped)
        if retired.teardowns:
            self._retire(retired)

    def _retire(self, state: ScopeState) -> None:
        """Tear dropped values down once the runs that may still use them are over."""
        self._retired.append(state)
        task = asyncio.get_running_loop().create_task(self._teardown_retired(state, self._max_timeout))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _teardown_retired(self, state: ScopeState, delay: float) -> None:
        await asyncio.sleep(delay)
        if state in self._retired:
            self._retired.remove(state)
            assert self.runner is not None
            await self.runner.fixtures.teardown(state, self._max_timeout)

    # -- reload and stop ---------------------------------------------------------------

    def request_reload(self) -> None:
        self._reload = True
        self.wake()

    def request_stop(self) -> None:
        if self._stopping:  # the second signal: stop waiting for running checks
            self.say("stopping now: cancelling running checks")
            for task in list(self._tasks):
                task.cancel()
            return
        self._stopping = True
        self.say("stopping: no new runs; waiting for running checks (a second signal cancels them)")
        self.wake()

    async def reload(self) -> None:
        gc.unfreeze()  # the old modules may become garbage now
        try:
            self._reload_checks()
        finally:
            _freeze_heap()

    def _reload_checks(self) -> None:
        session = self.session
        previous = [entry.item.check for entry in self.schedule]
        try:
            found = recollect(session, previous)
        except Exception as exc:
            self.reloads["failure"] += 1
            self.say(f"reload failed, still running the previous checks: {type(exc).__name__}: {exc}")
            return
        self.reloads["failure" if found.errors else "success"] += 1
        session.checks, session.collect_errors = found.checks, found.errors
        self.collection_errors = len(found.errors)
        self.watch(found.checks, asyncio.get_running_loop().time())
        self.config.hook.fraiseql_collection_finish(session=session)
        session.report_collect_errors()
        self._store_collect_errors()
        if found.kept:
            self.say(f"reloaded; {len(found.kept)} checks keep their previous version (their file does not collect)")
        else:
            self.say(f"reloaded: {len(found.checks)} checks")
        assert self.runner is not None
        lifecycle = self.runner.fixtures
        retired = ScopeState()
        for path in found.reimported:  # their module-scoped values came from the old module
            state = lifecycle.modules.pop(path, None)
            if state is not None:
                retired.teardowns.extend(state.teardowns)
        _, stale = lifecycle.drop(found.retired, Path(), failed_only=False)
        retired.teardowns.extend(stale.teardowns)
        if retired.teardowns:
            self._retire(retired)

    def _store_collect_errors(self) -> None:
        now = time.time()
        for error in self.session.collect_errors:
            result = Result(error.id, error.id, Outcome.ERROR, error.message, started_at=now, kind="collect")
            self.writer.add(StoredResult.of(result, now))

    # -- the whole life ------------------------------------------------------------------

    async def run(self) -> None:
        """Watch until SIGTERM or SIGINT; the caller's loop must be the running one."""
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
            runner = self.runner = WatchRunner(self.session)
            async with runner:
                await self.writer.open()
                await self.server.start(self.settings.host, self.settings.port)
                for awaitable in self.config.hook.fraiseql_watch_start(watcher=self):
                    if awaitable is not None:
                        await awaitable
                writer_task = loop.create_task(self.writer.run())
                self.watch(self.session.checks, loop.time())
                self._store_collect_errors()
                self.collected = True
                _freeze_heap()
                self.say(
                    f"watching {len(self.schedule)} checks; metrics on http://{self.server.address}/metrics;"
                    f" results to {self.config.mask(self.writer.store.url)}"
                )
                self._scheduler = loop.create_task(self._scheduler_loop())
                await self._scheduler
                if self._tasks:
                    await asyncio.wait(list(self._tasks), timeout=self._max_timeout + 5)
                for task in [*self._tasks, *self._background]:
                    task.cancel()
                await asyncio.gather(*self._tasks, *self._background, return_exceptions=True)
                for state in self._retired:
                    await runner.fixtures.teardown(state, self._max_timeout)
            if writer_task is not None:
                writer_task.cancel()
                await asyncio.gather(writer_task, return_exceptions=True)
            left = await self.writer.flush(self.settings.flush_timeout)
            if left:
                self.say(f"the result store is unavailable: {left} results and state changes were not written")
            for awaitable in self.config.hook.fraiseql_watch_stop(watcher=self):
                if awaitable is not None:
                    await awaitable
        finally:
            if writer_task is not None and not writer_task.done():
                writer_task.cancel()
            await self.server.close()
            await self.writer.store.close()
            for signum in installed:
                loop.remove_signal_handler(signum)

    # -- what the HTTP server shows ------------------------------------------------------

    def metrics_page(self) -> Page:
        body = exposition.render((entry.item.series for entry in self.schedule), time.time(), self._own_lines)
        return Page(200, body, exposition.CONTENT_TYPE)

    def _own_lines(self) -> Iterator[str]:
        assert self.runner is not None
        writer, watchdog = self.writer, self.runner.watchdog
        yield exposition.header(m.LATENESS) + self.lateness.fill(exposition.histogram_template(m.LATENESS, ""))
        yield exposition.simple(m.IN_PROGRESS, self.in_progress)
        yield exposition.simple(m.SCHEDULED, len(self.schedule))
        yield exposition.simple(m.COLLECTION_ERRORS, self.collection_errors)
        yield exposition.labelled(m.RELOADS, self.reloads)
        yield exposition.labelled(m.FIXTURE_REBUILDS, self.fixture_rebuilds)
        yield exposition.simple(m.LOOP_BLOCKED, watchdog.interrupted)
        yield exposition.simple(m.LONGEST_BLOCK, watchdog.longest_block)
        yield exposition.simple(m.STORE_BACKLOG, writer.backlog)
        yield exposition.simple(m.STORE_DROPPED, writer.dropped)
        yield exposition.simple(m.STORE_WRITTEN, writer.written)
        yield exposition.simple(m.STORE_ERRORS, writer.errors)
        yield exposition.simple(m.STORE_UP, int(writer.up))
        yield exposition.labelled(m.BUILD_INFO, {__version__: 1})
        yield exposition.simple(m.START_TIME, self.started)
        cpu = self._process.cpu_times()
        yield exposition.simple(m.PROCESS_CPU, cpu.user + cpu.system)
        yield exposition.simple(m.PROCESS_RSS, self._process.memory_info().rss)
        for extra in self.extra_metrics:
            yield from extra()

    def health_page(self) -> Page:
        scheduler = self._scheduler
        if scheduler is not None and scheduler.done() and not self._stopping:
            return Page(503, b"the scheduler stopped\n")
        return Page(200, b"ok\n")

    def ready_page(self) -> Page:
        problems = []
        if not self.collected:
            problems.append("checks are not collected yet")
        if not self.writer.up:
            problems.append(f"the result store is not writable: {self.config.mask(self.writer.last_error)}")
        if self._stopping:
            problems.append("stopping")
        if problems:
            return Page(503, ("\n".join(problems) + "\n").encode())
        return Page(200, b"ready\n")


def _freeze_heap() -> None:
    """Keep the garbage collector off what lives as long as the watcher (the checks,
    their modules, the series): a full collection over thousands of checks would hold
    the loop for a noticeable time, again and again, for nothing."""
    gc.collect()
    gc.freeze()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
