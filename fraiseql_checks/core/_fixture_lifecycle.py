"""Setting fixtures up and tearing them down, per scope, on the event loop.

A module- or session-scoped value is set up once even when many checks ask for it
at the same moment: the first request creates it in a task of its own, shielded
from that check's timeout, and the others wait for the same future. A failed
setup is remembered, so every check using the fixture errors with its message.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraiseql_checks.core import _interrupt
from fraiseql_checks.core._pytest_compat import Skipped
from fraiseql_checks.core._threads import ThreadLane
from fraiseql_checks.core.fixtures import Closure, FixtureDef, Kind, Scope
from fraiseql_checks.trace import current_run

if TYPE_CHECKING:
    import asyncio

Teardown = Callable[[], Awaitable[None]]
#: The name of a task setting up a module or session fixture starts with this.
FIXTURE_TASK = "fixture "


class FixtureError(Exception):
    """A fixture's setup raised; the check that needed it is an error."""

    def __init__(self, definition: FixtureDef, cause: BaseException) -> None:
        self.definition = definition
        self.cause = cause
        try:
            text = str(cause)
        except Exception:
            text = "<its message could not be printed>"
        super().__init__(f"fixture {definition.name!r} failed: {type(cause).__name__}: {text}")


class ScopeState:
    """The values and pending teardowns of one scope instance (a run, a module, the session)."""

    def __init__(self) -> None:
        self.values: dict[FixtureDef, asyncio.Future[Any]] = {}
        self.teardowns: list[tuple[FixtureDef, Teardown]] = []

    def forget(self, definition: FixtureDef) -> None:
        self.values.pop(definition, None)


async def withdraw_cancel(task: asyncio.Task[Any], abandoned: Callable[[asyncio.Task[Any]], bool]) -> None:
    """Take back what the code a task runs asked of it with ``current_task().cancel()`` (a
    check's or a fixture's own), once that code has ended: its count, and a request not yet
    delivered, which Python 3.11's ``uncancel()`` keeps (it arrives at the ``sleep(0)``). A
    cancellation that arrives meanwhile and is ``abandoned(task)`` (the runner's) propagates."""
    import asyncio

    while task.cancelling():
        task.uncancel()
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        if abandoned(task):
            raise
        while task.cancelling():
            task.uncancel()


def _mark_retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class FixtureLifecycle:
    """Creates fixture values for check runs and tears them down by scope."""

    def __init__(self, lane: ThreadLane, abandoned: Callable[[asyncio.Task[Any]], bool]) -> None:
        self.lane = lane
        #: Whether a task's cancellation is the runner's (its run is being abandoned: the
        #: teardown stops there); any other is the teardown's own doing, an error of it.
        self.abandoned = abandoned
        self.session = ScopeState()
        self.modules: dict[Path, ScopeState] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _state(self, definition: FixtureDef, path: Path, run: ScopeState) -> ScopeState:
        if definition.scope is Scope.CHECK:
            return run
        if definition.scope is Scope.SESSION:
            return self.session
        state = self.modules.get(path)
        if state is None:
            state = self.modules[path] = ScopeState()
        return state

    async def setup(self, closure: Closure, path: Path, run: ScopeState) -> dict[str, Any]:
        """The values for a check's arguments; raises ``FixtureError`` or ``Skipped``."""
        import asyncio

        values: dict[FixtureDef, Any] = {}
        for definition in closure.order:
            state = self._state(definition, path, run)
            future = state.values.get(definition)
            if future is None:
                future = asyncio.get_running_loop().create_future()
                future.add_done_callback(_mark_retrieved)
                state.values[definition] = future
                kwargs = {arg: values[dep] for arg, dep in closure.deps[definition].items()}
                if definition.scope is Scope.CHECK:
                    await self._create(definition, kwargs, state, future)
                else:
                    from fraiseql_checks.core import _tasks

                    task = asyncio.get_running_loop().create_task(
                        self._create(definition, kwargs, state, future), name=f"{FIXTURE_TASK}{definition.name}"
                    )
                    # the run's that set it up: another check's code cannot cancel it
                    _tasks.assign(task, current_run.get())
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            try:
                values[definition] = await asyncio.shield(future) if not future.done() else future.result()
            except FixtureError as exc:  # a fresh one per requester: the cached one's traceback stays short
                raise FixtureError(exc.definition, exc.cause) from None
        return {name: values[definition] for name, definition in closure.args.items()}

    async def _create(
        self,
        definition: FixtureDef,
        kwargs: dict[str, Any],
        state: ScopeState,
        future: asyncio.Future[Any],
    ) -> None:
        import asyncio

        func = definition.func
        try:
            if definition.kind is Kind.SYNC:
                value = await self.lane.run(func, **kwargs)
            elif definition.kind is Kind.ASYNC:
                value = await func(**kwargs)
            elif definition.kind is Kind.GENERATOR:
                generator = func(**kwargs)
                value = await self.lane.run(next, generator)
                state.teardowns.append((definition, self._generator_teardown(definition, generator)))
            else:
                agen = func(**kwargs)
                value = await agen.__anext__()
                state.teardowns.append((definition, self._async_generator_teardown(definition, agen)))
        except asyncio.CancelledError:
            state.forget(definition)
            if not future.done():
                future.cancel()
            raise
        except Skipped as exc:
            future.set_exception(exc)
        except StopIteration:
            future.set_exception(FixtureError(definition, RuntimeError("generator fixture did not yield")))
        except StopAsyncIteration:
            future.set_exception(FixtureError(definition, RuntimeError("async generator fixture did not yield")))
        except BaseException as exc:  # sys.exit() in a fixture fails the fixture, not the run
            if _interrupt.is_real(exc):
                state.forget(definition)
                if not future.done():
                    future.cancel()
                raise
            future.set_exception(FixtureError(definition, exc))
        else:
            future.set_result(value)

    def _generator_teardown(self, definition: FixtureDef, generator: Any) -> Teardown:
        def finish() -> None:
            try:
                next(generator)
            except StopIteration:
                return
            raise RuntimeError(f"fixture {definition.name!r} yielded more than once")

        async def teardown() -> None:
            await self.lane.run(finish)

        return teardown

    def _async_generator_teardown(self, definition: FixtureDef, agen: Any) -> Teardown:
        async def teardown() -> None:
            try:
                await agen.__anext__()
            except StopAsyncIteration:
                return
            raise RuntimeError(f"fixture {definition.name!r} yielded more than once")

        return teardown

    def drop(
        self, definitions: Iterable[FixtureDef], path: Path, *, failed_only: bool
    ) -> tuple[list[FixtureDef], ScopeState]:
        """Forget module and session values so the next check that needs them sets them up again.

        With ``failed_only``, only set-ups that failed are forgotten (a failure is
        otherwise remembered for the life of the scope). Returns what was dropped and
        a scope holding the dropped values' teardowns, to run once nothing uses them.
        """
        dropped: list[FixtureDef] = []
        retired = ScopeState()
        for definition in definitions:
            if definition.scope is Scope.CHECK:
                continue
            state = self.session if definition.scope is Scope.SESSION else self.modules.get(path)
            future = state.values.get(definition) if state is not None else None
            if state is None or future is None or not future.done():
                continue
            if failed_only and (future.cancelled() or future.exception() is None):
                continue
            del state.values[definition]
            dropped.append(definition)
            for item in [item for item in state.teardowns if item[0] is definition]:
                state.teardowns.remove(item)
                retired.teardowns.append(item)
        return dropped, retired

    async def teardown(self, state: ScopeState, timeout: float) -> list[tuple[FixtureDef, BaseException]]:
        """Run a scope's teardowns, newest first; each is bounded by ``timeout``."""
        import asyncio

        errors: list[tuple[FixtureDef, BaseException]] = []
        task = asyncio.current_task()
        # A module's or the session's, outside any run: its code is a check author's (a
        # check's own teardowns run inside its run, which the guard knows already).
        as_code: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext
        if current_run.get() is None:
            from fraiseql_checks.core._tasks import fixture_code

            as_code = functools.partial(fixture_code, task)
        while state.teardowns:
            definition, teardown = state.teardowns.pop()
            state.forget(definition)
            try:
                with as_code():
                    async with asyncio.timeout(timeout):
                        await teardown()
            except TimeoutError:
                errors.append((definition, TimeoutError(f"teardown timed out after {timeout:g}s")))
            except asyncio.CancelledError as exc:
                if task is None or self.abandoned(task):
                    raise
                errors.append((definition, exc))  # the teardown cancelled its own task
            except BaseException as exc:
                if _interrupt.is_real(exc):
                    raise
                errors.append((definition, exc))
            if task is not None and task.cancelling() and not self.abandoned(task):
                await withdraw_cancel(task, self.abandoned)
        state.values.clear()
        return errors

    async def teardown_module(self, path: Path, timeout: float) -> list[tuple[FixtureDef, BaseException]]:
        state = self.modules.pop(path, None)
        return await self.teardown(state, timeout) if state else []

    async def close(self, timeout: float) -> list[tuple[FixtureDef, BaseException]]:
        """Tear down every module scope, then the session; cancel unfinished set-ups."""
        for task in list(self._tasks):
            task.cancel()
        errors = []
        for path in list(self.modules):
            errors.extend(await self.teardown_module(path, timeout))
        errors.extend(await self.teardown(self.session, timeout))
        return errors
