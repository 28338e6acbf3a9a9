"""The ``fraiseql-check`` command."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from fraiseql_checks._plugins import create_pluginmanager, import_plugin
from fraiseql_checks._version import __version__
from fraiseql_checks.commands import Command, Commands
from fraiseql_checks.config import (
    Config,
    Parser,
    UsageError,
    as_str_list,
    locate_config_file,
    read_config_file,
    write_error,
)
from fraiseql_checks.core import leaks
from fraiseql_checks.core.session import ExitCode, Session
from fraiseql_checks.stash import StashKey

#: Stash key of the command line a ``Config`` was made from.
ARGS_KEY = StashKey[list[str]]("invocation-args")


def configure(args: Sequence[str], invocation_dir: Path | None = None) -> tuple[Config, Command | None]:
    """Plugins, options and settings for a command line, and the subcommand it names.

    ``UsageError`` when they are wrong.
    """
    invocation_dir = invocation_dir or Path.cwd()
    pm = create_pluginmanager(args)
    commands = Commands()
    pm.hook.fraiseql_add_commands.call_historic(kwargs={"commands": commands})
    command = commands.get(args[0]) if args else None
    if command is not None:
        args = args[1:]
        parser = Parser(command=command.name)
        parser.argparser.description = command.help
        command.arguments(parser.argparser)
    else:
        listing = "\n".join(f"  {c.name:<12} {c.help}" for c in commands)
        parser = Parser(epilog=f"commands (fraiseql-check COMMAND --help):\n{listing}" if listing else None)
    parser.addoption("--version", action="version", version=f"fraiseql-checks {__version__}")
    pm.hook.fraiseql_addoption.call_historic(kwargs={"parser": parser})
    early, _ = parser.argparser.parse_known_args(args)
    config_file = locate_config_file(early, invocation_dir)
    if config_file is not None:
        try:
            plugins = as_str_list(read_config_file(config_file).get("plugins", []))
        except ValueError as exc:
            raise UsageError(f"{config_file.name}: plugins: {exc}") from None
        for name in plugins:
            import_plugin(pm, name)
    option = parser.argparser.parse_args(args)
    config = Config.load(pm, parser, option, invocation_dir=invocation_dir)
    config.stash[ARGS_KEY] = list(args)  # watch mode's workers read the same command line
    return config, command


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv``; returns the exit code (PRODUCT.md, "Contracts")."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        config, command = configure(args)
    except UsageError as exc:
        write_error(str(exc))
        return ExitCode.USAGE_ERROR
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    except Exception:
        _internal_error(traceback.format_exc())
        return ExitCode.INTERNAL_ERROR
    try:
        config.hook.fraiseql_configure(config=config)
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
    code = main()
    leaks.exit_without_waiting(code)
    sys.exit(code)
