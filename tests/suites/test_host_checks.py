"""The shipped host checks, on this machine: real readings, configurable thresholds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO
from tests.support.checkdir import CheckDir


def copy_host_checks(checkdir: CheckDir) -> None:
    shutil.copytree(REPO / "checks" / "host", checkdir.path / "checks" / "host")


def test_host_checks_read_real_values(checkdir: CheckDir) -> None:
    read_real_values(checkdir)


def test_host_checks_on_another_filesystem() -> None:
    """Run from a folder on another filesystem: two disk cases, each compared with its own filesystem."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or os.stat(shm).st_dev == os.stat("/").st_dev:
        pytest.skip("no writable /dev/shm on a filesystem other than /")
    with tempfile.TemporaryDirectory(dir=shm) as folder:
        by_id = read_real_values(CheckDir(Path(folder)))
        here = os.path.realpath(folder)
        assert f"check_disk_space[{here}]" in by_id, sorted(by_id)
        usage = shutil.disk_usage(here)
        assert by_id[f"check_disk_space[{here}]"]["values"]["disk_free_ratio"] == pytest.approx(
            usage.free / usage.total, abs=0.01
        )


def read_real_values(checkdir: CheckDir) -> dict[str, Any]:
    """Run the host checks in ``checkdir``, check their readings, and return the results by full name."""
    copy_host_checks(checkdir)
    _, report = checkdir.run_json()
    by_id = {r["name"]: r for r in report["results"]}
    by_name = {name.split("[")[0]: r for name, r in by_id.items()}
    assert set(by_name) == {"check_disk_space", "check_memory_usage", "check_cpu_usage"}
    # One disk case per filesystem: "/" and, when the working folder is on another one, that folder.
    disks = [r for name, r in by_id.items() if name.startswith("check_disk_space[")]
    assert "check_disk_space[/]" in by_id and 1 <= len(disks) <= 2, sorted(by_id)
    for result in disks:
        assert result["outcome"] in ("passed", "failed"), result
        assert 0.0 <= result["values"]["disk_free_ratio"] <= 1.0
    for name, value in (
        ("check_disk_space", "disk_free_ratio"),
        ("check_memory_usage", "memory_used_ratio"),
        ("check_cpu_usage", "cpu_used_ratio"),
    ):
        result = by_name[name]
        assert result["outcome"] in ("passed", "failed"), result  # never an error on a healthy machine
        assert 0.0 <= result["values"][value] <= 1.0
    usage = shutil.disk_usage("/")
    measured = by_id["check_disk_space[/]"]["values"]["disk_free_ratio"]
    assert abs(measured - usage.free / usage.total) < 0.01
    return by_id


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
