"""High availability in-process: the rendezvous rule, and members' leases on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection

import asyncpg

from fraiseql_checks.stores import StateRecord
from fraiseql_checks.stores.postgres import PostgresStore
from fraiseql_checks.watch.cluster import Cluster, assign, owner

CHECKS = [f"checks/check_many.py::check_{n}" for n in range(3000)]


def test_each_member_gets_a_fair_share_and_a_leave_moves_only_the_leavers_checks() -> None:
    members = ["a:1:x", "b:2:y", "c:3:z"]
    before = assign(CHECKS, members)
    shares = {member: sum(1 for who in before.values() if who == member) for member in members}
    assert all(800 < share < 1200 for share in shares.values()), shares
    after = assign(CHECKS, ["a:1:x", "c:3:z"])
    moved = {check for check in CHECKS if before[check] != after[check]}
    assert moved == {check for check in CHECKS if before[check] == "b:2:y"}


def test_a_join_takes_only_checks_for_itself_and_the_order_of_members_does_not_matter() -> None:
    before = assign(CHECKS, ["a", "b", "c"])
    after = assign(CHECKS, ["d", "c", "b", "a"])
    changed = [check for check in CHECKS if before[check] != after[check]]
    assert changed and all(after[check] == "d" for check in changed)
    assert 500 < len(changed) < 1000  # about a quarter
    assert owner("x", []) is None


class Host:
    """The watcher's side, recorded."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.running: set[str] = set()
        self.adopted_at_once: list[bool] = []

    def check_ids(self) -> list[str]:
        return self.ids

    def adopt(self, check_ids: Collection[str], states: dict[str, StateRecord] | None, *, at_once: bool) -> None:
        assert not self.running & set(check_ids)
        self.running |= set(check_ids)
        self.adopted_at_once.append(at_once)

    def disown(self, check_ids: Collection[str]) -> None:
        self.running -= set(check_ids)

    def others_seen(self, states: dict[str, StateRecord]) -> None:
        pass

    def view_asked(self) -> float:
        return float("-inf")


def test_members_split_the_checks_hand_over_on_a_join_and_take_over_from_an_expired_lease(pg_schema: str) -> None:
    ids = CHECKS[:200]

    async def main() -> None:
        stores = [PostgresStore(pg_schema) for _ in range(3)]
        hosts = [Host(ids) for _ in range(3)]
        members = [Cluster(s, "c1", h, heartbeat=0.1, ttl=2.0, margin=0.3) for s, h in zip(stores, hosts, strict=True)]
        other = Cluster(PostgresStore(pg_schema), "c2", Host(ids), ttl=1.0)  # another cluster sees none of these
        try:
            await members[0].beat()
            assert hosts[0].running == set(ids) and members[0].may_run()
            assert members[0].epoch > 0
            await other.beat()
            assert other.members == (other.member,)
            await members[1].beat()  # joins: its share is held until members[0] surely stopped
            assert members[1].held and not hosts[1].running
            await members[0].beat()  # members[0] sees the join and drops that share
            assert hosts[0].running == set(ids) - set(members[1].held)
            for _ in range(3):  # held for ttl - margin (+ slack), while members[0] keeps its lease
                await asyncio.sleep(0.7)
                await members[0].beat()
                await members[1].beat()
            assert not members[1].held and hosts[0].running.isdisjoint(hosts[1].running)
            assert hosts[0].running | hosts[1].running == set(ids)
            # members[1] dies (no more heartbeats): members[0] and a newcomer take over its checks
            dead = set(hosts[1].running)
            for _ in range(6):
                await members[0].beat()
                await members[2].beat()
                await asyncio.sleep(0.5)
            assert members[0].members == tuple(sorted([members[0].member, members[2].member]))
            assert hosts[0].running | hosts[2].running == set(ids)
            assert hosts[0].running.isdisjoint(hosts[2].running)
            assert members[0].takeovers + members[2].takeovers == len(dead)
            # a clean leave moves its checks at the others' next heartbeat
            await members[2].leave()
            await members[0].beat()
            assert hosts[0].running == set(ids)
            # members[1] comes back after its lease lapsed: it joins anew, drops what is no longer
            # its own and pauses what it keeps until members[0] surely stopped running it
            epoch = members[1].epoch
            await members[1].beat()
            assert members[1].epoch > epoch
            assert hosts[1].running == members[1].owned - set(members[1].held)
            assert all(members[1].paused_now(check) for check in hosts[1].running)
            await members[0].beat()
            assert hosts[0].running.isdisjoint(members[1].owned)
        finally:
            for cluster in (*members, other):
                await cluster.store.close()  # type: ignore[attr-defined]

    asyncio.run(main())


def test_a_member_whose_lease_ran_out_locally_runs_nothing_but_keeps_running_while_the_store_is_away() -> None:
    now = [0.0]

    class Away:
        async def heartbeat(self, *args: object, **kwargs: object) -> list[object]:
            from fraiseql_checks.stores import StoreUnavailable

            raise StoreUnavailable("connection refused")

        async def leave(self, *args: object, **kwargs: object) -> None:
            pass

        async def states_of(self, check_ids: object) -> dict[str, StateRecord]:
            return {}

    host = Host(CHECKS[:10])
    cluster = Cluster(Away(), "c", host, clock=lambda: now[0])  # type: ignore[arg-type]
    assert not cluster.may_run()  # no lease yet
    asyncio.run(cluster.beat())  # started while the store is away: runs everything rather than nothing
    assert cluster.away and cluster.may_run() and host.running == set(CHECKS[:10])
    cluster.away = False
    cluster._lease_until = 4.0
    now[0] = 3.9
    assert cluster.may_run()
    now[0] = 4.0  # paused past its lease, heartbeat not yet retried: fenced
    assert not cluster.may_run()


def test_a_slow_store_delays_an_adoption_not_the_heartbeats_and_a_check_moved_meanwhile_is_not_adopted(
    pg_schema: str,
) -> None:
    """Reading the states of adopted checks waits for a slow store in the background: the
    heartbeat goes on (the lease must not lapse behind it), and the checks run once their
    states are read, except those another member took meanwhile."""
    ids = CHECKS[:50]
    release = asyncio.Event()

    class SlowStates(PostgresStore):
        async def states_of(self, check_ids: object) -> dict[str, StateRecord]:
            await release.wait()
            return await super().states_of(check_ids)  # type: ignore[arg-type]

    async def main() -> None:
        host = Host(ids)
        slow = Cluster(SlowStates(pg_schema), "c1", host, heartbeat=0.1, ttl=5.0)
        other_host = Host(ids)
        other = Cluster(PostgresStore(pg_schema), "c1", other_host, heartbeat=0.1, ttl=5.0)
        try:
            # alone: every check is its own, and their states are being read; the store never answers
            # until `release`, so a heartbeat that waited for it would not come back at all
            await asyncio.wait_for(slow.beat(), 30)
            assert host.running == set() and slow.owned == set(slow.held) == set(ids)
            await slow.beat()  # the next heartbeat is not stuck behind it either
            assert slow.may_run()
            await other.beat()  # a second member joins ...
            await slow.beat()  # ... and takes its share while the states are still being read
            moved = set(ids) - slow.owned
            assert moved and other.held.keys() == moved
            release.set()
            await asyncio.wait_for(asyncio.gather(*slow._adopting), 10)
            assert host.running == slow.owned  # adopted once read: its share, and only its share
            assert host.running.isdisjoint(moved)
        finally:
            await slow.stop()
            await other.stop()
            for cluster in (slow, other):
                await cluster.store.close()  # type: ignore[attr-defined]

    asyncio.run(main())


def test_a_join_starts_its_checks_once_every_other_member_has_seen_it_not_after_their_leases(pg_schema: str) -> None:
    """The newcomer holds the checks a join gave it until every other member has applied an
    assignment that includes it (told by their next heartbeats), not for a whole lease; a
    member of the previous version, which tells nothing, makes it wait out the lease."""
    ids = CHECKS[:300]

    async def main() -> None:
        hosts = [Host(ids) for _ in range(3)]
        # leases of a minute: a hold that waits out a lease would not end within this test
        members = [Cluster(PostgresStore(pg_schema), "c1", h, heartbeat=0.1, ttl=60.0, margin=1.0) for h in hosts]
        try:
            await members[0].beat()
            await members[1].beat()
            await members[0].beat()
            for _ in range(2):  # the first two settle (their handover is acknowledged too)
                for member in members[:2]:
                    await member.beat()
            assert not members[1].held and hosts[0].running | hosts[1].running == set(ids)
            await members[2].beat()  # joins: its share is held
            share = set(members[2].held)
            assert share and not hosts[2].running
            await members[2].beat()
            assert set(members[2].held) == share  # the others have not seen it yet
            for member in members[:2]:
                await member.beat()  # they see the join and drop its share ...
            assert share.isdisjoint(hosts[0].running | hosts[1].running)
            await members[2].beat()
            assert set(members[2].held) == share  # ... and tell it with their next heartbeat
            for member in members[:2]:
                await member.beat()
            await members[2].beat()
            assert not members[2].held and hosts[2].running == share
            assert sum(len(h.running) for h in hosts) == len(ids)

            # a fourth member while members[0] heartbeats as the previous version did (no seen_epoch)
            fourth_host = Host(ids)
            fourth = Cluster(PostgresStore(pg_schema), "c1", fourth_host, heartbeat=0.1, ttl=60.0, margin=1.0)
            members.append(fourth)
            await fourth.beat()
            old = members[0]
            conn = await asyncpg.connect(pg_schema)
            try:
                for _ in range(2):
                    await conn.fetch(
                        "SELECT * FROM fraiseql_check_heartbeat($1, $2, $3, $4, $5, $6)",
                        "c1",
                        old.member,
                        old.epoch,
                        "h",
                        1,
                        60.0,
                    )
                    for member in members[1:3]:
                        await member.beat()
                    await fourth.beat()
            finally:
                await conn.close()
            assert fourth.held and not fourth_host.running  # waits out the lease, as before
        finally:
            for cluster in members:
                await cluster.store.close()  # type: ignore[attr-defined]

    asyncio.run(main())


def test_the_others_states_are_read_only_while_someone_looks(pg_schema: str) -> None:
    """An unwatched member reads no state of the checks the others run; asked for them (the
    API, the status page), it reads them at once, not at its next round."""
    ids = CHECKS[:40]
    reads: list[int] = []

    class Counting(PostgresStore):
        async def states_of(self, check_ids: object) -> dict[str, StateRecord]:
            reads.append(len(check_ids))  # type: ignore[arg-type]
            return await super().states_of(check_ids)  # type: ignore[arg-type]

    class Looked(Host):
        def __init__(self, ids: list[str]) -> None:
            super().__init__(ids)
            self.asked = float("-inf")
            self.seen: list[dict[str, StateRecord]] = []

        def others_seen(self, states: dict[str, StateRecord]) -> None:
            self.seen.append(states)

        def view_asked(self) -> float:
            return self.asked

    async def main() -> None:
        hosts = [Looked(ids), Looked(ids)]
        members = [Cluster(Counting(pg_schema), "c1", h, heartbeat=0.1, ttl=60.0) for h in hosts]
        try:
            for member in members:
                await member.beat()
            await members[0].beat()
            reads.clear()
            await members[0].start()  # its view task runs at once: nobody looked, nothing read
            for _ in range(20):
                await asyncio.sleep(0)
            assert reads == [] and hosts[0].seen == []
            hosts[0].asked = time.monotonic()
            members[0].view_now()
            async with asyncio.timeout(10):
                while not hosts[0].seen:
                    await asyncio.sleep(0.01)
            assert sum(reads) == len(set(ids) - members[0].owned) > 0  # the others' checks, once
        finally:
            for member in members:
                await member.stop()
                await member.store.close()  # type: ignore[attr-defined]

    asyncio.run(main())
