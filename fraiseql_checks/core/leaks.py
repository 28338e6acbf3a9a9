"""What checks leave behind for the process's exit: threads, exit handlers.

Python waits for every non-daemon thread before a process exits, so one check
that starts a thread and forgets it would keep a one-shot run (a CI job) from
ever ending. While checks run, ``threading.Thread.start`` notes which check
started each thread; at the end, threads still running are listed by check in
the terminal summary, and the process exits without waiting for them.

Python also runs every exit handler (``atexit.register``) and waits for each: a
check that registers one that never returns (``atexit.register(time.sleep, 3600)``)
would keep the run from ending after its results were written. The handlers
registered while a check (or its fixtures' set-up) runs are kept here instead, and run
before the exit (the last registered first, as ``atexit`` runs them), within the
longest timeout of the checks that registered them: past it the run names the check
whose handler has not returned and exits without waiting. The others (a conftest's, a
library's, a check file's import's) are the interpreter's, as before.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.trace import current_run

if TYPE_CHECKING:
    from fraiseql_checks.config import Config
    from fraiseql_checks.core.session import Session
    from fraiseql_checks.reports.terminal import TerminalReporter

_ATTR = "_fraiseql_check_id"
_original_start = threading.Thread.start
_original_register = atexit.register
_original_unregister = atexit.unregister


class _Handler(NamedTuple):
    """An exit handler registered inside a check's run."""

    check_id: str
    timeout: float  # the check's: the time its handlers may take at exit
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


#: The exit handlers registered inside checks' runs, in the order they were registered.
_handlers_of_checks: list[_Handler] = []
_left_over_registered = False


def _start(self: threading.Thread, *args: Any, **kwargs: Any) -> None:
    run = current_run.get()
    if run is not None:
        setattr(self, _ATTR, run.check.id)
    _original_start(self, *args, **kwargs)


def _register(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
    run = current_run.get()
    if run is None:
        return _original_register(func, *args, **kwargs)
    _handlers_of_checks.append(_Handler(run.check.id, run.check.timeout, func, args, kwargs))
    return func


def _unregister(func: Callable[..., Any]) -> None:
    _handlers_of_checks[:] = [handler for handler in _handlers_of_checks if handler.func != func]
    _original_unregister(func)


def leaked_threads() -> list[tuple[str, threading.Thread]]:
    """Non-daemon threads started by a check and still running, with the check's id."""
    return [
        (getattr(thread, _ATTR), thread)
        for thread in threading.enumerate()
        if thread.is_alive() and not thread.daemon and hasattr(thread, _ATTR)
    ]


class ThreadLeaks:
    """Registered for the session: notes who starts threads, reports the ones left running."""

    def __init__(self) -> None:
        self.leaked: list[tuple[str, str]] = []

    @hookimpl
    def fraiseql_sessionstart(self, session: Session) -> None:
        global _left_over_registered
        threading.Thread.start = _start  # type: ignore[method-assign]
        if not _left_over_registered:  # checks' handlers the command line does not run (run in-process)
            _left_over_registered = True
            _original_register(_run_left_over)
        atexit.register = _register  # type: ignore[assignment]
        atexit.unregister = _unregister

    @hookimpl(tryfirst=True)
    def fraiseql_sessionfinish(self, session: Session, exitstatus: int) -> None:
        threading.Thread.start = _original_start  # type: ignore[method-assign]
        atexit.register = _original_register  # (unregister stays ours: a conftest's hook may still call it)
        found = leaked_threads()
        deadline = time.monotonic() + 0.2  # idle pool threads told to stop are on their way out
        for _, thread in found:
            thread.join(max(deadline - time.monotonic(), 0))
        self.leaked = [(check_id, thread.name) for check_id, thread in found if thread.is_alive()]

    @hookimpl
    def fraiseql_terminal_summary(self, reporter: TerminalReporter, exitstatus: int) -> None:
        if not self.leaked:
            return
        reporter.sep("=", "threads left running", "yellow")
        for check_id, name in self.leaked:
            reporter.write_line(f"{check_id} started thread {name!r} and left it running; not waited for at exit")


@hookimpl
def fraiseql_configure(config: Config) -> None:
    config.pluginmanager.register(ThreadLeaks(), "thread-leaks")


@hookimpl
def fraiseql_unconfigure(config: Config) -> None:
    plugin = config.pluginmanager.get_plugin("thread-leaks")
    if plugin is not None:
        threading.Thread.start = _original_start  # type: ignore[method-assign]
        atexit.register = _original_register  # (unregister stays ours: a conftest's hook may still call it)
        config.pluginmanager.unregister(plugin)


def exit_without_waiting(code: int, grace: float = 0.2) -> None:
    """Exit now with ``code`` if non-daemon threads would keep the process alive.

    Threads that end within ``grace`` seconds (idle thread pools shutting down)
    are waited for; a check's runaway thread is not. The exit handlers (a conftest's,
    a library's: ``atexit``) still run first, as they would at a normal exit."""
    main = threading.main_thread()
    others = [t for t in threading.enumerate() if t is not main and t.is_alive() and not t.daemon]
    deadline = time.monotonic() + grace
    for thread in others:
        thread.join(max(deadline - time.monotonic(), 0))
    if any(thread.is_alive() for thread in others):
        atexit._run_exitfuncs()
        _flush()
        os._exit(code)


def run_exit_handlers(code: int) -> None:
    """Run the exit handlers registered inside checks' runs, the last registered first,
    on this thread; if one has not returned when the longest timeout of their checks has
    passed, say which on stderr and exit with ``code`` without waiting: the results are
    written, and a handler must not hold the run. An exception in one is said as
    ``atexit`` says it, and the others still run."""
    handlers = _handlers_of_checks[::-1]
    _handlers_of_checks.clear()
    if not handlers:
        return
    limit = max(handler.timeout for handler in handlers)
    running: list[_Handler] = []
    finished = threading.Event()

    def give_up() -> None:
        if finished.wait(limit):
            return
        handler = running[-1]
        name = getattr(handler.func, "__qualname__", None) or repr(handler.func)
        line = f"fraiseql-check: the exit handler {name} (atexit) registered by {handler.check_id}"
        _flush()
        os.write(2, f"{line} has not returned after {limit:g}s; exiting without waiting\n".encode(errors="replace"))
        os._exit(code)

    threading.Thread(target=give_up, name="fraiseql-check-exit", daemon=True).start()
    _call(handlers, running.append)
    finished.set()


def _run_left_over() -> None:
    """At the interpreter's exit: the checks' handlers ``run_exit_handlers`` did not run
    (a run started in-process, not by the command line), without a limit, as before."""
    handlers = _handlers_of_checks[::-1]
    _handlers_of_checks.clear()
    _call(handlers, lambda handler: None)


def _call(handlers: list[_Handler], starting: Callable[[_Handler], object]) -> None:
    for handler in handlers:
        starting(handler)
        try:
            handler.func(*handler.args, **handler.kwargs)
        except BaseException:  # SystemExit too: atexit says it and goes on
            sys.stderr.write(f"Exception ignored in atexit callback {handler.func!r}:\n{traceback.format_exc()}")


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
