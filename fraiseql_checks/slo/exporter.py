"""Watch mode's SLO series: good and bad time per check, and every SLO's standing.

- ``fraiseql_check_slo_seconds_total{check, outcome="good"|"bad"}`` grows with each
  run of a check that has an SLO (its interval; silenced and skipped runs add
  nothing), so Prometheus' own burn-rate rules read the same SLI as the store.
- Every ``slo.refresh`` (default 1m) the SLOs are computed as ``fraiseql-check slo``
  computes them — check SLOs from the store, request SLOs from Prometheus — and
  exported as gauges: objective, SLI per window and over the period, budget left,
  burn rate per window. A computation that fails keeps the previous values and
  says so once; it never stops the watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from fraiseql_checks import metrics as m
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.result import Outcome
from fraiseql_checks.slo.model import PERIOD_WINDOW, SLO, CheckSLI
from fraiseql_checks.watch.exposition import escape, header, number
from fraiseql_checks.watch.maintenance import silenced, windows_for

if TYPE_CHECKING:
    from fraiseql_checks.result import Result
    from fraiseql_checks.slo.compute import Status
    from fraiseql_checks.watch.watcher import Watcher

_BAD = (Outcome.FAILED, Outcome.ERROR)


class SLOExporter:
    """Registered while a watcher runs; renders the SLO families of ``/metrics``."""

    def __init__(self, watcher: Watcher, slos: Sequence[SLO], refresh: float) -> None:
        self.watcher = watcher
        self.slos = list(slos)
        self.refresh = refresh
        self.seconds: dict[str, list[float]] = {
            slo.sli.check_id: [0.0, 0.0] for slo in slos if isinstance(slo.sli, CheckSLI)
        }
        #: Each run of a check counts for the check's interval.
        self.intervals = {slo.sli.check_id: slo.sli.interval for slo in slos if isinstance(slo.sli, CheckSLI)}
        # The maintenance windows of each check, matched once: per run it is a time compare.
        maintenance = watcher.settings.maintenance
        self.windows = {check_id: windows_for(check_id, maintenance) for check_id in self.seconds}
        self.statuses: list[Status] = []
        self.updated: float | None = None
        #: The gauges' text, rendered once per computation (scrapes only join it).
        self._gauges = ""
        self._complained = False
        self._task: asyncio.Task[None] | None = None

    # -- counting -----------------------------------------------------------------------

    @hookimpl
    def fraiseql_report_result(self, result: Result) -> None:
        counts = self.seconds.get(result.id)
        if counts is None or result.kind != "check" or result.outcome is Outcome.SKIPPED:
            return
        windows = self.windows.get(result.id, ())
        if windows and silenced(windows, result.started_at):
            return
        counts[1 if result.outcome in _BAD else 0] += self.intervals[result.id]

    # -- computing ----------------------------------------------------------------------

    async def update(self) -> None:
        from fraiseql_checks.slo.compute import statuses
        from fraiseql_checks.targets.http import make_client
        from fraiseql_checks.targets.plugin import targets_of
        from fraiseql_checks.targets.prometheus import PrometheusClient

        config = self.watcher.config
        targets = targets_of(config)
        needs_prom = any(not isinstance(slo.sli, CheckSLI) for slo in self.slos)
        async with make_client(config) as http:
            prom = None
            if needs_prom and targets.prometheus_url:
                prom = PrometheusClient(http, targets.prometheus_url, targets.prometheus_token)
            found = await statuses(self.slos, time.time(), self.watcher.writer.store, prom)
        errors = [status for status in found if status.error is not None or status.note]
        if errors and not self._complained:
            first = errors[0]
            why = first.error or first.note
            self.watcher.say(f"SLO {first.slo.id} cannot be computed: {why} ({len(errors)} SLOs affected)")
        self._complained = bool(errors)
        # An SLO that failed this time keeps its previous values.
        previous = {status.slo.id: status for status in self.statuses}
        self.statuses = [
            previous.get(status.slo.id, status) if status.error is not None else status for status in found
        ]
        self.updated = time.time()
        self._gauges = self._render_gauges()

    async def run(self) -> None:
        while True:
            try:
                await self.update()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the SLO gauges take the watcher down
                self.watcher.say(f"computing the SLOs failed: {type(exc).__name__}: {exc}")
            await asyncio.sleep(self.refresh)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- rendering ----------------------------------------------------------------------

    def lines(self) -> Iterator[str]:
        if self.seconds:
            yield header(m.SLO_SECONDS)
            for check_id, (good, bad) in sorted(self.seconds.items()):
                label = f'check="{escape(check_id)}"'
                yield f'{m.SLO_SECONDS.name}{{{label},outcome="good"}} {number(good)}\n'
                yield f'{m.SLO_SECONDS.name}{{{label},outcome="bad"}} {number(bad)}\n'
        yield self._gauges

    def _render_gauges(self) -> str:
        """Objective, SLI, budget and burn-rate families of the last computation."""
        objective, sli = [header(m.SLO_OBJECTIVE)], [header(m.SLO_SLI)]
        budget, burn = [header(m.SLO_BUDGET)], [header(m.SLO_BURN)]
        for status in self.statuses:
            slo = status.slo
            base = f'slo="{escape(slo.id)}",check="{escape(slo.check_id or "")}"'
            objective.append(f"{m.SLO_OBJECTIVE.name}{{{base}}} {number(float(slo.objective.ratio))}\n")
            if status.sli is not None:
                sli.append(f'{m.SLO_SLI.name}{{{base},window="{PERIOD_WINDOW}"}} {number(float(status.sli))}\n')
            for window, ratio in status.error_ratios.items():
                if ratio is not None:
                    sli.append(f'{m.SLO_SLI.name}{{{base},window="{window}"}} {number(float(1 - ratio))}\n')
            remaining = status.remaining
            if remaining is not None:
                budget.append(f"{m.SLO_BUDGET.name}{{{base}}} {number(float(remaining))}\n")
            for window, rate in status.burn_rates.items():
                if rate is not None:
                    burn.append(f'{m.SLO_BURN.name}{{{base},window="{window}"}} {number(float(rate))}\n')
        updated = (
            [] if self.updated is None else [header(m.SLO_UPDATED), f"{m.SLO_UPDATED.name} {number(self.updated)}\n"]
        )
        return "".join([*objective, *sli, *budget, *burn, *updated])
