"""Result stores: where watch mode keeps every result and every state change.

Every store implements the ``Store`` protocol below; ``stores/sqlite.py`` (the
embedded default) and ``stores/postgres.py`` are built-in plugins, and an outside
package adds one through the ``fraiseql_make_store`` hook. One contract test runs
against each. Times are seconds since the epoch throughout.

Schema changes go through each store's numbered migrations, so later features
add tables without touching existing ones.

Each check's state machine is kept too, one row per check (a ``StateRecord``),
replaced in the transaction that writes the results and changes it came with: a
restarted watcher loads them (``load_states``) and goes on where it was instead
of starting every check over as ``unknown``.

A store call may hang (a lock held elsewhere, a dead TCP peer, a hung disk): the
writer gives up on it after a while and calls ``reset``, which drops the store's
connections; the next call connects afresh. Writes are idempotent (results and
changes are keyed, states are upserts), so retrying a batch that did land after
all stores it once.

SLOs read hourly rollups: each store keeps, per check and UTC hour, the good and
bad runs and the seconds they count for, updated in the transaction that writes
the results (a row ignored as a duplicate counts nothing). ``sli_totals`` answers
any window exactly by adding the whole hours from the rollups to the partial hours
at its edges, summed from the raw results; ``plan_windows`` and ``SLIPlan.totals``
here do the arithmetic both stores share.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from fraiseql_checks.config import UsageError
from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.states import State, StateChange, StateRecord
from fraiseql_checks.trace import new_trace_id

if TYPE_CHECKING:
    from fraiseql_checks.config import Config

__all__ = [
    "SLITotals",
    "State",
    "StateChange",
    "StateRecord",
    "Store",
    "StoreUnavailable",
    "StoredResult",
    "open_store",
]

#: The width of a rollup bucket, in seconds.
HOUR = 3600


class StoreUnavailable(Exception):
    """The store cannot be reached or written now; the caller keeps the data and retries."""


@dataclasses.dataclass(frozen=True)
class StoredResult:
    """What the store keeps of one result."""

    check_id: str
    started_at: float
    duration_s: float
    outcome: Outcome
    message: str = ""
    #: The W3C trace id of the run (a fresh one for results that had none). A result
    #: is identified by its check and its start: a check never overlaps itself.
    trace_id: str = ""
    values: dict[str, float] = dataclasses.field(default_factory=dict)
    timed_out: bool = False
    #: ``check``, ``collect`` (a file that did not import) or ``teardown``.
    kind: str = "check"
    #: The check's interval when it ran: in a time-based SLI each run counts for it.
    interval_s: float = 0.0
    #: A maintenance window covered the run: it counts for no SLI.
    silenced: bool = False

    @classmethod
    def of(cls, result: Result, started_at: float, *, interval_s: float = 0.0, silenced: bool = False) -> StoredResult:
        """What the store keeps of ``result``; ``started_at`` when the result has no start."""
        return cls(
            check_id=result.id,
            started_at=result.started_at or started_at,
            duration_s=result.duration_s,
            outcome=result.outcome,
            message=result.message,
            trace_id=result.trace_id or new_trace_id(),
            values=dict(result.values),
            timed_out=result.timed_out,
            kind=result.kind,
            interval_s=interval_s,
            silenced=silenced,
        )

    def values_json(self) -> str:
        return json.dumps(self.values, separators=(",", ":")) if self.values else "{}"


@dataclasses.dataclass(frozen=True)
class SLITotals:
    """The runs of one check in one window that count for its SLIs.

    A run counts when it is a check run (not a collection error or a teardown), no
    maintenance window silenced it, and it passed (good) or failed or errored (bad);
    skipped runs count nothing. Each counted run adds its check's interval to the
    good or bad seconds.
    """

    good_s: float = 0.0
    bad_s: float = 0.0
    good_runs: int = 0
    bad_runs: int = 0

    def __add__(self, other: SLITotals) -> SLITotals:
        return SLITotals(
            self.good_s + other.good_s,
            self.bad_s + other.bad_s,
            self.good_runs + other.good_runs,
            self.bad_runs + other.bad_runs,
        )


class Store(Protocol):
    """The interface every result store implements (all methods are coroutines)."""

    #: Where it writes, for messages (passwords masked by the caller).
    url: str

    async def open(self) -> None:
        """Connect and create or migrate the tables. ``StoreUnavailable`` if the
        server is not there (the watcher retries); ``UsageError`` if it never will be."""

    async def write(
        self, results: Sequence[StoredResult], changes: Sequence[StateChange], states: Sequence[StateRecord] = ()
    ) -> None:
        """Write one batch, atomically: the results, the state changes, and the states
        (each replaces the check's previous one; of two for one check, the last wins).
        Writing the same batch twice stores it once. ``StoreUnavailable`` when it
        could not: nothing of the batch was written then."""

    async def load_states(self) -> dict[str, StateRecord]:
        """The latest state written of each check, by check id."""

    async def results(self, check_id: str, since: float, until: float, limit: int | None = None) -> list[StoredResult]:
        """Results of ``check_id`` that started in ``[since, until)``, oldest first."""

    async def state_changes(self, since: float, until: float, check_id: str | None = None) -> list[StateChange]:
        """State changes in ``[since, until)``, of one check or all, oldest first."""

    async def sli_totals(
        self, check_ids: Sequence[str], windows: Sequence[tuple[float, float]]
    ) -> dict[str, list[SLITotals]]:
        """For each check in check_ids, one SLITotals per window [since, until) (same order as windows):
        the runs that started in the window, counted as in the rollups. Checks with no runs get zero totals.

        Exact while the window's raw results exist: whole hours come from the
        rollups, the partial hours at the edges from the raw results. Where those
        were pruned, the whole hours still count and the pruned edges count nothing."""

    async def prune(self, before: float, *, rollups_before: float | None = None) -> int:
        """Delete results and state changes older than ``before``, the states of checks
        that ran last before ``before`` (a check gone from the project for the whole
        retention), and the rollups of hours that ended by ``rollups_before``
        (``None``: keep every rollup); how many rows went."""

    async def reset(self) -> bool:
        """Drop every connection now, giving up on whatever is in progress (a call that
        got no answer); the next call connects afresh. Returns ``True`` when a write it
        gave up on had already asked to commit, so it may have been stored after all;
        ``False`` when nothing of it can be. Never waits on the server or the disk."""

    async def close(self) -> None:
        """Release connections; safe to call when ``open`` failed, and twice."""


def change_row(change: StateChange) -> tuple[str, float, str, str, bool, str, str, str, int]:
    return (
        change.check_id,
        change.at,
        change.previous.value,
        change.state.value,
        change.silenced,
        change.reason,
        change.message,
        change.trace_id,
        change.consecutive_failures,
    )


def change_of(row: Sequence[Any]) -> StateChange:
    check_id, at, previous, state, silenced, reason, message, trace_id, consecutive = row
    return StateChange(
        check_id=str(check_id),
        at=float(at),
        previous=State(previous),
        state=State(state),
        silenced=bool(silenced),
        reason=str(reason),
        message=str(message),
        trace_id=str(trace_id),
        consecutive_failures=int(consecutive),
    )


def state_row(
    record: StateRecord,
) -> tuple[str, str, str, int, int, str, str, float | None, float | None]:
    """A state as the stores' columns hold it (the time lists as JSON arrays)."""
    return (
        record.check_id,
        record.base.value,
        record.state.value,
        record.consecutive_failures,
        record.consecutive_successes,
        json.dumps(record.failures),
        json.dumps(record.changes),
        record.since,
        record.updated_at,
    )


def state_of(row: Sequence[Any]) -> StateRecord:
    check_id, base, state, failures, successes, failure_times, change_times, since, updated_at = row
    return StateRecord(
        check_id=str(check_id),
        base=State(base),
        state=State(state),
        consecutive_failures=int(failures),
        consecutive_successes=int(successes),
        failures=tuple(float(t) for t in json.loads(failure_times)),
        changes=tuple(float(t) for t in json.loads(change_times)),
        since=None if since is None else float(since),
        updated_at=None if updated_at is None else float(updated_at),
    )


def result_of(row: Sequence[Any]) -> StoredResult:
    check_id, started_at, duration_s, outcome, message, trace_id, values, timed_out, kind, interval_s, silenced = row
    return StoredResult(
        check_id=str(check_id),
        started_at=float(started_at),
        duration_s=float(duration_s),
        outcome=Outcome(outcome),
        message=str(message),
        trace_id=str(trace_id),
        values=json.loads(values) if isinstance(values, str) else dict(values),
        timed_out=bool(timed_out),
        kind=str(kind),
        interval_s=float(interval_s),
        silenced=bool(silenced),
    )


def hour_of(at: float) -> int:
    """The start of the UTC hour ``at`` falls in: the rollup bucket of a run started then.

    Exact at the boundaries (``at / 3600`` may round up to the next hour just below it),
    as the stores' SQL computes it."""
    hour = math.floor(at / HOUR) * HOUR
    if hour > at:
        hour -= HOUR
    elif hour + HOUR <= at:
        hour += HOUR
    return hour


@dataclasses.dataclass(frozen=True)
class SLIPlan:
    """How a store answers ``sli_totals`` for a set of windows.

    The windows' whole hours and raw edges are cut into disjoint segments, so each
    rollup row and each raw result is read once however many windows share it (the
    30-day window contains the 3-day one): the store sums each segment per check,
    ``totals`` adds the segments of each window.
    """

    #: Disjoint ``[since, until)`` ranges of rollup buckets (hour starts).
    hours: tuple[tuple[int, int], ...]
    #: Disjoint ``[since, until)`` ranges of raw results.
    raw: tuple[tuple[float, float], ...]
    #: For each window, the indexes of its segments in ``hours`` and in ``raw``.
    windows: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]

    def totals(
        self,
        check_ids: Iterable[str],
        hour_sums: Iterable[Sequence[Any]],
        raw_sums: Iterable[Sequence[Any]],
    ) -> dict[str, list[SLITotals]]:
        """Add up per window the segment sums the store found, rows of
        ``(segment index, check id, good_s, bad_s, good_runs, bad_runs)``."""
        count = len(self.windows)
        sums = {check_id: [[0.0, 0.0, 0.0, 0.0] for _ in range(count)] for check_id in check_ids}
        for part, rows in ((0, hour_sums), (1, raw_sums)):
            # which windows each segment belongs to
            windows_of: dict[int, list[int]] = {}
            for window, parts in enumerate(self.windows):
                for segment in parts[part]:
                    windows_of.setdefault(segment, []).append(window)
            for segment, check_id, good_s, bad_s, good_runs, bad_runs in rows:
                per_window = sums.get(check_id)
                if per_window is None:
                    continue
                for window in windows_of.get(segment, ()):
                    total = per_window[window]
                    total[0] += good_s or 0.0
                    total[1] += bad_s or 0.0
                    total[2] += good_runs or 0
                    total[3] += bad_runs or 0
        out = {
            check_id: [SLITotals(float(g), float(b), int(gr), int(br)) for g, b, gr, br in per_window]
            for check_id, per_window in sums.items()
        }
        return out


def plan_windows(windows: Sequence[tuple[float, float]]) -> SLIPlan:
    """Split each window ``[since, until)`` into the whole hours inside it (from the
    rollups) and the partial hours at its edges (from the raw results); a window
    without a whole hour is all raw. Then cut everything into disjoint segments."""
    hour_ranges: list[list[tuple[float, float]]] = []
    raw_ranges: list[list[tuple[float, float]]] = []
    for since, until in windows:
        first = hour_of(since)
        if first < since:
            first += HOUR
        last = hour_of(until)
        if since >= until:
            hour_ranges.append([])
            raw_ranges.append([])
        elif first < last:
            hour_ranges.append([(first, last)])
            raw_ranges.append([r for r in ((since, first), (last, until)) if r[0] < r[1]])
        else:
            hour_ranges.append([])
            raw_ranges.append([(since, until)])
    hours, hour_parts = _segments(hour_ranges)
    raw, raw_parts = _segments(raw_ranges)
    return SLIPlan(
        hours=tuple((int(a), int(b)) for a, b in hours),
        raw=tuple(raw),
        windows=tuple(zip(hour_parts, raw_parts, strict=True)),
    )


def _segments(
    ranges: list[list[tuple[float, float]]],
) -> tuple[list[tuple[float, float]], list[tuple[int, ...]]]:
    """The disjoint pieces the ranges' ends cut them into, and which pieces make up each
    window's ranges."""
    points = sorted({point for window in ranges for r in window for point in r})
    pieces = [
        (a, b)
        for a, b in itertools.pairwise(points)
        if any(since <= a and b <= until for window in ranges for since, until in window)
    ]
    parts = [
        tuple(i for i, (a, b) in enumerate(pieces) if any(since <= a and b <= until for since, until in window))
        for window in ranges
    ]
    return pieces, parts


def open_store(config: Config, url: str) -> Store:
    """The store for ``url``, from whichever plugin handles it; ``UsageError`` if none does."""
    store: Store | None = config.hook.fraiseql_make_store(config=config, url=url)
    if store is None:
        raise UsageError(
            f"no result store handles {config.mask(url)!r}: give a file path (SQLite) or a postgresql:// URL"
        )
    return store
