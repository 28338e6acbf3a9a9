"""The ``slo`` plugin: where SLO definitions come from, and the ``slo`` settings.

```toml
[tool.fraiseql-checks.slo]
files = ["slos.yaml", "slo/openslo.yaml"]   # default: slos.yaml or slos.yml if there
refresh = "1m"                               # watch mode: how often the SLO gauges are computed
```

SLOs come from the checks (``@check(slo="99.9% / 30d")``) and from these files.
The command (``slo.command``), the rule generator (``slo.rules``) and watch mode's
gauges (``slo.export``) all start from ``load_slos``. This module registers the
command and the generator; their modules are imported when they run, since every
run of ``fraiseql-check`` registers this plugin.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraiseql_checks.commands import Command, Commands
from fraiseql_checks.config import Config, Parser, Setting, as_duration, as_str_list, resolve_section, section
from fraiseql_checks.generate import Generator, Generators
from fraiseql_checks.hookspec import hookimpl

if TYPE_CHECKING:
    from fraiseql_checks.checks import Check
    from fraiseql_checks.slo.model import SLO

SETTINGS = [
    Setting("files", as_str_list, help="SLO files: slos.yaml, OpenSLO v1, Sloth prometheus/v1 (default slos.yaml)"),
    Setting("refresh", as_duration, help="watch mode: how often the SLO gauges are computed (default 1m)"),
]
DEFAULT_REFRESH = 60.0


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addsetting(Setting("slo", section(SETTINGS), {}, "SLOs: definition files, watch-mode refresh"))


def _arguments(parser: argparse.ArgumentParser) -> None:
    from fraiseql_checks.slo.command import arguments

    arguments(parser)


def _run(config: Config) -> int:
    from fraiseql_checks.slo.command import run

    return run(config)


def _make_rules(config: Config) -> dict[str, str]:
    from fraiseql_checks.slo.rules import make

    return make(config)


@hookimpl
def fraiseql_add_commands(commands: Commands) -> None:
    commands.add(Command("slo", "SLOs: SLI, error budget and burn rates; --gate for CI", _arguments, _run))


@hookimpl
def fraiseql_add_generators(generators: Generators) -> None:
    generators.add(
        Generator(
            "slo-rules",
            "Prometheus recording and burn-rate alerting rules for the SLOs (Sloth-compatible)",
            _make_rules,
        )
    )


def slo_settings(config: Config) -> dict[str, Any]:
    values = resolve_section(config, "slo", SETTINGS)
    if values.get("refresh") is None:
        values["refresh"] = DEFAULT_REFRESH
    return values


def slo_files(config: Config) -> list[tuple[Path, str]]:
    """The SLO files to read, each with the name to report it by (relative to the root).

    ``SLOError`` when a pattern of ``slo.files`` matches nothing."""
    import glob

    from fraiseql_checks.slo.load import DEFAULT_FILES
    from fraiseql_checks.slo.model import SLOError

    configured = slo_settings(config).get("files")
    root = config.rootdir
    if configured is None:
        return [(root / name, name) for name in DEFAULT_FILES if (root / name).is_file()]
    out: list[tuple[Path, str]] = []
    for name in configured:
        path = Path(name) if Path(name).is_absolute() else root / name
        if not any(c in name for c in "*?["):
            out.append((path, _relative(path, root)))
            continue
        matches = sorted(Path(found) for found in glob.glob(str(path), recursive=True))
        if not matches:
            raise SLOError(f"slo.files {name!r}", None, "matches no file")
        out.extend((match, _relative(match, root)) for match in matches)
    return out


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def slos_of(checks: list[Check], config: Config) -> list[SLO]:
    """Every SLO: the checks' (in collection order), then the files'. ``SLOError`` if one is invalid."""
    from fraiseql_checks.slo.load import check_slo, check_unique, load_files

    slos = [slo for slo in (check_slo(check) for check in checks) if slo is not None]
    slos.extend(load_files(slo_files(config)))
    check_unique(slos)
    return slos


def for_profile(slos: list[SLO], config: Config) -> list[SLO]:
    """The SLOs that apply to the configured target profile (``FRAISEQL_PROFILE``)."""
    from fraiseql_checks.targets.plugin import targets_of

    profile = targets_of(config).profile.name
    return [slo for slo in slos if slo.applies_to(profile)]


def load_slos(config: Config) -> list[SLO]:
    """Collect the checks under the config's paths (as ``generate`` does) and read every SLO.

    ``GenerateError`` if a check file does not collect; ``SLOError`` if an SLO is invalid.
    """
    from fraiseql_checks.generate import collect_checks

    return slos_of(collect_checks(config).checks, config)
