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

from fraiseql_checks.registry import Registry

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


class Commands(Registry[Command]):
    """The subcommands plugins register in ``fraiseql_add_commands``."""

    kind = "command"
