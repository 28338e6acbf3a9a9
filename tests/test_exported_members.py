"""The package's ``__all__`` is exactly what users can import."""

import fraiseql_checks


def test_all_names_are_importable() -> None:
    for name in fraiseql_checks.__all__:
        assert hasattr(fraiseql_checks, name), name


def test_public_names_are_listed() -> None:
    """Every public name is in ``__all__`` (submodules and pytest's rewrite helpers aside)."""
    public = {
        name
        for name in dir(fraiseql_checks)  # the names are imported when first used: dir(), not vars()
        if not name.startswith(("_", "@"))
        and name != "annotations"  # from __future__
        and not getattr(getattr(fraiseql_checks, name), "__name__", "").startswith("fraiseql_checks.")
    }
    assert public == set(fraiseql_checks.__all__) - {"__version__"}


def test_the_documented_api_is_exactly_exported() -> None:
    """The names the docs teach (``from fraiseql_checks import check, fixture, alert, ...``)."""
    assert set(fraiseql_checks.__all__) == {
        "AlertSpec",
        "CheckSpec",
        "Outcome",
        "Result",
        "TargetError",
        "__version__",
        "alert",
        "check",
        "fixture",
        "hookimpl",
        "record",
        "stopwatch",
    }


def test_the_import_paths_users_write_still_work() -> None:
    """What check files and the docs import, the rooms notwithstanding (a fresh interpreter)."""
    import subprocess
    import sys

    code = (
        "from fraiseql_checks import alert, check, fixture, hookimpl, record, stopwatch, TargetError\n"
        "from fraiseql_checks import promql\n"
        "from fraiseql_checks.coherency import assert_coherent\n"
        "import sys\n"
        "heavy = sorted(m for m in ('asyncpg', 'redis', 'httpx', 'yaml') if m in sys.modules)\n"
        "assert not heavy, f'writing a check imports no client library, got {heavy}'\n"
        "from fraiseql_checks.audit import AuditUnsupported, MISSING\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
