"""``fraiseql-check generate NAME``: write generated artefacts (rules, dashboards, manifests, ...).

Generators come from plugins (``fraiseql_add_generators``); ``generate --help``
lists them, and so does ``generate`` alone (exit code 4). Each writes its files
under the root directory and says what it wrote; ``--check`` compares instead of
writing and fails when a committed file differs from what the generator makes.
Generators that read the checks' metadata get them from ``collect_checks``: a
check file that does not collect stops the generation (exit code 2), so no file
is written that silently misses its checks.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fraiseql_checks.commands import CONFIG_OPTIONS, Command, Commands, Subjects
from fraiseql_checks.config import Config, UsageError, write_error
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.registry import Registry
from fraiseql_checks.stash import StashKey

if TYPE_CHECKING:
    import pluggy

    from fraiseql_checks.core.session import Session

#: The checks collected once per invocation, for every generator.
_SESSION: StashKey[Session] = StashKey("generate.session")


@dataclasses.dataclass(frozen=True)
class Generator:
    """Makes files: ``make(config)`` returns their contents by path, relative to the root."""

    name: str
    help: str
    make: Callable[[Config], dict[str, str]]


class Generators(Registry[Generator]):
    """The generators plugins register in ``fraiseql_add_generators``."""

    kind = "generator"


class GenerateError(Exception):
    """Generation cannot go on: the message (a line per problem) and the exit code."""

    def __init__(self, message: str, exitcode: int) -> None:
        super().__init__(message)
        self.exitcode = exitcode


def collect_checks(config: Config) -> Session:
    """The checks under the config's ``paths``, collected once per invocation as a run
    collects them: the one way every generator (and ``fraiseql-check slo``) reads the
    checks' metadata, with a run's exit codes.

    ``UsageError`` (exit code 4) when a path is missing; ``GenerateError`` (exit code 2)
    listing the files that did not collect, if any.
    """
    from fraiseql_checks.core.rewrite_cache import RewriteCache
    from fraiseql_checks.core.session import ExitCode, Session

    session = config.stash.get(_SESSION)
    if session is None:
        session = config.stash[_SESSION] = Session(config)
        # only the checks' metadata is read, never their asserts: skip pytest's rewriter (0.3 ms an assert)
        session.collector.rewrite_cache = RewriteCache(None, rewrite=False)
        session.collect()
    if session.collect_errors:
        lines = [f"collecting {error.id}: {error.message}" for error in session.collect_errors]
        raise GenerateError("\n".join(lines), ExitCode.INTERRUPTED)
    return session


def generators_of(config: Config) -> Generators:
    generators = Generators()
    config.hook.fraiseql_add_generators.call_historic(kwargs={"generators": generators})
    return generators


def _listing(pm: pluggy.PluginManager) -> dict[str, str]:
    """Every generator's name and help, for ``generate --help`` (before there is a config)."""
    generators = Generators()
    for impl in pm.hook.fraiseql_add_generators.get_hookimpls():  # historic: called one by one here
        impl.function(generators=generators)
    return {generator.name: generator.help for generator in generators}


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", nargs="*", metavar="NAME", help="what to generate: one or more of the generators below")
    parser.add_argument("-o", "--output", metavar="DIR", help="write under DIR instead of the root directory")
    parser.add_argument(
        "--check",
        dest="generate_check",
        action="store_true",
        help="write nothing; exit 1 if the files on disk differ from what would be generated",
    )


def write_files(files: dict[str, str], base: Path, check: bool, mask: Callable[[str], str] = str) -> int:
    """Write (or, with ``check``, compare) generated files; the exit code.

    A file may hold secrets (a receiver's token): it is written as is, but what is
    printed about it (the differences) goes through ``mask``.
    """
    stale = 0
    for relpath, content in sorted(files.items()):
        target = base / relpath
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if check:
            if current != content:
                import difflib

                stale += 1
                diff = difflib.unified_diff(
                    (current or "").splitlines(keepends=True),
                    content.splitlines(keepends=True),
                    f"{relpath} (on disk)",
                    f"{relpath} (generated)",
                )
                sys.stdout.writelines(mask(line) for line in list(diff)[:40])
                print(f"{relpath}: differs from what the generator makes")
            continue
        if current == content:
            print(f"unchanged {relpath}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        print(f"wrote {relpath}")
    return 1 if stale else 0


def _run(config: Config) -> int:
    generators = generators_of(config)
    names: list[str] = config.getoption("what")
    unknown = [n for n in names if generators.get(n) is None]
    if unknown:
        known = ", ".join(generators.names()) or "none installed"
        raise UsageError(f"nothing generates {', '.join(map(repr, unknown))} (available: {known})")
    files: dict[str, str] = {}
    for name in names:
        generator = generators.get(name)
        assert generator is not None
        try:
            files.update(generator.make(config))
        except GenerateError as exc:
            for line in str(exc).splitlines():
                write_error(config.mask(line))
            return exc.exitcode
    output = config.getoption("output")
    base = (config.invocation_dir / output) if output else config.rootdir
    return write_files(files, base, bool(config.getoption("generate_check")), config.mask)


@hookimpl
def fraiseql_add_commands(commands: Commands) -> None:
    commands.add(
        Command(
            "generate",
            "write generated files: Prometheus rules, Alertmanager routing, Grafana dashboards, SLO rules,"
            " Kubernetes manifests, a Helm chart",
            _arguments,
            _run,
            # -c, -p; --suite, the shipped suites to generate for, as a run collects them;
            # and the watcher's --listen, --workers, --store, which `generate kubernetes` describes
            options=CONFIG_OPTIONS.plus("suite", "listen", "workers", "store"),
            subjects=Subjects("what", "generators", _listing),
        )
    )
