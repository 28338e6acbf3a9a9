"""What the status page keeps while watching: each check's latest runs and what blocked it.

A ``StatusBoard`` is registered as a plugin when watch mode starts and sees every
result (``fraiseql_report_result``): the durations of the last ``RECENT`` runs feed
the sparklines of the overview without a store query per check, and a failed run
that could not reach its target (``Result.unreachable``) marks the check "blocked
by" that target until a run says otherwise. The uptime numbers are cached here too,
and the state changes the overview tells incidents from: a page load does not read
30 days of changes again within ``CHANGES_SECONDS``, unless a run whose outcome
differs from its check's last one (the only way a state changes) came meanwhile.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.status.uptime import UptimeCache

if TYPE_CHECKING:
    from collections.abc import Iterable

    from fraiseql_checks.result import Result
    from fraiseql_checks.states import StateChange
    from fraiseql_checks.watch.watcher import Watcher

#: The registration name of the watcher's board.
BOARD = "status-board"
#: The runs a sparkline of the overview shows.
RECENT = 40
#: How long the overview's state changes are reused (other watchers' checks of a cluster change unseen here).
CHANGES_SECONDS = 15.0


class StatusBoard:
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        #: Per check: (started_at, duration_s, passed) of the latest runs, oldest first.
        self.recent: dict[str, collections.deque[tuple[float, float, bool]]] = {}
        #: Per check: the target its latest run could not reach, if that is why it failed.
        self.blocked_by: dict[str, str] = {}
        self.uptime = UptimeCache(watcher.writer.store)
        #: Counts the runs that may have changed a state.
        self.generation = 0
        #: The overview's state changes by check, when they were read and the ``generation`` then.
        self.changes: tuple[float, int, dict[str, list[StateChange]]] | None = None
        #: Per check: the overview's sparkline and bar, and what they were drawn from (its
        #: latest run and its ``Uptime``): drawn again only when one of those changed.
        self.drawings: dict[str, tuple[object, object, str, str]] = {}

    def expect(self, check_ids: Iterable[str]) -> None:
        """Make the checks' run lists now, before the watcher freezes its start-up heap
        (``watch.heap.freeze``): made at each check's first run instead, 10,000
        of them (40 runs each) were most of what every full collection of the garbage
        collector went through, 10-24 ms each on a saturated watcher (docs/performance.md)."""
        for check_id in check_ids:
            if check_id not in self.recent:
                self.recent[check_id] = collections.deque(maxlen=RECENT)

    @hookimpl
    def fraiseql_report_result(self, result: Result) -> None:
        if result.kind != "check":
            return
        runs = self.recent.get(result.id)
        if runs is None:
            runs = self.recent[result.id] = collections.deque(maxlen=RECENT)
        if not runs or runs[-1][2] != result.passed:
            self.generation += 1  # its state may have changed: the overview reads the changes again
        runs.append((result.started_at, result.duration_s, result.passed))
        if result.unreachable and not result.passed:
            self.blocked_by[result.id] = result.unreachable
        else:
            self.blocked_by.pop(result.id, None)


def board_of(watcher: Watcher) -> StatusBoard:
    """The watcher's board, registered on first use if watch mode did not start one."""
    board = watcher.config.pluginmanager.get_plugin(BOARD)
    if not isinstance(board, StatusBoard):
        board = StatusBoard(watcher)
        watcher.config.pluginmanager.register(board, BOARD)
    return board
