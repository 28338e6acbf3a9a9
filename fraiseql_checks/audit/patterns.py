"""The ``audit`` fixture's value: the query builder's entry points and the common compliance patterns.

Patterns that select events (failed logins, permission-denied, admin actions,
permission changes, data access) are plain queries built from a filter per
profile, which the config can replace to match a deployment's event names;
they can be refined like any query. The others (audit lag, write delay, events
without actor, gaps in ``seq``, the v1 hash chain, who writes the audit table)
return small result objects.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import asyncpg

from fraiseql_checks.audit.chain import ChainReport, ChainVerifier
from fraiseql_checks.audit.layout import Layout, Source
from fraiseql_checks.audit.query import AuditQuery, Glob, Not, Params, as_seconds
from fraiseql_checks.audit.reader import Reader, record_value
from fraiseql_checks.errors import TargetError

#: The filters of the event-selecting patterns, per profile. FraiseQL v2 names an
#: event ``<resource_type>_<action>`` and gives it a status of success, failure or
#: denied; v1's event types are free-form, so its defaults are looser guesses that
#: a deployment should pin down in the config (``[tool.fraiseql-checks.audit.patterns]``).
#: Each profile has every pattern of ``layout.PATTERN_NAMES``, in that order.
DEFAULT_PATTERNS: dict[str, dict[str, dict[str, Any]]] = {
    "fraiseql-v2": {
        "failed_logins": {"event_type": Glob("*login*"), "status": ["failure", "denied"]},
        "permission_denied": {"status": "denied"},
        "admin_actions": {"event_type": Glob("admin*")},
        "permission_changes": {"resource_type": Glob("*role*", "*permission*"), "action": Not(["read", "list"])},
        "data_access": {"action": ["read", "list"]},
    },
    "fraiseql-v1": {
        "failed_logins": {"event_type": Glob("*login_failed*", "*failed_login*", "*login.failed*", "*login_failure*")},
        "permission_denied": {"event_type": Glob("*denied*", "*forbidden*", "*unauthorized*")},
        "admin_actions": {"event_type": Glob("admin*")},
        "permission_changes": {"event_type": Glob("*role*", "*permission*")},
        "data_access": {"event_type": Glob("*read*", "*access*")},
    },
}


class AuditUnsupported(Exception):
    """The profile's audit tables cannot answer this question (e.g. v1 has no write time)."""


@dataclasses.dataclass(frozen=True)
class WriteDelay:
    """How long events took to be written: ``created_at`` minus the event's own time."""

    max_seconds: float | None
    avg_seconds: float | None
    events: int


@dataclasses.dataclass(frozen=True)
class SeqGap:
    """Change-log sequence numbers missing between two rows."""

    after: int
    before: int

    @property
    def missing(self) -> int:
        return self.before - self.after - 1


@dataclasses.dataclass(frozen=True)
class Writers:
    """Who may write the audit table, and who did (when ``pg_stat_statements`` can tell)."""

    #: Roles holding INSERT, UPDATE, DELETE or TRUNCATE on it: ``{"role", "privileges", "allowed"}``.
    privileged: list[dict[str, Any]]
    #: Roles that ran statements writing rows to it, or ``None`` when that cannot be known.
    active: list[dict[str, Any]] | None
    #: Why ``active`` is missing or incomplete.
    note: str | None = None

    @property
    def unexpected(self) -> list[str]:
        """Roles that may write, or did write, without being an allowed writer."""
        found = [w["role"] for w in self.privileged if not w["allowed"]]
        found += [w["role"] for w in self.active or () if not w["allowed"]]
        return sorted(set(found))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


E = TypeVar("E", bound=BaseException)


def database_error(exc: BaseException, kind: type[E]) -> E | None:
    """The ``kind`` error behind ``exc``, or ``None``.

    asyncpg raises it as such; the ``db`` fixture raises a ``TargetError`` from it
    for faults of the target's schema (a missing table, column or privilege).
    """
    cause = exc.__cause__ if isinstance(exc, TargetError) else exc
    return cause if isinstance(cause, kind) else None


class Audit:
    """What the ``audit`` fixture gives a check."""

    def __init__(
        self,
        reader: Reader,
        layout: Layout,
        *,
        patterns: Mapping[str, Mapping[str, Any]] | None = None,
        window: float | None = None,
        chain_method: str = "auto",
        writer_roles: list[str] | None = None,
    ) -> None:
        self.reader = reader
        self.layout = layout
        self.scope = reader.scope
        self.patterns = {**DEFAULT_PATTERNS[layout.profile], **(patterns or {})}
        self._window = window
        self.chain_method = chain_method
        #: The roles allowed to write the audit table (``audit.writer_roles``), if configured.
        self.writer_roles = writer_roles

    @property
    def profile(self) -> str:
        return self.layout.profile

    # -- the builder's entry points ----------------------------------------------------

    def _query(self, source: Source, filters: Mapping[str, Any]) -> AuditQuery:
        query = AuditQuery(self.reader, source)
        return query.where(**filters) if filters else query

    def events(self, **filters: Any) -> AuditQuery:
        """A query over the audit events (``audit_log`` on v2, ``audit_events`` on v1)."""
        return self._query(self.layout.events, filters)

    def changes(self, **filters: Any) -> AuditQuery:
        """A query over the change log (``core.v_entity_change_log``, v2 only)."""
        if self.layout.changes is None:
            raise AuditUnsupported(f"profile {self.profile} has no change log (core.v_entity_change_log is v2)")
        return self._query(self.layout.changes, filters)

    def window(self, default: str | float | dt.timedelta) -> float:
        """The period a check evaluates, in seconds: ``default``, or the report's ``--since``."""
        seconds = self._window if self._window is not None else as_seconds(default)
        record_value("window_seconds", seconds)
        return seconds

    # -- event-selecting patterns ------------------------------------------------------

    def pattern(self, name: str) -> AuditQuery:
        """The events a named pattern selects (see ``DEFAULT_PATTERNS``)."""
        try:
            filters = self.patterns[name]
        except KeyError:
            raise ValueError(f"no audit pattern {name!r} (known: {', '.join(sorted(self.patterns))})") from None
        return self.events().matching(filters)

    def failed_logins(self) -> AuditQuery:
        """Failed or refused logins."""
        return self.pattern("failed_logins")

    def permission_denied(self) -> AuditQuery:
        """Requests refused for lack of permission."""
        return self.pattern("permission_denied")

    def admin_actions(self) -> AuditQuery:
        """Administrative actions."""
        return self.pattern("admin_actions")

    def permission_changes(self) -> AuditQuery:
        """Changes to roles and permissions."""
        return self.pattern("permission_changes")

    def data_access(self) -> AuditQuery:
        """Reads of data."""
        return self.pattern("data_access")

    async def failed_logins_per_user(self, since: str | float = "1h", top: int = 10) -> list[dict[str, Any]]:
        return await self.failed_logins().since(since).top(top, "user_id")

    async def failed_logins_per_ip(self, since: str | float = "1h", top: int = 10) -> list[dict[str, Any]]:
        return await self.failed_logins().since(since).top(top, "ip_address")

    async def data_access_per_user_and_resource(
        self, since: str | float = "24h", top: int = 20
    ) -> list[dict[str, Any]]:
        """Reads per user and resource type (per user and event type on v1)."""
        what = "resource_type" if "resource_type" in self.layout.events.columns else "event_type"
        return await self.data_access().since(since).top(top, "user_id", what)

    def unattributed(self, source: str = "events") -> AuditQuery:
        """Events that do not say who acted: no user id (events) or no actor type (change log)."""
        query = self.changes() if source == "changes" else self.events()
        return query.unattributed()

    # -- timing ------------------------------------------------------------------------

    async def lag(self) -> float | None:
        """Seconds from the newest audit event to now (database clock); ``None`` without events."""
        time = self.layout.events.columns[self.layout.events.time].sql
        row = await self.events().aggregate(
            f"extract(epoch FROM clock_timestamp() - max({time})) AS lag_seconds, max({time}) AS newest", "audit lag"
        )
        return _float(row["lag_seconds"])

    async def write_delay(self, since: str | float = "5m") -> WriteDelay:
        """How late events of the window were written (``created_at`` minus the event time)."""
        columns = self.layout.events.columns
        if "created_at" not in columns:
            raise AuditUnsupported(f"{self.layout.events.display} of {self.profile} has no write time (created_at)")
        delay = f"extract(epoch FROM {columns['created_at'].sql} - {columns[self.layout.events.time].sql})"
        try:
            row = (
                await self.events()
                .since(since)
                .aggregate(
                    f"max({delay}) AS max_seconds, avg({delay}) AS avg_seconds, count(*) AS events", "write delay"
                )
            )
        except Exception as exc:
            missing = database_error(exc, asyncpg.UndefinedColumnError)
            if missing is None:
                raise
            raise AuditUnsupported(f"{self.layout.events.display} has no created_at column here: {missing}") from None
        return WriteDelay(_float(row["max_seconds"]), _float(row["avg_seconds"]), int(row["events"]))

    # -- integrity ---------------------------------------------------------------------

    async def seq_gaps(self, since: str | float = "24h", limit: int = 100) -> list[SeqGap]:
        """Holes in the change log's ``seq`` over the window (v2).

        PostgreSQL sequences also skip numbers when a transaction rolls back, so a gap
        is a reason to look, not proof of a lost row.
        """
        query = self.changes().since(since)
        params = Params()
        seq = query.column_sql("seq")
        sql = (
            f"SELECT after, before FROM (SELECT {seq} AS after, lead({seq}) OVER (ORDER BY {seq}) AS before"
            f" FROM {query.source.relation}{query.where_sql(params)}) AS g"
            f" WHERE before > after + 1 ORDER BY after LIMIT {params.add(limit)}"
        )
        rows = await self.reader.fetch(sql, params.values, what="seq gaps", summary=lambda r: [dict(x) for x in r])
        return [SeqGap(int(r["after"]), int(r["before"])) for r in rows]

    async def verify_chain(
        self, since: str | float | None = None, *, method: str | None = None, tenants: list[str | None] | None = None
    ) -> ChainReport:
        """Verify the v1 hash chain of every tenant with events in the window (``None``: all of it).

        Under a configured tenant only that tenant's chain is verified.
        """
        verifier = ChainVerifier(self.reader, self.layout)
        end = dt.datetime.now(dt.UTC)
        start = None if since is None else end - dt.timedelta(seconds=as_seconds(since))
        if tenants is None and self.scope.tenant is not None:
            tenants = [self.scope.tenant]
        return await verifier.verify(start, end, tenants=tenants, method=method or self.chain_method)

    async def writers(self, allowed: list[str]) -> Writers:
        """Roles that can write the audit events table, and roles that did, against ``allowed``.

        Privileges come from the catalog; actual writes from ``pg_stat_statements``
        when it is loaded and the audit role may read it (``pg_read_all_stats``).
        Superusers are left out: nothing can take writing away from them.
        """
        table = self.layout.events.display
        member = (
            "(r.rolname = ANY($2::text[]) OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles g"
            " WHERE g.rolname = ANY($2::text[]) AND pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER')))"
        )
        privileges = (
            "SELECT coalesce(r.rolname, 'PUBLIC') AS role,"
            " array_agg(DISTINCT a.privilege_type ORDER BY a.privilege_type) AS privileges,"
            f" coalesce(bool_or({member}), false) AS allowed"
            " FROM pg_catalog.pg_class c"
            " CROSS JOIN LATERAL pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault('r', c.relowner))) a"
            " LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee"
            " WHERE c.oid = pg_catalog.to_regclass($1)"
            " AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')"
            " AND NOT coalesce(r.rolsuper, false)"
            " GROUP BY 1 ORDER BY 1"
        )
        rows = await self.reader.fetch(
            privileges, [table, allowed], what="audit table privileges", summary=lambda r: [dict(x) for x in r]
        )
        privileged = [{"role": r["role"], "privileges": list(r["privileges"]), "allowed": r["allowed"]} for r in rows]
        name = re.escape(table)
        statement = (
            r"^\s*(/\*.*?\*/\s*)*(insert\s+into|update|delete\s+from|truncate(\s+table)?|copy)\s+"
            rf'(only\s+)?("?[a-z_][a-z0-9_]*"?\.)?"?{name}"?([\s(;]|$)'
        )
        activity = (
            f"SELECT r.rolname AS role, sum(s.calls)::bigint AS calls, sum(s.rows)::bigint AS rows, {member} AS allowed"
            " FROM pg_stat_statements s JOIN pg_catalog.pg_roles r ON r.oid = s.userid"
            " WHERE s.query ~* $1 AND s.rows > 0 AND NOT r.rolsuper GROUP BY r.rolname, r.oid ORDER BY 1"
        )
        hidden = "SELECT count(*) AS hidden FROM pg_stat_statements WHERE query = '<insufficient privilege>'"
        note = None
        active: list[dict[str, Any]] | None
        try:
            found = await self.reader.fetch(
                activity, [statement, allowed], what="audit table writes", summary=lambda r: [dict(x) for x in r]
            )
            invisible = await self.reader.fetch(hidden, [], what="hidden statements", summary=lambda r: r[0]["hidden"])
        except Exception as exc:
            unreadable = database_error(exc, asyncpg.PostgresError)
            if unreadable is None:
                raise
            active = None
            note = f"pg_stat_statements cannot tell who wrote: {unreadable}".splitlines()[0]
        else:
            active = [
                {"role": r["role"], "calls": int(r["calls"]), "rows": int(r["rows"]), "allowed": r["allowed"]}
                for r in found
            ]
            if invisible[0]["hidden"]:
                note = (
                    f"{invisible[0]['hidden']} statements of other roles are hidden from the audit role: "
                    "grant it pg_read_all_stats"
                )
        return Writers(privileged=privileged, active=active, note=note)
