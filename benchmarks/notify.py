"""Notification benchmarks (issue 14): change-to-delivery latency, a burst of 1,000 changes.

    .venv/bin/python benchmarks/notify.py              # everything (three to four minutes)
    .venv/bin/python benchmarks/notify.py latency      # or: throughput [--rounds N]

Each part runs the real ``fraiseql-check --watch`` as a separate process on
generated checks whose outcome a flag file decides, with webhook receivers that
are local HTTP servers in this process: each records the arrival time of every
request and answers 200 at once. A change's time is its event's ``at`` in the body
(the start of the run that changed the check's state); delivered is the arrival
at the receiver. The watcher is measured from outside: its /metrics (the
scheduling lateness histogram), psutil (memory, CPU), and its SQLite store (the
``outbox`` table) once it has stopped. Prints a table (Markdown).

- latency: 100 checks every 500 ms; one flag set every 100 ms until all are
  failing, then removed again in the same order: 200 changes (a ``firing`` and a
  ``resolved`` event per check), with ``group_wait: 0s`` (the pipeline alone: the
  store write, then the sender), the same with ``async def`` checks, and
  ``def`` checks with ``group_wait: 1s``.
- throughput: 1,000 checks every 5 s; one shared flag file makes them all fail at
  their next run; four webhook receivers, ``default`` all four, ``group_wait: 10s``
  (the default), so the 4,000 events are due at once when the group wait ends.
  Then the same with no receivers, for the scheduling lateness and memory without
  notifications; the pair is repeated ``--rounds`` times.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.server
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _stats import lateness_between, later_than  # noqa: E402

Row = tuple[str, str, str]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

LATENESS = "fraiseql_check_scheduling_lateness_seconds_bucket"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the receiver ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Arrival:
    at: float
    path: str
    body: dict[str, Any]

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self.body.get("events", []))


class Receiver:
    """A webhook receiver: records each POST with its arrival time, answers 200 at once.

    HTTP/1.1 with keep-alive, as a real endpoint behind a load balancer would be;
    the body is parsed after the arrival time is taken."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.events = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                arrived = time.time()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                body = json.loads(raw or b"{}")
                with receiver._lock:
                    receiver.arrivals.append(Arrival(arrived, self.path, body))
                    receiver.events += len(body.get("events", []))

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the watcher -------------------------------------------------------------------------------


class Watcher:
    """``fraiseql-check --watch`` in ``root``, default workers, default SQLite store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.address = f"127.0.0.1:{free_port()}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fraiseql_checks", "--watch", "--listen", self.address, "-q"],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.ps = psutil.Process(self.process.pid)

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://{self.address}{path}", timeout=30) as response:
            return bytes(response.read())

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the watcher exited: {self.process.stderr.read().decode() if self.process.stderr else ''}"
                )
            try:
                if self.get("/readyz"):
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("the watcher did not get ready")

    def samples(self) -> Samples:
        text = self.get("/metrics").decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def workers_rss(self) -> int:
        total = 0
        for child in self.ps.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
        return total

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.process.terminate()
        _, stderr = self.process.communicate(timeout=60)
        if self.process.returncode != 0:
            raise RuntimeError(f"the watcher exited {self.process.returncode}: {stderr.decode()[-2000:]}")

    def outbox(self) -> list[OutboxRow]:
        """Every row of the outbox (after ``stop``)."""
        with sqlite3.connect(self.root / ".fraiseql-checks" / "results.db") as conn:
            rows = conn.execute("SELECT receiver, check_id, kind, status, created_at, sent_at FROM outbox")
            return [OutboxRow(*row) for row in rows]

    def durations(self) -> dict[tuple[str, float], float]:
        """(check, start) → the run's duration, of every stored result (after ``stop``)."""
        with sqlite3.connect(self.root / ".fraiseql-checks" / "results.db") as conn:
            rows = conn.execute("SELECT check_id, started_at, duration_s FROM results")
            return {(check_id, started): duration for check_id, started, duration in rows}


@dataclasses.dataclass(frozen=True)
class OutboxRow:
    receiver: str
    check_id: str
    kind: str
    status: str
    created_at: float
    sent_at: float | None


def lateness(samples: Samples) -> dict[float, float]:
    return {float(labels[0][1]): value for (name, labels), value in samples.items() if name == LATENESS}


def lateness_quantiles(before: Samples, after: Samples) -> tuple[float, float, int]:
    """p50 and p99 of the lateness observed between two scrapes, interpolated within buckets
    as ``histogram_quantile`` does; and how many runs started in between."""
    return lateness_between(lateness(before), lateness(after))


def total(samples: Samples, name: str) -> float:
    return sum(value for (found, _), value in samples.items() if found == name)


def wait_until(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, by the nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]


# -- the checks --------------------------------------------------------------------------------


def project(checks: int, interval: str, notify: str, shared_flag: bool, asynchronous: bool = False) -> Path:
    """A folder with ``checks`` checks in files of 100; check ``n`` fails while the flag
    file ``flags/<n>`` exists (``flags/all`` for every check with ``shared_flag``). Plain
    ``def`` checks (a worker runs each in a thread), or ``async def`` ones."""
    root = Path(tempfile.mkdtemp(prefix="fraiseql-checks-bench-notify-"))
    (root / "fraiseql-checks.yaml").write_text(f"interval: {interval}\nstart_jitter: {interval}\n{notify}")
    (root / "flags").mkdir()
    (root / "checks").mkdir()
    for start in range(0, checks, 100):
        parts = [
            "from pathlib import Path\n\nFLAGS = Path(__file__).resolve().parent.parent / 'flags'\n\n\n",
        ]
        for n in range(start, min(start + 100, checks)):
            flag = "all" if shared_flag else str(n)
            define = "async def" if asynchronous else "def"
            parts.append(
                f"{define} check_flag_{n}():\n    assert not (FLAGS / {flag!r}).exists(), 'the flag is set'\n\n\n"
            )
        (root / "checks" / f"check_part_{start // 100:03d}.py").write_text("".join(parts))
    return root


def notify_section(group_wait: str, receivers: dict[str, str]) -> str:
    if not receivers:
        return ""
    lines = ["notify:", f"  group_wait: {group_wait}", "  receivers:"]
    lines += [f'    - {{name: {name}, type: webhook, url: "{url}"}}' for name, url in receivers.items()]
    lines.append(f"  default: [{', '.join(receivers)}]")
    return "\n".join(lines) + "\n"


@dataclasses.dataclass(frozen=True)
class Delivered:
    """One event at a receiver: its change time (``at``), its arrival, and whether it was the
    oldest of its message (the one that opened the group)."""

    receiver: str
    check_id: str
    kind: str
    at: float
    arrived: float
    opened_message: bool


def delivered(arrivals: list[Arrival]) -> list[Delivered]:
    out = []
    for arrival in arrivals:
        events = arrival.events
        oldest = min(event["at"] for event in events)
        receiver = arrival.path.strip("/")
        for event in events:
            out.append(
                Delivered(receiver, event["check_id"], event["kind"], event["at"], arrival.at, event["at"] == oldest)
            )
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def p50_p99(values: list[float]) -> str:
    return f"{ms(percentile(values, 0.5))} / {ms(percentile(values, 0.99))}"


# -- part 1: latency ---------------------------------------------------------------------------


def latency_run(
    group_wait: str, checks: int, interval: str, every: float, asynchronous: bool
) -> tuple[list[Delivered], int, list[OutboxRow], dict[tuple[str, float], float]]:
    """One change every ``every`` seconds: check n's flag is set (n = 0 .. checks-1), then
    each flag is removed again in the same order, ``2 * checks`` changes in all (a
    ``firing`` and a ``resolved`` event per check). The events as they arrived, the
    number of messages, the outbox, the runs' durations."""
    receiver = Receiver()
    section = notify_section(group_wait, {"hook": receiver.url("/hook")})
    root = project(checks, interval, section, shared_flag=False, asynchronous=asynchronous)
    watcher = Watcher(root)
    changes = 2 * checks
    try:
        watcher.wait_ready()
        wait_until(
            lambda: total(watcher.samples(), "fraiseql_check_runs_total") >= 3 * checks,
            timeout=30,
            what="every check running",
            every=0.2,
        )
        start = time.monotonic()
        for step in range(changes):
            time.sleep(max(0.0, start + step * every - time.monotonic()))
            flag = root / "flags" / str(step % checks)
            if step < checks:
                flag.write_text("")
            else:
                flag.unlink()
        wait_until(lambda: receiver.events >= changes, timeout=60, what=f"{changes} events at the receiver")
        time.sleep(0.5)  # anything more would be a duplicate
        watcher.stop()
    finally:
        if watcher.process.poll() is None:
            watcher.process.kill()
        receiver.close()
    rows, durations = watcher.outbox(), watcher.durations()
    shutil.rmtree(root, ignore_errors=True)
    if receiver.events != changes:
        raise RuntimeError(f"expected {changes} events, the receiver got {receiver.events}")
    return delivered(receiver.arrivals), len(receiver.arrivals), rows, durations


def bench_latency(checks: int = 100, interval: str = "500ms", every: float = 0.1) -> list[Row]:
    """``def`` checks with group_wait 0s, the same as ``async def`` checks, ``def`` with 1s.

    A change's latency is cut in three: the run that changed the state (its start is
    the change's ``at``, its duration is in the results table), its result on the
    way to the watcher until the policy made the outbox entry (``created_at``), and
    the entry on its way to the receiver (the store write, then the sender)."""
    out: list[Row] = []
    changes = 2 * checks
    for group_wait, asynchronous in (("0s", False), ("0s", True), ("1s", False)):
        events, messages, rows, durations = latency_run(group_wait, checks, interval, every, asynchronous)
        made = {(row.check_id, row.kind): row.created_at for row in rows}
        total_wait = [e.arrived - e.at for e in events]
        run = [durations[e.check_id, e.at] for e in events]
        to_entry = [made[e.check_id, e.kind] - e.at - durations[e.check_id, e.at] for e in events]
        to_receiver = [e.arrived - made[e.check_id, e.kind] for e in events]
        label = f"group_wait {group_wait}, {'async def' if asynchronous else 'def'} checks"
        goal = " (goal p99 ≤ 1 s)" if group_wait == "0s" else ""
        out += [
            (
                "latency",
                f"{label}: {changes} changes, 1 per {every * 1000:.0f} ms, {checks} checks every {interval}: messages",
                f"{messages}",
            ),
            (
                "latency",
                f"{label}: change → delivered p50 / p99 / max{goal}",
                f"{p50_p99(total_wait)} / {ms(max(total_wait))}",
            ),
            ("latency", f"{label}: … the changing run itself (its duration) p50 / p99", p50_p99(run)),
            ("latency", f"{label}: … its end → outbox entry made (created_at) p50 / p99", p50_p99(to_entry)),
            ("latency", f"{label}: … outbox entry made → delivered p50 / p99", p50_p99(to_receiver)),
        ]
        if group_wait != "0s":
            opened = [e.arrived - e.at for e in events if e.opened_message]
            out.append(
                (
                    "latency",
                    f"{label}: change → delivered, the oldest event of each message, p50 / p99",
                    p50_p99(opened),
                )
            )
        every_run = list(durations.values())
        out.append(("latency", f"{label}: duration of every run ({len(every_run)}) p50 / p99", p50_p99(every_run)))
    return out


# -- part 2: throughput ------------------------------------------------------------------------


@dataclasses.dataclass
class Burst:
    flag_at: float
    #: Seconds from the flag to the last scrape.
    window: float
    #: Scheduling lateness (p50, p99, runs): the 5 s before the flag; from the flag until
    #: half a second before the group wait ends (the changes, their outbox entries
    #: written); from then to the last scrape (the messages sent).
    steady: tuple[float, float, int]
    changing: tuple[float, float, int]
    sending: tuple[float, float, int]
    #: Runs that started more than 20 ms late, from the flag to the last scrape.
    over_20ms: int
    cpu: float
    rss_before: int
    rss_peak: int
    rss_after: int
    workers_rss_before: int
    workers_rss_after: int
    pending_after: float
    arrivals: list[Arrival] = dataclasses.field(default_factory=list)
    outbox: list[OutboxRow] = dataclasses.field(default_factory=list)


def late_runs(before: Samples, after: Samples, bound: float) -> int:
    return later_than(lateness(before), lateness(after), bound)[0]


def burst_run(checks: int, interval: str, receivers: int, group_wait: float, window: float | None) -> Burst:
    """``checks`` checks every ``interval``; one flag file makes all of them fail;
    ``receivers`` webhook receivers (0: no ``notify`` section). The last scrape is
    ``window`` seconds after the flag (``None``: a second after every event arrived)."""
    servers = [Receiver() for _ in range(receivers)]
    urls = {f"hook{n + 1}": server.url(f"/hook{n + 1}") for n, server in enumerate(servers)}
    root = project(checks, interval, notify_section(f"{group_wait:g}s", urls), shared_flag=True)
    watcher = Watcher(root)
    expected = checks * receivers

    def received() -> int:
        return sum(server.events for server in servers)

    try:
        watcher.wait_ready()
        wait_until(
            lambda: total(watcher.samples(), "fraiseql_check_runs_total") >= 2 * checks,
            timeout=60,
            what="every check running",
            every=0.5,
        )
        steady = watcher.samples()
        time.sleep(5)
        before = watcher.samples()
        rss_before, workers_before = watcher.rss(), watcher.workers_rss()
        cpu0 = watcher.cpu()
        flag_at = time.time()
        (root / "flags" / "all").write_text("")
        peak = rss_before
        middle: Samples | None = None
        deadline = flag_at + (window if window is not None else 120.0)
        while time.time() < deadline:
            peak = max(peak, watcher.rss())
            if middle is None and time.time() >= flag_at + group_wait - 0.5:
                middle = watcher.samples()
            if window is None and received() >= expected:
                time.sleep(1.0)
                break
            time.sleep(0.1)
        if received() < expected or middle is None:
            raise TimeoutError(f"only {received()} of {expected} events arrived")
        after = watcher.samples()
        elapsed = time.time() - flag_at
        burst = Burst(
            flag_at=flag_at,
            window=elapsed,
            steady=lateness_quantiles(steady, before),
            changing=lateness_quantiles(before, middle),
            sending=lateness_quantiles(middle, after),
            over_20ms=late_runs(before, after, 0.02),
            cpu=(watcher.cpu() - cpu0) / elapsed,
            rss_before=rss_before,
            rss_peak=peak,
            rss_after=watcher.rss(),
            workers_rss_before=workers_before,
            workers_rss_after=watcher.workers_rss(),
            pending_after=total(after, "fraiseql_check_notifications_pending"),
        )
        watcher.stop()
    finally:
        if watcher.process.poll() is None:
            watcher.process.kill()
        for server in servers:
            server.close()
    burst.arrivals = sorted((a for s in servers for a in s.arrivals), key=lambda a: a.at)
    if receivers:
        burst.outbox = watcher.outbox()
    shutil.rmtree(root, ignore_errors=True)
    return burst


def mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


def late(rounds: list[tuple[float, float, int]]) -> str:
    """p50 / p99 of each round, ``;`` between rounds."""
    return "; ".join(f"{p50 * 1e3:.1f} / {p99 * 1e3:.1f} ms ({runs})" for p50, p99, runs in rounds)


def bench_throughput(
    checks: int = 1000, interval: str = "5s", receivers: int = 4, group_wait: float = 10.0, rounds: int = 2
) -> list[Row]:
    """The burst with ``receivers`` receivers, then the same with none, ``rounds`` times;
    the delivery figures are the first round's."""
    loud: list[Burst] = []
    quiet: list[Burst] = []
    for _ in range(rounds):
        loud.append(burst_run(checks, interval, receivers, group_wait, None))
        quiet.append(burst_run(checks, interval, 0, group_wait, loud[-1].window))
    first_round = loud[0]
    arrivals = first_round.arrivals
    events = delivered(arrivals)
    changes = sorted({e.at for e in events})
    first, last = arrivals[0].at, arrivals[-1].at
    drain = last - first
    statuses: dict[str, int] = {}
    for row in first_round.outbox:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    by_status = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
    pairs = {(e.receiver, e.check_id) for e in events}
    who = {f"{receivers} receivers": loud, "no receivers": quiet}
    label = f"{checks} checks every {interval} fail at once, {receivers} receivers, group_wait {group_wait:g}s"
    out: list[Row] = [
        (
            "throughput",
            f"{label}: events (distinct) / messages",
            f"{len(events)} ({len(pairs)}) / {len(arrivals)} (largest {max(len(a.events) for a in arrivals)} events)",
        ),
        (
            "throughput",
            f"flag set → the checks' changes (their next runs, spread over the {interval} interval)",
            f"{changes[0] - first_round.flag_at:.2f} … {changes[-1] - first_round.flag_at:.2f} s",
        ),
        (
            "throughput",
            "flag set → first / last message at a receiver",
            f"{first - first_round.flag_at:.2f} / {last - first_round.flag_at:.2f} s",
        ),
        (
            "throughput",
            "first → last message (all receivers): messages/s, events/s",
            f"{ms(drain)}: {len(arrivals) / max(drain, 1e-9):,.0f}/s, {len(events) / max(drain, 1e-9):,.0f}/s",
        ),
        (
            "throughput",
            "outbox rows after (by status); notifications pending on /metrics",
            f"{len(first_round.outbox)} ({by_status}); {first_round.pending_after:.0f}",
        ),
        (
            "throughput",
            "watcher RSS before / peak / after (main process)",
            f"{mib(first_round.rss_before)} / {mib(first_round.rss_peak)} / {mib(first_round.rss_after)}",
        ),
        (
            "throughput",
            "its workers' RSS, together, before / after",
            f"{mib(first_round.workers_rss_before)} / {mib(first_round.workers_rss_after)}",
        ),
        (
            "throughput",
            "no receivers: watcher RSS before / peak / after",
            f"{mib(quiet[0].rss_before)} / {mib(quiet[0].rss_peak)} / {mib(quiet[0].rss_after)}",
        ),
    ]
    for name, bursts in who.items():
        out += [
            ("throughput", f"{name}: lateness p50 / p99 (runs), 5 s before the flag", late([b.steady for b in bursts])),
            (
                "throughput",
                f"{name}: lateness, flag → {group_wait - 0.5:g} s (the changes)",
                late([b.changing for b in bursts]),
            ),
            (
                "throughput",
                f"{name}: lateness, {group_wait - 0.5:g} s → last message + 1 s (the sending)",
                late([b.sending for b in bursts]),
            ),
            (
                "throughput",
                f"{name}: runs > 20 ms late of all from the flag",
                "; ".join(f"{b.over_20ms} of {b.changing[2] + b.sending[2]}" for b in bursts),
            ),
            (
                "throughput",
                f"{name}: watcher CPU from the flag (share of one core)",
                "; ".join(f"{b.cpu * 100:.0f}%" for b in bursts),
            ),
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", metavar="PART", help="latency or throughput (default: both)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="throughput: bursts with and without receivers, alternating (default 2)"
    )
    args = parser.parse_args()
    parts = args.parts or ["latency", "throughput"]
    unknown = set(parts) - {"latency", "throughput"}
    if unknown:
        parser.error(f"unknown part: {', '.join(sorted(unknown))}")
    table: list[Row] = []
    load_before = os.getloadavg()[0]
    if "latency" in parts:
        table += bench_latency()
    if "throughput" in parts:
        table += bench_throughput(rounds=args.rounds)
    table.append(
        ("machine", "load average (1 min) at the start / at the end", f"{load_before:.2f} / {os.getloadavg()[0]:.2f}")
    )
    width = max(len(row[1]) for row in table)
    print(f"| part | {'measure':<{width}} | result |")
    print(f"|---|{'-' * (width + 2)}|---|")
    for part, measure, value in table:
        print(f"| {part} | {measure:<{width}} | {value} |")


if __name__ == "__main__":
    main()
