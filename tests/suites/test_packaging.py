"""The shipped suites are part of the installed package: a real ``pip install`` of this
repository into a fresh virtual environment, then ``fraiseql-check`` in an empty folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import setuptools

from tests.support import REPO

SUITES = {"alerts", "audit", "health", "host"}


def test_every_package_of_the_tree_is_listed_for_installation() -> None:
    """pyproject.toml lists the packages (a mapped folder is not something setuptools' finder
    sees): a package added to the tree and not to the list would be missing from the wheel."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    tree = set(setuptools.find_packages(str(REPO), include=["fraiseql_checks", "fraiseql_checks.*"]))
    assert tree - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - tree == {"fraiseql_checks._suites"}


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with the repository installed as a user installs it (not editable):
    its ``bin`` folder. The sources are copied first, so the build writes nothing into the tree."""
    base = tmp_path_factory.mktemp("installed")
    source = base / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("fraiseql_checks", "checks"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin"


def run(bin_dir: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAISEQL_", "DATABASE_URL", "REDIS_URL"))}
    env.update({"COLUMNS": "80", "NO_COLOR": "1"})
    return subprocess.run(
        [str(bin_dir / "fraiseql-check"), *args], cwd=folder, capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.slow
def test_the_wheel_holds_every_suite(installed: Path) -> None:
    done = subprocess.run(
        [str(installed / "python"), "-c", "import fraiseql_checks.suites as s; print(s.ROOT)"],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    )
    root = Path(done.stdout.strip())
    assert root.parts[-2:] == ("fraiseql_checks", "_suites") and "site-packages" in root.parts, root
    assert {p.name for p in root.iterdir() if p.is_dir()} == SUITES
    shipped = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    in_repo = {
        p.relative_to(REPO / "checks").as_posix()
        for p in (REPO / "checks").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert shipped == in_repo  # conftests and data files too


@pytest.mark.slow
def test_an_empty_folder_runs_the_host_suite_with_readable_ids(installed: Path, tmp_path: Path) -> None:
    done = run(installed, tmp_path, "--suite", "host", "--report-json", "report.json")
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 1 only if this machine is short of resources
    ids = {r["id"]: r["outcome"] for r in json.loads((tmp_path / "report.json").read_text())["results"]}
    assert set(ids) == {
        "suites/host/check_host.py::check_disk_space[/]",
        "suites/host/check_host.py::check_memory_usage",
        "suites/host/check_host.py::check_cpu_usage",
    }
    assert "error" not in ids.values(), ids
    # with no configuration at all, the same suite
    done = run(installed, tmp_path, "-q", "--collect-only")
    assert done.returncode == 0, done.stdout + done.stderr
    assert {line for line in done.stdout.splitlines() if "::" in line} == set(ids)


@pytest.mark.slow
def test_a_failing_shipped_check_shows_its_own_source(installed: Path, tmp_path: Path) -> None:
    """The suites live inside the package, whose own frames tracebacks hide: not theirs."""
    (tmp_path / "fraiseql-checks.yaml").write_text('suites: [host]\nthresholds:\n  "host.disk_free_min_percent": 100\n')
    done = run(installed, tmp_path, "--report-json", "report.json")
    assert done.returncode == 1, done.stdout + done.stderr
    by_id = {r["id"]: r for r in json.loads((tmp_path / "report.json").read_text())["results"]}
    failed = by_id["suites/host/check_host.py::check_disk_space[/]"]
    assert failed["outcome"] == "failed"
    # the failure section shows the check's own line, as for a check of the user's
    assert 'assert free_percent >= minimum, f"{path}: {free_percent:.1f}% free' in done.stdout, done.stdout
