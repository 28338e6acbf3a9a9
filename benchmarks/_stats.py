"""What the benchmark scripts share: min / median / max of repeated measurements, and
the conditions every figure depends on (load average, cores, ``PYTHONDONTWRITEBYTECODE``).

Imported as ``_stats``: the scripts run as ``python benchmarks/<name>.py`` (by hand or
from ``benchmarks/run.py``), so ``benchmarks/`` is the first entry of ``sys.path``.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence


def median(values: Iterable[float]) -> float:
    """The median (the mean of the two middle values for an even count)."""
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of ``values``: the nearest value of the sorted list, no
    interpolation (``q=0.5`` of an even count is one of the two middle values)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def lateness_between(before: Mapping[float, float], after: Mapping[float, float]) -> tuple[float, float, int]:
    """p50 and p99 of what a histogram observed between two readings of its cumulative
    buckets (upper bound -> count, ``+Inf`` included, as ``/metrics`` gives them),
    interpolated within buckets as PromQL's ``histogram_quantile`` does; and how many
    observations there were in between."""
    from fraiseql_checks.watch.exposition import Histogram

    bounds = tuple(sorted(b for b in after if b != math.inf))
    totals = [after[b] - before.get(b, 0.0) for b in (*bounds, math.inf)]
    histogram = Histogram(bounds)
    # Histogram.counts holds each bucket's own count; the readings are running totals.
    histogram.counts = [int(total - below) for total, below in zip(totals, [0.0, *totals[:-1]], strict=True)]
    histogram.count = int(totals[-1])
    return histogram.quantile(0.5), histogram.quantile(0.99), histogram.count


def later_than(before: Mapping[float, float], after: Mapping[float, float], bound: float) -> tuple[int, int]:
    """How many of what a histogram observed between two readings of its cumulative buckets
    were above ``bound``, which must be one of its buckets' bounds (exact, where a quantile
    is interpolated within its bucket); and how many it observed in all."""
    if bound not in after:
        raise ValueError(f"{bound} is not a bound of the histogram's buckets: {sorted(after)}")
    total = after[math.inf] - before.get(math.inf, 0.0)
    at_most = after[bound] - before.get(bound, 0.0)
    return int(total - at_most), int(total)


def share_later_than(before: Mapping[float, float], after: Mapping[float, float], bound: float) -> float:
    """``later_than`` as a share of all observed. ``p99 <= bound`` holds exactly when it is
    at most 1 %; the share says by how much it does or does not."""
    late, total = later_than(before, after, bound)
    return late / total if total else 0.0


def min_median_max(values: Iterable[float]) -> tuple[float, float, float]:
    """The smallest, median and largest of ``values`` (not empty)."""
    found = list(values)
    return min(found), statistics.median(found), max(found)


def spread_cells(values: Iterable[float], fmt: str = "{:.2f}", unit: str = "") -> list[str]:
    """Min, median and max, each formatted with ``fmt`` and followed by ``unit``: three table cells."""
    return [f"{fmt.format(v)}{unit}" for v in min_median_max(values)]


def spread(values: Iterable[float], fmt: str = "{:.2f}", unit: str = "", sep: str = " / ") -> str:
    """``min / median / max`` in one string, each formatted with ``fmt``, ``unit`` once at the end
    (``spread([1, 2, 4], unit=" s")`` is ``"1.00 / 2.00 / 4.00 s"``)."""
    return sep.join(fmt.format(v) for v in min_median_max(values)) + unit


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, ``"0.43 1.72 1.75"`` (``"unavailable"`` where the
    system does not give them)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unavailable"


def usable_cores() -> int | None:
    """The cores this process may run on (its CPU affinity), or all of them where that is unknown."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


def bytecode(when_set: str = "", when_unset: str = "") -> str:
    """The line on ``PYTHONDONTWRITEBYTECODE`` in this process's environment: ``set ('1')`` or
    ``not set``, followed by ``when_set`` or ``when_unset`` (what it means for the script)."""
    value = os.environ.get("PYTHONDONTWRITEBYTECODE")
    state, note = (f"set ({value!r})", when_set) if value else ("not set", when_unset)
    return f"PYTHONDONTWRITEBYTECODE: {state}" + (f": {note}" if note else "")


def conditions(cores_note: str = "", when_set: str = "", when_unset: str = "") -> list[str]:
    """The header lines every benchmark prints first: the load average (a shared, busy machine
    makes everything slower), the cores (``cores_note`` after them), and whether
    ``PYTHONDONTWRITEBYTECODE`` is set (see ``bytecode``)."""
    return [
        f"load average (1, 5, 15 min): {load_average()}",
        f"cores: {os.cpu_count()} ({usable_cores()} usable)" + (f"; {cores_note}" if cores_note else ""),
        bytecode(when_set, when_unset),
    ]
