"""Fixtures: kinds, scopes, teardown, resolution by nearness, and their failures."""

from __future__ import annotations

import pytest

from tests.support.checkdir import CheckDir

EVENTS = """
import json, os, pathlib

def event(text):
    with open(os.path.join(os.environ["EVENTS_DIR"], "events.log"), "a") as f:
        f.write(text + "\\n")
"""


def events(checkdir: CheckDir) -> list[str]:
    return (checkdir.path / "events.log").read_text().split()


def test_every_kind_of_fixture_with_teardown(checkdir: CheckDir) -> None:
    checkdir.write("checks/events.py", EVENTS)
    checkdir.write(
        "checks/conftest.py",
        """
        import asyncio
        from fraiseql_checks import fixture
        from events import event

        @fixture
        def plain():
            return "plain"

        @fixture
        async def coro():
            await asyncio.sleep(0)
            return "coro"

        @fixture
        def gen():
            event("gen-setup")
            yield "gen"
            event("gen-teardown")

        @fixture
        async def agen(gen):
            event("agen-setup")
            yield "agen+" + gen
            event("agen-teardown")
        """,
    )
    checkdir.write(
        "checks/check_kinds.py",
        """
        from events import event

        def check_sync(plain, coro, agen):
            event("check-runs")
            assert (plain, coro, agen) == ("plain", "coro", "agen+gen")

        async def check_async(plain, coro, agen):
            assert (plain, coro, agen) == ("plain", "coro", "agen+gen")
        """,
    )
    result, outcomes = checkdir.outcomes("checks/check_kinds.py::check_sync", env={"EVENTS_DIR": str(checkdir.path)})
    assert set(outcomes.values()) == {"passed"}, result.stdout
    assert events(checkdir) == ["gen-setup", "agen-setup", "check-runs", "agen-teardown", "gen-teardown"]
    result, outcomes = checkdir.outcomes(env={"EVENTS_DIR": str(checkdir.path)})
    assert result.ret == 0 and set(outcomes.values()) == {"passed"}


def test_scopes_set_up_once_and_tear_down_at_the_end(checkdir: CheckDir) -> None:
    checkdir.write("checks/events.py", EVENTS)
    checkdir.write(
        "checks/conftest.py",
        """
        from fraiseql_checks import fixture
        from events import event

        @fixture(scope="session")
        def pool():
            event("session-setup")
            yield object()
            event("session-teardown")

        @fixture(scope="module")
        def per_module(request):
            event("module-setup:" + request.node.path.name)
            yield object()
            event("module-teardown:" + request.node.path.name)

        @fixture
        def per_check():
            event("check-setup")
            return object()
        """,
    )
    for name in ("a", "b"):
        checkdir.write(
            f"checks/check_{name}.py",
            f"""
            import asyncio
            seen = []

            async def check_{name}1(pool, per_module, per_check):
                seen.append((pool, per_module, per_check))
                await asyncio.sleep(0.01)

            async def check_{name}2(pool, per_module, per_check):
                seen.append((pool, per_module, per_check))
                await asyncio.sleep(0.01)

            async def check_{name}3(pool, per_module, per_check):
                await asyncio.sleep(0.05)
                first, second = seen
                assert first[0] is second[0] is pool, "one session value"
                assert first[1] is second[1] is per_module, "one module value"
                assert first[2] is not second[2], "a new value per check"
            """,
        )
    result, _outcomes = checkdir.outcomes(env={"EVENTS_DIR": str(checkdir.path)})
    assert result.ret == 0, result.stdout
    log = events(checkdir)
    assert log.count("session-setup") == 1 and log.count("session-teardown") == 1
    assert log[-1] == "session-teardown"
    for module in ("check_a.py", "check_b.py"):
        assert log.count(f"module-setup:{module}") == 1
        assert log.count(f"module-teardown:{module}") == 1
        assert log.index(f"module-teardown:{module}") < log.index("session-teardown")
    assert log.count("check-setup") == 6


@pytest.mark.parametrize("kind", ["def", "async def"])
def test_a_module_is_torn_down_when_its_last_check_ends_a_def_check_without_a_task_too(
    checkdir: CheckDir, kind: str
) -> None:
    """One check at a time: the module's fixture goes when its last check has ended (a
    ``def`` that needs no fixture runs without a task of its own; an ``async def`` in
    the slot's task, which tears the module down itself), before the next module's first
    check, not at the end of the run."""
    checkdir.write("checks/events.py", EVENTS)
    checkdir.write(
        "checks/conftest.py",
        """
        from fraiseql_checks import fixture
        from events import event

        @fixture(scope="module")
        def per_module(request):
            yield object()
            event("module-teardown:" + request.node.path.name)
        """,
    )
    checkdir.write(
        "checks/check_a.py",
        """
        from events import event

        async def check_a1(per_module):
            event("a1")

        KIND check_a2():
            event("a2")
        """.replace("KIND", kind),
    )
    checkdir.write("checks/check_b.py", "from events import event\n\ndef check_b1():\n    event('b1')\n")
    result, _outcomes = checkdir.outcomes("--concurrency", "1", env={"EVENTS_DIR": str(checkdir.path)})
    assert result.ret == 0, result.stdout
    assert events(checkdir) == ["a1", "a2", "module-teardown:check_a.py", "b1"]


def test_a_module_is_torn_down_after_its_files_last_check_when_a_plugin_adds_checks_to_the_file(
    checkdir: CheckDir,
) -> None:
    """``fraiseql_collect_file`` may give one file's checks from several implementations,
    each with a module object of its own: the file's module fixtures go when the last of
    them all has ended, not when one module's checks have."""
    checkdir.write("checks/events.py", EVENTS)
    checkdir.write(
        "adding_plugin.py",
        """
        import time
        import types

        from fraiseql_checks.checks import Check
        from fraiseql_checks.spec import CheckSpec


        def fraiseql_collect_file(path, session):
            if not path.name.startswith("check_"):
                return None

            def generated(per_module):
                time.sleep(0.2)

            relpath = session.config.relpath(path)
            return [
                Check(
                    id=f"{relpath}::generated", name="generated", function_name="generated", path=path,
                    spec=CheckSpec(), module=types.ModuleType("generated"), func=generated, argnames=("per_module",),
                )
            ]
        """,
    )
    checkdir.write(
        "checks/conftest.py",
        """
        from fraiseql_checks import fixture
        from events import event

        @fixture(scope="module")
        def per_module():
            event("set-up")
            yield object()
            event("torn-down")
        """,
    )
    checkdir.write(
        "checks/check_a.py",
        """
        import time
        from events import event

        def check_a(per_module):
            time.sleep(0.6)
            event("a")
        """,
    )
    env = {"EVENTS_DIR": str(checkdir.path), "PYTHONPATH": str(checkdir.path)}
    result, outcomes = checkdir.outcomes("-p", "adding_plugin", env=env)
    assert result.ret == 0, result.stdout
    assert sorted(outcomes) == ["checks/check_a.py::check_a", "checks/check_a.py::generated"]
    assert events(checkdir) == ["set-up", "a", "torn-down"]


def test_unknown_fixture_lists_the_available_ones(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_unknown.py",
        """
        from fraiseql_checks import fixture

        @fixture
        def known():
            return 1

        def check_typo(knwon):
            pass

        def check_fine(known):
            pass
        """,
    )
    result, report = checkdir.run_json()
    assert result.ret == 1
    by_name = {r["name"]: r for r in report["results"]}
    message = by_name["check_typo"]["message"]
    assert message.startswith("fixture 'knwon' not found; available fixtures: ")
    assert "known" in message and "config" in message and "request" in message
    assert by_name["check_fine"]["outcome"] == "passed"


def test_dependency_cycle_is_named(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_cycle.py",
        """
        from fraiseql_checks import fixture

        @fixture
        def a(b):
            return 1

        @fixture
        def b(c):
            return 2

        @fixture
        def c(a):
            return 3

        def check_cycle(a):
            pass
        """,
    )
    _, report = checkdir.run_json()
    (result,) = report["results"]
    assert result["outcome"] == "error"
    assert result["message"] == "fixture dependency cycle: a -> b -> c -> a"


def test_a_raising_fixture_errors_its_users_only(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/conftest.py",
        """
        from fraiseql_checks import fixture

        calls = []

        @fixture(scope="session")
        def broken():
            calls.append(1)
            raise ConnectionRefusedError("database at 127.0.0.1:1 refused the connection")

        @fixture
        def fine():
            return "ok"
        """,
    )
    checkdir.write(
        "checks/check_users.py",
        """
        import conftest

        def check_one(broken):
            pass

        def check_two(broken, fine):
            pass

        def check_unaffected(fine):
            assert fine == "ok"
        """,
    )
    result, report = checkdir.run_json()
    assert result.ret == 1
    by_name = {r["name"]: r for r in report["results"]}
    for name in ("check_one", "check_two"):
        assert by_name[name]["outcome"] == "error"
        assert by_name[name]["message"] == (
            "fixture 'broken' failed: ConnectionRefusedError: database at 127.0.0.1:1 refused the connection"
        )
    assert by_name["check_unaffected"]["outcome"] == "passed"


def test_nearer_fixture_overrides_farther_and_can_extend_it(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/conftest.py",
        """
        from fraiseql_checks import fixture

        @fixture
        def name():
            return "root"
        """,
    )
    checkdir.write(
        "checks/sub/conftest.py",
        """
        from fraiseql_checks import fixture

        @fixture
        def name(name):
            return name + "+sub"
        """,
    )
    checkdir.write("checks/check_top.py", "def check_top(name):\n    assert name == 'root'")
    checkdir.write("checks/sub/check_sub.py", "def check_sub(name):\n    assert name == 'root+sub'")
    checkdir.write(
        "checks/sub/check_module.py",
        """
        from fraiseql_checks import fixture

        @fixture
        def name():
            return "module"

        def check_module(name):
            assert name == "module"
        """,
    )
    result, outcomes = checkdir.outcomes()
    assert result.ret == 0, result.stdout
    assert len(outcomes) == 3


def test_wider_fixture_cannot_use_narrower(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_scope.py",
        """
        from fraiseql_checks import fixture

        @fixture
        def per_check():
            return 1

        @fixture(scope="session")
        def shared(per_check):
            return 2

        def check_it(shared):
            pass
        """,
    )
    _, report = checkdir.run_json()
    (result,) = report["results"]
    assert result["outcome"] == "error"
    assert "fixture 'shared' (session) depends on 'per_check' (check)" in result["message"]


def test_autouse_request_and_skip_from_a_fixture(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/conftest.py",
        """
        import pytest
        from fraiseql_checks import fixture, record

        @fixture(autouse=True)
        def always(request):
            record("autouse_ran", 1)

        @fixture
        def target():
            pytest.skip("database is not configured: set DATABASE_URL")
        """,
    )
    checkdir.write(
        "checks/check_req.py",
        """
        def check_request(request):
            assert request.node.name == "check_request"
            assert len(request.trace_id) == 32 and request.traceparent.startswith("00-" + request.trace_id)
            assert request.config.get("timeout") == 10.0

        def check_needs_target(target):
            raise AssertionError("never runs")
        """,
    )
    result, report = checkdir.run_json()
    assert result.ret == 0, result.stdout
    by_name = {r["name"]: r for r in report["results"]}
    assert by_name["check_request"]["outcome"] == "passed"
    assert by_name["check_request"]["values"] == {"autouse_ran": 1.0}
    assert by_name["check_needs_target"]["outcome"] == "skipped"
    assert by_name["check_needs_target"]["message"] == "database is not configured: set DATABASE_URL"


def test_teardown_failure_of_a_check_fixture_errors_the_check(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_teardown.py",
        """
        from fraiseql_checks import fixture

        @fixture
        def leaky():
            yield 1
            raise OSError("could not close the connection")

        def check_uses_leaky(leaky):
            pass
        """,
    )
    _, report = checkdir.run_json()
    (result,) = report["results"]
    assert result["outcome"] == "error"
    assert result["message"] == "teardown of fixture 'leaky' failed: OSError: could not close the connection"
