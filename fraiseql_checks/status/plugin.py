"""The status page plugin: its routes, and the board that watches results for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fraiseql_checks.hookspec import hookimpl

if TYPE_CHECKING:
    from fraiseql_checks.api.endpoint import Endpoint
    from fraiseql_checks.config import Config
    from fraiseql_checks.watch.watcher import Watcher


@hookimpl
def fraiseql_api_endpoints(config: Config) -> Sequence[Endpoint]:
    from fraiseql_checks.status.routes import endpoints

    return endpoints()


@hookimpl
def fraiseql_watch_start(watcher: Watcher) -> None:
    from fraiseql_checks.status.board import board_of

    board = board_of(watcher)
    check_ids = [entry.key for entry in watcher.schedule]
    board.expect(check_ids)
    board.uptime.warm(check_ids)  # the first page need not wait


@hookimpl
def fraiseql_watch_stop(watcher: Watcher) -> None:
    from fraiseql_checks.status.board import BOARD

    board = watcher.config.pluginmanager.get_plugin(BOARD)
    if board is not None:
        watcher.config.pluginmanager.unregister(board)
