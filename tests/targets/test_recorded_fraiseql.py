"""Our FraiseQL names against FraiseQL's facts: the recorded answers of tests/data/fraiseql, and tests that can fail.

The recorded pages were written by hand from FRAISEQL.md (tests/data/fraiseql/README.md),
so nothing here checks the code against itself: the profiles, the committed dashboards
and rules, and what the generators make are each held against what a real server
exposes. Then the proof that these tests bite: a series renamed in the v2 profile, or
one dashboard query changed, and the metrics contract fails against the recorded page.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fraiseql_checks.targets.profiles import PROFILES
from tests.support import REPO
from tests.support.checkdir import CheckDir
from tests.support.fraiseql_v2 import (
    DATA,
    PAGE,
    PAGE_WITHOUT_OBSERVERS,
    FakeFraiseQLV2,
    fake_fraiseql_v2,
    recorded_page,
)
from tests.support.services import require_binary

CONTRACT = str(REPO / "checks" / "health" / "check_metrics_contract.py")
TOKEN = "recorded-facts-token"
V1_PAGE = recorded_page("metrics.txt", DATA / "v1")
#: The mutation: the upstream dashboard's own mistake (FRAISEQL.md), made in our profile.
OLD, NEW = "fraiseql_cache_hits", "fraiseql_cache_hits_total"


def exposed(page: str) -> set[str]:
    """The sample names a page shows, read as written (not through our parser)."""
    return {re.split(r"[{\s]", line, maxsplit=1)[0] for line in page.splitlines() if line and not line.startswith("#")}


def is_fraiseqls(name: str) -> bool:
    """A name FraiseQL's own /metrics must show: ``fraiseql_*``, not this tool's ``fraiseql_check_*``."""
    return name.startswith("fraiseql_") and not name.startswith("fraiseql_check_") and ":" not in name


# ---- the recorded data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "page", [recorded_page(PAGE), recorded_page(PAGE_WITHOUT_OBSERVERS), V1_PAGE], ids=["v2", "v2-no-observers", "v1"]
)
def test_the_recorded_pages_are_valid_exposition(page: str) -> None:
    """promtool and prometheus_client read them; promtool only lints FraiseQL's own naming (exit 3)."""
    promtool = require_binary("promtool")
    checked = subprocess.run([promtool, "check", "metrics"], input=page, text=True, capture_output=True)
    assert checked.returncode in (0, 3), checked.stderr
    lint = {line.split()[0] for line in (checked.stdout + checked.stderr).splitlines() if line.strip()}
    assert lint <= {name for name in exposed(page)}, lint  # lint about names only, no parse error
    families = list(text_string_to_metric_families(page))
    assert len(families) >= 15


def test_the_v2_pages_differ_only_by_the_observer_metrics() -> None:
    full, bare = exposed(recorded_page(PAGE)), exposed(recorded_page(PAGE_WITHOUT_OBSERVERS))
    assert full - bare == {"fraiseql_observer_job_queue_depth", "fraiseql_observer_dlq_items"}
    assert bare <= full


def test_the_recorded_health_bodies_have_both_observer_shapes() -> None:
    def observers(name: str) -> Any:
        return json.loads((DATA / "v2" / name).read_text()).get("observers")

    assert set(observers("health-healthy.json")) == {"running", "events_processed"}
    assert set(observers("health-before-2.15.json")) == {"running", "pending_events"}


# ---- the code against the facts ------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "page"), [("fraiseql-v2", recorded_page(PAGE)), ("fraiseql-v1", V1_PAGE)])
def test_every_series_a_profile_requires_is_on_the_recorded_page(profile: str, page: str) -> None:
    missing = PROFILES[profile].required_series_names() - exposed(page)
    assert not missing, f"{profile} names series FraiseQL does not expose: {sorted(missing)}"


def test_optional_series_are_those_a_build_may_leave_out() -> None:
    """What the v2 profile requires is on the page of a build without observer metrics too."""
    assert not PROFILES["fraiseql-v2"].required_series_names() - exposed(recorded_page(PAGE_WITHOUT_OBSERVERS))
    optional = PROFILES["fraiseql-v2"].optional_series()
    assert {"fraiseql_observer_job_queue_depth", "fraiseql_observer_dlq_items"} <= set(optional)


def references(profile: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """FraiseQL series the committed rules and dashboards of ``profile`` query, with where."""
    from fraiseql_checks.cli import configure
    from fraiseql_checks.targets.contract import collect_references

    monkeypatch.setenv("FRAISEQL_PROFILE", profile)
    config, _ = configure(["checks"], invocation_dir=REPO)
    found: dict[str, set[str]] = {}
    for ref in collect_references(config):
        if ref.pattern or is_fraiseqls(ref.name):  # a {__name__=~...} pattern would show as missing here
            found.setdefault(ref.name, set()).add(ref.where)
    return found


@pytest.mark.parametrize(
    ("profile", "page"),
    [
        ("fraiseql-v2", recorded_page(PAGE)),
        ("fraiseql-v2", recorded_page(PAGE_WITHOUT_OBSERVERS)),
        ("fraiseql-v1", V1_PAGE),
    ],
    ids=["v2", "v2-no-observers", "v1"],
)
def test_the_committed_rules_and_dashboards_query_only_what_the_server_exposes(
    profile: str, page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = references(profile, monkeypatch)
    assert found, "nothing read: the test would pass vacuously"
    missing = {name: sorted(where) for name, where in found.items() if name not in exposed(page)}
    assert not missing, missing


# ---- the tests can fail: a renamed series, a changed query -------------------------------------------


def renamed(value: Any, old: str, new: str) -> Any:
    """``value`` (a profile, or anything in it) with the series ``old`` called ``new``: metric
    names, a histogram's ``_bucket``/``_count``/``_sum``, mapping keys and role series alike."""
    if isinstance(value, str):
        for suffix in ("", "_bucket", "_count", "_sum"):
            if value == old + suffix:
                return new + suffix
        return value
    if isinstance(value, Mapping):
        return {renamed(k, old, new): renamed(v, old, new) for k, v in value.items()}
    if isinstance(value, tuple):
        items = [renamed(v, old, new) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)  # a NamedTuple stays one
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: renamed(getattr(value, f.name), old, new) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **fields)
    return value


def rename_in_profile(profile: str, old: str, new: str) -> None:
    """The mutation, in this process: ``PROFILES[profile]`` replaced by a renamed copy."""
    PROFILES[profile] = renamed(PROFILES[profile], old, new)


#: Runs the real CLI with one series renamed in the v2 profile: argv = old new CLI-arguments...
MUTANT = """
import sys
from tests.targets.test_recorded_fraiseql import rename_in_profile
rename_in_profile("fraiseql-v2", sys.argv[1], sys.argv[2])
from fraiseql_checks.cli import main
sys.exit(main(sys.argv[3:]))
"""


def generate(
    checkdir: CheckDir, out: Path, what: str, rename: tuple[str, str] | None
) -> subprocess.CompletedProcess[str]:
    """``fraiseql-check generate WHAT -o OUT`` on the repository's checks, the profile renamed or not."""
    args = ["generate", what, "-o", str(out)]
    command = [sys.executable, "-c", MUTANT, *rename, *args] if rename else checkdir.command(*args)
    env = checkdir.env(FRAISEQL_CHECKS_RUNBOOK_BASE_URL="", PYTHONPATH=str(REPO))
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def server() -> Iterator[FakeFraiseQLV2]:
    with fake_fraiseql_v2(TOKEN) as fake:
        yield fake


def contract(checkdir: CheckDir, server: FakeFraiseQLV2) -> dict[str, Any]:
    """The shipped metrics contract check, run on checkdir's dashboards/ and alerts/ against the fake."""
    checkdir.write("fraiseql-checks.yaml", "paths: [.]\n")
    env = {"FRAISEQL_URL": server.url, "FRAISEQL_METRICS_TOKEN": TOKEN}
    _, report = checkdir.run_json("-c", "fraiseql-checks.yaml", CONTRACT, env=env)
    (only,) = report["results"]
    return dict(only)


def test_the_profile_against_the_page_fails_on_a_renamed_series(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PROFILES, "fraiseql-v2", renamed(PROFILES["fraiseql-v2"], OLD, NEW))
    with pytest.raises(AssertionError, match=NEW):
        test_every_series_a_profile_requires_is_on_the_recorded_page("fraiseql-v2", recorded_page(PAGE))


def test_generated_artefacts_pass_the_contract_against_the_recorded_page(
    checkdir: CheckDir, server: FakeFraiseQLV2, tmp_path: Path
) -> None:
    """The baseline of the mutation below: unchanged, what the generators make passes."""
    out = tmp_path / "generated"
    done = generate(checkdir, out, "alerts", None)
    assert done.returncode == 0, done.stderr
    done = generate(checkdir, out, "dashboards", None)
    assert done.returncode == 0, done.stderr
    for folder in ("alerts", "dashboards"):
        shutil.copytree(out / folder, checkdir.path / folder)
    result = contract(checkdir, server)
    assert result["outcome"] == "passed", result["message"]
    assert result["values"]["series_referenced"] > 20
    server.metrics_text = recorded_page(PAGE_WITHOUT_OBSERVERS)
    assert contract(checkdir, server)["outcome"] == "passed", "observer metrics are optional"


@pytest.mark.parametrize("what", ["dashboards", "alerts"])
def test_a_series_renamed_in_the_profile_fails_against_the_recorded_page(
    checkdir: CheckDir, server: FakeFraiseQLV2, tmp_path: Path, what: str
) -> None:
    """Rename ``fraiseql_cache_hits`` to ``fraiseql_cache_hits_total`` in the v2 profile: either the
    generator refuses (a builder asks for the old name) or what it makes fails the contract."""
    out = tmp_path / "generated"
    done = generate(checkdir, out, what, (OLD, NEW))
    if done.returncode != 0:
        assert OLD in done.stderr, done.stderr
        return
    shutil.copytree(out / what, checkdir.path / what)
    result = contract(checkdir, server)
    assert result["outcome"] == "failed", f"{what} made from the renamed profile passed the contract"
    assert result["metrics_contract"]["missing"] == [NEW]
    assert f"  {NEW}  ({what}/" in result["message"]


def _first_query_with(dashboard: dict[str, Any], name: str) -> tuple[dict[str, Any], str]:
    """The first target of a panel (rows included) whose query selects ``name``, and the panel's title."""
    pattern = re.compile(rf"\b{name}\b(?![a-z_])")
    stack = list(dashboard["panels"])
    while stack:
        panel = stack.pop(0)
        stack[:0] = panel.get("panels", [])
        for target in panel.get("targets", []):
            if pattern.search(target.get("expr", "")):
                return target, panel["title"]
    raise AssertionError(f"no query of {name}")


def test_one_dashboard_query_changed_fails_the_contract_naming_the_panel(
    checkdir: CheckDir, server: FakeFraiseQLV2
) -> None:
    source = REPO / "dashboards" / "cache-performance.json"
    (checkdir.path / "dashboards").mkdir()
    shutil.copy(source, checkdir.path / "dashboards" / source.name)
    assert contract(checkdir, server)["outcome"] == "passed"
    dashboard = json.loads(source.read_text())
    target, title = _first_query_with(dashboard, OLD)
    target["expr"] = re.sub(rf"\b{OLD}\b(?![a-z_])", NEW, target["expr"])
    (checkdir.path / "dashboards" / source.name).write_text(json.dumps(dashboard))
    result = contract(checkdir, server)
    assert result["outcome"] == "failed"
    assert result["metrics_contract"]["missing"] == [NEW]
    assert f"  {NEW}  (dashboards/cache-performance.json: panel {title!r})" in result["message"].splitlines()
