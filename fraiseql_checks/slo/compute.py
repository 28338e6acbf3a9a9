"""SLIs, error budgets and burn rates, from the result store and from Prometheus.

For one SLO at one moment (``now``):

- **SLI**: good / (good + bad) over the period so far — time for a check SLI
  (each run counts for its interval), events for a request SLI. No data is
  ``None`` ("unknown"), never 100%.
- **error budget**: ``1 - objective`` of the period; as time, that share of the
  period's length (43m12s for 99.9% over 30 days).
- **consumed**: the error ratio over the budget, ``(1 - SLI) / (1 - objective)``;
  **remaining** is ``1 - consumed`` (negative once overspent), also as time.
- **burn rate** over a window: the window's error ratio over the budget; 1 spends
  the budget exactly over the period, 14.4 spends 2% of 30 days' budget in an hour.

Everything is computed in ``Fraction``: an objective met to the last run leaves
exactly 0, not a rounding artefact.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

from fraiseql_checks.durations import parse_duration
from fraiseql_checks.slo.model import BURN_WINDOWS, PERIOD_WINDOW, SLO, CheckSLI, PeriodKind, exact

if TYPE_CHECKING:
    from fraiseql_checks.stores import SLITotals
    from fraiseql_checks.targets.prometheus import PrometheusClient

#: The burn-rate windows in seconds.
WINDOW_SECONDS: dict[str, float] = {window: parse_duration(window) for window in BURN_WINDOWS}


class TotalsSource(Protocol):
    """What the computation needs of a result store (``Store.sli_totals``)."""

    async def sli_totals(
        self, check_ids: Sequence[str], windows: Sequence[tuple[float, float]]
    ) -> Mapping[str, Sequence[SLITotals]]: ...


@dataclasses.dataclass(frozen=True)
class Status:
    """An SLO's standing at ``now``."""

    slo: SLO
    now: float
    #: When the period began (``now`` minus its length for a rolling one).
    start: float
    #: The period's whole length in seconds (a calendar month's own length).
    length: float
    #: Good and bad over the period so far: seconds for a check SLI, ``None`` for a
    #: request SLI (Prometheus gives the ratio only).
    good: Fraction | None = None
    bad: Fraction | None = None
    #: The SLI over the period so far; ``None``: no data.
    sli: Fraction | None = None
    #: The error ratio per burn window (``BURN_WINDOWS``); ``None``: no data in it.
    error_ratios: Mapping[str, Fraction | None] = dataclasses.field(default_factory=dict)
    #: Why the SLO could not be computed (Prometheus unreachable, a query that failed).
    error: str | None = None
    #: Why there is no data when it is not an error (Prometheus is not configured).
    note: str | None = None

    @property
    def known(self) -> bool:
        return self.error is None and self.sli is not None

    @property
    def budget(self) -> Fraction:
        """The error budget as a ratio (``1 - objective``)."""
        return self.slo.objective.budget

    @property
    def budget_seconds(self) -> float:
        """The period's error budget as time."""
        return float(self.budget * exact(self.length))

    @property
    def consumed(self) -> Fraction | None:
        """Share of the budget spent: 0 none, 1 all, above 1 overspent."""
        if self.sli is None:
            return None
        return (1 - self.sli) / self.budget

    @property
    def remaining(self) -> Fraction | None:
        """Share of the budget left: 1 untouched, 0 spent, negative overspent."""
        consumed = self.consumed
        return None if consumed is None else 1 - consumed

    @property
    def remaining_seconds(self) -> float | None:
        remaining = self.remaining
        return None if remaining is None else float(remaining * exact(self.length) * self.budget)

    def burn_rate(self, window: str) -> Fraction | None:
        ratio = self.error_ratios.get(window)
        return None if ratio is None else ratio / self.budget

    @property
    def burn_rates(self) -> dict[str, Fraction | None]:
        return {window: self.burn_rate(window) for window in BURN_WINDOWS}

    @property
    def fastest_burn(self) -> tuple[str, Fraction] | None:
        """The window burning fastest, and its rate; the shorter window wins a tie."""
        known = [(rate, window) for window, rate in self.burn_rates.items() if rate is not None]
        if not known:
            return None
        rate, window = max(known, key=lambda item: item[0])
        return window, rate

    def to_json(self) -> dict[str, Any]:
        def number(value: Fraction | None) -> float | None:
            return None if value is None else float(value)

        fastest = self.fastest_burn
        return {
            "id": self.slo.id,
            "name": self.slo.name,
            "service": self.slo.service,
            "source": self.slo.source,
            "check": self.slo.check_id,
            "sli_kind": self.slo.sli.kind,
            "error_ratio_query": self.slo.sli.error_ratio_query("{{window}}"),
            "objective": float(self.slo.objective.ratio),
            "period": self.slo.period.label,
            "period_start": self.start,
            "period_seconds": self.length,
            "status": self.state,
            "error": self.error,
            "note": self.note,
            "sli": number(self.sli),
            "good_seconds": number(self.good),
            "bad_seconds": number(self.bad),
            "error_budget": {
                "total_ratio": float(self.budget),
                "total_seconds": self.budget_seconds,
                "consumed_ratio": number(self.consumed),
                "remaining_ratio": number(self.remaining),
                "remaining_seconds": self.remaining_seconds,
            },
            "error_ratios": {window: number(ratio) for window, ratio in self.error_ratios.items()},
            "burn_rates": {window: number(rate) for window, rate in self.burn_rates.items()},
            "fastest_burn": None if fastest is None else {"window": fastest[0], "rate": float(fastest[1])},
        }

    @property
    def state(self) -> str:
        """``ok``, ``exhausted`` (no budget left), ``unknown`` (no data) or ``error``."""
        if self.error is not None:
            return "error"
        remaining = self.remaining
        if remaining is None:
            return "unknown"
        return "exhausted" if remaining <= 0 else "ok"


def _ratio(bad: Fraction, good: Fraction) -> Fraction | None:
    total = good + bad
    return None if total == 0 else bad / total


async def check_statuses(store: TotalsSource, slos: Sequence[SLO], now: float) -> list[Status]:
    """The statuses of check SLOs, from the result store's totals (one query per period)."""
    by_period: dict[tuple[float, float], list[SLO]] = {}
    for slo in slos:
        if not isinstance(slo.sli, CheckSLI):
            raise ValueError(f"{slo.id} is not a check SLO")
        start, _ = slo.period.bounds(now)
        by_period.setdefault((start, slo.period.length(now)), []).append(slo)
    out: dict[str, Status] = {}
    for (start, length), group in by_period.items():
        windows = [(now - WINDOW_SECONDS[w], now) for w in BURN_WINDOWS] + [(start, now)]
        ids = sorted({slo.check_id for slo in group if slo.check_id is not None})
        totals = await store.sli_totals(ids, windows)
        for slo in group:
            assert slo.check_id is not None
            rows = totals.get(slo.check_id) or []
            sums = [(Fraction(t.good_s), Fraction(t.bad_s)) for t in rows]
            if len(sums) != len(windows):
                sums = [(Fraction(0), Fraction(0))] * len(windows)
            good, bad = sums[-1]
            error_ratio = _ratio(bad, good)
            out[slo.id] = Status(
                slo=slo,
                now=now,
                start=start,
                length=length,
                good=good,
                bad=bad,
                sli=None if error_ratio is None else 1 - error_ratio,
                error_ratios={w: _ratio(b, g) for w, (g, b) in zip(BURN_WINDOWS, sums, strict=False)},
            )
    return [out[slo.id] for slo in slos]


async def _error_ratio(prom: PrometheusClient, slo: SLO, window: str, now: float) -> Fraction | None:
    from fraiseql_checks.targets.prometheus import Scalar, Vector

    expr = slo.sli.error_ratio_query(window)
    result = await prom.query(expr, time=now)
    if isinstance(result, Scalar):
        value = result.value
    elif isinstance(result, Vector):
        if len(result) == 0:
            return None
        if len(result) > 1:
            raise ValueError(f"the error ratio query returns {len(result)} series, not one: aggregate it with sum()")
        value = next(iter(result)).value
    else:
        raise ValueError(f"the error ratio query returns a {type(result).__name__}, not a vector")
    if value is None or math.isnan(value):  # 0/0: no events in the window
        return None
    if math.isinf(value):
        return None
    return min(max(exact(value), Fraction(0)), Fraction(1))


async def request_status(prom: PrometheusClient, slo: SLO, now: float) -> Status:
    """One request SLO's status: its error ratio per window, each an instant query at ``now``."""
    start, _ = slo.period.bounds(now)
    length = slo.period.length(now)
    elapsed = max(1, int(now - start))
    period_window = slo.period.prometheus_window if slo.period.kind is PeriodKind.ROLLING else f"{elapsed}s"
    windows = [*BURN_WINDOWS, PERIOD_WINDOW]
    try:
        ratios = await asyncio.gather(
            *(_error_ratio(prom, slo, period_window if w == PERIOD_WINDOW else w, now) for w in windows)
        )
    except Exception as exc:  # unreachable, a bad query: this SLO is in error, the others go on
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _without_data(slo, now, error=message)
    by_window = dict(zip(windows, ratios, strict=True))
    period_ratio = by_window.pop(PERIOD_WINDOW)
    return Status(
        slo=slo,
        now=now,
        start=start,
        length=length,
        sli=None if period_ratio is None else 1 - period_ratio,
        error_ratios=by_window,
    )


async def statuses(
    slos: Sequence[SLO], now: float, store: TotalsSource | None, prom: PrometheusClient | None
) -> list[Status]:
    """Every SLO's status, in the order given. Without a store (or Prometheus) the SLOs
    that need it are in error with the reason."""
    checks = [slo for slo in slos if isinstance(slo.sli, CheckSLI)]
    requests = [slo for slo in slos if not isinstance(slo.sli, CheckSLI)]
    found: dict[str, Status] = {}
    if checks:
        if store is None:
            for slo in checks:
                found[slo.id] = _without_data(slo, now, error="no result store to read the check's history from")
        else:
            try:
                for status in await check_statuses(store, checks, now):
                    found[status.slo.id] = status
            except Exception as exc:
                reason = f"the result store failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                for slo in checks:
                    found[slo.id] = _without_data(slo, now, error=reason)
    if requests:
        if prom is None:
            note = "Prometheus is not configured: set prometheus.url or PROMETHEUS_URL"
            for slo in requests:
                found[slo.id] = _without_data(slo, now, note=note)
        else:
            semaphore = asyncio.Semaphore(8)

            async def one(slo: SLO) -> Status:
                async with semaphore:
                    return await request_status(prom, slo, now)

            for status in await asyncio.gather(*(one(slo) for slo in requests)):
                found[status.slo.id] = status
    return [found[slo.id] for slo in slos]


def _without_data(slo: SLO, now: float, *, error: str | None = None, note: str | None = None) -> Status:
    """A status with no numbers: the SLO could not be computed (``error``) or has no source (``note``)."""
    start, _ = slo.period.bounds(now)
    return Status(slo=slo, now=now, start=start, length=slo.period.length(now), error=error, note=note)
