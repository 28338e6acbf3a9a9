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
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, cast

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
#: Where the skipped-runs line sits among a check's chunks (``metrics.PER_CHECK`` order).
_OVERLAPS_CHUNK = m.PER_CHECK.index(m.OVERLAPS)
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


class Histogram:
    """Cumulative bucket counts (the last is ``+Inf``), sum and count of observations."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        counts = self.counts
        for index in range(bisect.bisect_left(self.bounds, value), len(counts)):
            counts[index] += 1
        self.sum += value
        self.count += 1

    def fill(self, template: str) -> str:
        """``template`` (from ``histogram_template``) with this histogram's values."""
        return template % (*self.counts, self.sum, self.count)

    def quantile(self, q: float) -> float:
        """An estimate of the ``q`` quantile, interpolated within buckets as PromQL does."""
        if not self.count:
            return math.nan
        rank = q * self.count
        below = 0
        for index, total in enumerate(self.counts):
            if total >= rank and total > below:
                if index == len(self.bounds):
                    return self.bounds[-1]
                lower = self.bounds[index - 1] if index else 0.0
                return lower + (self.bounds[index] - lower) * (rank - below) / (total - below)
            below = total
        return self.bounds[-1]


class CheckSeries:
    """What ``/metrics`` says about one check: updated after each run, rendered per scrape."""

    __slots__ = (
        "_cache",
        "_duration_template",
        "_info",
        "_interval",
        "_label",
        "_overlaps_stale",
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
        self._duration_template = histogram_template(m.DURATION, self._label)
        safe = self._label.replace("%", "%%")
        self._runs_template = "".join(f'{m.RUNS.name}{{{safe},outcome="{o.value}"}} %d\n' for o in OUTCOMES)
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
        self._cache: tuple[bytes, ...] | None = None
        #: Only the skipped-runs line changed since the cache was made (a check past capacity
        #: skips a slot at every interval: the rest of its lines need not be rendered again).
        self._overlaps_stale = False
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
        self._cache = None

    def observe(self, result: Result) -> None:
        self.runs[_OUTCOME_INDEX[result.outcome]] += 1
        self.duration.observe(result.duration_s)
        self.last_run = result.started_at
        if result.outcome is not Outcome.SKIPPED:
            self.up = 1 if result.outcome is Outcome.PASSED else 0
            self.values = result.values
        self._cache = None

    def set_state(self, state: int, consecutive_failures: int) -> None:
        self.state, self.consecutive_failures = state, consecutive_failures
        self._cache = None

    def overlap(self) -> None:
        self.overlaps += 1
        self._overlaps_stale = True

    def chunks(self, now: float) -> tuple[bytes, ...]:
        """This check's lines, one piece per family in ``metrics.PER_CHECK`` order.

        Kept until the check changes: a check that did not run since the last scrape
        costs nothing to render again.
        """
        if self.windows or self.silenced_by is not None or self.silenced:
            now_silenced = int(
                bool(self.windows and silenced(self.windows, now))
                or (self.silenced_by is not None and self.silenced_by(now))
            )
            if now_silenced != self.silenced:
                self.silenced, self._cache = now_silenced, None
        if self._cache is None:
            self._cache = tuple(chunk.encode() for chunk in self._render())
        elif self._overlaps_stale:
            cache = list(self._cache)
            cache[_OVERLAPS_CHUNK] = self._overlaps_line().encode()
            self._cache = tuple(cache)
        self._overlaps_stale = False
        return self._cache

    def _overlaps_line(self) -> str:
        return f"{m.OVERLAPS.name}{{{self._label}}} {self.overlaps}\n"

    def _render(self) -> tuple[str, ...]:
        label = self._label
        up = "" if self.up is None else f"{m.UP.name}{{{label}}} {self.up}\n"
        last = "" if self.last_run is None else f"{m.LAST_RUN.name}{{{label}}} {number(self.last_run)}\n"
        values = "".join(
            f'{m.VALUE.name}{{{label},name="{name}"}} {number(value)}\n' for name, value in self.values.items()
        )
        return (
            self._info,
            up,
            self._runs_template % tuple(self.runs),
            self.duration.fill(self._duration_template),
            last,
            self._interval,
            f"{m.CONSECUTIVE_FAILURES.name}{{{label}}} {self.consecutive_failures}\n",
            f"{m.STATE.name}{{{label}}} {self.state}\n",
            f"{m.SILENCED.name}{{{label}}} {self.silenced}\n",
            self._overlaps_line(),
            values,
        )


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
    """The per-check families of the page across ``series``, one column of pieces per family
    (``metrics.PER_CHECK`` order), kept between scrapes: a scrape writes in the pieces of the
    checks that changed and joins each changed column once."""

    __slots__ = ("_columns", "_joined", "_members", "_rows")

    def __init__(self) -> None:
        self._members: list[CheckSeries] = []
        #: Each member's pieces as written into the columns (compared by identity with its cache).
        self._rows: list[tuple[bytes, ...]] = []
        self._columns: list[list[bytes]] = [[] for _ in m.PER_CHECK]
        #: Each column joined, kept while none of its pieces changed (``None``: to join again).
        self._joined: list[bytes | None] = [b"" for _ in m.PER_CHECK]

    def join(self, series: list[CheckSeries], now: float) -> list[bytes]:
        """Each family's samples over ``series`` (in that order), one piece per family."""
        columns, joined, rows = self._columns, self._joined, self._rows
        if series != self._members:  # checks came or went (a reload, a hand-over): every row anew
            self._rows = rows = [s.chunks(now) for s in series]
            columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in m.PER_CHECK]
            self._columns, self._members = columns, list(series)
            joined[:] = [None] * len(columns)
        else:
            overlaps = columns[_OVERLAPS_CHUNK]
            for index, s in enumerate(series):
                row = rows[index]
                # most checks did not change, or (past capacity) only skipped a slot: those cost
                # a few attribute reads, not a call (10,000 calls are milliseconds of a scrape)
                if s._cache is row and not (s.windows or s.silenced_by or s.silenced):
                    if s._overlaps_stale:
                        rows[index] = new = s.chunks(now)
                        overlaps[index] = new[_OVERLAPS_CHUNK]
                        joined[_OVERLAPS_CHUNK] = None
                    continue
                new = s.chunks(now)
                if new is row:
                    continue
                rows[index] = new
                for k, (column, chunk) in enumerate(zip(columns, new, strict=True)):
                    if column[index] is not chunk:
                        column[index] = chunk
                        joined[k] = None
        for k, piece in enumerate(joined):
            if piece is None:
                joined[k] = b"".join(columns[k])
        return cast("list[bytes]", list(joined))


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
    joined = (columns or Columns()).join(list(series), now)
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
