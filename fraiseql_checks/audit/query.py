"""The audit query builder: immutable, chainable queries over one audit source.

``audit.events().since("24h").where(status="denied").group_by("user_id")`` builds
its SQL from the profile's fixed identifiers (``layout``) and passes every value
as an asyncpg parameter (``$1``, ``$2``, ...). Each method returns a new query,
so a query can be kept and refined without surprises; the ``async`` methods run it.

Filter values:

- a plain value compares for equality; a list, tuple or set means "any of";
- ``None`` means SQL ``NULL``; ``MISSING`` means ``NULL`` or the empty string;
- ``Glob("admin_*")`` matches with ``*`` as a wildcard (``LIKE``, escaped);
- ``Not(value)`` is everything the value does not match, ``NULL`` included.

Identifier columns (``user_id``, ``tenant_id``, ...) are ``uuid`` in some
deployments and text in others, and ``ip_address`` is ``inet`` or text: a value
that is not a valid UUID or address is compared as text, so it matches nothing
instead of failing, and stays a parameter.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import ipaddress
import json
import uuid
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from fraiseql_checks.audit.layout import Column, Kind, Source
from fraiseql_checks.audit.reader import EVIDENCE_ROWS, Reader
from fraiseql_checks.durations import parse_duration

#: ``date_bin`` needs an origin; buckets line up on whole minutes and hours from it.
BUCKET_ORIGIN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: Matches ``NULL`` and the empty string: "no value was recorded".
MISSING: Any = _Missing()


@dataclasses.dataclass(frozen=True)
class Glob:
    """One or more patterns where ``*`` matches any run of characters."""

    patterns: tuple[str, ...]

    def __init__(self, *patterns: str) -> None:
        if not patterns or not all(isinstance(p, str) for p in patterns):
            raise ValueError("Glob needs at least one pattern string")
        object.__setattr__(self, "patterns", tuple(patterns))

    def like(self) -> list[str]:
        """The patterns for SQL ``LIKE``: ``%``, ``_`` and ``\\`` escaped, ``*`` turned into ``%``."""
        out = []
        for pattern in self.patterns:
            escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            out.append(escaped.replace("*", "%"))
        return out


@dataclasses.dataclass(frozen=True)
class Not:
    """Everything that does not match ``value`` (rows where the field is ``NULL`` included)."""

    value: Any


@dataclasses.dataclass(frozen=True)
class Peak:
    """The busiest sliding window: how many events, and when it started (``None``: no events)."""

    count: int
    start: dt.datetime | None


class Params:
    """Collects the parameters of one statement and hands out their ``$n`` placeholders."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def as_time(value: dt.datetime | str) -> dt.datetime:
    """A timezone-aware time from a datetime (naive means UTC) or an ISO 8601 string."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected an ISO 8601 time such as 2026-01-31T12:00:00Z, got {value!r}") from None
    if not isinstance(value, dt.datetime):
        raise ValueError(f"expected a datetime or an ISO 8601 string, got {value!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def as_seconds(value: str | float | dt.timedelta) -> float:
    """Seconds in a duration such as ``"24h"``, a number of seconds, or a timedelta."""
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    else:
        seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration longer than zero, got {value!r}")
    return seconds


def _valid_id(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _valid_inet(text: str) -> bool:
    try:
        ipaddress.ip_interface(text)
    except ValueError:
        return False
    return True


_VALIDATORS = {Kind.ID: _valid_id, Kind.INET: _valid_inet}


def _scalar(column: Column, value: Any, field: str) -> Any:
    if column.kind is Kind.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{field} compares with whole numbers, got {value!r}")
        return value
    if column.kind is Kind.TIME:
        return as_time(value)
    if isinstance(value, (dict, list)):
        raise ValueError(f"{field} compares with a single value, got {value!r}")
    return str(value)


def condition(column: Column, field: str, value: Any, params: Params) -> str:
    """The SQL condition for ``field`` matching ``value``; values go to ``params``."""
    sql = column.sql
    if isinstance(value, Not):
        return f"({condition(column, field, value.value, params)}) IS NOT TRUE"
    if value is None:
        return f"{sql} IS NULL"
    if value is MISSING:
        return f"({sql} IS NULL OR {sql}::text = '')"
    if column.kind is Kind.JSON:
        raise ValueError(f"{field} holds JSON: filter it with None, MISSING or Not(None)")
    if isinstance(value, Glob):
        return f"{sql}::text LIKE ANY({params.add(value.like())}::text[])"
    validator = _VALIDATORS.get(column.kind)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_scalar(column, item, field) for item in value]
        if not items:
            return "false"
        if any(item is None for item in items):
            raise ValueError(f"{field}: use None on its own, not inside a list")
        if validator is not None and not all(validator(item) for item in items):
            return f"{sql}::text = ANY({params.add(items)}::text[])"
        return f"{sql} = ANY({params.add(items)})"
    item = _scalar(column, value, field)
    if validator is not None and not validator(item):
        return f"{sql}::text = {params.add(item)}"
    return f"{sql} = {params.add(item)}"


def _normalize(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if column.kind is Kind.JSON and isinstance(value, str):
        return json.loads(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return str(value.ip) if value.network.prefixlen == value.max_prefixlen else str(value)
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    return value


@dataclasses.dataclass(frozen=True)
class AuditQuery:
    """A query over one audit source; every refinement returns a new query."""

    reader: Reader
    source: Source
    filters: tuple[tuple[str, Any], ...] = ()
    #: Groups of filters of which at least one must match (``where_any``).
    any_of: tuple[tuple[tuple[str, Any], ...], ...] = ()
    #: The window start: seconds before "now" (resolved when the query runs) or a time.
    start: float | dt.datetime | None = None
    end: dt.datetime | None = None
    order: tuple[str, bool] | None = None
    max_rows: int | None = None

    # -- refining ----------------------------------------------------------------------

    def since(self, duration: str | float | dt.timedelta) -> AuditQuery:
        """Only events of the last ``duration`` (``"24h"``, ``"5m"``, seconds, a timedelta)."""
        return dataclasses.replace(self, start=as_seconds(duration), end=None)

    def between(self, start: dt.datetime | str, end: dt.datetime | str) -> AuditQuery:
        """Only events from ``start`` (included) to ``end`` (excluded); naive times are UTC."""
        first, last = as_time(start), as_time(end)
        if last <= first:
            raise ValueError(f"between: the end ({last.isoformat()}) must come after the start ({first.isoformat()})")
        return dataclasses.replace(self, start=first, end=last)

    def _checked(self, fields: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
        added = []
        for name, value in fields.items():
            field = self.source.field(name)
            if field == self.source.time:
                raise ValueError(f"filter the time with since() or between(), not where({name}=...)")
            condition(self.source.columns[field], field, value, Params())  # validate now, not when it runs
            added.append((field, value))
        return tuple(added)

    def where(self, **fields: Any) -> AuditQuery:
        """Only events whose fields all match, e.g. ``where(status="denied", user_id=MISSING)``."""
        return dataclasses.replace(self, filters=(*self.filters, *self._checked(fields)))

    def where_any(self, **fields: Any) -> AuditQuery:
        """Only events matching at least one of ``fields``, e.g. ``where_any(before_state=None, after_state=None)``."""
        if not fields:
            raise ValueError("where_any needs at least one field")
        return dataclasses.replace(self, any_of=(*self.any_of, self._checked(fields)))

    def matching(self, fields: Mapping[str, Any]) -> AuditQuery:
        """``where(**fields)`` for a mapping (the shape of the pattern settings)."""
        return self.where(**dict(fields))

    def order_by(self, field: str, descending: bool = True) -> AuditQuery:
        return dataclasses.replace(self, order=(self.source.field(field), descending))

    def limit(self, rows: int) -> AuditQuery:
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ValueError(f"limit must be a whole number of at least 1, got {rows!r}")
        return dataclasses.replace(self, max_rows=rows)

    def unattributed(self) -> AuditQuery:
        """Only events that do not say who acted (no user id, or no actor type)."""
        if self.source.actor is None:
            raise ValueError(f"{self.source.display} does not record who acted")
        return self.where(**{self.source.actor: MISSING})

    # -- SQL ---------------------------------------------------------------------------

    def window(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The absolute time window this query covers right now."""
        start = self.start
        if isinstance(start, float):
            start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=start)
        return start, self.end

    def where_sql(self, params: Params) -> str:
        """The ``WHERE`` clause (with its leading keyword), or an empty string."""
        time = self.source.columns[self.source.time].sql
        parts = []
        start, end = self.window()
        if start is not None:
            parts.append(f"{time} >= {params.add(start)}")
        if end is not None:
            parts.append(f"{time} < {params.add(end)}")
        for field, value in self.filters:
            parts.append(condition(self.source.columns[field], field, value, params))
        for group in self.any_of:
            either = [condition(self.source.columns[field], field, value, params) for field, value in group]
            parts.append(f"({' OR '.join(either)})")
        return f" WHERE {' AND '.join(parts)}" if parts else ""

    def column_sql(self, field: str) -> str:
        return self.source.column(field).sql

    def select_sql(self, params: Params, fields: tuple[str, ...] = ()) -> str:
        names = [self.source.field(f) for f in fields] or list(self.source.columns)
        columns = ", ".join(f'{self.source.columns[n].sql} AS "{n}"' for n in names)
        order_field, descending = self.order or (self.source.time, True)
        order = f"{self.source.columns[order_field].sql} {'DESC' if descending else 'ASC'}"
        sql = f"SELECT {columns} FROM {self.source.relation}{self.where_sql(params)} ORDER BY {order}"
        if self.max_rows is not None:
            sql += f" LIMIT {params.add(self.max_rows)}"
        return sql

    def _row(self, record: Any) -> dict[str, Any]:
        columns = self.source.columns
        return {key: _normalize(columns[key], value) if key in columns else value for key, value in record.items()}

    # -- running -----------------------------------------------------------------------

    async def count(self) -> int:
        """How many events match."""
        params = Params()
        sql = f"SELECT count(*) AS count FROM {self.source.relation}{self.where_sql(params)}"
        rows = await self.reader.fetch(sql, params.values, what="count", summary=lambda r: dict(r[0]))
        return int(rows[0]["count"])

    async def fetch(self, *fields: str) -> list[dict[str, Any]]:
        """The matching events (all fields, or only ``fields``), newest first unless ``order_by`` says otherwise."""
        params = Params()
        sql = self.select_sql(params, fields)
        rows = await self.reader.fetch(sql, params.values, what="fetch")
        return [self._row(row) for row in rows]

    async def first(self, *fields: str) -> dict[str, Any] | None:
        """The newest matching event (or the first in ``order_by`` order), or ``None``."""
        rows = await dataclasses.replace(self, max_rows=1).fetch(*fields)
        return rows[0] if rows else None

    async def stream(self, *fields: str, batch: int = 1000) -> AsyncGenerator[dict[str, Any], None]:
        """The matching events one at a time, through a server-side cursor (for large results).

        Oldest first unless ``order_by`` says otherwise. To stop early, iterate inside
        ``contextlib.aclosing(query.stream())`` so the cursor closes at once.
        """
        query = self if self.order is not None else dataclasses.replace(self, order=(self.source.time, False))
        params = Params()
        sql = query.select_sql(params, fields)
        rows = self.reader.stream(sql, params.values, what="stream", batch=batch)
        async with contextlib.aclosing(rows):
            async for row in rows:
                yield self._row(row)

    async def group_by(self, *fields: str, top: int | None = None) -> list[dict[str, Any]]:
        """Counts per distinct value of ``fields``, largest first: ``[{"user_id": ..., "count": 12}, ...]``."""
        if not fields:
            raise ValueError("group_by needs at least one field")
        names = [self.source.field(f) for f in fields]
        params = Params()
        selected = ", ".join(f'{self.source.columns[n].sql} AS "{n}"' for n in names)
        positions = ", ".join(str(i + 1) for i in range(len(names)))
        sql = (
            f"SELECT {selected}, count(*) AS count FROM {self.source.relation}{self.where_sql(params)}"
            f" GROUP BY {positions} ORDER BY count DESC, {positions}"
        )
        if top is not None:
            sql += f" LIMIT {params.add(top)}"
        rows = await self.reader.fetch(
            sql, params.values, what="group_by", summary=lambda r: [dict(x) for x in r[:EVIDENCE_ROWS]]
        )
        return [self._row(row) for row in rows]

    async def top(self, n: int, *fields: str) -> list[dict[str, Any]]:
        """The ``n`` most frequent values of ``fields`` with their counts."""
        return await self.group_by(*fields, top=n)

    async def buckets(self, size: str | float | dt.timedelta) -> list[dict[str, Any]]:
        """Counts per time bucket of ``size`` (``"1m"``, ``"1h"``), oldest first; empty buckets are left out."""
        params = Params()
        stride = params.add(dt.timedelta(seconds=as_seconds(size)))
        origin = params.add(BUCKET_ORIGIN)
        time = self.source.columns[self.source.time].sql
        sql = (
            f"SELECT date_bin({stride}::interval, {time}, {origin}::timestamptz) AS bucket, count(*) AS count"
            f" FROM {self.source.relation}{self.where_sql(params)} GROUP BY 1 ORDER BY 1"
        )
        rows = await self.reader.fetch(
            sql, params.values, what="buckets", summary=lambda r: [dict(x) for x in r[:EVIDENCE_ROWS]]
        )
        return [{"bucket": row["bucket"], "count": int(row["count"])} for row in rows]

    async def peak(self, window: str | float | dt.timedelta) -> Peak:
        """The most events within any ``window`` (a sliding window starting at each event)."""
        params = Params()
        span = params.add(dt.timedelta(seconds=as_seconds(window)))
        time = self.source.columns[self.source.time].sql
        sql = (
            f"SELECT start, count FROM (SELECT {time} AS start, count(*) OVER (ORDER BY {time}"
            f" RANGE BETWEEN CURRENT ROW AND {span}::interval FOLLOWING) AS count"
            f" FROM {self.source.relation}{self.where_sql(params)}) AS w ORDER BY count DESC, start LIMIT 1"
        )
        rows = await self.reader.fetch(sql, params.values, what="peak", summary=lambda r: [dict(x) for x in r])
        if not rows:
            return Peak(0, None)
        return Peak(int(rows[0]["count"]), rows[0]["start"])

    async def aggregate(self, select: str, what: str) -> dict[str, Any]:
        """One row of aggregates over the matching events.

        ``select`` is built by the patterns from this module's identifiers only,
        never from user input.
        """
        params = Params()
        sql = f"SELECT {select} FROM {self.source.relation}{self.where_sql(params)}"
        rows = await self.reader.fetch(sql, params.values, what=what, summary=lambda r: dict(r[0]))
        return dict(rows[0])

    def sql(self) -> tuple[str, list[Any]]:
        """The statement ``fetch()`` would run now, and its parameters (for reading, not running)."""
        params = Params()
        return self.select_sql(params), params.values
