"""The state of each watched check: thresholds, flapping, and the changes notifiers get.

A check is ``unknown`` until it has enough runs, then ``passing`` or ``failing``.
It turns failing after ``failure_threshold`` failing runs in a row (or, with
``failures_within``, after X failing runs within a window), and recovers after
``success_threshold`` passing runs in a row. A check whose state changed too often
within the flapping window is ``flapping``: that is one change, reported once, and
it stays flapping until it has held one state for a whole window. Skipped runs
change nothing. Pure logic: the clock is the ``at`` each run brings.

``snapshot`` gives what the store keeps of a machine (a ``StateRecord``), ``restore``
puts it back after a restart, so a check failing for an hour does not start over
as ``unknown`` and its subscribers are not told again.
"""

from __future__ import annotations

import collections
import dataclasses

from fraiseql_checks.durations import format_duration
from fraiseql_checks.result import Outcome
from fraiseql_checks.states import State, StateChange, StateRecord

__all__ = ["CheckState", "Rules", "State", "StateChange", "StateRecord"]


@dataclasses.dataclass(frozen=True)
class Rules:
    """How one check's runs turn into a state (its ``@check`` values, else the config's)."""

    failure_threshold: int = 1
    success_threshold: int = 1
    #: ``(count, seconds)``: failing after ``count`` failing runs within ``seconds``.
    failures_within: tuple[int, float] | None = None
    #: Flapping: ``flap_changes`` state changes within ``flap_window`` seconds.
    flap_changes: int = 5
    flap_window: float = 600.0


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _duration(seconds: float) -> str:
    return format_duration(seconds)


class CheckState:
    """The state machine of one check; ``observe`` each run, get a change or ``None``."""

    __slots__ = (
        "_changes",
        "_failures",
        "base",
        "check_id",
        "consecutive_failures",
        "consecutive_successes",
        "rules",
        "since",
        "state",
        "updated_at",
    )

    def __init__(self, check_id: str, rules: Rules) -> None:
        self.check_id = check_id
        self.rules = rules
        #: What the thresholds say, flapping aside.
        self.base = State.UNKNOWN
        #: What is reported: ``base``, or ``flapping``.
        self.state = State.UNKNOWN
        self.consecutive_failures = 0
        self.consecutive_successes = 0
        self._failures: collections.deque[float] = collections.deque(
            maxlen=rules.failures_within[0] if rules.failures_within else 1
        )
        self._changes: collections.deque[float] = collections.deque(maxlen=max(rules.flap_changes, 1))
        #: When ``state`` began (the run that changed it); ``None`` while still the first ``unknown``.
        self.since: float | None = None
        #: The start of the last run observed.
        self.updated_at: float | None = None

    def snapshot(self) -> StateRecord:
        """All this machine needs to go on where it is, for the store."""
        return StateRecord(
            check_id=self.check_id,
            base=self.base,
            state=self.state,
            consecutive_failures=self.consecutive_failures,
            consecutive_successes=self.consecutive_successes,
            failures=tuple(self._failures),
            changes=tuple(self._changes),
            since=self.since,
            updated_at=self.updated_at,
        )

    def restore(self, record: StateRecord) -> None:
        """Go on from ``record`` (a snapshot, maybe taken before a restart) under this
        machine's rules.

        Under the same rules the machine behaves exactly as the one the snapshot was
        taken of would have. When the rules changed in between (a new threshold or
        flapping window), it behaves as that machine would after ``update_rules``:
        counts and state are kept, the windows keep their newest times. A record
        that no machine could have produced (a negative count, ``flapping`` over an
        ``unknown`` base, a state that is neither its base nor ``flapping``) is
        brought back to the nearest state that one could.
        """
        if record.check_id != self.check_id:
            raise ValueError(f"the state of {record.check_id!r} cannot be restored into {self.check_id!r}")
        rules = self.rules
        self.base = State(record.base)
        state = State(record.state)
        if state is not self.base and (state is not State.FLAPPING or self.base is State.UNKNOWN):
            state = self.base
        self.state = state
        self.consecutive_failures = max(int(record.consecutive_failures), 0)
        self.consecutive_successes = max(int(record.consecutive_successes), 0)
        self._failures = collections.deque(
            sorted(record.failures), maxlen=rules.failures_within[0] if rules.failures_within else 1
        )
        self._changes = collections.deque(sorted(record.changes), maxlen=max(rules.flap_changes, 1))
        self.since = record.since
        self.updated_at = record.updated_at

    def update_rules(self, rules: Rules) -> None:
        """New thresholds after a reload; the counts so far are kept."""
        if rules == self.rules:
            return
        self.rules = rules
        self._failures = collections.deque(
            self._failures, maxlen=rules.failures_within[0] if rules.failures_within else 1
        )
        self._changes = collections.deque(self._changes, maxlen=max(rules.flap_changes, 1))

    def observe(
        self, outcome: Outcome, at: float, *, silenced: bool = False, message: str = "", trace_id: str = ""
    ) -> StateChange | None:
        """Account for one run that started at ``at``; the change it caused, if any."""
        self.updated_at = at
        if outcome is Outcome.SKIPPED:
            return None
        rules = self.rules
        failed = outcome is not Outcome.PASSED
        base, reason = self.base, ""
        if failed:
            self.consecutive_failures += 1
            self.consecutive_successes = 0
            self._failures.append(at)
            if base is not State.FAILING:
                if rules.failures_within is not None:
                    count, window = rules.failures_within
                    if len(self._failures) >= count and at - self._failures[0] <= window:
                        base, reason = State.FAILING, f"{_plural(count, 'failing run')} within {_duration(window)}"
                elif self.consecutive_failures >= rules.failure_threshold:
                    base, reason = State.FAILING, f"{_plural(self.consecutive_failures, 'failing run')} in a row"
        else:
            self.consecutive_successes += 1
            self.consecutive_failures = 0
            if base is State.UNKNOWN:
                base, reason = State.PASSING, "first passing run"
            elif base is State.FAILING and self.consecutive_successes >= rules.success_threshold:
                base, reason = State.PASSING, f"{_plural(self.consecutive_successes, 'passing run')} in a row"
        changed = base is not self.base
        if changed and self.base is not State.UNKNOWN:
            self._changes.append(at)
        self.base = base
        previous = self.state
        if previous is State.FLAPPING:
            last_change = self._changes[-1] if self._changes else at
            if at - last_change < rules.flap_window:
                return None
            self.state = base
            reason = f"no change for {_duration(rules.flap_window)}; {reason or base.value}"
        elif not changed:
            return None
        elif self._flapping(at):
            self.state = State.FLAPPING
            reason = f"{_plural(len(self._changes), 'state change')} within {_duration(rules.flap_window)}"
        else:
            self.state = base
        if self.state is previous:
            return None
        self.since = at
        return StateChange(
            check_id=self.check_id,
            at=at,
            previous=previous,
            state=self.state,
            silenced=silenced,
            reason=reason,
            message=message,
            trace_id=trace_id,
            consecutive_failures=self.consecutive_failures,
        )

    def _flapping(self, at: float) -> bool:
        rules = self.rules
        if rules.flap_changes < 1 or len(self._changes) < rules.flap_changes:
            return False
        return at - self._changes[0] <= rules.flap_window
