"""FraiseQL's audit tables on a real PostgreSQL, for the tests and the benchmark.

The layouts follow the column lists of FRAISEQL.md: v2's ``audit_log`` and
``core.tb_entity_change_log`` (read through ``core.v_entity_change_log``), and
v1's ``audit_events`` whose hash chain a trigger fills with pgcrypto, plus a
``verify_audit_chain`` written for these tests. ``user_id`` is text on v2 (as the
v2 server writes it) and uuid on v1, so both kinds of identifier are exercised.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

from fraiseql_checks.audit.layout import layout_of
from fraiseql_checks.audit.patterns import Audit
from fraiseql_checks.audit.reader import Reader, Scope
from fraiseql_checks.targets.database import Database

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"

V2_SCHEMA = """
CREATE TABLE audit_log (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "timestamp" timestamptz NOT NULL,
    event_type text NOT NULL,
    user_id text,
    username text,
    ip_address inet,
    resource_type text,
    resource_id text,
    action text,
    before_state jsonb,
    after_state jsonb,
    status text NOT NULL CHECK (status IN ('success', 'failure', 'denied')),
    error_message text,
    tenant_id uuid,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE SCHEMA core;
CREATE SEQUENCE core.seq_entity_change_log;
CREATE TABLE core.tb_entity_change_log (
    pk_entity_change_log bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    object_type text NOT NULL,
    modification_type text NOT NULL,
    object_id uuid,
    object_data jsonb,
    object_data_before jsonb,
    tenant_id uuid,
    actor_type text CHECK (actor_type IS NULL
        OR actor_type IN ('human_user', 'service_account', 'ai_agent', 'system_job')),
    acting_for uuid,
    trace_id text,
    trace_context jsonb,
    duration_ms integer,
    started_at timestamptz,
    seq bigint DEFAULT nextval('core.seq_entity_change_log'),
    schema_version text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE VIEW core.v_entity_change_log WITH (security_invoker = true) AS
SELECT pk_entity_change_log, object_type, modification_type, object_id, tenant_id, duration_ms,
       started_at, trace_id, actor_type, acting_for, seq, created_at,
       jsonb_build_object('id', id, 'object_data', object_data, 'object_data_before', object_data_before) AS data
FROM core.tb_entity_change_log;
"""

#: The indexes docs/audit.md recommends.
V2_INDEXES = """
CREATE INDEX audit_log_time ON audit_log ("timestamp");
CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, "timestamp");
CREATE INDEX audit_log_user_time ON audit_log (user_id, "timestamp");
CREATE INDEX audit_log_status_time ON audit_log (status, "timestamp") WHERE status <> 'success';
CREATE INDEX entity_change_log_created ON core.tb_entity_change_log (created_at);
CREATE INDEX entity_change_log_tenant_seq ON core.tb_entity_change_log (tenant_id, seq);
"""

V1_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE audit_signing_keys (
    id serial PRIMARY KEY,
    key_value text NOT NULL,
    active boolean NOT NULL DEFAULT true
);
CREATE TABLE audit_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_type text NOT NULL,
    event_data jsonb NOT NULL,
    user_id uuid,
    tenant_id uuid,
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    ip_address inet,
    previous_hash text,
    event_hash text NOT NULL,
    signature text NOT NULL
);
-- Canonical JSON as v1's Python helper writes it: sorted keys, no whitespace
-- (strings are compared byte for byte, so the tests keep event_data ASCII).
CREATE FUNCTION audit_canonical_json(value jsonb) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF jsonb_typeof(value) = 'object' THEN
        RETURN '{' || coalesce((SELECT string_agg(to_json(k)::text || ':' || audit_canonical_json(v), ','
                                                  ORDER BY k COLLATE "C")
                                FROM jsonb_each(value) AS e(k, v)), '') || '}';
    ELSIF jsonb_typeof(value) = 'array' THEN
        RETURN '[' || coalesce((SELECT string_agg(audit_canonical_json(v), ',' ORDER BY n)
                                FROM jsonb_array_elements(value) WITH ORDINALITY AS a(v, n)), '') || ']';
    END IF;
    RETURN value::text;
END $$;
CREATE FUNCTION audit_chain_hash(previous text, data jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(digest(coalesce(previous, 'GENESIS') || ':' || audit_canonical_json(data), 'sha256'), 'hex')
$$;
CREATE FUNCTION populate_crypto_fields() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    previous text;
    signing_key text;
BEGIN
    IF NEW.tenant_id IS NULL THEN
        SELECT e.event_hash INTO previous FROM audit_events e WHERE e.tenant_id IS NULL
        ORDER BY e."timestamp" DESC, e.id DESC LIMIT 1;
    ELSE
        SELECT e.event_hash INTO previous FROM audit_events e WHERE e.tenant_id = NEW.tenant_id
        ORDER BY e."timestamp" DESC, e.id DESC LIMIT 1;
    END IF;
    NEW.previous_hash := previous;
    NEW.event_hash := audit_chain_hash(previous, NEW.event_data);
    SELECT key_value INTO signing_key FROM audit_signing_keys WHERE active ORDER BY id DESC LIMIT 1;
    NEW.signature := encode(hmac(NEW.event_hash, coalesce(signing_key, ''), 'sha256'), 'hex');
    RETURN NEW;
END $$;
CREATE TRIGGER populate_crypto_trigger BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION populate_crypto_fields();
INSERT INTO audit_signing_keys (key_value) VALUES ('test-signing-key');
"""

#: v1's verification function, as FRAISEQL.md describes its signature and result.
V1_VERIFY = """
CREATE FUNCTION verify_audit_chain(p_tenant_id uuid, p_start timestamptz DEFAULT NULL, p_end timestamptz DEFAULT NULL)
RETURNS TABLE (event_id uuid, event_timestamp timestamptz, chain_valid boolean, expected_hash text, actual_hash text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    anchor text;
BEGIN
    IF p_start IS NOT NULL THEN
        SELECT e.event_hash INTO anchor FROM audit_events e
        WHERE e.tenant_id IS NOT DISTINCT FROM p_tenant_id AND e."timestamp" < p_start
        ORDER BY e."timestamp" DESC, e.id DESC LIMIT 1;
    END IF;
    RETURN QUERY
    WITH window_events AS (
        SELECT e.id, e."timestamp", e.previous_hash, e.event_hash, e.event_data,
               row_number() OVER w AS n, lag(e.event_hash) OVER w AS preceding
        FROM audit_events e
        WHERE (e.tenant_id = p_tenant_id OR (p_tenant_id IS NULL AND e.tenant_id IS NULL))
          AND e."timestamp" >= coalesce(p_start, '-infinity') AND e."timestamp" < coalesce(p_end, 'infinity')
        WINDOW w AS (ORDER BY e."timestamp", e.id)
    ), expected AS (
        SELECT w.*, CASE WHEN w.n = 1 THEN anchor ELSE w.preceding END AS expected_previous FROM window_events w
    )
    SELECT x.id, x."timestamp",
           x.previous_hash IS NOT DISTINCT FROM x.expected_previous
               AND x.event_hash = audit_chain_hash(x.expected_previous, x.event_data),
           audit_chain_hash(x.expected_previous, x.event_data), x.event_hash
    FROM expected x ORDER BY x."timestamp", x.id;
END $$;
"""

V1_INDEXES = """
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, "timestamp");
CREATE INDEX audit_events_time ON audit_events ("timestamp");
"""

FIRST_NAMES = ["alice", "bob", "carol", "dmitri", "eve", "farah", "gustavo", "hana", "ivan", "josé", "kenji", "lena"]
RESOURCES = ["posts", "comments", "users", "orders", "invoices", "projects"]


def dsn_for(database: str, user: str = "postgres") -> str:
    return f"postgresql://{user}@127.0.0.1:5432/{database}"


async def create_database(name: str, *scripts: str) -> str:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn_for(name))
    try:
        for script in scripts:
            await conn.execute(script)
    finally:
        await conn.close()
    return dsn_for(name)


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def use_audit(dsn: str, profile: str, work: Callable[[Audit], Awaitable[T]], **scope: Any) -> T:
    """Run ``work(audit)`` with an ``Audit`` on a ``Database`` of its own (the ``db`` fixture's class)."""

    async def main() -> T:
        database = Database(dsn, pool_size=2)
        try:
            return await work(Audit(Reader(database, Scope(**scope)), layout_of(profile)))
        finally:
            await database.close()

    return run(main())


@dataclass
class AuditDatabase:
    name: str
    dsn: str
    profile: str
    auditor: str
    reader_login: str
    tables: tuple[str, ...]

    @property
    def reader_dsn(self) -> str:
        """The DSN of a non-superuser login that is a member of the auditor role."""
        return dsn_for(self.name, self.reader_login)

    async def execute(self, sql: str, *args: Any) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()

    async def with_conn(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    def use(self, work: Callable[[Audit], Awaitable[T]], *, dsn: str | None = None, **scope: Any) -> T:
        """Run ``work(audit)`` with an ``Audit`` on its own ``Database`` (what the ``db`` fixture
        gives), as the ``audit`` fixture builds it."""
        return use_audit(dsn or self.dsn, self.profile, work, **scope)

    def reset(self) -> None:
        run(self.execute(f"TRUNCATE {', '.join(self.tables)}"))


def v2_event(
    when: dt.datetime,
    *,
    event_type: str | None = None,
    user_id: str | None = "user_1",
    username: str | None = "alice",
    ip: str | None = "10.0.0.1",
    resource_type: str = "posts",
    resource_id: str | None = None,
    action: str = "read",
    status: str = "success",
    tenant_id: str | None = None,
    before: Any = None,
    after: Any = None,
    error: str | None = None,
    written_after: float = 0.05,
) -> dict[str, Any]:
    """One ``audit_log`` row as the v2 server writes it (``event_type`` is ``<resource>_<action>``)."""
    return {
        "id": uuid.uuid4(),
        "timestamp": when,
        "event_type": event_type or f"{resource_type}_{action}",
        "user_id": user_id,
        "username": username,
        "ip_address": ip,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "action": action,
        "before_state": None if before is None else json.dumps(before),
        "after_state": None if after is None else json.dumps(after),
        "status": status,
        "error_message": error if error is not None else ("denied" if status != "success" else None),
        "tenant_id": tenant_id,
        "metadata": json.dumps({"user_agent": "Mozilla/5.0", "request_id": str(uuid.uuid4())}),
        "created_at": when + dt.timedelta(seconds=written_after),
    }


V2_COLUMNS = list(v2_event(dt.datetime.now(dt.UTC)))


async def insert_v2(conn: asyncpg.Connection, rows: Iterable[dict[str, Any]]) -> None:
    placeholders = ", ".join(f"${i + 1}" for i in range(len(V2_COLUMNS)))
    columns = ", ".join(f'"{c}"' for c in V2_COLUMNS)
    await conn.executemany(
        f"INSERT INTO audit_log ({columns}) VALUES ({placeholders})", [[r[c] for c in V2_COLUMNS] for r in rows]
    )


async def insert_v1(conn: asyncpg.Connection, rows: Iterable[dict[str, Any]]) -> None:
    """Insert v1 events one by one, in time order, so the trigger builds each tenant's chain."""
    for row in sorted(rows, key=lambda r: r["timestamp"]):
        await conn.execute(
            'INSERT INTO audit_events (id, event_type, event_data, user_id, tenant_id, "timestamp", ip_address)'
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            row.get("id", uuid.uuid4()),
            row["event_type"],
            json.dumps(row["event_data"]),
            row.get("user_id"),
            row.get("tenant_id"),
            row["timestamp"],
            row.get("ip_address"),
        )


def realistic_v2(
    rng: random.Random, now: dt.datetime, count: int, tenants: list[str], span: float
) -> list[dict[str, Any]]:
    """Ordinary traffic over the last ``span`` seconds: reads and writes, a few failures, no attack."""
    rows = []
    for i in range(count):
        when = now - dt.timedelta(seconds=span * (i + 1) / (count + 1))
        user = rng.randrange(40)
        resource = rng.choice(RESOURCES)
        action = rng.choices(["read", "create", "update", "delete"], weights=[70, 15, 12, 3])[0]
        rows.append(
            v2_event(
                when,
                user_id=f"user_{user}",
                username=FIRST_NAMES[user % len(FIRST_NAMES)],
                ip=f"10.{user % 4}.{user}.{rng.randrange(1, 250)}",
                resource_type=resource,
                resource_id=str(rng.randrange(10_000)),
                action=action,
                tenant_id=rng.choice(tenants),
                before={"status": "draft"} if action in ("update", "delete") else None,
                after={"status": "published"} if action in ("create", "update") else None,
            )
        )
    return rows


def realistic_v1(
    rng: random.Random, now: dt.datetime, count: int, tenants: list[str], span: float
) -> list[dict[str, Any]]:
    rows = []
    users = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(20)]
    for i in range(count):
        when = now - dt.timedelta(seconds=span * (i + 1) / (count + 1))
        kind = rng.choices(["post.read", "post.created", "user.login", "user.login_failed"], weights=[60, 20, 18, 2])[0]
        rows.append(
            {
                "event_type": kind,
                "event_data": {"post_id": rng.randrange(1000), "title": f"Post {i}", "tags": ["a", "b"], "n": i},
                "user_id": rng.choice(users),
                "tenant_id": rng.choice(tenants),
                "timestamp": when,
                "ip_address": f"192.168.{rng.randrange(4)}.{rng.randrange(1, 250)}",
            }
        )
    return rows
