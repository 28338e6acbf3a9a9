"""Subcommands: ``fraiseql-check NAME ...`` besides running checks.

Plugins add commands in the ``fraiseql_add_commands`` hook. The first argument of
the command line picks a command by name; anything else runs checks as usual.
Each command gets the same configuration (config file, environment, ``-c``,
``-p``) as a run of checks, plus its own arguments. Of a run's other options
(those of ``fraiseql-check --help``) a command takes only those it says it takes
(``Command.options``): the others are refused on its command line, exit code 4, and
left out of its ``--help``. A command whose first argument picks one of several
things (an action, a generator) names them in ``Command.subjects``: its ``--help``
lists them, and so does the error when none is given.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from fraiseql_checks.registry import Registry

if TYPE_CHECKING:
    import pluggy

    from fraiseql_checks.config import Config


@dataclasses.dataclass(frozen=True)
class Options:
    """Which of a run's options a command takes too, by their ``dest``.

    ``only``: these and no other (``None``: any of them); ``but``: never these.
    """

    only: frozenset[str] | None = None
    but: frozenset[str] = frozenset()

    def __contains__(self, dest: object) -> bool:
        return (self.only is None or dest in self.only) and dest not in self.but

    def plus(self, *dests: str) -> Options:
        """These options too."""
        only = None if self.only is None else self.only | set(dests)
        return Options(only, self.but - set(dests))


#: Every command reads the config and loads plugins: ``-c FILE``, ``-p NAME``.
CONFIG_OPTIONS = Options(only=frozenset({"configfile", "plugins"}))
#: A command that runs checks once (``audit report``): a run's options, but not watch mode's
#: (``--watch``, ``--listen``, ``--workers``, ``--store``, ``--log-*``) nor ``--collect-only``.
RUN_OPTIONS = Options(but=frozenset({"watch", "listen", "workers", "store", "log_format", "log_level", "collectonly"}))
#: Every option of a run: what a command gets unless it says otherwise (an outside plugin's
#: command keeps what it always had).
ANY_OPTIONS = Options()


@dataclasses.dataclass(frozen=True)
class Subjects:
    """What a command's first argument picks (an action, a generator), each with a line of help."""

    #: The ``dest`` of that argument; the command declares it optional (``nargs="?"`` or ``"*"``)
    #: so that, when it is missing, the user gets the list instead of argparse's one line.
    dest: str
    #: What they are, in the plural: "actions", "generators".
    title: str
    #: Name → help; given the plugin manager, for what plugins add (generators).
    listing: Callable[[pluggy.PluginManager], Mapping[str, str]]

    def lines(self, pm: pluggy.PluginManager) -> list[str]:
        """One line per subject, name and help, in name order."""
        found = self.listing(pm)
        width = max((len(name) for name in found), default=0)
        return [f"  {name:<{width}}  {found[name]}" for name in sorted(found)] or ["  (none installed)"]

    def epilog(self, pm: pluggy.PluginManager) -> str:
        return "\n".join([f"{self.title}:", *self.lines(pm)])


def fixed(listing: Mapping[str, str]) -> Callable[[pluggy.PluginManager], Mapping[str, str]]:
    """A ``Subjects.listing`` that does not depend on plugins (a command's own actions)."""
    return lambda pm: listing


@dataclasses.dataclass(frozen=True)
class Command:
    """One subcommand: its name, a line of help, its arguments and what it does."""

    name: str
    help: str
    #: Adds the command's own arguments to its parser.
    arguments: Callable[[argparse.ArgumentParser], None]
    #: Runs the command; returns the exit code.
    run: Callable[[Config], int]
    #: Which of a run's options it takes too; the others are refused.
    options: Options = ANY_OPTIONS
    #: What its first argument picks, listed by ``--help`` and when it is missing.
    subjects: Subjects | None = None


class Commands(Registry[Command]):
    """The subcommands plugins register in ``fraiseql_add_commands``."""

    kind = "command"
