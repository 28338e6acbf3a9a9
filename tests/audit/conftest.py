"""Databases with FraiseQL's audit tables on the real PostgreSQL, created per test session and dropped after."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import asyncpg
import pytest

from tests.audit.audit_db import (
    ADMIN_DSN,
    V1_INDEXES,
    V1_SCHEMA,
    V1_VERIFY,
    V2_INDEXES,
    V2_SCHEMA,
    AuditDatabase,
    create_database,
    drop_database,
    dsn_for,
    run,
)


def _roles(suffix: str) -> tuple[str, str]:
    return f"fqc_auditor_{suffix}", f"fqc_reader_{suffix}"


async def _create_roles(auditor: str, login: str) -> None:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f"CREATE ROLE {auditor} NOLOGIN")
        await admin.execute(f"CREATE ROLE {login} LOGIN NOINHERIT IN ROLE {auditor}")
    finally:
        await admin.close()


async def _drop_roles(*roles: str) -> None:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        for role in roles:
            await admin.execute(f"DROP ROLE IF EXISTS {role}")
    finally:
        await admin.close()


def _grants(auditor: str, *relations: str) -> str:
    statements = [f"GRANT USAGE ON SCHEMA public TO {auditor};"]
    statements += [f"GRANT SELECT ON {relation} TO {auditor};" for relation in relations]
    return "\n".join(statements)


@pytest.fixture(scope="session")
def audit_roles() -> Iterator[tuple[str, str]]:
    auditor, login = _roles(secrets.token_hex(4))
    run(_create_roles(auditor, login))
    yield auditor, login
    run(_drop_roles(login, auditor))


@pytest.fixture(scope="session")
def v2_database(audit_roles: tuple[str, str]) -> Iterator[AuditDatabase]:
    auditor, login = audit_roles
    name = f"fqc_audit_v2_{secrets.token_hex(4)}"
    rls = f"""
        GRANT USAGE ON SCHEMA core TO {auditor};
        ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON audit_log FOR SELECT
            USING (tenant_id = nullif(current_setting('fraiseql.tenant_id', true), '')::uuid);
        ALTER TABLE core.tb_entity_change_log ENABLE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON core.tb_entity_change_log FOR SELECT
            USING (tenant_id = nullif(current_setting('fraiseql.tenant_id', true), '')::uuid);
    """
    grants = _grants(auditor, "audit_log", "core.v_entity_change_log", "core.tb_entity_change_log")
    run(create_database(name, V2_SCHEMA, V2_INDEXES, grants, rls))
    yield AuditDatabase(name, dsn_for(name), "fraiseql-v2", auditor, login, ("audit_log", "core.tb_entity_change_log"))
    run(drop_database(name))


@pytest.fixture(scope="session")
def v1_database(audit_roles: tuple[str, str]) -> Iterator[AuditDatabase]:
    auditor, login = audit_roles
    name = f"fqc_audit_v1_{secrets.token_hex(4)}"
    grants = _grants(auditor, "audit_events") + f"\nGRANT EXECUTE ON FUNCTION verify_audit_chain TO {auditor};"
    run(create_database(name, V1_SCHEMA, V1_VERIFY, V1_INDEXES, grants))
    yield AuditDatabase(name, dsn_for(name), "fraiseql-v1", auditor, login, ("audit_events",))
    run(drop_database(name))


@pytest.fixture
def v2(v2_database: AuditDatabase) -> AuditDatabase:
    v2_database.reset()
    return v2_database


@pytest.fixture
def v1(v1_database: AuditDatabase) -> AuditDatabase:
    v1_database.reset()
    return v1_database
