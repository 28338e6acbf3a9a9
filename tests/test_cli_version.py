"""``--version`` is answered before any plugin is imported."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fraiseql_checks._plugins import DEFAULT_PLUGINS, LAZY_PLUGINS
from tests.support.services import PG_DSN

#: Built-in plugins imported at every start, and those imported when a hook of theirs is called.
EAGER = {module for name, module in DEFAULT_PLUGINS if name not in LAZY_PLUGINS}
LAZY = {module for name, module in DEFAULT_PLUGINS if name in LAZY_PLUGINS}
EXPECTED = f"fraiseql-checks {importlib.metadata.version('fraiseql-checks')}\n"

_PROBE = """
import json, sys
from fraiseql_checks.cli import main
code = main(sys.argv[1:])
sys.stdout.write(json.dumps({"code": code, "modules": sorted(sys.modules)}) + "\\n")
"""


def loaded_modules(folder: Path, check_file: str, *args: str, warm: bool = False, **env: str) -> set[str]:
    """The modules a run of ``fraiseql-check *args`` imported, in ``folder`` with one check
    file (``check_file``'s text); ``warm``: run once before, caching the rewritten check."""
    (folder / "checks").mkdir()
    (folder / "checks" / "check_probe.py").write_text(check_file)
    environ = {**os.environ, **env}
    if warm:
        subprocess.run(
            [sys.executable, "-m", "fraiseql_checks", "-q"], cwd=folder, check=True, capture_output=True, env=environ
        )
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=60, cwd=folder, env=environ
    )
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["code"] == 0, done.stdout + done.stderr
    return set(found["modules"])


@pytest.mark.parametrize("args", [["--version"], ["-V"], ["-q", "--version", "checks"], ["audit", "--version"]])
def test_version_output(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "fraiseql_checks", *args], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, EXPECTED, "")


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_imports_no_plugin(flag: str) -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE, flag], capture_output=True, text=True, timeout=60)
    version, probe = done.stdout.splitlines()
    assert version + "\n" == EXPECTED
    found = json.loads(probe)
    assert found["code"] == 0
    loaded = set(found["modules"])
    assert not loaded & {module for _, module in DEFAULT_PLUGINS}
    assert "pluggy" not in loaded and "fraiseql_checks.config" not in loaded


def test_version_after_a_double_dash_is_a_path() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fraiseql_checks", "--", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 4
    assert done.stdout != EXPECTED


def test_a_run_of_plain_checks_imports_no_http_client_template_engine_or_schema_validator(tmp_path) -> None:
    """Every plugin is loaded, but the heavy libraries only some of them use (httpx for the
    http fixture and the API's Prometheus calls, jinja2 for notifications, jsonschema for
    the API) are imported when first used, not at every start (about 120 ms)."""
    loaded = loaded_modules(tmp_path, "def check_one():\n    assert 1 + 1 == 2\n", "-q", "checks")
    assert EAGER <= loaded  # the plugins did load
    assert not loaded & {"httpx", "jinja2", "jsonschema"}


def test_a_run_of_checks_imports_neither_the_api_nor_the_notifiers_nor_the_stores(tmp_path) -> None:
    """Their plugins are registered by the names of their hooks, which only watch mode and
    a few commands call; a run of checks never imports their modules (~11 ms of each start),
    nor the PromQL parser and the ``@alert`` definitions the generators use."""
    loaded = loaded_modules(tmp_path, "def check_one():\n    assert 1 + 1 == 2\n", "-q", "checks")
    assert LAZY and not loaded & LAZY
    assert not loaded & {
        "fraiseql_checks.api.checks",
        "fraiseql_checks.api.dashboards",
        "fraiseql_checks.status.plugin",
        "fraiseql_checks.notifiers.webhook",
        "fraiseql_checks.notify.message",
        "fraiseql_checks.stores.sqlite",
        "fraiseql_checks.stores.postgres",
        "starlette.convertors",
        "promql_parser",  # alert-rules and alertmanager parse PromQL when they generate
        "fraiseql_checks.alerting.alerts",
    }


def test_a_run_of_checks_imports_no_table_only_a_generator_a_notifier_or_the_api_reads(tmp_path) -> None:
    """The FraiseQL profiles' metric tables, the watcher's own metric names, the notifier
    types, the API's endpoint types and the modules only a report's dates or a header line
    need (``datetime``, ``platform``) are imported where they are read, not by the plugins
    that declare settings at every start (~12 ms of each start-up, docs/performance.md)."""
    loaded = loaded_modules(tmp_path, "def check_one():\n    assert 1 + 1 == 2\n", "-q", "checks", warm=True)
    assert EAGER <= loaded
    assert not loaded & {
        "fraiseql_checks.targets.profiles",
        "fraiseql_checks.metrics",
        "fraiseql_checks.notify.notifier",
        "fraiseql_checks.api.endpoint",
        "datetime",
        "platform",
    }


def test_a_warm_run_of_passing_checks_imports_nothing_it_does_not_use(tmp_path) -> None:
    """Once the checks' rewritten code is cached, a run of passing checks imports neither
    pytest's assertion, mark and traceback modules (and its configuration behind them),
    nor importlib.metadata (no installed plugin declares our entry-point group), the
    email package, smtplib or Starlette's request machinery, nor hashlib (OpenSSL, behind
    hmac) or difflib: each is one to tens of milliseconds of every start, loaded where
    it is used."""
    loaded = loaded_modules(tmp_path, "def check_one():\n    assert [1, 2] == [1, 2]\n", "-q", "checks", warm=True)
    assert EAGER <= loaded
    unused = {
        "_pytest.assertion",
        "_pytest.config",
        "_pytest._code",
        "_pytest.mark",
        "importlib.metadata",
        "email.message",
        "smtplib",
        "starlette.requests",
        "starlette.responses",
        "hashlib",
        "hmac",
        "difflib",
    }
    assert not loaded & unused


@pytest.mark.parametrize("args", [["--collect-only", "-q", "checks"], ["generate", "--help"]])
def test_what_runs_no_check_imports_no_event_loop_tls_or_sqlite(tmp_path, args: list[str]) -> None:
    """Collecting, generating and asking for help run no check, so they import neither
    asyncio (~20 ms) nor ssl, sqlite3, concurrent.futures, csv or html: the modules
    that use them import them where they do. Every plugin is still loaded."""
    # warm: rewriting the check (the first run) loads pytest's assertion code (csv, html)
    loaded = loaded_modules(tmp_path, "def check_one():\n    assert 1 + 1 == 2\n", *args, warm=True)
    assert EAGER <= loaded
    assert not loaded & {"asyncio", "ssl", "sqlite3", "concurrent.futures", "csv", "html"}


def test_a_run_of_database_and_cache_checks_imports_no_http_client(tmp_path) -> None:
    """Their clients word a failed connection with the words the http fixture uses, from a
    module of its own (``targets.failures``): httpx and our HTTP transport stay unloaded."""
    checks = (
        "async def check_db(db):\n    assert await db.fetchval('select 1') == 1\n\n\n"
        "async def check_cache(cache):\n    assert await cache.ping()\n"
    )
    loaded = loaded_modules(tmp_path, checks, "-q", "checks", DATABASE_URL=PG_DSN, REDIS_URL="redis://127.0.0.1:6379/0")
    assert {"asyncpg", "redis", "fraiseql_checks.targets.failures"} <= loaded
    assert not loaded & {"httpx", "fraiseql_checks.targets.transport", "fraiseql_checks.targets.http"}
