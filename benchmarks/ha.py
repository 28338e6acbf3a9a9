"""High-availability benchmarks on paper (issue 16): the ownership rule at scale, and what
leases cost PostgreSQL.

    .venv/bin/python benchmarks/ha.py              # every part (about eight minutes)
    .venv/bin/python benchmarks/ha.py assign       # or: leases, watchers [--kills N]

- assign: 20 members and 100,000 checks, in-process: how long one member takes to
  compute the whole assignment (what each watcher does after a membership change),
  and how many checks a join and a leave move (rendezvous hashing: only the
  leaver's, about 1/21 for a join).
- leases: 20 members as in-process objects heartbeating every second against the real
  PostgreSQL on 127.0.0.1:5432 (database ``test``, a schema of its own) through the
  store's own ``heartbeat`` for 20 s: round-trip p50/p99 and the transactions the
  database committed per second meanwhile (``pg_stat_database``).
- watchers: three real watchers (``fraiseql-check --watch``) on a throwaway PostgreSQL,
  60 checks at 1 s that each append (check, watcher pid, time) to a file: one is killed
  with SIGKILL ``--kills`` times (default 20; a new watcher joins after each kill). From
  the checks' own records: the takeover (kill to every orphan running elsewhere), the
  checks a join moves and how long until they all run on the newcomer; then, with the
  checks idle, the transactions each watcher costs the database (pg_stat_database).
  About seven minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fraiseql_checks.stores.postgres import PostgresStore  # noqa: E402
from fraiseql_checks.watch.cluster import assign  # noqa: E402

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
Row = tuple[str, str, str]


def bench_assign(members: int = 20, checks: int = 100_000) -> list[Row]:
    names = [f"member-{n:02d}-{uuid.uuid4().hex[:8]}" for n in range(members)]
    ids = [f"checks/suite_{n % 50}/check_{n}.py::check_{n}" for n in range(checks)]
    start = time.perf_counter()
    before = assign(ids, names)
    took = time.perf_counter() - start
    joined = [*names, "member-new"]
    after_join = assign(ids, joined)
    moved_join = sum(1 for i in ids if before[i] != after_join[i])
    wrong_join = sum(1 for i in ids if before[i] != after_join[i] and after_join[i] != "member-new")
    leaver = names[0]
    after_leave = assign(ids, names[1:])
    moved_leave = sum(1 for i in ids if before[i] != after_leave[i])
    owned = sum(1 for i in ids if before[i] == leaver)
    shares = [sum(1 for i in ids if before[i] == n) for n in names]
    return [
        ("assign", f"{members} members × {checks:,} checks: one member computes the assignment", f"{took:.2f} s"),
        ("assign", "checks per member: min / max (ideal 5,000)", f"{min(shares):,} / {max(shares):,}"),
        (
            "assign",
            "a 21st member joins: checks moved (ideal 1/21 = 4,762), moved elsewhere than to it",
            f"{moved_join:,}, {wrong_join}",
        ),
        ("assign", "a member leaves: checks moved / the leaver owned", f"{moved_leave:,} / {owned:,}"),
    ]


async def leases(members: int = 20, seconds: float = 20.0) -> list[Row]:
    schema = f"ha_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_DSN)
    await admin.execute(f"CREATE SCHEMA {schema}")
    stores = [PostgresStore(f"{PG_DSN}?search_path={schema}") for _ in range(members)]
    try:
        for store in stores:
            await store.open()
        names = [uuid.uuid4().hex for _ in range(members)]
        epochs = [0] * members
        times: list[float] = []

        async def member(n: int, deadline: float) -> None:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                found = await stores[n].heartbeat("bench", names[n], epochs[n], "bench", n, 5.0, timeout=2.0)
                times.append(time.perf_counter() - start)
                mine = [m for m in found if m.member == names[n]]
                if mine:
                    epochs[n] = mine[0].epoch
                await asyncio.sleep(1.0)

        db = await admin.fetchval("SELECT current_database()")
        commits = "SELECT xact_commit FROM pg_stat_database WHERE datname = $1"
        before = await admin.fetchval(commits, db)
        began = time.monotonic()
        await asyncio.gather(*(member(n, began + seconds) for n in range(members)))
        elapsed = time.monotonic() - began
        after = await admin.fetchval(commits, db)
        ordered = sorted(times)
        p99 = ordered[int(len(ordered) * 0.99) - 1]
        return [
            ("leases", f"{members} members, a heartbeat a second each, {seconds:.0f} s: heartbeats", f"{len(times)}"),
            (
                "leases",
                "heartbeat round trip p50 / p99",
                f"{statistics.median(times) * 1e3:.1f} / {p99 * 1e3:.1f} ms",
            ),
            (
                "leases",
                "transactions the database committed per second (whole database, heartbeats included)",
                f"{(after - before) / elapsed:.1f}/s",
            ),
        ]
    finally:
        for store in stores:
            await store.close()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


# -- real watchers --------------------------------------------------------------------------

WATCHER_CHECKS = 60


def _check_file(count: int, interval: str) -> str:
    """Checks that append (name, the watcher's pid, time) to RUNS_FILE: runs counted outside the tool."""
    head = (
        "import os, time\nfrom fraiseql_checks import check\n\nOUT = os.environ['RUNS_FILE']\n\n\n"
        "def _ran(name):\n"
        "    with open(OUT, 'a') as f:\n"
        "        f.write(f'{name} {os.getppid()} {time.time():.3f}\\n')\n\n\n"
    )
    return head + "".join(
        f'@check(interval="{interval}")\ndef check_{n}():\n    _ran("check_{n}")\n\n\n' for n in range(count)
    )


def _runs(path: Path, since: float) -> list[tuple[str, int, float]]:
    found = []
    for line in path.read_text().splitlines():
        name, pid, at = line.split()
        if float(at) >= since:
            found.append((name, int(pid), float(at)))
    return found


def _owners(path: Path, since: float) -> dict[str, int]:
    return {name: pid for name, pid, _ in _runs(path, since)}


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {max(values):.2f} s" if values else "-"


def watchers(kills: int) -> list[Row]:
    """Three real watchers on a throwaway PostgreSQL: kill -9 one ``kills`` times (a new one
    joins after each kill), timing the takeover and the join from the checks' own records."""
    from tests.support.checkdir import CheckDir
    from tests.support.services import throwaway_postgres, wait_until
    from tests.support.watcher import WatchProcess

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, throwaway_postgres() as server:
        folder = CheckDir(Path(tmp))
        out = folder.path / "runs.log"
        out.touch()
        env = {"RUNS_FILE": str(out)}
        folder.write("checks/check_many.py", _check_file(WATCHER_CHECKS, "1s"))
        folder.write("fraiseql-checks.yaml", "start_jitter: 1s\n")
        args = ("--store", server.dsn, "--workers", "1")
        cluster = [WatchProcess(folder, args, env) for _ in range(3)]

        def settled(expected: int = 3) -> bool:
            recent = _owners(out, time.time() - 1.5)
            return len(recent) == WATCHER_CHECKS and len(set(recent.values())) == expected

        wait_until(settled, 60, every=0.2, what="three watchers running every check")
        takeover_first: list[float] = []
        takeover_all: list[float] = []
        join_all: list[float] = []
        join_moved: list[int] = []
        join_gap: list[float] = []
        for n in range(kills):
            time.sleep(2.0)
            owners_now = _owners(out, time.time() - 1.5)
            victim = cluster[n % len(cluster)]
            orphans = {name for name, pid in owners_now.items() if pid == victim.process.pid}
            victim.process.kill()
            killed = time.time()
            victim.process.communicate()

            def taken(killed: float = killed, orphans: set[str] = orphans, dead: int = victim.process.pid) -> object:
                first: dict[str, float] = {}
                for name, pid, at in _runs(out, killed):
                    if name in orphans and pid != dead:
                        first.setdefault(name, at)
                return first if set(first) == orphans else None

            first = wait_until(taken, 30, every=0.1, what="the orphans run elsewhere")
            assert isinstance(first, dict)
            takeover_first.append(min(first.values()) - killed)
            takeover_all.append(max(first.values()) - killed)
            cluster.remove(victim)

            time.sleep(1.5)
            before = _owners(out, time.time() - 1.5)
            newcomer = WatchProcess(folder, args, env)
            started = time.time()
            cluster.append(newcomer)
            newcomer.wait_ready(60)
            wait_until(lambda: settled(3), 60, every=0.2, what="the newcomer running its share")
            time.sleep(1.5)
            after = _owners(out, time.time() - 1.2)
            moved = {name for name in after if after[name] == newcomer.process.pid}
            firsts = {}
            last_old: dict[str, float] = {}
            for name, pid, at in _runs(out, started - 2):
                if name in moved:
                    if pid == newcomer.process.pid:
                        firsts.setdefault(name, at)
                    elif at < firsts.get(name, float("inf")):
                        last_old[name] = at
            join_all.append(max(firsts.values()) - started)
            join_moved.append(len(moved))
            join_gap.append(max(firsts[name] - last_old[name] for name in moved if name in last_old))
            moved_elsewhere = {name for name in after if after[name] != before.get(name) and name not in moved}
            assert not moved_elsewhere, moved_elsewhere
            print(
                f"  kill {n + 1}/{kills}: takeover {takeover_all[-1]:.2f} s;"
                f" join moved {len(moved)}, all running after {join_all[-1]:.2f} s",
                file=sys.stderr,
            )

        # coordination load: the same cluster, checks that do not run in the window
        for watcher in cluster:
            watcher.stop()
        folder.write("checks/check_many.py", _check_file(WATCHER_CHECKS, "1h"))
        idle = [WatchProcess(folder, args, env) for _ in range(3)]
        for watcher in idle:
            watcher.wait_ready(60)
        time.sleep(5.0)  # the first (and only) runs stored

        async def commits() -> int:
            conn = await asyncpg.connect(server.dsn)
            try:
                return int(
                    await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
                )
            finally:
                await conn.close()

        c0, t0 = asyncio.run(commits()), time.monotonic()
        time.sleep(20.0)
        c1, t1 = asyncio.run(commits()), time.monotonic()
        for watcher in idle:
            watcher.stop()
        per_watcher = (c1 - c0) / (t1 - t0) / len(idle)
    rows += [
        (
            "watchers",
            f"kill -9 of one of 3 watchers ({WATCHER_CHECKS} checks at 1 s), {kills} times:"
            " first orphan runs elsewhere, p50 / max",
            _summary(takeover_first),
        ),
        ("watchers", "… every orphan running elsewhere (the takeover), p50 / max (bound 10 s)", _summary(takeover_all)),
        (
            "watchers",
            "a new watcher joins: checks moved to it, min / max (ideal 20)",
            f"{min(join_moved)} / {max(join_moved)}",
        ),
        ("watchers", "… from its start to every moved check running on it, p50 / max", _summary(join_all)),
        (
            "watchers",
            "… longest gap between a moved check's last run and its first on the newcomer",
            f"{max(join_gap):.2f} s",
        ),
        (
            "watchers",
            "coordination load: transactions per second per watcher (heartbeats, claim sweeps; no runs)",
            f"{per_watcher:.1f}/s",
        ),
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", metavar="PART", help="assign, leases or watchers (default: all)")
    parser.add_argument("--kills", type=int, default=20, help="watchers: how many kill -9 (default 20)")
    options = parser.parse_args()
    parts = options.parts or ["assign", "leases", "watchers"]
    rows: list[Row] = []
    if "assign" in parts:
        rows += bench_assign()
    if "leases" in parts:
        rows += asyncio.run(leases())
    if "watchers" in parts:
        rows += watchers(options.kills)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    rows.append(("machine", f"{os.cpu_count()} cores; load average (1, 5, 15 min) at the end", load))
    width = max(len(r[1]) for r in rows)
    print(f"{'part':8} {'measure':{width}} result")
    for part, measure, result in rows:
        print(f"{part:8} {measure:{width}} {result}")


if __name__ == "__main__":
    main()
