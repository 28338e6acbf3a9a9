"""The audit query builder on a real v2 ``audit_log``: filters, aggregates, streaming, injection."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from typing import Any

import pytest

from fraiseql_checks.audit import MISSING, Audit, Glob, Not
from tests.audit.audit_db import AuditDatabase, insert_v2, realistic_v2, run, v2_event

TENANT_A = "0b0e8a47-9d9a-4d0a-8f1b-6f7f3f3a0001"
TENANT_B = "0b0e8a47-9d9a-4d0a-8f1b-6f7f3f3a0002"
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(autouse=True)
def _now() -> None:
    """Times are seeded relative to the test's own start, not to collection: a long run
    reaches this file minutes after collecting it, and "the last 5 minutes" must hold."""
    global NOW
    NOW = dt.datetime.now(dt.UTC)


def seed(db: AuditDatabase, rows: list[dict[str, Any]]) -> None:
    run(db.with_conn(lambda conn: insert_v2(conn, rows)))


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


@pytest.fixture
def traffic(v2: AuditDatabase) -> AuditDatabase:
    rng = random.Random(7)
    rows = realistic_v2(rng, NOW, 300, [TENANT_A, TENANT_B], span=6 * 3600)
    rows += [
        v2_event(
            ago(60 + i),
            user_id="user_9",
            ip="203.0.113.9",
            resource_type="user",
            action="login",
            status="failure",
            tenant_id=TENANT_A,
        )
        for i in range(7)
    ]
    rows += [v2_event(ago(30), resource_type="invoices", action="read", status="denied", tenant_id=TENANT_B)]
    seed(v2, rows)
    return v2


def test_count_fetch_first_and_filters(traffic: AuditDatabase) -> None:
    async def work(audit: Audit) -> None:
        failures = audit.events(status="failure", action="login")
        assert await failures.count() == 7
        assert await failures.where(user_id="user_9").count() == 7
        assert await failures.where(user_id="user_8").count() == 0
        assert await failures.where(ip_address="203.0.113.9").count() == 7
        rows = await failures.fetch()
        assert len(rows) == 7
        assert rows[0]["timestamp"] > rows[-1]["timestamp"]  # newest first
        assert rows[0]["ip_address"] == "203.0.113.9"
        assert rows[0]["tenant_id"] == TENANT_A
        assert isinstance(rows[0]["metadata"], dict)
        newest = await failures.first()
        assert newest is not None and newest["id"] == rows[0]["id"]
        oldest = await failures.order_by("timestamp", descending=False).first("id", "user_id")
        assert oldest == {"id": rows[-1]["id"], "user_id": "user_9"}
        assert await audit.events(status=["failure", "denied"]).count() == 8
        assert await audit.events(event_type=Glob("user_log*")).count() == 7
        assert await audit.events(status=Not("success")).count() == 8
        assert await audit.events(tenant_id=TENANT_B, status="denied").count() == 1
        assert await audit.events().since("5m").count() >= 8
        assert await audit.events().since("5m").count() < await audit.events().count()
        assert await audit.events().between(ago(120), ago(45)).where(status="failure").count() == 7
        assert await audit.events(username=None).count() == 0
        assert await audit.events().unattributed().count() == 0

    traffic.use(work)


def test_aggregates(traffic: AuditDatabase) -> None:
    async def work(audit: Audit) -> None:
        per_user = await audit.events(status="failure").group_by("user_id")
        assert per_user[0] == {"user_id": "user_9", "count": 7}
        top = await audit.events().since("7h").top(2, "tenant_id", "status")
        assert len(top) == 2 and top[0]["count"] >= top[1]["count"]
        assert {row["tenant_id"] for row in top} <= {TENANT_A, TENANT_B}
        buckets = await audit.events(status="failure").buckets("1h")
        assert sum(b["count"] for b in buckets) == 7
        assert all(b["bucket"].minute == 0 and b["bucket"].second == 0 for b in buckets)
        peak = await audit.events(status="failure").peak("5s")
        assert peak.count == 6  # 60..66 seconds ago: six events fit in any 5-second window
        assert peak.start is not None
        none = await audit.events(status="failure", user_id="nobody").peak("5m")
        assert none.count == 0 and none.start is None

    traffic.use(work)


def test_stream_reads_through_a_cursor(traffic: AuditDatabase) -> None:
    async def work(audit: Audit) -> list[dt.datetime]:
        seen = []
        async for row in audit.events().stream("timestamp", batch=16):
            seen.append(row["timestamp"])
        return seen

    seen = traffic.use(work)
    assert len(seen) == 308
    assert seen == sorted(seen)

    async def stop_early(audit: Audit) -> int:
        rows = audit.events().stream(batch=4)
        async with contextlib.aclosing(rows):
            async for _ in rows:
                break
        return await audit.events().count()  # the pool's connection came back in a usable state

    assert traffic.use(stop_early) == 308


def test_values_never_reach_the_sql_text(v2: AuditDatabase) -> None:
    async def work(audit: Audit) -> tuple[str, list[Any]]:
        return audit.events(status="denied", user_id="x' OR 1=1 --").since("1h").where(event_type=Glob("a%b*")).sql()

    sql, params = v2.use(work)
    assert "denied" not in sql and "OR 1=1" not in sql and "a%b" not in sql
    assert "$1" in sql and "$4" in sql
    assert params[1:] == ["denied", "x' OR 1=1 --", ["a\\%b%"]]


INJECTIONS = [
    "' OR '1'='1",
    "x'; DROP TABLE audit_log; --",
    '"; DELETE FROM audit_log; --',
    "%",
    "_",
    "\\",
    "*",
    "1) OR (1=1",
    "$1",
    "' UNION SELECT NULL --",
    "éléphant ∑ 🛡",
]
FIELDS = [
    "event_type",
    "action",
    "status",
    "user_id",
    "username",
    "tenant_id",
    "resource_type",
    "resource_id",
    "ip_address",
    "error_message",
]


def test_injection_strings_stay_data_in_every_filter(v2: AuditDatabase) -> None:
    """Each hostile string finds exactly the row that holds it, or nothing; the table survives."""
    rows = [
        v2_event(
            ago(10),
            tenant_id=TENANT_A,
            status="failure",
            error=value,
            username=value,
            resource_id=value,
            user_id=value,
            event_type=value,
            action=value,
            resource_type=value,
        )
        for value in INJECTIONS
    ]
    seed(v2, [*rows, v2_event(ago(5), tenant_id=TENANT_B)])

    holding = {"event_type", "action", "user_id", "username", "resource_type", "resource_id", "error_message"}
    total = len(INJECTIONS) + 1

    async def work(audit: Audit) -> None:
        for field in FIELDS:
            for value in INJECTIONS:
                expected = 1 if field in holding else 0  # status, tenant_id and ip_address cannot hold them
                query = audit.events().where(**{field: value})
                assert await query.count() == expected, (field, value)
                assert await audit.events().where(**{field: [value, "other"]}).count() == expected, (field, value)
                assert await audit.events().where(**{field: Not(value)}).count() == total - expected, (field, value)
                if "*" not in value:
                    assert await audit.events().where(**{field: Glob(value)}).count() == expected, (field, value)
                assert len(await query.group_by("status")) == expected
                assert (await query.peak("5m")).count == expected
            for value in INJECTIONS:
                assert await audit.changes(resource_type=value, tenant_id=value, actor_type=value).count() == 0
        assert await audit.events(event_type=Glob("*")).count() == total
        assert await audit.events(event_type=Glob("%")).count() == 1  # '%' is a character, not a wildcard
        assert await audit.events(event_type=Glob("_")).count() == 1
        assert await audit.events(event_type=Glob("x'*")).count() == 1
        assert await audit.events().count() == total  # nothing was dropped or deleted

    v2.use(work)


def test_bad_fields_and_values_are_clear_errors(v2: AuditDatabase) -> None:
    async def work(audit: Audit) -> None:
        with pytest.raises(ValueError, match="audit_log has no field 'password'"):
            audit.events(password="x")
        with pytest.raises(ValueError, match="since\\(\\) or between\\(\\)"):
            audit.events(timestamp=NOW)
        with pytest.raises(ValueError, match="holds JSON"):
            audit.events(before_state={"a": 1})
        with pytest.raises(ValueError, match="duration like"):
            audit.events().since("yesterday")
        with pytest.raises(ValueError, match="must come after"):
            audit.events().between(NOW, ago(60))
        assert await audit.events(before_state=None).count() == 0
        assert await audit.events(user_id=MISSING).count() == 0

    v2.use(work)
