"""Every hook of fraiseql-checks, grouped by phase.

Built-in features are plugins implementing these hooks; so are third-party packages
(entry-point group ``fraiseql_checks``) and ``conftest.py`` files. In a conftest, a
function named like a hook below is an implementation without further marking; in
a plugin module, mark implementations with ``@fraiseql_checks.hookimpl``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from fraiseql_checks.api.endpoint import Endpoint
    from fraiseql_checks.checks import Check
    from fraiseql_checks.commands import Commands
    from fraiseql_checks.config import Config, Parser
    from fraiseql_checks.core.collect import CollectError
    from fraiseql_checks.core.session import Session
    from fraiseql_checks.generate import Generators
    from fraiseql_checks.notify.notifier import Notifiers
    from fraiseql_checks.reports.terminal import TerminalReporter
    from fraiseql_checks.result import Result
    from fraiseql_checks.stores import Store
    from fraiseql_checks.watch.state import StateChange
    from fraiseql_checks.watch.watcher import Watcher

PROJECT = "fraiseql_checks"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---- configure ----------------------------------------------------------------------


@hookspec(historic=True)
def fraiseql_addoption(parser: Parser) -> None:
    """Declare command-line options (``parser.addoption``) and config settings
    (``parser.addsetting``). Called once at start-up, before anything is parsed;
    plugins registered later still get it (historic)."""


@hookspec(historic=True)
def fraiseql_add_commands(commands: Commands) -> None:
    """Register subcommands (``fraiseql-check NAME ...``) with ``commands.add(Command(...))``."""


@hookspec(historic=True)
def fraiseql_add_generators(generators: Generators) -> None:
    """Register artefact generators for ``fraiseql-check generate NAME`` (alert rules,
    dashboards, ...) with ``generators.add(Generator(...))``."""


@hookspec(historic=True)
def fraiseql_add_notifiers(notifiers: Notifiers) -> None:
    """Register notifier types (``slack``, ``email``, ...) with ``notifiers.register(cls)``,
    ``cls`` a ``fraiseql_checks.notify.notifier.Notifier`` subclass; receivers of the
    ``notify`` section name them as their ``type``."""


@hookspec
def fraiseql_configure(config: Config) -> None:
    """The configuration is resolved: build and register stateful plugin objects.
    Called once, before collection."""


@hookspec
def fraiseql_unconfigure(config: Config) -> None:
    """The run is over: unregister and release what ``fraiseql_configure`` built."""


# ---- collect ------------------------------------------------------------------------


@hookspec
def fraiseql_collect_file(path: Path, session: Session) -> Sequence[Check | CollectError] | None:
    """Collect the checks in one file. Every implementation is called and the lists
    are joined; ``None`` means "not mine". A file that cannot be collected is a
    ``CollectError`` in the list, never an exception."""


@hookspec(firstresult=True)
def fraiseql_collection(session: Session) -> bool | None:
    """Perform the collection phase: fill ``session.checks`` and report the files that
    did not collect. The first implementation returning non-``None`` wins: the built-in
    one collects in this process; watch mode's has its worker processes collect."""


@hookspec
def fraiseql_collection_modifyitems(session: Session, config: Config, checks: list[Check]) -> None:
    """Filter or reorder the collected checks in place (``-k``, ``-m`` and node-id
    selection are implemented here)."""


@hookspec
def fraiseql_deselected(checks: Sequence[Check]) -> None:
    """Checks were dropped by selection."""


@hookspec
def fraiseql_collection_finish(session: Session) -> None:
    """Collection is complete; ``session.checks`` holds what will run."""


# ---- run ----------------------------------------------------------------------------


@hookspec
def fraiseql_sessionstart(session: Session) -> None:
    """Before collection starts."""


@hookspec(firstresult=True)
def fraiseql_runloop(session: Session) -> bool | None:
    """Run the collected checks. The first implementation returning non-``None`` wins:
    the one-shot runner, or watch mode's scheduler when ``--watch`` is given."""


@hookspec
def fraiseql_result(result: Result, check: Check | None) -> None:
    """A result was made and is about to be reported: add fields to ``result.extra``,
    labels, or values. ``check`` is ``None`` for collection errors."""


@hookspec
def fraiseql_report_result(result: Result) -> None:
    """Report one result (terminal, JUnit, JSON, stores and exporters)."""


@hookspec
def fraiseql_sessionfinish(session: Session, exitstatus: int) -> None:
    """Every check has run (or the run was interrupted); reports are written here."""


@hookspec(firstresult=True)
def fraiseql_fixture_broken(error: BaseException) -> bool | None:
    """Watch mode: a check that uses module- or session-scoped fixtures ended with
    ``error``. Return ``True`` if the error means a fixture value (a pool, a client)
    is broken and must be set up again for the next run, ``False`` if not. The first
    non-``None`` answer wins; the built-in answer recognises lost connections."""


# ---- store --------------------------------------------------------------------------


@hookspec(firstresult=True)
def fraiseql_make_store(config: Config, url: str) -> Store | None:
    """Watch mode: the result store for ``url`` (``--store`` or the ``store``
    setting), not yet opened; ``None`` if the URL is not for this plugin. The first
    non-``None`` answer wins (built in: a file path for SQLite, ``postgresql://``)."""


# ---- export -------------------------------------------------------------------------


@hookspec
def fraiseql_watch_start(watcher: Watcher) -> Awaitable[None] | None:
    """Watch mode is starting, on its event loop, before the first check runs: start
    servers and background tasks (``watcher.server.routes`` adds HTTP pages). A
    returned awaitable is awaited before checking starts."""


@hookspec
def fraiseql_api_endpoints(config: Config) -> Sequence[Endpoint]:
    """The routes a plugin adds to the watcher's API and status page (``api.endpoint.Endpoint``):
    served behind the token check and described in ``/api/v1/openapi.json``."""
    return ()


@hookspec
def fraiseql_watch_stop(watcher: Watcher) -> Awaitable[None] | None:
    """Watch mode is stopping: checks are done, and the store's writer still writes
    (``watcher.writer.add``): it is flushed once every plugin returned. A returned
    awaitable is awaited before the writer stops."""


# ---- notify -------------------------------------------------------------------------


@hookspec
def fraiseql_check_state_changed(change: StateChange, check: Check | None) -> None:
    """Watch mode: a check changed state (``change.previous`` → ``change.state``:
    ``unknown``, ``passing``, ``failing``, ``flapping``), once per change, never per run.
    Called on the event loop right after the run that caused it; ``change.silenced``
    is true inside a maintenance window, ``change.reason`` says why in words and
    ``change.message`` is that run's message. A flapping check gives one change to
    ``flapping`` and one when it settles, nothing in between. ``check`` is ``None``
    if the check is gone (a reload removed it). Notifiers implement this; slow work
    belongs in a task, not in the hook."""


# ---- report -------------------------------------------------------------------------


@hookspec
def fraiseql_report_header(config: Config) -> list[str] | str | None:
    """Lines for the terminal header."""


@hookspec
def fraiseql_report_collectionfinish(config: Config, session: Session) -> list[str] | str | None:
    """Lines for the terminal after the ``collected N checks`` line (``run-last-failure: ...``)."""


@hookspec
def fraiseql_terminal_summary(reporter: TerminalReporter, exitstatus: int) -> None:
    """Add a section to the terminal summary, before the final line."""


class HookRelay(Protocol):
    """The typed view of ``pluginmanager.hook``."""

    def __getattr__(self, name: str) -> Any: ...
