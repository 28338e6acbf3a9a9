"""``fraiseql-check generate dashboards``: the six seed dashboards and one per check suite, as JSON files.

Writes ``dashboards/<name>.json`` for the default profile and the six FraiseQL
dashboards of the other profiles in ``dashboards/<profile>/``. The builders live in
``dashboards/build.py``, imported when a generator or ``grafana`` command runs.
"""

from __future__ import annotations

from fraiseql_checks.config import Config, Parser, Setting, section
from fraiseql_checks.generate import Generator, Generators
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.runbooks import BASE_URL, SECTION

#: The section's one key, the runbook base, is ``notify.runbook_base_url`` now.
MOVED = {"runbook_url": f"{SECTION}.{BASE_URL}"}


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addsetting(Setting("dashboards", section([], moved=MOVED), {}, "(no keys: see notify.runbook_base_url)"))


def generate(config: Config) -> dict[str, str]:
    from fraiseql_checks.dashboards.build import generate as build_files

    return build_files(config)


@hookimpl
def fraiseql_add_generators(generators: Generators) -> None:
    generators.add(
        Generator(
            "dashboards",
            "Grafana dashboards: the six FraiseQL dashboards and one per check suite (dashboards/*.json)",
            generate,
        )
    )
