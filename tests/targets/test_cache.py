"""The ``cache`` fixture and the health suite's cache checks, against real Redis servers."""

from __future__ import annotations

import asyncio
import threading

import pytest
import redis

from fraiseql_checks.errors import TargetError
from fraiseql_checks.targets.cache import connect
from tests.support import REPO
from tests.support.checkdir import CheckDir
from tests.support.neighbours import outcomes_of, write_blpop_neighbours
from tests.support.services import throwaway_redis

CHECKS = str(REPO / "checks" / "health" / "check_cache.py")


# Latency under a busy CI machine is not what these tests are about.
LENIENT = "paths: [.]\nthresholds:\n  cache.ping_max_seconds: 5\n"


def run_health(checkdir: CheckDir, url: str, *args: str, config: str = LENIENT):  # type: ignore[no-untyped-def]
    checkdir.write("fraiseql-checks.yaml", config)
    result, report = checkdir.run_json("-c", "fraiseql-checks.yaml", CHECKS, *args, env={"REDIS_URL": url})
    return result, {r["name"]: r for r in report["results"]}


def test_suite_against_the_shared_server(checkdir: CheckDir) -> None:
    result, results = run_health(checkdir, "redis://127.0.0.1:6379/0")
    assert results["check_cache_answers"]["outcome"] == "passed"
    assert results["check_cache_answers"]["values"]["ping_seconds"] > 0
    assert results["check_cache_evictions"]["outcome"] == "passed"
    assert results["check_cache_memory"]["values"]["memory_used_bytes"] > 0
    assert result.ret == (1 if any(r["outcome"] == "failed" for r in results.values()) else 0)


def test_cache_down_fails_then_recovers(checkdir: CheckDir) -> None:
    with throwaway_redis() as server:
        result, results = run_health(checkdir, server.url, "-k", "answers")
        assert results["check_cache_answers"]["outcome"] == "passed"
        server.stop()
        result, results = run_health(checkdir, server.url, "-k", "answers")
        answers = results["check_cache_answers"]
        assert answers["outcome"] == "failed"
        assert answers["message"] == f"cache 127.0.0.1:{server.port}/0: connection refused"
        assert "Traceback" not in result.stdout
        server.start()
        result, results = run_health(checkdir, server.url, "-k", "answers")
        assert results["check_cache_answers"]["outcome"] == "passed"


def test_one_client_survives_a_restart() -> None:
    with throwaway_redis() as server:

        async def scenario() -> list[str]:
            client = connect(server.url, timeout=2)
            seen = [str(await client.ping())]
            server.stop()
            with pytest.raises(TargetError) as info:
                await client.ping()
            seen.append(str(info.value))
            server.start()
            seen.append(str(await client.ping()))
            await client.aclose()
            return seen

        first, down, again = asyncio.run(scenario())
        where = f"cache 127.0.0.1:{server.port}/0"
        assert (first, again) == ("True", "True")
        assert down in (f"{where}: connection refused", f"{where}: connection lost: Connection closed by server.")


@pytest.mark.parametrize("password", ["wrong-password-3c1", None])
def test_wrong_or_missing_password_is_one_masked_line(checkdir: CheckDir, password: str | None) -> None:
    with throwaway_redis("right-password-9e2") as server:
        url = server.url.replace("right-password-9e2", password) if password else f"redis://127.0.0.1:{server.port}/0"
        result, results = run_health(checkdir, url, "-k", "answers")
        answers = results["check_cache_answers"]
        assert answers["outcome"] == "failed"
        assert answers["message"].startswith(f"cache 127.0.0.1:{server.port}/0: wrong credentials: ")
        assert "wrong-password-3c1" not in result.stdout + result.stderr + (checkdir.path / "report.json").read_text()
        assert "Traceback" not in result.stdout


def test_memory_against_maxmemory(checkdir: CheckDir) -> None:
    with throwaway_redis(None, "--maxmemory", "4mb") as server:
        _, results = run_health(
            checkdir, server.url, "-k", "memory", config="thresholds:\n  cache.memory_max_percent: 1\n"
        )
        memory = results["check_cache_memory"]
        assert memory["outcome"] == "failed"
        assert "of maxmemory=4194304 bytes in use" in memory["message"]
        assert 0.01 < memory["values"]["memory_used_ratio"] < 1
        _result, results = run_health(checkdir, server.url, "-k", "memory")
        assert results["check_cache_memory"]["outcome"] == "passed"


def test_hit_ratio(checkdir: CheckDir) -> None:
    with throwaway_redis() as server:
        _, results = run_health(checkdir, server.url, "-k", "hit_ratio")
        assert results["check_cache_hit_ratio"]["outcome"] == "skipped"
        client = redis.Redis(port=server.port)
        client.set("present", "1")
        client.get("present")
        for _ in range(3):
            client.get("absent")
        _result, results = run_health(checkdir, server.url, "-k", "hit_ratio")
        ratio = results["check_cache_hit_ratio"]
        assert ratio["outcome"] == "failed"
        assert ratio["message"].startswith("1 hits, 3 misses: 25.0% hit ratio, below 75%")
        assert ratio["values"] == {"hit_ratio": 0.25}


def test_evictions_during_the_sample(checkdir: CheckDir) -> None:
    with throwaway_redis(None, "--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru") as server:
        stop = threading.Event()

        def fill() -> None:
            client = redis.Redis(port=server.port)
            index = 0
            while not stop.is_set() and index < 200_000:
                client.set(f"key{index}", "x" * 10_000)
                index += 1

        writer = threading.Thread(target=fill)
        writer.start()
        try:
            _result, results = run_health(checkdir, server.url, "-k", "evictions")
        finally:
            stop.set()
            writer.join()
        evictions = results["check_cache_evictions"]
        assert evictions["outcome"] == "failed"
        assert "keys evicted in 1s" in evictions["message"]
        assert evictions["values"]["evictions_per_second"] > 1


def test_an_answer_that_came_while_a_neighbour_held_the_loop_does_not_time_out(checkdir: CheckDir) -> None:
    """The cache's limit is 1 s; Redis answers the BLPOP after 0.3 s, while another check
    holds the event loop for 1.5 s. Once the loop is free, the answer and the timer are due
    in the same turn; the neighbour's hold is given back, so the command succeeds."""
    write_blpop_neighbours(checkdir, 0.3, then="assert value is None")  # the answer comes during the hold
    result, report = checkdir.run_json()
    outcomes = outcomes_of(report)
    assert outcomes["check_waits"] == ("passed", ""), result.stdout
    assert "check_holds_the_loop held the event loop for 1." in result.stdout  # the hold happened, and was seen


def test_a_command_slow_by_itself_times_out_even_while_a_neighbour_holds_the_loop(checkdir: CheckDir) -> None:
    """A BLPOP that Redis answers only after 4 s times out on its own second."""
    write_blpop_neighbours(checkdir, 4)
    result, report = checkdir.run_json()
    outcomes = outcomes_of(report)
    assert outcomes["check_waits"] == ("failed", "cache 127.0.0.1:6379/0: timed out after 1s"), result.stdout
    assert "check_holds_the_loop held the event loop for 1." in result.stdout


def test_a_pipeline_answers_and_fails_as_one_command() -> None:
    with throwaway_redis() as server:

        async def scenario() -> tuple[list[object], str]:
            client = connect(server.url, timeout=2)
            async with client.pipeline() as pipe:
                answers = await pipe.set("key", "1").get("key").execute()
            server.stop()
            try:
                async with client.pipeline() as pipe:
                    await pipe.get("key").execute()
                failure = "no error"
            except TargetError as exc:
                failure = str(exc)
            await client.aclose()
            return answers, failure

        answers, failure = asyncio.run(scenario())
        where = f"cache 127.0.0.1:{server.port}/0"
        assert answers == [True, "1"]
        assert failure in (f"{where}: connection refused", f"{where}: connection lost: Connection closed by server.")


@pytest.mark.parametrize("through", ["command", "pipeline"])
def test_the_limit_is_the_checks_own_not_redis_pys(monkeypatch: pytest.MonkeyPatch, through: str) -> None:
    """redis-py's own limit is only a backstop: put out of reach, a BLPOP that Redis would
    answer after 10 s still times out after the 1 s limit, as a command or in a pipeline."""
    monkeypatch.setattr("fraiseql_checks.targets.cache.own_timeout_backstop", lambda seconds: 60.0)

    async def scenario() -> str:
        client = connect("redis://127.0.0.1:6379/0", timeout=1)
        try:
            if through == "command":
                await client.blpop(["fraiseql-checks-test-never-pushed"], timeout=10)
            else:
                async with client.pipeline(transaction=False) as pipe:
                    await pipe.blpop(["fraiseql-checks-test-never-pushed"], timeout=10).execute()
        except TargetError as exc:
            return str(exc)
        finally:
            await client.aclose()
        return "no error"

    # redis-py's backstop would say the same words after 60 s: 5 s tells the two apart
    assert asyncio.run(asyncio.wait_for(scenario(), 5)) == "cache 127.0.0.1:6379/0: timed out after 1s"
