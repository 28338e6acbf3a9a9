"""The shipped suites chosen by name (``suites`` in the config, ``--suite``), next to the user's checks."""

from __future__ import annotations

import subprocess
import sys

from tests.support.checkdir import CheckDir

HOST_IDS = {
    "suites/host/check_host.py::check_disk_space[/]",
    "suites/host/check_host.py::check_memory_usage",
    "suites/host/check_host.py::check_cpu_usage",
}
OWN_CHECK = """
    def check_mine():
        assert 1 + 1 == 2
"""


def collected(checkdir: CheckDir, *args: str) -> set[str]:
    """The node ids ``--collect-only -q`` lists."""
    result = checkdir.run("--collect-only", "-q", *args)
    assert result.ret == 0, result.stdout + result.stderr
    return {line for line in result.outlines if "::" in line}


def suites_of(ids: dict[str, str] | set[str]) -> set[str]:
    return {nodeid.split("/")[1] for nodeid in ids if nodeid.startswith("suites/")}


def test_an_empty_folder_with_no_configuration_runs_the_host_suite(checkdir: CheckDir) -> None:
    result, ids = checkdir.outcomes()
    assert result.ret in (0, 1), result.stdout + result.stderr  # 1 only if this machine is short of resources
    assert set(ids) == HOST_IDS, sorted(ids)
    assert "error" not in ids.values(), ids


def test_suites_from_the_command_line_run_next_to_the_users_checks(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_mine.py", OWN_CHECK)
    result, ids = checkdir.outcomes("--suite", "host", "--suite", "health")
    assert result.ret in (0, 1), result.stdout + result.stderr
    assert ids["checks/check_mine.py::check_mine"] == "passed"
    assert suites_of(ids) == {"host", "health"}
    assert "suites/health/check_fraiseql.py::check_fraiseql_healthy" in ids  # skipped: no FraiseQL configured


def test_suites_from_the_config_and_all(checkdir: CheckDir) -> None:
    checkdir.write("pyproject.toml", '[tool.fraiseql-checks]\nsuites = ["alerts"]\n')
    assert suites_of(collected(checkdir)) == {"alerts"}  # no checks/ folder: the suites alone
    # the command line replaces the config's
    assert suites_of(collected(checkdir, "--suite", "all")) == {"alerts", "audit", "health", "host"}


def test_a_shipped_check_is_selected_by_its_node_id(checkdir: CheckDir) -> None:
    _, ids = checkdir.outcomes("suites/host/check_host.py::check_memory_usage")
    assert list(ids) == ["suites/host/check_host.py::check_memory_usage"]


def test_an_unknown_suite_is_one_line_naming_the_known_ones(checkdir: CheckDir) -> None:
    result = checkdir.run("--suite", "helth")
    assert result.ret == 4
    assert result.stderr.splitlines() == [
        "ERROR: --suite: unknown suite 'helth' (known suites: alerts, audit, health, host, all)"
    ]
    checkdir.write("fraiseql-checks.yaml", "suites: [host, nope]\n")
    result = checkdir.run()
    assert result.ret == 4
    assert result.stderr.splitlines() == [
        "ERROR: fraiseql-checks.yaml: suites: unknown suite 'nope' (known suites: alerts, audit, health, host, all)"
    ]


def test_a_config_with_neither_folder_nor_suites_says_how_to_choose(checkdir: CheckDir) -> None:
    checkdir.write("fraiseql-checks.yaml", "severity: warning\n")
    result = checkdir.run()
    assert result.ret == 4
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"ERROR: no checks folder in {checkdir.path}: ")
    assert "'suites' (alerts, audit, health, host, all)" in line


def test_generators_see_the_suites_as_a_run_does(checkdir: CheckDir) -> None:
    checkdir.write("pyproject.toml", '[tool.fraiseql-checks]\nsuites = ["host"]\n')
    result = checkdir.run("generate", "dashboards")
    assert result.ret == 0, result.stdout + result.stderr
    dashboard = (checkdir.path / "dashboards" / "checks-host.json").read_text()
    assert 'check=\\"suites/host/check_host.py::check_cpu_usage\\"' in dashboard
    assert not (checkdir.path / "dashboards" / "checks-health.json").exists()
    result = checkdir.run("generate", "dashboards", "--suite", "health")
    assert result.ret == 0, result.stdout + result.stderr
    assert (
        "suites/health/check_fraiseql.py::check_fraiseql_healthy"
        in (checkdir.path / "dashboards" / "checks-health.json").read_text()
    )


def test_pytest_checks_collects_the_configured_suites_with_the_same_ids(checkdir: CheckDir) -> None:
    checkdir.write("pyproject.toml", '[tool.fraiseql-checks]\nsuites = ["host"]\n')
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--checks", "-p", "no:cacheprovider", "--co", "-q"],
        cwd=checkdir.path,
        capture_output=True,
        text=True,
        timeout=120,
        env=checkdir.env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert {line for line in done.stdout.splitlines() if "::" in line} == HOST_IDS
