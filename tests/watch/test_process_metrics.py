"""The watcher's ``process_*`` metrics: a real watcher scraped, read back by prometheus_client's
parser, and compared with what prometheus_client's own ProcessCollector reads for the same process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.process_collector import ProcessCollector

from tests.support.checkdir import CheckDir
from tests.support.watcher import WatchProcess

Watch = Callable[..., WatchProcess]

#: The six families of prometheus_client's ProcessCollector on Linux (counters without ``_total``,
#: as the parser names their families).
NAMES = {
    "process_virtual_memory_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_cpu_seconds",
    "process_open_fds",
    "process_max_fds",
}


def reference(pid: int) -> dict[str, Any]:
    """What prometheus_client's ProcessCollector reads for ``pid``, by family name."""
    collector = ProcessCollector(pid=lambda: pid, registry=None)
    return {family.name: family for family in collector.collect()}


def value(family: Any) -> float:
    (sample,) = family.samples
    return float(sample.value)


def test_the_watcher_exports_the_process_metrics_of_prometheus_client(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("checks/check_a.py", "def check_a():\n    assert True\n")
    watcher = watch("--workers", "1")
    pid = watcher.process.pid
    before = reference(pid)
    text = watcher.metrics_text()
    after = reference(pid)
    assert set(before) == NAMES  # the reference itself: all six, or this test compares nothing

    ours = {family.name: family for family in text_string_to_metric_families(text) if family.name in NAMES}
    assert set(ours) == NAMES
    for name in NAMES:
        assert (ours[name].type, ours[name].documentation) == (after[name].type, after[name].documentation), name
        assert [sample.name for sample in ours[name].samples] == [sample.name for sample in after[name].samples]

    assert value(ours["process_max_fds"]) == value(after["process_max_fds"])
    assert abs(value(ours["process_start_time_seconds"]) - value(after["process_start_time_seconds"])) < 0.02
    tick = 0.01
    cpu = value(ours["process_cpu_seconds"])
    assert value(before["process_cpu_seconds"]) - tick <= cpu <= value(after["process_cpu_seconds"]) + tick
    assert cpu > 0
    for name in ("process_resident_memory_bytes", "process_virtual_memory_bytes"):
        low = min(value(before[name]), value(after[name]))
        high = max(value(before[name]), value(after[name]))
        assert 0.8 * low <= value(ours[name]) <= 1.2 * high, name
    # the scrape's own connection is open while the page is made; nothing else should differ much
    fds = value(ours["process_open_fds"])
    assert abs(fds - value(after["process_open_fds"])) <= 3
    assert fds > 3
