"""Result stores: where watch mode keeps every result and every state change.

Every store implements the ``Store`` protocol below; ``stores/sqlite.py`` (the
embedded default) and ``stores/postgres.py`` are built-in plugins, and an outside
package adds one through the ``fraiseql_make_store`` hook. One contract test runs
against each. Times are seconds since the epoch throughout.

Schema changes go through each store's numbered migrations, so later features
(per-interval rollups for SLOs) add tables without touching existing ones.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from fraiseql_checks.config import UsageError
from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.trace import new_trace_id
from fraiseql_checks.watch.state import State, StateChange

if TYPE_CHECKING:
    from fraiseql_checks.config import Config

__all__ = ["State", "StateChange", "Store", "StoreUnavailable", "StoredResult", "open_store"]


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

    @classmethod
    def of(cls, result: Result, started_at: float) -> StoredResult:
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
        )

    def values_json(self) -> str:
        return json.dumps(self.values, separators=(",", ":")) if self.values else "{}"


class Store(Protocol):
    """The interface every result store implements (all methods are coroutines)."""

    #: Where it writes, for messages (passwords masked by the caller).
    url: str

    async def open(self) -> None:
        """Connect and create or migrate the tables. ``StoreUnavailable`` if the
        server is not there (the watcher retries); ``UsageError`` if it never will be."""

    async def write(self, results: Sequence[StoredResult], changes: Sequence[StateChange]) -> None:
        """Write one batch, atomically; writing the same batch twice stores it once.
        ``StoreUnavailable`` when it could not: nothing of the batch was written then."""

    async def results(self, check_id: str, since: float, until: float, limit: int | None = None) -> list[StoredResult]:
        """Results of ``check_id`` that started in ``[since, until)``, oldest first."""

    async def state_changes(self, since: float, until: float, check_id: str | None = None) -> list[StateChange]:
        """State changes in ``[since, until)``, of one check or all, oldest first."""

    async def prune(self, before: float) -> int:
        """Delete results and state changes older than ``before``; how many rows went."""

    async def close(self) -> None:
        """Release connections; safe to call when ``open`` failed."""


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


def result_of(row: Sequence[Any]) -> StoredResult:
    check_id, started_at, duration_s, outcome, message, trace_id, values, timed_out, kind = row
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
    )


def open_store(config: Config, url: str) -> Store:
    """The store for ``url``, from whichever plugin handles it; ``UsageError`` if none does."""
    store: Store | None = config.hook.fraiseql_make_store(config=config, url=url)
    if store is None:
        raise UsageError(
            f"no result store handles {config.mask(url)!r}: give a file path (SQLite) or a postgresql:// URL"
        )
    return store
