"""Compliance over FraiseQL's audit trail: the seed's audit alerts and the auditor's assertions.

Every check reads the audit tables through the ``audit`` fixture: read-only, as the
configured role and tenant (docs/audit.md). Each evaluates a period: its own
default (5 minutes for the rate-like ones, a day for the others), or the
``--since`` of ``fraiseql-check audit report``. Thresholds are the seed's and
can be changed in the config, e.g. ``[tool.fraiseql-checks.thresholds]``
``"audit.failed_logins_max" = 20``.
"""

from __future__ import annotations

import datetime as dt

import pytest

from fraiseql_checks import check, record
from fraiseql_checks.audit import AuditUnsupported

FIVE_MINUTES = dt.timedelta(minutes=5)


async def _at_most_per_five_minutes(events, limit, value, what, by):
    """Fail when more than ``limit`` events fall within any 5 minutes, naming who was involved."""
    peak = await events.peak(FIVE_MINUTES)
    record(value, peak.count)
    if peak.count <= limit:
        return
    burst = events.between(peak.start, peak.start + FIVE_MINUTES + dt.timedelta(microseconds=1))
    involved = []
    for label, field in by.items():
        rows = await burst.top(3, field)
        involved.append(f"{label}: " + (", ".join(f"{row[field]} ({row['count']})" for row in rows) or "none"))
    pytest.fail(
        f"{peak.count} {what} within 5 minutes from {peak.start.isoformat()} (limit {limit:g}); " + "; ".join(involved),
        pytrace=False,
    )


@check(
    interval="30s",
    severity="warning",
    tags=["audit"],
    runbook="docs/runbooks/AuditLogLag.md",
    panel={"value": "audit_write_delay_seconds", "unit": "s", "thresholds": [5]},
)
async def check_audit_log_lag(audit, config):
    """Audit events are written within 5 seconds of happening (seed alert AuditLogLag)."""
    limit = config.threshold("audit.max_lag_seconds")
    lag = await audit.lag()
    if lag is not None:
        record("audit_lag_seconds", max(lag, 0.0))
    try:
        delay = await audit.write_delay(since=audit.window("5m"))
    except AuditUnsupported:
        # FraiseQL v1 keeps no write time: the age of the newest event is all there is.
        if lag is None:
            pytest.skip("the audit table holds no events yet")
        assert lag <= limit, f"the newest audit event is {lag:.1f}s old, above {limit:g}s"
        return
    record("audit_write_delay_seconds", delay.max_seconds or 0.0)
    assert delay.max_seconds is None or delay.max_seconds <= limit, (
        f"audit events written up to {delay.max_seconds:.1f}s late (average {delay.avg_seconds:.1f}s "
        f"over {delay.events} events), above {limit:g}s"
    )


@check(
    interval="1m",
    severity="critical",
    tags=["audit", "security"],
    runbook="docs/runbooks/HighFailedAuthAttempts.md",
    panel={"value": "failed_logins", "thresholds": [10]},
)
async def check_failed_logins(audit, config):
    """At most 10 failed logins within any 5 minutes (seed alert HighFailedAuthAttempts)."""
    await _at_most_per_five_minutes(
        audit.failed_logins().since(audit.window("5m")),
        config.threshold("audit.failed_logins_max"),
        "failed_logins",
        "failed logins",
        {"users": "user_id", "addresses": "ip_address"},
    )


@check(
    interval="1m",
    severity="critical",
    tags=["audit", "security"],
    runbook="docs/runbooks/UnauthorizedDataAccess.md",
    panel={"value": "permission_denied_events", "thresholds": [5]},
)
async def check_permission_denied_spike(audit, config):
    """No more than 5 permission-denied events within any 5 minutes (seed alert UnauthorizedDataAccess)."""
    await _at_most_per_five_minutes(
        audit.permission_denied().since(audit.window("5m")),
        config.threshold("audit.permission_denied_max"),
        "permission_denied_events",
        "permission-denied events",
        {"users": "user_id"},
    )


@check(
    interval="5m",
    severity="critical",
    tags=["audit", "compliance"],
    runbook="docs/runbooks/UnattributedAdminAction.md",
)
async def check_admin_actions_attributed(audit):
    """Every administrative action names the user who did it."""
    actions = audit.admin_actions().since(audit.window("24h"))
    record("admin_actions", await actions.count())
    unattributed = actions.unattributed()
    count = await unattributed.count()
    record("unattributed_admin_actions", count)
    if count:
        examples = await unattributed.limit(5).fetch("id", "timestamp", "event_type")
        listed = "; ".join(f"{e['event_type']} {e['id']} at {e['timestamp'].isoformat()}" for e in examples)
        pytest.fail(f"{count} admin actions without an actor: {listed}", pytrace=False)


@check(
    interval="5m",
    severity="warning",
    tags=["audit", "compliance"],
    runbook="docs/runbooks/PermissionChangeWithoutState.md",
)
async def check_permission_changes_have_states(audit):
    """Every change to roles or permissions records the state before and after it."""
    if "before_state" not in audit.layout.events.columns:
        pytest.skip(f"{audit.layout.events.display} ({audit.profile}) records no before and after state")
    changes = audit.permission_changes().since(audit.window("24h"))
    record("permission_changes", await changes.count())
    incomplete = changes.where_any(before_state=None, after_state=None)
    count = await incomplete.count()
    record("permission_changes_without_state", count)
    if count:
        examples = await incomplete.limit(5).fetch("id", "event_type", "user_id")
        listed = "; ".join(f"{e['event_type']} {e['id']} by {e['user_id']}" for e in examples)
        pytest.fail(f"{count} permission changes without before or after state: {listed}", pytrace=False)


@check(
    interval="10m",
    timeout="2m",
    severity="critical",
    tags=["audit", "compliance"],
    runbook="docs/runbooks/AuditChainBroken.md",
)
async def check_audit_chain_intact(audit):
    """The audit hash chain of every tenant verifies, link by link (FraiseQL v1)."""
    if not audit.layout.chain:
        pytest.skip(f"{audit.profile} does not chain audit events (only FraiseQL v1 does)")
    report = await audit.verify_chain(since=audit.window("1h"))
    record("audit_chain_events_checked", report.checked)
    record("audit_chain_broken_links", len(report.breaks))
    first = report.first_break
    if first is not None:
        others = f" ({len(report.breaks) - 1} other tenants broken too)" if len(report.breaks) > 1 else ""
        pytest.fail(f"audit hash chain broken ({report.method}): {first.describe()}{others}", pytrace=False)


@check(
    interval="1h",
    severity="critical",
    tags=["audit", "compliance"],
    runbook="docs/runbooks/UnexpectedAuditWriter.md",
)
async def check_audit_writers(audit):
    """Only the allowed database roles can write, or have written, the audit table."""
    if audit.writer_roles is None:
        pytest.skip("set audit.writer_roles in the config to the roles allowed to write the audit table")
    writers = await audit.writers(audit.writer_roles)
    record("unexpected_audit_writers", len(writers.unexpected))
    if writers.unexpected:
        can = [f"{w['role']} ({', '.join(w['privileges'])})" for w in writers.privileged if not w["allowed"]]
        did = [f"{w['role']} ({w['rows']} rows)" for w in writers.active or () if not w["allowed"]]
        parts = [f"may write: {', '.join(can)}"] if can else []
        parts += [f"wrote: {', '.join(did)}"] if did else []
        pytest.fail(f"unexpected writers of {audit.layout.events.display}: {'; '.join(parts)}", pytrace=False)
