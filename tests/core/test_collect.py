"""Collection: which files and functions are checks, node ids, broken files."""

from __future__ import annotations

import subprocess
import sys

from tests.support.checkdir import CheckDir


def test_check_functions_and_decorated_functions_are_collected(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_things.py",
        """
        from fraiseql_checks import check

        def check_plain():
            pass

        async def check_async():
            pass

        @check(severity="critical")
        def database_answers():
            pass

        def helper_not_a_check():
            raise RuntimeError("must not run")

        class check_NotAFunction:
            pass
        """,
    )
    checkdir.write("checks/helpers.py", "def check_in_a_non_check_file(): raise RuntimeError")
    result, outcomes = checkdir.outcomes()
    assert result.ret == 0
    assert outcomes == {
        "checks/check_things.py::check_plain": "passed",
        "checks/check_things.py::check_async": "passed",
        "checks/check_things.py::database_answers": "passed",
    }


def test_default_path_is_checks_folder_and_config_paths_override(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_a.py", "def check_a(): pass")
    checkdir.write("probes/check_b.py", "def check_b(): pass")
    _, outcomes = checkdir.outcomes()
    assert list(outcomes) == ["checks/check_a.py::check_a"]
    checkdir.write("pyproject.toml", '[tool.fraiseql-checks]\npaths = ["probes"]\n')
    _, outcomes = checkdir.outcomes()
    assert list(outcomes) == ["probes/check_b.py::check_b"]


def test_node_id_runs_just_that_check(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_ids.py",
        """
        import pytest

        def check_one():
            pass

        def check_two():
            pass

        @pytest.mark.parametrize("n", [1, 2, 3])
        def check_param(n):
            pass
        """,
    )
    _, outcomes = checkdir.outcomes("checks/check_ids.py::check_two")
    assert list(outcomes) == ["checks/check_ids.py::check_two"]
    _, outcomes = checkdir.outcomes("checks/check_ids.py::check_param[2]")
    assert list(outcomes) == ["checks/check_ids.py::check_param[2]"]
    _, outcomes = checkdir.outcomes("checks/check_ids.py::check_param")
    assert list(outcomes) == [f"checks/check_ids.py::check_param[{n}]" for n in (1, 2, 3)]
    result = checkdir.run("checks/check_nope.py")
    assert result.ret == 4
    result.stderr_lines(["ERROR: file or directory not found: checks/check_nope.py"])


def test_parametrize_ids_are_pytests_own(checkdir: CheckDir) -> None:
    """The same parametrizations give the same ids under pytest and under fraiseql-check."""
    body = """
        import enum
        import pytest

        class Color(enum.Enum):
            RED = 1

        @pytest.mark.parametrize("x", [1, 1.5, "a b", None, True, b"by", Color.RED, (1, 2), {{"k": 1}}, "a", "a"])
        def {prefix}_values(x):
            pass

        @pytest.mark.parametrize("a,b", [(1, 2), pytest.param(3, 4, id="custom")])
        @pytest.mark.parametrize("c", ["x", "y"], ids=["first", "second"])
        def {prefix}_stacked(a, b, c):
            pass

        @pytest.mark.parametrize("n", [10, 20], ids=lambda n: f"n{{n}}")
        def {prefix}_idfn(n):
            pass
    """
    checkdir.write("checks/check_ids.py", body.format(prefix="check"))
    checkdir.write("tests/test_ids.py", body.format(prefix="test"))
    _, report = checkdir.run_json()
    ours = [r["name"].removeprefix("check") for r in report["results"]]
    pytest_run = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests/test_ids.py"],
        cwd=checkdir.path,
        capture_output=True,
        text=True,
    )
    theirs = [line.split("::", 1)[1].removeprefix("test") for line in pytest_run.stdout.splitlines() if "::" in line]
    assert len(theirs) == 11 + 4 + 2
    assert sorted(ours) == sorted(theirs)


def test_a_broken_file_is_an_error_and_the_rest_still_runs(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_good.py", "def check_good(): pass")
    checkdir.write("checks/check_syntax.py", "def check_x(:\n    pass\n")
    checkdir.write("checks/check_import.py", "import module_that_does_not_exist\n\ndef check_y(): pass\n")
    checkdir.write("checks/check_raises.py", "raise RuntimeError('boom at import')\n")
    result, report = checkdir.run_json()
    assert result.ret == 2
    by_id = {r["id"]: r for r in report["results"]}
    assert by_id["checks/check_good.py::check_good"]["outcome"] == "passed"
    syntax = by_id["checks/check_syntax.py"]
    assert syntax["outcome"] == "error" and syntax["kind"] == "collect"
    assert "SyntaxError (line 1)" in syntax["message"]
    assert (
        "ModuleNotFoundError: No module named 'module_that_does_not_exist'"
        in by_id["checks/check_import.py"]["message"]
    )
    assert "RuntimeError: boom at import" in by_id["checks/check_raises.py"]["message"]
    result.fnmatch_lines(
        [
            "*ERROR collecting checks/check_import.py*",
            "error importing check module: ModuleNotFoundError*",
            "*= 1 passed, 3 errors in *",
        ]
    )


def test_a_broken_conftest_errors_its_folder_only(checkdir: CheckDir) -> None:
    checkdir.write("checks/a/conftest.py", "this is not python")
    checkdir.write("checks/a/check_a.py", "def check_a(): pass")
    checkdir.write("checks/a/check_a2.py", "def check_a2(): pass")
    checkdir.write("checks/b/check_b.py", "def check_b(): pass")
    result, report = checkdir.run_json()
    assert result.ret == 2
    outcomes = {r["id"]: r["outcome"] for r in report["results"]}
    assert outcomes == {"checks/a/conftest.py": "error", "checks/b/check_b.py::check_b": "passed"}


def test_generator_check_and_bad_metadata_are_collection_errors(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_bad.py",
        """
        from fraiseql_checks import check

        def check_gen():
            yield 1

        def check_fine():
            pass
        """,
    )
    checkdir.write(
        "checks/check_meta.py",
        """
        from fraiseql_checks import check

        @check(severity="urgent")
        def check_bad_severity():
            pass
        """,
    )
    result, report = checkdir.run_json()
    assert result.ret == 2
    by_id = {r["id"]: r for r in report["results"]}
    assert "a check cannot be a generator" in by_id["checks/check_bad.py::check_gen"]["message"]
    assert by_id["checks/check_bad.py::check_fine"]["outcome"] == "passed"
    assert "severity must be one of critical, warning, info, got 'urgent'" in by_id["checks/check_meta.py"]["message"]


def test_hidden_virtualenv_and_cache_folders_are_not_walked(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    checkdir.write("checks/.hidden/check_h.py", "def check_h(): raise RuntimeError")
    checkdir.write("checks/node_modules/check_n.py", "def check_n(): raise RuntimeError")
    checkdir.write("checks/env/pyvenv.cfg", "home = /usr")
    checkdir.write("checks/env/check_v.py", "def check_v(): raise RuntimeError")
    _, outcomes = checkdir.outcomes()
    assert outcomes == {"checks/check_ok.py::check_ok": "passed"}


def test_sibling_modules_import_as_under_pytest(checkdir: CheckDir) -> None:
    checkdir.write("checks/db/helpers.py", "ANSWER = 42")
    checkdir.write(
        "checks/db/check_uses_helper.py", "from helpers import ANSWER\n\ndef check_x():\n    assert ANSWER == 42"
    )
    result, outcomes = checkdir.outcomes()
    assert outcomes == {"checks/db/check_uses_helper.py::check_x": "passed"}, result.stdout


def test_collect_only_lists_checks_and_metadata(checkdir: CheckDir) -> None:
    checkdir.write(
        "checks/check_meta.py",
        '''
        from fraiseql_checks import check

        @check(interval="30s", timeout="5s", severity="critical", labels={"team": "db"}, tags=["db", "smoke"],
               runbook="docs/runbooks/DatabaseDown.md", owner="dba@example.com")
        def check_documented():
            """The database answers.

            More text that is not part of the description.
            """
        ''',
    )
    result = checkdir.run("--collect-only")
    assert result.ret == 0
    result.fnmatch_lines(
        [
            "checks/check_meta.py::check_documented",
            "    severity=critical interval=30s timeout=5s tags=db,smoke labels=team=db "
            "runbook=docs/runbooks/DatabaseDown.md owner=dba@example.com",
            "    The database answers.",
            "*= 1 check collected in *",
        ]
    )
    quiet = checkdir.run("--collect-only", "-q")
    assert "checks/check_meta.py::check_documented" in quiet.outlines
    assert not any("severity=" in line for line in quiet.outlines)


def test_no_checks_collected_exits_5(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_empty.py", "X = 1")
    result = checkdir.run()
    assert result.ret == 5
    result.fnmatch_lines(["*no checks ran*"])


def test_the_cyclic_garbage_collector_runs_rarely_while_collecting_and_running(checkdir: CheckDir) -> None:
    """Starting and collecting build what lives as long as the run: the collector's young
    generation is much larger meanwhile (docs/performance.md), and still collects the
    cyclic garbage a check file makes at import. The run keeps it so and leaves what was
    collected out of its collections (frozen); it is never off: garbage a check makes,
    cycles included, is still collected young. Both are undone when they end, however."""
    import gc

    import pytest

    from fraiseql_checks.core.gcpolicy import collector_off_the_checks, rare_collections

    checkdir.write(
        "checks/check_gc.py",
        """
        import gc
        import weakref

        WHILE_COLLECTED = (gc.isenabled(), gc.get_threshold()[0])

        def check_collected_with_a_large_young_generation():
            on, young = WHILE_COLLECTED
            assert on and young > 700

        def check_runs_with_it_and_the_checks_frozen():
            assert gc.isenabled() and gc.get_threshold()[0] > 700 and gc.get_freeze_count() > 0

        def check_its_cyclic_garbage_is_collected_young():
            freed = []
            for _ in range(3):
                node = {}
                node["self"] = node  # a cycle: only the collector frees it
                ref = weakref.ref(holder := type("Holder", (), {})())
                node["holder"] = holder
                del node, holder
                keep = [[] for _ in range(120_000)]  # allocations that trigger young collections
                del keep
                freed.append(ref() is None)
            assert all(freed), freed
        """,
    )
    checkdir.write(  # cyclic garbage made at import, then files that keep many objects
        "checks/check_imp_a.py",
        """
        import weakref

        class Holder:
            pass

        holder = Holder()
        holder.itself = holder  # a cycle: only the collector frees it
        GARBAGE = weakref.ref(holder)
        del holder

        def check_a():
            pass
        """,
    )
    for name in "bcdef":
        checkdir.write(
            f"checks/check_imp_{name}.py", f"KEPT = [[] for _ in range(30_000)]\n\ndef check_{name}():\n    pass\n"
        )
    checkdir.write(
        "checks/check_imp_z.py",
        """
        import sys

        def check_the_garbage_made_at_import_was_freed_while_collecting():
            assert sys.modules["checks.check_imp_a"].GARBAGE() is None
        """,
    )
    checkdir.write(  # a plugin named with -p: imported while the process starts
        "starting_plugin.py",
        """
        import gc

        WHILE_STARTING = gc.get_threshold()[0]

        def fraiseql_sessionstart(session):
            assert WHILE_STARTING > 700, WHILE_STARTING
            # what start-up built is frozen in our own process: no collection goes over it
            assert not any(obj is fraiseql_sessionstart for obj in gc.get_objects())
        """,
    )
    result, outcomes = checkdir.outcomes("-p", "starting_plugin", env={"PYTHONPATH": str(checkdir.path)})
    assert result.ret == 0, (outcomes, result.stderr)
    assert set(outcomes.values()) == {"passed"} and len(outcomes) == 10, outcomes
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), rare_collections():
        assert gc.get_threshold() != before and gc.isenabled()
        raise RuntimeError("a broken file")
    assert gc.get_threshold() == before
    gc.unfreeze()  # whatever an earlier test left frozen goes back to the oldest generation
    with pytest.raises(RuntimeError), collector_off_the_checks():
        assert gc.get_threshold() != before and gc.isenabled() and gc.get_freeze_count() > 0
        raise RuntimeError("a broken check run")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    # Frozen by someone else (a host process): left as it was, not unfrozen with the run's.
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collector_off_the_checks():
            assert gc.get_freeze_count() == frozen and gc.get_threshold() != before
        assert gc.get_freeze_count() == frozen and gc.get_threshold() == before
    finally:
        gc.unfreeze()
