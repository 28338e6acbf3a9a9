"""High availability: watchers that share a PostgreSQL store split the checks between them.

Each watcher of a cluster (the ``cluster`` setting) is a *member*: it holds a lease,
one row of ``fraiseql_check_members``, renewed every ``HEARTBEAT`` seconds for
``TTL`` seconds on the database's clock; the same round trip deletes the expired
leases and returns the live members. Every member computes the same assignment from
that list: a check belongs to the member with the highest ``rank(member, check)``
(rendezvous hashing), so a join or a leave moves only the checks it must.

Fencing: a member runs checks only while it holds a lease it knows is valid — on its
own monotonic clock, until ``MARGIN`` seconds before the database lets it expire.
Two exceptions, both documented in ``docs/high-availability.md``: while the store is
unreachable a member keeps running what it has (a monitor must not go blind when its
database is down; nobody can take over without reaching the database either), and
when it reaches the store again after its lease lapsed it joins anew (a new epoch),
first drops the checks it no longer owns, pauses those it keeps until whoever may
have taken them over has stopped, and for a while takes over nothing from a member
whose lease is gone (that member may be running its checks, cut off as it was).

A check that moves from a live member (a join) is held by its new owner until the
previous owner's lease, as that owner knew it, has surely ended: the previous owner
stops at its next heartbeat, and at the latest when its lease runs out. A check whose
owner is gone (its lease expired, or it left) is taken over at once. Either way the
new owner reads the check's state from the store first and tells the notifications
what was announced for it, so a takeover neither records a change nor re-notifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from fraiseql_checks import metrics as m
from fraiseql_checks.stores import StateRecord, StoreUnavailable

if TYPE_CHECKING:
    from fraiseql_checks.stores.postgres import Member

#: How often a member renews its lease.
HEARTBEAT = 1.0
#: How long a lease lasts past its last renewal (on the database's clock).
TTL = 5.0
#: A member's own view of its lease ends this long before the database's.
MARGIN = 1.0
#: How long one heartbeat may take before the store counts as unreachable.
HEARTBEAT_TIMEOUT = 2.0
#: Extra wait, past the previous owner's lease, before a check moved by a join runs.
HANDOVER_SLACK = 0.2
#: How long a heartbeat waits for an adoption's states before going on without them.
ADOPT_WAIT = 1.0
#: How often a member reads the states of the checks the others run (the API, the status page).
VIEW_EVERY = 5.0
#: ... this many checks a query: decoding one query's rows holds the event loop, and the runs wait.
VIEW_CHUNK = 2000
#: ... and only while someone looked at them (the API, the status page) within this long:
#: an unwatched cluster does not read every check's state from the store every 5 seconds.
VIEW_IDLE = 300.0


def rank(member: str, check_id: str) -> int:
    """The rendezvous weight of ``check_id`` on ``member``: the same on every machine."""
    digest = hashlib.blake2b(f"{member}\0{check_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(check_id: str, members: Iterable[str]) -> str | None:
    """The member that runs ``check_id``: the highest rank (ties by name); ``None`` for no member."""
    best: tuple[int, str] | None = None
    for member in members:
        key = (rank(member, check_id), member)
        if best is None or key > best:
            best = key
    return None if best is None else best[1]


def assign(check_ids: Iterable[str], members: Collection[str]) -> dict[str, str]:
    """Each check's owner among ``members`` (empty when there is no member)."""
    if not members:
        return {}
    return {check_id: owner(check_id, members) or "" for check_id in check_ids}


def owned_by(member: str, check_ids: Iterable[str], members: Collection[str]) -> set[str]:
    """The checks among ``check_ids`` that ``member`` owns."""
    return {check_id for check_id, who in assign(check_ids, members).items() if who == member}


class Coordinator(Protocol):
    """What the cluster needs of the store (``stores.postgres.PostgresStore`` has it)."""

    async def heartbeat(
        self,
        cluster: str,
        member: str,
        epoch: int,
        host: str,
        pid: int,
        ttl: float,
        *,
        timeout: float,
        seen_epoch: int = 0,
    ) -> list[Member]: ...

    async def leave(self, cluster: str, member: str, epoch: int, *, timeout: float) -> None: ...

    async def states_of(self, check_ids: Sequence[str]) -> dict[str, StateRecord]: ...


class Host(Protocol):
    """What the cluster needs of the watcher."""

    def check_ids(self) -> list[str]: ...

    def adopt(self, check_ids: Collection[str], states: dict[str, StateRecord] | None, *, at_once: bool) -> None: ...

    def disown(self, check_ids: Collection[str]) -> None: ...

    def others_seen(self, states: dict[str, StateRecord]) -> None: ...

    def view_asked(self) -> float:
        """When (``time.monotonic()``) the cluster's view was last asked for."""
        ...


class Cluster:
    """One watcher's membership of a cluster: its lease, its share of the checks."""

    def __init__(
        self,
        store: Coordinator,
        name: str,
        host: Host,
        *,
        say: Callable[[str], None] = lambda line: None,
        heartbeat: float = HEARTBEAT,
        ttl: float = TTL,
        margin: float = MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.name = name
        self.host = host
        self.say = say
        self.heartbeat = heartbeat
        self.ttl = ttl
        self.margin = margin
        self.clock = clock
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        #: Unique per process: a restarted watcher is a new member.
        self.member = f"{self.hostname}:{self.pid}:{secrets.token_hex(4)}"
        self.epoch = 0
        #: The live members, as the last heartbeat saw them.
        self.members: tuple[str, ...] = ()
        #: The checks this member owns (scheduled here, or held until their previous owner stops).
        self.owned: set[str] = set()
        #: Owned checks not scheduled yet: when each may start (``clock``), and the member
        #: that ran it before (once that member's lease is gone, it may start at once).
        self.held: dict[str, tuple[float, str]] = {}
        #: Owned, scheduled checks that must not start before a time (``clock``), after a rejoin.
        self.paused: dict[str, float] = {}
        self._grace_until = -math.inf
        #: The newest epoch among the members of the last assignment applied (told with each heartbeat).
        self._applied_epoch = 0
        #: Every other member has applied an assignment that includes this one (see ``beat``).
        self._acknowledged = False
        #: The store could not be reached at the last heartbeat: running on without a lease.
        self.away = False
        self.takeovers = 0
        self._lease_until = -math.inf
        self._renewed_at: float | None = None
        self._known: set[str] = set()
        self._joined = False
        self._task: asyncio.Task[None] | None = None
        self._view_task: asyncio.Task[None] | None = None
        #: Set to read the others' states now (someone asks for them after a quiet while).
        self._view_wake = asyncio.Event()
        #: Called with the checks (and their stored states) about to be adopted, before they run:
        #: the notifications learn what was announced for them.
        self.on_adopt: list[Callable[[list[str], dict[str, StateRecord]], Awaitable[None]]] = []
        #: Called with the checks handed to another member (the notifications forget them).
        self.on_disown: list[Callable[[list[str]], None]] = []
        #: Adoptions whose states are still being read (see ``_adopt``).
        self._adopting: set[asyncio.Task[None]] = set()
        #: The last assignment computed: for these members and these checks, the ones this member owns.
        self._assigned: tuple[tuple[str, ...], list[str], frozenset[str]] | None = None

    # -- the lease ---------------------------------------------------------------------------

    def may_run(self) -> bool:
        """Whether this member may start a run now: its lease is valid, or the store is away."""
        return self.away or self.clock() < self._lease_until

    def lease_age(self) -> float:
        """Seconds since the lease was last renewed (``+Inf`` before the first)."""
        return math.inf if self._renewed_at is None else self.clock() - self._renewed_at

    async def beat(self) -> None:
        """One heartbeat: renew the lease, see the members, move the checks that must move."""
        sent = self.clock()
        try:
            rows = await asyncio.wait_for(
                self.store.heartbeat(
                    self.name,
                    self.member,
                    self.epoch,
                    self.hostname,
                    self.pid,
                    self.ttl,
                    timeout=HEARTBEAT_TIMEOUT,
                    seen_epoch=self._applied_epoch,
                ),
                HEARTBEAT_TIMEOUT + 0.5,
            )
        except (StoreUnavailable, TimeoutError) as exc:
            if not self.away:
                if not self._joined and not self.owned:
                    # Started while the store is away: not knowing who else runs, run everything
                    # rather than nothing (a monitor must not go blind); dropped once it joins.
                    self.owned = set(self.host.check_ids())
                    self.host.adopt(sorted(self.owned), None, at_once=False)
                self.say(
                    f"cluster {self.name}: the store is unreachable ({exc}); running the {len(self.owned)} checks"
                    " this watcher has, without a lease, until it is back"
                )
            self.away = True
            return
        mine = [row for row in rows if row.member == self.member]
        if not mine:  # cannot happen: the heartbeat inserts our row
            return
        live = {row.member for row in rows}
        lapsed = (self._joined and not mine[0].renewed) or (not self._joined and bool(self.owned))
        if self.away:
            self.say(f"cluster {self.name}: the store is back")
        previous = self.members if self._joined else tuple(sorted(live - {self.member}))
        first = not self._joined and not lapsed
        self._joined = True
        self.away = False
        self.epoch = mine[0].epoch
        self.members = tuple(sorted(live))
        self._lease_until = sent + min(self.ttl - self.margin, mine[0].expires_in - self.margin)
        self._renewed_at = sent
        # every other member has applied an assignment that includes this one: none of them runs its checks
        self._acknowledged = all(row.seen_epoch >= self.epoch for row in rows if row.member != self.member)
        if lapsed:
            await self._rejoined()
        await self.rebalance(previous, first=first)
        self._applied_epoch = max(row.epoch for row in rows)

    async def _rejoined(self) -> None:
        """Back after running without a lease (the store was unreachable, or this watcher was
        paused): the others may have taken over its checks meanwhile, or may themselves have
        run theirs without a lease. Drop what it no longer owns; pause what it keeps until any
        other that may have started it has surely stopped; and for a while take over nothing
        from a member whose lease is gone: it may be running its checks, cut off as this one was."""
        self.say(f"cluster {self.name}: back after running without a lease; joined anew (epoch {self.epoch})")
        now = self.clock()
        until = now + self.ttl - self.margin + HANDOVER_SLACK
        mine = await self._mine(self.host.check_ids())
        lost = self.owned - mine
        self._drop(lost)
        self.owned -= lost
        if len(self.members) > 1:
            for check_id in self.owned - set(self.held):
                self.paused[check_id] = until
        self._grace_until = until

    def paused_now(self, check_id: str) -> bool:
        """Whether this owned check must not start now (after a rejoin, see ``_rejoined``)."""
        until = self.paused.get(check_id)
        if until is None:
            return False
        if self.clock() < until:
            return True
        del self.paused[check_id]
        return False

    async def rebalance(self, previous: Sequence[str], *, first: bool = False) -> None:
        """Take the checks this member now owns and drop the others; ``previous``: the
        members the last assignment was made for (who may still be running a check)."""
        now = self.clock()
        ids = self.host.check_ids()
        mine = await self._mine(ids)
        lost = self.owned - mine
        if lost:
            self._drop(lost)
        live = set(self.members)
        grace = now < self._grace_until
        ready: list[str] = []
        for check_id in sorted(mine - self.owned):
            before = owner(check_id, previous) if previous and (first or check_id in self._known) else None
            if before is not None and before != self.member and (before in live or grace):
                # A join moved it: its previous owner stops at its next heartbeat, or when its lease runs out.
                # (Or, just after a rejoin, a member without a lease may still be running it.)
                self.held[check_id] = (max(now + self.ttl - self.margin + HANDOVER_SLACK, self._grace_until), before)
            else:
                if before is not None and before != self.member:
                    self.takeovers += 1
                ready.append(check_id)
        self.owned = mine
        self._known = set(ids)
        for check_id, (when, before) in self.held.items():
            if check_id in ready or when == math.inf:  # ... or being adopted now
                continue
            if before not in live and not grace:  # its previous owner's lease is gone: nobody runs it
                self.takeovers += 1
                ready.append(check_id)
            elif when <= now or (self._acknowledged and not grace):
                # its previous owner surely stopped: its lease as it knew it ran out, or it (and every other
                # member) has applied an assignment that includes this member, and so dropped the check
                ready.append(check_id)
        if ready:
            await self._adopt(ready, at_once=not first)

    async def _mine(self, ids: list[str]) -> set[str]:
        """The checks among ``ids`` this member owns. Checks × members hashes (1.1 s for 100,000
        checks and 20 members): off the event loop, and again only when the members or the
        checks changed, not at every heartbeat."""
        members = self.members
        assigned = self._assigned
        if assigned is None or assigned[0] != members or assigned[1] != ids:
            mine = await asyncio.to_thread(owned_by, self.member, ids, list(members))
            assigned = self._assigned = (members, ids, frozenset(mine))
        return set(assigned[2])

    def _drop(self, lost: Collection[str]) -> None:
        """Stop running ``lost`` (another member owns them now) and forget what was held."""
        self.host.disown([check_id for check_id in lost if check_id not in self.held])
        for check_id in lost:
            self.held.pop(check_id, None)
            self.paused.pop(check_id, None)
        for hook in self.on_disown:
            hook(sorted(lost))

    async def _adopt(self, check_ids: list[str], *, at_once: bool) -> None:
        """Read the checks' states (and let the notifications read what was announced), then
        run them. Held meanwhile; the heartbeat waits for this at most ``ADOPT_WAIT``, then
        goes on while it finishes in the background: a slow store must not let the lease lapse."""
        in_flight = (math.inf, self.member)
        for check_id in check_ids:
            self.held[check_id] = in_flight
        task = asyncio.get_running_loop().create_task(self._adopt_now(check_ids, in_flight, at_once=at_once))
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)
        await asyncio.wait({task}, timeout=ADOPT_WAIT)

    async def _adopt_now(self, check_ids: list[str], in_flight: tuple[float, str], *, at_once: bool) -> None:
        try:
            states = await asyncio.wait_for(self.store.states_of(check_ids), HEARTBEAT_TIMEOUT * 5)
            for hook in self.on_adopt:
                await asyncio.wait_for(hook(check_ids, states), HEARTBEAT_TIMEOUT * 5)
        except Exception as exc:  # StoreUnavailable, TimeoutError, or a bug: never lost, tried again
            reason = str(exc) if isinstance(exc, StoreUnavailable | TimeoutError) else f"{type(exc).__name__}: {exc}"
            self.say(
                f"cluster {self.name}: the states of {len(check_ids)} checks could not be read ({reason}); retrying"
            )
            when = self.clock()
            for check_id in check_ids:
                if self.held.get(check_id) == in_flight:
                    self.held[check_id] = (when, self.member)
            return
        # a heartbeat meanwhile may have handed some to another member
        ready = [check_id for check_id in check_ids if check_id in self.owned and self.held.get(check_id) == in_flight]
        for check_id in ready:
            del self.held[check_id]
        if ready:
            self.host.adopt(ready, states, at_once=at_once)

    # -- the whole life ------------------------------------------------------------------------

    async def start(self) -> None:
        """Join (one heartbeat), then keep the lease alive in the background."""
        await self.beat()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run())
        self._view_task = loop.create_task(self._view())

    def view_now(self) -> None:
        """Read the others' states at once (the view was asked for after ``VIEW_IDLE``)."""
        self._view_wake.set()

    async def _view(self) -> None:
        """Every ``VIEW_EVERY`` seconds while someone looks (``VIEW_IDLE``), the stored states of
        the checks the others run."""
        while True:
            wanted = time.monotonic() - self.host.view_asked() < VIEW_IDLE
            if wanted and not self.away and self._joined:
                running = self.owned.difference(self.held)
                ids = [check_id for check_id in self.host.check_ids() if check_id not in running]
                try:
                    states: dict[str, StateRecord] = {}
                    for start in range(0, len(ids), VIEW_CHUNK):
                        chunk = ids[start : start + VIEW_CHUNK]
                        states.update(await asyncio.wait_for(self.store.states_of(chunk), HEARTBEAT_TIMEOUT * 5))
                except (StoreUnavailable, TimeoutError):
                    pass  # shown as last read; tried again
                except Exception as exc:  # a bug here must not stop the view (nor the heartbeats)
                    self.say(f"cluster {self.name}: internal error reading the others' states: {exc!r}")
                else:
                    self.host.others_seen(states)
            self._view_wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._view_wake.wait(), VIEW_EVERY)

    async def _run(self) -> None:
        while True:
            started = self.clock()
            try:
                await self.beat()
            except Exception as exc:  # a bug here must not stop the heartbeats
                self.say(f"cluster {self.name}: internal error: {type(exc).__name__}: {exc}")
            await asyncio.sleep(max(self.heartbeat - (self.clock() - started), 0.05))

    async def stop(self) -> None:
        """Stop renewing the lease (the watcher stops running checks)."""
        task, self._task = self._task, None
        view, self._view_task = self._view_task, None
        tasks = [*self._adopting, *(t for t in (task, view) if t is not None)]
        for each in tasks:
            each.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def leave(self) -> None:
        """Delete the lease (after the writer flushed): the checks move to the others at once."""
        if not self._joined:
            return
        try:
            await self.store.leave(self.name, self.member, self.epoch, timeout=HEARTBEAT_TIMEOUT)
        except StoreUnavailable as exc:
            self.say(f"cluster {self.name}: could not leave ({exc}); the others take over when the lease expires")

    def metric_lines(self) -> Iterator[str]:
        from fraiseql_checks.watch import exposition

        yield exposition.simple(m.CLUSTER_MEMBERS, len(self.members))
        yield exposition.simple(m.CLUSTER_OWNED, len(self.owned) - len(self.held))
        yield exposition.simple(m.CLUSTER_LEASE_AGE, self.lease_age())
        yield exposition.simple(m.CLUSTER_TAKEOVERS, self.takeovers)
