"""What the PostgreSQL store does for high availability: leases, claims on the outbox, reads by check."""

from __future__ import annotations

import asyncio

import asyncpg

from fraiseql_checks.stores.postgres import PostgresStore
from tests.stores.test_store_contract import T0, outbox_entry


async def _expire(dsn: str, member: str) -> None:
    """End ``member``'s lease now, on the database's clock, as if it had stopped heartbeating."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE fraiseql_check_members SET expires_at = now() WHERE member = $1", member)
    finally:
        await conn.close()


def test_a_heartbeat_renews_the_lease_or_joins_anew_and_sees_only_live_members(pg_schema: str) -> None:
    async def main() -> None:
        store = PostgresStore(pg_schema)
        try:
            (me,) = await store.heartbeat("c", "a", 0, "host", 1, 5.0, timeout=5)
            assert not me.renewed and me.epoch > 0 and 4 < me.expires_in <= 5
            (again,) = await store.heartbeat("c", "a", me.epoch, "host", 1, 5.0, timeout=5)
            assert again.renewed and again.epoch == me.epoch
            await store.heartbeat("c", "b", 0, "host", 2, 60.0, timeout=5)
            assert [m.member for m in await store.heartbeat("c", "a", me.epoch, "host", 1, 5.0, timeout=5)] == [
                "a",
                "b",
            ]
            await _expire(pg_schema, "b")
            rows = await store.heartbeat("c", "a", me.epoch, "host", 1, 5.0, timeout=5)
            assert [m.member for m in rows] == ["a"]  # b's expired lease is gone
            assert [m.member for m in await store.heartbeat("other", "z", 0, "h", 3, 5.0, timeout=5)] == ["z"]
            await store.leave("c", "a", me.epoch, timeout=5)
            (back,) = await store.heartbeat("c", "a", me.epoch, "host", 1, 5.0, timeout=5)
            assert not back.renewed and back.epoch > me.epoch  # a lapsed lease joins with a new epoch
        finally:
            await store.close()

    asyncio.run(main())


def test_an_outbox_entry_is_claimed_by_one_member_and_taken_over_from_a_dead_one(pg_schema: str) -> None:
    async def main() -> None:
        store = PostgresStore(pg_schema)
        try:
            entries = [outbox_entry("chat", "a", T0), outbox_entry("chat", "b", T0 + 1)]
            await store.write([], [], [], entries)
            ids = [e.id for e in entries]
            for member in ("m1", "m2"):  # both live
                await store.heartbeat("c", member, 0, "host", 1, 60.0, timeout=5)
            assert await store.claim_entries("m1", ids, T0 + 100) == set(ids)
            assert await store.claim_entries("m2", ids, T0 + 100) == set()  # m1 holds them
            assert await store.claim_entries("m1", ids[:1], T0 + 100) == set(ids[:1])  # again: its own
            sweep = {"until": T0 + 100, "older_than": T0 + 1000}
            assert await store.claim_outbox("m2", ["a", "b"], **sweep) == []
            await _expire(pg_schema, "m1")  # m1's lease expires (without a race against a short lease)
            await store.heartbeat("c", "m2", 0, "host", 2, 5.0, timeout=5)
            assert await store.claim_outbox("m2", ["x"], **sweep) == []  # another cluster's checks
            taken = await store.claim_outbox("m2", ["a", "b"], **sweep)
            assert [e.id for e in taken] == ids
            assert await store.claim_entries("m1", ids, T0 + 100) == set()
            assert [e.id for e in await store.outbox_of(["b"], T0)] == ids[1:]
            assert await store.states_of(["a"]) == {}
        finally:
            await store.close()

    asyncio.run(main())
