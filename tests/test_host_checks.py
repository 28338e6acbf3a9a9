"""The shipped host checks, on this machine: real readings, configurable thresholds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, CheckDir


def copy_host_checks(checkdir: CheckDir) -> None:
    shutil.copytree(REPO / "checks" / "host", checkdir.path / "checks" / "host")


def test_host_checks_read_real_values(checkdir: CheckDir) -> None:
    copy_host_checks(checkdir)
    _, report = checkdir.run_json()
    by_name = {r["name"].split("[")[0]: r for r in report["results"]}
    assert set(by_name) == {"check_disk_space", "check_memory_usage", "check_cpu_usage"}
    for name, value in (
        ("check_disk_space", "disk_free_ratio"),
        ("check_memory_usage", "memory_used_ratio"),
        ("check_cpu_usage", "cpu_used_ratio"),
    ):
        result = by_name[name]
        assert result["outcome"] in ("passed", "failed"), result  # never an error on a healthy machine
        assert 0.0 <= result["values"][value] <= 1.0
    usage = shutil.disk_usage("/")
    measured = by_name["check_disk_space"]["values"]["disk_free_ratio"]
    assert abs(measured - usage.free / usage.total) < 0.01


def test_thresholds_come_from_the_config(checkdir: CheckDir) -> None:
    copy_host_checks(checkdir)
    checkdir.write(
        "pyproject.toml",
        """
        [tool.fraiseql-checks.thresholds]
        "host.disk_free_min_percent" = 100
        "host.memory_used_max_percent" = 0
        "host.cpu_sample_seconds" = 0.1
        """,
    )
    _, report = checkdir.run_json()
    by_name = {r["name"].split("[")[0]: r for r in report["results"]}
    assert by_name["check_disk_space"]["outcome"] == "failed"
    assert "% free, below 100%" in by_name["check_disk_space"]["message"]
    assert by_name["check_memory_usage"]["outcome"] == "failed"
    assert "of memory in use, above 0%" in by_name["check_memory_usage"]["message"]


def test_the_main_job_runs_with_zero_configuration(tmp_path: Path) -> None:
    """``fraiseql-check`` in the repository root runs the shipped checks on the embedded defaults."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "fraiseql_checks", "--report-json", str(report)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 1 only if this machine is short of resources
    ids = {r["id"]: r["outcome"] for r in json.loads(report.read_text())["results"]}
    assert "checks/host/check_host.py::check_memory_usage" in ids
    assert "error" not in ids.values(), ids
