"""The notification outbox as data: one entry per event and receiver.

A leaf module: the notification policy makes entries, the result stores keep them
(in the transaction of the state change that caused them), the sender delivers
them and records how that went by writing the entry again with its new status.
An entry is identified by ``id``; writing it again replaces it.

The sender groups a receiver's due entries into one message; the message's
``message_key`` is given to every entry in it when it is first attempted, so a
retry sends the same group under the same idempotency key.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Kind", "OutboxEntry", "Status", "entry_id", "message_key"]


class Status(enum.StrEnum):
    #: Waiting to be sent (from ``not_before``, next at ``next_attempt_at``).
    PENDING = "pending"
    SENT = "sent"
    #: The receiver refused it for good (a 4xx other than 429) or it ran out of attempts.
    DEAD = "dead"
    #: Not sent on its own: it belongs to a root cause the receiver was already told about.
    FOLDED = "folded"


class Kind(enum.StrEnum):
    """What happened, as the message says it."""

    FIRING = "firing"
    RESOLVED = "resolved"
    REMINDER = "reminder"
    FLAPPING = "flapping"
    #: Flapping ended; the event says in which state.
    SETTLED = "settled"
    #: A silence (maintenance window) ended while the check was failing.
    STILL_FAILING = "still_failing"
    #: A silence ended, and the check had recovered during it.
    RESOLVED_DURING_SILENCE = "resolved_during_silence"
    #: A target the check depends on is reachable again; the event lists the checks.
    CAUSE_RESOLVED = "cause_resolved"
    TEST = "test"


@dataclasses.dataclass(frozen=True)
class OutboxEntry:
    """One event for one receiver, and how its delivery went."""

    id: str
    receiver: str
    #: The check it is about (``""`` for a test message).
    check_id: str
    kind: Kind
    #: When the event happened (seconds since the epoch).
    created_at: float
    #: Not sent before then: the group wait, shared by the events that go out together.
    not_before: float
    #: The event as the message shows it (check, state, severity, message, links, ...),
    #: plain JSON values, secrets already masked.
    event: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: The target blamed for the event (``database``), or ``""``.
    root_cause: str = ""
    status: Status = Status.PENDING
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str = ""
    sent_at: float | None = None
    #: The idempotency key of the message it went (or goes) out in, once attempted.
    message_key: str = ""

    def event_json(self) -> str:
        return json.dumps(self.event, separators=(",", ":"), sort_keys=True, default=str)

    @property
    def done(self) -> bool:
        return self.status is not Status.PENDING


def entry_id(receiver: str, check_id: str, kind: str, at: float) -> str:
    """A stable id for one event of one check for one receiver: made again for the same
    event (a restart that replays it), it names the same entry."""
    text = f"{receiver}\0{check_id}\0{kind}\0{at:.6f}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def message_key(ids: Iterable[str]) -> str:
    """The idempotency key of a message carrying these entries: the same entries, the same key."""
    return hashlib.sha256("\0".join(sorted(ids)).encode()).hexdigest()[:32]
