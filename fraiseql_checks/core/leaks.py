"""What checks leave behind for the process's exit: threads, exit handlers.

Python waits for every non-daemon thread before a process exits, so one check
that starts a thread and forgets it would keep a one-shot run (a CI job) from
ever ending. While checks run, ``threading.Thread.start`` notes which check
started each thread; at the end, threads still running are listed by check in
the terminal summary, and the process exits without waiting for them.

Python also runs every exit handler (``atexit.register``) and waits for each: a
check that registers one that never returns (``atexit.register(time.sleep, 3600)``)
would keep the run from ending after its results were written. The handlers run
before the exit, within ``EXIT_HANDLERS_LIMIT``; past it the run says so, naming the
checks that registered handlers, and exits without waiting.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.trace import current_run

if TYPE_CHECKING:
    from fraiseql_checks.config import Config
    from fraiseql_checks.core.session import Session
    from fraiseql_checks.reports.terminal import TerminalReporter

_ATTR = "_fraiseql_check_id"
_original_start = threading.Thread.start
_original_register = atexit.register
#: How long the exit handlers may take, all together, at the end of a one-shot run.
EXIT_HANDLERS_LIMIT = 10.0
#: The exit handlers registered inside a check's run: (the check's id, the handler).
_handlers_of_checks: list[tuple[str, Callable[..., Any]]] = []


def _start(self: threading.Thread, *args: Any, **kwargs: Any) -> None:
    run = current_run.get()
    if run is not None:
        setattr(self, _ATTR, run.check.id)
    _original_start(self, *args, **kwargs)


def _register(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
    run = current_run.get()
    if run is not None:
        _handlers_of_checks.append((run.check.id, func))
    return _original_register(func, *args, **kwargs)


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
        threading.Thread.start = _start  # type: ignore[method-assign]
        atexit.register = _register  # type: ignore[assignment]

    @hookimpl(tryfirst=True)
    def fraiseql_sessionfinish(self, session: Session, exitstatus: int) -> None:
        threading.Thread.start = _original_start  # type: ignore[method-assign]
        atexit.register = _original_register
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
        atexit.register = _original_register
        config.pluginmanager.unregister(plugin)


def exit_without_waiting(code: int, grace: float = 0.2) -> None:
    """Exit now with ``code`` if non-daemon threads would keep the process alive.

    Threads that end within ``grace`` seconds (idle thread pools shutting down)
    are waited for; a check's runaway thread is not."""
    main = threading.main_thread()
    others = [t for t in threading.enumerate() if t is not main and t.is_alive() and not t.daemon]
    deadline = time.monotonic() + grace
    for thread in others:
        thread.join(max(deadline - time.monotonic(), 0))
    if any(thread.is_alive() for thread in others):
        _flush()
        os._exit(code)


def run_exit_handlers(code: int, limit: float = EXIT_HANDLERS_LIMIT) -> None:
    """Run the exit handlers (``atexit``) now, on this thread, as the interpreter's exit
    would (they do not run again). If they have not all returned after ``limit`` seconds,
    say so on stderr, naming the checks that registered handlers, and exit with ``code``
    without waiting: the results are written, and a handler must not hold the run."""
    finished = threading.Event()

    def give_up() -> None:
        if finished.wait(limit):
            return
        by = sorted(
            {f"{check_id} ({getattr(func, '__qualname__', repr(func))})" for check_id, func in _handlers_of_checks}
        )
        named = f"; registered by {', '.join(by)}" if by else " (none was registered by a check's run)"
        _flush()
        line = f"fraiseql-check: the exit handlers (atexit) have not returned after {limit:g}s{named}"
        os.write(2, f"{line}; exiting without waiting\n".encode(errors="replace"))
        os._exit(code)

    threading.Thread(target=give_up, name="fraiseql-check-exit", daemon=True).start()
    atexit._run_exitfuncs()
    finished.set()


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
