"""The plugin manager: built-in plugins, entry points, ``-p`` and conftest hooks."""

from __future__ import annotations

import importlib
import importlib.machinery
import inspect
import os
import re
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import pluggy

from fraiseql_checks import hookspec
from fraiseql_checks.config import UsageError
from fraiseql_checks.core.fixtures import argnames_of

#: Built-in plugins, by registration name and module; ``-p no:NAME`` disables one.
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("session", "fraiseql_checks.core.session"),
    ("collect", "fraiseql_checks.core.collect"),
    ("suites", "fraiseql_checks.suites"),
    ("selection", "fraiseql_checks.core.selection"),
    ("lastfailed", "fraiseql_checks.core.lastfailed"),
    ("fixtures", "fraiseql_checks.core.fixtures"),
    ("targets", "fraiseql_checks.targets.plugin"),
    ("contract", "fraiseql_checks.targets.contract"),
    ("runner", "fraiseql_checks.core.runner"),
    ("capture", "fraiseql_checks.core.capture"),
    ("leaks", "fraiseql_checks.core.leaks"),
    ("terminal", "fraiseql_checks.reports.terminal"),
    ("junitxml", "fraiseql_checks.reports.junitxml"),
    ("jsonreport", "fraiseql_checks.reports.jsonreport"),
    ("generate", "fraiseql_checks.generate"),
    ("dashboards", "fraiseql_checks.dashboards.plugin"),
    ("grafana", "fraiseql_checks.dashboards.grafana"),
    ("alert-rules", "fraiseql_checks.alerting.rules"),
    ("alertmanager", "fraiseql_checks.alerting.alertmanager"),
    ("kubernetes", "fraiseql_checks.kubernetes.plugin"),
    ("notify", "fraiseql_checks.notify.plugin"),
    ("api", "fraiseql_checks.api.plugin"),
    ("api-checks", "fraiseql_checks.api.checks"),
    ("status", "fraiseql_checks.status.plugin"),
    ("api-silences", "fraiseql_checks.api.silences"),
    ("api-notifications", "fraiseql_checks.api.notifications"),
    ("api-slos", "fraiseql_checks.api.slo"),
    ("api-alerts", "fraiseql_checks.api.alerts"),
    ("api-dashboards", "fraiseql_checks.api.dashboards"),
    ("api-query", "fraiseql_checks.api.query"),
    ("notifier-webhook", "fraiseql_checks.notifiers.webhook"),
    ("notifier-email", "fraiseql_checks.notifiers.email"),
    ("notifier-apprise", "fraiseql_checks.notifiers.apprise"),
    ("notifier-slack", "fraiseql_checks.notifiers.slack"),
    ("notifier-pagerduty", "fraiseql_checks.notifiers.pagerduty"),
    ("audit", "fraiseql_checks.audit.plugin"),
    ("audit-report", "fraiseql_checks.audit.report"),
    ("slo", "fraiseql_checks.slo.plugin"),
    ("slo-export", "fraiseql_checks.slo.export"),
    ("init", "fraiseql_checks.init.plugin"),
    ("watch", "fraiseql_checks.watch.plugin"),
    ("store-sqlite", "fraiseql_checks.stores.sqlite"),
    ("store-postgres", "fraiseql_checks.stores.postgres"),
)
#: Each built-in module's registration name.
_BUILTIN_NAMES = {module: name for name, module in DEFAULT_PLUGINS}
#: Built-in plugins registered by the hooks they implement, each module imported when one
#: of them is first called: their hooks belong to watch mode and to the commands that
#: notify or read a store (the API's endpoints, the notifier types, the stores), none to a
#: run of checks, which then starts sooner. Each hook with its ``hookimpl`` options
#: (``tryfirst``, ``trylast``; no wrappers); a test compares them with the module's.
LAZY_PLUGINS: dict[str, dict[str, dict[str, bool]]] = {
    "api-checks": {"fraiseql_api_endpoints": {}},
    "status": {"fraiseql_api_endpoints": {}, "fraiseql_watch_start": {}, "fraiseql_watch_stop": {}},
    "api-silences": {"fraiseql_api_endpoints": {}, "fraiseql_watch_start": {}, "fraiseql_watch_stop": {}},
    "api-notifications": {"fraiseql_api_endpoints": {}},
    "api-slos": {"fraiseql_api_endpoints": {}},
    "api-alerts": {"fraiseql_api_endpoints": {}},
    "api-dashboards": {"fraiseql_api_endpoints": {}},
    "api-query": {"fraiseql_api_endpoints": {}},
    "notifier-webhook": {"fraiseql_add_notifiers": {}},
    "notifier-email": {"fraiseql_add_notifiers": {}},
    "notifier-apprise": {"fraiseql_add_notifiers": {}},
    "notifier-slack": {"fraiseql_add_notifiers": {}},
    "notifier-pagerduty": {"fraiseql_add_notifiers": {}},
    "store-sqlite": {"fraiseql_make_store": {"trylast": True}},
    "store-postgres": {"fraiseql_make_store": {}},
}
ENTRY_POINT_GROUP = "fraiseql_checks"
DISABLE_AUTOLOAD_ENV = "FRAISEQL_CHECKS_DISABLE_PLUGIN_AUTOLOAD"


class PluginManager(pluggy.PluginManager):
    """Accepts unmarked ``fraiseql_*`` functions of conftest modules as hook implementations."""

    def __init__(self) -> None:
        super().__init__(hookspec.PROJECT)
        self.add_hookspecs(hookspec)
        #: Counts the changes of what is registered: a ``HookCall`` reads its hook's
        #: implementations again only after one.
        self.changes = 0

    def register(self, plugin: object, name: str | None = None) -> str | None:
        try:
            return super().register(plugin, name)
        finally:
            self.changes += 1

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any | None:
        try:
            return super().unregister(plugin, name)
        finally:
            self.changes += 1

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> pluggy.HookimplOpts | None:
        if not name.startswith("fraiseql_") and _is_ours(plugin):
            # our own hooks all carry their hook's name, never a specname (a test keeps it so):
            # the other names of a built-in module or of an object of ours (~2,500 at every
            # start, each looked up statically: ~5 ms) cannot be one
            return None
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("fraiseql_") and inspect.ismodule(plugin):
            method = getattr(plugin, name, None)
            if inspect.isroutine(method):
                return {
                    "wrapper": False,
                    "hookwrapper": False,
                    "optionalhook": False,
                    "tryfirst": False,
                    "trylast": False,
                    "specname": None,
                }
        return opts


def _is_ours(plugin: Any) -> bool:
    """A built-in plugin module, or an object of one of our classes (a lazy plugin, the
    terminal reporter...), whose hook implementations are all named after their hook."""
    if type(plugin) is ModuleType:
        return plugin.__name__ in _BUILTIN_NAMES
    return type(plugin).__module__.startswith("fraiseql_checks.")


class LazyPlugin:
    """A built-in plugin registered by the names of its hooks; its module is imported when
    one of them is first called, or when anything else of it is asked for.

    Each hook is a forwarding function that pluggy takes for the implementation: it reads
    the arguments from the hook's spec (``__wrapped__``), so every call passes all of the
    spec's, and the forwarder calls the module's function with those it takes.
    """

    def __init__(self, module: str, hooks: Mapping[str, Mapping[str, bool]]) -> None:
        self._name = module
        self._module: ModuleType | None = None
        for hook, options in hooks.items():
            setattr(self, hook, self._forwarder(hook, options))

    def _import(self) -> ModuleType:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return self._module

    def _forwarder(self, hook: str, options: Mapping[str, bool]) -> Any:
        unknown = set(options) - {"tryfirst", "trylast"}
        if unknown:
            raise ValueError(f"{self._name}.{hook}: a lazy plugin's hook takes no {', '.join(sorted(unknown))}")
        spec = getattr(hookspec, hook)
        given = argnames_of(spec)
        #: The module's function and its arguments, once imported.
        resolved: list[tuple[Any, tuple[str, ...]]] = []

        def forward(*args: Any, **kwargs: Any) -> Any:
            if not resolved:
                function = getattr(self._import(), hook)
                resolved[:] = [(function, argnames_of(function))]
            function, names = resolved[0]
            # pluggy passes the spec's arguments in order (all or none); a few callers pass them by name
            kwargs.update(zip(given, args, strict=False))
            return function(*[kwargs[name] for name in names])

        forward.__wrapped__ = spec  # type: ignore[attr-defined]
        forward.__name__ = forward.__qualname__ = hook
        mark = hookspec.hookimpl(tryfirst=options.get("tryfirst", False), trylast=options.get("trylast", False))
        return mark(forward)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_name", "_module"):  # pluggy and copy ask for dunders:
            raise AttributeError(name)  # not a reason to import (nor, for its own names, to recurse)
        return getattr(self._import(), name)

    def __repr__(self) -> str:
        return f"<lazy plugin {self._name}{'' if self._module is None else ' (imported)'}>"


class HookCall:
    """One hook's implementations called as pluggy calls them, without pluggy's own cost
    (~1.8 µs a call: the watcher calls ``fraiseql_report_result`` once a run).

    While none of them wraps the others, each is called in pluggy's order (the last
    registered first, ``tryfirst`` before, ``trylast`` after) with the arguments it
    takes (pluggy let it take only the spec's, and the caller gives them all); the first
    exception stops the call and propagates, and return values are dropped. With a
    wrapper among them the call goes through pluggy. The implementations are read again
    whenever their list changed (a plugin registered or unregistered): with our
    ``PluginManager`` given as ``plugins``, only after it counted a change; else at
    every call (a copy of the list, compared). Pluggy's call monitoring
    (``add_hookcall_monitoring``) does not see the direct calls."""

    __slots__ = ("_caller", "_calls", "_impls", "_plugins", "_seen")

    def __init__(self, caller: pluggy.HookCaller, plugins: pluggy.PluginManager | None = None) -> None:
        self._caller = caller
        self._plugins = plugins if isinstance(plugins, PluginManager) else None
        self._seen = -1  # the plugins' count of changes when the implementations were read
        self._impls: list[pluggy.HookImpl] | None = None
        #: Each implementation's function, the name of its one argument (``None`` if it takes
        #: none or several) and the names of its arguments; ``None``: through pluggy.
        self._calls: list[tuple[Any, str | None, tuple[str, ...]]] | None = None

    def __call__(self, **kwargs: Any) -> None:
        calls = self._current()
        if calls is None:
            self._caller(**kwargs)
            return
        for function, single, names in calls:
            if single is not None:  # most take one argument: no list built per call (~0.4 µs each)
                function(kwargs[single])
            else:
                function(*[kwargs[name] for name in names])

    def __bool__(self) -> bool:
        """Whether the hook has implementations (a call for no one still costs its arguments)."""
        calls = self._current()
        return calls is None or bool(calls)

    def _current(self) -> list[tuple[Any, str | None, tuple[str, ...]]] | None:
        """The direct calls (``None``: through pluggy), read again if the plugins changed."""
        plugins = self._plugins
        if plugins is None or plugins.changes != self._seen:
            if plugins is not None:
                self._seen = plugins.changes
            impls = self._caller.get_hookimpls()
            if impls != self._impls:
                self._impls = impls
                direct = not any(impl.wrapper or impl.hookwrapper for impl in impls)
                self._calls = [_direct_call(impl) for impl in reversed(impls)] if direct else None
        return self._calls


def _direct_call(impl: pluggy.HookImpl) -> tuple[Any, str | None, tuple[str, ...]]:
    names = tuple(impl.argnames)
    return impl.function, names[0] if len(names) == 1 else None, names


def preparse_plugins(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The ``-p`` values of a command line, split into (to load, to block)."""
    load, block = [], []
    items = list(args)
    for index, arg in enumerate(items):
        value = None
        if arg == "-p" and index + 1 < len(items):
            value = items[index + 1]
        elif arg.startswith("-p") and arg != "-p" and not arg.startswith("--"):
            value = arg[2:].lstrip("=")
        if value is None:
            continue
        if value.startswith("no:"):
            block.append(value[3:])
        else:
            load.append(value)
    return load, block


def create_pluginmanager(
    args: Sequence[str] = (),
    extra: Sequence[str] = (),
    autoload: bool | None = None,
) -> PluginManager:
    """A plugin manager with the built-ins, entry points and ``-p`` plugins registered."""
    pm = PluginManager()
    load, block = preparse_plugins(args)
    for name in block:
        pm.set_blocked(name)
    for name, module in DEFAULT_PLUGINS:
        if not pm.is_blocked(name):
            hooks = LAZY_PLUGINS.get(name)
            pm.register(LazyPlugin(module, hooks) if hooks else importlib.import_module(module), name=name)
    if autoload is None:
        autoload = not os.environ.get(DISABLE_AUTOLOAD_ENV)
    if autoload and may_declare(ENTRY_POINT_GROUP):
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for name in [*extra, *load]:
        import_plugin(pm, name)
    return pm


def may_declare(group: str) -> bool:
    """Whether an installed distribution may declare entry points of ``group``.

    pluggy finds them with ``importlib.metadata``, whose import alone costs ~30 ms (it
    brings the email package), at every start, and most installations declare none.
    This looks the way ``importlib.metadata`` does, for the common layout only: the
    ``entry_points.txt`` of each ``*.dist-info`` / ``*.egg-info`` folder on ``sys.path``,
    and answers True when one has a section of that name, or when it cannot be sure
    (an egg, a zip or an unreadable folder on ``sys.path``, a finder of distributions of
    its own).
    """
    header = re.compile(rf"^\s*\[\s*{re.escape(group)}\s*\]", re.MULTILINE)
    finders = [finder for finder in sys.meta_path if hasattr(finder, "find_distributions")]
    if any(finder is not importlib.machinery.PathFinder for finder in finders):
        return True
    for entry in sys.path:
        folder = entry or "."
        if entry.lower().endswith(".egg"):  # an egg (a zip, or unpacked with EGG-INFO/): not looked into
            return True
        try:
            with os.scandir(folder) as found:
                # importlib.metadata compares names in lower case
                infos = [item.path for item in found if item.name.lower().endswith((".dist-info", ".egg-info"))]
        except FileNotFoundError:
            continue
        except OSError:  # a zip, a folder we may not read
            return True
        for info in infos:
            try:
                with open(os.path.join(info, "entry_points.txt"), encoding="utf-8", errors="replace") as file:
                    if header.search(file.read()):
                        return True
            except (FileNotFoundError, NotADirectoryError):  # no entry points; an egg-info file
                continue
            except OSError:
                return True
    return False


def import_plugin(pm: pluggy.PluginManager, name: str) -> None:
    """Register the plugin ``name``: an entry point of our group, or an importable module."""
    if pm.is_blocked(name) or pm.get_plugin(name) is not None:
        return
    builtin = _BUILTIN_NAMES.get(name)
    if builtin is not None and pm.get_plugin(builtin) is not None:  # a built-in, registered (maybe lazily)
        return
    if pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name):
        return
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise UsageError(f"cannot load plugin {name!r}: {exc}") from None
    pm.register(module, name=name)
