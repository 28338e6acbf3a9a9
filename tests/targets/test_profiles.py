"""Target profiles: roles mapped to each FraiseQL version's series, placeholders expanded per profile."""

from __future__ import annotations

import re

import pytest

from fraiseql_checks import metrics as own
from fraiseql_checks.cli import configure
from fraiseql_checks.targets.contract import collect_references
from fraiseql_checks.targets.profiles import (
    DEFAULT_PROFILE,
    HISTOGRAM,
    PROFILES,
    ROLES,
    MissingRole,
    RoleError,
    UnknownRole,
    expand,
    expand_per_profile,
    histogram_reference,
    references,
)
from tests.support import REPO

V2, V1 = PROFILES["fraiseql-v2"], PROFILES["fraiseql-v1"]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_role_of_a_profile_is_a_series_it_emits_with_the_roles_type(profile: str) -> None:
    chosen = PROFILES[profile]
    assert set(chosen.roles) <= set(ROLES)
    for name, series in chosen.roles.items():
        role = ROLES[name]
        assert series.type == role.type, name
        samples = (
            [series.sample(p) for p in ("bucket", "count", "sum")] if role.type == HISTOGRAM else [series.sample()]
        )
        for sample in samples:
            if sample.startswith(own.NAMESPACE):
                own.by_name(sample)
            else:
                assert sample in chosen.series_names(), (name, sample)
                assert sample not in chosen.optional_series(), (name, "a role of every server reads no optional series")
        assert set(series.by) <= set(series.labels), name


def test_the_roles_that_differ_between_the_versions() -> None:
    assert V2.series("graphql_errors").selector() == "fraiseql_graphql_queries_error"
    assert V1.series("graphql_errors").selector() == "fraiseql_graphql_queries_errors_total"
    assert V2.series("http_5xx").selector() == "fraiseql_http_responses_5xx"
    assert V1.series("http_5xx").selector() == 'fraiseql_http_requests_total{status=~"5.."}'
    assert (V2.series("operations").by, V1.series("operations").by) == (("operation",), ("operation_name",))
    assert V2.series("cache_hits").selector() == "fraiseql_cache_hits"  # no _total upstream
    assert V1.series("cache_hits").selector() == "fraiseql_cache_hits_total"
    assert V2.series("query_latency").sample("bucket") == "fraiseql_query_duration_seconds_bucket"
    assert V1.series("query_latency").sample("bucket") == "fraiseql_graphql_query_duration_seconds_bucket"
    assert V2.series("query_latency").unit == "s"
    # what one version cannot answer is absent there, not mapped to something near
    assert V2.has("pool_waiting") and not V1.has("pool_waiting")
    assert V2.has("query_cost") and not V1.has("query_cost")
    assert V1.has("errors_by_type") and not V2.has("errors_by_type")
    with pytest.raises(MissingRole, match="profile fraiseql-v1 has no series for the role 'pool_waiting'"):
        V1.series("pool_waiting")


def test_asking_for_an_unknown_role_is_a_bug_that_names_the_known_ones() -> None:
    with pytest.raises(UnknownRole) as caught:
        V2.has("graphql_erors")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("unknown role 'graphql_erors' (did you mean 'graphql_errors'?); known roles: ")
    assert all(name in message for name in ROLES)


def test_placeholders_expand_per_profile() -> None:
    expr = "sum(rate({{http_5xx}}[5m])) / sum(rate({{http_requests}}[5m])) > 0.01"
    assert expand_per_profile(expr) == {
        "fraiseql-v2": "sum(rate(fraiseql_http_responses_5xx[5m])) / sum(rate(fraiseql_http_requests_total[5m])) > 0.01",
        "fraiseql-v1": 'sum(rate(fraiseql_http_requests_total{status=~"5.."}[5m]))'
        " / sum(rate(fraiseql_http_requests_total[5m])) > 0.01",
    }
    # a histogram's part, spaces inside the braces, extra matchers after the role's own
    assert expand("{{ query_latency.bucket }}", V1) == "fraiseql_graphql_query_duration_seconds_bucket"
    assert expand('{{http_5xx{job="api"}}}', V1) == 'fraiseql_http_requests_total{status=~"5..",job="api"}'
    assert expand('{{http_5xx{job="api"}}}', V2) == 'fraiseql_http_responses_5xx{job="api"}'
    # an SLO query's window is not a role, nor is Sloth's
    assert expand("rate({{cache_hits}}[{{window}}]) + rate(x[{{.window}}])", V2) == (
        "rate(fraiseql_cache_hits[{{window}}]) + rate(x[{{.window}}])"
    )
    # plain PromQL is every profile's, as it is
    assert expand_per_profile("up == 0") == {"fraiseql-v2": "up == 0", "fraiseql-v1": "up == 0"}


def test_a_profile_without_one_of_the_roles_is_left_out() -> None:
    assert list(expand_per_profile("{{query_cost}} / {{graphql_requests}} > 5000")) == ["fraiseql-v2"]
    assert list(expand_per_profile("{{errors_by_type}}")) == ["fraiseql-v1"]
    assert expand_per_profile("{{pool_waiting}}", ["fraiseql-v1"]) == {}
    with pytest.raises(MissingRole):
        expand("{{pool_waiting}}", V1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{graphql_erors}}", "unknown role 'graphql_erors' in {{graphql_erors}} (did you mean 'graphql_errors'?)"),
        ("{{query_latency}}", "query_latency is a histogram: write {{query_latency.bucket}}, .count or .sum"),
        ("{{cache_hits.bucket}}", "cache_hits is a counter, it has no .bucket"),
        ("{{two words}}", "malformed placeholder {{two words}}"),
    ],
)
def test_bad_placeholders_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(RoleError) as caught:
        references(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(RoleError):
        expand_per_profile(text)  # whatever the profiles


def test_a_histogram_named_alone_for_an_slo() -> None:
    ref = histogram_reference('{{http_latency{job="api"}}}')
    assert ref is not None and (ref.role, ref.matchers) == ("http_latency", 'job="api"')
    assert histogram_reference("fraiseql_http_request_duration_seconds") is None
    with pytest.raises(RoleError, match="not a histogram"):
        histogram_reference("{{cache_hits}}")


def test_the_newer_v2_families_are_known_and_the_optional_ones_marked() -> None:
    for name in (
        "fraiseql_federation_subgraph_latency_seconds",
        "fraiseql_federation_entity_resolution_total",
        "fraiseql_mcp_tool_calls_total",
        "fraiseql_mcp_tool_errors_total",
        "fraiseql_pkce_redis_errors_total",
        "fraiseql_multi_root_queries_total",
        "fraiseql_jwt_replay_cache_errors_total",
        "fraiseql_function_dispatches_total",
        "fraiseql_source_fires_total",
        "fraiseql_query_error_total",  # the wire protocol's, singular
        "fraiseql_query_errors_total",  # the server's, plural
    ):
        assert name in V2.metrics, name
    optional = V2.optional_series()
    assert optional["fraiseql_observer_job_queue_depth"].startswith("builds with the observers-metrics feature")
    assert "fraiseql_observer_dlq_items" in optional
    assert "fraiseql_federation_subgraph_latency_seconds_bucket" in optional
    assert "fraiseql_query_errors_total" not in optional
    assert V2.required_series_names() == V2.series_names() - set(optional)
    assert not V1.optional_series()


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_shipped_rules_and_dashboards_need_no_optional_series(
    profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So the metrics contract passes on a server built without observers, MCP, federation...:
    it only fails for an optional series a rule or dashboard reads, and the shipped ones read none."""
    monkeypatch.setenv("FRAISEQL_PROFILE", profile)
    config, _ = configure(["checks"], invocation_dir=REPO)
    read = {ref.name for ref in collect_references(config)}
    assert read
    assert not read & set(PROFILES[profile].optional_series())


def test_no_module_but_profiles_tells_the_versions_apart() -> None:
    """Builders ask whether a profile has a role, never which version it is."""
    version_test = re.compile(r"""\.v1\b|\bv1\s*(==|!=)|==\s*["']fraiseql-v\d|["']fraiseql-v\d["']\s*(==|!=|in\b)""")
    offenders = []
    for folder in ("fraiseql_checks", "checks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.name == "profiles.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if version_test.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, offenders
    assert DEFAULT_PROFILE in PROFILES


def _cell(profile: str, role: str) -> str:
    chosen = PROFILES[profile]
    if not chosen.has(role):
        return "—"
    series = chosen.series(role)
    text = f"`{series.metric}`" if series.type == HISTOGRAM else f"`{series.selector()}`"
    text = text.replace("|", "\\|")  # inside a Markdown table
    return text + (f" by `{series.grouping}`" if series.by else "")


def test_the_roles_table_of_the_docs_is_the_profiles() -> None:
    text = (REPO / "docs" / "targets.md").read_text(encoding="utf-8")
    for name, role in ROLES.items():
        kind = role.type + (f", {role.unit}" if role.unit else "")
        row = f"| `{name}` | {role.meaning} | {kind} | {_cell('fraiseql-v2', name)} | {_cell('fraiseql-v1', name)} |"
        assert row in text, row
