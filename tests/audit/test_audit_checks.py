"""The shipped checks in checks/audit/, run by the real CLI against real audit tables."""

from __future__ import annotations

import datetime as dt
import random
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.audit.audit_db import (
    AuditDatabase,
    insert_v1,
    insert_v2,
    realistic_v1,
    realistic_v2,
    run,
    v2_event,
)

REPO = Path(__file__).resolve().parents[2]
CHECKS = "checks/audit/check_audit.py"
TENANT_A = "6c5b0d1e-0000-4000-8000-00000000000a"
TENANT_B = "6c5b0d1e-0000-4000-8000-00000000000b"


def ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)


def project(checkdir: Any, config: str = "") -> Any:
    """A project folder with the shipped audit checks; they get the real ``db`` fixture (``DATABASE_URL``)."""
    target = checkdir.path / CHECKS
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / CHECKS, target)
    if config:
        checkdir.write("fraiseql-checks.yaml", config)
    return checkdir


def outcomes(checkdir: Any, db: AuditDatabase, *args: str, dsn: str | None = None, **env: str) -> tuple[Any, dict]:
    result, report = checkdir.run_json(
        "checks", *args, env={"DATABASE_URL": dsn or db.dsn, "FRAISEQL_PROFILE": db.profile, **env}
    )
    by_name = {r["name"]: r for r in report["results"]}
    return result, by_name


def seed_v2(db: AuditDatabase, rows: list[dict[str, Any]]) -> None:
    run(db.with_conn(lambda conn: insert_v2(conn, rows)))


def normal_traffic(db: AuditDatabase) -> None:
    seed_v2(db, realistic_v2(random.Random(3), dt.datetime.now(dt.UTC), 200, [TENANT_A, TENANT_B], span=3600))


def test_quiet_v2_deployment_passes(v2: AuditDatabase, checkdir: Any) -> None:
    normal_traffic(v2)
    seed_v2(
        v2,
        [
            v2_event(
                ago(600),
                resource_type="user_roles",
                action="update",
                before={"roles": ["viewer"]},
                after={"roles": ["editor"]},
                tenant_id=TENANT_A,
            ),
            v2_event(ago(700), resource_type="admin_config", action="update", user_id="admin_1"),
        ],
    )
    result, by_name = outcomes(project(checkdir), v2)
    assert {name: r["outcome"] for name, r in by_name.items()} == {
        "check_audit_log_lag": "passed",
        "check_failed_logins": "passed",
        "check_permission_denied_spike": "passed",
        "check_admin_actions_attributed": "passed",
        "check_permission_changes_have_states": "passed",
        "check_audit_chain_intact": "skipped",
        "check_audit_writers": "skipped",
    }, result.stdout
    assert result.ret == 0
    assert by_name["check_admin_actions_attributed"]["values"] == {"admin_actions": 1, "unattributed_admin_actions": 0}
    assert by_name["check_permission_changes_have_states"]["values"]["permission_changes"] == 1
    assert 0 <= by_name["check_audit_log_lag"]["values"]["audit_lag_seconds"] < 600
    assert by_name["check_audit_log_lag"]["values"]["audit_write_delay_seconds"] == pytest.approx(0.05)
    evidence = by_name["check_failed_logins"]["audit"]
    assert evidence["facts"] == {"window_seconds": 300}
    (query,) = evidence["queries"]
    assert query["what"] == "peak" and query["read_only"] is True and query["rows"] == 0
    assert "LIKE ANY($3::text[])" in query["sql"] and query["params"][2] == ["%login%"]
    assert query["params"][3] == ["failure", "denied"]


def test_security_spikes_fail_with_who_and_where(v2: AuditDatabase, checkdir: Any) -> None:
    normal_traffic(v2)
    burst = [
        v2_event(
            ago(30 + 10 * i),
            user_id=f"user_{i % 2}",
            ip="198.51.100.7",
            resource_type="user",
            action="login",
            status="failure",
            error="bad password",
        )
        for i in range(12)
    ]
    denied = [
        v2_event(ago(20 + i), user_id="user_5", resource_type="invoices", action="read", status="denied")
        for i in range(6)
    ]
    seed_v2(v2, burst + denied)
    result, by_name = outcomes(project(checkdir), v2)
    assert result.ret == 1
    failed = by_name["check_failed_logins"]
    assert failed["outcome"] == "failed" and failed["values"] == {"failed_logins": 12}
    assert "12 failed logins within 5 minutes" in failed["message"]
    assert "user_0 (6), user_1 (6)" in failed["message"] and "198.51.100.7 (12)" in failed["message"]
    denied_result = by_name["check_permission_denied_spike"]
    assert denied_result["outcome"] == "failed" and denied_result["values"] == {"permission_denied_events": 6}
    assert "user_5 (6)" in denied_result["message"]
    result.fnmatch_lines(["*FAILED checks/audit/check_audit.py::check_failed_logins*12 failed logins*"])


def test_compliance_gaps_fail(v2: AuditDatabase, checkdir: Any) -> None:
    seed_v2(
        v2,
        [
            v2_event(ago(100), resource_type="admin_config", action="update", user_id=None, username=None),
            v2_event(ago(90), resource_type="admin_users", action="delete", user_id="", username=""),
            v2_event(ago(80), resource_type="admin_config", action="update", user_id="admin_7"),
            v2_event(ago(70), resource_type="user_roles", action="update", before=None, after={"roles": ["admin"]}),
            v2_event(ago(60), resource_type="permissions", action="grant", before={"p": []}, after={"p": ["x"]}),
            v2_event(ago(50), resource_type="user_roles", action="read"),  # a read is not a change
            v2_event(ago(40), written_after=8.5),
        ],
    )
    _result, by_name = outcomes(project(checkdir), v2)
    admin = by_name["check_admin_actions_attributed"]
    assert admin["outcome"] == "failed"
    assert admin["values"] == {"admin_actions": 3, "unattributed_admin_actions": 2}
    assert "2 admin actions without an actor" in admin["message"] and "admin_users_delete" in admin["message"]
    states = by_name["check_permission_changes_have_states"]
    assert states["outcome"] == "failed"
    assert states["values"] == {"permission_changes": 2, "permission_changes_without_state": 1}
    assert "user_roles_update" in states["message"]
    lag = by_name["check_audit_log_lag"]
    assert lag["outcome"] == "failed" and "written up to 8.5s late" in lag["message"]
    assert lag["values"]["audit_write_delay_seconds"] == pytest.approx(8.5)


def test_thresholds_and_patterns_come_from_the_config(v2: AuditDatabase, checkdir: Any) -> None:
    seed_v2(
        v2,
        [
            v2_event(ago(30 + i), event_type="auth_signin", resource_type="auth", action="signin", status="failure")
            for i in range(4)
        ],
    )
    config = """
        thresholds:
          audit.failed_logins_max: 3
        audit:
          patterns:
            failed_logins:
              event_type: "auth_sign*"
              status: "!success"
    """
    _result, by_name = outcomes(project(checkdir, config), v2, "-k", "failed_logins")
    assert by_name["check_failed_logins"]["outcome"] == "failed"
    assert "4 failed logins within 5 minutes" in by_name["check_failed_logins"]["message"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "audit:\n  patterns:\n    admin_actions:\n      actor: root\n",
            "ERROR: audit.patterns.admin_actions: audit_log has no field 'actor' (known: action, after_state, "
            "before_state, created_at, error_message, event_type, id, ip, ip_address, metadata, resource, "
            "resource_id, resource_type, status, tenant, tenant_id, time, timestamp, user, user_id, username)",
        ),
        (
            "audit:\n  patterns:\n    logins: {status: failure}\n",
            "ERROR: fraiseql-checks.yaml: audit: patterns: unknown pattern 'logins' (expected one of: "
            "failed_logins, permission_denied, admin_actions, permission_changes, data_access)",
        ),
        (
            "audit:\n  patterns:\n    data_access: {action: [read, '!list']}\n",
            "ERROR: fraiseql-checks.yaml: audit: patterns: data_access.action: mix of negated ('!') and plain "
            "values; negate all of them or none",
        ),
        (
            "audit:\n  tenant_setting: tenant\n",
            "ERROR: fraiseql-checks.yaml: audit: tenant_setting: expected a custom setting name such as "
            "'app.tenant_id', got 'tenant'",
        ),
    ],
)
def test_bad_audit_config_is_a_usage_error(v2: AuditDatabase, checkdir: Any, config: str, message: str) -> None:
    result = project(checkdir, config).run("checks", env={"DATABASE_URL": v2.dsn})
    assert result.ret == 4
    assert result.stderr.strip().splitlines() == [message]


def test_unexpected_writers_fail(v2: AuditDatabase, checkdir: Any) -> None:
    """Members of an allowed role may write; any other role that can is reported."""
    config = f"audit:\n  writer_roles: [{v2.auditor}]\n"
    checkdir = project(checkdir, config)
    intruder = f"fqc_intruder_{secrets.token_hex(3)}"
    run(v2.execute(f"CREATE ROLE {intruder} NOLOGIN"))
    try:
        run(v2.execute(f"GRANT INSERT, UPDATE ON audit_log TO {v2.reader_login}"))  # a member of the auditor role
        result, by_name = outcomes(checkdir, v2, "-k", "writers")
        assert by_name["check_audit_writers"]["outcome"] == "passed", result.stdout
        run(v2.execute(f"GRANT INSERT ON audit_log TO {intruder}"))
        run(v2.execute("GRANT TRUNCATE ON audit_log TO PUBLIC"))
        result, by_name = outcomes(checkdir, v2, "-k", "writers")
    finally:
        run(v2.execute(f"REVOKE ALL ON audit_log FROM {intruder}, {v2.reader_login}"))
        run(v2.execute("REVOKE TRUNCATE ON audit_log FROM PUBLIC"))
        run(v2.execute(f"DROP ROLE {intruder}"))
    writers = by_name["check_audit_writers"]
    assert writers["outcome"] == "failed"
    assert writers["message"] == f"unexpected writers of audit_log: may write: PUBLIC (TRUNCATE), {intruder} (INSERT)"
    assert writers["values"] == {"unexpected_audit_writers": 2}


def test_row_level_security_hides_other_tenants(v2: AuditDatabase, checkdir: Any) -> None:
    """Tenant B is under attack; a check scoped to tenant A, as a non-superuser, cannot see it."""
    normal_traffic(v2)
    seed_v2(
        v2,
        [
            v2_event(ago(20 + i), tenant_id=TENANT_B, resource_type="user", action="login", status="failure")
            for i in range(50)
        ],
    )
    config = f"audit:\n  role: {v2.auditor}\n  tenant_setting: fraiseql.tenant_id\n"
    checkdir = project(checkdir, config)
    args = ("-k", "failed_logins or admin")
    result, by_name = outcomes(checkdir, v2, *args, dsn=v2.reader_dsn, FRAISEQL_AUDIT_TENANT=TENANT_A)
    assert by_name["check_failed_logins"]["outcome"] == "passed", result.stdout
    assert by_name["check_failed_logins"]["values"] == {"failed_logins": 0}
    query = by_name["check_failed_logins"]["audit"]["queries"][0]
    assert (query["role"], query["tenant"], query["tenant_setting"]) == (v2.auditor, TENANT_A, "fraiseql.tenant_id")
    result, by_name = outcomes(checkdir, v2, *args, dsn=v2.reader_dsn, FRAISEQL_AUDIT_TENANT=TENANT_B)
    assert by_name["check_failed_logins"]["outcome"] == "failed"
    assert by_name["check_failed_logins"]["values"] == {"failed_logins": 50}


def test_rls_in_the_builder(v2: AuditDatabase) -> None:
    normal_traffic(v2)

    async def counts(audit: Any) -> tuple[int, int, int]:
        return (
            await audit.events().count(),
            await audit.events(tenant_id=TENANT_B).count(),
            await audit.changes().count(),
        )

    every = run(v2.with_conn(lambda c: c.fetchval("SELECT count(*) FROM audit_log WHERE tenant_id = $1", TENANT_A)))
    scoped = v2.use(counts, dsn=v2.reader_dsn, role=v2.auditor, tenant=TENANT_A)
    assert scoped == (every, 0, 0)
    assert v2.use(counts, dsn=v2.reader_dsn, role=v2.auditor)[0] == 0  # no tenant: the policy shows nothing

    async def login_only(audit: Any) -> int:
        return int(await audit.events().count())

    with pytest.raises(Exception, match="permission denied for table audit_log"):
        v2.use(login_only, dsn=v2.reader_dsn)  # the login role itself may read nothing: SET ROLE does it

    async def read_only(audit: Any) -> str:
        async with audit.reader.transaction() as conn:
            return str(await conn.fetchval("SHOW transaction_read_only"))

    assert v2.use(read_only, dsn=v2.reader_dsn, role=v2.auditor, tenant=TENANT_A) == "on"


def seed_v1(db: AuditDatabase, count: int = 120) -> None:
    rows = realistic_v1(random.Random(5), dt.datetime.now(dt.UTC), count, [TENANT_A, TENANT_B], span=1800)
    rows.append({"event_type": "system.start", "event_data": {"v": 1}, "timestamp": ago(900)})
    run(db.with_conn(lambda conn: insert_v1(conn, rows)))


def nth_event(db: AuditDatabase, tenant: str, n: int) -> str:
    sql = 'SELECT id FROM audit_events WHERE tenant_id = $1 ORDER BY "timestamp", id OFFSET $2 LIMIT 1'
    return str(run(db.with_conn(lambda c: c.fetchval(sql, tenant, n))))


@pytest.mark.parametrize("method", ["sql", "python"])
def test_v1_chain_intact_then_tampered(v1: AuditDatabase, checkdir: Any, method: str) -> None:
    seed_v1(v1)
    config = f"audit:\n  chain_method: {method}\nthresholds:\n  audit.max_lag_seconds: 3600\n"
    checkdir = project(checkdir, config)
    result, by_name = outcomes(checkdir, v1, "-k", "chain or lag")
    chain = by_name["check_audit_chain_intact"]
    assert chain["outcome"] == "passed", result.stdout
    assert chain["values"] == {"audit_chain_events_checked": 121, "audit_chain_broken_links": 0}
    assert by_name["check_audit_log_lag"]["outcome"] == "passed"
    victim = nth_event(v1, TENANT_B, 17)
    run(
        v1.execute(
            """UPDATE audit_events SET event_data = jsonb_set(event_data, '{title}', '"edited"')
                      WHERE id = $1""",
            victim,
        )
    )
    result, by_name = outcomes(checkdir, v1, "-k", "chain")
    chain = by_name["check_audit_chain_intact"]
    assert chain["outcome"] == "failed"
    assert f"tenant {TENANT_B}: event {victim} at " in chain["message"]
    assert chain["message"].startswith(f"audit hash chain broken ({method}): ")
    assert chain["values"]["audit_chain_broken_links"] == 1


def test_v1_lag_is_the_age_of_the_newest_event(v1: AuditDatabase, checkdir: Any) -> None:
    _, by_name = outcomes(project(checkdir), v1, "-k", "lag")
    assert by_name["check_audit_log_lag"]["outcome"] == "skipped"
    assert by_name["check_audit_log_lag"]["message"] == "the audit table holds no events yet"
    seed_v1(v1)  # the newest event is about 15 seconds old
    _result, by_name = outcomes(checkdir, v1, "-k", "lag")
    lag = by_name["check_audit_log_lag"]
    assert lag["outcome"] == "failed"
    first_line = lag["message"].splitlines()[0]
    assert first_line.startswith("the newest audit event is ") and first_line.endswith("s old, above 5s")
    assert lag["values"]["audit_lag_seconds"] > 5


def test_v1_deleted_event_breaks_the_next_link(v1: AuditDatabase) -> None:
    seed_v1(v1)
    gone, after = nth_event(v1, TENANT_A, 30), nth_event(v1, TENANT_A, 31)
    run(v1.execute("DELETE FROM audit_events WHERE id = $1", gone))

    async def verify(audit: Any) -> tuple[Any, Any]:
        return await audit.verify_chain(method="sql"), await audit.verify_chain(method="python")

    by_sql, by_python = v1.use(verify)
    for report in (by_sql, by_python):
        assert not report.intact
        (broken,) = report.breaks
        assert (broken.tenant_id, broken.event_id) == (TENANT_A, after)
    assert by_python.first_break.reason == "previous_hash does not point at the tenant's preceding event"
    assert by_sql.checked == by_python.checked == 120


# -- the real ``db`` fixture: no conftest overrides it in these project folders ------------------


def test_writers_without_pg_stat_statements_pass_with_a_note(v2: AuditDatabase, checkdir: Any) -> None:
    """The real fixture raises the missing view as a TargetError; the check still passes on privileges."""
    checkdir = project(checkdir, f"audit:\n  writer_roles: [{v2.auditor}]\n")
    assert not (checkdir.path / "conftest.py").exists()
    result, by_name = outcomes(checkdir, v2, "-k", "writers")
    writers = by_name["check_audit_writers"]
    assert writers["outcome"] == "passed", result.stdout
    assert writers["values"] == {"unexpected_audit_writers": 0}
    queries = {q["what"]: q for q in writers["audit"]["queries"]}
    assert queries["audit table writes"]["error"].startswith('UndefinedTableError: relation "pg_stat_statements"')


STREAM_CHECK = """
from fraiseql_checks import record


async def check_stream(audit):
    rows = [row async for row in audit.events().stream("id", "timestamp", batch=5)]
    record("streamed", len(rows))
"""


def test_stream_through_the_real_db_fixture(v2: AuditDatabase, checkdir: Any) -> None:
    seed_v2(v2, [v2_event(ago(10 + i)) for i in range(12)])
    checkdir.write("checks/check_stream.py", STREAM_CHECK)
    result, by_name = outcomes(checkdir, v2, "-k", "stream")
    stream = by_name["check_stream"]
    assert stream["outcome"] == "passed", result.stdout
    assert stream["values"] == {"streamed": 12}
    (query,) = stream["audit"]["queries"]
    assert query["rows"] == 12 and "error" not in query


def test_a_refused_stream_is_evidence_too(v2: AuditDatabase, checkdir: Any) -> None:
    """Logged in without the audit role the cursor is refused: the check fails and the evidence says why."""
    checkdir.write("checks/check_stream.py", STREAM_CHECK)
    result, by_name = outcomes(checkdir, v2, "-k", "stream", dsn=v2.reader_dsn)
    stream = by_name["check_stream"]
    assert stream["outcome"] == "failed", result.stdout
    assert "permission denied for table audit_log" in stream["message"]
    (query,) = stream["audit"]["queries"]
    assert query["error"] == "InsufficientPrivilegeError: permission denied for table audit_log"
    assert query["rows"] == 0


def test_v1_chain_in_python_records_the_streamed_events(v1: AuditDatabase, checkdir: Any) -> None:
    seed_v1(v1, count=30)
    checkdir = project(checkdir, "audit:\n  chain_method: python\n")
    result, by_name = outcomes(checkdir, v1, "-k", "chain")
    chain = by_name["check_audit_chain_intact"]
    assert chain["outcome"] == "passed", result.stdout
    assert chain["values"] == {"audit_chain_events_checked": 31, "audit_chain_broken_links": 0}
    streamed = [q for q in chain["audit"]["queries"] if q["what"] == "chain events"]
    assert len(streamed) == 3 and sum(q["rows"] for q in streamed) == 31  # two tenants and the tenantless events
