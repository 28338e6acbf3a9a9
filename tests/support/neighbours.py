"""A check that holds the event loop while another one waits on a target.

Checks share one event loop; a blocking call in an ``async def`` check holds it. A
target that answered meanwhile must not be reported as timed out: the tests of each
target (HTTP, database, cache) write these two checks with their own waiting call.
"""

from __future__ import annotations

from tests.support.checkdir import CheckDir

#: How long the neighbour holds the loop: longer than the 1 s limits the tests set.
HOLD_SECONDS = 1.5


def write_neighbours(
    checkdir: CheckDir,
    config: str,
    fixture: str,
    call: str,
    then: str = "pass",
    after: float = 0.0,
    before: str = "pass",
) -> None:
    """``check_waits(fixture)`` starts ``call`` (an awaitable expression, e.g.
    ``http.get(url)``) and, as it starts waiting (or ``after`` seconds, once the request is
    sent), wakes ``check_holds_the_loop``, which then holds the event loop for
    ``HOLD_SECONDS`` (``time.sleep`` in an async check); ``before`` is a statement run
    first (e.g. opening the connection), ``then`` a statement on the answer, ``value``."""
    checkdir.write("fraiseql-checks.yaml", config)
    checkdir.write(
        "checks/check_neighbours.py",
        f"""
        import asyncio, time

        waiting = asyncio.Event()

        async def check_holds_the_loop():
            await asyncio.wait_for(waiting.wait(), 5)
            time.sleep({HOLD_SECONDS})  # a blocking call in an async check: the loop is held

        async def check_waits({fixture}):
            {before}
            call = asyncio.ensure_future({call})
            await asyncio.sleep({after})
            waiting.set()  # the neighbour wakes once this call waits for its target
            value = await call
            {then}
        """,
    )


def write_blpop_neighbours(checkdir: CheckDir, answer_after: float, extra_config: str = "", then: str = "pass") -> None:
    """The cache's case: a 1 s limit, and a BLPOP on a list nobody pushes to, which Redis
    answers (``None``) after ``answer_after`` seconds. The connection is opened first (a
    PING) and the neighbour wakes once the BLPOP is sent, so only it is under way."""
    write_neighbours(
        checkdir,
        "cache:\n  url: redis://127.0.0.1:6379/0\n  timeout: 1s\n" + extra_config,
        "cache",
        f'cache.blpop(["fraiseql-checks-test-never-pushed"], timeout={answer_after})',
        then,
        after=0.05,
        before="await cache.ping()",
    )


def outcomes_of(report: dict) -> dict[str, tuple[str, str]]:  # type: ignore[type-arg]
    return {r["name"]: (r["outcome"], r["message"]) for r in report["results"]}
