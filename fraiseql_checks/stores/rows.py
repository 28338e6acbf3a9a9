"""Records as the SQL stores' columns hold them, and back: state changes, saved states, results,
outbox entries, silences."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fraiseql_checks.outbox import Kind, OutboxEntry, Status
from fraiseql_checks.result import Outcome
from fraiseql_checks.silences import Matchers, Silence
from fraiseql_checks.states import State, StateChange, StateRecord
from fraiseql_checks.stores import StoredResult


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
    return state_json(state_fields(record))


#: A state's columns with its time lists still tuples (``state_fields``).
StateFields = tuple[str, str, str, int, int, tuple[float, ...], tuple[float, ...], float | None, float | None]


def state_fields(record: StateRecord) -> StateFields:
    """A state's columns, but for its time lists: ``state_json`` makes them JSON (where the
    rows are written: a watcher's SQLite store sends the fields to its writer process)."""
    return (
        record.check_id,
        record.base.value,
        record.state.value,
        record.consecutive_failures,
        record.consecutive_successes,
        record.failures,
        record.changes,
        record.since,
        record.updated_at,
    )


def state_json(fields: StateFields) -> tuple[str, str, str, int, int, str, str, float | None, float | None]:
    """``state_fields``' columns as the stores hold them: the time lists as JSON arrays."""
    check_id, base, state, failures, successes, failure_times, change_times, since, updated_at = fields
    return (
        check_id,
        base,
        state,
        failures,
        successes,
        json.dumps(failure_times),
        json.dumps(change_times),
        since,
        updated_at,
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


#: The outbox's columns, in the order of ``outbox_row``.
OUTBOX_COLUMNS = (
    "id, receiver, check_id, kind, created_at, not_before, event, root_cause, status, attempts,"
    " next_attempt_at, last_error, sent_at, message_key"
)


def outbox_row(
    entry: OutboxEntry,
) -> tuple[str, str, str, str, float, float, str, str, str, int, float, str, float | None, str]:
    """An outbox entry as the stores' columns hold it (the event as JSON)."""
    return (
        entry.id,
        entry.receiver,
        entry.check_id,
        entry.kind.value,
        entry.created_at,
        entry.not_before,
        entry.event_json(),
        entry.root_cause,
        entry.status.value,
        entry.attempts,
        entry.next_attempt_at,
        entry.last_error,
        entry.sent_at,
        entry.message_key,
    )


def outbox_of(row: Sequence[Any]) -> OutboxEntry:
    (id_, receiver, check_id, kind, created, not_before, event, cause, status, attempts, next_at, error, sent, key) = (
        row
    )
    return OutboxEntry(
        id=str(id_),
        receiver=str(receiver),
        check_id=str(check_id),
        kind=Kind(kind),
        created_at=float(created),
        not_before=float(not_before),
        event=json.loads(event) if isinstance(event, str) else dict(event),
        root_cause=str(cause),
        status=Status(status),
        attempts=int(attempts),
        next_attempt_at=float(next_at),
        last_error=str(error),
        sent_at=None if sent is None else float(sent),
        message_key=str(key),
    )


SILENCE_COLUMNS = "id, matchers, reason, starts_at, ends_at, created_at, created_by"


def silence_row(silence: Silence) -> tuple[str, str, str, float, float, float, str]:
    """A silence as the stores' columns hold it (the matchers as JSON)."""
    return (
        silence.id,
        silence.matchers_json(),
        silence.reason,
        silence.starts_at,
        silence.ends_at,
        silence.created_at,
        silence.created_by,
    )


def silence_of(row: Sequence[Any]) -> Silence:
    id_, matchers, reason, starts_at, ends_at, created_at, created_by = row
    return Silence(
        id=str(id_),
        matchers=Matchers.of(json.loads(matchers) if isinstance(matchers, str) else dict(matchers)),
        reason=str(reason),
        starts_at=float(starts_at),
        ends_at=float(ends_at),
        created_at=float(created_at),
        created_by=str(created_by),
    )
