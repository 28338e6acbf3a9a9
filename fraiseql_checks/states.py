"""The states of watched checks as data: the states, a change, and a check's saved state.

A leaf module: the state machine (``watch/state.py``), the result stores and the
notifiers all read these types, and it imports none of them.
"""

from __future__ import annotations

import dataclasses
import enum

__all__ = ["State", "StateChange", "StateRecord"]


class State(enum.StrEnum):
    UNKNOWN = "unknown"
    PASSING = "passing"
    FAILING = "failing"
    FLAPPING = "flapping"


@dataclasses.dataclass(frozen=True)
class StateChange:
    """One check changed state: what notifiers get and what the store keeps."""

    check_id: str
    #: When it changed (the start of the run that changed it), seconds since the epoch.
    at: float
    previous: State
    state: State
    #: A maintenance window covered the check: notifiers should stay quiet.
    silenced: bool = False
    #: Why, in words: ``"3 failing runs in a row"``, ``"6 changes within 10m"``.
    reason: str = ""
    #: The message of the run that caused the change.
    message: str = ""
    trace_id: str = ""
    consecutive_failures: int = 0


@dataclasses.dataclass(frozen=True)
class StateRecord:
    """Everything a check's state machine needs to go on where it was: what the store
    keeps of it (one row per check, replaced as it changes) and what a restarted
    watcher restores (``CheckState.snapshot`` and ``CheckState.restore``).

    Times are seconds since the epoch: the starts of the runs the machine observed.
    """

    check_id: str
    #: What the thresholds say, flapping aside.
    base: State
    #: What is reported: ``base``, or ``flapping``.
    state: State
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    #: The starts of the latest failing runs, oldest first, for the ``failures_within`` rule.
    failures: tuple[float, ...] = ()
    #: When ``base`` last changed, oldest first, for flapping.
    changes: tuple[float, ...] = ()
    #: When the reported state began (the run that changed it); ``None`` while it is
    #: the ``unknown`` the machine started in.
    since: float | None = None
    #: The start of the last run observed; ``None`` before any.
    updated_at: float | None = None
