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

SLOs read rollups: each store keeps, per check and UTC day and per check and UTC
hour, the good and bad runs and the seconds they count for, updated in the
transaction that writes the results (a row ignored as a duplicate counts nothing).
``sli_totals`` answers any window exactly by adding the whole days from the daily
rollups, the whole hours of its partial days from the hourly ones, and the partial
hours at its edges, summed from the raw results; ``stores/sli.py`` does the arithmetic
both stores share, and ``stores/rows.py`` turns records into the columns both store
them as.

Silences (``silences.Silence``, made through the API) are kept one row each, written
and deleted one at a time, outside the batches: the watcher holds them in memory and
reads them back at start.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from fraiseql_checks.config import UsageError
from fraiseql_checks.outbox import OutboxEntry, Status
from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.silences import Silence
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


class StoreUnavailable(Exception):
    """The store cannot be reached or written now; the caller keeps the data and retries."""


@dataclasses.dataclass(slots=True)
class StoredResult:
    """What the store keeps of one result (slots: a watcher past capacity may queue
    100,000 of them for the store, and a ``__dict__`` each was a third of their memory;
    not frozen: a watcher makes one a run, and a frozen dataclass's ``__init__`` took
    2.5 µs here against 0.9). Nothing changes one once made."""

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
        return values_json(self.values)


def values_json(values: dict[str, float]) -> str:
    """A result's recorded values as the stores keep them: compact JSON."""
    return json.dumps(values, separators=(",", ":")) if values else "{}"


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
        self,
        results: Sequence[StoredResult],
        changes: Sequence[StateChange],
        states: Sequence[StateRecord] = (),
        outbox: Sequence[OutboxEntry] = (),
    ) -> None:
        """Write one batch, atomically: the results, the state changes, the states
        (each replaces the check's previous one; of two for one check, the last wins)
        and the outbox entries (each replaces the entry of its id, except that a
        pending entry never replaces one already sent, dead or folded). Writing the
        same batch twice stores it once. ``StoreUnavailable`` when it could not:
        nothing of the batch was written then."""

    async def load_states(self) -> dict[str, StateRecord]:
        """The latest state written of each check, by check id."""

    async def outbox(
        self,
        since: float,
        until: float,
        *,
        status: Status | None = None,
        check_id: str | None = None,
        limit: int | None = None,
    ) -> list[OutboxEntry]:
        """Outbox entries created in ``[since, until)``, of one status and one check or
        all, oldest first (``status=PENDING`` with a wide window: what is left to send)."""

    async def outbox_entry(self, entry_id: str) -> OutboxEntry | None:
        """The outbox entry of that id, or ``None``."""

    async def reopen_outbox(self, entry_id: str, at: float, message_key: str) -> OutboxEntry | None:
        """Make a done entry (sent, dead, folded) pending again, at once and atomically: no
        attempts, no error, not sent, due at ``at``, to go out under ``message_key``. The
        entry as it is now; ``None`` when there is no such entry or it is pending already."""

    async def silences(self) -> list[Silence]:
        """Every silence kept (ended ones too, until pruned), by ``starts_at`` then id."""

    async def write_silence(self, silence: Silence) -> None:
        """Keep ``silence``, replacing the one of its id; ``StoreUnavailable`` when it could not."""

    async def delete_silence(self, silence_id: str) -> bool:
        """Remove the silence of that id; whether there was one."""

    async def results(self, check_id: str, since: float, until: float, limit: int | None = None) -> list[StoredResult]:
        """Results of ``check_id`` that started in ``[since, until)``, oldest first."""

    async def state_changes(self, since: float, until: float, check_id: str | None = None) -> list[StateChange]:
        """State changes in ``[since, until)``, of one check or all, oldest first."""

    async def sli_totals(
        self, check_ids: Sequence[str], windows: Sequence[tuple[float, float]]
    ) -> dict[str, list[SLITotals]]:
        """For each check in check_ids, one SLITotals per window [since, until) (same order as windows):
        the runs that started in the window, counted as in the rollups. Checks with no runs get zero totals.

        Exact while the window's raw results exist: whole UTC days come from the daily
        rollups, whole hours from the hourly ones, the partial hours at the edges from
        the raw results. Where those were pruned, the whole days and hours still count
        and the pruned edges count nothing."""

    async def prune(self, before: float, *, rollups_before: float | None = None) -> int:
        """Delete results and state changes older than ``before``, the states of checks
        that ran last before ``before`` (a check gone from the project for the whole
        retention), the outbox entries made before ``before`` that are no longer
        pending, the silences that ended before ``before``, and the rollups of hours
        and of days that ended by ``rollups_before`` (``None``: keep every rollup); how
        many rows went."""

    async def reset(self) -> bool:
        """Drop every connection now, giving up on whatever is in progress (a call that
        got no answer); the next call connects afresh. Returns ``True`` when a write it
        gave up on had already asked to commit, so it may have been stored after all;
        ``False`` when nothing of it can be. Never waits on the server or the disk."""

    async def close(self) -> None:
        """Release connections; safe to call when ``open`` failed, and twice."""


def open_store(config: Config, url: str) -> Store:
    """The store for ``url``, from whichever plugin handles it; ``UsageError`` if none does."""
    store: Store | None = config.hook.fraiseql_make_store(config=config, url=url)
    if store is None:
        raise UsageError(
            f"no result store handles {config.mask(url)!r}: give a file path (SQLite) or a postgresql:// URL"
        )
    return store
