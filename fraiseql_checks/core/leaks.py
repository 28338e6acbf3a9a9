"""Threads that checks leave running: named in the summary, never waited for at exit.

Python waits for every non-daemon thread before a process exits, so one check
that starts a thread and forgets it would keep a one-shot run (a CI job) from
ever ending. While checks run, ``threading.Thread.start`` notes which check
started each thread; at the end, threads still running are listed by check in
the terminal summary, and the process exits without waiting for them.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.trace import current_run

if TYPE_CHECKING:
    from fraiseql_checks.config import Config
    from fraiseql_checks.core.session import Session
    from fraiseql_checks.reports.terminal import TerminalReporter

_ATTR = "_fraiseql_check_id"
_original_start = threading.Thread.start


def _start(self: threading.Thread, *args: Any, **kwargs: Any) -> None:
    run = current_run.get()
    if run is not None:
        setattr(self, _ATTR, run.check.id)
    _original_start(self, *args, **kwargs)


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

    @hookimpl(tryfirst=True)
    def fraiseql_sessionfinish(self, session: Session, exitstatus: int) -> None:
        threading.Thread.start = _original_start  # type: ignore[method-assign]
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
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
