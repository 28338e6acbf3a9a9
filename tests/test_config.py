"""Configuration files, precedence, and every kind of bad input: exit 4, one line."""

from __future__ import annotations

import pytest

from tests.conftest import CheckDir

SLOW = """
import asyncio

async def check_slowish():
    await asyncio.sleep(0.5)
"""


def test_pyproject_and_yaml_are_read_and_the_command_line_wins(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_s.py", SLOW)
    checkdir.write("pyproject.toml", '[tool.fraiseql-checks]\ntimeout = "200ms"\n')
    _, outcomes = checkdir.outcomes()
    assert list(outcomes.values()) == ["error"]
    _, outcomes = checkdir.outcomes("--timeout", "5")
    assert list(outcomes.values()) == ["passed"]
    checkdir.write("fraiseql-checks.yaml", "timeout: 5s\n")  # beside pyproject: the YAML file is used
    result, outcomes = checkdir.outcomes()
    assert list(outcomes.values()) == ["passed"]
    result.fnmatch_lines(["rootdir: *, configfile: fraiseql-checks.yaml"])


def test_config_is_found_from_a_subfolder_and_with_c(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_s.py", SLOW)
    checkdir.write("fraiseql-checks.yaml", "timeout: 100ms\n")
    checkdir.write("other.yaml", "timeout: 5s\n")
    _, outcomes = checkdir.outcomes("checks")
    assert list(outcomes.values()) == ["error"]
    _, outcomes = checkdir.outcomes("-c", "other.yaml")
    assert list(outcomes.values()) == ["passed"]


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        (
            "pyproject.toml",
            '[tool.fraiseql-checks]\ntimeoutt = "5s"\n',
            "ERROR: pyproject.toml: [[]tool.fraiseql-checks] unknown key 'timeoutt' (expected one of: *timeout*)",
        ),
        (
            "pyproject.toml",
            "[tool.fraiseql-checks]\nconcurrency = 'many'\n",
            "ERROR: pyproject.toml: [[]tool.fraiseql-checks] concurrency: expected a whole number of at least 1, got 'many'",
        ),
        (
            "pyproject.toml",
            "[tool.fraiseql-checks\ntimeout = 1\n",
            "ERROR: *pyproject.toml: invalid TOML: *",
        ),
        (
            "fraiseql-checks.yaml",
            "timeout: [5s\n",
            "ERROR: *fraiseql-checks.yaml: invalid YAML (line *, column *): *",
        ),
        (
            "fraiseql-checks.yaml",
            "- just\n- a list\n",
            "ERROR: *fraiseql-checks.yaml: expected a mapping of settings at the top level, got list",
        ),
        (
            "fraiseql-checks.yaml",
            "timeout: soon\n",
            "ERROR: fraiseql-checks.yaml: timeout: expected a duration like '30s', '1m' or '1h30m', got 'soon'",
        ),
        (
            "fraiseql-checks.yaml",
            "fraiseql:\n  url: ftp://example.com\n",
            "ERROR: fraiseql-checks.yaml: fraiseql: url: expected an http:// or https:// URL, got 'ftp://example.com'",
        ),
        (
            "fraiseql-checks.yaml",
            "severity: urgent\n",
            "ERROR: fraiseql-checks.yaml: severity: expected one of critical, warning, info, got 'urgent'",
        ),
    ],
)
def test_bad_config_is_one_line_and_exit_4(checkdir: CheckDir, filename: str, content: str, expected: str) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    checkdir.write(filename, content)
    result = checkdir.run()
    assert result.ret == 4
    assert len(result.stderr.splitlines()) == 1, result.stderr
    result.stderr_lines([expected])
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--concurrency", "abc"], "ERROR: --concurrency: expected a whole number of at least 1, got 'abc'"),
        (["--timeout", "-1"], "ERROR: --timeout: expected a positive duration, got '-1'"),
        (["--no-such-flag"], "ERROR: unrecognized arguments: --no-such-flag"),
        (["--tb", "fancy"], "ERROR: argument --tb: invalid choice: 'fancy'*"),
        (["-c", "missing.yaml"], "ERROR: config file not found: missing.yaml"),
        (["-p", "no_such_plugin_module"], "ERROR: cannot load plugin 'no_such_plugin_module': *"),
    ],
)
def test_usage_errors_exit_4(checkdir: CheckDir, args: list[str], expected: str) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    result = checkdir.run(*args)
    assert result.ret == 4
    result.stderr_lines([expected])
    assert "Traceback" not in result.stderr


def test_environment_overrides_the_file_and_masks_secrets(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_env.py",
        """
        from fraiseql_checks.targets import targets_of

        def check_dsn(config):
            assert targets_of(config).database_dsn == "postgresql://app:env-secret-9@db/app"
            raise RuntimeError("connecting with env-secret-9 failed")
        """,
    )
    checkdir.write("fraiseql-checks.yaml", "database:\n  dsn: postgresql://app:file-secret@db/app\n")
    result, report = checkdir.run_json(env={"DATABASE_URL": "postgresql://app:env-secret-9@db/app"})
    (item,) = report["results"]
    assert item["message"] == "RuntimeError: connecting with *** failed"
    assert "env-secret-9" not in result.stdout + result.stderr
