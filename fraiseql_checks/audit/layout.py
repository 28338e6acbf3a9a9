"""Where FraiseQL keeps its audit trail: the fixed table and column names of each profile.

Every identifier the audit query builder writes into SQL comes from this module;
nothing a check, a config file or a filter value says ever becomes an identifier.
Field names users pass (``where(user_id=...)``) are looked up here and rejected
when unknown. The names are those of FraiseQL's own schemas (FRAISEQL.md):

- ``fraiseql-v2``: ``audit_log`` (events) and ``core.v_entity_change_log`` (one row
  per mutation, read through the view);
- ``fraiseql-v1``: ``audit_events`` with its per-tenant hash chain.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping


class Kind(enum.Enum):
    """What a column holds, which decides how a filter value is compared with it."""

    TEXT = "text"
    #: An identifier stored as ``uuid`` or as text depending on the deployment.
    ID = "id"
    #: An address stored as ``inet`` or as text.
    INET = "inet"
    TIME = "time"
    JSON = "json"
    NUMBER = "number"


@dataclasses.dataclass(frozen=True)
class Column:
    """One column: its quoted SQL identifier and its kind."""

    sql: str
    kind: Kind = Kind.TEXT


@dataclasses.dataclass(frozen=True)
class Source:
    """One audit relation of a profile and the logical names of its columns."""

    #: What users call it: ``events`` or ``changes``.
    name: str
    #: The relation, quoted (``"audit_log"``, ``"core"."v_entity_change_log"``).
    relation: str
    #: The unquoted name, for messages and catalog look-ups.
    display: str
    columns: Mapping[str, Column]
    #: The logical column holding the event time.
    time: str
    #: The logical column naming who acted (``None``: the source cannot tell).
    actor: str | None
    #: Short names accepted besides the column names, e.g. ``user`` for ``user_id``.
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def field(self, name: str) -> str:
        """The logical column for ``name`` (a column name or an alias); ``ValueError`` if none."""
        logical = self.aliases.get(name, name)
        if logical not in self.columns:
            known = ", ".join(sorted({*self.columns, *self.aliases}))
            raise ValueError(f"{self.display} has no field {name!r} (known: {known})")
        return logical

    def column(self, name: str) -> Column:
        return self.columns[self.field(name)]


@dataclasses.dataclass(frozen=True)
class Layout:
    """The audit relations of one FraiseQL profile."""

    profile: str
    events: Source
    #: The per-mutation change log (v2 only).
    changes: Source | None = None
    #: Whether events carry a per-tenant hash chain (v1).
    chain: bool = False
    #: The SQL function verifying the chain, when the deployment has it.
    chain_function: str | None = None


#: The event-selecting compliance patterns (their filters per profile are in ``patterns.DEFAULT_PATTERNS``).
#: Here so the config can check pattern names without importing the query code and asyncpg.
PATTERN_NAMES = ("failed_logins", "permission_denied", "admin_actions", "permission_changes", "data_access")

_COMMON_ALIASES = {
    "user": "user_id",
    "tenant": "tenant_id",
    "ip": "ip_address",
    "time": "timestamp",
}

V2_EVENTS = Source(
    name="events",
    relation='"audit_log"',
    display="audit_log",
    columns={
        "id": Column('"id"', Kind.ID),
        "timestamp": Column('"timestamp"', Kind.TIME),
        "event_type": Column('"event_type"'),
        "user_id": Column('"user_id"', Kind.ID),
        "username": Column('"username"'),
        "ip_address": Column('"ip_address"', Kind.INET),
        "resource_type": Column('"resource_type"'),
        "resource_id": Column('"resource_id"', Kind.ID),
        "action": Column('"action"'),
        "before_state": Column('"before_state"', Kind.JSON),
        "after_state": Column('"after_state"', Kind.JSON),
        "status": Column('"status"'),
        "error_message": Column('"error_message"'),
        "tenant_id": Column('"tenant_id"', Kind.ID),
        "metadata": Column('"metadata"', Kind.JSON),
        "created_at": Column('"created_at"', Kind.TIME),
    },
    time="timestamp",
    actor="user_id",
    aliases={**_COMMON_ALIASES, "resource": "resource_type"},
)

V2_CHANGES = Source(
    name="changes",
    relation='"core"."v_entity_change_log"',
    display="core.v_entity_change_log",
    columns={
        "pk_entity_change_log": Column('"pk_entity_change_log"', Kind.NUMBER),
        "object_type": Column('"object_type"'),
        "modification_type": Column('"modification_type"'),
        "object_id": Column('"object_id"', Kind.ID),
        "tenant_id": Column('"tenant_id"', Kind.ID),
        "duration_ms": Column('"duration_ms"', Kind.NUMBER),
        "started_at": Column('"started_at"', Kind.TIME),
        "trace_id": Column('"trace_id"'),
        "actor_type": Column('"actor_type"'),
        "acting_for": Column('"acting_for"', Kind.ID),
        "seq": Column('"seq"', Kind.NUMBER),
        "created_at": Column('"created_at"', Kind.TIME),
        "data": Column('"data"', Kind.JSON),
    },
    time="created_at",
    actor="actor_type",
    aliases={
        "tenant": "tenant_id",
        "time": "created_at",
        "resource": "object_type",
        "resource_type": "object_type",
        "resource_id": "object_id",
        "action": "modification_type",
    },
)

V1_EVENTS = Source(
    name="events",
    relation='"audit_events"',
    display="audit_events",
    columns={
        "id": Column('"id"', Kind.ID),
        "event_type": Column('"event_type"'),
        "event_data": Column('"event_data"', Kind.JSON),
        "user_id": Column('"user_id"', Kind.ID),
        "tenant_id": Column('"tenant_id"', Kind.ID),
        "timestamp": Column('"timestamp"', Kind.TIME),
        "ip_address": Column('"ip_address"', Kind.INET),
        "previous_hash": Column('"previous_hash"'),
        "event_hash": Column('"event_hash"'),
        "signature": Column('"signature"'),
    },
    time="timestamp",
    actor="user_id",
    aliases=_COMMON_ALIASES,
)

LAYOUTS: dict[str, Layout] = {
    "fraiseql-v2": Layout(profile="fraiseql-v2", events=V2_EVENTS, changes=V2_CHANGES),
    "fraiseql-v1": Layout(profile="fraiseql-v1", events=V1_EVENTS, chain=True, chain_function="verify_audit_chain"),
}


def layout_of(profile: str) -> Layout:
    try:
        return LAYOUTS[profile]
    except KeyError:
        raise ValueError(f"no audit layout for profile {profile!r} (known: {', '.join(LAYOUTS)})") from None
