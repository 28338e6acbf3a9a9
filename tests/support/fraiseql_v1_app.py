"""A tiny real FraiseQL v1 application (run by Python 3.13 with fraiseql 1.9.16), for end-to-end tests.

Serves ``/graphql`` (one type, ``Item``, read from the view ``v_item``), ``/health``,
``/ready`` and ``/metrics``. ``DATABASE_URL`` names its database, which needs
``SCHEMA``. The application is built only under ``FRAISEQL_V1_APP=1`` (uvicorn),
so the test suite can import ``SCHEMA`` without fraiseql installed. No
``from __future__ import annotations``: FraiseQL reads the type hints at import.
"""

import os

SCHEMA = """
create table if not exists tb_item (id int primary key, name text not null);
insert into tb_item values (1, 'alpha'), (2, 'beta'), (3, 'gamma') on conflict do nothing;
create or replace view v_item as select id, jsonb_build_object('id', id, 'name', name) as data from tb_item;
"""

if os.environ.get("FRAISEQL_V1_APP") == "1":
    import fraiseql
    from fraiseql.fastapi import create_fraiseql_app
    from fraiseql.monitoring.metrics import MetricsConfig, setup_metrics

    @fraiseql.type(sql_source="v_item")
    class Item:
        id: int
        name: str

    @fraiseql.query
    async def items(info, limit: int = 10) -> list[Item]:  # type: ignore[no-untyped-def]
        return await info.context["db"].find("v_item", "items", info, limit=limit)

    app = create_fraiseql_app(database_url=os.environ["DATABASE_URL"], types=[Item], queries=[items], title="items")
    setup_metrics(app, MetricsConfig())
