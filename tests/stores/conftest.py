"""Stores under test: SQLite in a temporary folder, PostgreSQL in a schema of its own."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from fraiseql_checks.stores import Store
from fraiseql_checks.stores.postgres import PostgresStore
from fraiseql_checks.stores.sqlite import SQLiteStore
from tests.support.services import PG_DSN, require


def postgres_listening() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A DSN whose tables land in a fresh schema, dropped afterwards."""
    require(postgres_listening(), "PostgreSQL is not listening on 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE SCHEMA {schema}"))
    yield f"{PG_DSN}?search_path={schema}"
    asyncio.run(run(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """Makes (unopened) stores of one kind, all on the same data."""
    if request.param == "sqlite":
        return lambda: SQLiteStore(tmp_path / "results.db")
    dsn = request.getfixturevalue("pg_schema")
    return lambda: PostgresStore(dsn)


@pytest.fixture
def store(make_store: Callable[[], Store]) -> Store:
    return make_store()
