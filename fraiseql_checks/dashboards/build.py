"""Building the dashboards: the six seed dashboards and one per check suite.

``generate`` collects the checks as a run would (the config's ``paths``) and renders
every dashboard: sorted keys, no timestamps, uids derived from each dashboard's
identity, so regenerating an unchanged project changes no byte. The plugin module
(``dashboards/plugin.py``) imports this one only when dashboards are built.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from fraiseql_checks.config import Config, UsageError
from fraiseql_checks.dashboards.data import cache_performance, compliance_audit, database_health
from fraiseql_checks.dashboards.model import Dashboard, slug
from fraiseql_checks.dashboards.seed import Seed
from fraiseql_checks.dashboards.service import error_analysis, operations_overview, user_activity
from fraiseql_checks.dashboards.suites import PanelHintError, suite_dashboards
from fraiseql_checks.profiles import DEFAULT_PROFILE, PROFILES

if TYPE_CHECKING:
    from fraiseql_checks.checks import Check

FOLDER = "dashboards"
#: The seed's six dashboards, by file name, in the seed's order.
SEED: tuple[tuple[str, Callable[[Seed], Dashboard]], ...] = (
    ("operations-overview", operations_overview),
    ("cache-performance", cache_performance),
    ("database-health", database_health),
    ("error-analysis", error_analysis),
    ("user-activity", user_activity),
    ("compliance-audit", compliance_audit),
)
SUITE_PREFIX = "checks-"
_STASH_KEY = "dashboards.checks"


def collect_checks(config: Config) -> list[Check]:
    """The checks under the config's ``paths`` (none when there is no checks folder yet)."""
    cached = config.stash.get(_STASH_KEY)
    if isinstance(cached, list):
        return cached
    from fraiseql_checks.collect import RewriteCache
    from fraiseql_checks.session import Session

    session = Session(config)
    # only the checks' metadata is read, never their asserts: skip pytest's rewriter (0.3 ms an assert)
    session.collector.rewrite_cache = RewriteCache(None, rewrite=False)
    try:
        paths = session.args()
    except UsageError as exc:
        sys.stderr.write(f"note: {exc}; generating the FraiseQL dashboards only\n")
        paths = []
    checks, errors = session.collector.collect(paths) if paths else ([], [])
    if errors:
        first = errors[0]
        raise UsageError(f"{first.id}: {first.message} (dashboards are built from the checks: fix it first)")
    config.stash[_STASH_KEY] = checks
    return checks


def build(config: Config, checks: list[Check] | None = None, profile: str | None = None) -> dict[str, Dashboard]:
    """Every dashboard by file name (without ``.json``): the seed's six, then one per suite.

    The seed's six read FraiseQL's series, so they are built for ``profile`` (default: the
    configured target's); the suite dashboards read this tool's own metrics only.
    """
    from fraiseql_checks.targets import targets_of

    chosen = PROFILES[profile] if profile else targets_of(config).profile
    seed = Seed(chosen, config.threshold)
    dashboards = {name: make(seed) for name, make in SEED}
    base = config.get("dashboards").get("runbook_url") or ""
    try:
        suites = suite_dashboards(collect_checks(config) if checks is None else checks, base)
    except PanelHintError as exc:
        raise UsageError(str(exc)) from None
    for suite, dashboard in suites.items():
        name = SUITE_PREFIX + slug(suite)
        if name in dashboards:
            raise UsageError(f"suites {suite!r} and another both make {FOLDER}/{name}.json: rename one")
        dashboards[name] = dashboard
    return dashboards


def generate(config: Config) -> dict[str, str]:
    """The default profile's dashboards in ``dashboards/``; for every other profile, its
    own six FraiseQL dashboards in ``dashboards/<profile>/`` (as ``generate alerts`` lays
    out rule files), where the metrics contract of a target of that profile reads them."""
    files = {
        f"{FOLDER}/{name}.json": dashboard.to_json()
        for name, dashboard in build(config, profile=DEFAULT_PROFILE).items()
    }
    seed_names = {name for name, _ in SEED}
    for profile in sorted(set(PROFILES) - {DEFAULT_PROFILE}):
        for name, dashboard in build(config, profile=profile).items():
            if name in seed_names:
                files[f"{FOLDER}/{profile}/{name}.json"] = dashboard.to_json()
    return files
