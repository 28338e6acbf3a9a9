"""The machine this runs on: the seed's resource alerts (disk, memory, CPU) as checks.

Thresholds are the seed's (free disk below 15%, memory above 85%, CPU above 80%);
change them in the config, e.g. ``[tool.fraiseql-checks.thresholds]``
``"host.disk_free_min_percent" = 10``.
"""

from __future__ import annotations

import os

import psutil
import pytest

from fraiseql_checks import check, record


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
    """Memory in use (total minus available) stays at or below 85% (seed alert HighMemoryUsage)."""
    maximum = config.threshold("host.memory_used_max_percent")
    memory = psutil.virtual_memory()
    used_percent = 100 * (memory.total - memory.available) / memory.total
    record("memory_used_ratio", used_percent / 100)
    assert used_percent <= maximum, f"{used_percent:.1f}% of memory in use, above {maximum:g}%"


@check(
    interval="1m",
    timeout="10s",
    severity="warning",
    tags=["host"],
    runbook="docs/runbooks/HighCPUUsage.md",
    panel={"value": "cpu_used_ratio", "unit": "percentunit", "thresholds": [0.8]},
)
def check_cpu_usage(config):
    """CPU use over a one-second sample stays at or below 80% (seed alert HighCPUUsage)."""
    maximum = config.threshold("host.cpu_used_max_percent")
    used_percent = psutil.cpu_percent(interval=config.threshold("host.cpu_sample_seconds"))
    record("cpu_used_ratio", used_percent / 100)
    assert used_percent <= maximum, f"{used_percent:.1f}% CPU in use, above {maximum:g}%"
