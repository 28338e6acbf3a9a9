"""Benchmark: every shipped audit check against 1,000,000 audit rows, with the indexes docs/audit.md recommends.

Builds two throwaway databases on the local PostgreSQL (127.0.0.1:5432): FraiseQL
v2's ``audit_log`` and v1's hash-chained ``audit_events``, a million rows each
over 30 days, ten tenants; runs ``fraiseql-check`` on ``checks/audit`` several
times and prints, per check, the median time the runner measured and the time
its SQL took. The bar (issue 7): each check answers in 200 ms or less.

    .venv/bin/python benchmarks/audit.py [--rows 1000000] [--runs 5] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "audit"))

from audit_db import (  # noqa: E402  (the same layouts the tests use)
    V1_INDEXES,
    V1_SCHEMA,
    V1_VERIFY,
    V2_INDEXES,
    V2_SCHEMA,
    create_database,
    drop_database,
)

from fraiseql_checks.audit.chain import event_hash  # noqa: E402

BAR_MS = 200.0
SPAN = dt.timedelta(days=30)
TENANTS = [str(uuid.UUID(int=0x6C5B0D1E_0000_4000_8000_000000000000 + i)) for i in range(10)]
WARMUP = "async def check_pool_is_up(db):\n    assert await db.fetchval('select 1') == 1\n"

V2_ROWS = """
INSERT INTO audit_log (id, "timestamp", event_type, user_id, username, ip_address, resource_type, resource_id,
                       action, before_state, after_state, status, error_message, tenant_id, metadata, created_at)
SELECT gen_random_uuid(), t, rt || '_' || act, 'user_' || u, 'name_' || u,
       ('10.' || (u % 200) || '.' || (g % 250) || '.' || (g % 199 + 1))::inet, rt, (g % 100000)::text, act,
       CASE WHEN act IN ('update', 'delete') THEN '{"roles": ["viewer"]}'::jsonb END,
       CASE WHEN act IN ('create', 'update') THEN '{"roles": ["editor"]}'::jsonb END,
       st, CASE WHEN st <> 'success' THEN 'refused' END, ($2::uuid[])[1 + g % 10],
       '{"user_agent": "Mozilla/5.0"}'::jsonb, t + interval '40 milliseconds'
FROM (
    SELECT g, u, t, r,
           CASE WHEN r < 20 OR r BETWEEN 33 AND 119 THEN 'user' WHEN r < 30 THEN 'admin_config'
                WHEN r < 33 THEN 'user_roles'
                ELSE (ARRAY['posts', 'comments', 'orders', 'invoices'])[1 + g % 4] END AS rt,
           CASE WHEN r < 20 OR r BETWEEN 33 AND 119 THEN 'login' WHEN r < 25 THEN 'read' WHEN r < 33 THEN 'update'
                ELSE (ARRAY['read', 'read', 'read', 'create', 'update', 'delete'])[1 + g % 6] END AS act,
           CASE WHEN r < 20 THEN 'failure' WHEN r < 25 THEN 'denied' ELSE 'success' END AS st
    FROM (
        SELECT g, ((g::bigint * 7919) % 1000)::int AS u, now() - g * ($1::float8 * interval '1 second') AS t,
               (g::bigint * 2654435761) % 1000 AS r
        FROM generate_series(1, $3) AS g
    ) AS base
) AS shaped
"""


async def build_v2(name: str, rows: int) -> str:
    dsn = await create_database(name, V2_SCHEMA)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(V2_ROWS, SPAN.total_seconds() / rows, TENANTS, rows)
        await conn.execute(V2_INDEXES)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return dsn


async def build_v1(name: str, rows: int) -> str:
    """The chain is computed here with the algorithm the trigger uses, then loaded with COPY."""
    dsn = await create_database(name, V1_SCHEMA, V1_VERIFY)
    now = dt.datetime.now(dt.UTC)
    step = SPAN / rows
    previous: dict[str, str | None] = dict.fromkeys(TENANTS)
    records = []
    for i in range(rows, 0, -1):
        tenant = TENANTS[i % len(TENANTS)]
        data = {"post_id": i % 5000, "title": f"Post {i}", "tags": ["a", "b"], "n": i}
        digest = event_hash(previous[tenant], data)
        kind = "user.login_failed" if i % 97 == 0 else ("post.read" if i % 3 else "post.created")
        records.append(
            (
                uuid.uuid4(),
                kind,
                json.dumps(data),
                uuid.UUID(int=i % 1000 + 1),
                uuid.UUID(tenant),
                now - step * i,
                f"192.168.{i % 4}.{i % 250 + 1}",
                previous[tenant],
                digest,
                "sig",
            )
        )
        previous[tenant] = digest
    conn = await asyncpg.connect(dsn)
    try:
        # The rows carry their chain already; the trigger would look each predecessor up again.
        await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER populate_crypto_trigger")
        await conn.copy_records_to_table(
            "audit_events",
            records=records,
            columns=[
                "id",
                "event_type",
                "event_data",
                "user_id",
                "tenant_id",
                "timestamp",
                "ip_address",
                "previous_hash",
                "event_hash",
                "signature",
            ],
        )
        await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER populate_crypto_trigger")
        await conn.execute(V1_INDEXES)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return dsn


def project(folder: Path, writer_roles: str, chain_method: str = "auto") -> None:
    (folder / "checks" / "audit").mkdir(parents=True, exist_ok=True)
    (folder / "checks" / "_warm").mkdir(exist_ok=True)
    shutil.copy(REPO / "checks" / "audit" / "check_audit.py", folder / "checks" / "audit" / "check_audit.py")
    (folder / "checks" / "_warm" / "check_warm.py").write_text(WARMUP)
    config = f"audit:\n  writer_roles: [{writer_roles}]\n  chain_method: {chain_method}\n"
    (folder / "fraiseql-checks.yaml").write_text(config)


def run_checks(folder: Path, dsn: str, profile: str, *args: str) -> dict[str, dict]:
    report = folder / "report.json"
    env = {**os.environ, "DATABASE_URL": dsn, "FRAISEQL_PROFILE": profile}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fraiseql_checks",
            "checks",
            "-q",
            "--concurrency",
            "1",
            "--report-json",
            str(report),
            *args,
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        check=False,
    )
    results = json.loads(report.read_text())["results"]
    return {r["name"]: r for r in results if r["name"] != "check_pool_is_up"}


def measure(
    folder: Path, dsn: str, profile: str, runs: int, *args: str, label: str = ""
) -> list[tuple[str, str, str, float, float]]:
    samples: dict[str, list[tuple[float, float]]] = {}
    outcomes: dict[str, str] = {}
    for _ in range(runs):
        for name, result in run_checks(folder, dsn, profile, *args).items():
            name += label
            sql_ms = sum(q["duration_ms"] for q in result.get("audit", {}).get("queries", []))
            samples.setdefault(name, []).append((result["duration_s"] * 1000, sql_ms))
            outcomes[name] = result["outcome"]
    return [
        (name, profile, outcomes[name], statistics.median(s[0] for s in runs_), statistics.median(s[1] for s in runs_))
        for name, runs_ in samples.items()
    ]


def time_report(folder: Path, dsn: str, profile: str, since: str) -> float:
    env = {**os.environ, "DATABASE_URL": dsn, "FRAISEQL_PROFILE": profile}
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fraiseql_checks",
            "audit",
            "report",
            "checks",
            "--since",
            since,
            "-o",
            "evidence.json",
            "-q",
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        check=False,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the databases (printed) instead of dropping them")
    options = parser.parse_args()
    suffix = secrets.token_hex(3)
    names = (f"fqc_bench_audit_v2_{suffix}", f"fqc_bench_audit_v1_{suffix}")
    try:
        started = time.perf_counter()
        v2 = asyncio.run(build_v2(names[0], options.rows))
        v2_built = time.perf_counter() - started
        started = time.perf_counter()
        v1 = asyncio.run(build_v1(names[1], options.rows))
        v1_built = time.perf_counter() - started
        print(f"built {options.rows:,} v2 rows in {v2_built:.1f}s and {options.rows:,} v1 rows in {v1_built:.1f}s")
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            project(folder, "postgres")
            run_checks(folder, v2, "fraiseql-v2")  # warm the caches once
            rows += measure(folder, v2, "fraiseql-v2", options.runs)
            rows += [r for r in measure(folder, v1, "fraiseql-v1", options.runs) if r[2] != "skipped"]
            project(folder, "postgres", chain_method="python")
            rows += measure(folder, v1, "fraiseql-v1", options.runs, "-k", "chain", label=" (python)")
            project(folder, "postgres")
            reports = [
                (p, s, time_report(folder, dsn, p, s))
                for p, dsn in (("fraiseql-v2", v2), ("fraiseql-v1", v1))
                for s in ("24h", "30d")
            ]
        print(f"\n{'check':<40} {'profile':<12} {'outcome':<8} {'check ms':>9} {'SQL ms':>8}  <= {BAR_MS:g} ms")
        for name, profile, outcome, total, sql in sorted(rows, key=lambda r: (r[1], r[0])):
            verdict = "yes" if total <= BAR_MS else "NO"
            print(f"{name:<40} {profile:<12} {outcome:<8} {total:>9.1f} {sql:>8.1f}  {verdict}")
        print(f"\n{'audit report (whole command)':<40} {'profile':<12} {'since':<8} {'seconds':>9}")
        for profile, since, seconds in reports:
            print(f"{'audit report -o evidence.json':<40} {profile:<12} {since:<8} {seconds:>9.2f}")
    finally:
        if options.keep:
            print(f"kept databases: {', '.join(names)}")
        else:
            for name in names:
                asyncio.run(drop_database(name))


if __name__ == "__main__":
    main()
