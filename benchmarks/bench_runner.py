"""Side-by-side benchmarks of the one-shot runner against pytest (issues 2 and 19).

    .venv/bin/python benchmarks/bench_runner.py              # full: 10,000 checks, 5 runs each (~5-8 min)
    .venv/bin/python benchmarks/bench_runner.py --quick      # 2,000 checks, `assert` only, 3 runs (< 1 min)
    .venv/bin/python benchmarks/bench_runner.py --runs 9 --only trivial
    .venv/bin/python benchmarks/bench_runner.py --pytest-http  # also pytest + anyio on the HTTP checks (~5 min)

Every figure is a whole process (``python -m fraiseql_checks`` / ``python -m pytest``)
started from this script; the tools are run alternately (ours, pytest, ours, pytest, ...)
so that a change of machine load hits both alike, and each cell gives the wall time's
min / median / max over ``--runs`` runs (default 5, ``--quick`` 3) and the median CPU
time (user + system; steadier than wall time on a loaded machine). The speed-up is pytest's median over
ours, followed by the range of the per-pair ratios (pytest run i / our run i). Peak RSS
is ``ru_maxrss`` of the process from ``os.wait4``. The load average and whether
``PYTHONDONTWRITEBYTECODE`` is set in the caller's environment are printed first.

pytest is plain pytest: ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``, because the plugins
installed in this environment (schemathesis, hypothesis) cost pytest ~2 s of imports at
every start, which is not pytest's cost. ``--pytest-autoload`` measures pytest with them.

Rows of the first table (trivial checks):

* ``N sync, `<body>`, cold``: N trivial checks (``--checks``, 10,000 by default, 2,000
  with ``--quick``) in N/100 files, body ``assert 1 + 1 == 2`` or ``pass``; pytest runs
  the same functions as tests. Cold = no cached rewritten code: before every run, ours
  loses ``.fraiseql-checks/cache/`` and ``__pycache__``, pytest ``__pycache__`` and
  ``.pytest_cache``; both run with ``PYTHONDONTWRITEBYTECODE=1``. Goal: >= 3x pytest.
  (``--quick`` runs the ``assert`` body only.) One unmeasured run of each tool without
  ``PYTHONDONTWRITEBYTECODE`` comes first, so that a stale ``.pyc`` of the tools' own
  modules (an edited editable install) is not recompiled in every cold run.
* ``... warm``: each tool's cache filled by a run before the measured ones, and
  ``PYTHONDONTWRITEBYTECODE`` unset (with it set pytest never writes its rewritten
  ``.pyc`` files, so it cannot be warm). Goal: >= 15x pytest.
* ``1 sync check, ... (start-up)``: the same tools on a single check, run in the same
  rounds (they give the memory baseline below); no goal here.

The goals are stated for 10,000 checks; with another ``--checks`` they are printed but
marked as such. The memory table gives each tool's median peak RSS for the N-check run
and for a run of a single check (alternated with the others, same mode), and the memory
per check: (peak RSS of N checks - peak RSS of 1 check) / (N - 1), in KiB.

Second table (HTTP): 1,000 async checks, each an HTTP GET with the ``http`` fixture
(httpx) to a local server (a thread of this process) that answers after 50 ms, at our
default concurrency, warm (rewrite cache filled, ``PYTHONDONTWRITEBYTECODE`` unset);
wall time and CPU (user + system) of the process. The peer, only with ``--pytest-http``:
pytest running the same GETs as tests through anyio's pytest plugin with one session
``httpx.AsyncClient``, one test at a time, as pytest runs tests (pytest-asyncio is not
installed and this script does not install it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _stats import conditions, load_average, spread

BODIES = ("assert 1 + 1 == 2", "pass")
PER_FILE = 100
GOAL_CHECKS = 10_000
GOALS = {"cold": 3.0, "warm": 15.0}
HTTP_COUNT = 1000


@dataclass
class Sample:
    wall: float  # seconds
    cpu: float  # user + system seconds
    rss_kib: int  # peak RSS


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> Sample:
    """Wall and CPU seconds and peak RSS of one whole process; exits if it fails."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} (in {cwd}) exited {code}: {err.read().decode()[-2000:]}")
    return Sample(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def cell(samples: list[Sample]) -> str:
    """Wall min / median / max and the median CPU (user + system) of the runs."""
    return f"{spread([s.wall for s in samples], unit=' s')}; CPU {statistics.median(s.cpu for s in samples):.2f} s"


def speedup(ours: list[Sample], theirs: list[Sample]) -> tuple[float, str]:
    median = statistics.median(s.wall for s in theirs) / statistics.median(s.wall for s in ours)
    pairs = [t.wall / o.wall for o, t in zip(ours, theirs, strict=True)]
    return median, f"{median:.1f}x ({min(pairs):.1f}-{max(pairs):.1f}x)"


def alternate(runs: int, steps: list[tuple[str, Callable[[], Sample]]]) -> dict[str, list[Sample]]:
    """``runs`` rounds of the steps in order (A, B, A, B, ...); samples by step name."""
    samples: dict[str, list[Sample]] = {name: [] for name, _ in steps}
    for _ in range(runs):
        for name, step in steps:
            samples[name].append(step())
    return samples


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("| " + " | ".join(text.ljust(w) for text, w in zip(row, widths, strict=True)) + " |")


def clean(folder: Path) -> None:
    """Remove every cache of rewritten code under ``folder`` (both tools')."""
    shutil.rmtree(folder / ".fraiseql-checks" / "cache", ignore_errors=True)
    shutil.rmtree(folder / ".pytest_cache", ignore_errors=True)
    for cache in list(folder.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


def write_trivial(folder: Path, body: str, prefix: str, count: int) -> None:
    folder.mkdir(parents=True)
    for i in range(max(1, count // PER_FILE)):
        lines = [f"def {prefix}_{j}():\n    {body}\n" for j in range(min(count, PER_FILE))]
        (folder / f"{prefix}_m{i}.py").write_text("\n".join(lines))


class Tools:
    def __init__(self, autoload: bool) -> None:
        base = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTEST_ADDOPTS")}
        self.warm_env = base
        self.cold_env = {**base, "PYTHONDONTWRITEBYTECODE": "1"}
        self.pytest_extra: dict[str, str] = {} if autoload else {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}

    @staticmethod
    def ours(folder: str, *args: str) -> list[str]:
        return [sys.executable, "-m", "fraiseql_checks", "-q", *args, folder]

    @staticmethod
    def pytest(folder: str, *args: str) -> list[str]:
        # our own pytest plugin off (with autoload on), so that pytest is pytest
        return [sys.executable, "-m", "pytest", "-q", "-p", "no:fraiseql_checks", *args, folder]

    def env(self, tool: str, mode: str) -> dict[str, str]:
        env = self.cold_env if mode == "cold" else self.warm_env
        return {**env, **self.pytest_extra} if tool == "pytest" else env


def trivial_step(tools: Tools, cwd: Path, tool: str, mode: str) -> Callable[[], Sample]:
    """One run of ``tool`` in ``cwd``, its caches removed first when ``mode`` is cold."""
    cmd = tools.ours("checks") if tool == "ours" else tools.pytest("tests")
    env = tools.env(tool, mode)

    def go() -> Sample:
        if mode == "cold":
            clean(cwd)
        return run(cmd, cwd, env)

    return go


def bench_trivial(tools: Tools, checks: int, runs: int, bodies: tuple[str, ...]) -> tuple[list[list[str]], ...]:
    times: list[list[str]] = []
    memory: list[list[str]] = []
    for body in bodies:
        with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
            root = Path(tmp)
            # one folder (and so one root directory and cache) per tool and size
            for size in (checks, 1):
                write_trivial(root / f"ours-{size}" / "checks", body, "check", size)
                write_trivial(root / f"pytest-{size}" / "tests", body, "test", size)
            # one warm-env run of each tool first: an installed module edited since its .pyc
            # was written would otherwise be recompiled at every cold start (of either tool)
            for tool in ("ours", "pytest"):
                trivial_step(tools, root / f"{tool}-1", tool, "warm")()
            for mode in ("cold", "warm"):
                if mode == "warm":  # fill each tool's cache
                    for tool in ("ours", "pytest"):
                        for size in (checks, 1):
                            trivial_step(tools, root / f"{tool}-{size}", tool, "warm")()
                samples = alternate(
                    runs,
                    [
                        ("ours", trivial_step(tools, root / f"ours-{checks}", "ours", mode)),
                        ("pytest", trivial_step(tools, root / f"pytest-{checks}", "pytest", mode)),
                        ("ours-1", trivial_step(tools, root / "ours-1", "ours", mode)),
                        ("pytest-1", trivial_step(tools, root / "pytest-1", "pytest", mode)),
                    ],
                )
                ratio, ratio_text = speedup(samples["ours"], samples["pytest"])
                goal = GOALS[mode]
                verdict = "met" if ratio >= goal else "not met"
                if checks != GOAL_CHECKS:
                    verdict += f" (goal is for {GOAL_CHECKS:,} checks)"
                label = f"{checks:,} sync, `{body}`, {mode}"
                times.append(
                    [
                        label,
                        cell(samples["ours"]),
                        cell(samples["pytest"]),
                        ratio_text,
                        f">= {goal:.0f}x: {verdict}",
                    ]
                )
                print(" | ".join(times[-1]), flush=True)
                times.append(
                    [
                        f"1 sync check, `{body}`, {mode} (start-up)",
                        cell(samples["ours-1"]),
                        cell(samples["pytest-1"]),
                        speedup(samples["ours-1"], samples["pytest-1"])[1],
                        "",
                    ]
                )
                print(" | ".join(times[-1]), flush=True)
                row = [label]
                for tool in ("ours", "pytest"):
                    big = statistics.median(s.rss_kib for s in samples[tool])
                    one = statistics.median(s.rss_kib for s in samples[f"{tool}-1"])
                    row += [f"{big / 1024:.1f} MiB", f"{one / 1024:.1f} MiB", f"{(big - one) / (checks - 1):.2f} KiB"]
                memory.append(row)
    return times, memory


class SlowServer:
    """HTTP/1.1 on loopback that answers every request after 50 ms (keep-alive)."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    return
                await asyncio.sleep(self.delay)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=2048))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> None:
        threading.Thread(target=self._serve, daemon=True).start()
        self._ready.wait()


HTTP_CHECKS = """
import os
import pytest

URL = os.environ["BENCH_URL"]

@pytest.mark.parametrize("n", range({count}))
async def check_get(http, n):
    response = await http.get(URL)
    assert response.status_code == 200
"""

HTTP_TESTS = """
import os
import httpx
import pytest

URL = os.environ["BENCH_URL"]
pytestmark = pytest.mark.anyio

@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"

@pytest.fixture(scope="session")
async def http():
    async with httpx.AsyncClient(timeout=5) as client:
        yield client

@pytest.mark.parametrize("n", range({count}))
async def test_get(http, n):
    response = await http.get(URL)
    assert response.status_code == 200
"""


def default_concurrency() -> str:
    try:
        from fraiseql_checks.core.runner import DEFAULT_CONCURRENCY
    except ImportError:  # pragma: no cover - moved
        return "default concurrency"
    return f"default concurrency {DEFAULT_CONCURRENCY}"


def bench_http(tools: Tools, runs: int, with_pytest: bool) -> tuple[list[list[str]], str]:
    server = SlowServer()
    server.start()
    url = {"BENCH_URL": f"http://127.0.0.1:{server.port}/"}
    with tempfile.TemporaryDirectory(prefix="bench-runner-http-") as tmp:
        root = Path(tmp)
        (root / "ours" / "checks").mkdir(parents=True)
        (root / "ours" / "checks" / "check_http.py").write_text(textwrap.dedent(HTTP_CHECKS.format(count=HTTP_COUNT)))
        (root / "pytest" / "tests").mkdir(parents=True)
        (root / "pytest" / "tests" / "test_http.py").write_text(textwrap.dedent(HTTP_TESTS.format(count=HTTP_COUNT)))
        ours_env = {**tools.env("ours", "warm"), **url}
        pytest_env = {**tools.env("pytest", "warm"), **url}
        ours_cmd = tools.ours("checks")
        # anyio's plugin by name, as plugin autoload is off for plain pytest
        pytest_cmd = tools.pytest("tests", *([] if tools.pytest_extra == {} else ["-p", "anyio"]))
        steps = [("ours", lambda: run(ours_cmd, root / "ours", ours_env))]
        run(ours_cmd, root / "ours", ours_env)  # fill the rewrite cache
        if with_pytest:
            steps.append(("pytest", lambda: run(pytest_cmd, root / "pytest", pytest_env)))
            run([*pytest_cmd, "--collect-only"], root / "pytest", pytest_env)  # fill its rewrite cache
        samples = alternate(runs, steps)
    label = f"{HTTP_COUNT:,} async HTTP GETs (50 ms each), {default_concurrency()}"
    ours = samples["ours"]
    mine = cell(ours)
    if with_pytest:
        theirs = samples["pytest"]
        peer = cell(theirs)
        ratio = speedup(ours, theirs)[1]
        note = "pytest: anyio's pytest plugin, one test at a time"
    else:
        peer, ratio = "not run", ""
        note = (
            "pytest peer not run: pytest-asyncio is not installed (and not installed by this script); "
            "--pytest-http runs the same GETs as pytest tests through anyio's plugin, one at a time (~5 min)"
        )
    rows = [[label, mine, peer, ratio]]
    print(" | ".join(rows[-1]), flush=True)
    return rows, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="3 runs, 2,000 checks, the `assert` body only (well under a minute)"
    )
    parser.add_argument("--runs", type=int, help="runs of each tool per row (default 5, --quick 3)")
    parser.add_argument("--checks", type=int, help="trivial checks, a multiple of 100 (default 10,000, --quick 2,000)")
    parser.add_argument("--only", choices=("trivial", "http"), help="run one benchmark")
    parser.add_argument("--pytest-http", action="store_true", help="also run pytest (anyio plugin) on the HTTP checks")
    parser.add_argument(
        "--pytest-autoload", action="store_true", help="let pytest load every installed plugin (schemathesis, ...)"
    )
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    checks = args.checks or (2_000 if args.quick else GOAL_CHECKS)
    if checks < 2 or (checks > PER_FILE and checks % PER_FILE):
        parser.error(f"--checks must be a multiple of {PER_FILE} (or below it)")
    tools = Tools(args.pytest_autoload)
    print(f"python {sys.version.split()[0]}, {'quick' if args.quick else 'full'} mode")
    for line in conditions(
        when_set="in the caller's environment; cold runs set it, warm runs unset it",
        when_unset="in the caller's environment; cold runs set it",
    ):
        print(line)
    print(
        f"{runs} runs of each tool per row, alternating; min / median / max; pytest plugin autoload "
        + ("on" if args.pytest_autoload else "off (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1)")
        + "\n",
        flush=True,
    )
    started = time.perf_counter()
    if args.only in (None, "trivial"):
        times, memory = bench_trivial(tools, checks, runs, BODIES[:1] if args.quick else BODIES)
        print()
        header = ["benchmark", "fraiseql-check (wall; median CPU)", "pytest (wall; median CPU)"]
        table([*header, "speed-up (median wall, pair range)", "goal"], times)
        print()
        header = ["memory (median peak RSS)", "ours, N checks", "ours, 1 check", "ours per check"]
        table([*header, "pytest, N checks", "pytest, 1 check", "pytest per check"], memory)
        print()
    if args.only in (None, "http"):
        rows, note = bench_http(tools, runs, args.pytest_http)
        print()
        table(["benchmark", "fraiseql-check (wall; median CPU)", "pytest", "speed-up (median wall, pair range)"], rows)
        print(note)
        print()
    print(f"load average at end: {load_average()}; benchmark took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
