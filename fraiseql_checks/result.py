"""The result of one check run, and the outcomes it can have."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


class Outcome(enum.StrEnum):
    """How a check run ended (the contract in PRODUCT.md)."""

    PASSED = "passed"
    FAILED = "failed"  # an assertion failed, or pytest.fail()
    ERROR = "error"  # an exception, a fixture failure, a timeout, a broken file
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


#: The ``Summary`` field that counts each outcome.
_COUNTED = {outcome: outcome.value for outcome in Outcome}

#: Keys a JSON result always has; plugins may add others but not these.
RESULT_KEYS = (
    "id",
    "name",
    "outcome",
    "message",
    "duration_s",
    "timed_out",
    "severity",
    "labels",
    "trace_id",
)


#: How much of a result's message is kept (stored, exported, notified, reported).
MESSAGE_LIMIT = 4 * 1024
#: How much of a result's traceback is kept.
LONGREPR_LIMIT = 64 * 1024


def cut(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start and a note of what was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [cut: {len(text):,} characters in all, {limit:,} kept]"


@dataclasses.dataclass
class Result:
    """One run of one check (or one file that failed to collect).

    ``message`` is the short text a human reads: the assertion explanation,
    ``ExcType: text`` for an error, the reason for a skip. ``longrepr`` is the
    traceback shown in the terminal's failure section.
    """

    id: str
    name: str
    outcome: Outcome
    message: str = ""
    duration_s: float = 0.0
    timed_out: bool = False
    severity: str = "warning"
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    trace_id: str = ""
    span_id: str = ""
    started_at: float = 0.0
    values: dict[str, float] = dataclasses.field(default_factory=dict)
    longrepr: str = ""
    #: What the check printed (captured unless ``-s``).
    stdout: str = ""
    stderr: str = ""
    #: "check" for a check run, "collect" for a file that did not collect,
    #: "teardown" for a module or session fixture whose teardown failed.
    kind: str = "check"
    #: The target (``database``, ``cache``, ...) the run failed to reach, if that is why
    #: it failed: watch mode blames the failures of the checks depending on it on it.
    unreachable: str = ""
    #: Fields added by plugins (``fraiseql_result`` hook); reported beside the
    #: contract's keys in the JSON report.
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Where the run ended badly: ``setup`` (a fixture), ``call`` (the check itself) or
    #: ``teardown`` (a fixture's teardown), as in pytest's ``ERROR at setup of ...``.
    when: str = "call"
    #: The class name of the exception that ended the run (JUnit's ``type``), else ``""``.
    exc_type: str = ""
    #: Seconds spent in each phase that ran (``setup``, ``call``, ``teardown``): the
    #: check's own time, apart from waits for other checks (``--durations``, JUnit).
    phases: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED

    def to_json(self) -> dict[str, Any]:
        """The result as the JSON report's contract describes it."""
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "outcome": self.outcome.value,
            "message": self.message,
            "duration_s": round(self.duration_s, 6),
            "timed_out": self.timed_out,
            "severity": self.severity,
            "labels": dict(self.labels),
            "trace_id": self.trace_id,
            "kind": self.kind,
            "started_at": self.started_at,
            "values": dict(self.values),
            "stdout": self.stdout,
            "stderr": self.stderr,
        }
        for key, value in self.extra.items():
            if key in data:
                raise ValueError(f"result field {key!r} is reserved; a plugin cannot replace it")
            data[key] = value
        return data


@dataclasses.dataclass
class Summary:
    """Counts of outcomes over a run."""

    passed: int = 0
    failed: int = 0
    error: int = 0
    skipped: int = 0
    duration_s: float = 0.0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.error + self.skipped

    def add(self, outcome: Outcome) -> None:
        name = _COUNTED[outcome]  # not ``outcome.value``: an enum's value is a property, slow per result
        setattr(self, name, getattr(self, name) + 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "passed": self.passed,
            "failed": self.failed,
            "error": self.error,
            "skipped": self.skipped,
            "duration_s": round(self.duration_s, 6),
        }

    def line(self, deselected: int = 0) -> str:
        """``1 failed, 3 passed, 2 skipped, 1 deselected, 2 errors in 0.52s``: pytest's
        order and plurals, zero counts left out."""
        parts = [
            f"{count} {name}"
            for name, count in (
                ("failed", self.failed),
                ("passed", self.passed),
                ("skipped", self.skipped),
                ("deselected", deselected),
                (plural(self.error, "error"), self.error),
            )
            if count
        ]
        return f"{', '.join(parts) or 'no checks ran'} in {self.duration_s:.2f}s"


def plural(count: int, noun: str) -> str:
    """``noun`` as pytest writes it after ``count``: ``1 error``, ``2 errors``, ``0 errors``."""
    return noun if count == 1 else f"{noun}s"
