"""High-availability benchmarks on paper (issue 16): the ownership rule at scale, and what
leases cost PostgreSQL.

    .venv/bin/python benchmarks/ha.py              # both parts (about a minute)
    .venv/bin/python benchmarks/ha.py assign       # or: leases

- assign: 20 members and 100,000 checks, in-process: how long one member takes to
  compute the whole assignment (what each watcher does after a membership change),
  and how many checks a join and a leave move (rendezvous hashing: only the
  leaver's, about 1/21 for a join).
- leases: 20 members as in-process objects heartbeating every second against the real
  PostgreSQL on 127.0.0.1:5432 (database ``test``, a schema of its own) through the
  store's own ``heartbeat`` for 20 s: round-trip p50/p99 and the transactions the
  database committed per second meanwhile (``pg_stat_database``).

Not measured here (still to do): takeover time over many kills of real watchers, and
the rebalance cost of a join on real watchers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", metavar="PART", help="assign or leases (default: both)")
    parts = parser.parse_args().parts or ["assign", "leases"]
    rows: list[Row] = []
    if "assign" in parts:
        rows += bench_assign()
    if "leases" in parts:
        rows += asyncio.run(leases())
    width = max(len(r[1]) for r in rows)
    print(f"{'part':8} {'measure':{width}} result")
    for part, measure, result in rows:
        print(f"{part:8} {measure:{width}} {result}")


if __name__ == "__main__":
    main()
