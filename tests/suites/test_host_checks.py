"""The shipped host checks, on this machine: real readings, configurable thresholds."""

from __future__ import annotations

import importlib.util
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
        # never an error on a healthy machine; the CPU check skips a single run on a busy one
        assert result["outcome"] in (("passed", "skipped") if name == "check_cpu_usage" else ("passed", "failed")), (
            result
        )
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
        "host.cpu_window_seconds" = 60
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


def load_host_module() -> Any:
    """checks/host/check_host.py as a module of its own, for its sample window."""
    spec = importlib.util.spec_from_file_location("host_window_under_test", REPO / "checks" / "host" / "check_host.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_watch_window_fails_only_when_every_sample_of_the_whole_window_is_above() -> None:
    window = load_host_module().Window()
    for minute in range(5):  # a sample a minute, all above: 4 minutes are not the seed's 5
        window.add(60.0 * minute, 95.0, 300)
        assert not window.covers(60.0 * minute, 300)
    window.add(300.0, 95.0, 300)
    assert window.covers(300.0, 300) and window.lowest() == 95.0
    window.add(360.0, 50.0, 300)  # one sample below: not "for 5 minutes" any more
    assert window.covers(360.0, 300) and window.lowest() == 50.0
    for minute in range(7, 12):
        window.add(60.0 * minute, 90.0, 300)
    assert window.lowest() == 50.0  # 5 minutes ago: still in the window
    window.add(720.0, 90.0, 300)
    assert window.lowest() == 90.0  # the low sample left the window
    late = load_host_module().Window()
    late.add(0.0, 99.0, 300)
    late.add(297.0, 99.0, 300)
    assert late.covers(297.0, 300)


def test_a_busy_machine_is_not_red_in_a_single_run(checkdir: CheckDir) -> None:
    """Every core kept busy while the host checks run: a one-second sample read ~100% and
    failed; the check now reads the seed's window (the 5-minute load average)."""
    copy_host_checks(checkdir)
    cpus = os.cpu_count() or 1
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cpus)]
    try:
        _, report = checkdir.run_json("-k", "cpu")
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    (result,) = report["results"]
    assert result["outcome"] in ("passed", "skipped"), result
    if result["outcome"] == "skipped":  # the machine was already busy for minutes: the reading says so
        assert "over 5 minutes" in result["message"] and "only watch mode's samples tell" in result["message"]
