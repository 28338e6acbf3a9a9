"""The tasks of a loop that runs checks: one check's code cannot cancel the runner's
tasks or another check's run, nor stop the loop.

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
* is ours (``ours``: made by the runner's own code, in a context ``ours_context``
  marked: the run's main task, a one-shot run's slots, a watch worker's tasks), and
  runs no run of the caller's.

A check may still cancel its own task (its run ends as an error saying so), any task
made inside a check's run (its own, a fixture's, a library's: a shared client's task
may be cancelled from another check's run), and a task made outside any run by code
that is not ours (``asyncio.run_coroutine_threadsafe`` from a thread). Code outside
any run (ours, the watchdog's, a thread a check started with a context of its own) is
not restricted. So the protection has limits: a task a check made (a ``gather``'s, a
``TaskGroup``'s child) can be cancelled by another check's code, which ends that run
as an error; a task a check's code started keeps that check's run as its own, even
when it serves a shared client later. Code that means it can get past all of this
(``asyncio.Task.cancel(task)``); what it cannot do is blind the run by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from fraiseql_checks.trace import RunContext, current_run

T = TypeVar("T")

#: Set in the contexts the runner's own code runs in (``ours_context``): tasks made
#: there outside any check's run are ours.
_ours: contextvars.ContextVar[bool] = contextvars.ContextVar("fraiseql_checks_ours", default=False)
#: Set while a module's or the session's fixture tears down, outside any run
#: (``fixture_code``): its code's cancels are a check author's, not ours.
_fixture_code: contextvars.ContextVar[object | None] = contextvars.ContextVar("fraiseql_checks_fixture", default=None)


def ours_context() -> contextvars.Context:
    """A copy of the current context, marked as the runner's: for its main task, and for
    callbacks a signal or another thread schedules (a signal handler runs in the context
    the main thread happens to be in: a check's run, while a check holds the loop)."""
    context = contextvars.copy_context()
    context.run(_ours.set, True)
    context.run(current_run.set, None)
    return context


def mark_ours() -> None:
    """Mark the current context as the runner's (a watch worker's main thread, its reader)."""
    _ours.set(True)


class GuardedTask(asyncio.Task[Any]):
    """A task whose ``cancel`` refuses another check's code (see the module's words)."""

    #: The check run this task is running now (``Runner.run_check`` sets it for the
    #: run, its fixtures' set-up and teardown included; a wide fixture's set-up task is
    #: the run's that set it up; ``fixture_code`` gives a wide teardown its own), else ``None``.
    run: RunContext | object | None = None
    #: The id of the check whose run made this task; ``None``: made outside any run.
    owner: str | None = None
    #: Made by the runner's own code, outside any run.
    ours = False
    #: Whether the cancellation last accepted while it ran a run came from that run's own
    #: code (``False``: from code outside any run). The runner reads it for the message.
    cancelled_by_run = False

    def cancel(self, msg: Any | None = None) -> bool:
        caller: object | None = current_run.get()
        if caller is None:
            caller = _fixture_code.get()
        run = self.run
        if caller is not None and run is not caller and (run is not None or self.ours):
            return False
        if run is not None:
            self.cancelled_by_run = caller is not None
        return super().cancel(msg)


def guarded_task(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], context: contextvars.Context | None = None
) -> GuardedTask:
    """The loop's task factory: every task guarded, noting the check whose run made it,
    or that the runner's own code made it."""
    task = GuardedTask(coro, loop=loop, context=context)
    if context is None:
        run, ours = current_run.get(), _ours.get()
    else:
        run, ours = context.get(current_run), context.get(_ours, False)
    if run is not None:
        task.owner = run.check.id
    elif ours:
        task.ours = True
    return task


#: What ``loop.stop()`` and ``loop.shutdown_default_executor()`` raise in a check's code.
STOP_REFUSED = "loop.stop() called by a check: the event loop is the runner's, shared by every check"
SHUTDOWN_REFUSED = (
    "loop.shutdown_default_executor() called by a check: the loop's executor is shared by every check"
    " (asyncio.to_thread)"
)


def guard(loop: asyncio.AbstractEventLoop) -> None:
    """Make every task ``loop`` creates from now on guarded, and its ``stop()`` and
    ``shutdown_default_executor()`` refuse a check's code (they raise ``RuntimeError``
    there: an error of that check, or of the callback that called it). Before, a check
    calling ``asyncio.get_running_loop().stop()`` ended a one-shot run as an internal
    error and a watch worker at every run, and one shutting the default executor down
    broke ``asyncio.to_thread`` in every check after it. Nothing is done to a loop that
    has a task factory already (guarded, or someone else's)."""
    if loop.get_task_factory() is not None:
        return
    loop.set_task_factory(guarded_task)  # type: ignore[arg-type]
    stop, shutdown = loop.stop, loop.shutdown_default_executor

    def guarded_stop() -> None:
        if current_run.get() is not None:
            raise RuntimeError(STOP_REFUSED)
        stop()

    async def guarded_shutdown(*args: Any, **kwargs: Any) -> None:
        if current_run.get() is not None:
            raise RuntimeError(SHUTDOWN_REFUSED)
        await shutdown(*args, **kwargs)

    with contextlib.suppress(AttributeError):  # a loop written in C may take no attribute
        loop.stop = guarded_stop  # type: ignore[method-assign]
        loop.shutdown_default_executor = guarded_shutdown  # type: ignore[method-assign]


#: What ``run_until_complete`` raises when the loop was stopped first.
_STOPPED_EARLY = "Event loop stopped before Future completed."


def run_to_end(loop: asyncio.AbstractEventLoop, future: asyncio.Future[T]) -> T:
    """``loop.run_until_complete(future)``, going on when the loop was stopped before
    ``future`` was done: by code the guard cannot tell from ours (a thread of an executor
    has no run: ``run_in_executor(None, loop.call_soon_threadsafe, loop.stop)``). Any
    other error (another loop running in this thread) is raised."""
    while True:
        try:
            return loop.run_until_complete(future)
        except RuntimeError as exc:
            if str(exc) != _STOPPED_EARLY or future.done() or loop.is_closed():
                raise


def assign(task: asyncio.Task[Any] | None, run: object | None) -> object | None:
    """Make ``run`` the run ``task`` runs now, for the guard (``None``: none); the one it
    ran before. A task that is not guarded (made by another loop's factory) is left alone."""
    if not isinstance(task, GuardedTask):
        return None
    previous, task.run = task.run, run
    return previous


@contextlib.contextmanager
def fixture_code(task: asyncio.Task[Any] | None) -> Iterator[None]:
    """While a module's or the session's fixture tears down on ``task``, outside any run:
    its code may cancel ``task`` (its own, for the teardown) and what runs made, not the
    runner's other tasks nor a check's run (``for t in asyncio.all_tasks(): t.cancel()``
    in a module fixture's teardown ended a one-shot run as an internal error)."""
    who = object()
    token = _fixture_code.set(who)
    previous = assign(task, who)
    try:
        yield
    finally:
        _fixture_code.reset(token)
        assign(task, previous)
