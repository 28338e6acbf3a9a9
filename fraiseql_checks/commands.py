"""Subcommands: ``fraiseql-check NAME ...`` besides running checks.

Plugins add commands in the ``fraiseql_add_commands`` hook. The first argument of
the command line picks a command by name; anything else runs checks as usual.
Each command gets the same configuration (config file, environment, ``-c``,
``-p``) as a run of checks, plus its own arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraiseql_checks.config import Config


@dataclasses.dataclass(frozen=True)
class Command:
    """One subcommand: its name, a line of help, its arguments and what it does."""

    name: str
    help: str
    #: Adds the command's own arguments to its parser.
    arguments: Callable[[argparse.ArgumentParser], None]
    #: Runs the command; returns the exit code.
    run: Callable[[Config], int]


class Commands:
    """The registry plugins fill in ``fraiseql_add_commands``."""

    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def add(self, command: Command) -> None:
        if command.name in self._commands:
            raise ValueError(f"command {command.name!r} is registered twice")
        self._commands[command.name] = command

    def get(self, name: str) -> Command | None:
        return self._commands.get(name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._commands.values(), key=lambda c: c.name))

    def __contains__(self, name: object) -> bool:
        return name in self._commands
