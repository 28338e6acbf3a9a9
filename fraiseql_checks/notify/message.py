"""What a notifier renders: a ``Message`` of ``Event``s for one receiver.

An event is one outbox entry's content (a check failed, recovered, is still
failing, ...). A message is every event due for one receiver at once: the changes
within the group wait. Events blamed on the same unreachable target form one
``Cause`` group, so thirty checks failing because the database went away read as
one cause with thirty checks, not thirty alarms.

Everything here is plain data, already masked and cut to size when the event was
made: renderers add no secrets and need no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fraiseql_checks.outbox import Kind, OutboxEntry

#: The longest check message an event carries (the store keeps the whole one).
MESSAGE_LIMIT = 1000
#: Kinds that say something is wrong (the rest say it is fine again, or test).
PROBLEMS = frozenset({Kind.FIRING, Kind.REMINDER, Kind.FLAPPING, Kind.STILL_FAILING})

_VERBS = {
    Kind.FIRING: "failing",
    Kind.RESOLVED: "passing again",
    Kind.REMINDER: "still failing",
    Kind.FLAPPING: "flapping",
    Kind.SETTLED: "no longer flapping",
    Kind.STILL_FAILING: "still failing after the silence",
    Kind.RESOLVED_DURING_SILENCE: "recovered during the silence",
    Kind.CAUSE_RESOLVED: "reachable again",
    Kind.TEST: "a test message",
}


@dataclasses.dataclass(frozen=True)
class Event:
    """One thing that happened to one check (or one target), as a message shows it."""

    kind: Kind
    check_id: str
    #: The check's name (``check_pool[primary]``), or the target's for a cause.
    name: str
    #: The check's state now: ``failing``, ``passing``, ``flapping``, ``unknown``.
    state: str
    severity: str = "warning"
    suite: str = ""
    #: The message of the run that changed the state (masked, at most ``MESSAGE_LIMIT``).
    message: str = ""
    #: Why the state changed, in words (``3 failing runs in a row``).
    reason: str = ""
    #: When it happened, and since when the check has been in its state (epoch seconds).
    at: float = 0.0
    since: float | None = None
    trace_id: str = ""
    #: Absolute links (``notify.runbook_base_url``; the check's suite dashboard).
    runbook_url: str = ""
    dashboard_url: str = ""
    description: str = ""
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    tags: tuple[str, ...] = ()
    #: The values the run recorded (``record("lag_seconds", 7.5)``).
    values: Mapping[str, float] = dataclasses.field(default_factory=dict)
    #: The unreachable target blamed for it (``database``), or ``""``.
    root_cause: str = ""
    #: For a cause's recovery: the checks it had made fail.
    affected: tuple[str, ...] = ()

    @property
    def problem(self) -> bool:
        """Whether the event says something is wrong (rather than fine again)."""
        return self.kind in PROBLEMS or (self.kind is Kind.SETTLED and self.state == "failing")

    @property
    def verb(self) -> str:
        """What happened, in words: ``failing``, ``passing again``, ..."""
        if self.kind is Kind.SETTLED:
            return f"no longer flapping ({self.state})"
        return _VERBS[self.kind]

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["kind"] = self.kind.value
        data["labels"] = dict(self.labels)
        data["values"] = dict(self.values)
        data["tags"] = list(self.tags)
        data["affected"] = list(self.affected)
        return data

    @classmethod
    def from_json(cls, kind: Kind, data: Mapping[str, Any]) -> Event:
        fields = {f.name for f in dataclasses.fields(cls)} - {"kind"}
        values = {key: value for key, value in data.items() if key in fields}
        values["tags"] = tuple(values.get("tags", ()))
        values["affected"] = tuple(values.get("affected", ()))
        return cls(kind=kind, **values)


@dataclasses.dataclass(frozen=True)
class Cause:
    """Events blamed on one unreachable target."""

    target: str
    events: tuple[Event, ...]

    @property
    def problem(self) -> bool:
        return any(event.problem for event in self.events)

    @property
    def summary(self) -> str:
        """``database unreachable: 30 checks failing`` or ``database reachable again``."""
        checks = [event for event in self.events if event.kind is not Kind.CAUSE_RESOLVED]
        resolved = [event for event in self.events if event.kind is Kind.CAUSE_RESOLVED]
        if resolved and not any(event.problem for event in checks):
            affected = {name for event in resolved for name in event.affected}
            tail = f": {_count(len(affected), 'check')} it had made fail" if affected else ""
            return f"{self.target} reachable again{tail}"
        failing = sum(1 for event in checks if event.problem)
        return f"{self.target} unreachable: {_count(failing, 'check')} failing because of it"


@dataclasses.dataclass(frozen=True)
class Message:
    """Every event due for one receiver at once, grouped by root cause."""

    receiver: str
    #: The idempotency key: the same events, the same key (a retry is recognisable).
    key: str
    events: tuple[Event, ...]
    #: Where it comes from (the watcher's instance), for the receiver's dedup and display.
    source: str = "fraiseql-checks"
    test: bool = False
    #: A folder of templates that replace the built-in ones (``notify.templates``).
    templates: str | None = None

    @property
    def causes(self) -> tuple[Cause, ...]:
        """The events blamed on unreachable targets, one group per target, in target order."""
        by_target: dict[str, list[Event]] = {}
        for event in self.events:
            if event.root_cause:
                by_target.setdefault(event.root_cause, []).append(event)
        return tuple(Cause(target, tuple(events)) for target, events in sorted(by_target.items()))

    @property
    def others(self) -> tuple[Event, ...]:
        """The events no unreachable target explains."""
        return tuple(event for event in self.events if not event.root_cause)

    @property
    def problem(self) -> bool:
        return any(event.problem for event in self.events)

    @property
    def severity(self) -> str:
        """The highest severity among the events that say something is wrong (else of all)."""
        pool = [event for event in self.events if event.problem] or list(self.events)
        order = {"critical": 0, "warning": 1, "info": 2}
        return min((event.severity for event in pool), key=lambda s: order.get(s, 3), default="info")

    @property
    def title(self) -> str:
        """One line: ``[FIRING] database unreachable: 30 checks failing because of it``,
        ``[FIRING:2] check_a, check_b``, ``[RESOLVED] check_a passing again``."""
        if self.test:
            return f"[TEST] a test message from fraiseql-checks to {self.receiver}"
        status = "FIRING" if self.problem else "RESOLVED"
        parts = [cause.summary for cause in self.causes]
        others = self.others
        if len(others) == 1:
            parts.append(f"{others[0].name} {others[0].verb}")
        elif others:
            names = ", ".join(event.name for event in others[:3]) + (", ..." if len(others) > 3 else "")
            parts.append(f"{_count(len(others), 'check')}: {names}")
        count = len(self.events)
        return f"[{status}{f':{count}' if count > 1 else ''}] " + "; ".join(parts)


def event_of(entry: OutboxEntry) -> Event:
    """The event an outbox entry carries."""
    data = dict(entry.event)
    data.setdefault("check_id", entry.check_id)
    data.setdefault("root_cause", entry.root_cause)
    data.setdefault("name", entry.check_id.rsplit("::", 1)[-1])
    data.setdefault("state", "")
    return Event.from_json(entry.kind, data)


def message_of(
    receiver: str,
    key: str,
    entries: Sequence[OutboxEntry],
    source: str = "fraiseql-checks",
    templates: str | None = None,
) -> Message:
    """The message that carries ``entries`` (oldest first) to ``receiver``."""
    ordered = sorted(entries, key=lambda entry: (entry.created_at, entry.check_id))
    return Message(
        receiver=receiver,
        key=key,
        events=tuple(event_of(entry) for entry in ordered),
        source=source,
        test=any(entry.kind is Kind.TEST for entry in entries),
        templates=templates,
    )


def cut(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` at most ``limit`` characters, saying so when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 12].rstrip() + " … (cut)"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def names(events: Iterable[Event]) -> list[str]:
    return [event.name for event in events]
