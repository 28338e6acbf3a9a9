"""Configuration files, precedence, and every kind of bad input: exit 4, one line."""

from __future__ import annotations

import pytest

from tests.support.checkdir import CheckDir

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
            "ERROR: pyproject.toml: [[]tool.fraiseql-checks] unknown key 'timeoutt' (did you mean 'timeout'?)",
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
        from fraiseql_checks.targets.plugin import targets_of

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


# ---- durations: finite, positive, at most 3650 days ------------------------------------

BAD_DURATIONS = [
    ("nan", "expected a finite duration like '30s' or '1m', got 'nan'"),
    (".inf", "expected a finite duration like '30s' or '1m', got inf"),
    ("-1", "expected a positive duration, got -1"),
    ("1e308", "expected at most 3650d, got '1e308'"),
]


@pytest.mark.parametrize("collect_only", [False, True], ids=["run", "collect-only"])
@pytest.mark.parametrize(("value", "problem"), BAD_DURATIONS, ids=[v for v, _ in BAD_DURATIONS])
@pytest.mark.parametrize("key", ["interval", "timeout", "start_jitter", "retention"])
def test_a_duration_in_the_file_is_finite_positive_and_bounded(
    checkdir: CheckDir, key: str, value: str, problem: str, collect_only: bool
) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    checkdir.write("fraiseql-checks.yaml", f"{key}: {value}\n")
    result = checkdir.run(*(["--collect-only"] if collect_only else []))
    assert result.ret == 4, result.stdout + result.stderr
    assert result.stderr.splitlines() == [f"ERROR: fraiseql-checks.yaml: {key}: {problem}"]


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        (
            "fraiseql-checks.yaml",
            "database:\n  connect_timeout: .nan\n",
            "fraiseql-checks.yaml: database: connect_timeout: expected a finite duration like '30s' or '1m', got nan",
        ),
        (
            "fraiseql-checks.yaml",
            "flapping:\n  window: 1e308\n",
            "fraiseql-checks.yaml: flapping: window: expected at most 3650d, got '1e308'",
        ),
        (
            "pyproject.toml",
            "[tool.fraiseql-checks]\ninterval = nan\n",
            "pyproject.toml: [tool.fraiseql-checks] interval: expected a finite duration like '30s' or '1m', got nan",
        ),
        (
            "pyproject.toml",
            "[tool.fraiseql-checks]\ntimeout = -inf\n",
            "pyproject.toml: [tool.fraiseql-checks] timeout: expected a finite duration like '30s' or '1m', got -inf",
        ),
        (
            "pyproject.toml",
            '[tool.fraiseql-checks]\nhttp_timeout = "4000d"\n',
            "pyproject.toml: [tool.fraiseql-checks] http_timeout: expected at most 3650d, got '4000d'",
        ),
        (
            "fraiseql-checks.yaml",
            "interval: 0\n",
            "fraiseql-checks.yaml: interval: expected a duration longer than zero, got 0",
        ),
    ],
)
def test_durations_in_sections_and_in_toml_too(checkdir: CheckDir, filename: str, content: str, expected: str) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    checkdir.write(filename, content)
    for args in ((), ("--collect-only",)):
        result = checkdir.run(*args)
        assert result.ret == 4, result.stdout + result.stderr
        assert result.stderr.splitlines() == [f"ERROR: {expected}"]


def test_no_start_jitter_is_zero(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 0\n")
    result = checkdir.run()
    assert result.ret == 0, result.stderr
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 0s\n")
    assert checkdir.run("--collect-only").ret == 0


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("nan", "expected a finite duration like '30s' or '1m', got 'nan'"),
        ("inf", "expected a finite duration like '30s' or '1m', got 'inf'"),
        ("1e308", "expected at most 3650d, got '1e308'"),
        ("0", "expected a duration longer than zero, got '0'"),
    ],
)
@pytest.mark.parametrize("collect_only", [False, True], ids=["run", "collect-only"])
def test_a_duration_on_the_command_line_too(checkdir: CheckDir, value: str, problem: str, collect_only: bool) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    result = checkdir.run("--timeout", value, *(["--collect-only"] if collect_only else []))
    assert result.ret == 4
    assert result.stderr.splitlines() == [f"ERROR: --timeout: {problem}"]


def test_a_duration_in_an_environment_variable_too(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    checkdir.write(
        "pauseplugin.py",
        """
        from fraiseql_checks.config import Setting, as_duration
        from fraiseql_checks.hookspec import hookimpl

        @hookimpl
        def fraiseql_addoption(parser):
            parser.addsetting(Setting("pause", as_duration, 1.0, "a pause", env="PAUSE"))
        """,
    )
    assert checkdir.run("-p", "pauseplugin", env={"PAUSE": "2s"}).ret == 0
    for value, problem in [
        ("nan", "expected a finite duration like '30s' or '1m', got 'nan'"),
        ("-inf", "expected a finite duration like '30s' or '1m', got '-inf'"),
        ("1e308", "expected at most 3650d, got '1e308'"),
    ]:
        result = checkdir.run("-p", "pauseplugin", "--collect-only", env={"PAUSE": value})
        assert result.ret == 4
        assert result.stderr.splitlines() == [f"ERROR: environment variable PAUSE: {problem}"]


@pytest.mark.parametrize(
    ("decorator", "problem"),
    [
        ("@check(interval=float('nan'))", "interval: expected a finite duration like '30s' or '1m', got nan"),
        ("@check(interval=float('inf'))", "interval: expected a finite duration like '30s' or '1m', got inf"),
        ("@check(timeout='1e308')", "timeout: expected at most 3650d, got '1e308'"),
        ("@check(timeout=-1)", "timeout: expected a positive duration, got -1"),
        (
            "@check(failures_within=(3, float('nan')))",
            "failures_within window: expected a finite duration like '30s' or '1m', got nan",
        ),
    ],
)
@pytest.mark.parametrize("collect_only", [False, True], ids=["run", "collect-only"])
def test_a_bad_duration_in_check_is_a_collection_error(
    checkdir: CheckDir, decorator: str, problem: str, collect_only: bool
) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    checkdir.write(
        "checks/check_bad.py", f"from fraiseql_checks import check\n\n{decorator}\ndef check_bad():\n    pass\n"
    )
    result = checkdir.run(*(["--collect-only"] if collect_only else []))
    assert result.ret == 2, result.stdout + result.stderr
    result.fnmatch_lines([f"ERROR checks/check_bad.py - error importing check module: ValueError: {problem}"])
    assert "INTERNALERROR" not in result.stdout + result.stderr


# ---- duplicate keys: an error in every YAML file the tool reads ---------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "timeout: 5s\ninterval: 1m\ntimeout: 1s\n",
            "fraiseql-checks.yaml: invalid YAML (line 3, column 1): duplicate key 'timeout' (first on line 1)",
        ),
        (
            "database:\n  dsn: postgresql://a@db/x\n  pool_size: 2\n  dsn: postgresql://b@db/x\n",
            "fraiseql-checks.yaml: invalid YAML (line 4, column 3): duplicate key 'dsn' (first on line 2)",
        ),
        (
            "{severity: info, severity: critical}\n",
            "fraiseql-checks.yaml: invalid YAML (line 1, column 18): duplicate key 'severity' (first on line 1)",
        ),
        (
            "plugins: []\nplugins: [no_such_plugin]\n",
            "fraiseql-checks.yaml: invalid YAML (line 2, column 1): duplicate key 'plugins' (first on line 1)",
        ),
    ],
)
def test_a_duplicate_key_in_the_yaml_config_is_exit_4(checkdir: CheckDir, content: str, expected: str) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    checkdir.write("fraiseql-checks.yaml", content)
    for args in ((), ("--collect-only",)):
        result = checkdir.run(*args)
        assert result.ret == 4
        assert [line.replace(str(checkdir.path) + "/", "") for line in result.stderr.splitlines()] == [
            f"ERROR: {expected}"
        ]


def test_yaml_merge_keys_may_still_be_overridden(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    checkdir.write(
        "fraiseql-checks.yaml",
        "flapping: &base {changes: 3, window: 5m}\nalertmanager:\n  group_wait: 10s\n"
        "slo:\n  <<: {refresh: 1m}\n  refresh: 2m\n",
    )
    assert checkdir.run("--collect-only").ret == 0


def test_a_duplicate_key_in_pyproject_is_exit_4(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    checkdir.write("pyproject.toml", '[tool.fraiseql-checks]\ntimeout = "5s"\ntimeout = "1s"\n')
    result = checkdir.run()
    assert result.ret == 4
    assert result.stderr.splitlines() == [
        f"ERROR: {checkdir.path}/pyproject.toml: invalid TOML: Cannot overwrite a value (at line 3, column 15)"
    ]


def test_a_duplicate_key_in_an_slo_file_is_exit_4(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_a.py", "def check_a():\n    pass\n")
    checkdir.write(
        "slos.yaml",
        """
        slos:
          - name: availability
            objective: 99.9%
            objective: 90%
            sli: {error_ratio: 'vector(0)'}
        """,
    )
    result = checkdir.run("slo")
    assert result.ret == 4
    assert result.stderr.splitlines() == [
        "ERROR: slos.yaml: not valid YAML (line 4, column 5): duplicate key 'objective' (first on line 3)"
    ]


def test_a_duplicate_key_in_a_rule_file_is_a_contract_error(checkdir: CheckDir) -> None:
    from fraiseql_checks.targets.contract import ContractError, rule_references

    path = checkdir.write(
        "alerts/dup.yml",
        """
        groups:
          - name: g
            rules:
              - alert: Down
                expr: up == 0
                expr: vector(1)
        """,
    )
    with pytest.raises(ContractError) as info:
        rule_references(path, "alerts/dup.yml")
    assert str(info.value) == (
        "alerts/dup.yml: cannot read the rule file (line 6, column 9): duplicate key 'expr' (first on line 5)"
    )


def test_a_misspelt_threshold_is_refused_with_the_name_it_meant(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok():\n    pass\n")
    checkdir.write("fraiseql-checks.yaml", "thresholds:\n  host.cpu_used_max_precent: 90\n")
    result = checkdir.run()
    assert result.ret == 4
    assert result.stderr.splitlines() == [
        "ERROR: fraiseql-checks.yaml: thresholds: unknown threshold 'host.cpu_used_max_precent'"
        " (did you mean 'host.cpu_used_max_percent'?)"
    ]


def test_a_threshold_override_reaches_the_shipped_check(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_limit.py",
        "def check_limit(config):\n    assert config.threshold('cache.ping_max_seconds') == 0.1\n"
        "    assert config.threshold('cache.memory_max_percent') == 85  # its declared default\n",
    )
    checkdir.write("fraiseql-checks.yaml", "thresholds:\n  cache.ping_max_seconds: 0.1\n")
    assert checkdir.run().ret == 0


def test_a_misspelt_tool_table_is_not_silently_ignored(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok():\n    pass\n")
    checkdir.write("pyproject.toml", '[tool.fraiseql_checks]\npaths = ["checks"]\n')
    result = checkdir.run()
    assert result.ret == 4
    assert result.stderr.splitlines() == [
        f"ERROR: {checkdir.path / 'pyproject.toml'}: [tool.fraiseql_checks] is not read:"
        " did you mean [tool.fraiseql-checks]?"
    ]


def test_a_misspelt_key_inside_a_section_says_what_it_meant(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok():\n    pass\n")
    checkdir.write("fraiseql-checks.yaml", "database:\n  pool_sise: 2\n")
    result = checkdir.run()
    assert result.ret == 4
    assert result.stderr.splitlines() == [
        "ERROR: fraiseql-checks.yaml: database: unknown key 'pool_sise' (did you mean 'pool_size'?)"
    ]


def test_section_settings_have_their_defaults_and_variables(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_sections.py",
        """
        def check_sections(config):
            database = config.get("database")
            assert database["pool_size"] == 4 and database["application_name"] == "fraiseql-checks"
            assert database["dsn"] == "postgresql://app@db.example/app"  # from DATABASE_URL
            assert config.get("cache")["timeout"] == 2.0                  # from the file
        """,
    )
    checkdir.write("fraiseql-checks.yaml", "cache:\n  timeout: 2s\n")
    result = checkdir.run(env={"DATABASE_URL": "postgresql://app@db.example/app"})
    assert result.ret == 0, result.stdout


def test_config_strings_name_environment_variables() -> None:
    from fraiseql_checks.config import expand_environment

    table = {
        "url": "${HOOK_URL}",
        "headers": {"Authorization": "Bearer ${TOKEN}"},
        "to": ["${TEAM:-oncall}@example.com", "costs $$5"],
        "port": 5432,
        "plain": "no variables",
    }
    expanded = expand_environment(table, {"HOOK_URL": "https://hooks.example.com/x", "TOKEN": "t0k"})
    assert expanded == {
        "url": "https://hooks.example.com/x",
        "headers": {"Authorization": "Bearer t0k"},
        "to": ["oncall@example.com", "costs $5"],
        "port": 5432,
        "plain": "no variables",
    }
    with pytest.raises(ValueError, match=r"^notify\.receivers\[1\]\.url: environment variable MISSING is not set$"):
        expand_environment({"receivers": [{}, {"url": "${MISSING}"}]}, {}, "notify")


def test_an_unset_variable_in_the_config_file_is_exit_4_naming_the_key(checkdir: CheckDir) -> None:
    checkdir.write("fraiseql-checks.yaml", "database:\n  dsn: ${NOT_SET_ANYWHERE}\n")
    checkdir.write("checks/check_ok.py", "def check_ok():\n    pass\n")
    found = checkdir.run()
    assert found.ret == 4
    assert found.stderr.strip().splitlines() == [
        "ERROR: fraiseql-checks.yaml: database.dsn: environment variable NOT_SET_ANYWHERE is not set"
    ]


@pytest.mark.parametrize(
    ("file", "args", "once", "watching"),
    [
        ("", [], 100, 1000),  # the documented defaults (docs/watch-mode.md: Settings)
        ("concurrency: 50\n", [], 50, 50),
        ("concurrency: 50\n", ["--concurrency", "7"], 7, 7),
    ],
)
def test_watch_mode_has_its_own_concurrency_default_and_a_given_value_wins(
    checkdir: CheckDir, file: str, args: list[str], once: int, watching: int
) -> None:
    from fraiseql_checks.cli import configure

    checkdir.write("fraiseql-checks.yaml", file)
    config, _ = configure(args, invocation_dir=checkdir.path)
    assert (config.get("concurrency"), config.watching) == (once, False)
    config, _ = configure(["--watch", *args], invocation_dir=checkdir.path)
    assert (config.get("concurrency"), config.watching) == (watching, True)
    # a worker is configured from the same command line, then stops being the watcher
    # (worker.py); a reload there reads the file again with watch mode's defaults
    config.option.watch = False
    config.option.watch_worker = True
    assert config.reread().get("concurrency") == watching
