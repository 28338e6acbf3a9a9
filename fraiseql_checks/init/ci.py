"""The CI jobs ``fraiseql-check init`` writes: the checks as a gate, then the SLO gate.

The SLO gate commands are the ones docs/slo.md shows in its CI recipes (a test holds
the page to them), so a user reading either finds the same line.
"""

from __future__ import annotations

from collections.abc import Sequence

GITHUB_PATH = ".github/workflows/fraiseql-checks.yml"
GITLAB_PATH = "ci/gitlab-fraiseql-checks.yml"
#: The checks as a CI gate: exit 1 on any failure, a JUnit report the CI shows.
CHECKS_GATE = "fraiseql-check --junitxml checks.xml --report-json checks.json"
#: docs/slo.md's GitHub Actions recipe: block while the error budget is spent or burning fast.
GITHUB_SLO_GATE = "fraiseql-check slo --gate --min-budget 10% --max-burn-rate 6 --burn-window 1h --junitxml slo.xml"
#: docs/slo.md's GitLab recipe: each SLO in the merge request's test tab.
GITLAB_SLO_GATE = "fraiseql-check slo --gate --min-budget 10% --junitxml slo.xml --report-json slo.json"
INSTALL = "pip install fraiseql-checks"
PYTHON = "3.12"
#: Check SLOs read the history the watchers keep: their result store (docs/slo.md).
STORE_VARIABLE = "FRAISEQL_CHECKS_STORE"
STORE_SECRET = "CHECKS_STORE_URL"


#: The steps both GitHub jobs start with: the repository, Python, the package.
GITHUB_SETUP = f"""\
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {{python-version: "{PYTHON}"}}
      - run: {INSTALL}
"""


def _github_env(lines: Sequence[str]) -> str:
    """A step's ``env:`` block (8 spaces in), or nothing when there are no variables."""
    if not lines:
        return ""
    return "        env:\n" + "".join(f"          {line}\n" for line in lines)


def _secret(name: str, secret: str | None = None) -> str:
    return f"{name}: ${{{{ secrets.{secret or name} }}}}"


def github_workflow(secrets: Sequence[str]) -> str:
    """``.github/workflows/fraiseql-checks.yml``: the checks, then the SLO gate; ``secrets``
    are the environment variables the config reads, each from the repository secret of that name."""
    needed = ", ".join(secrets) if secrets else "none"
    checks_env = _github_env([_secret(name) for name in secrets])
    store = _secret(STORE_VARIABLE, STORE_SECRET) + "   # postgresql://... the watchers write"
    slo_env = _github_env([*(_secret(name) for name in secrets), store])
    return f"""\
# Written by `fraiseql-check init` (docs/init.md): the checks as a gate, then the SLO gate.
# Repository secrets it reads: {needed}; {STORE_SECRET} for the SLO gate's history.
name: fraiseql-checks
on:
  push:
    branches: [main]
  pull_request:
  workflow_dispatch:
jobs:
  checks:
    runs-on: ubuntu-latest
    steps:
{GITHUB_SETUP}      - name: FraiseQL checks
{checks_env}        run: {CHECKS_GATE}
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: checks-report
          path: |
            checks.xml
            checks.json
  slo-gate:
    needs: checks
    runs-on: ubuntu-latest
    steps:
{GITHUB_SETUP}      - name: Error budget gate
{slo_env}        run: {GITHUB_SLO_GATE}
      - uses: actions/upload-artifact@v4
        if: always()
        with: {{name: slo-report, path: slo.xml}}
"""


def gitlab_jobs(secrets: Sequence[str]) -> str:
    """``ci/gitlab-fraiseql-checks.yml``: the same two jobs, to ``include`` from ``.gitlab-ci.yml``.

    GitLab puts CI/CD variables in every job's environment, so ``secrets`` only appear in
    the header, as the variables to define (masked)."""
    needed = ", ".join(secrets) if secrets else "none"
    return f"""\
# Written by `fraiseql-check init` (docs/init.md): the checks as a gate, then the SLO gate.
# Include it from .gitlab-ci.yml:
#   include:
#     - local: {GITLAB_PATH}
# CI/CD variables it reads (mark them masked): {needed}; {STORE_SECRET} for the SLO gate's history.
fraiseql-checks:
  stage: test
  image: python:{PYTHON}-slim
  script:
    - {INSTALL}
    - {CHECKS_GATE}
  artifacts:
    when: always
    reports:
      junit: checks.xml
    paths: [checks.json]

slo-gate:
  stage: test
  needs: [fraiseql-checks]
  image: python:{PYTHON}-slim
  script:
    - {INSTALL}
    - {GITLAB_SLO_GATE}
  variables:
    {STORE_VARIABLE}: ${STORE_SECRET}
  artifacts:
    when: always
    reports:
      junit: slo.xml
    paths: [slo.json]
"""
