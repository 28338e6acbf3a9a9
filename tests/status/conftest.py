"""The stores of ``tests/stores``: the uptime tests run on SQLite and PostgreSQL."""

from tests.stores.conftest import make_store, pg_schema, store

__all__ = ["make_store", "pg_schema", "store"]
