"""The metrics contract: every series the alert rules (alerts/) and dashboards (dashboards/) query exists.

FraiseQL's own series are looked up on the server's /metrics (set ``FRAISEQL_URL`` and,
for v2, ``FRAISEQL_METRICS_TOKEN``) or in Prometheus (``PROMETHEUS_URL``). Other names
(recording rules, ``fraiseql_check_*``, ``node_*``) need Prometheus; without it they
are reported as unchecked. Folders: ``[tool.fraiseql-checks.metrics_contract]``
``rules`` and ``dashboards``.
"""

from __future__ import annotations

import asyncio

import pytest

from fraiseql_checks import check, record
from fraiseql_checks.targets.contract import ContractError, cached_references, verify
from fraiseql_checks.trace import current


@check(interval="1h", severity="warning", tags=["metrics"], runbook="docs/runbooks/MetricsContractBroken.md")
async def check_metrics_contract(config, http):
    """Every series named in the alert rules and dashboards exists on the target (parsed PromQL, not grep)."""
    try:  # the files are parsed once per process, on a thread: no other check waits for it
        refs = await asyncio.to_thread(cached_references, config)
    except ContractError as exc:
        pytest.fail(str(exc), pytrace=False)
    if not refs:
        pytest.skip("no alert rule or dashboard queries a series (alerts/, dashboards/)")
    verdict = await verify(config, http, refs)
    record("series_referenced", len({r.name for r in refs}))
    record("series_missing", len({r.name for r in verdict.missing}))
    record("series_unchecked", len({r.name for r in verdict.unchecked}))
    unchecked = sorted({r.name for r in verdict.unchecked})
    current().extra["metrics_contract"] = {
        "sources": verdict.sources,
        "missing": sorted({r.name for r in verdict.missing}),
        "unchecked": unchecked,
        "unchecked_reason": "only Prometheus can confirm these names: set PROMETHEUS_URL" if unchecked else "",
    }
    if verdict.missing:
        pytest.fail(verdict.report(), pytrace=False)
