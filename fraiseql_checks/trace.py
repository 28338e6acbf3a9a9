"""The running check's context: its W3C trace id, span id and recorded values."""

from __future__ import annotations

import contextvars
import math
import random
import re
from typing import Any

_METRIC_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Trace ids must be unique, not secret: the Mersenne Twister (seeded from
# os.urandom at start) avoids a system call per check run.
_bits = random.Random().getrandbits


def new_trace_id() -> str:
    """32 lowercase hex digits, never all zero (W3C Trace Context)."""
    return f"{_bits(128) or 1:032x}"


def new_span_id() -> str:
    return f"{_bits(64) or 1:016x}"


_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16


def new_ids() -> tuple[str, str]:
    """A new trace id and span id (a run's): one draw of 192 bits for both, each never all
    zero. Half the cost of ``new_trace_id()`` and ``new_span_id()``, paid at every run."""
    digits = _bits(192).to_bytes(24).hex()
    trace_id, span_id = digits[:32], digits[32:]
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:  # one draw in 2**64
        return new_trace_id(), new_span_id()
    return trace_id, span_id


#: What a check's run keeps of what it prints, per stream; the rest is counted, not kept.
OUTPUT_LIMIT = 64 * 1024
#: Recorded values a run may hold (in watch mode each becomes a series on /metrics), and
#: the longest name one may have: a check cannot flood the reports or the scrape with them.
MAX_VALUES = 100
MAX_VALUE_NAME = 128


class RunContext:
    """What belongs to one run of one check, visible to its fixtures and code."""

    __slots__ = (
        "_counts",
        "check",
        "config",
        "extra",
        "span_id",
        "stderr",
        "stdout",
        "trace_id",
        "values",
    )

    def __init__(self, check: Any, config: Any, trace_id: str, span_id: str) -> None:
        self.check = check
        self.config = config
        self.trace_id = trace_id
        self.span_id = span_id
        self.values: dict[str, float] = {}
        #: Structured data fixtures and plugins attach to this run (``Result.extra``),
        #: e.g. the SQL an audit check ran, for its evidence report.
        self.extra: dict[str, Any] = {}
        #: What the check printed, while output is captured (the ``capture`` plugin).
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        #: Per stream, the characters kept and cut: made at the first print (most runs
        #: print nothing, and a run is made per check run).
        self._counts: dict[str, list[int]] | None = None

    def capture(self, stream: str, text: str) -> None:
        """Keep what the check printed on ``stream``, up to ``OUTPUT_LIMIT`` characters."""
        counts = self._counts
        if counts is None:  # (two threads printing first at once may each count their own: no error)
            counts = self._counts = {"stdout": [0, 0], "stderr": [0, 0]}
        kept_and_cut = counts[stream]
        room = OUTPUT_LIMIT - kept_and_cut[0]
        if len(text) > room:
            kept_and_cut[1] += len(text) - max(room, 0)
            text = text[: max(room, 0)]
        if text:
            kept_and_cut[0] += len(text)
            getattr(self, stream).append(text)

    def output(self, stream: str) -> str:
        """What the check printed on ``stream`` (``stdout`` or ``stderr``), saying what was cut."""
        counts = self._counts
        if counts is None:
            return ""
        parts = getattr(self, stream)
        cut = counts[stream][1]
        if not parts and not cut:
            return ""
        text = "".join(parts)
        if cut:
            text += f"\n[... {cut:,} more characters not kept: a check's output is kept up to {OUTPUT_LIMIT:,}]\n"
        return text

    @property
    def traceparent(self) -> str:
        """The ``traceparent`` header value for requests this run sends."""
        return f"00-{self.trace_id}-{self.span_id}-01"


current_run: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "fraiseql_checks_current_run", default=None
)


def current() -> RunContext:
    """The context of the check running now; ``RuntimeError`` outside a check."""
    run = current_run.get()
    if run is None:
        raise RuntimeError("not inside a running check")
    return run


def record(name: str, value: float) -> None:
    """Record a measured value of the running check (exported by watch mode).

    ``name`` must be a valid Prometheus metric name fragment, e.g. ``disk_free_ratio``,
    of at most ``MAX_VALUE_NAME`` characters; the value must be a finite number; a run
    records at most ``MAX_VALUES`` names (recording one again replaces its value).
    """
    if isinstance(name, str) and len(name) > MAX_VALUE_NAME:
        raise ValueError(
            f"recorded value name {name[:40]!r}... has {len(name):,} characters; at most {MAX_VALUE_NAME} are allowed"
        )
    if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
        raise ValueError(f"recorded value name {name!r} must match [a-zA-Z_][a-zA-Z0-9_]*")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"recorded value {name!r} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"recorded value {name!r} must be finite, got {number}")
    values = current().values
    if len(values) >= MAX_VALUES and name not in values:
        raise ValueError(f"a check records at most {MAX_VALUES} values; {name!r} would be one more")
    values[name] = number
