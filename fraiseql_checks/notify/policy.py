"""When to tell whom what: from state changes to outbox entries.

The policy reads what watch mode sees — each check's state changes, each run's
result, which checks a silence holds — and makes outbox entries, one per event and
receiver. It does no I/O and reads the clock only through its arguments, so every
rule below is tested with made-up times.

- **Changes, not runs.** A check that turns failing (after its failure threshold)
  gives a ``firing`` event; one that was announced failing and passes again gives
  ``resolved``. A check that starts failing is announced; one that starts passing
  is not.
- **Reminders** every ``repeat_interval`` while a check stays failing (0: never).
- **Flapping**: one ``flapping`` event, then quiet until it settles (``settled``).
- **Silences** (maintenance windows): nothing while one holds; when it ends, a
  check failing then gives ``still_failing``, one announced failing before that
  passes now gives ``resolved_during_silence``.
- **Root causes.** A run that could not reach its target (``Result.unreachable``)
  marks that target down until a run of the same check reaches it again. A
  failing check that depends on a down target (its fixtures' or declared ones) is
  *blocked by* it: its events carry the target as their root cause, and every
  receiver is told about the target once — the events made while that first
  message waits (its group wait) go in it, later ones are recorded as ``folded``
  and not sent. When the target is reachable again, one ``cause_resolved`` event
  per receiver lists the checks it had made fail; a check among them that still
  fails once it has had time to recover is announced on its own then.
- **Grouping.** A receiver's events are held for ``group_wait`` from the first of
  them; everything made meanwhile shares its ``not_before``, so the sender sends
  them as one message.

In a cluster, a check that moves to another watcher takes its announcements with it
(``adopt``, ``disown``); an incident stays with the watcher that saw it, and ends
there without a "reachable again" message once no check of its evidence is left.

What is not restored after a restart: the targets that were down and what was
folded under them. Announcements are (from the outbox), so a restart neither
repeats a firing message nor forgets a reminder.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from fraiseql_checks.notify.message import cut
from fraiseql_checks.outbox import Kind, OutboxEntry, Status, entry_id
from fraiseql_checks.runbooks import runbook_link
from fraiseql_checks.states import State, StateChange, StateRecord

if TYPE_CHECKING:
    from fraiseql_checks.checks import CheckInfo
    from fraiseql_checks.notify.settings import NotifySettings
    from fraiseql_checks.result import Result

#: Announcements of these kinds leave the check announced as failing.
_FAILING_KINDS = frozenset({Kind.FIRING, Kind.REMINDER, Kind.FLAPPING, Kind.STILL_FAILING})
#: Runs a check gets, after its blocking target is reachable again, to recover
#: before it is announced as failing on its own (on top of its success threshold).
RECOVERY_RUNS = 1


@dataclasses.dataclass
class Announced:
    """What the receivers were last told about a check."""

    failing: bool
    at: float
    #: The target it was blamed on when announced (its incident's), if any.
    cause: str = ""
    #: Told only as part of its cause (the entries were folded).
    folded: bool = False


@dataclasses.dataclass
class Incident:
    """A target that runs could not reach."""

    target: str
    started: float
    #: Checks whose latest run could not reach it: the evidence, by check id.
    evidence: dict[str, float] = dataclasses.field(default_factory=dict)
    #: Receiver → the ``not_before`` of the first message about it.
    announced: dict[str, float] = dataclasses.field(default_factory=dict)
    #: Checks announced (or folded) as failing because of it.
    affected: set[str] = dataclasses.field(default_factory=set)
    #: When it became reachable again (``None`` while down).
    ended: float | None = None
    last_reminder: float = 0.0


class Policy:
    """Outbox entries from what watch mode sees; see the module's docstring."""

    def __init__(
        self,
        settings: NotifySettings,
        *,
        mask: Callable[[str], str] = str,
        dashboard_url: Callable[[CheckInfo], str] | None = None,
    ) -> None:
        self.settings = settings
        self._mask = mask
        self._dashboard_url = dashboard_url or (lambda check: "")
        self.checks: Mapping[str, CheckInfo] = {}
        self.state: dict[str, State] = {}
        self.since: dict[str, float | None] = {}
        self.announced: dict[str, Announced] = {}
        self.incidents: dict[str, Incident] = {}
        #: Incidents that ended, kept until their affected checks had time to recover.
        self.ended: list[Incident] = []
        #: The latest run of each check that was silenced / not, as the watcher saw it.
        self.silenced: set[str] = set()
        #: The last result message and values of each check, for the events.
        self._last: dict[str, tuple[str, Mapping[str, float], str]] = {}
        #: Receiver → the ``not_before`` of the message being gathered for it.
        self._window: dict[str, float] = {}

    # -- what the policy is told ------------------------------------------------------

    def set_checks(self, checks: Iterable[CheckInfo]) -> None:
        self.checks = {check.id: check for check in checks}

    def restore(self, states: Mapping[str, StateRecord], history: Iterable[OutboxEntry]) -> None:
        """Go on after a restart: the checks' states (from the store) and what was announced
        (the outbox entries of the last while, oldest first)."""
        for check_id, record in states.items():
            self.state[check_id] = record.state
            self.since[check_id] = record.since
        for entry in history:
            if not entry.check_id or entry.kind is Kind.TEST:
                continue
            failing = entry.kind in _FAILING_KINDS or (
                entry.kind is Kind.SETTLED and entry.event.get("state") == State.FAILING.value
            )
            self.announced[entry.check_id] = Announced(
                failing, entry.created_at, entry.root_cause, entry.status is Status.FOLDED
            )

    def adopt(
        self, check_ids: Iterable[str], states: Mapping[str, StateRecord], history: Iterable[OutboxEntry]
    ) -> None:
        """Checks taken over from another watcher of the cluster: go on from their stored
        states and what was announced for them (``history``, oldest first). A check told only
        as part of its cause, whose cause this watcher has not seen down, is reminded of and
        resolved on its own from now on: the incident stayed with the watcher that saw it."""
        ids = list(check_ids)
        for check_id in ids:
            self.announced.pop(check_id, None)
            self.state.pop(check_id, None)
            self.since.pop(check_id, None)
        self.restore(states, history)
        for check_id in ids:
            announced = self.announced.get(check_id)
            if announced is not None and announced.folded and announced.cause not in self.incidents:
                self.announced[check_id] = dataclasses.replace(announced, folded=False)

    def disown(self, check_ids: Iterable[str]) -> None:
        """These checks moved to another watcher of the cluster, which announces them from
        now on: forget them, and drop the incidents only they held open (nothing here can
        tell any more when such a target is reachable again). The checks left here that were
        told only as part of a dropped incident are reminded of and resolved on their own."""
        gone = set(check_ids)
        for check_id in gone:
            self.announced.pop(check_id, None)
            self.state.pop(check_id, None)
            self.since.pop(check_id, None)
            self.silenced.discard(check_id)
            self._last.pop(check_id, None)
        for incident in [*self.incidents.values(), *self.ended]:
            for check_id in gone:
                incident.evidence.pop(check_id, None)
            incident.affected -= gone
        for target, incident in list(self.incidents.items()):
            if incident.evidence:
                continue
            del self.incidents[target]
            for check_id in incident.affected:
                announced = self.announced.get(check_id)
                if announced is not None and announced.cause == target and announced.folded:
                    self.announced[check_id] = dataclasses.replace(announced, folded=False)

    def observe(self, result: Result, now: float) -> list[OutboxEntry]:
        """One run's result: is its target down (or up again)? Call before ``changed``."""
        check_id = result.id
        self._last[check_id] = (result.message, dict(result.values), result.trace_id)
        entries: list[OutboxEntry] = []
        target = result.unreachable
        if target:
            incident = self.incidents.get(target)
            if incident is None:
                incident = self.incidents[target] = Incident(target, now)
            incident.evidence[check_id] = now
        for name in [name for name, incident in self.incidents.items() if name != target]:
            incident = self.incidents[name]
            if incident.evidence.pop(check_id, None) is not None and not incident.evidence:
                entries.extend(self._end(incident, now))
        return entries

    def changed(self, change: StateChange, now: float) -> list[OutboxEntry]:
        """A check's state changed: the entries that says, for every receiver of the check."""
        check_id = change.check_id
        previous_state = self.state.get(check_id, change.previous)
        self.state[check_id] = change.state
        self.since[check_id] = change.at
        check = self.checks.get(check_id)
        if check is None or not self.settings.enabled:
            return []
        if change.silenced:
            self.silenced.add(check_id)
            return []  # told when the silence ends, if there is still something to tell
        kind = self._kind(previous_state, change.state, check_id)
        if kind is None:
            return []
        cause = self._cause(check) if kind is Kind.FIRING else ""
        announced = self.announced.get(check_id)
        if kind is Kind.RESOLVED and announced is not None and announced.cause:
            incident = self.incidents.get(announced.cause) or self._ended(announced.cause)
            if incident is not None and check_id in incident.affected:
                # its cause's message (or its recovery) speaks for it
                self.announced[check_id] = Announced(False, now, announced.cause, folded=True)
                return self._entries(check, kind, change, now, cause=announced.cause, folded=True)
        if cause:
            return self._blocked(check, kind, change, now, self.incidents[cause])
        self.announced[check_id] = Announced(change.state is State.FAILING, now)
        return self._entries(check, kind, change, now)

    def tick(self, now: float, silenced_now: set[str]) -> list[OutboxEntry]:
        """Time passed: reminders, silences that ended, checks still failing after their
        cause recovered. ``silenced_now``: the checks a silence holds now."""
        entries: list[OutboxEntry] = []
        if not self.settings.enabled:
            return entries
        for check_id in sorted(self.silenced - silenced_now):
            self.silenced.discard(check_id)
            entries.extend(self._silence_ended(check_id, now))
        self.silenced |= silenced_now & set(self.checks)
        repeat = self.settings.repeat_interval
        for check_id, announced in list(self.announced.items()):
            check = self.checks.get(check_id)
            if check is None or not announced.failing or check_id in self.silenced:
                continue
            if self.state.get(check_id) is not State.FAILING:
                continue
            if announced.folded and announced.cause in self.incidents:
                continue  # its incident is reminded as a whole
            if announced.folded:
                continue  # handled below, once its cause has had time to recover
            if repeat and now - announced.at >= repeat:
                self.announced[check_id] = Announced(True, now, announced.cause)
                entries.extend(self._entries(check, Kind.REMINDER, None, now))
        if repeat:
            for incident in self.incidents.values():
                if incident.announced and now - max(incident.last_reminder, incident.started) >= repeat:
                    incident.last_reminder = now
                    entries.extend(self._cause_entries(incident, Kind.REMINDER, now))
        for incident in list(self.ended):
            entries.extend(self._after_recovery(incident, now))
        return entries

    # -- the rules ----------------------------------------------------------------------

    def _kind(self, previous: State, state: State, check_id: str) -> Kind | None:
        announced = self.announced.get(check_id)
        was_announced_failing = announced is not None and announced.failing
        if state is State.FLAPPING:
            return Kind.FLAPPING
        if previous is State.FLAPPING:
            return Kind.SETTLED
        if state is State.FAILING:
            return Kind.FIRING
        if state is State.PASSING and was_announced_failing:
            return Kind.RESOLVED
        return None

    def _cause(self, check: CheckInfo) -> str:
        """The down target ``check`` is blocked by: what its own run could not reach, else
        the first down target it depends on."""
        for target, incident in self.incidents.items():
            if check.id in incident.evidence:
                return target
        for target in check.targets:
            if target in self.incidents:
                return target
        return ""

    def _blocked(
        self, check: CheckInfo, kind: Kind, change: StateChange, now: float, incident: Incident
    ) -> list[OutboxEntry]:
        """A check failing because ``incident``'s target is down: in the first message about
        it to each receiver, or folded once that went."""
        entries = []
        incident.affected.add(check.id)
        folded_everywhere = True
        for receiver in self.settings.receivers_for(check):
            first = incident.announced.get(receiver)
            not_before = self._not_before(receiver, now)
            if first is None:
                incident.announced[receiver] = not_before
                first = not_before
            folded = not_before != first
            folded_everywhere = folded_everywhere and folded
            entries.append(self._entry(receiver, check, kind, change, now, incident.target, not_before, folded))
        self.announced[check.id] = Announced(True, now, incident.target, folded=folded_everywhere)
        return entries

    def _end(self, incident: Incident, now: float) -> list[OutboxEntry]:
        """``incident``'s target is reachable again: tell whoever heard of it."""
        del self.incidents[incident.target]
        incident.ended = now
        self.ended.append(incident)
        return self._cause_entries(incident, Kind.CAUSE_RESOLVED, now) if incident.announced else []

    def _ended(self, target: str) -> Incident | None:
        return next((incident for incident in reversed(self.ended) if incident.target == target), None)

    def _after_recovery(self, incident: Incident, now: float) -> list[OutboxEntry]:
        """Once every check ``incident`` affected has had time to recover, announce on its
        own each that still fails, and forget the incident."""
        assert incident.ended is not None
        waits = [self._recovery_time(check_id) for check_id in incident.affected]
        if now < incident.ended + max(waits, default=0.0):
            return []
        self.ended.remove(incident)
        entries: list[OutboxEntry] = []
        for check_id in sorted(incident.affected):
            check = self.checks.get(check_id)
            announced = self.announced.get(check_id)
            if check is None or announced is None or announced.cause != incident.target:
                continue
            if self.state.get(check_id) is State.FAILING and check_id not in self.silenced:
                self.announced[check_id] = Announced(True, now)
                event_note = f"still failing after {incident.target} became reachable again"
                entries.extend(self._entries(check, Kind.FIRING, None, now, reason=event_note))
            else:
                self.announced[check_id] = Announced(False, now)
        return entries

    def _recovery_time(self, check_id: str) -> float:
        check = self.checks.get(check_id)
        if check is None:
            return 0.0
        runs = (check.spec.success_threshold or 1) + RECOVERY_RUNS
        return check.interval * runs + self.settings.group_wait

    def _silence_ended(self, check_id: str, now: float) -> list[OutboxEntry]:
        check = self.checks.get(check_id)
        if check is None:
            return []
        state = self.state.get(check_id)
        announced = self.announced.get(check_id)
        if state is State.FAILING:
            self.announced[check_id] = Announced(True, now)
            return self._entries(check, Kind.STILL_FAILING, None, now)
        if announced is not None and announced.failing and state is State.PASSING:
            self.announced[check_id] = Announced(False, now)
            return self._entries(check, Kind.RESOLVED_DURING_SILENCE, None, now)
        return []

    # -- making entries -----------------------------------------------------------------

    def _not_before(self, receiver: str, now: float) -> float:
        """When the receiver's message that an event made now goes: the open one's time, or
        ``now + group_wait`` for a new one."""
        window = self._window.get(receiver)
        if window is None or now >= window:
            window = self._window[receiver] = now + self.settings.group_wait
        return window

    def _entries(
        self,
        check: CheckInfo,
        kind: Kind,
        change: StateChange | None,
        now: float,
        *,
        cause: str = "",
        folded: bool = False,
        reason: str = "",
    ) -> list[OutboxEntry]:
        return [
            self._entry(receiver, check, kind, change, now, cause, self._not_before(receiver, now), folded, reason)
            for receiver in self.settings.receivers_for(check)
        ]

    def _entry(
        self,
        receiver: str,
        check: CheckInfo,
        kind: Kind,
        change: StateChange | None,
        now: float,
        cause: str,
        not_before: float,
        folded: bool,
        reason: str = "",
    ) -> OutboxEntry:
        at = change.at if change is not None else now
        message, values, trace_id = self._last.get(check.id, ("", {}, ""))
        if change is not None:
            message, trace_id = change.message or message, change.trace_id or trace_id
        state = self.state.get(check.id, State.UNKNOWN)
        event: dict[str, Any] = {
            "check_id": check.id,
            "name": check.name,
            "state": state.value,
            "severity": check.severity,
            "suite": check.suite,
            "message": cut(self._mask(message)),
            "reason": reason or (change.reason if change is not None else ""),
            "at": at,
            "since": self.since.get(check.id),
            "trace_id": trace_id,
            "runbook_url": runbook_link(check.runbook, self.settings.runbook_base_url) or "",
            "dashboard_url": self._dashboard_url(check),
            "description": cut(self._mask(check.description), 300),
            "labels": {name: self._mask(value) for name, value in check.labels.items()},
            "tags": list(check.tags),
            "values": {name: value for name, value in values.items() if math.isfinite(value)},  # JSON has no NaN
            "root_cause": cause,
        }
        return OutboxEntry(
            id=entry_id(receiver, check.id, kind.value, at),
            receiver=receiver,
            check_id=check.id,
            kind=kind,
            created_at=now,
            not_before=not_before,
            event=event,
            root_cause=cause,
            status=Status.FOLDED if folded else Status.PENDING,
            next_attempt_at=not_before,
        )

    def _cause_entries(self, incident: Incident, kind: Kind, now: float) -> list[OutboxEntry]:
        """One event about a target for each receiver told about it."""
        entries = []
        affected = sorted(incident.affected)
        for receiver in sorted(incident.announced):
            not_before = self._not_before(receiver, now)
            severities = [self.checks[c].severity for c in affected if c in self.checks]
            event = {
                "check_id": "",
                "name": incident.target,
                "state": "failing" if kind is Kind.REMINDER else "passing",
                "severity": _highest(severities),
                "suite": "",
                "message": f"{len(affected)} checks could not run because {incident.target} was unreachable"
                if kind is Kind.CAUSE_RESOLVED
                else f"{incident.target} is still unreachable; {len(affected)} checks fail because of it",
                "at": now,
                "since": incident.started,
                "root_cause": incident.target,
                "affected": affected,
            }
            entries.append(
                OutboxEntry(
                    id=entry_id(receiver, f"target:{incident.target}", kind.value, now),
                    receiver=receiver,
                    check_id="",
                    kind=kind,
                    created_at=now,
                    not_before=not_before,
                    event=event,
                    root_cause=incident.target,
                    next_attempt_at=not_before,
                )
            )
        return entries


def _highest(severities: Iterable[str]) -> str:
    order = {"critical": 0, "warning": 1, "info": 2}
    return min(severities, key=lambda s: order.get(s, 3), default="warning")
