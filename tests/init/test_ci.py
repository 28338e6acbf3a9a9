"""The CI jobs init writes: valid for GitHub Actions and GitLab (their published schemas, as
check-jsonschema vendors them), and the SLO gate's line the same as docs/slo.md's recipes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fraiseql_checks.init import ci
from tests.support import REPO

SECRETS = [[], ["DATABASE_URL", "FRAISEQL_METRICS_TOKEN", "REDIS_URL"]]


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def valid(path: Path, text: str, schema: str) -> Any:
    """``text`` written to ``path``, held to the vendored ``schema``, and read back as YAML."""
    path.write_text(text)
    done = check_jsonschema(schema, path)
    assert done.returncode == 0, done.stdout + done.stderr
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("secrets", SECRETS, ids=["no-secrets", "secrets"])
def test_the_github_workflow_is_valid(tmp_path: Path, secrets: list[str]) -> None:
    jobs = valid(tmp_path / "fraiseql-checks.yml", ci.github_workflow(secrets), "vendor.github-workflows")["jobs"]
    assert [step.get("run") for step in jobs["slo-gate"]["steps"]][-2] == ci.GITHUB_SLO_GATE
    assert jobs["slo-gate"]["needs"] == "checks"


@pytest.mark.parametrize("secrets", SECRETS, ids=["no-secrets", "secrets"])
def test_the_gitlab_jobs_are_valid(tmp_path: Path, secrets: list[str]) -> None:
    jobs = valid(tmp_path / "gitlab.yml", ci.gitlab_jobs(secrets), "vendor.gitlab-ci")
    assert jobs["fraiseql-checks"]["script"][-1] == ci.CHECKS_GATE
    assert jobs["slo-gate"]["script"][-1] == ci.GITLAB_SLO_GATE


def test_the_validator_refuses_a_broken_workflow(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(ci.github_workflow([]).replace("runs-on:", "run-on:"))
    assert check_jsonschema("vendor.github-workflows", path).returncode == 1
    path.write_text(ci.gitlab_jobs([]).replace("script:", "scripts:"))
    assert check_jsonschema("vendor.gitlab-ci", path).returncode == 1


def test_docs_slo_recipes_use_the_same_gate_lines() -> None:
    page = (REPO / "docs" / "slo.md").read_text()
    assert f"run: {ci.GITHUB_SLO_GATE}" in page
    assert f"- {ci.GITLAB_SLO_GATE}" in page
