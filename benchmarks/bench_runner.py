"""Benchmarks of the one-shot runner (issue 2). One command, prints a table.

    python benchmarks/bench_runner.py            # both benchmarks
    python benchmarks/bench_runner.py --serial-all   # also run all 1,000 HTTP checks one at a time

1. 10,000 trivial sync checks in 100 files, whole process, against pytest running the
   same functions as tests; peak memory of each process. Two bodies (``assert 1 + 1 == 2``
   and ``pass``), cold (no cache of rewritten code, ``PYTHONDONTWRITEBYTECODE=1`` for both
   tools) and warm (each tool's cache filled by a previous run).
2. 1,000 async checks, each an HTTP GET with the ``http`` fixture (httpx) to a local server
   that answers after 50 ms, at the default concurrency; and the same checks one at a time
   (as pytest runs tests).
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
from pathlib import Path

RUNS = 3


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in MiB and exit code of one whole process."""
    started = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0,):
        assert process.stderr is not None
        raise SystemExit(f"{' '.join(cmd)} exited {process.returncode}: {process.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss // 1024, process.returncode


def write_trivial(root: Path, body: str, prefix: str, files: int = 100, per_file: int = 100) -> None:
    for i in range(files):
        lines = [f"def {prefix}_{j}():\n    {body}\n" for j in range(per_file)]
        (root / f"{prefix}_m{i}.py").write_text("\n".join(lines))


def bench_trivial(rows: list[list[str]]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cold_env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    for body in ("assert 1 + 1 == 2", "pass"):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "checks").mkdir()
            (root / "tests").mkdir()
            write_trivial(root / "checks", body, "check")
            write_trivial(root / "tests", body, "test")
            ours = [sys.executable, "-m", "fraiseql_checks", "-q", "checks"]
            theirs = [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:fraiseql_checks",
                "tests",
            ]
            for mode in ("cold", "warm"):
                results = {}
                for name, cmd in (("fraiseql-check", ours), ("pytest", theirs)):
                    times, peaks = [], []
                    for _ in range(RUNS):
                        if mode == "cold":
                            shutil.rmtree(root / ".fraiseql-checks", ignore_errors=True)
                            for cache in root.rglob("__pycache__"):
                                shutil.rmtree(cache)
                        else:
                            run(cmd, root, env)  # fill the cache
                        elapsed, peak, _ = run(cmd, root, cold_env if mode == "cold" else env)
                        times.append(elapsed)
                        peaks.append(peak)
                    results[name] = (statistics.median(times), max(peaks))
                ours_s, ours_mb = results["fraiseql-check"]
                theirs_s, theirs_mb = results["pytest"]
                rows.append(
                    [
                        f"10,000 sync, `{body}`, {mode}",
                        f"{ours_s:.2f} s / {ours_mb} MiB",
                        f"{theirs_s:.2f} s / {theirs_mb} MiB",
                        f"{theirs_s / ours_s:.1f}x",
                    ]
                )
                print(" | ".join(rows[-1]), flush=True)


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


def bench_http(rows: list[list[str]], serial_all: bool) -> None:
    server = SlowServer()
    server.start()
    env = {**os.environ, "BENCH_URL": f"http://127.0.0.1:{server.port}/"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "checks").mkdir()
        (root / "checks" / "check_http.py").write_text(textwrap.dedent(HTTP_CHECKS.format(count=1000)))
        cmd = [sys.executable, "-m", "fraiseql_checks", "-q", "checks"]
        run(cmd, root, env)  # warm the rewrite cache
        times = [run(cmd, root, env)[0] for _ in range(RUNS)]
        rows.append(
            ["1,000 async HTTP GETs (50 ms each), default concurrency", f"{statistics.median(times):.2f} s", "", ""]
        )
        print(" | ".join(rows[-1]), flush=True)
        serial_count = 1000 if serial_all else 100
        (root / "checks" / "check_http.py").write_text(textwrap.dedent(HTTP_CHECKS.format(count=serial_count)))
        elapsed = run([*cmd, "--concurrency", "1"], root, env)[0]
        label = f"{serial_count:,} of them one at a time (--concurrency 1)"
        scaled = "" if serial_all else f"x10 = {elapsed * 10:.1f} s for 1,000"
        rows.append([label, f"{elapsed:.2f} s", scaled, ""])
        print(" | ".join(rows[-1]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serial-all", action="store_true", help="run all 1,000 HTTP checks serially too (~55 s)")
    parser.add_argument("--only", choices=("trivial", "http"), help="run one benchmark")
    args = parser.parse_args()
    rows: list[list[str]] = []
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {RUNS} runs\n", flush=True)
    if args.only in (None, "trivial"):
        bench_trivial(rows)
    if args.only in (None, "http"):
        bench_http(rows, args.serial_all)
    header = ["benchmark", "fraiseql-check", "pytest", "speed-up"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    print()
    for row in [header, ["-" * w for w in widths], *rows]:
        print("| " + " | ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
