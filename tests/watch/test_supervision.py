"""Which check a worker past its memory limit is blamed on, with a real process that grows.

Two runs started since the same memory sample cannot be told apart by the clock: the
watcher lets off the one that ends while the memory stays high (CI saw a healthy check
blamed, isolated and failed for its neighbour's 400 MiB)."""

from __future__ import annotations

import subprocess
import sys
import time
import types
from collections.abc import Iterator

import psutil
import pytest

from fraiseql_checks.watch.workers import _MEMORY_WAIT, Run, WorkerProcess

GROWER = "import sys; hoard = bytearray(400 * 2**20); print('grown', flush=True); sys.stdin.read()"
LIMIT = 300 * 2**20


@pytest.fixture
def grown() -> Iterator[WorkerProcess]:
    """A WorkerProcess as the pool sees it, whose process holds 400 MiB (limit 300 MiB)."""
    process = subprocess.Popen([sys.executable, "-c", GROWER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"grown\n"
    worker = WorkerProcess(types.SimpleNamespace(memory_limit=LIMIT), "1")  # type: ignore[arg-type]
    worker.process = process  # type: ignore[assignment]
    worker.ps = psutil.Process(process.pid)
    worker.state = "ready"
    try:
        yield worker
    finally:
        process.kill()
        process.wait()


def _run(seq: int, check_id: str, started_at: float) -> Run:
    return Run(seq=seq, check_id=check_id, timeout=30.0, done=None, started_at=started_at, rss_at_start=40 * 2**20)  # type: ignore[arg-type]


def test_of_two_runs_in_flight_while_it_grew_the_one_still_running_is_blamed(grown: WorkerProcess) -> None:
    now = time.time()
    healthy, hoarder = _run(1, "checks/h.py::check_healthy", now - 0.2), _run(2, "checks/m.py::check_hoards", now - 0.1)
    grown.inflight = {1: healthy, 2: hoarder}
    grown.check_memory()
    assert grown._killing is None  # two could have grown it: wait
    del grown.inflight[1]  # the healthy run ends; the memory stays
    grown.check_memory()
    assert grown._killing is not None and grown._killing.kind == "memory"
    assert grown._killing.culprit == "checks/m.py::check_hoards"  # not the one that started first


def test_two_runs_that_both_stay_name_nobody_after_the_wait(grown: WorkerProcess) -> None:
    now = time.time()
    grown.inflight = {1: _run(1, "checks/a.py::check_a", now), 2: _run(2, "checks/b.py::check_b", now)}
    grown.check_memory()
    assert grown._killing is None
    time.sleep(_MEMORY_WAIT)
    grown.check_memory()
    assert grown._killing is not None and grown._killing.culprit is None  # the deaths that follow narrow it down
    assert grown._killing.reason.endswith("MiB of memory, above the 300 MiB limit")


def test_a_single_run_that_grew_it_is_blamed_at_once(grown: WorkerProcess) -> None:
    grown.inflight = {2: _run(2, "checks/m.py::check_hoards", time.time())}
    grown.check_memory()
    assert grown._killing is not None and grown._killing.culprit == "checks/m.py::check_hoards"
