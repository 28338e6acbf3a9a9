"""The tasks of a loop that runs checks: one check's code cannot cancel what is not its own,
nor stop the loop.

A check that cancels tasks it did not start (``for task in asyncio.all_tasks():
task.cancel()``, shutdown code copied into a check, a cancel it scheduled for its own
task that fires after its run ended) would otherwise cancel the run's main task, a
watch worker's own tasks, or the task another check runs on: the run ends with an
internal error, the worker exits again and again, an innocent check is reported as
failed. Every task of such a loop is a ``GuardedTask``, and ``cancel`` called from
inside a check's run (``current_run`` is set: its code, its callbacks, its ``def``
code on a lane's thread) is refused (returns ``False``, as for a task that is done)
when the task

* runs another check's run (``run``), or
* is ours: made outside any run (``owner`` is ``None``: the run's own tasks, a
  one-shot run's slots, a watch worker's), and runs no run of the caller's.

A check may still cancel its own task (its run ends as an error saying so), and any
task made inside a check's run (its own, a fixture's, a library's, which a shared
fixture's client may cancel from another check's run). Code outside any run (ours, the
watchdog's, a thread a check started with a context of its own) is not restricted.
Code that means it can get past this (``asyncio.Task.cancel(task)``); what it cannot
do is blind the run by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Coroutine
from typing import Any

from fraiseql_checks.trace import RunContext, current_run


class GuardedTask(asyncio.Task[Any]):
    """A task whose ``cancel`` refuses another check's code (see the module's words)."""

    #: The check run this task is running now (``Runner.run_check`` sets it for the
    #: run, its fixtures' set-up and teardown included), else ``None``.
    run: RunContext | None = None
    #: The id of the check whose run made this task; ``None``: made outside any run.
    owner: str | None = None
    #: Whether the cancellation last accepted while it ran a run came from that run's own
    #: code (``False``: from code outside any run). The runner reads it for the message.
    cancelled_by_run = False

    def cancel(self, msg: Any | None = None) -> bool:
        caller = current_run.get()
        run = self.run
        if caller is not None and run is not caller and (run is not None or self.owner is None):
            return False
        if run is not None:
            self.cancelled_by_run = caller is not None
        return super().cancel(msg)


def guarded_task(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], context: contextvars.Context | None = None
) -> GuardedTask:
    """The loop's task factory: every task guarded, noting the check whose run made it."""
    task = GuardedTask(coro, loop=loop, context=context)
    run = current_run.get() if context is None else context.get(current_run)
    if run is not None:
        task.owner = run.check.id
    return task


#: What ``loop.stop()`` raises in a check's code.
STOP_REFUSED = "loop.stop() called by a check: the event loop is the runner's, shared by every check"


def guard(loop: asyncio.AbstractEventLoop) -> None:
    """Make every task ``loop`` creates from now on guarded, and its ``stop()`` refuse a
    check's code (it raises ``RuntimeError`` there: an error of that check). Before, a
    check calling ``asyncio.get_running_loop().stop()`` ended a one-shot run as an
    internal error and a watch worker at every run. Nothing is done to a loop that has a
    task factory already (guarded, or someone else's)."""
    if loop.get_task_factory() is not None:
        return
    loop.set_task_factory(guarded_task)  # type: ignore[arg-type]
    stop = loop.stop

    def guarded_stop() -> None:
        if current_run.get() is not None:
            raise RuntimeError(STOP_REFUSED)
        stop()

    with contextlib.suppress(AttributeError):  # a loop written in C may take no attribute
        loop.stop = guarded_stop  # type: ignore[method-assign]
