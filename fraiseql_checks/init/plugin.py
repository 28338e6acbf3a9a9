"""The ``init`` plugin: registers ``fraiseql-check init``, the setup wizard (``init.wizard``).

Every run of ``fraiseql-check`` registers this plugin, so the wizard's modules (the
probe, the file templates) are imported only when the command runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from fraiseql_checks.commands import CONFIG_OPTIONS, Command, Commands
from fraiseql_checks.hookspec import hookimpl

if TYPE_CHECKING:
    from fraiseql_checks.config import Config


def _arguments(parser: argparse.ArgumentParser) -> None:
    from fraiseql_checks.init.wizard import arguments

    arguments(parser)


def _run(config: Config) -> int:
    from fraiseql_checks.init.wizard import run

    return run(config)


@hookimpl
def fraiseql_add_commands(commands: Commands) -> None:
    commands.add(
        Command(
            "init",
            "set up a project: probe FraiseQL, write the config, checks/, CI jobs; run the checks once",
            _arguments,
            _run,
            # a wizard runs no checks itself: of a run's options, only the config's
            options=CONFIG_OPTIONS,
        )
    )
