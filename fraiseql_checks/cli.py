"""The ``fraiseql-check`` command."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraiseql_checks._version import __version__
from fraiseql_checks.stash import StashKey

if TYPE_CHECKING:
    import pluggy

    from fraiseql_checks.commands import Command
    from fraiseql_checks.config import Config, Parser

# Only the version and the stash are imported up here: ``--version`` is answered before
# anything else is imported (the plugins take most of a second), as pytest answers it.

#: Stash key of the command line a ``Config`` was made from.
ARGS_KEY = StashKey[list[str]]("invocation-args")
#: What asks for the version (pytest's two spellings).
VERSION_FLAGS = ("--version", "-V")


def version_line() -> str:
    return f"fraiseql-checks {__version__}"


def asks_for_version(args: Sequence[str]) -> bool:
    """``--version`` (or ``-V``) anywhere on the command line before a ``--``: the answer
    is the version, whatever else is there, as argparse would give it."""
    for arg in args:
        if arg == "--":
            return False
        if arg in VERSION_FLAGS:
            return True
    return False


def configure(
    args: Sequence[str], invocation_dir: Path | None = None, file_values: dict[str, Any] | None = None
) -> tuple[Config, Command | None]:
    """Plugins, options and settings for a command line, and the subcommand it names;
    ``file_values``: the config file's table as already read (watch mode's workers).

    ``UsageError`` when they are wrong.
    """
    from fraiseql_checks._plugins import create_pluginmanager, import_plugin
    from fraiseql_checks.commands import Commands
    from fraiseql_checks.config import Config, Parser, UsageError, as_str_list, locate_config_file, read_config_file

    invocation_dir = invocation_dir or Path.cwd()
    pm = create_pluginmanager(args)
    commands = Commands()
    pm.hook.fraiseql_add_commands.call_historic(kwargs={"commands": commands})
    command = commands.get(args[0]) if args else None
    parser: Parser
    if command is not None:
        args = args[1:]
        parser = _command_parser(pm, command)
    else:
        listing = "\n".join(f"  {c.name:<12} {c.help}" for c in commands)
        parser = Parser(epilog=f"commands (fraiseql-check COMMAND --help):\n{listing}" if listing else None)
    parser.addoption(*VERSION_FLAGS[::-1], action="version", version=version_line())
    pm.hook.fraiseql_addoption.call_historic(kwargs={"parser": parser})
    early, _ = parser.argparser.parse_known_args(args)
    config_file = locate_config_file(early, invocation_dir)
    if config_file is not None:
        try:
            table = read_config_file(config_file) if file_values is None else file_values
            plugins = as_str_list(table.get("plugins", []))
        except ValueError as exc:
            raise UsageError(f"{config_file.name}: plugins: {exc}") from None
        for name in plugins:
            import_plugin(pm, name)
    option = parser.argparser.parse_args(args)
    if command is not None and command.subjects is not None and not getattr(option, command.subjects.dest, None):
        subjects = command.subjects
        raise UsageError(
            "\n".join(
                [
                    f"`fraiseql-check {command.name}` needs one of its {subjects.title}"
                    f" (fraiseql-check {command.name} --help):",
                    *subjects.lines(pm),
                ]
            )
        )
    config = Config.load(pm, parser, option, invocation_dir=invocation_dir, file_values=file_values)
    config.stash[ARGS_KEY] = list(args)  # watch mode's workers read the same command line
    return config, command


class _Refused(argparse.Action):
    """An option of a run that means nothing to this command: one line, exit code 4."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: str | None = None) -> None:
        parser.error(f"{option} does not apply to `{parser.prog}` (see `{parser.prog} --help`)")


def _command_parser(pm: pluggy.PluginManager, command: Command) -> Parser:
    """The parser of a subcommand: its own arguments, and of a run's options only those
    ``command.options`` takes; the others are refused and left out of its help."""
    from fraiseql_checks.config import Parser

    class RunOptions(Parser):
        """Records the option strings of a run (``fraiseql-check --help``)."""

        def __init__(self) -> None:
            super().__init__()
            self.names: set[str] = set()

        def addoption(self, *names: str, group: str = "general", **kwargs: Any) -> None:
            self.names.update(name for name in names if name.startswith("-"))

    class CommandParser(Parser):
        def addoption(self, *names: str, group: str = "general", **kwargs: Any) -> None:
            if names and names[0].startswith("-") and run_options.names.intersection(names):
                probe = argparse.ArgumentParser(add_help=False).add_argument(*names, **kwargs)
                if probe.dest not in command.options:
                    self.argparser.add_argument(
                        *names,
                        dest=probe.dest,
                        nargs=probe.nargs,
                        default=probe.default,  # read as if it had not been given
                        action=_Refused,
                        help=argparse.SUPPRESS,
                    )
                    return
            super().addoption(*names, group=group, **kwargs)

    run_options = RunOptions()
    for impl in pm.hook.fraiseql_addoption.get_hookimpls():  # a historic hook: called one by one here
        impl.function(parser=run_options)
    parser = CommandParser(command=command.name)
    parser.argparser.description = command.help
    if command.subjects is not None:
        parser.argparser.epilog = command.subjects.epilog(pm)
    command.arguments(parser.argparser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv``; returns the exit code (PRODUCT.md, "Contracts")."""
    args = list(sys.argv[1:] if argv is None else argv)
    if asks_for_version(args):
        sys.stdout.write(version_line() + "\n")
        return 0
    import traceback

    from fraiseql_checks.config import UsageError, write_error
    from fraiseql_checks.core import gcpolicy
    from fraiseql_checks.core.session import ExitCode, Session

    try:
        config, command = configure(args)
    except UsageError as exc:
        write_error(str(exc))
        return ExitCode.USAGE_ERROR
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except Exception:
        _internal_error(traceback.format_exc())
        return ExitCode.INTERNAL_ERROR
    try:
        config.hook.fraiseql_configure(config=config)
        gcpolicy.started()
        try:
            if command is not None:
                return int(command.run(config))
            return int(Session(config).main())
        finally:
            config.hook.fraiseql_unconfigure(config=config)
    except UsageError as exc:
        write_error(str(exc), config.mask)
        return ExitCode.USAGE_ERROR
    except KeyboardInterrupt:
        write_error("interrupted")
        return ExitCode.INTERRUPTED
    except BaseException:  # SystemExit from a plugin hook included: never exit 0 by accident
        _internal_error(config.mask(traceback.format_exc()))
        return ExitCode.INTERNAL_ERROR


def _internal_error(text: str) -> None:
    for line in text.splitlines():
        sys.stderr.write(f"INTERNALERROR> {line}\n")


def console_main() -> None:
    # httpx's package imports its command-line client, which imports rich, click and
    # pygments when they are installed (80 ms of every start that uses HTTP); this
    # process never runs httpx's CLI, and httpx carries on without it.
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    from fraiseql_checks.core import gcpolicy

    # Starting imports and configures what lives as long as the process: ~20 young and two
    # middle collections found nothing to free in it (~3 ms of every start).
    gcpolicy.own_process()
    with gcpolicy.rare_collections():
        code = main()
    # The interpreter's exit collects every generation once more: ~80 ms after a run of
    # 10,000 checks, to free what the process's end frees anyway. Frozen, it is left out
    # (the atexit handlers still run and the streams are still flushed).
    gc.freeze()
    if "fraiseql_checks.core.leaks" in sys.modules:  # what checks left behind may not hold the exit
        from fraiseql_checks.core import leaks

        leaks.run_exit_handlers(code)  # within a limit
        leaks.exit_without_waiting(code)  # threads a check left behind: not waited for
    sys.exit(code)
