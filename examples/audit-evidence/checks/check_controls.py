"""The company's own audit controls, beside the shipped audit suite."""

from fraiseql_checks import check, record
from fraiseql_checks.audit import MISSING


@check(interval="5m", severity="critical", tags=["audit", "sox"], runbook="https://wiki.example.com/controls/C-12")
async def check_deletes_are_attributed(audit):
    """C-12: every deletion names the user who made it."""
    deletes = audit.events(action="delete").since(audit.window("24h"))
    unattributed = await deletes.where(user_id=MISSING).count()
    record("unattributed_deletes", unattributed)
    assert unattributed == 0, f"{unattributed} deletions without a user"


@check(interval="1h", severity="warning", tags=["audit", "sox"], runbook="https://wiki.example.com/controls/C-07")
async def check_no_failed_exports(audit):
    """C-07: data exports never fail silently: every failed export is investigated."""
    failed = await audit.events(action="export").since(audit.window("24h")).where(status="failure").count()
    record("failed_exports", failed)
    assert failed == 0, f"{failed} failed exports"
