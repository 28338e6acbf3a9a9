"""``/api/v1/openapi.json`` of a live watcher, read by tools nobody here wrote: openapi-spec-validator
checks the document, schemathesis calls every route it describes (whatever routes exist now) with data
made from it and checks each answer against it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.support.checkdir import CheckDir
from tests.support.grafana_api import GrafanaAPI, grafana_api
from tests.support.services import prometheus, require
from tests.support.watcher import WatchProcess

ADMIN, READ = "admin-token-openapi-4d1e", "read-token-openapi-b27c"
CHECKS = """
from fraiseql_checks import check

@check(interval="500ms", severity="critical", tags=["db"], labels={"team": "core"})
def check_bad():
    assert False, "always failing"

@check(interval="500ms")
def check_good():
    pass
"""
#: schemathesis' checks, all of them but one: ``positive_data_acceptance`` wants a 2xx for
#: every request the schema allows, and some answers depend on more than the schema can say
#: (a silence that ends in the past, ``since`` after ``until``, an unknown check's 404 is allowed).
EXCLUDED_CHECKS = "positive_data_acceptance"


def openapi_document(watcher: WatchProcess) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://{watcher.address}/api/v1/openapi.json", headers={"Authorization": f"Bearer {READ}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.headers["content-type"] == "application/json"
        document: dict[str, Any] = json.load(answer)
    return document


@pytest.fixture
def grafana() -> Iterator[GrafanaAPI]:
    with grafana_api() as server:
        yield server


@pytest.fixture
def watcher(checkdir: CheckDir, watch: Callable[..., WatchProcess], grafana: GrafanaAPI) -> Iterator[WatchProcess]:
    """A watcher with both tokens and every outside service its routes may call: a real Prometheus,
    and the Grafana stand-in (a route that needs one answers 503 when none is configured)."""
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 10ms\n")
    checkdir.write("checks/check_things.py", CHECKS)
    with prometheus([]) as prom:
        env = checkdir.env(
            FRAISEQL_CHECKS_API_TOKEN=ADMIN,
            FRAISEQL_CHECKS_API_READ_TOKEN=READ,
            PROMETHEUS_URL=prom.url,
            GRAFANA_URL=grafana.url,
            GRAFANA_TOKEN=grafana.token,
        )
        found = watch(env=env)
        found.wait_for(lambda s: found.runs("checks/check_things.py::check_good") >= 1, what="a run")
        yield found
        assert found.stop() == 0
    log = found.stdout + found.stderr
    assert ADMIN not in log and READ not in log
    assert "Traceback" not in log, log


def test_the_document_is_valid_openapi_and_describes_every_route(watcher: WatchProcess) -> None:
    document = openapi_document(watcher)
    validate(document)  # raises OpenAPIValidationError, naming what is wrong
    assert document["openapi"].startswith("3.1")
    assert "/api/v1/checks" in document["paths"] and "/api/v1/openapi.json" in document["paths"]
    operations = [op for path in document["paths"].values() for op in path.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    for op in operations:
        assert op["summary"] and op["responses"], op["operationId"]


def schemathesis_binary() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    require(found is not None, "schemathesis is not installed (pip install -e '.[test]')")
    assert found is not None
    return found


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(
    watcher: WatchProcess, tmp_path: Path
) -> None:
    command = [
        schemathesis_binary(),
        "run",
        f"http://{watcher.address}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {ADMIN}",
        "--checks",
        "all",
        "--exclude-checks",
        EXCLUDED_CHECKS,
        "--max-examples",
        "25",
        "--workers",
        "1",
        "--seed",
        "20250615",
        "--request-timeout",
        "20",
        "--no-color",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-5_000:]
    assert "Tested:" in done.stdout
