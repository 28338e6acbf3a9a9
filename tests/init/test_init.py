"""``fraiseql-check init`` driven by flags, as a script would: what it writes, that no secret is
written, that the config loads, the refusal to overwrite."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from tests.init.conftest import FakeFraiseQLV1
from tests.support.checkdir import CheckDir
from tests.support.fraiseql_v2 import DEFAULT_TOKEN, FakeFraiseQLV2
from tests.support.services import free_port

PASSWORD = "hunter2-db-secret"
REDIS_PASSWORD = "redis-pass-secret"
DSN = f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/test"
WRITTEN = [
    ".github/workflows/fraiseql-checks.yml",
    "checks/check_api.py",
    "checks/conftest.py",
    "ci/gitlab-fraiseql-checks.yml",
    "fraiseql-checks.yaml",
]


def files_in(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


def test_flags_write_the_config_checks_and_ci_with_no_secret_in_them(
    checkdir: CheckDir, fraiseql_v2: FakeFraiseQLV2
) -> None:
    result = checkdir.run(
        "init", "--yes", "--no-run", "--url", fraiseql_v2.url, "--database-url", DSN,
        "--redis-url", f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0", "--suites", "health",
        env={"FRAISEQL_METRICS_TOKEN": DEFAULT_TOKEN},
    )  # fmt: skip
    assert result.ret == 0, result.stderr
    assert result.stderr == ""
    assert files_in(checkdir.path) == WRITTEN
    # /metrics was asked with the token, and its series told the version
    assert fraiseql_v2.headers_of("/metrics")[-1]["Authorization"] == f"Bearer {DEFAULT_TOKEN}"
    result.fnmatch_lines([f"  FraiseQL 2.15.0 at {fraiseql_v2.url}: healthy (HTTP 200); profile fraiseql-v2 (its /metrics shows * series only it has)"])  # fmt: skip
    for name in WRITTEN:
        text = (checkdir.path / name).read_text()
        for secret in (PASSWORD, REDIS_PASSWORD, DEFAULT_TOKEN):
            assert secret not in text, f"{secret} written in {name}"
    config = yaml.safe_load((checkdir.path / "fraiseql-checks.yaml").read_text())
    assert config == {
        "paths": ["checks"],
        "suites": ["health"],
        "fraiseql": {"url": fraiseql_v2.url, "profile": "fraiseql-v2"},
        "database": {"dsn": "${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"},
        "cache": {"url": "${REDIS_URL:-redis://127.0.0.1:6379/0}"},
    }
    assert (
        "# metrics_token: from FRAISEQL_METRICS_TOKEN in the environment"
        in (checkdir.path / "fraiseql-checks.yaml").read_text()
    )
    workflow = yaml.safe_load((checkdir.path / ".github/workflows/fraiseql-checks.yml").read_text())
    step = workflow["jobs"]["checks"]["steps"][3]
    assert step["env"] == {
        "DATABASE_URL": "${{ secrets.DATABASE_URL }}",
        "FRAISEQL_METRICS_TOKEN": "${{ secrets.FRAISEQL_METRICS_TOKEN }}",
        "REDIS_URL": "${{ secrets.REDIS_URL }}",
    }
    assert step["run"] == "fraiseql-check --junitxml checks.xml --report-json checks.json"


def test_the_written_config_loads_and_the_checks_are_collected(checkdir: CheckDir, fraiseql_v2: FakeFraiseQLV2) -> None:
    assert checkdir.run("init", "--yes", "--no-run", "--url", fraiseql_v2.url, "--database-url", DSN).ret == 0
    # without DATABASE_URL in the environment too: the config names it with a default
    collected = checkdir.run("--collect-only", "-q")
    assert collected.ret == 0, collected.stdout + collected.stderr
    lines = collected.outlines
    assert "checks/check_api.py::check_graphql_answers_smoke_query" in lines
    assert "suites/health/check_fraiseql.py::check_fraiseql_healthy" in lines  # the suite the config names


def test_the_checks_run_once_against_the_server(checkdir: CheckDir, fraiseql_v2: FakeFraiseQLV2) -> None:
    result = checkdir.run("init", "--yes", "--url", fraiseql_v2.url, "--database-url", DSN, "--suites", "")
    assert result.ret == 0, result.stderr
    result.fnmatch_lines(
        [
            "running the checks once: fraiseql-check",
            "collected 1 check",
            "*1 passed in *",
            "the first run exited 0 (all passed)",
            "Next:",
            "  export DATABASE_URL=...   # the config reads these secrets from the environment",
            "  fraiseql-check --watch *",
        ]
    )
    graphql = [headers for method, path, headers in fraiseql_v2.requests if path == "/graphql"]
    assert len(graphql) == 1  # the example check's query


def test_a_v1_server_is_told_apart_by_its_series(checkdir: CheckDir, fraiseql_v1: FakeFraiseQLV1) -> None:
    result = checkdir.run("init", "--yes", "--no-run", "--url", fraiseql_v1.url)
    assert result.ret == 0, result.stderr
    result.fnmatch_lines([f"  FraiseQL at {fraiseql_v1.url}: healthy (HTTP 200); profile fraiseql-v1 (its /metrics shows * series only it has)"])  # fmt: skip
    assert yaml.safe_load((checkdir.path / "fraiseql-checks.yaml").read_text())["fraiseql"]["profile"] == "fraiseql-v1"


def test_without_a_token_v2_is_told_by_its_readiness_path(checkdir: CheckDir, fraiseql_v2: FakeFraiseQLV2) -> None:
    result = checkdir.run("init", "--yes", "--no-run", "--url", fraiseql_v2.url)
    assert result.ret == 0, result.stderr
    result.fnmatch_lines(
        [
            f"  FraiseQL 2.15.0 at {fraiseql_v2.url}: healthy (HTTP 200); profile fraiseql-v2 "
            "(it answers /readiness); /metrics needs a token: set FRAISEQL_METRICS_TOKEN"
        ]
    )


def test_a_given_profile_wins_over_the_probe(checkdir: CheckDir, fraiseql_v2: FakeFraiseQLV2) -> None:
    result = checkdir.run("init", "--yes", "--no-run", "--url", fraiseql_v2.url, "--profile", "fraiseql-v1")
    assert result.ret == 0, result.stderr
    config = (checkdir.path / "fraiseql-checks.yaml").read_text()
    assert 'profile: "fraiseql-v1"  # given' in config


def test_an_unreachable_url_is_one_line_and_the_wizard_goes_on(checkdir: CheckDir) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = checkdir.run("init", "--yes", "--no-run", "--url", url)
    assert result.ret == 0, result.stderr
    assert [line for line in result.outlines if url in line] == [
        f"  cannot reach {url}: connection refused; profile fraiseql-v2 (the default)"
    ]
    assert files_in(checkdir.path) == WRITTEN


def test_an_existing_file_is_not_overwritten_and_nothing_is_written(
    checkdir: CheckDir, fraiseql_v2: FakeFraiseQLV2
) -> None:
    checkdir.write("checks/conftest.py", "MINE = 1\n")
    result = checkdir.run("init", "--yes", "--url", fraiseql_v2.url)
    assert result.ret == 4
    assert result.stderr == "ERROR: checks/conftest.py exists: nothing written (--force replaces it)\n"
    assert files_in(checkdir.path) == ["checks/conftest.py"]
    assert (checkdir.path / "checks/conftest.py").read_text() == "MINE = 1\n"
    assert fraiseql_v2.requests == []  # refused before asking anything

    forced = checkdir.run("init", "--yes", "--no-run", "--force", "--url", fraiseql_v2.url)
    assert forced.ret == 0, forced.stderr
    assert "MINE" not in (checkdir.path / "checks/conftest.py").read_text()
    assert files_in(checkdir.path) == WRITTEN


def test_an_existing_pyproject_gets_the_table_and_keeps_the_rest(checkdir: CheckDir) -> None:
    original = '[project]\nname = "api"\n\n[tool.ruff]\nline-length = 100\n'
    checkdir.write("pyproject.toml", original)
    result = checkdir.run("init", "--yes", "--no-run", "--database-url", DSN)
    assert result.ret == 0, result.stderr
    text = (checkdir.path / "pyproject.toml").read_text()
    assert text.startswith(original)
    data = tomllib.loads(text)
    assert data["project"] == {"name": "api"} and data["tool"]["ruff"] == {"line-length": 100}
    assert data["tool"]["fraiseql-checks"]["database"] == {
        "dsn": "${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"
    }
    assert not (checkdir.path / "fraiseql-checks.yaml").exists()
    collected = checkdir.run("--collect-only", "-q")
    assert collected.ret == 0, collected.stderr
    assert "configfile: pyproject.toml" not in collected.stderr

    again = checkdir.run("init", "--yes", "--no-run")
    assert again.ret == 4
    assert again.stderr == (
        "ERROR: pyproject.toml [tool.fraiseql-checks], checks/conftest.py, checks/check_api.py, "
        ".github/workflows/fraiseql-checks.yml, ci/gitlab-fraiseql-checks.yml exist: nothing written "
        "(--force replaces it)\n"
    )
    assert (checkdir.path / "pyproject.toml").read_text() == text

    forced = checkdir.run("init", "--yes", "--no-run", "--force", "--redis-url", "redis://127.0.0.1:6379/1")
    assert forced.ret == 0, forced.stderr
    data = tomllib.loads((checkdir.path / "pyproject.toml").read_text())
    assert "database" not in data["tool"]["fraiseql-checks"]  # the old tables are gone, not merged
    assert data["tool"]["fraiseql-checks"]["cache"] == {"url": "redis://127.0.0.1:6379/1"}
    assert data["tool"]["ruff"] == {"line-length": 100}


def test_bad_flags_are_one_line_and_write_nothing(checkdir: CheckDir) -> None:
    result = checkdir.run("init", "--yes", "--suites", "health,helth")
    assert (result.ret, result.stderr) == (
        4,
        "ERROR: --suites: unknown suite 'helth' (known suites: alerts, audit, health, host, all)\n",
    )
    result = checkdir.run("init", "--yes", "--database-url", "mysql://db/app")
    assert (result.ret, result.stderr) == (
        4,
        "ERROR: --database-url: expected a postgresql:// or postgres:// URL, got 'mysql://db/app'\n",
    )
    assert files_in(checkdir.path) == []


def test_a_folder_that_cannot_be_written_is_one_line(checkdir: CheckDir) -> None:
    """A path through a file (as a read-only folder, which root could write anyway): no traceback."""
    checkdir.write("taken", "a file, not a folder\n")
    result = checkdir.run("init", "--yes", "--no-run", "taken/project")
    assert result.ret == 4
    target = checkdir.path.resolve() / "taken" / "project" / "fraiseql-checks.yaml"
    assert result.stderr == f"ERROR: cannot write {target}: Not a directory\n"
    assert files_in(checkdir.path) == ["taken"]
