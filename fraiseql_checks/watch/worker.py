"""A worker process of ``fraiseql-check --watch``: it imports the checks and runs them.

The watcher (the supervising process) runs no check code: it starts workers with
``python -m fraiseql_checks.watch.worker FD``, where FD is its end of a Unix socket
pair (see ``wire``). A worker reads the same command line and configuration as
the watcher, collects every check as pytest-xdist's workers do, tells the watcher
what it found, then runs the checks it is asked to run, each with the shared
``Runner`` (timeouts, fixtures, the blocked-loop guard), and sends back masked,
size-capped results. Session and module fixtures live here, one set per worker.

Two threads keep it honest while a check misbehaves on the event loop: one sends
(results in batches, and every half second a beat saying how long the loop has
been held and by which check), one reads the watcher's messages. If the watcher
goes away, the reader kills the worker's whole process group, children of checks
included. The worker dies with the watcher too (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import faulthandler
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from fraiseql_checks.core import _interrupt
from fraiseql_checks.core._fixture_lifecycle import FixtureError, ScopeState
from fraiseql_checks.core._tasks import GuardedTask, guard, mark_ours, run_to_end
from fraiseql_checks.core.fixtures import FixtureLookupError, Scope, dependencies_of
from fraiseql_checks.core.runner import Runner, SyncRun, never_started
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.stash import StashKey
from fraiseql_checks.trace import MAX_VALUES, current_run
from fraiseql_checks.watch import heap, wire
from fraiseql_checks.watch.wire import BlockingChannel, Message

if TYPE_CHECKING:
    from fraiseql_checks.checks import Check
    from fraiseql_checks.config import Config
    from fraiseql_checks.core.session import Session

#: The beat's period: the watcher hears from every worker this often.
BEAT = 0.5
#: Stash key telling plugins they run inside a worker (its name as value).
WORKER_KEY = StashKey[str]("watch-worker")
#: Hooks of the watcher's own process: a conftest cannot implement them (conftests load in workers).
WATCHER_HOOKS = ("fraiseql_watch_start", "fraiseql_watch_stop", "fraiseql_make_store")
#: A cut message is logged whole once per check in this long, not on every run.
_WHOLE_MESSAGE_EVERY = 600.0
_CONNECTION_WORDS = re.compile(r"Connect|Connection|Interface|Transport|Closed|Network|Protocol|Unavailable")


def looks_like_lost_connection(error: BaseException) -> bool:
    """An ``OSError``, or an error whose class (or cause) names a connection problem,
    as client libraries name them (asyncpg, redis, httpx)."""
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


class WatchRunner(Runner):
    """The shared runner, keeping each failed run's exception for the fixture logic."""

    def __init__(self, session: Session, worker: Worker) -> None:
        super().__init__(session)
        self.worker = worker
        self.errors: dict[asyncio.Task[Any], BaseException] = {}

    def _classify(self, exc: BaseException) -> tuple[Outcome, str, str]:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # on a lane's thread: a run without a task, which has no fixture to repair
            task = None
        if task is not None and task in self.running:  # a run_check's task (it pops it)
            self.errors[task] = exc
        return super()._classify(exc)

    def blocked(self, check_id: str | None, seconds: float) -> None:
        self.worker.send(("blocked", check_id, seconds))


class _TeardownReporter:
    """Sends the results of failed module and session teardowns to the watcher."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    @hookimpl
    def fraiseql_report_result(self, result: Result) -> None:
        if result.kind == "teardown":
            self.worker.send(("teardown", result))


class Worker:
    """The worker's side: collect, run what the watcher asks, report back."""

    def __init__(self, channel: BlockingChannel, start: dict[str, Any]) -> None:
        self.channel = channel
        self.name = str(start["name"])
        self.args: list[str] = list(start["args"])
        self.cwd = Path(start["cwd"])
        self.skip: dict[str, str] = dict(start.get("skip", {}))
        #: The config file's table the watcher runs on (not the file: it may have changed since).
        self.file_values: dict[str, Any] | None = start.get("file_values")
        self.config: Config
        self.session: Session
        self.runner: WatchRunner | None = None
        self.checks: dict[str, Check] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        #: Runs without a task (``def`` checks that need no fixture), by sequence number.
        self.direct: dict[int, SyncRun] = {}
        self._drained: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        #: What the sender thread sends: a message, the results of a lane batch (a list), or
        #: ``None``, which ends it.
        self.outbox: queue.SimpleQueue[Message | list[Message] | None] = queue.SimpleQueue()
        self.last_turn = time.perf_counter()
        self.stopping = False
        self.exiting = False
        self._stopped: asyncio.Future[None] | None = None
        self._retired: list[ScopeState] = []
        self._background: set[asyncio.Task[None]] = set()
        self._max_timeout = 10.0
        self._whole_logged: dict[str, float] = {}
        self._sending: threading.Thread | None = None
        #: Runs asked for before the runner was ready.
        self._early: list[tuple[int, str]] = []
        #: Results made while the lane delivers a batch (``_reply``).
        self._replies: list[Message] = []

    # -- talking to the watcher ----------------------------------------------------------

    def send(self, message: Message) -> None:
        self.outbox.put(message)

    def _reply(self, message: Message) -> None:
        """On the loop: send a run's result. While the lane delivers a batch of ends, the
        results wait for the batch's end (``_send_replies``) and go to the sender thread in
        one piece: woken at the first, it would wait for the GIL the loop holds to make
        the others (docs/performance.md). Code not ours that makes a result ready (a
        ``fraiseql_result`` hook, the repr of an extra field) cannot hold them back: they
        go before it runs (``_direct_done``)."""
        runner = self.runner
        if runner is not None and runner.lane.delivering:
            self._replies.append(message)
        else:
            self.outbox.put(message)

    def _send_replies(self) -> None:
        replies, self._replies = self._replies, []
        if replies:
            self.outbox.put(replies)

    def _sender(self) -> None:
        """Send what is queued in batches, and a beat every ``BEAT`` seconds; ``None`` ends it."""
        outbox = self.outbox
        last_beat = 0.0
        done = False
        while not done:
            batch: list[Message] = []
            try:
                item = outbox.get(timeout=BEAT)
                while item is not None:
                    if isinstance(item, list):  # the results of a lane batch (_send_replies)
                        batch += item
                    else:
                        batch.append(item)
                    if len(batch) >= 10_000:
                        break
                    item = outbox.get_nowait()
                done = item is None
            except queue.Empty:
                pass
            now = time.perf_counter()
            if now - last_beat >= BEAT:
                batch.append(self._beat(now))
                last_beat = now
            try:
                self._send_batch(batch)
            except OSError:
                self._gone()
                return

    def _send_batch(self, batch: list[Message]) -> None:
        try:
            self.channel.send(batch)
        except OSError:
            raise
        except Exception:  # something in a message does not pickle: send them one by one
            for message in batch:
                try:
                    self.channel.send([message])
                except OSError:
                    raise
                except Exception as exc:
                    if message[0] == "result":
                        bare = _bare(wire.result_from(message[2]), exc)
                        self.channel.send([("result", message[1], wire.result_fields(bare), [], None)])

    def _beat(self, now: float) -> Message:
        stalled = max(now - self.last_turn - BEAT / 2, 0.0)
        holder = None
        if stalled > BEAT / 2 and self.loop is not None and self.runner is not None:
            holder = self.runner.check_of(asyncio.current_task(self.loop))
        return ("beat", stalled, holder)

    def _turn(self) -> None:
        """A callback on the loop every half beat: proof that the loop turns."""
        self.last_turn = time.perf_counter()
        assert self.loop is not None
        self.loop.call_later(BEAT / 2, self._turn)

    def _reader(self) -> None:
        mark_ours()  # what the messages start is the worker's, not a check's to cancel
        while True:
            try:
                messages = self.channel.receive()
            except (EOFError, OSError):
                self._gone()
                return
            loop = self.loop
            assert loop is not None
            try:
                loop.call_soon_threadsafe(self._handle, messages)
            except RuntimeError:  # the loop is closed: the worker is exiting
                return

    def _gone(self) -> None:
        """The watcher is gone: take the whole process group down, children of checks too."""
        if not self.exiting:
            _kill_group()

    # -- the life of the worker ---------------------------------------------------------

    def main(self) -> int:
        from fraiseql_checks.cli import configure
        from fraiseql_checks.config import UsageError
        from fraiseql_checks.core._pytest_compat import load_assertion_helpers
        from fraiseql_checks.core.session import Session

        # The loop exists before anything can arrive for it: messages sent right after
        # "collected" wait in its queue until it runs.
        mark_ours()  # the tasks this thread makes outside any run are the worker's own
        loop = self.loop = asyncio.new_event_loop()
        guard(loop)  # no check's code can cancel the worker's own tasks, nor another check's run
        asyncio.set_event_loop(loop)
        self._sending = threading.Thread(target=self._sender, name="fraiseql-check-sender", daemon=True)
        self._sending.start()
        threading.Thread(target=self._reader, name="fraiseql-check-reader", daemon=True).start()
        try:
            config, _ = configure(self.args, invocation_dir=self.cwd, file_values=self.file_values)
            config.option.watch = False  # the watch plugin builds nothing here
            config.option.watch_worker = True  # but settings keep watch mode's defaults (``Config.watching``)
            config.stash[WORKER_KEY] = self.name
            config.hook.fraiseql_configure(config=config)
            pm = config.pluginmanager
            for name in ("terminalreporter",):
                if pm.get_plugin(name) is not None:
                    pm.unregister(name=name)
            pm.register(_TeardownReporter(self), "worker-teardown-reporter")
            self.config = config
            self._report_exits()
            self.session = session = Session(config)
            session.collector.rewrite_cache.parallel = False  # the workers collect side by side already
            config.hook.fraiseql_sessionstart(session=session)
            load_assertion_helpers()  # not in the first failing check's run
            self.collect()
        except UsageError as exc:
            self.send(("fatal", str(exc)))
            return self._finish(4)
        except BaseException:
            self.send(("fatal", f"the worker could not start:\n{traceback.format_exc()}"))
            return self._finish(3)
        try:
            run_to_end(loop, loop.create_task(self.serve()))
        finally:
            with contextlib.suppress(BaseException):
                config.hook.fraiseql_unconfigure(config=config)
        return self._finish(0)

    def _finish(self, code: int) -> int:
        """Say goodbye and let the sender deliver everything queued before the process ends."""
        self.exiting = True
        self._send_replies()
        self.send(("stopped",))
        self.outbox.put(None)
        if self._sending is not None:
            self._sending.join(5.0)
        return code

    def collect(self) -> None:
        """Collect (again), keeping what files that broke had; tell the watcher. What is
        built lives until the next reload: it is frozen for the garbage collector (``heap``)."""
        heap.unfreeze()
        try:
            self._collect()
        finally:
            heap.freeze()

    def _collect(self) -> None:
        session = self.session
        kept: set[str] = set()
        if not self.checks:
            session.collector.skip = self.skip
            session.collector.on_import = self._importing
            session.collect()
            checks, errors = session.checks, session.collect_errors
        else:
            from fraiseql_checks.watch.reload import recollect

            found = recollect(session, list(self.checks.values()), on_import=self._importing, skip=self.skip)
            session.checks, session.collect_errors = found.checks, found.errors
            checks, errors, kept = found.checks, found.errors, found.kept
            self._refresh_fixtures(found.reimported, found.retired)
        self.checks = {check.id: check for check in checks}
        self.last_turn = time.perf_counter()  # collecting held no check's loop: start the count afresh
        self._max_timeout = max([check.timeout for check in checks] + [self.config.get("timeout")])
        self._warn_about_watcher_hooks()
        infos = [check.info(dependencies_of(session.fixtures, check)) for check in checks]
        self.send(("collected", infos, errors, sorted(kept)))

    def _report_exits(self) -> None:
        """A check that ends the process (``os._exit``, ``os.abort``) names itself first,
        so the watcher knows whom to blame even when other checks were running too."""
        real_exit, real_abort = os._exit, os.abort

        def last_word(code: int | str) -> None:
            run = current_run.get()
            if run is not None and not self.exiting:
                with contextlib.suppress(Exception):
                    self.channel.send([("exiting", run.check.id, code)])

        def exit_(code: int) -> NoReturn:
            last_word(code)
            real_exit(code)

        def abort() -> NoReturn:
            last_word("abort")
            real_abort()

        os._exit = exit_  # type: ignore[assignment]
        os.abort = abort

    def _importing(self, relpath: str) -> None:
        self.channel.send([("importing", relpath)])  # now, not batched: the import may never return

    def _warn_about_watcher_hooks(self) -> None:
        pm = self.config.pluginmanager
        for name, plugin in pm.list_name_plugin():
            if not name or not name.endswith("conftest.py"):
                continue
            for hook in WATCHER_HOOKS:
                if callable(getattr(plugin, hook, None)):
                    where = self.config.relpath(Path(name))
                    self.send(
                        (
                            "say",
                            f"{where}: {hook} is a hook of the watcher's own process, which does not load"
                            " conftests (they run in worker processes): load that code as a plugin"
                            " (plugins = [...] in the config, or -p)",
                        )
                    )

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopped = loop.create_future()
        if self.stopping:  # asked to stop while it was still collecting
            self._stopped.set_result(None)
        self._turn()
        async with WatchRunner(self.session, self) as runner:
            runner.lane.batch_ended = self._send_replies
            self.runner = runner
            early, self._early = self._early, []
            for seq, check_id in early:
                self._start_run(seq, check_id)
            await self._stopped
            await self._runs_ended(self._max_timeout + 5)
            self._drop_direct()
            for task in self.tasks.values():
                runner.cancel(task)
            for task in self._background:
                task.cancel()
            await asyncio.gather(*self.tasks.values(), *self._background, return_exceptions=True)
            for state in self._retired:
                for definition, error in await runner.fixtures.teardown(state, self._max_timeout):
                    from fraiseql_checks.core.runner import teardown_result

                    self.session.report(teardown_result(self.config, definition, error), None)

    async def _runs_ended(self, timeout: float) -> None:
        """Wait at most ``timeout`` seconds for the runs under way to end."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while (self.tasks or self.direct) and loop.time() < end:
            waiting: list[asyncio.Future[Any]] = list(self.tasks.values())
            if self.direct:
                self._drained = loop.create_future()
                waiting.append(self._drained)
            await asyncio.wait(waiting, timeout=end - loop.time())

    def _drop_direct(self) -> None:
        """The task-less runs under way end without a result (the watcher expects none)."""
        direct, self.direct = self.direct, {}
        for run in direct.values():
            run.abandon()
        self._direct_ended()

    def _direct_ended(self) -> None:
        """If no task-less run is left, say so to a stop waiting for them (``_runs_ended``)."""
        if not self.direct and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _handle(self, messages: list[Message]) -> None:
        # The runs of a frame go to the lane's thread together, when the frame is handled.
        runner = self.runner
        if runner is None:  # no lane yet: the runs wait for it (_early)
            self._handle_each(messages)
            return
        runner.lane.hold()
        try:
            self._handle_each(messages)
        finally:
            runner.lane.release()

    def _handle_each(self, messages: list[Message]) -> None:
        for message in messages:
            kind = message[0]
            if kind == "run":
                self._start_run(message[1], message[2])
            elif kind == "changed":
                self._spawn(self._changed(message[1]))
            elif kind == "reload":
                if len(message) > 1:
                    self.skip = dict(message[1])  # files fixed since they ended a worker are imported again
                if len(message) > 2 and message[2] is not None:
                    self._reconfigure(message[2])
                self._spawn(self._reload())
            elif kind == "stop":
                self.stopping = True
                if self._stopped is not None and not self._stopped.done():
                    self._stopped.set_result(None)
            elif kind == "cancel":
                # Cancelled as the runner does: the run ends without a result (the watcher asked
                # for it). A run has a task only once the runner is made (``_start_run``); one
                # asked for before (``_early``) never starts.
                self._early.clear()
                runner = self.runner
                if runner is not None:
                    for seq, task in list(self.tasks.items()):
                        if never_started(task.get_coro()):
                            del self.tasks[seq]  # its _run never starts, so nothing else would take it out
                        runner.cancel(task)
                self._drop_direct()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- runs ---------------------------------------------------------------------------

    def _start_run(self, seq: int, check_id: str) -> None:
        if self.runner is None:  # serve() is setting up: the run waits for it
            self._early.append((seq, check_id))
            return
        check = self.checks.get(check_id)
        if check is None:
            result = Result(
                id=check_id,
                name=check_id.rsplit("::", 1)[-1],
                outcome=Outcome.ERROR,
                message=f"worker {self.name} has no check {check_id!r}: its file changed since it was collected"
                " (SIGHUP collects again)",
                started_at=time.time(),
            )
            self.send(("result", seq, wire.result_fields(result), [], None))
            return
        direct = self.runner.start_sync(check, self._direct_done, seq)
        if direct is not None:
            self.direct[seq] = direct
            return
        # Not through the loop's task factory: a run's own task is made outside any run, so
        # the factory would only add a call per run (the tasks a check starts still go
        # through it). Guarded as the factory's are: no other check's code cancels it.
        task = GuardedTask(self._run(seq, check), loop=asyncio.get_running_loop())
        task.ours = True
        self.tasks[seq] = task

    def _direct_done(self, run: SyncRun, result: Result) -> None:
        """A run without a task ended: on the loop."""
        seq = run.tag
        if self.direct.pop(seq, None) is None:
            return  # dropped meanwhile
        try:
            if self._replies and (self.session.result_hooks or result.extra):
                # Code not ours runs to make this result ready (a hook, the repr of what the
                # run put in its extra fields) and may be slow: what is made goes first.
                self._send_replies()
            result, rebuilt, whole = self._prepared(run.check, result, None)
            self._reply(("result", seq, wire.result_fields(result), rebuilt, whole))
        finally:
            self._direct_ended()

    async def _run(self, seq: int, check: Check) -> None:
        try:
            result, rebuilt, whole = await self._outcome(check)
            self.send(("result", seq, wire.result_fields(result), rebuilt, whole))
        finally:
            self.tasks.pop(seq, None)  # here, not in a done callback: one callback less per run

    async def _outcome(self, check: Check) -> tuple[Result, list[str], str | None]:
        """Run ``check``; its result made ready to cross, the fixtures rebuilt after it, and
        its whole message when it was cut (once in a while per check)."""
        runner = self.runner
        assert runner is not None
        task = asyncio.current_task()
        try:
            result = await runner.run_check(check)
        except asyncio.CancelledError:
            runner.errors.pop(task, None)  # type: ignore[arg-type]
            raise  # cancelled by the watcher: it expects no result
        error = runner.errors.pop(task, None) if task is not None else None
        return self._prepared(check, result, error)

    def _prepared(
        self, check: Check, result: Result, error: BaseException | None
    ) -> tuple[Result, list[str], str | None]:
        """``result`` made ready to cross (``error``: what ended the run, for the fixtures
        to rebuild), the fixtures rebuilt, and its whole message when it was cut."""
        try:
            rebuilt = self._repair_fixtures(check, error) if error and result.outcome is Outcome.ERROR else []
            whole = self.session.prepare(result, check)
            result.extra = wire.json_safe(result.extra)  # plain data only crosses to the watcher
            if result.values:
                result.values = {str(k): float(v) for k, v in list(result.values.items())[:MAX_VALUES]}
            if whole is not None:
                now = time.monotonic()
                if now - self._whole_logged.get(check.id, -_WHOLE_MESSAGE_EVERY) >= _WHOLE_MESSAGE_EVERY:
                    self._whole_logged[check.id] = now
                else:
                    whole = None
        except BaseException as exc:  # a plugin's hook failed on this result: still answer
            if _interrupt.is_real(exc):
                raise
            result.message = f"internal error after the run: {type(exc).__name__}: {exc}"
            result.outcome, rebuilt, whole = Outcome.ERROR, [], None
        return result, rebuilt, whole

    def _repair_fixtures(self, check: Check, error: BaseException) -> list[str]:
        """Drop the module and session values a failed run leaves unusable; their names."""
        runner = self.runner
        assert runner is not None
        try:
            closure = self.session.fixtures.closure(check.path, check.argnames)
        except FixtureLookupError:
            return []
        wide = [d for d in closure.order if d.scope is not Scope.CHECK]
        if not wide:
            return []
        lifecycle = runner.fixtures
        if isinstance(error, FixtureError):  # a failed set-up: try again next time
            dropped, retired = lifecycle.drop(wide, check.path, failed_only=True)
        elif self.config.hook.fraiseql_fixture_broken(error=error):
            dropped, retired = lifecycle.drop(wide, check.path, failed_only=False)
        else:
            return []
        if retired.teardowns:
            self._retire(retired)
        return [d.name for d in dropped]

    def _retire(self, state: ScopeState) -> None:
        """Tear dropped values down once the runs that may still use them are over."""
        self._retired.append(state)
        self._spawn(self._teardown_retired(state, self._max_timeout))

    async def _teardown_retired(self, state: ScopeState, delay: float) -> None:
        await asyncio.sleep(delay)
        if state in self._retired:
            self._retired.remove(state)
            assert self.runner is not None
            from fraiseql_checks.core.runner import teardown_result

            for definition, error in await self.runner.fixtures.teardown(state, self._max_timeout):
                self.session.report(teardown_result(self.config, definition, error), None)

    # -- reload and notifications ---------------------------------------------------------

    def _reconfigure(self, file_values: dict[str, Any]) -> None:
        """Take the config the watcher runs on after a reload (SIGHUP): checks read
        thresholds at run time, and collecting reads the defaults (interval, timeout)."""
        from fraiseql_checks.config import UsageError

        try:
            self.config.take(self.config.reread(file_values))
        except UsageError as exc:  # the watcher validated it: only a different environment could
            self.send(("say", f"the reloaded config was refused here, keeping the previous one: {exc}"))
            return
        self.file_values = file_values

    async def _reload(self) -> None:
        try:
            self.collect()
        except Exception as exc:
            self.send(("collected", None, f"{type(exc).__name__}: {exc}", []))

    def _refresh_fixtures(self, reimported: set[Path], retired_definitions: list[Any]) -> None:
        """Values from modules imported anew, and of definitions gone, are torn down later."""
        if self.runner is None:
            return
        lifecycle = self.runner.fixtures
        retired = ScopeState()
        for path in reimported:  # their module-scoped values came from the old module
            state = lifecycle.modules.pop(path, None)
            if state is not None:
                retired.teardowns.extend(state.teardowns)
        _, stale = lifecycle.drop(retired_definitions, Path(), failed_only=False)
        retired.teardowns.extend(stale.teardowns)
        if retired.teardowns:
            self._retire(retired)

    async def _changed(self, change: Any) -> None:
        """A state change of one of this worker's checks, for conftest implementations of
        ``fraiseql_check_state_changed`` (on a thread: they are user code)."""
        pm = self.config.pluginmanager
        others = [plugin for name, plugin in pm.list_name_plugin() if not (name or "").endswith("conftest.py")]
        caller = pm.subset_hook_caller("fraiseql_check_state_changed", remove_plugins=others)
        check = self.checks.get(change.check_id)
        if self.runner is None or not caller.get_hookimpls():
            return
        try:
            await self.runner.lane.run(caller, change=change, check=check)
        except Exception as exc:
            self.send(
                ("say", f"fraiseql_check_state_changed failed for {change.check_id}: {type(exc).__name__}: {exc}")
            )


def _bare(result: Result, error: BaseException) -> Result:
    """``result`` without what could not be sent (its plugins' extra fields and values)."""
    result.extra, result.values = {}, {}
    result.message = f"{result.message} [the result could not be sent whole: {type(error).__name__}: {error}]"
    return result


def _kill_group(signum: int = 0, frame: object = None) -> None:
    """End this worker and every process of its group: what its checks started too."""
    with contextlib.suppress(OSError):
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os._exit(1)


def _die_with_parent() -> None:
    """Ask Linux to signal this process when the watcher dies (a kill -9 included): the
    signal takes the whole process group down. (The reader thread does the same when
    the watcher's end of the socket closes, in case the main thread is busy in C.)"""
    signal.signal(signal.SIGTERM, _kill_group)
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def main() -> None:
    _die_with_parent()
    sock = socket.socket(fileno=int(sys.argv[1]))
    sock.setblocking(True)
    sock.set_inheritable(False)  # programs a check starts do not get the watcher's channel
    channel = BlockingChannel(sock)
    (start,) = channel.receive()
    if os.getppid() != start["watcher_pid"]:  # the watcher died before PDEATHSIG was set
        os._exit(1)
    sys.path[:] = list(start["sys_path"])
    if "stacks_fd" in start:  # stuck in C code, the worker can still show the watcher its stacks
        faulthandler.register(signal.SIGUSR1, file=int(start["stacks_fd"]), all_threads=True, chain=False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the watcher's; it tells us what to do
    _interrupt.handling(True)  # so every KeyboardInterrupt here was raised by user code
    code = Worker(channel, start).main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)  # threads a check left behind are not waited for


if __name__ == "__main__":
    main()
