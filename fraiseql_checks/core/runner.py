"""Running checks: one asyncio loop, a concurrency cap, a timeout per check.

``Runner.run_check`` runs one check on a task and returns its result;
``Runner.start_sync`` runs a ``def`` check that needs no fixture without a task, its
result handed to a callback. Both are shared by the one-shot run here and by watch
mode. Async checks run on the loop, sync checks and sync fixtures on worker threads
that a hung call cannot hold. Time limits and checks that block the loop itself are
the watchdog's business.
"""

from __future__ import annotations

import contextvars
import inspect
import os
import signal
import threading
import time
import traceback
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Self, TypeGuard, TypeVar

import fraiseql_checks
from fraiseql_checks.config import Parser, Setting, as_duration, as_positive_int
from fraiseql_checks.core import _interrupt
from fraiseql_checks.core._fixture_lifecycle import (
    FIXTURE_TASK,
    FixtureError,
    FixtureLifecycle,
    ScopeState,
    withdraw_cancel,
)
from fraiseql_checks.core._pytest_compat import PYTEST_DIR, Failed, Skipped, explain_comparisons, format_exception
from fraiseql_checks.core._threads import Job, ThreadLane
from fraiseql_checks.core._watchdog import LoopBlocked, Watchdog
from fraiseql_checks.core.fixtures import FixtureDef, FixtureLookupError
from fraiseql_checks.core.gcpolicy import collector_off_the_checks
from fraiseql_checks.errors import TargetError, TargetNotConfigured
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.suites import is_shipped
from fraiseql_checks.trace import RunContext, current_run, new_ids

if TYPE_CHECKING:
    import asyncio

    from fraiseql_checks.checks import Check
    from fraiseql_checks.core._tasks import GuardedTask
    from fraiseql_checks.core.session import Session

T = TypeVar("T")

DEFAULT_TIMEOUT = "10s"
DEFAULT_CONCURRENCY = 100
#: Watch mode's default. A watcher holds a slot for a run's whole round trip (the frame to
#: its worker, the run, the result back, its accounting), not only while the check runs,
#: and a check's runs never overlap, so a watcher of fewer checks than this never waits
#: for a slot. With 100, the slots' round trips bound a watcher of 1,000 trivial checks on
#: two cores (~36,000 runs/s against ~49,000 with 1,000), and at 80 % of that its p99
#: lateness was 20-46 ms against 12.5 ms with 1,000 at a higher rate (docs/performance.md).
WATCH_CONCURRENCY = 1000
#: Marks whose condition ``Check.skip_reason`` evaluates at each run (``run_check`` does).
_SKIP_MARKS = frozenset({"skip", "skipif"})
_HIDDEN = (
    os.path.dirname(fraiseql_checks.__file__),
    os.path.join(os.path.dirname(os.__file__), "asyncio"),  # the standard library's folder, without importing asyncio
    threading.__file__,
    PYTEST_DIR,  # pytest.skip(), pytest.fail() and pytest.raises frames
)


#: What a ``BaseException`` raised by user code means, for its error message.
_BASE_EXCEPTION_WORDS: dict[type[BaseException], Callable[[BaseException], str]] = {
    SystemExit: lambda exc: (
        f"SystemExit({getattr(exc, 'code', None)!r}) raised: sys.exit() ends the check, not the run"
    ),
    KeyboardInterrupt: lambda exc: "KeyboardInterrupt raised by the check (not a Ctrl-C at the terminal)",
    GeneratorExit: lambda exc: "GeneratorExit raised by the check",
}
#: ``asyncio.CancelledError``'s words, beside the table: asyncio is imported where a loop
#: runs (``_classify``), not by a run that only collects.
_CANCELLED_WORDS = "CancelledError raised by the check (not a cancellation by the runner)"
#: A run's task cancelled by code that is not the runner's: the check's own (its code, a
#: callback it scheduled), code outside any check's run (a thread of its own, a signal
#: handler), or unknown (a task not made by a guarded loop). Another check's code cannot
#: cancel it (``_tasks.GuardedTask``).
_TASK_CANCELLED_WORDS = {
    True: "its task was cancelled by the check's own code (asyncio.Task.cancel()), not by the runner",
    False: "its task was cancelled, not by the runner: by code outside any check's run"
    " (a thread's or a signal handler's; asyncio.Task.cancel())",
    None: "its task was cancelled, not by the runner (asyncio.Task.cancel())",
}


def _text_of(exc: BaseException) -> str:
    """``str(exc)``, or what can be said when its ``__str__`` itself raises."""
    try:
        return str(exc)
    except Exception as error:
        return f"<unprintable {type(exc).__name__}: its __str__ raised {type(error).__name__}>"


def _named(exc: BaseException) -> str:
    """``Name: text``, or the name alone for an exception without text (a ``CancelledError``)."""
    text = _text_of(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _traceback(exc: BaseException, style: str) -> str:
    """pytest's rendering of ``exc``'s traceback; never raises (an exception may not print)."""
    try:
        return format_exception(exc, style, _hidden)
    except Exception as error:
        return f"{type(exc).__name__}: <its traceback could not be rendered: {type(error).__name__}>"


def _hidden(path: str) -> bool:
    return path.startswith(_HIDDEN) and not is_shipped(path)  # the shipped suites are checks, not our code


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addoption(
        "--timeout",
        metavar="DURATION",
        help=f"default time limit per check, e.g. 5s (a check's own @check(timeout=) wins; default {DEFAULT_TIMEOUT})",
        group="running",
    )
    parser.addoption(
        "--concurrency",
        metavar="N",
        help=f"how many checks run at the same time (default {DEFAULT_CONCURRENCY}; {WATCH_CONCURRENCY} in watch mode)",
        group="running",
    )
    parser.addsetting(
        Setting("timeout", as_duration, as_duration(DEFAULT_TIMEOUT), "default time limit per check", option="timeout")
    )
    parser.addsetting(
        Setting(
            "concurrency",
            as_positive_int,
            DEFAULT_CONCURRENCY,
            "checks running at the same time",
            option="concurrency",
            watch_default=WATCH_CONCURRENCY,
        )
    )


class Runner:
    """Runs checks on the running event loop; use ``async with Runner(session)``."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.config = session.config
        self._tbstyle = str(self.config.getoption("tbstyle") or "short")
        self.lane: ThreadLane
        self.fixtures: FixtureLifecycle
        self.watchdog: Watchdog
        #: The check each running task runs (who held the loop, when it is held).
        self.running: dict[asyncio.Task[Any], Check] = {}
        self._guarded: type[GuardedTask]
        #: Run tasks the runner itself cancelled (``-x``, a stop, the watcher's cancel): their
        #: runs end without a result. Any other cancellation of a run's task is the check's doing.
        self.cancelled: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()

    async def __aenter__(self) -> Self:
        import asyncio

        from fraiseql_checks.core._tasks import GuardedTask, guard

        loop = asyncio.get_running_loop()
        guard(loop)  # one check's code cannot cancel another's task, nor ours
        self._guarded = GuardedTask
        self.lane = ThreadLane(loop, max_threads=self.config.get("concurrency"))
        self.fixtures = FixtureLifecycle(self.lane, self.abandoned)
        self.watchdog = Watchdog(loop)
        self.watchdog.on_block = self.blocked
        self.watchdog.name_of = self.check_of
        if Watchdog.can_guard():
            self.watchdog.start_guard()
        return self

    def check_of(self, task: asyncio.Task[Any] | None) -> str | None:
        """The id of the check a task works for: a running check's task, or a task
        started inside a check's run (a fixture's set-up, a task the check left behind)."""
        if task is None:
            return None
        check = self.running.get(task)
        if check is not None:
            return check.id
        owner = getattr(task, "owner", None)  # a guarded task made inside a check's run
        name = task.get_name()
        if name.startswith(FIXTURE_TASK):  # a wide fixture's set-up, for whichever check needed it first
            return f"fixture {name.removeprefix(FIXTURE_TASK)!r} (set up for {owner})" if owner else name
        return owner

    def cancel(self, task: asyncio.Task[Any]) -> None:
        """Cancel a run's task as the runner: its run ends without a result (``run_check``
        raises ``CancelledError``). A run's task cancelled by anyone else (the check's own
        code, code outside any run; another check's cannot: ``_tasks.GuardedTask``) ends
        its run with an error result instead."""
        self.cancelled.add(task)
        task.cancel()

    def abandoned(self, task: asyncio.Task[Any]) -> bool:
        """Whether ``task``'s cancellation is the runner's (``cancel``) or the first Ctrl-C's:
        its run is being given up on, so what it runs stops there."""
        return task in self.cancelled or self.session.interrupted

    def blocked(self, check_id: str | None, seconds: float) -> None:
        """A check held the event loop ``seconds`` (past the report bound): remember it by name."""
        count, longest = self.session.blocking.get(check_id or "", (0, 0.0))
        self.session.blocking[check_id or ""] = (count + 1, max(longest, seconds))

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            errors = await self.fixtures.close(self.config.get("timeout"))
            for definition, error in errors:
                self.session.report(teardown_result(self.config, definition, error), None)
        finally:
            self.watchdog.stop()
            self.lane.close()

    async def run_check(self, check: Check, fixtures: ScopeState | None = None) -> Result:
        """Run one check with its fixtures, within its timeout, and say how it went.

        Whatever the check raises becomes its result, ``SystemExit`` and a
        ``KeyboardInterrupt`` of its own included; only a real Ctrl-C (the second
        one) and a cancellation from outside pass through. A run cut short by the
        first Ctrl-C is an ``error`` marked ``interrupted``.
        """
        import asyncio

        run = RunContext(check, self.config, *new_ids())
        token = current_run.set(run)
        scope = fixtures or ScopeState()
        started_at = time.time()
        start = time.perf_counter()
        outcome, message, longrepr, timed_out = Outcome.PASSED, "", "", False
        unreachable, exc_type = "", ""
        #: The phase running now, and when it began; each phase's own seconds once it ends.
        phase, phase_start = "setup", start
        phases: dict[str, float] = {}
        own_call: list[float] = []  # a sync check's time in its thread, without the wait for one
        task = asyncio.current_task()
        assert task is not None
        watchdog = self.watchdog
        self.running[task] = check
        if isinstance(task, self._guarded):  # its fixtures' teardown included: only this run's code may cancel it
            task.run, task.cancelled_by_run = run, False
        try:
            reason = check.skip_reason()
            if reason is not None:
                raise Skipped(reason)
            watchdog.add(task, check.timeout)
            closure = self.session.fixtures.closure(check.path, check.argnames)
            kwargs = await self.fixtures.setup(closure, check.path, scope) if closure.order else {}
            if check.params:
                kwargs.update(check.params)
            phases["setup"] = time.perf_counter() - phase_start
            phase, phase_start = "call", time.perf_counter()
            if check.is_async:
                value = await check.func(**kwargs)
            else:
                value = await self.lane.run(_timed, check.func, own_call, kwargs)
            if value is not None and inspect.isawaitable(value):
                await value
        except asyncio.CancelledError as exc:
            if task in watchdog.expired:
                pass  # past its deadline: the timeout is reported below
            elif self.session.interrupted:
                task.uncancel()  # the first Ctrl-C: report the run, then stop
                outcome, message, longrepr, timed_out, unreachable, exc_type = _interrupted(run)
            elif task in self.cancelled:
                raise  # cancelled by the runner (-x, a stop): the run is being abandoned
            else:  # the check raised CancelledError itself, or code other than ours cancelled its task
                ending = self._ended_by(exc)
                if task.cancelling():
                    by_run = task.cancelled_by_run if isinstance(task, self._guarded) else None
                    ending = ending._replace(message=_TASK_CANCELLED_WORDS[by_run])
                outcome, message, longrepr, timed_out, unreachable, exc_type = ending
        except LoopBlocked as exc:
            outcome, message, longrepr, timed_out, unreachable, exc_type = _loop_blocked(run, exc)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt, GeneratorExit raised by the check too
            if _interrupt.is_real(exc):
                raise
            outcome, message, longrepr, timed_out, unreachable, exc_type = self._ended_by(exc)
        finally:
            ended = time.perf_counter()
            if phase == "call" and own_call:
                phases["call"] = own_call[0]
            elif phase not in phases:
                phases[phase] = ended - phase_start
            del self.running[task]
            if watchdog.discard(task):  # past its deadline, however it ended
                task.uncancel()
                outcome, message, longrepr, timed_out, unreachable, exc_type = _timed_out(check)
            if task.cancelling() and task not in self.cancelled:
                # the check's code cancelled its task and the run went on, or ended before it
                # was delivered (after a Ctrl-C too: the run is reported, then the run stops)
                await withdraw_cancel(task, self.cancelled.__contains__)
            if fixtures is None:
                teardowns = await self.fixtures.teardown(scope, check.timeout) if scope.teardowns else ()
                for definition, error in teardowns:
                    if outcome is Outcome.PASSED or outcome is Outcome.SKIPPED:
                        outcome = Outcome.ERROR
                        message = f"teardown of fixture {definition.name!r} failed: {_named(error)}"
                        longrepr = _traceback(error, self._tbstyle)
                        exc_type, phase = type(error).__name__, "teardown"
                phases["teardown"] = time.perf_counter() - ended
            if isinstance(task, self._guarded):
                task.run = None
            current_run.reset(token)
        ending = Ending(outcome, message, longrepr, timed_out, unreachable, exc_type)
        return _result(check, run, started_at, start, ending, phase, phases)

    def _ended_by(self, exc: BaseException) -> Ending:
        """What an exception from the check's own code (or its fixtures) makes of the run.
        An exception whose text cannot be had (its ``__str__`` or ``__repr__`` raises, or
        is cut by the blocked-loop guard) is an error saying so, not a run without a result."""
        try:
            outcome, message, longrepr = self._classify(exc)
            return Ending(outcome, message, longrepr, False, _unreachable_target(exc), _exception_type(exc))
        except BaseException as failure:  # LoopBlocked too: describing it held the loop past the deadline
            if _interrupt.is_real(failure):
                raise
            name = type(exc).__name__
            words = f"{name} raised, and describing it failed: {type(failure).__name__} (in its __str__ or __repr__?)"
            return Ending(Outcome.ERROR, words, exc_type=name)

    def start_sync(self, check: Check, done: Callable[[SyncRun, Result], None], tag: Any = None) -> SyncRun | None:
        """Start a run of ``check`` without a task, if it is a ``def`` check that needs no
        fixture and has no ``skip`` or ``skipif`` mark: ``done(run, result)`` is called on
        the loop when it ends (``run.tag`` is ``tag``). ``None``: run it with ``run_check``."""
        if check.is_async or (check.marks and any(mark.name in _SKIP_MARKS for mark in check.marks)):
            return None
        try:
            if self.session.fixtures.closure(check.path, check.argnames).order:
                return None
        except FixtureLookupError:  # run_check says what is wrong
            return None
        return SyncRun(self, check, done, tag)

    def _classify(self, exc: BaseException) -> tuple[Outcome, str, str]:
        if isinstance(exc, Skipped):
            return Outcome.SKIPPED, str(getattr(exc, "msg", "") or exc), ""
        if isinstance(exc, FixtureError):
            if isinstance(exc.cause, Skipped):
                return Outcome.SKIPPED, str(getattr(exc.cause, "msg", "") or exc.cause), ""
            if isinstance(exc.cause, TargetError):
                return Outcome.ERROR, f"fixture {exc.definition.name!r}: {exc.cause}", self._target_traceback(exc.cause)
            return Outcome.ERROR, str(exc), _traceback(exc.cause, self._tbstyle)
        if isinstance(exc, FixtureLookupError):
            return Outcome.ERROR, str(exc), ""
        if isinstance(exc, TargetError):  # the watched service failed: one line, not a traceback
            outcome = Outcome.ERROR if isinstance(exc, TargetNotConfigured) else Outcome.FAILED
            return outcome, str(exc), self._target_traceback(exc)
        longrepr = _traceback(exc, self._tbstyle)
        if not isinstance(exc, Exception) and type(exc) in _BASE_EXCEPTION_WORDS:
            return Outcome.ERROR, _BASE_EXCEPTION_WORDS[type(exc)](exc), longrepr
        import asyncio

        if type(exc) is asyncio.CancelledError:
            return Outcome.ERROR, _CANCELLED_WORDS, longrepr
        if isinstance(exc, AssertionError):
            return Outcome.FAILED, _text_of(exc) or "AssertionError", longrepr
        if isinstance(exc, Failed):
            return Outcome.FAILED, str(getattr(exc, "msg", "") or exc), longrepr
        text = _text_of(exc)
        return Outcome.ERROR, f"{type(exc).__name__}: {text}" if text else type(exc).__name__, longrepr

    def _target_traceback(self, exc: TargetError) -> str:
        """With ``-v``, the whole chain down to the library's own exception; else nothing."""
        if self.config.verbosity <= 0:
            return ""
        return "".join(traceback.format_exception(exc)).rstrip()

    async def run_many(self, checks: list[Check]) -> None:
        """Run ``checks`` at most ``concurrency`` at a time, reporting each result.

        A ``def`` check that needs no fixture runs without a task (``start_sync``), the
        others with ``run_check`` on a slot's task (``_Batch``). Module-scoped fixtures
        are torn down when the last check of their module ends. ``-x`` and ``--maxfail`` cancel the runs
        under way (not reported: they did not run to their end); the first Ctrl-C reports
        them as interrupted.
        """
        import asyncio

        if not checks:
            return
        batch = _Batch(self, checks)
        try:
            await batch.finished
        except asyncio.CancelledError:
            if self.session.interrupted:
                batch.interrupt()
            raise
        finally:
            await batch.close()

    async def _teardown_module(self, path: Path, timeout: float) -> None:
        for definition, error in await self.fixtures.teardown_module(path, timeout):
            self.session.report(teardown_result(self.config, definition, error), None)


class _Batch:
    """``Runner.run_many``'s runs: at most ``concurrency`` under way, each in a slot.

    A ``def`` check that needs no fixture runs without a task (a ``SyncRun``): the next
    check is started from the callback of its end, and costs no task and no turn of the
    loop of its own. The other checks run ``run_check`` on a slot's task, which goes on
    with the next checks that need a task, one after another (a task per check would
    cost more than the run of a quick ``async def`` check), and gives its slot up at the
    first that does not. ``finished`` is done when every check has run, or when ``-x`` /
    ``--maxfail`` stopped the run and what it cancelled has ended; it holds what went
    wrong in our own code or a plugin's (a report hook that raised)."""

    def __init__(self, runner: Runner, checks: list[Check]) -> None:
        import asyncio

        self.runner = runner
        self.session = runner.session
        self.timeout = runner.config.get("timeout")
        self.limit = min(runner.config.get("concurrency"), len(checks))
        #: Checks left to end in each file, a counter per path, found by the check's id()
        #: (a ``Path``'s hash is a Python call: twice a result, otherwise). Not by module:
        #: a plugin's ``fraiseql_collect_file`` may give one file's checks several.
        self.left_in_file: dict[int, list[int]] = {}
        by_path: dict[Path, list[int]] = {}
        for check in checks:
            left = self.left_in_file[id(check)] = by_path.setdefault(check.path, [0])
            left[0] += 1
        self.pending = iter(checks)
        self.loop = asyncio.get_running_loop()
        self.finished: asyncio.Future[None] = self.loop.create_future()
        #: What is under way, each in a slot: runs without a task, the slots' tasks, and
        #: the teardowns of modules whose last check ran without a task.
        self.syncs: set[SyncRun] = set()
        self.workers: set[asyncio.Task[None]] = set()
        self.teardowns: set[asyncio.Task[None]] = set()
        #: Made by the first Ctrl-C: done once the runs without a task have been reported interrupted.
        self._interrupting: asyncio.Future[None] | None = None
        self.closing = False
        self._fill()

    def _fill(self) -> None:
        """Start checks while slots are free; say ``finished`` when nothing is left to wait for."""
        lane = self.runner.lane
        lane.hold()  # the runs started here reach the lane's threads together
        try:
            finished = self.finished
            syncs, workers, teardowns = self.syncs, self.workers, self.teardowns
            while len(syncs) + len(workers) + len(teardowns) < self.limit:
                taken = self._take()
                if taken is None:
                    break
                if not isinstance(taken, SyncRun):  # it needs a task: a slot's task of its own
                    self._track(workers, self.loop.create_task(self._work(taken)))
            if not syncs and not workers and not teardowns and not finished.done():
                finished.set_result(None)
        except BaseException as exc:
            if _interrupt.is_real(exc):
                raise
            self._fail(exc)
        finally:
            lane.release()

    def _track(self, tasks: set[asyncio.Task[None]], task: asyncio.Task[None]) -> None:
        tasks.add(task)
        task.add_done_callback(self._task_ended)

    async def _work(self, check: Check) -> None:
        """A slot's task: ``check``, then the next checks while they need a task."""
        runner = self.runner
        while True:
            result = await runner.run_check(check)
            path = self._ended(result, check)
            if path is not None:  # its module's last check: torn down in this slot, as it was set up
                await self._teardown_module(path)
            next_check = self._next_for_task()
            if next_check is None:
                return
            check = next_check

    async def _teardown_module(self, path: Path) -> None:
        """Tear a module's fixtures down; a failure that reaches ``-x`` or ``--maxfail``
        stops the runs under way, as a check's failure does."""
        await self.runner._teardown_module(path, self.timeout)
        if self.session.shouldstop and not self.session.interrupted:
            self.drop()

    def _next_for_task(self) -> Check | None:
        """The next check, for a slot's task that is free: one that needs a task, or
        ``None`` when the next runs without one (it takes the slot), none is left, or
        the run stops."""
        taken = self._take()
        return None if isinstance(taken, SyncRun) else taken

    def _take(self) -> Check | SyncRun | None:
        """Take the next check for a free slot: started at once if it runs without a task
        (the ``SyncRun``), else the check, to run on a task; ``None`` when none is left or
        nothing may start any more."""
        if self.session.shouldstop or self.finished.done() or self.closing:
            return None
        check = next(self.pending, None)
        if check is None:
            return None
        run = self.runner.start_sync(check, self._sync_ended)
        if run is None:
            return check
        self.syncs.add(run)
        return run

    def _sync_ended(self, run: SyncRun, result: Result) -> None:
        if run not in self.syncs:  # dropped (-x) after its end was scheduled: not a result
            return
        self.syncs.remove(run)
        path = self._ended(result, run.check)
        if path is not None:
            self._track(self.teardowns, self.loop.create_task(self._teardown_module(path)))
        self._fill()

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        self.workers.discard(task)
        self.teardowns.discard(task)
        if task.cancelled():
            if task not in self.runner.cancelled and self._interrupting is None and not self.closing:
                # Cancelled by none of ours, and not inside a run or a fixture's teardown
                # (those end as errors of their check): by code outside any check's run (a
                # thread a check started; a check's own code cannot cancel a slot's task
                # between runs), while the slot's task was between its runs. Not a result
                # lost in silence: the run ends as an internal error.
                if not self.finished.done():
                    self.finished.cancel()
        else:
            error = task.exception()
            if error is not None:
                self._fail(error)
        self._fill()

    def _ended(self, result: Result, check: Check) -> Path | None:
        """Report a check's run; its module's path if it was the module's last check and
        the module has fixtures to tear down."""
        try:
            session = self.session
            session.report(result, check)
            if session.shouldstop and not session.interrupted:
                self.drop()
            left = self.left_in_file[id(check)]
            left[0] -= 1
            if not left[0] and check.path in self.runner.fixtures.modules:
                return check.path
        except BaseException as exc:
            if _interrupt.is_real(exc):
                raise
            self._fail(exc)
        return None

    def _fail(self, exc: BaseException) -> None:
        if not self.finished.done():
            self.finished.set_exception(exc)

    def drop(self) -> None:
        """``-x`` or ``--maxfail`` (or our own failure): the runs under way end without a
        result; a module's teardown under way goes on."""
        for run in list(self.syncs):
            run.abandon()
        self.syncs.clear()
        running, cancelled = self.runner.running, self.runner.cancelled
        for task in self.workers:
            # A run under way, or a task not started yet, is stopped, once (a second cancel
            # would cut its teardown). One in its fixtures' teardown, or tearing its module
            # down, ends it (and is reported, as the check itself had ended), then takes no
            # other check.
            if task not in cancelled and (task in running or never_started(task.get_coro())):
                self.runner.cancel(task)

    def interrupt(self) -> None:
        """The first Ctrl-C: the runs under way end now, each reported as interrupted: a
        task's when its cancellation reaches ``run_check``, a ``SyncRun`` in a callback of
        the loop (a report hook it calls may meet the second Ctrl-C, which must leave the
        loop at once, as it does from any callback or task, not wait for the tasks)."""
        for task in [*self.workers, *self.teardowns]:
            task.cancel()
        self._interrupting = self.loop.create_future()
        self.loop.call_soon(self._interrupt_syncs)

    def _interrupt_syncs(self) -> None:
        try:
            for run in list(self.syncs):
                run.interrupt()
        finally:
            assert self._interrupting is not None
            if not self._interrupting.done():
                self._interrupting.set_result(None)

    async def close(self) -> None:
        """Wait for what is still ending; after our own failure, what was under way is
        dropped. Nothing starts any more."""
        import asyncio

        self.closing = True
        if self._interrupting is not None:
            await self._interrupting
        else:
            self.drop()
        while self.workers or self.teardowns:
            await asyncio.wait([*self.workers, *self.teardowns])


def never_started(coro: object) -> TypeGuard[Coroutine[Any, Any, Any]]:
    """A coroutine none of whose code has run yet (a task's that never took a step)."""
    return inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED


def teardown_result(config: Any, definition: FixtureDef, error: BaseException) -> Result:
    """A module or session fixture whose teardown failed, as an error result."""
    location = definition.location.rsplit(":", 1)[0]
    relpath = config.relpath(Path(location)) if location.endswith(".py") else location
    return Result(
        id=f"{relpath}::{definition.name}",
        name=definition.name,
        outcome=Outcome.ERROR,
        message=f"teardown of fixture {definition.name!r} failed: {_named(error)}",
        kind="teardown",
    )


def run_on_new_loop(session: Session, main: Callable[[], Awaitable[T]]) -> T | None:
    """Run ``main()`` on a fresh event loop with Ctrl-C handling.

    The first Ctrl-C stops the run gracefully (``session.interrupted``); a second one
    raises ``KeyboardInterrupt`` wherever the main thread is. The loop is closed
    without waiting for threads stuck in abandoned calls.
    """
    import asyncio

    from fraiseql_checks.core._tasks import guard, ours_context, run_to_end

    loop = asyncio.new_event_loop()
    guard(loop)  # the main task too: no check's code can cancel it
    #: The runner's own context: its main task's (what that starts is ours), and the first
    #: Ctrl-C's callback's (a signal handler runs in whatever context the main thread is
    #: in, a check's run while a check holds the loop, whose cancel would be refused).
    context = ours_context()
    asyncio.set_event_loop(loop)
    main_task: asyncio.Task[T] | None = None
    presses = 0

    def interrupt() -> None:
        session.interrupted = True
        session.shouldstop = session.shouldstop or "interrupted"
        if main_task is not None:
            main_task.cancel()

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal presses
        presses += 1
        if presses > 1:
            _interrupt.press()
            raise KeyboardInterrupt
        loop.call_soon_threadsafe(interrupt, context=context)

    handle_signals = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if handle_signals else None
    _interrupt.handling(handle_signals)
    try:
        with explain_comparisons(session.config.verbosity):
            main_task = loop.create_task(main(), context=context)  # type: ignore[arg-type]
            try:
                return run_to_end(loop, main_task)
            except asyncio.CancelledError:
                if not session.interrupted:
                    raise
                return None
    finally:
        if handle_signals:
            signal.signal(signal.SIGINT, previous)
        _interrupt.handling(False)
        _close_loop(loop)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    import asyncio

    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
        loop.run_until_complete(loop.shutdown_asyncgens())
        # Idle threads of asyncio.to_thread() end now; a check's call stuck in one is not waited for.
        executor = getattr(loop, "_default_executor", None)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@hookimpl(trylast=True)
def fraiseql_runloop(session: Session) -> bool:
    """The one-shot run: every selected check once."""
    if session.config.getoption("collectonly") or not session.checks or session.shouldstop:
        return True

    async def main() -> None:
        async with Runner(session) as runner:
            await runner.run_many(session.checks)

    with collector_off_the_checks():
        run_on_new_loop(session, main)
    return True


class Ending(NamedTuple):
    """How a run ended, before its result is built: ``run_check`` and ``SyncRun`` alike."""

    outcome: Outcome
    message: str = ""
    longrepr: str = ""
    timed_out: bool = False
    #: The target it could not reach (a ``TargetError`` saying so), or ``""``.
    unreachable: str = ""
    #: The class name of what ended it (``TimeoutError`` past its deadline).
    exc_type: str = ""


_PASSED = Ending(Outcome.PASSED)


def _timed_out(check: Check) -> Ending:
    """A run past its deadline."""
    return Ending(Outcome.ERROR, f"timed out after {check.timeout:g}s", timed_out=True, exc_type="TimeoutError")


def _loop_blocked(run: RunContext, exc: LoopBlocked) -> Ending:
    """A run interrupted by the blocked-loop guard: it held the loop past its deadline."""
    run.extra["loop_blocked"] = True
    return Ending(Outcome.ERROR, str(exc), timed_out=True, exc_type="TimeoutError")


def _interrupted(run: RunContext) -> Ending:
    """A run cut short by the first Ctrl-C."""
    run.extra["interrupted"] = True
    return Ending(Outcome.ERROR, "interrupted (Ctrl-C) while running", exc_type="KeyboardInterrupt")


def _result(
    check: Check, run: RunContext, started_at: float, start: float, ending: Ending, phase: str, phases: dict[str, float]
) -> Result:
    """A run's result, from how it ended (``start``: its ``perf_counter`` time)."""
    outcome = ending.outcome
    failed = outcome is Outcome.FAILED or outcome is Outcome.ERROR
    # Positional, in the order of Result's fields: Python matches each keyword of a call
    # against the parameters one by one, and 21 keywords cost ~0.65 µs a run more than
    # this. A test compares it with the same result built by keywords.
    return Result(
        check.id,  # id
        check.name,  # name
        outcome,  # outcome
        ending.message,  # message
        time.perf_counter() - start,  # duration_s
        ending.timed_out,  # timed_out
        check.severity,  # severity
        check.labels,  # labels
        run.trace_id,  # trace_id
        run.span_id,  # span_id
        started_at,  # started_at
        run.values,  # values
        ending.longrepr,  # longrepr
        run.output("stdout"),  # stdout
        run.output("stderr"),  # stderr
        "check",  # kind
        ending.unreachable if failed and not ending.timed_out else "",  # unreachable
        run.extra,  # extra
        phase,  # when
        ending.exc_type if failed else "",  # exc_type
        phases,  # phases
    )


class SyncRun(Job):
    """A run of a ``def`` check that needs no fixture, with no task of its own.

    Its call goes to the runner's lane as every sync check's does (a thread that a hung
    call cannot hold, in a copy of the loop's context where ``current_run`` is this run),
    the run being its own job there (``call`` on the thread, ``ended`` on the loop).
    What the call raised is described on that thread too, while the deadline holds: its
    text and traceback come from the check's code (``__str__``, ``__repr__``), which may
    be slow. The loop hears of the call's end in the lane's batch of calls that ended,
    builds the result and hands it to ``done(run, result)``. Its deadline is the
    watchdog's, as a task's is: when it passes the watchdog calls ``cancel``, the call
    is abandoned and the run ends timed out. What it saves against ``run_check``: the
    task, the future the call is awaited through and the turn of the loop that wakes the
    task (a worker's CPU per trivial ``def`` run: 20.3 → 13.9 µs, with the collector's
    change of the same session; an ``async def`` run costs 13.0 µs; docs/performance.md).
    """

    __slots__ = (
        "_awaitable",
        "_awaiting",
        "_done",
        "_ended",
        "_own_call",
        "_queued",
        "_run",
        "_runner",
        "_start",
        "_started_at",
        "check",
        "tag",
    )

    def __init__(self, runner: Runner, check: Check, done: Callable[[SyncRun, Result], None], tag: Any) -> None:
        self._runner = runner
        self.check = check
        self.tag = tag
        self._done = done
        self._ended = False
        self._awaiting: asyncio.Task[None] | None = None
        self._awaitable: Awaitable[Any] | None = None
        self._own_call: float | None = None  # the call's own seconds, set on its thread
        self._run = run = RunContext(check, runner.config, *new_ids())
        self._started_at = time.time()
        self._start = time.perf_counter()
        runner.watchdog.add(self, check.timeout)
        super().__init__(contextvars.copy_context())
        self.context.run(current_run.set, run)
        self._queued = True  # on the lane until its call ends or is abandoned
        runner.lane.enqueue(self)

    def call(self) -> tuple[Any, Ending | None] | None:
        """On the lane's thread: ``None`` for a call that returned no awaitable; else the
        awaitable it returned, or what it raised, described (asking whether a value is
        awaitable runs its code too)."""
        check = self.check
        start = time.perf_counter()
        try:
            value = check.func(**check.params) if check.params else check.func()
            self._own_call = time.perf_counter() - start
            if value is None or not inspect.isawaitable(value):
                return None
        except BaseException as exc:  # SystemExit, GeneratorExit, CancelledError raised by the check too
            if self._own_call is None:
                self._own_call = time.perf_counter() - start
            return None, self._runner._ended_by(exc)
        return value, None

    def cancel(self) -> bool:
        """Its deadline passed (the watchdog calls this): the call is abandoned, the run
        ends timed out."""
        if self._ended:
            return False
        self._let_go()
        self._runner.watchdog.discard(self)
        self._end(_timed_out(self.check))
        return True

    def interrupt(self) -> None:
        """The first Ctrl-C: the call is abandoned, the run ends interrupted."""
        if not self._ended:
            self._let_go()
            self._runner.watchdog.discard(self)
            self._end(_interrupted(self._run))

    def abandon(self) -> None:
        """End without a result (the run is dropped): a call under way finishes unobserved."""
        if not self._ended:
            self._ended = True
            self._let_go()
            self._runner.watchdog.discard(self)

    def _let_go(self) -> None:
        """Abandon the call and, if the check returned an awaitable, the task awaiting it
        (closed if it never started: it was not awaited, and says nothing)."""
        if self._queued:
            self._queued = False
            self._runner.lane.abandon(self)
        if self._awaiting is not None:
            self._awaiting.cancel()
            awaitable = self._awaitable
            if never_started(awaitable):
                awaitable.close()  # never started (none of its code runs): closed, not left "never awaited"

    def ended(self, called: tuple[Any, Ending | None] | None, error: BaseException | None) -> None:
        """The call ended (``call``'s answer); on the loop."""
        self._queued = False
        if self._ended:
            return
        runner = self._runner
        if error is not None:  # call itself failed: a bug of ours, said as one
            name = type(error).__name__
            ending = Ending(Outcome.ERROR, f"internal error running the check: {name}", exc_type=name)
        elif called is None:  # most calls: it returned, nothing to await
            ending = _PASSED
        else:
            value, described = called
            if value is not None:
                # A def that returned an awaitable: awaited as run_check awaits it, on a task
                # of its own in the run's context, which the watchdog times.
                import asyncio

                self._awaitable = value
                self._awaiting = task = asyncio.get_running_loop().create_task(
                    self._await(value, contextvars.copy_context()), context=self.context
                )
                if isinstance(task, runner._guarded):  # the run's own task: no other check's code cancels it
                    task.run = self._run
                return
            ending = described or _PASSED
        runner.watchdog.discard(self)
        self._end(ending)

    async def _await(self, value: Awaitable[Any], base: contextvars.Context) -> None:
        """Await what the check returned, in the run's context; the run ends in ``base``
        (the loop's own context: what reports it is no part of the check's run)."""
        import asyncio

        self._awaitable = None  # started: a cancellation now ends it
        runner, watchdog = self._runner, self._runner.watchdog
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        deadline = watchdog.deadline(self)
        watchdog.discard(self)
        watchdog.add(task, max((deadline or 0.0) - loop.time(), 0.0))
        ending = Ending(Outcome.ERROR, "internal error awaiting what the check returned")
        try:
            try:
                await value
                ending = _PASSED
            except asyncio.CancelledError as exc:
                if self._ended:
                    return  # abandoned
                if task not in watchdog.expired:  # cancelled by the check itself (or its code): an error, said
                    ending = runner._ended_by(exc)
            except LoopBlocked as exc:
                ending = _loop_blocked(self._run, exc)
            except BaseException as exc:
                if _interrupt.is_real(exc):
                    raise
                ending = runner._ended_by(exc)
            finally:
                if watchdog.discard(task):
                    ending = _timed_out(self.check)
        finally:  # whatever escaped, the run ends with a result
            if not self._ended:
                self._ended = True
                loop.call_soon(self._end, ending, context=base)

    def _end(self, ending: Ending) -> None:
        self._ended = True
        self._awaiting = None
        ended = time.perf_counter()
        own = self._own_call
        # no set-up (no fixture) and no teardown: the call is the run
        phases = {"setup": 0.0, "call": own if own is not None else ended - self._start, "teardown": 0.0}
        check, run = self.check, self._run
        try:
            result = _result(check, run, self._started_at, self._start, ending, "call", phases)
        except Exception as exc:  # a bug of ours: the run still ends (called from a batch or a tick, it would not)
            name = type(exc).__name__
            result = Result(
                id=check.id,
                name=check.name,
                outcome=Outcome.ERROR,
                message=f"internal error building the check's result: {name}",
                trace_id=run.trace_id,
                span_id=run.span_id,
                started_at=self._started_at,
                exc_type=name,
            )
        self._done(self, result)


def _timed(func: Callable[..., Any], spent: list[float], kwargs: dict[str, Any]) -> Any:
    """``func(**kwargs)`` on a worker thread, noting in ``spent`` how long the call itself took
    (without the wait for a free thread and for the event loop to hear of its end)."""
    start = time.perf_counter()
    try:
        return func(**kwargs)
    finally:
        spent.append(time.perf_counter() - start)


def _exception_type(exc: BaseException) -> str:
    """The class name of what ended a run (a fixture's own exception for a fixture that
    failed), as JUnit's ``type`` and pytest's messages name it; ``""`` for a skip."""
    if isinstance(exc, FixtureError):
        exc = exc.cause
    if isinstance(exc, Skipped):
        return ""
    return type(exc).__name__


def _unreachable_target(exc: BaseException) -> str:
    """The target a run could not reach (a ``TargetError`` saying so, raised by the check
    or by setting up a fixture), or ``""``."""
    if isinstance(exc, FixtureError):
        exc = exc.cause
    if isinstance(exc, TargetError) and exc.unreachable and not isinstance(exc, TargetNotConfigured):
        return exc.target
    return ""
