"""The ``audit`` plugin: its config table and the ``audit`` fixture.

```toml
[tool.fraiseql-checks.audit]
role = "fraiseql_auditor"            # SET ROLE for every audit query (env FRAISEQL_AUDIT_ROLE)
tenant = "3f1c..."                   # scope to one tenant (env FRAISEQL_AUDIT_TENANT)
tenant_setting = "fraiseql.tenant_id"  # the setting your RLS policies read
writer_roles = ["fraiseql_app"]      # roles allowed to write the audit table
chain_method = "auto"                # v1 chain: auto, sql (verify_audit_chain) or python

[tool.fraiseql-checks.audit.patterns.failed_logins]
event_type = "auth_login*"           # '*' is a wildcard; a list means any of
status = ["failure", "denied"]       # "!success" would mean anything but success
```

The fixture uses the ``db`` fixture's pool (by name, so whichever ``db`` is in
force serves it) and never needs a superuser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fraiseql_checks.config import Config, Parser, Setting, UsageError, as_str, as_str_list, one_of, section
from fraiseql_checks.core.fixtures import fixture
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.stash import StashKey
from fraiseql_checks.targets.plugin import targets_of

if TYPE_CHECKING:
    from fraiseql_checks.audit.patterns import Audit

# The builder, the patterns and the chain are imported where they are used: every run
# registers this plugin, and most runs never ask for the ``audit`` fixture.

#: Where the ``audit report`` command puts the period the checks evaluate (seconds).
WINDOW_KEY = StashKey[float]("audit.window")
_GUC = r"[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*"
_ENV = {"role": "FRAISEQL_AUDIT_ROLE", "tenant": "FRAISEQL_AUDIT_TENANT"}


def _as_setting_name(value: Any) -> str:
    text = as_str(value)
    if not re.fullmatch(_GUC, text):
        raise ValueError(f"expected a custom setting name such as 'app.tenant_id', got {text!r}")
    return text


def _pattern_value(where: str, raw: Any) -> Any:
    """A config filter value: a string or a list; ``*`` is a wildcard, a leading ``!`` negates."""
    from fraiseql_checks.audit.query import Glob, Not

    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"{where}: expected a string or a list of strings, got {raw!r}")
    negated = {v.startswith("!") for v in values}
    if len(negated) > 1:
        raise ValueError(f"{where}: mix of negated ('!') and plain values; negate all of them or none")
    if True in negated:
        values = [v[1:] for v in values]
    globs = {"*" in v for v in values}
    if len(globs) > 1:
        raise ValueError(f"{where}: mix of wildcard and exact values; write them all with '*' or none")
    value: Any = Glob(*values) if True in globs else (values[0] if isinstance(raw, str) else values)
    return Not(value) if True in negated else value


def _as_patterns(value: Any) -> dict[str, dict[str, Any]]:
    """``{pattern: {field: "value" | ["a", "b*"] | "!read"}}``, for the event-selecting patterns."""
    from fraiseql_checks.audit.layout import PATTERN_NAMES

    if not isinstance(value, Mapping):
        raise ValueError(f"expected a table of patterns, got {value!r}")
    out: dict[str, dict[str, Any]] = {}
    for name, filters in value.items():
        if name not in PATTERN_NAMES:
            raise ValueError(f"unknown pattern {name!r} (expected one of: {', '.join(PATTERN_NAMES)})")
        if not isinstance(filters, Mapping) or not filters:
            raise ValueError(f"{name}: expected a table of field = value(s), got {filters!r}")
        out[name] = {field: _pattern_value(f"{name}.{field}", raw) for field, raw in filters.items()}
    return out


def _as_chain_method(value: Any) -> str:
    from fraiseql_checks.audit.chain import METHODS

    return one_of(*METHODS)(value)


AUDIT_SETTINGS = [
    Setting("role", as_str, help="role every audit query runs as (SET ROLE)", env=_ENV["role"]),
    Setting("tenant", as_str, help="tenant the audit queries are scoped to", env=_ENV["tenant"]),
    Setting("tenant_setting", _as_setting_name, help="setting the RLS policies read the tenant from"),
    Setting("writer_roles", as_str_list, help="database roles allowed to write the audit table"),
    Setting("chain_method", _as_chain_method, help="how the v1 hash chain is verified"),
    Setting("patterns", _as_patterns, help="event filters of the compliance patterns, per pattern"),
]


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addsetting(Setting("audit", section(AUDIT_SETTINGS), {}, "audit compliance checks: role, tenant, patterns"))


def audit_settings(config: Config) -> dict[str, Any]:
    """The ``audit`` table with the environment's values on top (the environment wins)."""
    values = dict(config.get("audit"))
    for name, env in _ENV.items():
        raw = config.environ.get(env)
        if raw:
            values[name] = raw
    values.setdefault("tenant_setting", "fraiseql.tenant_id")
    values.setdefault("chain_method", "auto")
    values.setdefault("patterns", {})
    values.setdefault("writer_roles", None)
    return values


@hookimpl
def fraiseql_configure(config: Config) -> None:
    """Check the pattern filters against the profile's columns before anything runs."""
    settings = audit_settings(config)
    if not settings["patterns"]:
        return
    from fraiseql_checks.audit.layout import layout_of
    from fraiseql_checks.audit.query import AuditQuery

    layout = layout_of(targets_of(config).profile.name)
    for name, filters in settings["patterns"].items():
        try:
            AuditQuery(reader=None, source=layout.events).matching(filters)  # type: ignore[arg-type]
        except ValueError as exc:
            raise UsageError(f"audit.patterns.{name}: {exc}") from None


@fixture(scope="session")
def audit(db: Any, config: Config) -> Audit:
    """Audit compliance queries over FraiseQL's audit tables (see docs/audit.md)."""
    from fraiseql_checks.audit.layout import layout_of
    from fraiseql_checks.audit.patterns import Audit
    from fraiseql_checks.audit.reader import Reader, Scope

    settings = audit_settings(config)
    scope = Scope(role=settings.get("role"), tenant=settings.get("tenant"), tenant_setting=settings["tenant_setting"])
    return Audit(
        Reader(db, scope),
        layout_of(targets_of(config).profile.name),
        patterns=settings["patterns"],
        window=config.stash.get(WINDOW_KEY),
        chain_method=settings["chain_method"],
        writer_roles=settings["writer_roles"],
    )
