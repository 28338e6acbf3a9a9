"""``/api/v1/slos``: every SLO's standing, as ``fraiseql-check slo --report-json`` gives it.

The SLOs are read as the command and watch mode's gauges read them (``slo.plugin``:
the checks' ``@check(slo=...)`` and the SLO files, for the configured profile) and
computed by the same ``slo.compute.statuses``: check SLOs from the watcher's result
store, request SLOs from the configured Prometheus. Each item is the command's
JSON for one SLO (``Status.to_json``): objective, period, SLI, error budget, burn
rate per window.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from fraiseql_checks.api import web
from fraiseql_checks.api.endpoint import (
    PAGINATION,
    PREFIX,
    TIME_PARAM,
    Access,
    APIError,
    Endpoint,
    Param,
    page_of,
    paginated,
    query_time,
    watcher_of,
)
from fraiseql_checks.config import Config
from fraiseql_checks.hookspec import hookimpl

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fraiseql_checks.checks import Check, CheckInfo
    from fraiseql_checks.slo.model import SLO
    from fraiseql_checks.watch.watcher import Watcher

NUMBER = {"type": ["number", "null"]}
BY_WINDOW = {"type": "object", "additionalProperties": NUMBER}
SLO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "objective", "period", "status", "sli", "error_budget", "burn_rates"],
    "properties": {
        "id": {"type": "string", "description": "service-name"},
        "name": {"type": "string"},
        "service": {"type": "string"},
        "source": {"type": "string"},
        "check": {"type": ["string", "null"]},
        "sli_kind": {"type": "string"},
        "error_ratio_query": {"type": "string"},
        "objective": {"type": "number"},
        "period": {"type": "string"},
        "period_start": {"type": "number", "description": "epoch seconds"},
        "period_seconds": {"type": "number"},
        "status": {"type": "string", "enum": ["ok", "exhausted", "unknown", "error"]},
        "error": {"type": ["string", "null"]},
        "note": {"type": ["string", "null"]},
        "sli": NUMBER,
        "good_seconds": NUMBER,
        "bad_seconds": NUMBER,
        "error_budget": {
            "type": "object",
            "properties": {
                "total_ratio": {"type": "number"},
                "total_seconds": {"type": "number"},
                "consumed_ratio": NUMBER,
                "remaining_ratio": NUMBER,
                "remaining_seconds": NUMBER,
            },
        },
        "error_ratios": BY_WINDOW,
        "burn_rates": BY_WINDOW,
        "fastest_burn": {
            "type": ["object", "null"],
            "properties": {"window": {"type": "string"}, "rate": {"type": "number"}},
        },
    },
}


def slos_of(config: Config, checks: Sequence[CheckInfo]) -> list[SLO]:
    """The SLOs of the watched checks and the SLO files, for the configured profile."""
    from fraiseql_checks.slo.plugin import for_profile
    from fraiseql_checks.slo.plugin import slos_of as read

    return for_profile(read(cast("list[Check]", list(checks)), config), config)


async def standing(watcher: Watcher, slos: Sequence[SLO], now: float) -> list[dict[str, Any]]:
    """Every SLO's JSON at ``now``, computed as ``fraiseql-check slo`` computes it."""
    from fraiseql_checks.slo.compute import statuses
    from fraiseql_checks.slo.model import CheckSLI
    from fraiseql_checks.targets.http import make_client
    from fraiseql_checks.targets.plugin import targets_of
    from fraiseql_checks.targets.prometheus import PrometheusClient

    targets = targets_of(watcher.config)
    needs_prom = any(not isinstance(slo.sli, CheckSLI) for slo in slos)
    async with make_client(watcher.config) as http:
        prom = None
        if needs_prom and targets.prometheus_url:
            prom = PrometheusClient(http, targets.prometheus_url, targets.prometheus_token)
        found = await statuses(slos, now, watcher.writer.store, prom)
    items = []
    for status in found:
        item = status.to_json()
        for key in ("error", "note"):
            if item[key]:
                item[key] = watcher.config.mask(item[key])
        items.append(item)
    return items


async def list_slos(request: Request) -> Response:
    import asyncio

    from fraiseql_checks.slo.model import SLOError

    watcher = watcher_of(request)
    now = query_time(request, "at", time.time())
    checks = list(watcher.session.checks)
    try:
        slos = await asyncio.to_thread(slos_of, watcher.config, checks)  # reads the SLO files
    except SLOError as exc:
        raise APIError(503, "slo_invalid", watcher.config.mask(str(exc))) from None
    return web.JSONResponse(page_of(request, await standing(watcher, slos, now)))


def endpoints() -> Sequence[Endpoint]:
    return [
        Endpoint(
            "GET",
            f"{PREFIX}/slos",
            list_slos,
            Access.READ,
            "Every SLO: SLI, error budget and burn rates, as `fraiseql-check slo` computes them",
            "listSLOs",
            "slos",
            params=(
                Param("at", "query", TIME_PARAM, "evaluate as of this time (RFC 3339 or epoch seconds)"),
                *PAGINATION,
            ),
            responses={
                200: ("a page of SLOs, the checks' first, then the files'", paginated(SLO_SCHEMA)),
                503: ("an SLO definition is invalid (the message says which)", None),
            },
        ),
    ]


@hookimpl
def fraiseql_api_endpoints(config: Config) -> Sequence[Endpoint]:
    return endpoints()
