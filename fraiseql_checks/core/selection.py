"""Selecting checks with ``-k`` (names) and ``-m`` (marks, tags, severity), as pytest does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fraiseql_checks.config import Config, Parser, UsageError
from fraiseql_checks.core._pytest_compat import compile_expression
from fraiseql_checks.hookspec import hookimpl

if TYPE_CHECKING:
    from fraiseql_checks.checks import Check
    from fraiseql_checks.core.session import Session


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addoption(
        "-k",
        dest="keyword",
        metavar="EXPR",
        help="only checks whose name, file or folder matches EXPR, e.g. -k 'disk and not tmp'",
        group="selection",
    )
    parser.addoption(
        "-m",
        dest="markexpr",
        metavar="EXPR",
        help="only checks whose marks, tags or severity match EXPR, e.g. -m 'critical and not slow'",
        group="selection",
    )


def _compile(text: str, option: str) -> Any:
    try:
        return compile_expression(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def keyword_matches(check: Check, evaluate: Any) -> bool:
    names = [name.lower() for name in check.keywords]

    def matcher(subname: str, **kwargs: Any) -> bool:
        subname = subname.lower()
        return any(subname in name for name in names)

    return bool(evaluate(matcher))


def mark_matches(check: Check, evaluate: Any) -> bool:
    names = check.mark_names

    def matcher(name: str, **kwargs: Any) -> bool:
        if not kwargs:
            return name in names
        return any(
            mark.name == name and all(mark.kwargs.get(k) == v for k, v in kwargs.items()) for mark in check.marks
        )

    return bool(evaluate(matcher))


@hookimpl
def fraiseql_collection_modifyitems(session: Session, config: Config, checks: list[Check]) -> None:
    keyword = config.getoption("keyword")
    markexpr = config.getoption("markexpr")
    if not keyword and not markexpr:
        return
    by_keyword = _compile(keyword, "-k") if keyword else None
    by_mark = _compile(markexpr, "-m") if markexpr else None
    kept, dropped = [], []
    for check in checks:
        if (by_keyword is None or keyword_matches(check, by_keyword)) and (
            by_mark is None or mark_matches(check, by_mark)
        ):
            kept.append(check)
        else:
            dropped.append(check)
    if dropped:
        session.deselected.extend(dropped)
        config.hook.fraiseql_deselected(checks=dropped)
        checks[:] = kept
