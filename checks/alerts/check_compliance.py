"""The seed's compliance alert (15): audit events written late.

FraiseQL exports nothing about its audit log; ``check_audit_log_lag``
(checks/audit/) measures it and watch mode exports the measure. On FraiseQL v2
that is the write delay (``created_at`` after ``timestamp``); v1 keeps no write
time, so its check measures the age of the newest event instead: the role
``{{audit_lag}}`` names the one of each profile. Which series it reads, and why:
docs/alert-rules.md.
"""

from __future__ import annotations

from fraiseql_checks import alert


@alert(
    expr="{{audit_lag}} > {{threshold}}",
    threshold=5,
    depends_on=["database"],
    severity="warning",
    summary="The audit log is {{ $value | humanizeDuration }} behind",
    description="The audit log is {{ $value | humanizeDuration }} behind (more than 5s), as {{ $labels.check }}"
    " measured (FraiseQL v2: how late events are written; v1: the age of the newest event)."
    " Check the audit logging system: it may be falling behind.",
    runbook="docs/runbooks/AuditLogLag.md",
)
def check_audit_log_lag():
    """Audit events are written more than 5 seconds after they happen (seed alert 15)."""
