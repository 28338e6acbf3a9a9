"""What an SLO is: an objective over a period for one SLI.

Two kinds of SLI. A **check SLI** is the share of time a check passed: each run
counts for its interval, runs silenced by a maintenance window and skipped runs
count for nothing; it is computed from the result store, and in Prometheus from
``fraiseql_check_slo_seconds_total``. A **request SLI** is a ratio of events read
from Prometheus: good (or bad) over total, an error ratio given directly, or the
share of a histogram's requests under a latency threshold.

Every ratio is kept as a ``Fraction``: ``99.9%`` is exactly ``999/1000``, so an
objective met to the last run leaves exactly no budget, not ``8.9e-16`` of it.

The burn-rate windows and the page and ticket alerts' window pairs are defined here
once: the SLO computation, the rules and the dashboards read them.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import enum
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fraiseql_checks.durations import format_duration, parse_duration
from fraiseql_checks.metrictypes import Kind, sample_name

#: The burn-rate windows, shortest first (the Google SRE workbook's).
BURN_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
#: The ``window`` label of an SLI over the SLO's whole period (the other windows are ``BURN_WINDOWS``).
PERIOD_WINDOW = "period"
#: The period the workbook's burn-rate factors are written for.
REFERENCE_PERIOD_S = 30 * 86400.0
#: The decimals a burn factor keeps: ``0.1 × 40d / 3d`` is written ``1.333333``.
FACTOR_DECIMALS = 6
#: Where a request SLI's query takes its range: ``{{window}}`` (and Sloth's ``{{.window}}``).
WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*\.?window\s*\}\}")


def decimal_text(value: Fraction) -> str:
    """A decimal fraction written exactly: ``999/1000`` is ``0.999``, never ``0.9990000000000001``."""
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def window_text(seconds: float) -> str:
    """A window as SLO tools write it: whole days in days (``30d``, not ``4w2d``)."""
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    return format_duration(seconds)


class SLOError(ValueError):
    """An invalid SLO definition: where it is, which SLO, what is wrong."""

    def __init__(self, source: str, slo: str | None, what: str) -> None:
        where = f"{source}: SLO {slo!r}" if slo else source
        super().__init__(f"{where}: {what}")
        self.source, self.slo, self.what = source, slo, what


def exact(value: float | int | str | Fraction | Decimal) -> Fraction:
    """``value`` as the decimal a person wrote: ``0.999`` is ``999/1000``, not the
    binary float nearest to it (``repr`` of a float is the shortest decimal that
    reads back as the same float)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        return Fraction(Decimal(repr(value)))
    return Fraction(Decimal(str(value)) if isinstance(value, str) else value)


@dataclasses.dataclass(frozen=True)
class Objective:
    """The target share of good time or events, strictly between 0 and 1."""

    ratio: Fraction

    @classmethod
    def parse(cls, value: object) -> Objective:
        """``"99.9%"``, ``99.9`` (a percentage, as Sloth writes it) or ``0.999`` (a ratio, as OpenSLO's target)."""
        text = str(value).strip() if not isinstance(value, bool) else ""
        percent = text.endswith("%")
        text = text.rstrip("%").strip()
        try:
            number = Fraction(Decimal(text))
        except (InvalidOperation, ValueError, ArithmeticError):  # not a number, or inf/nan
            raise ValueError(f"objective must be a percentage such as '99.9%', got {value!r}") from None
        if percent or number > 1:
            number /= 100
        if number >= 1:
            raise ValueError(f"objective {value!r} leaves no error budget: it must be below 100%")
        if number <= 0:
            raise ValueError(f"objective must be above 0%, got {value!r}")
        return cls(number)

    @property
    def budget(self) -> Fraction:
        """The error budget as a ratio: ``1 - objective``."""
        return 1 - self.ratio

    def __str__(self) -> str:
        return decimal_text(self.ratio * 100) + "%"


class PeriodKind(enum.StrEnum):
    ROLLING = "rolling"
    MONTH = "month"
    WEEK = "week"


@dataclasses.dataclass(frozen=True)
class Period:
    """A rolling window (``30d``) or a calendar month or week (in a timezone, UTC by default)."""

    kind: PeriodKind
    #: A rolling period's length; for calendar periods, the nominal length the
    #: Prometheus rules use (30 days, 7 days): Prometheus has no calendar windows.
    seconds: float
    timezone: str = "UTC"

    @classmethod
    def parse(cls, value: object, timezone: str | None = None) -> Period:
        """``30d``, ``4w``, ``month`` / ``calendar month`` / ``1M``, ``week`` / ``calendar week``."""
        raw = " ".join(str(value).strip().split())
        text = raw.lower()
        tz = timezone or "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"unknown timezone {tz!r}") from None
        # "1M" is OpenSLO's month; "1m" is a minute (and too short for a period).
        if raw == "1M" or text in ("month", "calendar month", "1mo", "monthly"):
            return cls(PeriodKind.MONTH, REFERENCE_PERIOD_S, tz)
        if text in ("week", "calendar week", "weekly"):
            return cls(PeriodKind.WEEK, 7 * 86400.0, tz)
        try:
            seconds = parse_duration(text)
        except ValueError:
            raise ValueError(
                f"period must be a duration such as '30d', or 'month' or 'week' for calendar periods; got {value!r}"
            ) from None
        if seconds < 3600:
            raise ValueError(f"period {value!r} is too short for an SLO: at least 1h")
        return cls(PeriodKind.ROLLING, seconds, tz)

    @property
    def label(self) -> str:
        """``30d``, ``month`` or ``week``."""
        return window_text(self.seconds) if self.kind is PeriodKind.ROLLING else self.kind.value

    @property
    def prometheus_window(self) -> str:
        """The range Prometheus rules use for the whole period (``30d`` for a calendar month)."""
        return window_text(self.seconds)

    def bounds(self, now: float) -> tuple[float, float]:
        """The period ``now`` falls in: ``(start, end)``; a rolling period ends now."""
        if self.kind is PeriodKind.ROLLING:
            return now - self.seconds, now
        zone = ZoneInfo(self.timezone)
        local = dt.datetime.fromtimestamp(now, zone)
        if self.kind is PeriodKind.MONTH:
            start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            days = calendar.monthrange(start.year, start.month)[1]
            end = start + dt.timedelta(days=days)
        else:
            start = (local - dt.timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
            end = start + dt.timedelta(days=7)
        # Wall-clock midnight in the zone (a DST change inside the period shortens or lengthens it).
        start = start.replace(tzinfo=None).replace(tzinfo=zone)
        end = end.replace(tzinfo=None).replace(tzinfo=zone)
        return start.timestamp(), end.timestamp()

    def length(self, now: float) -> float:
        """The whole period's length in seconds (a calendar month's own length)."""
        start, end = self.bounds(now)
        return self.seconds if self.kind is PeriodKind.ROLLING else end - start

    def __str__(self) -> str:
        return self.label


@dataclasses.dataclass(frozen=True)
class CheckSLI:
    """The share of time a check passed."""

    check_id: str
    interval: float

    def error_ratio_query(self, window: str) -> str:
        from fraiseql_checks import metrics as m
        from fraiseql_checks.alerting.rules import promql_string

        check = promql_string(self.check_id)
        bad = f'sum(rate({m.SLO_SECONDS.name}{{check={check},outcome="bad"}}[{window}]))'
        total = f"sum(rate({m.SLO_SECONDS.name}{{check={check}}}[{window}]))"
        return f"{bad} / {total}"

    @property
    def kind(self) -> str:
        return "check"


@dataclasses.dataclass(frozen=True)
class RatioSLI:
    """Events from Prometheus: ``bad / total``, ``1 - good / total``, or an error ratio query.

    Each query holds ``{{window}}`` where its range goes.
    """

    good: str | None = None
    bad: str | None = None
    total: str | None = None
    error_ratio: str | None = None

    def error_ratio_query(self, window: str) -> str:
        def fill(query: str) -> str:
            return WINDOW_PLACEHOLDER.sub(window, query).strip()

        if self.error_ratio is not None:
            return fill(self.error_ratio)
        assert self.total is not None
        if self.bad is not None:
            return f"({fill(self.bad)}) / ({fill(self.total)})"
        assert self.good is not None
        # (total - good) / total, not 1 - good / total: one rounding instead of two, so an
        # error ratio exactly at the objective does not come out a hair above it.
        total = fill(self.total)
        return f"(({total}) - ({fill(self.good)})) / ({total})"

    @property
    def kind(self) -> str:
        return "ratio"


@dataclasses.dataclass(frozen=True)
class LatencySLI:
    """The share of a histogram's requests that took at most ``threshold`` seconds.

    ``le`` is the bucket's label value exactly as the histogram writes it.
    """

    metric: str
    le: str
    selector: str = ""

    def error_ratio_query(self, window: str) -> str:
        inner = self.selector.strip().strip("{}").strip()
        joined = f"{inner}," if inner else ""
        bucket, count = (sample_name(self.metric, Kind.HISTOGRAM, part) for part in ("bucket", "count"))
        good = f'sum(rate({bucket}{{{joined}le="{self.le}"}}[{window}]))'
        total = f"sum(rate({count}{{{inner}}}[{window}]))" if inner else f"sum(rate({count}[{window}]))"
        return f"({total} - {good}) / {total}"

    @property
    def kind(self) -> str:
        return "latency"


SLI = CheckSLI | RatioSLI | LatencySLI


@dataclasses.dataclass(frozen=True)
class Alerting:
    """What the burn-rate alerts carry besides the generated labels (Sloth's ``alerting`` block)."""

    name: str | None = None
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    page_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    ticket_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: ``False`` when the definition turns the alerts off (the recording rules stay).
    enabled: bool = True
    #: ``False`` when only the page alert is turned off (Sloth's ``page_alert.disable``).
    page_enabled: bool = True
    #: ``False`` when only the ticket alert is turned off (Sloth's ``ticket_alert.disable``).
    ticket_enabled: bool = True


@dataclasses.dataclass(frozen=True)
class SLO:
    """One service level objective."""

    #: The SLO's name within its service (a check SLO: the check's name).
    name: str
    service: str
    objective: Objective
    period: Period
    sli: SLI
    #: Where it was declared: a file (relative to the root) or a check id.
    source: str
    description: str = ""
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    alerting: Alerting = dataclasses.field(default_factory=Alerting)
    runbook: str | None = None
    #: The target profiles whose metric names its queries use; empty: every profile.
    profiles: tuple[str, ...] = ()

    def applies_to(self, profile: str) -> bool:
        return not self.profiles or profile in self.profiles

    @property
    def id(self) -> str:
        """Unique across the SLOs (Sloth's ``sloth_id``): ``service-name``."""
        return f"{self.service}-{self.name}"

    @property
    def check_id(self) -> str | None:
        return self.sli.check_id if isinstance(self.sli, CheckSLI) else None


def burn_factor(budget_share: float, window_s: float, period_s: float) -> float:
    """The burn rate that spends ``budget_share`` of a ``period_s`` budget in ``window_s``.

    For 30 days: 2% in 1h is 14.4, 5% in 6h is 6, 10% in 1d is 3, 10% in 3d is 1.
    """
    return budget_share * period_s / window_s


@dataclasses.dataclass(frozen=True)
class WindowPair:
    """A burn-rate condition: both windows above ``factor × budget``, the factor being the
    burn rate that spends ``budget_share`` of the period's budget in the long window."""

    long: str
    short: str
    budget_share: Fraction

    def factor(self, period_s: float) -> Fraction:
        """The workbook's factor scaled to the period as Sloth does, never below 1: a factor
        below 1 would open a ticket for an SLO that is on track to meet its objective."""
        raw = burn_factor(float(self.budget_share), parse_duration(self.long), period_s)
        return max(Fraction(1), exact(round(raw, FACTOR_DECIMALS)))


@dataclasses.dataclass(frozen=True)
class Severity:
    """One of the two alerts: ``page`` (``critical``) or ``ticket`` (``warning``), each two window pairs."""

    name: str
    severity: str
    pairs: tuple[WindowPair, WindowPair]


#: The Google SRE workbook's recommended windows (Sloth's defaults): for 30 days, 2% of the
#: budget in 1h (14.4), 5% in 6h (6) page; 10% in 1d (3) or in 3d (1) opens a ticket.
PAGE = Severity(
    "page", "critical", (WindowPair("1h", "5m", Fraction(2, 100)), WindowPair("6h", "30m", Fraction(5, 100)))
)
TICKET = Severity(
    "ticket", "warning", (WindowPair("1d", "2h", Fraction(10, 100)), WindowPair("3d", "6h", Fraction(10, 100)))
)
SEVERITIES = (PAGE, TICKET)


def burn_thresholds(period_s: float = REFERENCE_PERIOD_S) -> tuple[float, ...]:
    """The burn rates a dashboard colours, lowest first: the lowest factor a ticket opens at,
    then the factors that page (for 30 days: 1, then 6 and 14.4)."""
    ticket = min(pair.factor(period_s) for pair in TICKET.pairs)
    return tuple(sorted({float(ticket), *(float(pair.factor(period_s)) for pair in PAGE.pairs)}))
