"""``fraiseql-check init`` on a pseudo-terminal, answered as a person would (pexpect)."""

from __future__ import annotations

import io
import re
import sys

import pexpect
import yaml

from tests.init.test_init import PASSWORD, WRITTEN, files_in
from tests.support.checkdir import CheckDir
from tests.support.fraiseql_v2 import DEFAULT_TOKEN, FakeFraiseQLV2
from tests.support.services import free_port

TIMEOUT = 60


def spawn(checkdir: CheckDir, *args: str) -> pexpect.spawn:
    env = checkdir.env()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "fraiseql_checks", "init", *args],
        cwd=str(checkdir.path),
        env=env,
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 200),
    )
    child.logfile_read = io.StringIO()  # the whole transcript: what the terminal showed
    return child


def test_the_wizard_asks_probes_asks_again_and_writes(checkdir: CheckDir, fraiseql_v2: FakeFraiseQLV2) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    child = spawn(checkdir, "--no-run")
    child.expect_exact("FraiseQL URL (Enter '-' to skip) [http://localhost:8000]: ")
    child.sendline(down)
    child.expect_exact("FraiseQL metrics token, FRAISEQL_METRICS_TOKEN (Enter for none): ")
    child.sendline(DEFAULT_TOKEN)
    child.expect_exact(f"cannot reach {down}: connection refused; profile fraiseql-v2 (the default)")
    child.expect_exact(f"Keep {down} anyway? (y/N): ")
    child.sendline("")  # no: asked again
    child.expect_exact(f"FraiseQL URL (Enter '-' to skip) [{down}]: ")
    child.sendline(fraiseql_v2.url)
    child.expect(
        re.escape(f"FraiseQL 2.15.0 at {fraiseql_v2.url}: healthy (HTTP 200); profile fraiseql-v2 (its /metrics")
    )
    child.expect_exact("Profile (fraiseql-v1, fraiseql-v2) [fraiseql-v2]: ")
    child.sendline("")
    child.expect_exact("PostgreSQL URL for the db fixture, DATABASE_URL (Enter '-' to skip): ")
    child.sendline(f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/test")
    child.expect_exact("Redis URL for the cache fixture, REDIS_URL (Enter '-' to skip): ")
    child.sendline("redis://127.0.0.1:6379")
    child.expect_exact("Prometheus URL for the prom fixture, PROMETHEUS_URL (Enter '-' to skip): ")
    child.sendline("-")
    child.expect_exact("Shipped suites to run (alerts, audit, health, host, all) [health]: ")
    child.sendline("health, hots")
    child.expect_exact("unknown suite 'hots'")
    child.expect_exact("Shipped suites to run (alerts, audit, health, host, all) [health]: ")
    child.sendline("health,host")
    child.expect_exact(
        "Write fraiseql-checks.yaml, checks/conftest.py, checks/check_api.py, "
        ".github/workflows/fraiseql-checks.yml, ci/gitlab-fraiseql-checks.yml? (Y/n): "
    )
    child.sendline("")
    child.expect_exact("wrote fraiseql-checks.yaml, ")
    child.expect_exact("Next:")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    transcript = child.logfile_read.getvalue()
    assert PASSWORD in transcript  # a typed URL is echoed, as a terminal does
    assert DEFAULT_TOKEN not in transcript  # the token is asked without echo
    assert files_in(checkdir.path) == WRITTEN
    config = yaml.safe_load((checkdir.path / "fraiseql-checks.yaml").read_text())
    assert config["suites"] == ["health", "host"]
    assert config["fraiseql"] == {"url": fraiseql_v2.url, "profile": "fraiseql-v2"}
    assert config["database"] == {"dsn": "${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"}
    assert config["cache"] == {"url": "redis://127.0.0.1:6379"}
    assert "prometheus" not in config


def test_answering_no_writes_nothing(checkdir: CheckDir) -> None:
    child = spawn(checkdir)
    child.expect_exact("FraiseQL URL (Enter '-' to skip) [http://localhost:8000]: ")
    child.sendline("-")
    for _ in range(3):
        child.expect_exact("(Enter '-' to skip): ")
        child.sendline("")
    child.expect_exact("[health]: ")
    child.sendline("")
    child.expect_exact("? (Y/n): ")
    child.sendline("n")
    child.expect_exact("nothing written")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert files_in(checkdir.path) == []
