"""HTTP checks side by side with the lean clients: fraiseql-check, aiohttp, httpx, blackbox_exporter.

    .venv/bin/python benchmarks/bench_http.py                  # 5 rounds, 1,000 GETs, concurrency 100 and 1000
    .venv/bin/python benchmarks/bench_http.py --rounds 7 --count 2000 --concurrency 50 100 1000

A local HTTP/1.1 server (its own process) answers every GET after 50 ms. Each
round runs, in an order that rotates from round to round, as whole processes:

- ``fraiseql-check``: one check per GET, each ``await http.get(URL)`` (the ``http``
  fixture), at ``--concurrency C``;
- a plain asyncio + aiohttp script, ``C`` requests at a time, one ``TCPConnector(limit=C)``;
- the same script with ``httpx.AsyncClient`` (``max_connections=C``);
- Prometheus' ``blackbox_exporter`` (Debian's ``prometheus-blackbox-exporter``), started
  once on loopback with an ``http`` module; the aiohttp script asks it for ``/probe``
  of the same server, ``C`` probes at a time;
- with ``--baseline CHECKOUT``, ``fraiseql-check`` again with another checkout of this
  repository first on ``PYTHONPATH`` (``git worktree add /tmp/base <commit>``), to
  compare a change with the code before it in the same rotation.

Wall time is the whole process (start-up included; for blackbox_exporter, the
script's process: the exporter was already running). CPU per check is what one
more check costs: each process also runs with 10 GETs, and (CPU of ``count`` −
CPU of 10) / (``count`` − 10); for blackbox_exporter, the exporter's own CPU over
the probes divided by their number (the script asking is not counted). Prints
min / median / max over the rounds, the load average and ``PYTHONDONTWRITEBYTECODE``.

This machine sets ``PYTHONDONTWRITEBYTECODE=1``: then an editable install compiles
fraiseql_checks at every start while the other clients' packages have their
``.pyc`` from pip. The child processes run without it (after one warm-up run that
writes the cache), as an installed package would; ``--as-is`` keeps it.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _stats import bytecode, load_average, spread

PYTHON = sys.executable
FRAISEQL_CHECK = str(Path(PYTHON).parent / "fraiseql-check")
SMALL = 10  # the run whose CPU is subtracted: start-up, imports, the first connections
DELAY_S = 0.05

SERVER = """
import asyncio, sys
DELAY = float(sys.argv[1])
ANSWER = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nContent-Type: text/plain\\r\\n\\r\\nok"

async def handle(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\\r\\n\\r\\n")
            if DELAY:
                await asyncio.sleep(DELAY)
            writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""

AIOHTTP = """
import asyncio, sys
import aiohttp

async def main(url, count, concurrency, expect):
    lane = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def get():
            async with lane, session.get(url) as response:
                body = await response.read()
                return response.status == 200 and expect in body
        results = await asyncio.gather(*(get() for _ in range(count)))
    sys.exit(0 if all(results) else 1)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()))
"""

HTTPX = """
import asyncio, sys
import httpx

async def main(url, count, concurrency):
    lane = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        async def get():
            async with lane:
                return (await client.get(url)).status_code == 200
        results = await asyncio.gather(*(get() for _ in range(count)))
    sys.exit(0 if all(results) else 1)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""

CHECKS = """
import os

import pytest

URL = os.environ["BENCH_URL"]


@pytest.mark.parametrize("n", range({count}))
async def check_get(http, n):
    response = await http.get(URL)
    assert response.status_code == 200
"""

BLACKBOX_CONFIG = """
modules:
  http_2xx:
    prober: http
    timeout: 10s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""


@dataclass
class Sample:
    wall_s: float
    cpu_per_check_ms: float


@dataclass
class Peer:
    name: str
    #: (count, concurrency) -> (argv, env); the process must exit 0
    command: Callable[[int, int], tuple[list[str], dict[str, str]]]
    #: CPU seconds spent elsewhere (blackbox_exporter's own process), read before and after
    outside_cpu: Callable[[], float] | None = None
    samples: dict[int, list[Sample]] = field(default_factory=dict)


def start_server(delay_s: float = DELAY_S) -> tuple[subprocess.Popen[str], str]:
    """The local HTTP server (its own process) answering every GET after ``delay_s``, and its URL.
    Also started by ``watch.py http``, with no delay."""
    server = subprocess.Popen([PYTHON, "-c", SERVER, str(delay_s)], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, f"http://127.0.0.1:{int(server.stdout.readline())}/"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_blackbox(workdir: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    if binary is None:
        print("blackbox_exporter is not installed (apt-get install -y prometheus-blackbox-exporter): row left out")
        return None
    config = workdir / "blackbox.yml"
    config.write_text(BLACKBOX_CONFIG)
    port = free_port()
    exporter = subprocess.Popen(
        [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"{base}/-/healthy", timeout=1):
                return exporter, base
        except OSError:
            if time.monotonic() > deadline or exporter.poll() is not None:
                exporter.kill()
                raise SystemExit("blackbox_exporter did not start") from None
            time.sleep(0.05)


def process_cpu_s(pid: int) -> float:
    """utime + stime of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one process, which must exit 0."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv[:3]} exited {process.returncode}:\n{output.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(peer: Peer, count: int, concurrency: int, cwd: Path) -> Sample:
    argv, env = peer.command(count, concurrency)
    before = peer.outside_cpu() if peer.outside_cpu else 0.0
    wall, cpu = run(argv, env, cwd)
    if peer.outside_cpu:
        return Sample(wall, (peer.outside_cpu() - before) / count * 1000)
    small_argv, small_env = peer.command(SMALL, concurrency)
    _, small_cpu = run(small_argv, small_env, cwd)
    return Sample(wall, (cpu - small_cpu) / (count - SMALL) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--as-is", action="store_true", help="keep PYTHONDONTWRITEBYTECODE as the environment has it")
    parser.add_argument(
        "--baseline",
        metavar="CHECKOUT",
        help="also run fraiseql-check from another checkout (PYTHONPATH=CHECKOUT), in the same rotation",
    )
    parser.add_argument(
        "--without",
        nargs="+",
        default=[],
        choices=["httpx", "blackbox"],
        help="leave peers out (asyncio + httpx takes 10-30 s a run)",
    )
    args = parser.parse_args()
    if args.count <= SMALL:
        parser.error(f"--count must be more than {SMALL}")

    env = dict(os.environ)
    if not args.as_is:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    load_before = load_average()

    workdir = Path(tempfile.mkdtemp(prefix="bench-http-"))
    server, url = start_server()
    blackbox = None if "blackbox" in args.without else start_blackbox(workdir)
    try:
        checks: dict[int, Path] = {}

        def fraiseql(count: int, concurrency: int) -> tuple[list[str], dict[str, str]]:
            if count not in checks:
                checks[count] = workdir / f"checks_{count}"
                checks[count].mkdir()
                (checks[count] / "check_http.py").write_text(textwrap.dedent(CHECKS.format(count=count)))
            argv = [FRAISEQL_CHECK, str(checks[count]), "--concurrency", str(concurrency)]
            return argv, {**env, "BENCH_URL": url}

        peers = [
            Peer("fraiseql-check", fraiseql),
            Peer("asyncio + aiohttp", lambda n, c: ([PYTHON, "-c", AIOHTTP, url, str(n), str(c), "ok"], env)),
        ]
        if "httpx" not in args.without:
            peers.append(Peer("asyncio + httpx", lambda n, c: ([PYTHON, "-c", HTTPX, url, str(n), str(c)], env)))
        if args.baseline:
            baseline = str(Path(args.baseline).resolve())

            def fraiseql_baseline(count: int, concurrency: int) -> tuple[list[str], dict[str, str]]:
                argv, child_env = fraiseql(count, concurrency)
                return argv, {**child_env, "PYTHONPATH": baseline}

            peers.append(Peer(f"fraiseql-check ({args.baseline})", fraiseql_baseline))
        if blackbox is not None:
            exporter, base = blackbox
            probe = f"{base}/probe?module=http_2xx&target={urllib.parse.quote(url, safe='')}"
            peers.append(
                Peer(
                    "blackbox_exporter",
                    lambda n, c: ([PYTHON, "-c", AIOHTTP, probe, str(n), str(c), "probe_success 1"], env),
                    outside_cpu=lambda: process_cpu_s(exporter.pid),
                )
            )

        for peer in peers:  # warm-up: byte-code caches, page cache, the exporter's first probes
            argv, peer_env = peer.command(SMALL + 1, 10)
            run(argv, peer_env, workdir)

        for concurrency in args.concurrency:
            for round_ in range(args.rounds):
                order = peers[round_ % len(peers) :] + peers[: round_ % len(peers)]
                for peer in order:
                    sample = measure(peer, args.count, concurrency, workdir)
                    peer.samples.setdefault(concurrency, []).append(sample)
                print(f"  concurrency {concurrency}: round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        server.terminate()
        if blackbox is not None:
            blackbox[0].terminate()
            blackbox[0].wait()
        server.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    report(peers, args, load_before, load_average())


def report(
    peers: list[Peer],
    args: argparse.Namespace,
    load_before: str,
    load_after: str,
) -> None:
    print(
        f"\n{args.count:,} GETs answered after {DELAY_S * 1000:.0f} ms, {args.rounds} alternating rounds, "
        f"min / median / max; {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    print(f"load average (1, 5, 15 min) before: {load_before}; after: {load_after}")
    kept = "kept for the children" if args.as_is else "unset for the children (their byte-code cached)"
    print(bytecode(when_set=kept) + "\n")
    baseline = peers[1]
    print("| concurrency | client | wall time (s) | vs aiohttp (median) | CPU per check (ms) |")
    print("|---|---|---|---|---|")
    for concurrency in args.concurrency:
        reference = statistics.median(s.wall_s for s in baseline.samples[concurrency])
        for peer in peers:
            samples = peer.samples[concurrency]
            walls = [s.wall_s for s in samples]
            cpus = [s.cpu_per_check_ms for s in samples]
            ratio = statistics.median(walls) / reference
            wall_text, cpu_text = spread(walls, "{:.2f}"), spread(cpus, "{:.3f}")
            print(f"| {concurrency} | {peer.name} | {wall_text} | {ratio:.2f}× | {cpu_text} |")
    ours = peers[0]
    print("\ngoals (fraiseql-check, medians):")
    for concurrency in args.concurrency:
        wall = statistics.median(s.wall_s for s in ours.samples[concurrency])
        reference = statistics.median(s.wall_s for s in baseline.samples[concurrency])
        verdict = "met" if wall <= 1.15 * reference else "not met"
        print(f"- wall time within 1.15× of aiohttp at {concurrency}: {wall / reference:.2f}× — {verdict}")
    walls = [statistics.median(s.wall_s for s in ours.samples[c]) for c in sorted(args.concurrency)]
    never_slower = all(later <= earlier * 1.02 for earlier, later in itertools.pairwise(walls))
    shown = " → ".join(f"{w:.2f} s" for w in walls)
    print(f"- raising concurrency never slower ({shown}): {'met' if never_slower else 'not met'}")
    cpu = max(statistics.median(s.cpu_per_check_ms for s in ours.samples[c]) for c in args.concurrency)
    print(f"- CPU per HTTP check ≤ 0.2 ms: {cpu:.3f} ms — {'met' if cpu <= 0.2 else 'not met'}")


if __name__ == "__main__":
    main()
