"""The ``prom`` fixture against a real Prometheus server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from fraiseql_checks.errors import TargetError
from fraiseql_checks.targets.http import HTTPClient
from fraiseql_checks.targets.prometheus import Matrix, PrometheusClient, PrometheusError, Scalar, String, Vector
from tests.support.checkdir import CheckDir
from tests.support.services import Prometheus, free_port
from tests.support.services import prometheus as run_prometheus


@pytest.fixture(scope="module")
def prometheus() -> Iterator[Prometheus]:
    with run_prometheus([]) as server:
        server.wait_for_series('up{job="self"}')
        yield server


def query(url: str, call) -> object:  # type: ignore[no-untyped-def]
    async def main() -> object:
        async with HTTPClient(timeout=5) as http:
            return await call(PrometheusClient(http, url))

    return asyncio.run(main())


def test_instant_vector(prometheus: Prometheus) -> None:
    result = query(prometheus.url, lambda p: p.query('up{job="self"}'))
    assert isinstance(result, Vector)
    (sample,) = result
    assert sample.labels == {"__name__": "up", "instance": f"127.0.0.1:{prometheus.port}", "job": "self"}
    assert result.value == 1.0
    assert abs(sample.timestamp - time.time()) < 3600


def test_scalar_string_and_empty_vector(prometheus: Prometheus) -> None:
    assert query(prometheus.url, lambda p: p.query("scalar(vector(42))")) == Scalar(
        42.0, pytest.approx(time.time(), abs=3600)
    )  # type: ignore[arg-type]
    result = query(prometheus.url, lambda p: p.query('"hello"'))
    assert isinstance(result, String) and result.value == "hello"
    empty = query(prometheus.url, lambda p: p.query("no_such_series"))
    assert isinstance(empty, Vector) and len(empty) == 0 and empty.value is None


def test_range_query_is_a_matrix(prometheus: Prometheus) -> None:
    end = time.time()
    result = query(prometheus.url, lambda p: p.query_range('up{job="self"}', end - 60, end, "1s"))
    assert isinstance(result, Matrix)
    (series,) = result
    assert series.labels["job"] == "self"
    assert series.values and set(series.values) == {1.0}
    timestamps = [t for t, _ in series.points]
    assert timestamps == sorted(timestamps)


def test_bad_expression_carries_error_type_and_message(prometheus: Prometheus) -> None:
    with pytest.raises(PrometheusError) as info:
        query(prometheus.url, lambda p: p.query("sum(rate(up[5m])"))
    assert info.value.error_type == "bad_data"
    assert "unclosed left parenthesis" in info.value.error
    assert str(info.value).startswith("Prometheus rejected the query for 'sum(rate(up[5m])': bad_data: ")


def test_series_names(prometheus: Prometheus) -> None:
    names = query(prometheus.url, lambda p: p.series_names())
    assert {"up", "prometheus_build_info"} <= names  # type: ignore[operator]


def test_prometheus_down_is_one_line() -> None:
    port = free_port()
    with pytest.raises(TargetError) as info:
        query(f"http://127.0.0.1:{port}", lambda p: p.query("up"))
    assert str(info.value) == f"GET http://127.0.0.1:{port}/api/v1/query?query=up: connection refused"


def test_prom_fixture_in_a_check(checkdir: CheckDir, prometheus: Prometheus) -> None:
    checkdir.write(
        "check_prom.py",
        """
        from fraiseql_checks import record

        async def check_everything_up(prom):
            vector = await prom.query("min(up)")
            record("min_up", vector.value)
            assert vector.value == 1

        async def check_bad_query(prom):
            await prom.query("rate(up)")
        """,
    )
    result, report = checkdir.run_json("check_prom.py", env={"PROMETHEUS_URL": prometheus.url})
    results = {r["name"]: r for r in report["results"]}
    assert results["check_everything_up"]["outcome"] == "passed"
    assert results["check_everything_up"]["values"] == {"min_up": 1.0}
    bad = results["check_bad_query"]
    assert bad["outcome"] == "failed"
    assert bad["message"].startswith("Prometheus rejected the query for 'rate(up)': bad_data: ")
    assert "Traceback" not in result.stdout
    result, report = checkdir.run_json("check_prom.py")
    assert {r["outcome"] for r in report["results"]} == {"skipped"}
    assert report["results"][0]["message"] == (
        "Prometheus is not configured: set PROMETHEUS_URL or `prometheus.url` in the config"
    )
