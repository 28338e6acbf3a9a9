"""The FraiseQL v1 audit hash chain: verifying it and finding the first broken link.

FraiseQL v1 chains ``audit_events`` per tenant: each event stores the hash of the
tenant's previous event (``previous_hash``, ``NULL`` for the first) and its own
``event_hash`` = SHA-256 of ``"<previous hash or GENESIS>:<canonical JSON of
event_data>"``, the canonical JSON being sorted keys without spaces (v1's own
verification helper, ``fraiseql.enterprise.crypto.hashing``). A trigger fills
both columns on insert.

Where the database has v1's ``verify_audit_chain(tenant_id, start, end)``, it
does the work; otherwise the chain is recomputed here, row by row through a
server-side cursor. Either way the answer is the first broken link of each
tenant: the event, its time, and the expected and actual hashes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
from typing import Any

from fraiseql_checks.audit.layout import Layout
from fraiseql_checks.audit.query import Params, condition
from fraiseql_checks.audit.reader import Reader

GENESIS = "GENESIS"
METHODS = ("auto", "sql", "python")


def canonical_json(data: Any) -> str:
    """The canonical JSON v1 hashes: sorted keys, no whitespace."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def event_hash(previous_hash: str | None, event_data: Any) -> str:
    """What ``event_hash`` must be for an event with this data after ``previous_hash``."""
    chained = f"{previous_hash or GENESIS}:{canonical_json(event_data)}"
    return hashlib.sha256(chained.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class ChainBreak:
    """The first event of a tenant's chain that does not verify."""

    tenant_id: str | None
    event_id: str
    timestamp: dt.datetime | None
    expected_hash: str | None
    actual_hash: str | None
    reason: str

    def describe(self) -> str:
        when = self.timestamp.isoformat() if self.timestamp else "unknown time"
        return (
            f"tenant {self.tenant_id or '(none)'}: event {self.event_id} at {when}: {self.reason} "
            f"(expected {self.expected_hash}, found {self.actual_hash})"
        )


@dataclasses.dataclass(frozen=True)
class ChainReport:
    """What a verification covered and what it found."""

    method: str
    checked: int
    tenants: int
    breaks: tuple[ChainBreak, ...]

    @property
    def intact(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> ChainBreak | None:
        """The earliest broken link over all tenants."""
        if not self.breaks:
            return None
        return min(self.breaks, key=lambda b: (b.timestamp is None, b.timestamp or dt.datetime.min, b.event_id))


class ChainVerifier:
    """Verifies the chain of every tenant with events in a window."""

    def __init__(self, reader: Reader, layout: Layout) -> None:
        if not layout.chain:
            raise ValueError(f"profile {layout.profile} has no audit hash chain (FraiseQL v2 does not chain events)")
        self.reader = reader
        self.layout = layout
        self.source = layout.events
        self.columns = layout.events.columns

    async def verify(
        self,
        start: dt.datetime | None,
        end: dt.datetime,
        *,
        tenants: list[str | None] | None = None,
        method: str = "auto",
    ) -> ChainReport:
        """Verify events from ``start`` (``None``: the beginning) to ``end``."""
        if method not in METHODS:
            raise ValueError(f"chain method must be one of {', '.join(METHODS)}, got {method!r}")
        if method == "auto":
            method = "sql" if await self.has_function() else "python"
        if tenants is None:
            tenants = await self.tenants(start, end)
        checked = 0
        breaks = []
        for tenant in tenants:
            if method == "sql":
                count, found = await self._verify_sql(tenant, start, end)
            else:
                count, found = await self._verify_python(tenant, start, end)
            checked += count
            if found is not None:
                breaks.append(found)
        return ChainReport(method=method, checked=checked, tenants=len(tenants), breaks=tuple(breaks))

    async def has_function(self) -> bool:
        rows = await self.reader.fetch(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE proname = $1"
            " AND pg_catalog.pg_function_is_visible(oid)) AS present",
            [self.layout.chain_function],
            what="chain function present",
            summary=lambda r: r[0]["present"],
        )
        return bool(rows[0]["present"])

    def _window(self, params: Params, start: dt.datetime | None, end: dt.datetime) -> list[str]:
        time = self.columns["timestamp"].sql
        parts = [f"{time} < {params.add(end)}"]
        if start is not None:
            parts.insert(0, f"{time} >= {params.add(start)}")
        return parts

    async def tenants(self, start: dt.datetime | None, end: dt.datetime) -> list[str | None]:
        """The tenants with events in the window (as far as the audit role can see)."""
        params = Params()
        tenant = self.columns["tenant_id"].sql
        sql = (
            f"SELECT DISTINCT {tenant} AS tenant_id FROM {self.source.relation}"
            f" WHERE {' AND '.join(self._window(params, start, end))} ORDER BY 1"
        )
        rows = await self.reader.fetch(sql, params.values, what="chain tenants", summary=lambda r: len(r))
        return [None if row["tenant_id"] is None else str(row["tenant_id"]) for row in rows]

    async def _verify_sql(
        self, tenant: str | None, start: dt.datetime | None, end: dt.datetime
    ) -> tuple[int, ChainBreak | None]:
        sql = (
            "SELECT event_id, event_timestamp, chain_valid, expected_hash, actual_hash, count(*) OVER () AS checked"
            f" FROM {self.layout.chain_function}($1, $2, $3)"
            " ORDER BY chain_valid, event_timestamp, event_id LIMIT 1"
        )
        rows = await self.reader.fetch(
            sql, [tenant, start, end], what="verify_audit_chain", summary=lambda r: [dict(x) for x in r]
        )
        if not rows:
            return 0, None
        row = rows[0]
        if row["chain_valid"]:
            return int(row["checked"]), None
        found = ChainBreak(
            tenant_id=tenant,
            event_id=str(row["event_id"]),
            timestamp=row["event_timestamp"],
            expected_hash=row["expected_hash"],
            actual_hash=row["actual_hash"],
            reason=f"{self.layout.chain_function} reports this link invalid",
        )
        return int(row["checked"]), found

    async def _anchor(self, tenant: str | None, start: dt.datetime) -> str | None:
        """The hash of the tenant's last event before ``start``: what the window's first event must follow."""
        params = Params()
        time, ident = self.columns["timestamp"].sql, self.columns["id"].sql
        who = condition(self.columns["tenant_id"], "tenant_id", tenant, params)
        sql = (
            f"SELECT {self.columns['event_hash'].sql} AS event_hash FROM {self.source.relation}"
            f" WHERE {who} AND {time} < {params.add(start)} ORDER BY {time} DESC, {ident} DESC LIMIT 1"
        )
        rows = await self.reader.fetch(sql, params.values, what="chain anchor", summary=lambda r: [dict(x) for x in r])
        return str(rows[0]["event_hash"]) if rows else None

    async def _verify_python(
        self, tenant: str | None, start: dt.datetime | None, end: dt.datetime
    ) -> tuple[int, ChainBreak | None]:
        expected_previous = await self._anchor(tenant, start) if start is not None else None
        params = Params()
        c = self.columns
        who = condition(c["tenant_id"], "tenant_id", tenant, params)
        sql = (
            f"SELECT {c['id'].sql} AS id, {c['timestamp'].sql} AS timestamp, {c['event_data'].sql} AS event_data,"
            f" {c['previous_hash'].sql} AS previous_hash, {c['event_hash'].sql} AS event_hash"
            f" FROM {self.source.relation} WHERE {who} AND {' AND '.join(self._window(params, start, end))}"
            f" ORDER BY {c['timestamp'].sql}, {c['id'].sql}"
        )
        checked = 0
        found: ChainBreak | None = None
        rows = self.reader.stream(sql, params.values, what="chain events", batch=2000)
        async with contextlib.aclosing(rows):
            async for row in rows:
                checked += 1
                data = row["event_data"]
                computed = event_hash(expected_previous, json.loads(data) if isinstance(data, str) else data)
                reason = None
                if row["previous_hash"] != expected_previous:
                    reason = "previous_hash does not point at the tenant's preceding event"
                    expected, actual = expected_previous, row["previous_hash"]
                elif computed != row["event_hash"]:
                    reason = "event_hash does not match the event's content"
                    expected, actual = computed, row["event_hash"]
                if reason is not None and found is None:
                    found = ChainBreak(
                        tenant_id=tenant,
                        event_id=str(row["id"]),
                        timestamp=row["timestamp"],
                        expected_hash=expected,
                        actual_hash=actual,
                        reason=reason,
                    )
                # Go on from the stored hash: every event is examined, the first break is reported.
                expected_previous = row["event_hash"]
        return checked, found
