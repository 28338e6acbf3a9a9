"""Targets from the config file and the environment, secrets masked everywhere, trace ids in reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.support.checkdir import CheckDir

PRINT_TARGETS = """
from fraiseql_checks.targets.plugin import targets_of

def check_targets(config, fraiseql):
    t = targets_of(config)
    f = t.fraiseql
    assert (f.urls, f.profile.name, f.readiness_path, f.metrics_path) == {expected!r}
    assert (t.database_dsn, t.cache_url, t.prometheus_url) == {services!r}
"""


def test_environment_overrides_the_file(checkdir: CheckDir) -> None:
    checkdir.write(
        "fraiseql-checks.yaml",
        """
        fraiseql:
          url: http://from-file:8000
          profile: fraiseql-v2
          metrics_path: /internal/metrics
        database:
          dsn: postgresql://app@from-file/app
        cache:
          url: redis://from-file:6379/0
        """,
    )
    checkdir.write(
        "check_env.py",
        PRINT_TARGETS.format(
            expected=(("http://a:1", "http://b:2"), "fraiseql-v1", "/ready", "/internal/metrics"),
            services=("postgresql://app@from-env/app", "redis://from-file:6379/0", "http://prom:9090"),
        ),
    )
    _result, report = checkdir.run_json(
        "check_env.py",
        env={
            "FRAISEQL_URL": "http://a:1/, http://b:2",
            "FRAISEQL_PROFILE": "fraiseql-v1",
            "DATABASE_URL": "postgresql://app@from-env/app",
            "PROMETHEUS_URL": "http://prom:9090/",
        },
    )
    assert report["results"][0]["outcome"] == "passed", report["results"][0]["message"]


def test_file_alone_and_profile_defaults(checkdir: CheckDir) -> None:
    checkdir.write("fraiseql-checks.yaml", "fraiseql:\n  url: http://only-file:8000\n")
    checkdir.write(
        "check_file.py",
        PRINT_TARGETS.format(
            expected=(("http://only-file:8000",), "fraiseql-v2", "/readiness", "/metrics"),
            services=(None, None, None),
        ),
    )
    _result, report = checkdir.run_json("check_file.py")
    assert report["results"][0]["outcome"] == "passed", report["results"][0]["message"]


def test_a_wrong_environment_value_is_a_usage_error(checkdir: CheckDir) -> None:
    checkdir.write("check_x.py", "def check_x():\n    pass\n")
    result = checkdir.run("check_x.py", env={"FRAISEQL_PROFILE": "fraiseql-v3"})
    assert result.ret == 4
    assert result.stderr.strip() == (
        "ERROR: environment variable FRAISEQL_PROFILE: expected one of fraiseql-v2, fraiseql-v1, got 'fraiseql-v3'"
    )
    result = checkdir.run("check_x.py", env={"DATABASE_URL": "mysql://root:hunter22@db/x"})
    assert result.ret == 4
    assert "hunter22" not in result.stderr
    assert "expected a postgresql:// or postgres:// URL" in result.stderr


BAD_URLS = [
    ("FRAISEQL_URL", "http://127.0.0.1:99999", "expected a port from 1 to 65535, got 'http://127.0.0.1:99999'"),
    ("FRAISEQL_URL", "http://api:8000,http://api:port", "expected a port from 1 to 65535, got 'http://api:port'"),
    ("FRAISEQL_URL", "http://", "expected a host name (http://host:port/...), got 'http://'"),
    ("FRAISEQL_URL", "https://[::1", "cannot parse the URL 'https://[::1': Invalid IPv6 URL"),
    ("PROMETHEUS_URL", "http://:9090", "expected a host name (http://host:port/...), got 'http://:9090'"),
    (
        "DATABASE_URL",
        "postgresql://app:pg-secret-91@127.0.0.1:99999/db",
        "expected a port from 1 to 65535, got 'postgresql://app:***@127.0.0.1:99999/db'",
    ),
    (
        "DATABASE_URL",
        "postgresql://app:pg/secret@91@db:5432/app",
        "expected a port from 1 to 65535, got 'postgresql://app:***@db:5432/app'",
    ),
    ("REDIS_URL", "redis://127.0.0.1:99999", "expected a port from 1 to 65535, got 'redis://127.0.0.1:99999'"),
    (
        "REDIS_URL",
        "redis://:redis-secret-5c@127.0.0.1:6379/notanumber",
        "expected a database number (redis://host:6379/0), got 'redis://:***@127.0.0.1:6379/notanumber'",
    ),
    (
        "REDIS_URL",
        "rediss://cache:6380?db=x&password=redis-secret-5c",
        "expected a database number (redis://host:6379/0), got 'rediss://cache:6380?db=x&password=***'",
    ),
    ("REDIS_URL", "unix://", "expected the socket's path (unix:///path/to/redis.sock), got 'unix://'"),
]


@pytest.mark.parametrize(("env", "value", "problem"), BAD_URLS, ids=[f"{e}={v}" for e, v, _ in BAD_URLS])
def test_a_broken_url_is_a_one_line_usage_error(checkdir: CheckDir, env: str, value: str, problem: str) -> None:
    checkdir.write("check_x.py", "def check_x():\n    pass\n")
    result = checkdir.run("check_x.py", env={env: value})
    assert result.ret == 4
    assert result.stderr.splitlines() == [f"ERROR: environment variable {env}: {problem}"]
    assert "secret" not in result.stdout + result.stderr


def test_a_broken_url_in_the_file_names_the_key(checkdir: CheckDir) -> None:
    checkdir.write("fraiseql-checks.yaml", "database:\n  dsn: postgresql://app:pg-secret-91@db:65536/app\n")
    checkdir.write("check_x.py", "def check_x():\n    pass\n")
    result = checkdir.run("check_x.py")
    assert result.ret == 4
    assert result.stderr.splitlines() == [
        "ERROR: fraiseql-checks.yaml: database: dsn: expected a port from 1 to 65535, "
        "got 'postgresql://app:***@db:65536/app'"
    ]


def test_working_url_forms_are_accepted(checkdir: CheckDir) -> None:
    checkdir.write("check_x.py", "def check_x():\n    pass\n")
    result = checkdir.run(
        "check_x.py",
        env={
            "FRAISEQL_URL": "http://[::1]:8000/, https://api.example.com",
            "DATABASE_URL": "postgresql://monitor@/app?host=/var/run/postgresql",
            "REDIS_URL": "unix:///run/redis/redis.sock?db=2",
            "PROMETHEUS_URL": "http://prometheus",
        },
    )
    assert result.ret == 0, result.stderr


def test_missing_targets_skip_or_error_with_require_targets(checkdir: CheckDir) -> None:
    checkdir.write(
        "check_needs.py",
        """
        async def check_db(db):
            pass

        async def check_cache(cache):
            pass

        async def check_graphql(graphql):
            pass
        """,
    )
    result, report = checkdir.run_json("check_needs.py")
    assert result.ret == 0
    assert {r["name"]: r["message"] for r in report["results"]} == {
        "check_db": "the database is not configured: set DATABASE_URL or `database.dsn` in the config",
        "check_cache": "the cache is not configured: set REDIS_URL or `cache.url` in the config",
        "check_graphql": "FraiseQL is not configured: set FRAISEQL_URL or `fraiseql.url` in the config",
    }
    result, report = checkdir.run_json("check_needs.py", "--require-targets")
    assert result.ret == 1
    assert {r["outcome"] for r in report["results"]} == {"error"}
    assert report["results"][0]["message"] == (
        "fixture 'db': the database is not configured: set DATABASE_URL or `database.dsn` in the config "
        "(--require-targets)"
    )
    assert "Traceback" not in result.stdout


SECRETS = ("db-password-8a7f", "metrics-token-c0ffee", "admin-token-beef42", "redis-password-77aa")


def test_secrets_are_masked_in_terminal_json_and_junit(checkdir: CheckDir) -> None:
    checkdir.write(
        "check_leak.py",
        """
        import os
        from fraiseql_checks import check, record
        from fraiseql_checks.trace import current

        @check(labels={"dsn": os.environ["DATABASE_URL"]})
        def check_leak(config, request):
            from fraiseql_checks.targets.plugin import targets_of
            t = targets_of(config)
            current().extra["where"] = {"dsn": t.database_dsn, "cache": [t.cache_url]}
            assert False, (
                f"dsn={t.database_dsn} cache={t.cache_url} token={t.fraiseql.metrics_token} "
                f"admin={t.fraiseql.admin_token} raw={os.environ['FRAISEQL_ADMIN_TOKEN']}"
            )
        """,
    )
    env = {
        "DATABASE_URL": f"postgresql://app:{SECRETS[0]}@127.0.0.1:5432/app",
        "FRAISEQL_URL": "http://127.0.0.1:1",
        "FRAISEQL_METRICS_TOKEN": SECRETS[1],
        "FRAISEQL_ADMIN_TOKEN": SECRETS[2],
        "REDIS_URL": f"redis://:{SECRETS[3]}@127.0.0.1:6379/0",
    }
    result, report = checkdir.run_json("check_leak.py", "--junitxml", "junit.xml", "-v", env=env)
    (leak,) = report["results"]
    assert leak["outcome"] == "failed"
    assert "dsn=postgresql://app:***@127.0.0.1:5432/app" in leak["message"]
    assert "token=***" in leak["message"] and "admin=***" in leak["message"]
    assert leak["labels"] == {"dsn": "postgresql://app:***@127.0.0.1:5432/app"}
    assert leak["where"] == {
        "dsn": "postgresql://app:***@127.0.0.1:5432/app",
        "cache": ["redis://:***@127.0.0.1:6379/0"],
    }
    written = result.stdout + result.stderr + (checkdir.path / "report.json").read_text()
    written += (checkdir.path / "junit.xml").read_text()
    for secret in SECRETS:
        assert secret not in written


def test_trace_ids_in_json_and_junit(checkdir: CheckDir) -> None:
    checkdir.write(
        "check_traced.py",
        """
        import pytest

        @pytest.mark.parametrize("n", [1, 2])
        def check_one(request, n):
            assert len(request.trace_id) == 32 and len(request.span_id) == 16
            assert request.traceparent == f"00-{request.trace_id}-{request.span_id}-01"
        """,
    )
    _result, report = checkdir.run_json("check_traced.py", "--junitxml", "junit.xml")
    trace_ids = {r["id"]: r["trace_id"] for r in report["results"]}
    assert len(set(trace_ids.values())) == 2 and all(len(t) == 32 for t in trace_ids.values())
    junit = checkdir.path / "junit.xml"
    root = ET.parse(junit).getroot()
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties == {f"trace_id:{node}": trace for node, trace in trace_ids.items()}
    outs = [case.findtext("system-out") for case in root.iter("testcase")]
    assert sorted(outs) == sorted(f"trace_id={t}" for t in trace_ids.values())
