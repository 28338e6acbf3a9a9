"""The text ``/metrics`` serves: every check's series and the watcher's own.

Prometheus' text format groups a family's samples under its ``# HELP``/``# TYPE``
lines, so the page is written family by family across all checks. With
thousands of checks the page is large (about 2.5 kB per check), and it is built
on the event loop, so it is built cheaply: each check keeps the line templates of
its biggest families (the run counters and the duration histogram, with its
label already escaped) and fills them with one ``%`` each; the rest is one short
f-string per line. A check's lines are kept, encoded, until it runs again, so a
scrape renders only the checks that ran since the last one. ``Columns`` keeps the
page as one column of bytes per family across the checks: a scrape writes the
changed checks' pieces into them and joins each column at C speed, so a page of
10,000 checks is a couple of dozen pieces, not a hundred thousand. The
definitions (names, help, buckets) come from ``metrics``.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, AnyStr, cast

import psutil

from fraiseql_checks import metrics as m
from fraiseql_checks.durations import format_duration
from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.runbooks import runbook_link
from fraiseql_checks.watch.maintenance import MaintenanceWindow, silenced

if TYPE_CHECKING:
    from fraiseql_checks.checks import CheckInfo

OUTCOMES = (Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED)
_OUTCOME_INDEX = {outcome: index for index, outcome in enumerate(OUTCOMES)}
#: Where each family's lines sit among a check's chunks (``metrics.PER_CHECK`` order).
_INFO, _UP, _RUNS, _DURATION, _LAST_RUN, _INTERVAL, _FAILURES, _STATE, _SILENCED, _OVERLAPS, _VALUES = (
    m.PER_CHECK.index(metric)
    for metric in (
        m.INFO,
        m.UP,
        m.RUNS,
        m.DURATION,
        m.LAST_RUN,
        m.INTERVAL,
        m.CONSECUTIVE_FAILURES,
        m.STATE,
        m.SILENCED,
        m.OVERLAPS,
        m.VALUE,
    )
)
#: What changed in a check since its chunks were rendered (``CheckSeries._dirty``, bits).
_RAN, _UP_CHANGED, _VALUES_CHANGED, _STATE_CHANGED, _SKIPPED_SLOT, _DESCRIBED, _SILENCE_CHANGED = (
    1 << bit for bit in range(7)
)
_EVERYTHING = (1 << 7) - 1
#: Which families' chunks were replaced since ``Columns`` last took them (``CheckSeries._changed``,
#: bit ``k`` for ``metrics.PER_CHECK[k]``).
_ALL_FAMILIES = (1 << len(m.PER_CHECK)) - 1
_OVERLAPS_BIT = 1 << _OVERLAPS
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: OpenMetrics 1.0, offered when a scrape's ``Accept`` asks for it (Prometheus does by default).
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
#: A family's ``# HELP`` and ``# TYPE`` lines, as ``header`` writes them.
_HEAD = re.compile(r"^# HELP (\S+) (.*)\n# TYPE \1 (\w+)$", re.MULTILINE)


def escape(value: str) -> str:
    """A label value as the exposition format writes it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def number(value: float) -> str:
    """A sample value: integers without a decimal point, ``+Inf``/``-Inf``/``NaN`` spelt as Prometheus does."""
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def header(metric: m.Metric) -> str:
    return f"# HELP {metric.name} {metric.help}\n# TYPE {metric.name} {metric.kind.value}\n"


def _openmetrics_head(match: re.Match[str]) -> str:
    name, help_text, kind = match.groups()
    if kind == "counter":
        name = name.removesuffix("_total")  # OpenMetrics names the family; its sample keeps _total
    help_text = help_text.replace("\\", "\\\\").replace('"', '\\"')
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}"


def openmetrics(text: str) -> str:
    """``text`` (whole families, as ``header`` and the helpers below write them) in
    OpenMetrics 1.0: a counter's family is named without ``_total``, help escapes quotes.
    The samples are the same in both formats."""
    return _HEAD.sub(_openmetrics_head, text)


@functools.cache
def _headers(metric: m.Metric, open_metrics: bool) -> bytes:
    text = header(metric)
    return (openmetrics(text) if open_metrics else text).encode()


def histogram_template(metric: m.Metric, labels: str) -> str:
    """Lines of one histogram series, to fill with cumulative counts, the sum and the count."""
    safe = labels.replace("%", "%%")
    prefix = f"{safe}," if safe else ""
    braces = f"{{{safe}}}" if safe else ""
    bucket, total, count = (metric.sample(part) for part in ("bucket", "sum", "count"))
    lines = [f'{bucket}{{{prefix}le="{number(b)}"}} %d\n' for b in metric.buckets]
    lines.append(f'{bucket}{{{prefix}le="+Inf"}} %d\n')
    lines.append(f"{total}{braces} %r\n")
    lines.append(f"{count}{braces} %d\n")
    return "".join(lines)


class ScrapeCadence:
    """How often ``/metrics`` is read. A check that runs less often than that has its lines
    rendered right after each run or skipped slot (the same work, off the scrape's path);
    a faster one is rendered at the next scrape, once for all its runs in between.

    Until a second scrape is seen, scrapes are assumed every ``ASSUMED`` seconds
    (Prometheus' usual 10 to 60 s); then the first gap between scrapes, and from the
    third scrape on the gaps smoothed (two Prometheus servers scraping in turn count as
    one that scrapes twice as often). Taking the first gap as it is, not smoothed from
    the assumption, renders the checks faster than the scrapes at the scrape from the
    third scrape on, instead of after some twenty of them."""

    #: Seconds between scrapes assumed before the second scrape.
    ASSUMED = 10.0
    #: The weight of the latest gap in the smoothed time between scrapes.
    _WEIGHT = 0.2

    __slots__ = ("_last", "_measured", "every")

    def __init__(self) -> None:
        self.every = self.ASSUMED
        self._last: float | None = None
        self._measured = False

    def scraped(self, now: float) -> None:
        """A scrape at ``now`` (monotonic seconds)."""
        if self._last is not None:
            gap = max(now - self._last, 0.0)
            self.every += (gap - self.every) * (self._WEIGHT if self._measured else 1.0)
            self._measured = True
        self._last = now

    def render_now(self, interval: float) -> bool:
        """Whether a check run every ``interval`` seconds is rendered as soon as it changes."""
        return interval >= self.every


class Histogram:
    """Bucket counts (the last is ``+Inf``), sum and count of observations.

    Each bucket counts its own observations; they are summed into Prometheus' cumulative
    buckets when rendered (``cumulative``). Two observations a run (its duration, its
    lateness), and a render for many runs: one addition per observation instead of one
    per bucket above it (0.5 → 0.1 µs an observation)."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[int]:
        """The count of observations at or below each bound, and of all (``+Inf``)."""
        return list(itertools.accumulate(self.counts))

    def fill(self, template: AnyStr) -> AnyStr:
        """``template`` (from ``histogram_template``, or it encoded) with this histogram's values."""
        return template % (*self.cumulative(), self.sum, self.count)

    def quantile(self, q: float) -> float:
        """An estimate of the ``q`` quantile, interpolated within buckets as PromQL does."""
        if not self.count:
            return math.nan
        rank = q * self.count
        below = 0
        for index, total in enumerate(self.cumulative()):
            if total >= rank and total > below:
                if index == len(self.bounds):
                    return self.bounds[-1]
                lower = self.bounds[index - 1] if index else 0.0
                return lower + (self.bounds[index] - lower) * (rank - below) / (total - below)
            below = total
        return self.bounds[-1]


class CheckSeries:
    """What ``/metrics`` says about one check: updated after each run, rendered per scrape.

    Its chunks (one piece of bytes per family) are kept between scrapes, and only the
    families that changed are rendered again; a chunk whose text came out the same is kept
    as the same object, so ``Columns`` joins again only the families that really changed
    (after a run: the run counters, the duration histogram, the last run's time).
    """

    __slots__ = (
        "_cache",
        "_changed",
        "_dirty",
        "_duration_template",
        "_info",
        "_interval",
        "_label",
        "_runbook_base",
        "_runs_template",
        "consecutive_failures",
        "duration",
        "last_run",
        "overlaps",
        "runs",
        "silenced",
        "silenced_by",
        "state",
        "up",
        "values",
        "windows",
    )

    def __init__(self, check: CheckInfo, windows: tuple[MaintenanceWindow, ...] = (), runbook_base: str = "") -> None:
        self._label = f'check="{escape(check.id)}"'
        self.runs = [0, 0, 0, 0]
        self.duration = Histogram(m.DURATION_BUCKETS)
        # bytes templates: filled with ``%`` straight into the chunk, nothing to encode
        self._duration_template = histogram_template(m.DURATION, self._label).encode()
        safe = self._label.replace("%", "%%")
        self._runs_template = "".join(f'{m.RUNS.name}{{{safe},outcome="{o.value}"}} %d\n' for o in OUTCOMES).encode()
        self.up: int | None = None
        self.last_run: float | None = None
        self.consecutive_failures = 0
        self.state = m.STATE_VALUES["unknown"]
        self.silenced = 0
        self.overlaps = 0
        self.values: dict[str, float] = {}
        self.windows = windows
        #: Besides the windows, what silences the check at a time (the API's silences).
        self.silenced_by: Callable[[float], bool] | None = None
        self._info = ""
        self._interval = ""
        #: The chunks as last rendered (``None``: never), and what changed since (bits).
        self._cache: tuple[bytes, ...] | None = None
        self._dirty = _EVERYTHING
        #: The families whose chunk was replaced since the page's ``Columns`` took them (bits).
        self._changed = _ALL_FAMILIES
        #: ``notify.runbook_base_url``: the ``runbook`` label is the link, absolute when set.
        self._runbook_base = runbook_base
        self.describe(check, windows)

    def describe(self, check: CheckInfo, windows: tuple[MaintenanceWindow, ...]) -> None:
        """(Re)read the check's metadata: after a reload its interval or runbook may differ."""
        self.windows = windows
        info = {
            "check": check.id,
            "severity": check.severity,
            "suite": check.suite,
            "interval": format_duration(check.interval),
            "runbook": runbook_link(check.runbook, self._runbook_base) or "",
            "owner": check.spec.owner or "",
        }
        for name, value in check.labels.items():
            if name != "suite":  # already the suite
                info[name if name not in info else f"label_{name}"] = value
        labels = ",".join(f'{name}="{escape(value)}"' for name, value in info.items())
        self._info = f"{m.INFO.name}{{{labels}}} 1\n"
        self._interval = f"{m.INTERVAL.name}{{{self._label}}} {number(check.interval)}\n"
        self._dirty |= _DESCRIBED

    def observe(self, result: Result) -> None:
        self.runs[_OUTCOME_INDEX[result.outcome]] += 1
        self.duration.observe(result.duration_s)
        self.last_run = result.started_at
        dirty = _RAN
        if result.outcome is not Outcome.SKIPPED:
            up = 1 if result.outcome is Outcome.PASSED else 0
            if up != self.up:
                self.up = up
                dirty |= _UP_CHANGED
            if result.values or self.values:
                dirty |= _VALUES_CHANGED
            self.values = result.values
        self._dirty |= dirty

    def set_state(self, state: int, consecutive_failures: int) -> None:
        if state != self.state or consecutive_failures != self.consecutive_failures:
            self.state, self.consecutive_failures = state, consecutive_failures
            self._dirty |= _STATE_CHANGED

    def overlap(self, skipped: int = 1) -> None:
        self.overlaps += skipped
        self._dirty |= _SKIPPED_SLOT

    def forget(self) -> None:
        """Drop the rendered chunks: the next ``chunks`` renders every family anew."""
        self._cache, self._dirty = None, _EVERYTHING

    def chunks(self, now: float) -> tuple[bytes, ...]:
        """This check's lines, one piece per family in ``metrics.PER_CHECK`` order.

        Kept until the check changes, and then only the families that changed are
        rendered again: a check that did not run since the last scrape costs nothing.
        """
        if self.windows or self.silenced_by is not None or self.silenced:
            now_silenced = int(
                bool(self.windows and silenced(self.windows, now))
                or (self.silenced_by is not None and self.silenced_by(now))
            )
            if now_silenced != self.silenced:
                self.silenced = now_silenced
                self._dirty |= _SILENCE_CHANGED
        dirty = self._dirty
        if not dirty and self._cache is not None:
            return self._cache
        self._dirty = 0
        if dirty == _SKIPPED_SLOT and self._cache is not None:  # past capacity: most checks, most scrapes
            cache = self._cache
            self._cache = (*cache[:_OVERLAPS], self._overlaps_line(), *cache[_OVERLAPS + 1 :])
            self._changed |= _OVERLAPS_BIT
            return self._cache
        old = self._cache
        if old is None:
            dirty = _EVERYTHING
            row = [b""] * len(m.PER_CHECK)
        else:
            row = list(old)
        label = self._label
        if dirty & _DESCRIBED:
            _keep_or_set(row, _INFO, self._info)
            _keep_or_set(row, _INTERVAL, self._interval)
        if dirty & _RAN:
            row[_RUNS] = self._runs_template % tuple(self.runs)
            row[_DURATION] = self.duration.fill(self._duration_template)
            if self.last_run is not None:
                row[_LAST_RUN] = f"{m.LAST_RUN.name}{{{label}}} {number(self.last_run)}\n".encode()
        if dirty & _UP_CHANGED and self.up is not None:
            row[_UP] = f"{m.UP.name}{{{label}}} {self.up}\n".encode()
        if dirty & _VALUES_CHANGED:
            _keep_or_set(
                row,
                _VALUES,
                "".join(f'{m.VALUE.name}{{{label},name="{name}"}} {number(v)}\n' for name, v in self.values.items()),
            )
        if dirty & _STATE_CHANGED:
            _keep_or_set(row, _FAILURES, f"{m.CONSECUTIVE_FAILURES.name}{{{label}}} {self.consecutive_failures}\n")
            _keep_or_set(row, _STATE, f"{m.STATE.name}{{{label}}} {self.state}\n")
        if dirty & _SILENCE_CHANGED:
            _keep_or_set(row, _SILENCED, f"{m.SILENCED.name}{{{label}}} {self.silenced}\n")
        if dirty & _SKIPPED_SLOT:
            row[_OVERLAPS] = self._overlaps_line()
        self._cache = new = tuple(row)
        if old is None:
            self._changed = _ALL_FAMILIES
        else:
            changed = self._changed
            for index, (before, after) in enumerate(zip(old, new, strict=True)):
                if before is not after:
                    changed |= 1 << index
            self._changed = changed
        return new

    def _overlaps_line(self) -> bytes:
        return f"{m.OVERLAPS.name}{{{self._label}}} {self.overlaps}\n".encode()


def _keep_or_set(row: list[bytes], index: int, text: str) -> None:
    """Write ``text`` into ``row[index]``, keeping the old object when its bytes are the same
    (``Columns`` compares chunks by identity: an equal chunk costs no join)."""
    new = text.encode()
    if new != row[index]:
        row[index] = new


def simple(metric: m.Metric, value: float) -> str:
    return f"{header(metric)}{metric.name} {number(value)}\n"


def labelled(metric: m.Metric, samples: Mapping[str, float]) -> str:
    """A family with one label (``metric.labels[0]``), one sample per value of it."""
    (name,) = metric.labels
    lines = "".join(f'{metric.name}{{{name}="{escape(key)}"}} {number(v)}\n' for key, v in sorted(samples.items()))
    return header(metric) + lines


def multi(metric: m.Metric, samples: Mapping[tuple[str, ...], float]) -> str:
    """A family with several labels (``metric.labels``), one sample per tuple of their values."""
    lines = []
    for values, value in sorted(samples.items()):
        labels = ",".join(f'{name}="{escape(v)}"' for name, v in zip(metric.labels, values, strict=True))
        lines.append(f"{metric.name}{{{labels}}} {number(value)}\n")
    return header(metric) + "".join(lines)


def process_lines(process: psutil.Process) -> Iterator[str]:
    """The standard ``process_*`` families of ``process``, as prometheus_client's
    ProcessCollector reads them from ``/proc`` (psutil reads the same files)."""
    with process.oneshot():
        memory = process.memory_info()
        cpu = process.cpu_times()
        values = {
            m.PROCESS_VIRTUAL_MEMORY: memory.vms,
            m.PROCESS_RSS: memory.rss,
            m.PROCESS_START_TIME: process.create_time(),
            m.PROCESS_CPU: cpu.user + cpu.system,
            m.PROCESS_OPEN_FDS: process.num_fds(),
        }
    soft, _hard = process.rlimit(psutil.RLIMIT_NOFILE)
    values[m.PROCESS_MAX_FDS] = math.inf if soft == psutil.RLIM_INFINITY else soft
    for metric in m.PROCESS:
        yield simple(metric, values[metric])


class Columns:
    """The per-check families of the page across ``series``, kept between scrapes: for
    each family (``metrics.PER_CHECK`` order) the checks' chunks in page order, and
    their join while none of them changed. A scrape writes in the chunks of the checks
    that changed and joins again only the families whose chunks changed.

    Which families changed each check says itself (``CheckSeries._changed``), and
    ``Columns`` clears it: there is one, the page's (``render`` without one joins every
    check afresh and clears nothing)."""

    __slots__ = ("_columns", "_joined", "_members")

    def __init__(self) -> None:
        self._members: list[CheckSeries] = []
        #: Each family's chunks, one per member, as last written in.
        self._columns: list[list[bytes]] = [[] for _ in m.PER_CHECK]
        #: Each family's chunks joined, kept while none of them changed (``None``: to join again).
        self._joined: list[bytes | None] = [b"" for _ in m.PER_CHECK]

    def join(self, series: list[CheckSeries], now: float) -> list[bytes]:
        """Each family's samples over ``series`` (in that order), one piece per family."""
        joined, columns = self._joined, self._columns
        if series != self._members:  # checks came or went (a reload, a hand-over): every column anew
            rows = [s.chunks(now) for s in series]
            for s in series:
                s._changed = 0
            self._columns = columns = [[row[k] for row in rows] for k in range(len(joined))]
            self._members = list(series)
            joined[:] = [None] * len(joined)
        else:
            stale = 0
            for index, s in enumerate(series):
                # most checks did not change: those cost a few attribute reads, not a call
                # (10,000 calls are milliseconds of a scrape). What may change with time alone
                # (a window, a silence) and what is not rendered yet is rendered now.
                if s._dirty or s.windows or s.silenced_by is not None or s.silenced:
                    s.chunks(now)
                changed = s._changed
                if changed:
                    s._changed = 0
                    chunks = s._cache
                    for k in _FAMILIES_OF[changed]:
                        columns[k][index] = chunks[k]  # type: ignore[index]
                    stale |= changed
            for k in _FAMILIES_OF[stale]:
                joined[k] = None
        for k, piece in enumerate(joined):
            if piece is None:
                joined[k] = b"".join(columns[k])
        return cast("list[bytes]", list(joined))


#: The families (their indexes in ``metrics.PER_CHECK``) a ``CheckSeries._changed`` names.
_FAMILIES_OF = tuple(tuple(k for k in range(len(m.PER_CHECK)) if bits >> k & 1) for bits in range(_ALL_FAMILIES + 1))


def render(
    series: Iterable[CheckSeries],
    now: float,
    watcher: Callable[[], Iterable[str]],
    open_metrics: bool = False,
    columns: Columns | None = None,
) -> list[bytes]:
    """The whole page, in pieces: per-check families across ``series`` (a piece each),
    then the ``watcher``'s own lines; the server sends them in batches, passing the
    large pieces on without copying them.
    ``open_metrics``: in OpenMetrics 1.0 (only the headers differ, and ``# EOF`` ends it).
    ``columns``: kept from the last scrape (only the checks that changed are written in)."""
    if columns is not None:
        joined = columns.join(list(series), now)
    else:
        rows = [s.chunks(now) for s in series]
        joined = [b"".join([row[k] for row in rows]) for k in range(len(m.PER_CHECK))]
    parts: list[bytes] = []
    for metric, column in zip(m.PER_CHECK, joined, strict=True):
        parts.append(_headers(metric, open_metrics))
        parts.append(column)
    if open_metrics:
        parts.extend(openmetrics(text).encode() for text in watcher())
        parts.append(b"# EOF\n")
    else:
        parts.extend(text.encode() for text in watcher())
    return parts
