"""PromQL: parse an expression, list the metric names it selects, write string literals.

Parsing is the ``promql-parser`` package (Prometheus' own grammar, in Rust). The
alert rules, the dashboards and the metrics contract all go through here, so an
expression that would not load in Prometheus is caught the same way everywhere.

    >>> sorted(metric_names('sum(rate(fraiseql_cache_hits[5m])) / on() up'))
    ['fraiseql_cache_hits', 'up']
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the parser is imported when an expression is first parsed, not at every start
    import promql_parser

__all__ = [
    "PromQLError",
    "metric_names",
    "name_patterns",
    "parse",
    "promql_string",
    "regex_escape",
    "without_grafana_variables",
]


def promql_string(value: str) -> str:
    """A PromQL string literal: double-quoted, with JSON's escapes (which are Go's).

    Non-ASCII characters stay as they are: Go does not read a surrogate pair
    (``\\ud83d\\ude00``, JSON's way of writing U+1F600) as one character.

    >>> print(promql_string('a "b" \\ c'))
    "a \\"b\\" \\\\ c"
    """
    return json.dumps(value, ensure_ascii=False)


def regex_escape(text: str) -> str:
    """``text`` matched literally by a (RE2) regular expression.

    >>> regex_escape("checks/a.py::check_x[1]")
    'checks/a\\\\.py::check_x\\\\[1\\\\]'
    """
    special = set(".^$*+?()[]{}|\\")
    return "".join(f"\\{c}" if c in special else c for c in text)


class PromQLError(ValueError):
    """An expression that does not parse; the message is the parser's, with the expression."""

    def __init__(self, expr: str, reason: str) -> None:
        super().__init__(f"invalid PromQL {expr!r}: {reason}")
        self.expr = expr
        self.reason = reason


def parse(expr: str) -> promql_parser.Expr:
    """The typed syntax tree of ``expr``; ``PromQLError`` when it is not valid PromQL."""
    import promql_parser

    if not isinstance(expr, str) or not expr.strip():
        raise PromQLError(str(expr), "empty expression")
    try:
        return promql_parser.parse(expr)
    except (ValueError, RuntimeError) as exc:  # the parser raises ValueError with its message
        raise PromQLError(expr, str(exc)) from None


def _selectors(expr: str) -> list[promql_parser.VectorSelector]:
    import promql_parser

    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        return True

    promql_parser.walk(parse(expr), visit)
    return found


def _name_matchers(selector: promql_parser.VectorSelector) -> list[promql_parser.Matcher]:
    return [m for m in selector.matchers.matchers if m.name == "__name__"]


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects by name: ``foo`` and ``{__name__="foo"}``.

    Names given by a regular expression (``{__name__=~"fraiseql_.*"}``) are not
    names; ``name_patterns`` lists those.
    """
    import promql_parser

    names: set[str] = set()
    for selector in _selectors(expr):
        if selector.name:
            names.add(selector.name)
        for matcher in _name_matchers(selector):
            if matcher.op == promql_parser.MatchOp.Equal:
                names.add(matcher.value)
    return names


def name_patterns(expr: str) -> set[str]:
    """The regular expressions ``expr`` matches metric names with (``{__name__=~"..."}``)."""
    import promql_parser

    return {
        matcher.value
        for selector in _selectors(expr)
        for matcher in _name_matchers(selector)
        if matcher.op == promql_parser.MatchOp.Re
    }


# Grafana substitutes these before the query reaches Prometheus. (Patterns, compiled by re's
# cache at their first use: not at every start of every command.)
_GRAFANA_INTERVALS = r"\$\{?(?:__rate_interval|__interval|__range)\b\}?"
_GRAFANA_NUMBERS = r"\$\{?(?:__interval_ms|__range_ms|__range_s)\b\}?"
_GRAFANA_VARIABLE = r"\$\{[^}]+\}|\[\[[^\]]+\]\]|\$[A-Za-z_][A-Za-z0-9_]*"


def without_grafana_variables(expr: str) -> str:
    """A Grafana panel's query with its template variables replaced, so it parses as PromQL.

    ``$__rate_interval``, ``$__interval`` and ``$__range`` become ``5m``; numeric
    ones (``$__range_s``...) become ``300``; other variables (``$job``, ``${instance}``,
    ``[[env]]``) become ``.*`` inside label matchers, where dashboards use them.
    """
    expr = re.sub(_GRAFANA_INTERVALS, "5m", expr)
    expr = re.sub(_GRAFANA_NUMBERS, "300", expr)
    return re.sub(_GRAFANA_VARIABLE, ".*", expr)
