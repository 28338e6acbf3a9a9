"""The ``notify`` section of the config."""

from __future__ import annotations

from fraiseql_checks.config import Parser, Setting, as_str, section
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.runbooks import BASE_URL, BASE_URL_ENV, SECTION

SETTINGS = [
    Setting(
        BASE_URL,
        as_str,
        help="base URL a runbook path is joined to, in alert rules, dashboards and messages "
        "(e.g. https://github.com/acme/ops/blob/main/; default: none, the path alone)",
        env=BASE_URL_ENV,
    ),
]


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addsetting(Setting(SECTION, section(SETTINGS), {}, "notifications: where runbook links point"))
