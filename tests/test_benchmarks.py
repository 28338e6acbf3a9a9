"""The benchmarks stay runnable, and what they compute from ``/metrics`` is right.

A benchmark is not run by the test suite (timing is never asserted), so when code it
imports moves, nothing else notices: ``benchmarks/api.py`` imported names that
``benchmarks/watch.py`` no longer had, and ``run.py`` printed its traceback for
sessions. Loading each one (its imports and module-level code, not its ``main``)
in a process of its own catches that. And the lateness quantiles the benchmarks
report read the histogram's cumulative buckets as if each were its own count, for
sessions: the p99 they gave was several times too low.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str) -> ModuleType:
    """``benchmarks/NAME.py`` as a module of this process (under a name of its own)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass in it looks its module up
    spec.loader.exec_module(module)
    return module


run = _load("run")  # the list of benchmarks has its home there
stats = _load("_stats")

#: As ``python benchmarks/NAME.py`` would start it (its folder first on the path, and not
#: the current folder: ``-P``), without running its ``main``.
LOAD = (
    "import os, runpy, sys; sys.argv = [sys.argv[1]]; sys.path.insert(0, os.path.dirname(sys.argv[0]));"
    " runpy.run_path(sys.argv[0], run_name='loaded_by_the_tests')"
)


def test_the_list_names_every_benchmark_script() -> None:
    scripts = {path.name for path in BENCHMARKS_DIR.glob("*.py") if not path.name.startswith("_")}
    assert scripts - {"run.py"} == set(run.BENCHMARKS)


@pytest.mark.parametrize("script", run.BENCHMARKS)
def test_a_benchmark_loads(script: str) -> None:
    done = subprocess.run(
        [sys.executable, "-P", "-c", LOAD, str(BENCHMARKS_DIR / script)],
        cwd=BENCHMARKS_DIR.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_lateness_quantiles_read_cumulative_buckets() -> None:
    # Two readings of a histogram's buckets as /metrics gives them (le -> how many were at
    # most that). Between them: 98 observations of at most 1 ms, 2 in (0.1 s, 1 s].
    before = {0.001: 10.0, 0.01: 10.0, 0.1: 10.0, 1.0: 10.0, math.inf: 10.0}
    after = {0.001: 108.0, 0.01: 108.0, 0.1: 108.0, 1.0: 110.0, math.inf: 110.0}
    p50, p99, count = stats.lateness_between(before, after)
    assert count == 100
    # As PromQL's histogram_quantile: rank 50 of 98 in [0, 1 ms]; rank 99 is the first of
    # the 2 in (0.1 s, 1 s], halfway through it.
    assert p50 == pytest.approx(0.001 * 50 / 98)
    assert p99 == pytest.approx(0.1 + (1.0 - 0.1) * (99 - 98) / 2)


def test_the_share_of_late_runs_is_read_exactly_at_the_goals_bound() -> None:
    # Between the readings: 100 runs; 97 at most 20 ms late, 3 later (2 of them past 50 ms).
    before = {0.005: 5.0, 0.02: 5.0, 0.05: 5.0, math.inf: 5.0}
    after = {0.005: 95.0, 0.02: 102.0, 0.05: 103.0, math.inf: 105.0}
    assert stats.share_later_than(before, after, 0.02) == pytest.approx(0.03)
    assert stats.share_later_than(before, after, 0.05) == pytest.approx(0.02)
    assert stats.share_later_than(after, after, 0.02) == 0.0  # nothing observed in between
    with pytest.raises(ValueError, match="not a bound"):
        stats.share_later_than(before, after, 0.03)  # inside a bucket: no exact answer


def test_the_lateness_goal_is_a_bound_of_the_watchers_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark reads the share of runs later than the goal exactly, from the bucket the
    watcher counts them in (``metrics.LATENESS_BUCKETS``): so the goal must be a bound."""
    from fraiseql_checks import metrics

    monkeypatch.setattr(sys, "path", list(sys.path))  # watch.py puts the repository first: undone after
    monkeypatch.syspath_prepend(str(BENCHMARKS_DIR))  # as its own folder is when it runs
    watch = _load("watch")
    assert watch.LATENESS_GOAL == 0.020  # issue 19: p99 lateness at most 20 ms
    assert watch.LATENESS_GOAL in metrics.LATENESS_BUCKETS
