"""Building the dashboards: the six seed dashboards and one per check suite.

``generate`` collects the checks as a run would (the config's ``paths``) and renders
every dashboard: sorted keys, no timestamps, uids derived from each dashboard's
identity, so regenerating an unchanged project changes no byte. The plugin module
(``dashboards/plugin.py``) imports this one only when dashboards are built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fraiseql_checks.alerting.alerts import AlertSpec
from fraiseql_checks.config import Config, UsageError
from fraiseql_checks.dashboards.data import cache_performance, compliance_audit, database_health
from fraiseql_checks.dashboards.model import Dashboard, slug
from fraiseql_checks.dashboards.seed import Seed
from fraiseql_checks.dashboards.service import error_analysis, operations_overview, user_activity
from fraiseql_checks.dashboards.suites import PanelHintError, suite_dashboards
from fraiseql_checks.runbooks import runbook_base_url
from fraiseql_checks.targets.profiles import DEFAULT_PROFILE, PROFILES

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
    """The checks under the config's ``paths``, collected as every generator collects them."""
    from fraiseql_checks.generate import collect_checks as collect

    return collect(config).checks


def build(config: Config, checks: list[Check] | None = None, profile: str | None = None) -> dict[str, Dashboard]:
    """Every dashboard by file name (without ``.json``): the seed's six, then one per suite.

    The seed's six read FraiseQL's series, so they are built for ``profile`` (default: the
    configured target's); the suite dashboards read this tool's own metrics only.
    """
    from fraiseql_checks.targets.plugin import targets_of

    chosen = PROFILES[profile] if profile else targets_of(config).profile
    checks = collect_checks(config) if checks is None else checks
    alerts = {c.spec.alert.name: c.spec.alert for c in checks if isinstance(c.spec.alert, AlertSpec)}
    seed = Seed(chosen, config.threshold, alerts)
    dashboards = {name: make(seed) for name, make in SEED}
    base = runbook_base_url(config)
    try:
        suites = suite_dashboards(checks, base)
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
