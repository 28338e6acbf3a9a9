"""The common compliance patterns on real audit tables: per user and address, the change log, timing, writers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import pytest

from fraiseql_checks.audit import Audit, AuditUnsupported
from fraiseql_checks.audit.layout import layout_of
from fraiseql_checks.audit.reader import Reader, Scope
from fraiseql_checks.targets.database import Database
from tests.audit.audit_db import V2_SCHEMA, AuditDatabase, insert_v2, run, v2_event
from tests.support.services import throwaway_postgres

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(autouse=True)
def _now() -> None:
    """Times are seeded relative to the test's own start, not to collection: a long run
    reaches this file minutes after collecting it, and "the last 5 minutes" must hold."""
    global NOW
    NOW = dt.datetime.now(dt.UTC)


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def test_event_patterns_per_user_and_address(v2: AuditDatabase) -> None:
    rows = [
        v2_event(
            ago(100 + i), user_id="mallory", ip="203.0.113.5", resource_type="user", action="login", status="failure"
        )
        for i in range(5)
    ]
    rows += [
        v2_event(ago(200 + i), user_id="bob", ip="198.51.100.2", resource_type="auth", action="login", status="denied")
        for i in range(2)
    ]
    rows += [v2_event(ago(300), user_id="bob", resource_type="user", action="login")]  # a success
    rows += [v2_event(ago(400 + i), user_id="carol", resource_type="invoices", action="read") for i in range(3)]
    rows += [v2_event(ago(500), user_id="carol", resource_type="orders", action="list")]
    rows += [
        v2_event(
            ago(600), user_id="dave", resource_type="user_roles", action="update", before={"r": 1}, after={"r": 2}
        ),
        v2_event(ago(610), user_id="dave", resource_type="admin_settings", action="update"),
    ]
    run(v2.with_conn(lambda conn: insert_v2(conn, rows)))

    async def work(audit: Audit) -> None:
        assert await audit.failed_logins_per_user("1h") == [
            {"user_id": "mallory", "count": 5},
            {"user_id": "bob", "count": 2},
        ]
        assert await audit.failed_logins_per_ip("1h", top=1) == [{"ip_address": "203.0.113.5", "count": 5}]
        assert await audit.data_access_per_user_and_resource("1h") == [
            {"user_id": "carol", "resource_type": "invoices", "count": 3},
            {"user_id": "carol", "resource_type": "orders", "count": 1},
        ]
        assert [e["event_type"] for e in await audit.permission_changes().since("1h").fetch()] == ["user_roles_update"]
        assert [e["event_type"] for e in await audit.admin_actions().since("1h").fetch()] == ["admin_settings_update"]
        assert await audit.permission_denied().count() == 2
        delay = await audit.write_delay("1h")
        assert delay.events == 14 and delay.max_seconds == pytest.approx(0.05)
        lag = await audit.lag()
        assert lag is not None and 100 <= lag < 3600
        with pytest.raises(ValueError, match="no audit pattern 'logins'"):
            audit.pattern("logins")
        with pytest.raises(ValueError, match="has no audit hash chain"):
            await audit.verify_chain("1h")

    v2.use(work)


def test_change_log_actor_types_and_seq_gaps(v2: AuditDatabase) -> None:
    async def seed(conn: asyncpg.Connection) -> None:
        for seq, actor in [
            (10, "human_user"),
            (11, "ai_agent"),
            (12, None),
            (15, "system_job"),
            (16, "ai_agent"),
            (20, "service_account"),
        ]:
            await conn.execute(
                "INSERT INTO core.tb_entity_change_log (object_type, modification_type, seq, actor_type, created_at)"
                " VALUES ('Post', 'UPDATE', $1, $2, $3)",
                seq,
                actor,
                ago(60 - seq),
            )

    run(v2.with_conn(seed))

    async def work(audit: Audit) -> None:
        assert await audit.changes(actor_type="ai_agent").count() == 2
        assert await audit.changes(action="UPDATE", resource_type="Post").count() == 6
        assert await audit.unattributed("changes").count() == 1
        assert (await audit.changes().group_by("actor_type"))[0] == {"actor_type": "ai_agent", "count": 2}
        gaps = await audit.seq_gaps("1h")
        assert [(g.after, g.before, g.missing) for g in gaps] == [(12, 15, 2), (16, 20, 3)]
        assert await audit.seq_gaps("1h", limit=1) == gaps[:1]

    v2.use(work)


def test_v1_has_no_write_time_and_no_change_log(v1: AuditDatabase) -> None:
    async def work(audit: Audit) -> None:
        with pytest.raises(AuditUnsupported, match="has no write time"):
            await audit.write_delay("5m")
        with pytest.raises(AuditUnsupported, match="has no change log"):
            audit.changes()
        assert await audit.lag() is None

    v1.use(work)


def test_writers_from_privileges_and_from_pg_stat_statements() -> None:
    """A role that wrote rows and lost its privilege afterwards is still caught by what it ran."""
    with throwaway_postgres(preload="pg_stat_statements") as server:

        async def scenario() -> list[Any]:
            admin = await asyncpg.connect(server.dsn)
            await admin.execute("CREATE EXTENSION pg_stat_statements")
            await admin.execute(V2_SCHEMA)
            for role in ("app", "rogue", "auditor"):
                await admin.execute(f"CREATE ROLE {role} LOGIN")
            await admin.execute("GRANT INSERT ON audit_log TO app, rogue")
            for role, count in (("app", 2), ("rogue", 1)):
                conn = await asyncpg.connect(server.dsn.replace("postgres@", f"{role}@"))
                for i in range(count):
                    await conn.execute(
                        'INSERT INTO audit_log ("timestamp", event_type, status)'
                        " VALUES ($1, 'posts_read', 'success')",
                        ago(i),
                    )
                await conn.close()
            await admin.execute("REVOKE INSERT ON audit_log FROM rogue")
            reports = []
            for grant in (False, True):
                if grant:
                    await admin.execute("GRANT pg_read_all_stats TO auditor")
                database = Database(server.dsn.replace("postgres@", "auditor@"), pool_size=1)
                audit = Audit(Reader(database, Scope()), layout_of("fraiseql-v2"))
                reports.append(await audit.writers(["app"]))
                await database.close()
            await admin.close()
            return reports

        hidden, seen = run(scenario())
    assert hidden.privileged == [{"role": "app", "privileges": ["INSERT"], "allowed": True}]
    assert hidden.active == []  # the auditor cannot read other roles' statements...
    assert hidden.note is not None and hidden.note.endswith("hidden from the audit role: grant it pg_read_all_stats")
    assert hidden.unexpected == []
    assert seen.active == [
        {"role": "app", "calls": 2, "rows": 2, "allowed": True},
        {"role": "rogue", "calls": 1, "rows": 1, "allowed": False},
    ]
    assert seen.note is None
    assert seen.unexpected == ["rogue"]


def test_writers_without_pg_stat_statements_say_so(v2: AuditDatabase) -> None:
    async def work(audit: Audit) -> Any:
        return await audit.writers([v2.auditor])

    writers = v2.use(work)
    assert writers.active is None
    assert writers.note is not None and writers.note.startswith("pg_stat_statements cannot tell who wrote: ")
    assert writers.unexpected == []
