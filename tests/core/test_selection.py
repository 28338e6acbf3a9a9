"""Selecting checks with -k (names) and -m (marks, tags, severity), as pytest does."""

from __future__ import annotations

import pytest

from tests.support.checkdir import CheckDir


@pytest.fixture
def suite(checkdir: CheckDir) -> CheckDir:
    checkdir.write(
        "checks/database/check_pg.py",
        """
        import pytest
        from fraiseql_checks import check

        @check(severity="critical", tags=["db"])
        def check_connects():
            pass

        @pytest.mark.slow
        @check(severity="warning", tags=["db"])
        def check_slow_queries():
            pass
        """,
    )
    checkdir.write(
        "checks/cache/check_redis.py",
        """
        from fraiseql_checks import check

        @check(severity="info", tags=["cache"])
        def check_ping():
            pass

        def check_hit_ratio():
            pass
        """,
    )
    return checkdir


def selected(checkdir: CheckDir, *args: str) -> list[str]:
    _, report = checkdir.run_json(*args)
    return sorted(r["name"] for r in report["results"])


def test_keyword_expressions(suite: CheckDir) -> None:
    assert selected(suite, "-k", "connects") == ["check_connects"]
    assert selected(suite, "-k", "database") == ["check_connects", "check_slow_queries"]
    assert selected(suite, "-k", "check_redis.py and not ping") == ["check_hit_ratio"]
    assert selected(suite, "-k", "SLOW or PING") == ["check_ping", "check_slow_queries"]


def test_mark_expressions_cover_marks_tags_and_severity(suite: CheckDir) -> None:
    assert selected(suite, "-m", "critical") == ["check_connects"]
    assert selected(suite, "-m", "db and not slow") == ["check_connects"]
    assert selected(suite, "-m", "cache or slow") == ["check_ping", "check_slow_queries"]
    assert selected(suite, "-m", "warning") == ["check_hit_ratio", "check_slow_queries"]


def test_deselected_count_and_all_deselected_exits_5(suite: CheckDir) -> None:
    result = suite.run("-k", "ping")
    assert result.ret == 0
    result.fnmatch_lines(["collected 4 checks / 3 deselected / 1 selected", "*1 passed, 3 deselected in *"])
    assert suite.run("-k", "nothing_matches").ret == 5


def test_a_bad_expression_is_a_usage_error(suite: CheckDir) -> None:
    result = suite.run("-k", "ping and (")
    assert result.ret == 4
    result.stderr_lines(["ERROR: -k: wrong expression 'ping and (':*"])
