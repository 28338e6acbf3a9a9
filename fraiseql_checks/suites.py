"""The shipped suites (``host``, ``health``, ``alerts``, ``audit``): where they are, which run.

The suites live in the repository's top-level ``checks/`` folder and are installed
with the package as ``fraiseql_checks/_suites/`` (``pyproject.toml`` maps the one
onto the other). A run picks them by name, with ``suites = ["health"]`` in the config
or ``--suite health`` on the command line, next to the user's own ``checks/``. Their
node ids read ``suites/<suite>/<file>::<check>`` wherever the package is installed;
in a clone of this repository, where the suites *are* the root's ``checks/`` folder,
they keep that folder's ids (``checks/host/check_host.py::check_cpu_usage``).

With no configuration at all (no config file, no ``checks/`` folder, no path and no
suite given) a run gets the ``host`` suite: the machine it runs on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraiseql_checks.config import Parser, Setting, UsageError, as_str_list
from fraiseql_checks.hookspec import hookimpl

if TYPE_CHECKING:
    from fraiseql_checks.config import Config

#: How node ids name the shipped suites' files: ``suites/health/check_fraiseql.py``.
PREFIX = "suites"
#: Every shipped suite at once: ``--suite all``.
ALL = "all"
#: What a run with no configuration gets.
ZERO_CONFIG = ("host",)
#: The folder of checks a run looks in by default (the ``paths`` setting's default).
DEFAULT_PATHS = ["checks"]

_PACKAGE = Path(__file__).resolve().parent


def _find_root() -> Path | None:
    """The folder holding the suites: installed in the package, else (a source tree, an
    editable install) the repository's ``checks/`` next to the package."""
    installed = _PACKAGE / "_suites"
    if installed.is_dir():
        return installed
    source = _PACKAGE.parent / "checks"
    if source.is_dir() and (_PACKAGE.parent / "pyproject.toml").is_file():
        return source
    return None


#: Where the shipped suites are on this machine (``None``: not installed).
ROOT: Path | None = _find_root()


def known() -> dict[str, Path]:
    """The shipped suites by name: each folder of ``ROOT`` holding check files."""
    if ROOT is None:
        return {}
    return {
        folder.name: folder
        for folder in sorted(ROOT.iterdir())
        if folder.is_dir() and not folder.name.startswith((".", "_")) and any(folder.glob("check_*.py"))
    }


def _names(known_names: list[str]) -> str:
    return ", ".join([*known_names, ALL]) if known_names else "none installed"


def as_suites(value: Any) -> list[str]:
    """The ``suites`` setting: known suite names (``all`` is every one), in the order given."""
    names = as_str_list(value)
    found = known()
    chosen: list[str] = []
    for name in names:
        if name == ALL:
            chosen.extend(found)
            continue
        if name not in found:
            raise ValueError(f"unknown suite {name!r} (known suites: {_names(list(found))})")
        chosen.append(name)
    return list(dict.fromkeys(chosen))


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addoption(
        "--suite",
        dest="suite",
        action="append",
        metavar="NAME",
        help=f"run a shipped suite too ({', '.join([*known(), ALL])}); repeat for more; replaces the config's suites",
    )
    parser.addsetting(
        Setting(
            "suites",
            as_suites,
            [],
            "shipped suites to run next to the checks in 'paths' (host, health, alerts, audit, or all)",
            env="FRAISEQL_CHECKS_SUITES",
            option="suite",
        )
    )


def folders(config: Config) -> list[Path]:
    """The folders of the suites the config (or ``--suite``) chooses."""
    found = known()
    return [found[name] for name in config.get("suites")]


def node_path(path: Path) -> str | None:
    """How a node id names ``path`` when it is a shipped suite's file (``suites/host/check_host.py``)."""
    if ROOT is None:
        return None
    try:
        return f"{PREFIX}/{path.relative_to(ROOT).as_posix()}"
    except ValueError:
        return None


def is_shipped(path: str) -> bool:
    """Whether a file (a traceback's frame) is one of the shipped suites': shown as the
    user's own code, though it lives inside the package."""
    return ROOT is not None and path.startswith(f"{ROOT}/")


def _given(config: Config, arg: str) -> str:
    """A command-line path or node id; ``suites/...`` names a shipped check when no such
    file is under the invocation folder."""
    path_text, sep, name = arg.partition("::")
    head = f"{PREFIX}/"
    if ROOT is not None and path_text.startswith(head) and not (config.invocation_dir / path_text).exists():
        shipped = ROOT / path_text[len(head) :]
        if shipped.exists():
            return f"{shipped}{sep}{name}"
    return arg


def collection_args(config: Config) -> list[str]:
    """What a run collects: the command line's paths (else the config's ``paths``) and the
    chosen suites' folders; the ``host`` suite when nothing at all is configured.

    ``UsageError`` for a configured folder that is not there.
    """
    chosen = [str(folder) for folder in folders(config)]
    given = config.getoption("paths") or []
    if given:
        return [*(_given(config, arg) for arg in given), *chosen]
    paths: list[str] = config.get("paths")
    defaults = []
    for path in paths:
        absolute = config.rootdir / path
        if absolute.exists():
            defaults.append(str(absolute))
        elif not (chosen and paths == DEFAULT_PATHS):  # suites alone: no checks/ folder needed
            if config.config_file is None and paths == DEFAULT_PATHS and ROOT is not None:
                return [str(known()[name]) for name in ZERO_CONFIG]  # zero configuration: this machine
            raise UsageError(
                f"no {path} folder in {config.rootdir}: give the checks' path, or set 'paths' or 'suites'"
                f" ({_names(list(known()))}) in pyproject.toml [tool.fraiseql-checks] or fraiseql-checks.yaml"
            )
    return [*defaults, *chosen]
