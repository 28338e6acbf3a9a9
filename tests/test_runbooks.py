"""One runbook base URL (``notify.runbook_base_url``) and one way to join it, for every output."""

from __future__ import annotations

import json

import pytest
import yaml

from fraiseql_checks.runbooks import runbook_link
from tests.support.checkdir import CheckDir

BASE = "https://git.example.org/ops/blob/main/"


@pytest.mark.parametrize(
    ("runbook", "base", "link"),
    [
        ("docs/runbooks/x.md", BASE, "https://git.example.org/ops/blob/main/docs/runbooks/x.md"),
        ("/docs/runbooks/x.md", "https://git.example.org/ops", "https://git.example.org/ops/docs/runbooks/x.md"),
        ("docs/runbooks/x.md", "", "docs/runbooks/x.md"),  # no base: the path, relative to the repository
        ("https://wiki.example.org/x", BASE, "https://wiki.example.org/x"),
        ("confluence://OPS/x", BASE, "confluence://OPS/x"),  # any scheme is a URL, not only http(s)
        ("file:///srv/runbooks/x.md", BASE, "file:///srv/runbooks/x.md"),
        (None, BASE, None),
        ("", BASE, None),
    ],
)
def test_a_path_is_joined_to_the_base_and_a_url_of_any_scheme_stays(
    runbook: str | None, base: str, link: str | None
) -> None:
    assert runbook_link(runbook, base) == link


CHECKS = """
from fraiseql_checks import alert, check


@check(interval="1m", runbook="docs/runbooks/QueueStuck.md", slo="99% / 30d")
def check_queue():
    pass


@check(interval="1m", runbook="confluence://OPS/Disk")
def check_disk():
    pass


@alert(expr="vector(1) > 0", for_="1m", severity="warning", runbook="docs/runbooks/Always.md")
def check_always():
    pass
"""


def generate(checkdir: CheckDir, settings: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """Every link the generated rules, SLO rules and dashboards give, by check or alert name."""
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\n" + settings)
    checkdir.write("checks/ops/check_ops.py", CHECKS)
    result = checkdir.run("generate", "alerts", "slo-rules", "dashboards", env=env)
    assert result.ret == 0, result.stdout + result.stderr
    links: dict[str, str] = {}
    for path in sorted((checkdir.path / "alerts").rglob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    name = rule["labels"].get("check", rule["alert"]).split("::")[-1]
                    kind = "slo" if "sloth_slo" in rule["labels"] else "rule"
                    links[f"{kind}:{name}"] = rule["annotations"].get("runbook_url", "")
    dashboard = json.loads((checkdir.path / "dashboards" / "checks-ops.json").read_text())
    for row in dashboard["panels"]:
        for panel in row.get("panels", [row]):
            for link in panel.get("links", []):
                if panel["title"] in ("check_queue", "check_disk", "check_always"):
                    links[f"dashboard:{panel['title']}"] = link["url"]
    return links


def test_one_base_makes_every_link_absolute(checkdir: CheckDir) -> None:
    links = generate(checkdir, f"notify:\n  runbook_base_url: {BASE}\n")
    assert links == {
        # FraiseQLCheckFailing of each plain check, the @alert's own rule, the watcher's alerts
        "rule:check_queue": BASE + "docs/runbooks/QueueStuck.md",
        "rule:check_disk": "confluence://OPS/Disk",
        "rule:Always": BASE + "docs/runbooks/Always.md",
        "rule:FraiseQLCheckStale": BASE + "docs/runbooks/FraiseQLCheckStale.md",
        "rule:FraiseQLCheckWatcherAbsent": BASE + "docs/runbooks/FraiseQLCheckWatcherAbsent.md",
        "rule:FraiseQLCheckWatcherDown": BASE + "docs/runbooks/FraiseQLCheckWatcherDown.md",
        "slo:check_queue": BASE + "docs/runbooks/QueueStuck.md",
        "dashboard:check_queue": BASE + "docs/runbooks/QueueStuck.md",
        "dashboard:check_disk": "confluence://OPS/Disk",
        "dashboard:check_always": BASE + "docs/runbooks/Always.md",
    }


def test_the_environment_sets_the_base_and_no_base_leaves_paths(checkdir: CheckDir) -> None:
    from_env = generate(checkdir, "", env={"FRAISEQL_CHECKS_RUNBOOK_BASE_URL": BASE})
    assert from_env["rule:check_queue"] == from_env["dashboard:check_queue"] == BASE + "docs/runbooks/QueueStuck.md"
    plain = generate(checkdir, "")
    assert plain["rule:check_queue"] == plain["dashboard:check_queue"] == "docs/runbooks/QueueStuck.md"


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ("alerts:\n  runbook_base_url: x\n", "alerts: 'runbook_base_url' has moved to notify.runbook_base_url"),
        ("dashboards:\n  runbook_url: x\n", "dashboards: 'runbook_url' has moved to notify.runbook_base_url"),
        ("notify:\n  runbook_url: x\n", "notify: unknown key 'runbook_url'"),
    ],
)
def test_the_old_keys_say_where_the_base_moved(checkdir: CheckDir, settings: str, error: str) -> None:
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\n" + settings)
    checkdir.write("checks/ops/check_ops.py", CHECKS)
    result = checkdir.run("generate", "alerts")
    assert result.ret == 4
    (line,) = result.stderr.splitlines()
    assert error in line
