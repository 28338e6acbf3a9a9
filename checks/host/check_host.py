"""The machine this runs on: the seed's resource alerts (disk, memory, CPU) as checks.

Thresholds are the seed's (free disk below 15%, memory above 85% for 10 minutes, CPU
above 80% for 5 minutes); change them in the config, e.g.
``[tool.fraiseql-checks.thresholds]`` ``"host.disk_free_min_percent" = 10``.

Memory and CPU follow the seed's windows. In watch mode every run adds a sample and a
check fails once its samples cover the whole window and every one of them is above the
threshold, as Prometheus' ``for:`` does. A single run (and a watcher's first runs, before
the window is covered) cannot see a window of its own. For CPU it reads the kernel's load
averages per CPU: below the threshold over 5 minutes, the check passes; above it, it is
skipped with the reading, since a busy spell (a CI job's test suite) is no proof that the
CPUs stay above it for 5 minutes. A one-second sample would be red on any busy machine.
For memory, which has no such average, a single run judges its use now.
"""

from __future__ import annotations

import os
import time

import psutil
import pytest

from fraiseql_checks import check, record


class Window:
    """Samples of one reading kept across runs (a watcher's worker keeps the module), and
    whether they hold "above the threshold for the whole window"."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []

    def add(self, at: float, value: float, seconds: float) -> None:
        self.samples.append((at, value))
        slack = seconds / 50  # a schedule's jitter: a sample a few seconds late still counts
        self.samples = [(t, v) for t, v in self.samples if t >= at - seconds - slack]

    def covers(self, now: float, seconds: float) -> bool:
        """Whether the samples reach back over the whole window."""
        return bool(self.samples) and self.samples[0][0] <= now - seconds + seconds / 50

    def lowest(self) -> float:
        return min(v for _, v in self.samples)


_MEMORY = Window()
_CPU = Window()
#: The CPU times at the previous run in this process: a run's sample is the share of the
#: time since then that the CPUs were busy (every second of it, not a one-second sample).
_cpu_times: list[tuple[float, float]] = []


def _busy_and_total() -> tuple[float, float]:
    times = psutil.cpu_times()
    total = sum(times)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def _filesystems() -> list[str]:
    """The root filesystem, and the working directory's when it is another one."""
    paths = ["/"]
    here = os.getcwd()
    if os.stat(here).st_dev != os.stat("/").st_dev:
        paths.append(here)
    return paths


@pytest.mark.parametrize("path", _filesystems())
@check(
    interval="1m",
    severity="warning",
    tags=["host"],
    runbook="docs/runbooks/DiskSpaceRunningLow.md",
    panel={"value": "disk_free_ratio", "unit": "percentunit", "thresholds": [0.15], "bad": "below"},
)
def check_disk_space(path, config):
    """The filesystem keeps at least 15% free space (seed alert DiskSpaceRunningLow)."""
    minimum = config.threshold("host.disk_free_min_percent")
    usage = psutil.disk_usage(path)
    free_percent = 100 * usage.free / usage.total
    record("disk_free_ratio", usage.free / usage.total)
    assert free_percent >= minimum, f"{path}: {free_percent:.1f}% free, below {minimum:g}%"


@check(
    interval="1m",
    severity="warning",
    tags=["host"],
    runbook="docs/runbooks/HighMemoryUsage.md",
    panel={"value": "memory_used_ratio", "unit": "percentunit", "thresholds": [0.85]},
)
def check_memory_usage(config):
    """Memory in use (total minus available) does not stay above 85% for 10 minutes (seed alert HighMemoryUsage)."""
    maximum = config.threshold("host.memory_used_max_percent")
    window = config.threshold("host.memory_window_seconds")
    memory = psutil.virtual_memory()
    used_percent = 100 * (memory.total - memory.available) / memory.total
    record("memory_used_ratio", used_percent / 100)
    now = time.monotonic()
    _MEMORY.add(now, used_percent, window)
    if _MEMORY.covers(now, window):
        lowest = _MEMORY.lowest()
        assert lowest <= maximum, (
            f"{used_percent:.1f}% of memory in use, above {maximum:g}% for {window:g}s (at least {lowest:.1f}%)"
        )
    else:
        assert used_percent <= maximum, f"{used_percent:.1f}% of memory in use, above {maximum:g}%"


@check(
    interval="1m",
    severity="warning",
    tags=["host"],
    runbook="docs/runbooks/HighCPUUsage.md",
    panel={"value": "cpu_used_ratio", "unit": "percentunit", "thresholds": [0.8]},
)
def check_cpu_usage(config):
    """The CPUs are not more than 80% busy for 5 minutes (seed alert HighCPUUsage)."""
    maximum = config.threshold("host.cpu_used_max_percent")
    window = config.threshold("host.cpu_window_seconds")
    now = time.monotonic()
    busy, total = _busy_and_total()
    previous = _cpu_times[-1] if _cpu_times else None
    _cpu_times[:] = [(busy, total)]
    if previous is not None and total > previous[1]:
        used_percent = 100 * (busy - previous[0]) / (total - previous[1])
        _CPU.add(now, used_percent, window)
        record("cpu_used_ratio", used_percent / 100)
        if _CPU.covers(now, window):
            lowest = _CPU.lowest()
            assert lowest <= maximum, (
                f"CPU {lowest:.1f}% busy or more for {window:g}s, above {maximum:g}% (now {used_percent:.1f}%)"
            )
            return
    cpus = psutil.cpu_count() or 1
    loads = [load / cpus for load in psutil.getloadavg()]  # 1, 5 and 15 minutes, per CPU
    if previous is None:
        record("cpu_used_ratio", min(loads[1], 1.0))
    if loads[1] * 100 > maximum:
        pytest.skip(
            f"CPU load {100 * loads[1]:.0f}% of {cpus} CPUs over 5 minutes (load averages"
            f" {', '.join(f'{load * cpus:.2f}' for load in loads)} over 1, 5 and 15 minutes): whether it stays above"
            f" {maximum:g}% for {window:g}s, as HighCPUUsage means, only watch mode's samples tell"
        )
