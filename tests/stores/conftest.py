"""Stores under test: SQLite in a temporary folder, PostgreSQL in a schema of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from fraiseql_checks.stores import Store
from fraiseql_checks.stores.postgres import PostgresStore
from fraiseql_checks.stores.sqlite import SQLiteStore
from tests.conftest import pg_schema
from tests.support.services import postgres_listening

# Re-exported for the suites that import the store fixtures from here.
__all__ = ["make_store", "pg_schema", "postgres_listening", "run", "store"]
T = TypeVar("T")


@pytest.fixture(params=["sqlite", "sqlite-writer-process", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """Makes (unopened) stores of one kind, all on the same data (SQLite writing on its
    thread, as the one-shot runner's store does, or in a process, as a watcher's)."""
    if request.param.startswith("sqlite"):
        apart = request.param == "sqlite-writer-process"
        return lambda: SQLiteStore(tmp_path / "results.db", writer_process=apart)
    dsn = request.getfixturevalue("pg_schema")
    return lambda: PostgresStore(dsn)


@pytest.fixture
def store(make_store: Callable[[], Store]) -> Store:
    return make_store()


def run(store: Store, body: Callable[[Store], Awaitable[T]]) -> T:
    """Open ``store``, await ``body(store)`` and close it again."""

    async def main() -> T:
        await store.open()
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())
