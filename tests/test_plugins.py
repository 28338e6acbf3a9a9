"""Plugins: -p, -p no:NAME, the entry-point group, conftest hooks."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import zipfile
from pathlib import Path

import pytest

import fraiseql_checks
from fraiseql_checks import hookspec
from fraiseql_checks._plugins import (
    DEFAULT_PLUGINS,
    ENTRY_POINT_GROUP,
    LAZY_PLUGINS,
    LazyPlugin,
    PluginManager,
    may_declare,
)
from fraiseql_checks.core.fixtures import FIXTURE_ATTR
from tests.support.checkdir import CheckDir

PLUGIN = """
from fraiseql_checks import hookimpl

@hookimpl
def fraiseql_result(result, check):
    result.extra["plugin"] = "{name}"

@hookimpl
def fraiseql_report_header(config):
    return "plugin {name} loaded"
"""


def test_p_loads_a_plugin_module(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_a.py", "def check_a(): pass")
    checkdir.write("myplugin.py", PLUGIN.format(name="by-p"))
    result, report = checkdir.run_json("-p", "myplugin", env={"PYTHONPATH": str(checkdir.path)})
    assert report["results"][0]["plugin"] == "by-p"
    result.fnmatch_lines(["plugin by-p loaded"])


def test_config_plugins_are_loaded(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_a.py", "def check_a(): pass")
    checkdir.write("cfgplugin.py", PLUGIN.format(name="by-config"))
    checkdir.write("fraiseql-checks.yaml", "plugins: [cfgplugin]\n")
    _, report = checkdir.run_json(env={"PYTHONPATH": str(checkdir.path)})
    assert report["results"][0]["plugin"] == "by-config"


def test_entry_point_plugins_load_and_can_be_disabled(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_a.py", "def check_a(): pass")
    site = checkdir.path / "site"
    (site / "epplugin.py").parent.mkdir(parents=True)
    (site / "epplugin.py").write_text(PLUGIN.format(name="by-entry-point"))
    info = site / "epplugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: epplugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[fraiseql_checks]\nmyep = epplugin\n")
    env = {"PYTHONPATH": str(site)}
    _, report = checkdir.run_json(env=env)
    assert report["results"][0]["plugin"] == "by-entry-point"
    _, report = checkdir.run_json("-p", "no:myep", env=env)
    assert "plugin" not in report["results"][0]
    _, report = checkdir.run_json(env={**env, "FRAISEQL_CHECKS_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "plugin" not in report["results"][0]


def _distribution(site: Path, name: str, entry_points: str, suffix: str = ".dist-info") -> None:
    info = site / f"{name}-1.0{suffix}"
    info.mkdir(parents=True)
    (info / "entry_points.txt").write_text(entry_points)


def test_the_quick_look_for_entry_points_finds_the_group_only_where_it_is_declared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a distribution declaring our group, importlib.metadata is not needed; with
    one (dist-info or egg-info), or where the look cannot be sure, pluggy's loader runs."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "broken.egg-info").write_text("an egg-info file, not a folder\n")
    # Our own package names an entry point "fraiseql_checks" in another group: not ours.
    _distribution(site, "other", f"[pytest11]\n{ENTRY_POINT_GROUP} = other.plugin\n")
    monkeypatch.setattr(sys, "path", [str(site), str(tmp_path / "missing")])
    assert may_declare(ENTRY_POINT_GROUP) is False
    _distribution(site, "legacy", f"[console_scripts]\nx = y\n\n [ {ENTRY_POINT_GROUP} ]\nep = legacy\n", ".egg-info")
    assert may_declare(ENTRY_POINT_GROUP) is True

    upper = tmp_path / "upper"
    _distribution(upper, "Shouting", f"[{ENTRY_POINT_GROUP}]\nep = shouting\n", ".DIST-INFO")
    monkeypatch.setattr(sys, "path", [str(upper)])
    assert may_declare(ENTRY_POINT_GROUP) is True  # importlib.metadata ignores the case

    egg = tmp_path / "unpacked-1.0.egg"
    (egg / "EGG-INFO").mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [str(egg)])
    assert may_declare(ENTRY_POINT_GROUP) is True  # an egg: not looked into, so not sure

    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped-1.0.dist-info/entry_points.txt", f"[{ENTRY_POINT_GROUP}]\nz = zipped\n")
    monkeypatch.setattr(sys, "path", [str(archive)])
    assert may_declare(ENTRY_POINT_GROUP) is True  # a zip: not looked into, so not sure


def test_builtin_plugins_can_be_disabled(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_a.py", "def check_a(): pass")
    result = checkdir.run("-p", "no:terminal")
    assert result.ret == 0
    assert result.stdout == ""
    report = checkdir.path / "r.json"
    checkdir.run("-p", "no:jsonreport", "--report-json", str(report))
    assert not report.exists() or report.read_text() == ""


def test_an_unknown_hook_in_a_conftest_is_a_collection_error(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_a.py", "def check_a(): pass")
    checkdir.write("checks/conftest.py", "def fraiseql_no_such_hook(): pass")
    result, report = checkdir.run_json()
    assert result.ret == 2
    assert "fraiseql_no_such_hook" in report["results"][0]["message"]


def test_plugins_can_add_commands_and_generators(checkdir: CheckDir) -> None:
    checkdir.write(
        "genplugin.py",
        """
        from fraiseql_checks import hookimpl
        from fraiseql_checks.generate import Generator

        @hookimpl
        def fraiseql_add_generators(generators):
            generators.add(Generator("greeting", "a test file", lambda config: {"out/hello.txt": "hello\\n"}))
        """,
    )
    env = {"PYTHONPATH": str(checkdir.path)}
    result = checkdir.run("-p", "genplugin", "generate", "greeting", env=env)
    assert result.ret == 4  # -p must come after the command name
    result = checkdir.run("generate", "greeting", "-p", "genplugin", env=env)
    assert result.ret == 0, result.stderr
    assert (checkdir.path / "out/hello.txt").read_text() == "hello\n"
    assert checkdir.run("generate", "greeting", "--check", "-p", "genplugin", env=env).ret == 0
    (checkdir.path / "out/hello.txt").write_text("edited by hand\n")
    stale = checkdir.run("generate", "greeting", "--check", "-p", "genplugin", env=env)
    assert stale.ret == 1
    stale.fnmatch_lines(["out/hello.txt: differs from what the generator makes"])
    unknown = checkdir.run("generate", "nothing", "-p", "genplugin", env=env)
    assert unknown.ret == 4
    unknown.stderr_lines(["ERROR: nothing generates 'nothing' (available: *greeting*)"])  # and the built-in ones


def test_every_hook_implementation_of_ours_is_named_after_its_hook() -> None:
    """Registration passes over the names that do not start with ``fraiseql_`` of a
    built-in module and of an object of one of our classes (``parse_hookimpl_opts``): a
    marked function or method named otherwise, or one that names its hook with
    ``specname``, would be silently lost. Every module of the package is looked at, with
    the methods of every class it defines."""
    marker = f"{hookspec.PROJECT}_impl"
    seen = 0
    for found in pkgutil.walk_packages(fraiseql_checks.__path__, "fraiseql_checks."):
        if found.name.endswith("__main__"):
            continue
        module = importlib.import_module(found.name)
        places = [(found.name, vars(module))] + [
            (f"{found.name}.{value.__name__}", vars(value))
            for value in vars(module).values()
            if isinstance(value, type) and value.__module__ == found.name
        ]
        for where, namespace in places:
            for name, value in namespace.items():
                function = value.__func__ if isinstance(value, staticmethod | classmethod) else value
                opts = getattr(function, marker, None) if callable(function) else None
                if opts is not None:
                    seen += 1
                    assert name.startswith("fraiseql_"), f"{where}.{name}"
                    assert not opts.get("specname"), f"{where}.{name}"
    assert seen > 100  # the walk found the hooks (of modules and classes alike)


def test_a_plugin_of_ours_and_a_plugin_of_a_user_both_register_their_hooks() -> None:
    """The names passed over are only ours: a user's plugin object may still name its
    hook with ``specname``, and a method of one of our objects is registered."""
    from fraiseql_checks import hookimpl
    from fraiseql_checks._plugins import PluginManager
    from fraiseql_checks.core.leaks import ThreadLeaks

    class Users:
        @hookimpl(specname="fraiseql_sessionfinish")
        def at_the_end(self, session: object) -> None: ...

    pm = PluginManager()
    users, ours = Users(), ThreadLeaks()
    pm.register(users)
    pm.register(ours)
    plugins = [impl.plugin for impl in pm.hook.fraiseql_sessionfinish.get_hookimpls()]
    assert users in plugins and ours in plugins


@pytest.mark.parametrize("counted", [True, False], ids=["changes-counted", "list-compared"])
def test_a_direct_hook_call_calls_what_pluggy_calls_in_its_order(counted: bool) -> None:
    """``HookCall`` against pluggy's own call, on the same plugin manager: the same
    implementations in the same order (tryfirst, trylast, registration order), plugins
    registered and unregistered between calls, and a wrapper (pluggy's path) included;
    told of the changes by our plugin manager's count, or comparing the list each call."""
    from fraiseql_checks import hookimpl
    from fraiseql_checks._plugins import HookCall, PluginManager
    from fraiseql_checks.result import Outcome, Result

    calls: list[str] = []

    def plugin(name: str, **opts: bool) -> object:
        class Plugin:
            @hookimpl(**opts)
            def fraiseql_report_result(self, result: Result) -> None:
                calls.append(f"{name}:{result.id}")

        return Plugin()

    class NoArgs:  # pluggy lets an implementation take fewer arguments than the spec
        @hookimpl
        def fraiseql_report_result(self) -> None:
            calls.append("noargs")

    class Wrapper:
        @hookimpl(wrapper=True)
        def fraiseql_report_result(self, result: Result) -> object:
            calls.append("wrapper before")
            yield
            calls.append("wrapper after")

    pm = PluginManager()
    direct = HookCall(pm.hook.fraiseql_report_result, pm if counted else None)
    result = Result(id="c", name="c", outcome=Outcome.PASSED)
    through_pluggy: list[str] = []  # the calls pluggy made (its monitoring sees each one)
    pm.add_hookcall_monitoring(lambda name, impls, kwargs: through_pluggy.append(name), lambda *args: None)

    def both() -> tuple[list[str], list[str]]:
        calls.clear()
        pm.hook.fraiseql_report_result(result=result)
        by_pluggy = calls.copy()
        calls.clear()
        through_pluggy.clear()
        direct(result=result)
        return by_pluggy, calls.copy()

    pm.register(plugin("a"), "a")
    pm.register(plugin("last", trylast=True), "last")
    pm.register(plugin("b"), "b")
    pm.register(plugin("first", tryfirst=True), "first")
    pm.register(NoArgs(), "noargs")
    by_pluggy, ours = both()
    assert by_pluggy == ["first:c", "noargs", "b:c", "a:c", "last:c"]
    assert ours == by_pluggy and through_pluggy == []  # called directly
    pm.unregister(name="b")
    pm.register(plugin("c"), "c")
    by_pluggy, ours = both()
    assert ours == by_pluggy == ["first:c", "c:c", "noargs", "a:c", "last:c"]
    pm.register(Wrapper(), "wrapper")
    by_pluggy, ours = both()
    assert ours == by_pluggy and by_pluggy[0] == "wrapper before" and by_pluggy[-1] == "wrapper after"
    assert through_pluggy == ["fraiseql_report_result"]  # a wrapper: pluggy's call
    pm.unregister(name="wrapper")

    class Broken:
        @hookimpl
        def fraiseql_report_result(self, result: Result) -> None:
            calls.append("broken")
            raise RuntimeError("broken plugin")

    pm.register(Broken(), "broken")
    raised = []
    for call in (lambda: pm.hook.fraiseql_report_result(result=result), lambda: direct(result=result)):
        calls.clear()
        with pytest.raises(RuntimeError, match="broken plugin"):
            call()
        raised.append(calls.copy())
    assert raised[0] == raised[1] == ["first:c", "broken"]  # the first exception stops the call


def test_a_lazy_plugin_declares_the_hooks_of_its_module_with_their_options() -> None:
    """``LAZY_PLUGINS`` says which hooks a built-in module implements, so that the module
    need not be imported to register it: a hook added to the module, or an option
    (``trylast``) changed, without the list would be silently lost."""
    marker = f"{hookspec.PROJECT}_impl"
    modules = dict(DEFAULT_PLUGINS)
    assert set(LAZY_PLUGINS) <= set(modules)
    for name, declared in LAZY_PLUGINS.items():
        module = importlib.import_module(modules[name])
        found = {}
        for attribute, value in vars(module).items():
            opts = getattr(value, marker, None) if callable(value) else None
            if opts is not None:
                found[attribute] = {option: True for option, on in opts.items() if on is True}
                # what the forwarder gives: the spec's arguments
                spec = inspect.signature(getattr(hookspec, attribute)).parameters
                assert set(inspect.signature(value).parameters) <= set(spec), attribute
            assert not hasattr(value, FIXTURE_ATTR), f"{name}: fixtures of a lazy module are never seen"
        assert found == declared, name
        for options in declared.values():
            assert set(options) <= {"tryfirst", "trylast"}, name
        # hooks every start calls would import the module anyway
        assert not set(declared) & {"fraiseql_addoption", "fraiseql_add_commands", "fraiseql_configure"}, name


def test_a_built_in_plugin_named_with_p_by_its_module_is_not_registered_twice() -> None:
    """Its module is registered already, lazily or not: ``-p fraiseql_checks.notifiers.slack``
    changes nothing (registered twice, the slack notifier type would be declared twice)."""
    from fraiseql_checks._plugins import create_pluginmanager
    from fraiseql_checks.notify.notifier import Notifiers

    for module in ("fraiseql_checks.notifiers.slack", "fraiseql_checks.reports.terminal"):
        pm = create_pluginmanager(["-p", module], autoload=False)
        assert pm.get_plugin(module) is None
        notifiers = Notifiers()
        pm.hook.fraiseql_add_notifiers.call_historic(kwargs={"notifiers": notifiers})
        assert "slack" in {notifier.name for notifier in notifiers}


def test_a_lazy_plugin_imports_its_module_when_a_hook_is_called_and_passes_what_it_takes(tmp_path) -> None:
    """The forwarder takes every argument of the hook's spec and gives the module's
    function those it names, in its own order; the module is imported by the first call."""
    module_name = "fraiseql_lazy_probe"
    (tmp_path / f"{module_name}.py").write_text(
        "from fraiseql_checks import hookimpl\n"
        "seen = []\n\n"
        "@hookimpl(trylast=True)\n"
        "def fraiseql_make_store(url, config):\n"
        "    seen.append((url, config))\n"
        "    return 'probe store'\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        pm = PluginManager()
        plugin = LazyPlugin(module_name, {"fraiseql_make_store": {"trylast": True}})
        pm.register(plugin, name="probe")
        assert module_name not in sys.modules
        assert pm.hook.fraiseql_make_store(config="the config", url="the url") == "probe store"
        module = sys.modules[module_name]
        assert module.seen == [("the url", "the config")]
        plugin.fraiseql_make_store(config="by name", url="too")  # as cli.py and generate.py call
        assert module.seen[-1] == ("too", "by name")
        assert plugin.seen is module.seen  # anything else of it is the module's
        [impl] = pm.hook.fraiseql_make_store.get_hookimpls()
        assert impl.trylast and impl.plugin is plugin
        with pytest.raises(AttributeError):  # made without __init__ (as a copy is): no endless recursion
            LazyPlugin.__new__(LazyPlugin)._import()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module_name, None)
