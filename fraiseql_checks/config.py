"""Configuration: command-line options, the config file, the environment.

Plugins declare their command-line options and their config-file settings in the
``fraiseql_addoption`` hook, so every key is typed and validated in one place: an
unknown key, a wrong type or a malformed file is one line naming the file, the key
and what was expected. Precedence: command line, then environment, then the file,
then the default.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraiseql_checks.durations import parse_duration, positive_duration
from fraiseql_checks.masking import Masker, mask_urls
from fraiseql_checks.stash import Stash
from fraiseql_checks.thresholds import Threshold

if TYPE_CHECKING:
    import pluggy

    from fraiseql_checks import hookspec

YAML_NAME = "fraiseql-checks.yaml"
TOOL_TABLE = "fraiseql-checks"


class UsageError(Exception):
    """Bad command line or configuration: exit code 4, one line, no traceback."""


# ---- value types: each turns a raw value into a typed one or raises ValueError --------


def as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__} {value!r}")
    return value


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.lower() in ("1", "true", "yes", "on")
    raise ValueError(f"expected true or false, got {value!r}")


def as_positive_int(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {value!r}")
    return value


def as_duration(value: Any) -> float:
    """A duration longer than zero (finite, at most ``durations.MAX_DAYS`` days): intervals, timeouts."""
    return positive_duration(value)


def as_duration_or_zero(value: Any) -> float:
    """``as_duration``, where zero means "none": ``start_jitter: 0`` is no jitter."""
    return parse_duration(value)


def as_str_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part for part in (p.strip() for p in value.split(",")) if part]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"expected a list of strings, got {value!r}")
    return list(value)


def as_number_map(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a table of names to numbers, got {value!r}")
    out = {}
    for key, number in value.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ValueError(f"expected a number for {key!r}, got {number!r}")
        out[str(key)] = float(number)
    return out


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    check.__name__ = f"one_of({', '.join(choices)})"
    return check


@dataclasses.dataclass(frozen=True)
class Setting:
    """One config-file key: its type, default, environment variable and help."""

    name: str
    type: Callable[[Any], Any]
    default: Any = None
    help: str = ""
    env: str | None = None
    #: The ``dest`` of a command-line option that overrides this setting.
    option: str | None = None
    #: Secrets are masked wherever the tool writes.
    secret: bool = False
    #: The default in watch mode (``--watch``, its workers included), where it differs.
    watch_default: Any = None


class Section:
    """The type of a nested table (``section``): parses it, and tells which settings it holds."""

    __name__ = "section"

    def __init__(self, settings: Sequence[Setting], moved: Mapping[str, str] | None = None) -> None:
        self.settings = tuple(settings)
        self._by_name = {s.name: s for s in self.settings}
        #: Keys that left this table, and where they live now.
        self.moved = dict(moved or {})

    def __call__(self, value: Any) -> dict[str, Any]:
        """The table's values, typed; keys it does not give have their settings' defaults
        (a default of ``None`` means "not set", and the key is left out)."""
        if not isinstance(value, Mapping):
            raise ValueError(f"expected a table, got {value!r}")
        out = {s.name: s.default for s in self.settings if s.default is not None}
        for key, raw in value.items():
            setting = self._by_name.get(key)
            if setting is None and key in self.moved:
                raise ValueError(f"{key!r} has moved to {self.moved[key]}")
            if setting is None:
                raise ValueError(f"unknown key {key!r}{did_you_mean(key, self._by_name)}")
            try:
                out[key] = setting.type(raw)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return out


def section(settings: Sequence[Setting], moved: Mapping[str, str] | None = None) -> Section:
    """A type for a nested table whose keys are themselves typed settings; ``moved`` names
    keys that now live elsewhere (``{"runbook_url": "notify.runbook_base_url"}``), so an
    old config gets told where, not "unknown key"."""
    return Section(settings, moved)


def resolve_section(config: Config, name: str, settings: Sequence[Setting] = ()) -> dict[str, Any]:
    """A nested table's values (``section``): the file's, the environment's on top, the
    settings' defaults where neither gives one. (The config resolves them all when it
    is made; this is a copy for the caller to change.)"""
    return dict(config.get(name))


_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_environment(value: Any, environ: Mapping[str, str], where: str = "") -> Any:
    """``value`` (a config file's table) with every ``${NAME}`` in its strings replaced by
    the environment variable (``${NAME:-default}`` when it may be unset; ``$$`` is a
    ``$``). ``ValueError`` naming the key when a variable is not set."""
    if isinstance(value, str):
        if "$" not in value:
            return value

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name is None:
                return "$"
            found = environ.get(name)
            if found is None:
                if default is None:
                    raise ValueError(f"{where or 'a value'}: environment variable {name} is not set")
                return default
            return found

        return _REFERENCE.sub(replace, value)
    if isinstance(value, Mapping):
        return {
            key: expand_environment(item, environ, f"{where}.{key}" if where else str(key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [expand_environment(item, environ, f"{where}[{index}]") for index, item in enumerate(value)]
    return value


def environment_references(value: Any) -> dict[str, bool]:
    """The environment variables ``value``'s strings name as ``${NAME}`` (see
    ``expand_environment``), each with whether it must be set (named somewhere
    without a ``:-default``): what a deployment must provide to this config."""
    found: dict[str, bool] = {}
    if isinstance(value, str):
        for match in _REFERENCE.finditer(value):
            if match.group(1) is not None:
                found[match.group(1)] = found.get(match.group(1), False) or match.group(2) is None
    elif isinstance(value, Mapping) or isinstance(value, list):
        for item in value.values() if isinstance(value, Mapping) else value:
            for name, required in environment_references(item).items():
                found[name] = found.get(name, False) or required
    return found


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, else the list of known names."""
    import difflib  # (on a mistake only: not at every start)

    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (expected one of: {', '.join(known)})"


class _ArgumentParser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # pytest takes no abbreviations: ``--co`` is an option of its own, and a prefix
        # like ``--watc`` must not start watch mode. Sub-parsers (``add_subparsers``)
        # are of this class too, so none of them abbreviates either.
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:  # argparse would exit 2; a usage error is 4
        raise UsageError(message)


class Parser:
    """What plugins extend in ``fraiseql_addoption``: options and settings."""

    def __init__(self, command: str | None = None, epilog: str | None = None) -> None:
        self.command = command
        self.argparser = _ArgumentParser(
            prog=f"fraiseql-check {command}" if command else "fraiseql-check",
            description="Run FraiseQL health checks, alert conditions and audit assertions written like tests.",
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        self._groups: dict[str, argparse._ArgumentGroup] = {}
        self.settings: dict[str, Setting] = {}
        self.thresholds: dict[str, Threshold] = {}

    def group(self, name: str) -> argparse._ArgumentGroup:
        group = self._groups.get(name)
        if group is None:
            group = self._groups[name] = self.argparser.add_argument_group(name)
        return group

    def addoption(self, *names: str, group: str = "general", **kwargs: Any) -> None:
        """An option of ``fraiseql-check`` (and of its subcommands, unless it is positional)."""
        if self.command is not None and not names[0].startswith("-"):
            return  # a subcommand has positional arguments of its own
        self.group(group).add_argument(*names, **kwargs)

    def addsetting(self, setting: Setting) -> None:
        if setting.name in self.settings:
            raise ValueError(f"setting {setting.name!r} is declared twice")
        self.settings[setting.name] = setting

    def addthreshold(self, threshold: Threshold) -> None:
        """A threshold checks judge by, overridable in the config's ``thresholds``."""
        if threshold.name in self.thresholds:
            raise ValueError(f"threshold {threshold.name!r} is declared twice")
        self.thresholds[threshold.name] = threshold


def find_config_file(start: Path) -> Path | None:
    """The nearest ``fraiseql-checks.yaml``, or ``pyproject.toml`` with our table, upward from ``start``."""
    for directory in (start, *start.parents):
        candidate = directory / YAML_NAME
        if candidate.is_file():
            return candidate
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            import tomllib  # only where there is a pyproject.toml to read

            try:
                data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
                return pyproject  # reported properly when it is read
            tools = data.get("tool", {})
            if TOOL_TABLE in tools:
                return pyproject
            if isinstance(tools, Mapping):
                _refuse_misspelt_table(pyproject, tools)
    return None


def _refuse_misspelt_table(pyproject: Path, tools: Mapping[str, Any]) -> None:
    """A ``[tool.fraiseql_checks]`` (or another near miss) would be silently ignored: say so."""
    import difflib

    for name in tools:
        spelt = str(name).lower().replace("_", "-").replace(".", "-")
        if spelt == TOOL_TABLE or difflib.SequenceMatcher(None, spelt, TOOL_TABLE).ratio() >= 0.85:
            raise UsageError(f"{pyproject}: [tool.{name}] is not read: did you mean [tool.{TOOL_TABLE}]?")


def locate_config_file(option: argparse.Namespace, invocation_dir: Path) -> Path | None:
    """``-c FILE`` if given, else the nearest config file above the paths to collect."""
    explicit: str | None = getattr(option, "configfile", None)
    if explicit:
        config_file = (invocation_dir / explicit).resolve()
        if not config_file.is_file():
            raise UsageError(f"config file not found: {explicit}")
        return config_file
    start = invocation_dir
    paths = [p.split("::", 1)[0] for p in getattr(option, "paths", None) or []]
    existing = [(invocation_dir / p).resolve() for p in paths if (invocation_dir / p).exists()]
    if existing:
        start = Path(os.path.commonpath([p if p.is_dir() else p.parent for p in existing]))
    return find_config_file(start)


def read_config_file(path: Path) -> dict[str, Any]:
    """The raw table of settings in ``path``; ``UsageError`` if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the config file: {exc}") from None
    if path.suffix == ".toml":
        import tomllib

        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: invalid TOML: {exc}") from None
        table = data.get("tool", {}).get(TOOL_TABLE, {})
        if not isinstance(table, dict):
            raise UsageError(f"{path}: [tool.{TOOL_TABLE}] must be a table")
        return table
    import yaml  # only YAML configs pay for its import

    from fraiseql_checks import yamlfile

    try:
        data = yamlfile.load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: invalid YAML{yamlfile.problem(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}")
    return data


class Config:
    """The resolved configuration of one invocation, and the plugin manager."""

    def __init__(
        self,
        pluginmanager: pluggy.PluginManager,
        parser: Parser,
        option: argparse.Namespace,
        *,
        invocation_dir: Path,
        config_file: Path | None,
        file_values: Mapping[str, Any],
        environ: Mapping[str, str],
        mask: Masker | None = None,
    ) -> None:
        self.pluginmanager = pluginmanager
        self.hook: hookspec.HookRelay = pluginmanager.hook
        self.parser = parser
        self.option = option
        self.invocation_dir = invocation_dir
        self.config_file = config_file
        self.rootdir = config_file.parent if config_file else invocation_dir
        self.environ = environ
        #: Hides secrets in what the tool writes: every secret setting's value (all of
        #: them, whichever command runs) and every URL's password.
        self.mask = mask if mask is not None else Masker()
        #: The config file's table as written (``${NAME}`` not yet replaced): what a
        #: re-read compares with, and what watch mode's workers are configured from.
        self.file_values: dict[str, Any] = dict(file_values)
        #: Per-run state plugins keep on the config, under their own ``StashKey``.
        self.stash = Stash()
        self._values: dict[str, Any] = {}
        try:
            file_values = expand_environment(file_values, self.environ)
        except ValueError as exc:
            raise UsageError(f"{self._where()}{exc}") from None
        self._mask_secrets(parser.settings.values(), file_values)
        try:
            self._resolve(file_values)
        except UsageError as exc:
            raise UsageError(self.mask(str(exc))) from None

    @classmethod
    def load(
        cls,
        pluginmanager: pluggy.PluginManager,
        parser: Parser,
        option: argparse.Namespace,
        environ: Mapping[str, str] | None = None,
        invocation_dir: Path | None = None,
        file_values: Mapping[str, Any] | None = None,
    ) -> Config:
        """Find and validate the config file for this invocation; ``UsageError`` on any problem.
        ``file_values``: the file's table as already read (a watch worker is given the watcher's)."""
        invocation_dir = invocation_dir or Path.cwd()
        config_file = locate_config_file(option, invocation_dir)
        if file_values is None:
            file_values = read_config_file(config_file) if config_file else {}
        return cls(
            pluginmanager,
            parser,
            option,
            invocation_dir=invocation_dir,
            config_file=config_file,
            file_values=file_values,
            environ=dict(os.environ if environ is None else environ),
        )

    def reread(self, file_values: Mapping[str, Any] | None = None) -> Config:
        """This invocation's configuration made again from its config file as it is now (or
        from ``file_values``, such a file's table): the same command line, environment and
        plugins; the same mask, which the new file's secrets join. ``UsageError`` when the
        file cannot be read or does not validate; this config is left as it was."""
        if file_values is None:
            file_values = read_config_file(self.config_file) if self.config_file else {}
        return Config(
            self.pluginmanager,
            self.parser,
            self.option,
            invocation_dir=self.invocation_dir,
            config_file=self.config_file,
            file_values=file_values,
            environ=self.environ,
            mask=self.mask,
        )

    def take(self, other: Config, names: Iterable[str] | None = None) -> None:
        """Take these settings' values (default: all) from ``other``, a ``reread`` of this one,
        and their keys in ``file_values``; the others keep theirs."""
        for name in self.parser.settings if names is None else names:
            self._values[name] = other._values[name]
            if name in other.file_values:
                self.file_values[name] = other.file_values[name]
            else:
                self.file_values.pop(name, None)

    def _where(self) -> str:
        """How error messages name the config: ``pyproject.toml: [tool.fraiseql-checks] ``."""
        if self.config_file is None:
            return "config: "
        if self.config_file.suffix == ".toml":
            return f"{self.config_file.name}: [tool.{TOOL_TABLE}] "
        return f"{self.config_file.name}: "

    def _mask_secrets(self, settings: Iterable[Setting], file_values: Mapping[str, Any]) -> None:
        """Add to the mask what every setting, nested ones included, may hold as a secret: the
        value of a secret setting in the file, its environment variable and its option, and
        the password of any URL a setting holds. Raw values: a malformed one is still a secret.

        A setting that names a file (``*_file``) holds a path that another program reads,
        not this tool: the file is not read here either.
        """
        for setting in settings:
            if isinstance(setting.type, Section):  # its own variables count even when the file has no such table
                table = file_values.get(setting.name)
                self._mask_secrets(setting.type.settings, table if isinstance(table, Mapping) else {})
                continue
            raws = [file_values.get(setting.name)]
            if setting.env:
                raws.append(self.environ.get(setting.env))
            if setting.option:
                raws.append(getattr(self.option, setting.option, None))
            for raw in raws:
                if isinstance(setting.type, Section) and isinstance(raw, Mapping):
                    self._mask_secrets(setting.type.settings, raw)
                    continue
                for text in _texts(raw):
                    if setting.secret:
                        self.mask.add(text)
                    else:
                        self.mask.add_url(text)

    def _resolve(self, file_values: Mapping[str, Any]) -> None:
        settings = self.parser.settings
        for key in file_values:
            if key not in settings:
                raise UsageError(f"{self._where()}unknown key {key!r}{did_you_mean(key, settings)}")
        watching = self.watching
        for name, setting in settings.items():
            value = setting.watch_default if watching and setting.watch_default is not None else setting.default
            if name in file_values or isinstance(setting.type, Section):
                try:  # a section is read even when absent: its settings have defaults and variables
                    value = setting.type(
                        file_values.get(name, {}) if isinstance(setting.type, Section) else file_values[name]
                    )
                except ValueError as exc:
                    raise UsageError(f"{self._where()}{name}: {exc}") from None
                if isinstance(setting.type, Section):
                    value = self._section_environment(setting.type, value)
            if setting.env and self.environ.get(setting.env):
                try:
                    value = setting.type(self.environ[setting.env])
                except ValueError as exc:
                    raise UsageError(f"environment variable {setting.env}: {exc}") from None
            if setting.option is not None:
                given = getattr(self.option, setting.option, None)
                if given is not None:
                    try:
                        value = setting.type(given)
                    except ValueError as exc:
                        raise UsageError(f"--{setting.option.replace('_', '-')}: {exc}") from None
            self._values[name] = value
            if setting.secret and isinstance(value, str):
                self.mask.add(value)
        declared = self.parser.thresholds
        for key in self._values.get("thresholds", {}):
            if declared and key not in declared:
                raise UsageError(f"{self._where()}thresholds: unknown threshold {key!r}{did_you_mean(key, declared)}")

    def _section_environment(self, section: Section, values: dict[str, Any]) -> dict[str, Any]:
        """A section's values with its settings' environment variables on top."""
        for setting in section.settings:
            raw = self.environ.get(setting.env) if setting.env else None
            if raw:
                try:
                    values[setting.name] = setting.type(raw)
                except ValueError as exc:
                    raise UsageError(f"environment variable {setting.env}: {exc}") from None
        return values

    @property
    def watching(self) -> bool:
        """This is watch mode: the watcher (``--watch``) or one of its workers."""
        return bool(getattr(self.option, "watch", False) or getattr(self.option, "watch_worker", False))

    def get(self, name: str) -> Any:
        """The resolved value of a setting."""
        try:
            return self._values[name]
        except KeyError:
            raise KeyError(f"no setting {name!r} is declared") from None

    def getoption(self, name: str, default: Any = None) -> Any:
        return getattr(self.option, name, default)

    def threshold(self, name: str, default: float | None = None) -> float:
        """A threshold checks judge by: the config's ``thresholds`` value, else its declared
        default (``fraiseql_checks.thresholds``); ``default`` only for one declared nowhere."""
        value = self._values.get("thresholds", {}).get(name)
        if value is not None:
            return float(value)
        declared = self.parser.thresholds.get(name)
        if declared is not None:
            return float(declared.default)
        if default is None:
            raise KeyError(f"no threshold {name!r} is declared{did_you_mean(name, self.parser.thresholds)}")
        return float(default)

    @property
    def verbosity(self) -> int:
        return int(getattr(self.option, "verbose", 0)) - int(getattr(self.option, "quiet", 0))

    def relpath(self, path: Path) -> str:
        """A path as node ids write it: relative to the root directory, with ``/``; a
        shipped suite's file as ``suites/<suite>/<file>`` (``fraiseql_checks.suites``)."""
        try:
            return path.relative_to(self.rootdir).as_posix()
        except ValueError:
            from fraiseql_checks.suites import node_path

            return node_path(path) or path.as_posix()


def _texts(value: Any) -> Iterator[str]:
    """The strings in a raw setting value (a number may be a secret too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)


def write_error(message: str, mask: Callable[[str], str] = mask_urls) -> None:
    """One line on stderr: ``ERROR: <message>``, masked with ``mask`` (give ``config.mask``
    when there is a config); URL passwords are masked even before a config exists."""
    sys.stderr.write(f"ERROR: {mask(message)}\n")
