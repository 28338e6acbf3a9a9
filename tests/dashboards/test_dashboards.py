"""Generated dashboards: Grafana's schema, parsing PromQL, real metric names, the seed's panels, determinism."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from fraiseql_checks import metrics as m
from fraiseql_checks.dashboards.build import SEED
from fraiseql_checks.dashboards.model import Dashboard, thresholds_for
from fraiseql_checks.dashboards.queries import FraiseQLNames, own_metric_names
from fraiseql_checks.dashboards.seed import Seed
from fraiseql_checks.targets.contract import dashboard_references
from fraiseql_checks.targets.profiles import COUNTER, DEFAULT_PROFILE, PROFILES, Profile, Series
from tests.support import REPO
from tests.support.checkdir import CheckDir
from tests.support.services import require
from tests.support.validators import grafana_dashboard_schema

SEED_PANELS = {
    "operations-overview": 10,
    "cache-performance": 8,
    "database-health": 10,
    "error-analysis": 10,
    "user-activity": 8,
    "compliance-audit": 8,
}
CHECKS = '''
import pytest
from fraiseql_checks import check, record

@check(severity="critical", runbook="docs/runbooks/QueueStuck.md", slo="99.9% / 30d",
       panel={"value": "depth", "unit": "short", "thresholds": [100, 1000]})
def check_queue_depth():
    """The job queue drains."""
    record("depth", 3)

@pytest.mark.parametrize("path", ["/", "/data"])
@check(runbook="https://runbooks.example.com/disk", panel={"value": "free_ratio", "unit": "percentunit",
       "thresholds": [0.15], "bad": "below"})
def check_disk(path):
    record("free_ratio", 0.5)

def check_plain():
    pass
'''


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    path = grafana_dashboard_schema()
    require(path.exists(), f"{path} is missing (scripts/test builds it with npm)")
    return dict(json.loads(path.read_text()))


def generate(
    checkdir: CheckDir, config: str = "paths: [checks]\n", profile: str = DEFAULT_PROFILE
) -> dict[str, dict[str, Any]]:
    """Generate, and return the dashboards a target of ``profile`` uses: the default profile's
    in ``dashboards/``, another profile's FraiseQL dashboards in ``dashboards/<profile>/``."""
    checkdir.write("fraiseql-checks.yaml", config)
    result = checkdir.run("generate", "dashboards")
    assert result.ret == 0, result.stderr
    return read_dashboards(checkdir.path, profile)


def read_dashboards(root: Path, profile: str) -> dict[str, dict[str, Any]]:
    folder = root / "dashboards"
    found = {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
    if profile != DEFAULT_PROFILE:
        own = {path.stem: json.loads(path.read_text()) for path in sorted((folder / profile).glob("*.json"))}
        assert sorted(own) == sorted(SEED_PANELS), own.keys()
        found.update(own)
    return found


@pytest.fixture
def project(checkdir: CheckDir) -> CheckDir:
    checkdir.write("checks/jobs/check_jobs.py", CHECKS)
    return checkdir


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            found.extend(panel["panels"])
        else:
            found.append(panel)
    return found


def walk(node: Any, key: str) -> Iterator[Any]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                yield value
            yield from walk(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item, key)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_dashboard_validates_parses_and_queries_only_real_series(
    project: CheckDir, schema: dict[str, Any], profile: str
) -> None:
    dashboards = generate(project, profile=profile)
    assert sorted(dashboards) == sorted([*SEED_PANELS, "checks-jobs"])
    validator = jsonschema.Draft7Validator(schema)
    known = PROFILES[profile].series_names() | own_metric_names()
    for name, dashboard in dashboards.items():
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(dashboard)]
        assert not errors, (name, errors[:5])
        folder = project.path / "dashboards"
        path = (
            folder / profile / f"{name}.json"
            if (folder / profile / f"{name}.json").exists()
            else folder / f"{name}.json"
        )
        # the metrics contract's own reader: every expr parses (PromQLError otherwise), names listed
        references = dashboard_references(path, name)
        assert references, name
        unknown = {ref.name for ref in references if ref.pattern or ref.name not in known}
        assert not unknown, (name, unknown)
        for datasource in walk(dashboard, "datasource"):
            assert datasource == {"type": "prometheus", "uid": "${datasource}"}
        variables = [v["name"] for v in dashboard["templating"]["list"]]
        assert variables[:3] == ["datasource", "job", "instance"]


def test_the_schema_is_strict(schema: dict[str, Any], project: CheckDir) -> None:
    """A misspelt key, a wrong type, a missing schemaVersion: the validator says so (it is not vacuous)."""
    dashboard = generate(project)["operations-overview"]
    validator = jsonschema.Draft7Validator(schema)
    misspelt = json.loads(json.dumps(dashboard))
    misspelt["panels"][1]["gridpos"] = misspelt["panels"][1].pop("gridPos")
    wrong_type = json.loads(json.dumps(dashboard))
    wrong_type["refresh"] = 60
    without_version = {k: v for k, v in dashboard.items() if k != "schemaVersion"}
    for broken in (misspelt, wrong_type, without_version):
        assert list(validator.iter_errors(broken))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_seed_dashboards_have_the_seeds_54_panels(checkdir: CheckDir, profile: str) -> None:
    (checkdir.path / "checks").mkdir()
    dashboards = generate(checkdir, profile=profile)
    assert sorted(dashboards) == sorted(SEED_PANELS)  # no checks: the six only
    counts = {name: len(panels(dashboard)) for name, dashboard in dashboards.items()}
    assert counts == SEED_PANELS
    assert sum(counts.values()) == 54
    for dashboard in dashboards.values():
        titles = [panel["title"] for panel in panels(dashboard)]
        assert len(set(titles)) == len(titles)
        assert "fraiseql-checks" in dashboard["tags"] and profile in dashboard["tags"]
        (link,) = dashboard["links"]
        assert link["type"] == "dashboards" and link["tags"] == ["fraiseql-checks"]


def test_a_builder_cannot_name_a_series_the_profile_does_not_emit() -> None:
    names = FraiseQLNames(PROFILES["fraiseql-v2"])
    assert names("fraiseql_cache_hits") == "fraiseql_cache_hits"
    # the names FraiseQL's own shipped dashboard uses but the server never emits
    for missing in (
        "fraiseql_cache_hits_total",
        "fraiseql_request_duration_seconds_bucket",
        "fraiseql_db_errors_total",
    ):
        with pytest.raises(KeyError, match="does not emit"):
            names(missing)


def test_the_suite_dashboard_from_check_metadata(project: CheckDir) -> None:
    project.write(
        "fraiseql-checks.yaml", "paths: [checks]\nnotify:\n  runbook_base_url: https://git.example.com/ops/\n"
    )
    assert project.run("generate", "dashboards").ret == 0
    dashboard = json.loads((project.path / "dashboards" / "checks-jobs.json").read_text())
    assert dashboard["title"] == "Checks: jobs"
    rows = [panel for panel in dashboard["panels"] if panel["type"] == "row"]
    assert [row["title"] for row in rows] == ["Status", "Runs", "Values the checks assert on", "SLOs"]
    by_title = {panel["title"]: panel for panel in panels(dashboard)}
    # one coloured stat per check (the parametrized one twice), from fraiseql_check_up
    stats = [p for p in panels(dashboard) if p["type"] == "stat" and "fraiseql_check_up" in p["targets"][0]["expr"]]
    assert sorted(p["title"] for p in stats) == [
        "check_disk[/]",
        "check_disk[/data]",
        "check_plain",
        "check_queue_depth",
    ]
    queue = by_title["check_queue_depth"]
    assert queue["targets"][0]["expr"] == (
        'min(fraiseql_check_up{job=~"$job",instance=~"$instance",check="checks/jobs/check_jobs.py::check_queue_depth"})'
    )
    assert queue["fieldConfig"]["defaults"]["thresholds"]["steps"] == [
        {"color": "red", "value": None},
        {"color": "green", "value": 1},
    ]
    assert queue["links"][0]["url"] == "https://git.example.com/ops/docs/runbooks/QueueStuck.md"
    assert "links" not in by_title["check_plain"]  # no runbook, no link
    # the value the check records, with the thresholds it asserts
    depth = by_title["check_queue_depth: depth"]
    assert depth["fieldConfig"]["defaults"]["unit"] == "short"
    assert depth["fieldConfig"]["defaults"]["thresholds"]["steps"] == [
        {"color": "green", "value": None},
        {"color": "orange", "value": 100},
        {"color": "red", "value": 1000},
    ]
    disk = by_title["check_disk[/data]: free_ratio"]
    assert disk["fieldConfig"]["defaults"]["thresholds"]["steps"] == [
        {"color": "red", "value": None},
        {"color": "green", "value": 0.15},
    ]
    assert disk["links"][0]["url"] == "https://runbooks.example.com/disk"  # a URL stays as it is
    # SLO panels on the agreed names
    budget = by_title["check_queue_depth: error budget left"]["targets"][0]["expr"]
    assert "fraiseql_check_slo_error_budget_remaining_ratio{" in budget
    burn = by_title["check_queue_depth: burn rate"]["targets"][0]["expr"]
    assert "fraiseql_check_slo_burn_rate{" in burn and 'window=~"5m|30m|1h|2h|6h|1d|3d"' in burn
    assert all(p["links"][0]["url"].endswith("QueueStuck.md") for t, p in by_title.items() if "queue_depth:" in t)
    # suite-wide panels link every series to its check's runbook
    durations = by_title["Run duration p95"]
    assert (
        'group_left(runbook) fraiseql_check_info{job=~"$job",instance=~"$instance",suite="jobs"}'
        in (durations["targets"][0]["expr"])
    )
    # the watcher exports the runbook already joined to the base (tests/watch: test_watch_metrics)
    assert durations["fieldConfig"]["defaults"]["links"][0]["url"] == "${__field.labels.runbook}"


def test_generation_is_deterministic_and_uids_are_stable(project: CheckDir) -> None:
    first = generate(project)
    again = project.run("generate", "dashboards")
    assert again.ret == 0
    assert again.outlines[0].startswith("collected ")
    assert all(line.startswith("unchanged ") for line in again.outlines[1:] if line)
    assert len({dashboard["uid"] for dashboard in first.values()}) == len(first)
    for dashboard in first.values():
        assert 8 <= len(dashboard["uid"]) <= 40
    # another profile changes the queries, not the identity of the dashboards
    other = read_dashboards(project.path, "fraiseql-v1")
    assert {n: d["uid"] for n, d in other.items()} == {n: d["uid"] for n, d in first.items()}
    assert other["operations-overview"] != first["operations-overview"]


def test_a_bad_panel_hint_is_one_line(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/x/check_x.py",
        'from fraiseql_checks import check\n@check(panel={"unit": "s", "treshold": 3})\ndef check_x():\n    pass\n',
    )
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\n")
    result = checkdir.run("generate", "dashboards")
    assert result.ret == 4
    assert result.stderr.splitlines() == [
        "ERROR: checks/x/check_x.py::check_x: @check(panel=...): unknown key 'treshold' "
        "(known: value, title, unit, thresholds, bad, min, max)"
    ]


def test_a_check_file_that_does_not_collect_stops_generation(checkdir: CheckDir) -> None:
    checkdir.write("checks/x/check_x.py", "import nowhere_to_be_found\n")
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\n")
    result = checkdir.run("generate", "dashboards")
    assert result.ret == 2  # a collection error, as in a run and every other generator
    assert result.stderr.splitlines() == [
        "ERROR: collecting checks/x/check_x.py: error importing check module: ModuleNotFoundError: No module named "
        "'nowhere_to_be_found'"
    ]
    assert not (checkdir.path / "dashboards").exists()


def test_the_committed_dashboards_are_what_the_generator_makes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fraiseql_checks", "generate", "dashboards", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    committed = sorted(path.stem for path in (REPO / "dashboards").glob("*.json"))
    assert committed == sorted([*SEED_PANELS, "checks-alerts", "checks-audit", "checks-health", "checks-host"])
    v1 = sorted(path.stem for path in (REPO / "dashboards" / "fraiseql-v1").glob("*.json"))
    assert v1 == sorted(SEED_PANELS)


def test_thresholds_colour_the_bad_side() -> None:
    assert [(t.value, t.color) for t in thresholds_for([95, 85])] == [(None, "green"), (85, "orange"), (95, "red")]
    assert [(t.value, t.color) for t in thresholds_for([0.1, 0.2, 0.3], bad="below")] == [
        (None, "red"),
        (0.1, "orange"),
        (0.2, "yellow"),
        (0.3, "green"),
    ]
    assert thresholds_for([]) == ()


def test_prometheus_accepts_every_query(project: CheckDir) -> None:
    """Prometheus itself (not only the parser) evaluates each panel query, variables substituted."""
    from fraiseql_checks.promql import without_grafana_variables
    from tests.support.services import prometheus

    dashboards = generate(project)
    exprs = sorted({target["expr"] for d in dashboards.values() for p in panels(d) for target in p["targets"]})
    with prometheus([]) as server:
        for expr in exprs:
            server.query(without_grafana_variables(expr).replace('"$job"', '".*"'))


def test_our_metric_names_come_from_the_definitions() -> None:
    names = own_metric_names()
    assert {metric.name for metric in m.ALL} <= names
    assert "fraiseql_check_duration_seconds_bucket" in names
    assert "fraiseql_check_slo_burn_rate" in names


def test_a_seed_makes_its_profiles_names_once() -> None:
    seed = Seed(PROFILES[DEFAULT_PROFILE])
    assert seed.names is seed.names
    assert seed.names.profile is PROFILES[DEFAULT_PROFILE]


# ---- roles ---------------------------------------------------------------------------------


def profile_without(*roles: str, **replaced: Series) -> Profile:
    """The default profile without some roles (a server that cannot answer them), others replaced."""
    base = PROFILES[DEFAULT_PROFILE]
    kept = {name: series for name, series in base.roles.items() if name not in roles}
    return dataclasses.replace(base, name="fraiseql-test", roles={**kept, **replaced})


def seed_dashboards(profile: Profile) -> dict[str, Dashboard]:
    return {name: make(Seed(profile)) for name, make in SEED}


def titles(dashboard: Dashboard) -> list[str]:
    return [panel.title for row in dashboard.rows for panel in row.panels]


def exprs(dashboard: Dashboard) -> list[str]:
    return [target.expr for row in dashboard.rows for panel in row.panels for target in panel.targets]


def test_a_panel_whose_roles_the_profile_lacks_is_left_out() -> None:
    full = seed_dashboards(PROFILES[DEFAULT_PROFILE])
    lacking = seed_dashboards(
        profile_without("query_cost", "mutations", "errors_by_type", "operation_errors", "apq_hits", "statement_types")
    )
    # no cost and no mutation counter: User Activity has no query-mix panel
    assert "Query complexity: cost per second" in titles(full["user-activity"])
    assert len(titles(lacking["user-activity"])) == len(titles(full["user-activity"])) - 1
    assert not [t for t in titles(lacking["user-activity"]) if "complexity" in t or "mutations" in t]
    # no error breakdown by type or operation: no fingerprints, no recent errors, no per-operation errors
    assert set(titles(full["error-analysis"])) - set(titles(lacking["error-analysis"])) == {
        "Top 10 failing operations (no error fingerprints in FraiseQL)",
        "Operations with errors in the last hour",
    }
    assert "Query errors" not in titles(lacking["database-health"])
    # neither how queries arrive nor what they became: no execution-mode panel
    assert not [t for t in titles(lacking["operations-overview"]) if "Execution mode" in t or "Statements" in t]
    # without query cost, the nearest true thing: the distribution of query durations
    assert "Query duration distribution (no complexity metric in v1)" in titles(lacking["operations-overview"])


def test_the_panels_read_whatever_series_the_profile_names_for_a_role() -> None:
    other = Series("fraiseql_execution_errors_total", COUNTER)
    dashboards = seed_dashboards(profile_without(graphql_errors=other))
    assert any("fraiseql_execution_errors_total" in expr for expr in exprs(dashboards["operations-overview"]))
    assert not any("fraiseql_graphql_queries_error" in e for e in exprs(dashboards["operations-overview"]))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_fraiseql_series_a_seed_dashboard_reads_is_one_of_its_profiles_roles(profile: str) -> None:
    """A builder cannot slip a metric name past the profile: every FraiseQL name it queries is a role's."""
    from fraiseql_checks.promql import metric_names, without_grafana_variables
    from fraiseql_checks.targets.contract import is_fraiseql_series

    chosen = PROFILES[profile]
    role_series = {
        sample
        for series in chosen.roles.values()
        for sample in (
            [series.sample(p) for p in ("bucket", "count", "sum")] if series.type == "histogram" else [series.sample()]
        )
    }
    for name, dashboard in seed_dashboards(chosen).items():
        for expr in exprs(dashboard):
            read = {n for n in metric_names(without_grafana_variables(expr)) if is_fraiseql_series(n)}
            assert read <= role_series, (name, read - role_series)


def test_the_burn_rate_panels_colour_the_rates_the_slo_rules_alert_at_for_30_days() -> None:
    from fraiseql_checks.dashboards.suites import BURN_THRESHOLDS
    from fraiseql_checks.slo.rules import PAGE, TICKET

    days_30 = 30 * 86400.0
    pages = [float(pair.factor(days_30)) for pair in PAGE.pairs]
    slowest_ticket = min(float(pair.factor(days_30)) for pair in TICKET.pairs)
    assert BURN_THRESHOLDS == tuple(sorted({slowest_ticket, *pages})) == (1.0, 6.0, 14.4)
    assert [t.value for t in thresholds_for(BURN_THRESHOLDS)] == [None, 1.0, 6.0, 14.4]
