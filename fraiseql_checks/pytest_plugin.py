"""``pytest --checks``: run check files inside an existing pytest run.

With ``--checks``, pytest collects ``check_*.py`` files as well; each check becomes
a pytest item that runs through the same runner, fixtures and metadata as under
``fraiseql-check``. Without ``--checks`` this plugin does nothing at all.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _pytest._code.code import ReprFileLocation, TerminalRepr

from fraiseql_checks import suites
from fraiseql_checks.config import UsageError
from fraiseql_checks.core.collect import CHECK_FILE_PATTERN, CollectError, Collector
from fraiseql_checks.core.runner import Runner
from fraiseql_checks.core.session import Session
from fraiseql_checks.reports.terminal import summary_message
from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.spec import SEVERITIES

_BRIDGE = "fraiseql-checks-bridge"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fraiseql-checks")
    group.addoption(
        "--checks",
        action="store_true",
        dest="fraiseql_checks",
        help="also collect fraiseql-checks check files (check_*.py) and run them as tests",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("fraiseql_checks", False):
        return
    for severity in SEVERITIES:
        config.addinivalue_line("markers", f"{severity}: fraiseql-checks severity")
    config.pluginmanager.register(Bridge(config), _BRIDGE)


class _PytestCollector(Collector):
    """Reuses the conftest modules pytest has loaded instead of importing them twice."""

    def __init__(self, session: Session, pytest_config: pytest.Config) -> None:
        super().__init__(session)
        self.pytest_config = pytest_config

    def import_conftest(self, path: Path) -> ModuleType:
        for plugin in self.pytest_config.pluginmanager.get_plugins():
            if isinstance(plugin, ModuleType) and getattr(plugin, "__file__", None) == str(path):
                return plugin
        return super().import_conftest(path)


class Bridge:
    """Our session, runner and event loop, living for the pytest session."""

    def __init__(self, pytest_config: pytest.Config) -> None:
        from fraiseql_checks.cli import configure

        self.pytest_config = pytest_config
        try:
            config, _ = configure(
                ["-p", "no:terminal", "-p", "no:junitxml", "-p", "no:jsonreport", "-p", "no:lastfailed"],
                invocation_dir=Path(str(pytest_config.rootpath)),
            )
        except UsageError as exc:
            raise pytest.UsageError(f"fraiseql-checks: {exc}") from None
        config.hook.fraiseql_configure(config=config)
        self.config = config
        self.session = Session(config)
        self.session.collector = _PytestCollector(self.session, pytest_config)
        self.loop = asyncio.new_event_loop()
        self.runner = Runner(self.session)
        self.loop.run_until_complete(self.runner.__aenter__())
        # The config's shipped suites, as a run without paths collects them; pytest's own
        # paths given on its command line are all it collects, as fraiseql-check's are.
        if pytest_config.args_source is not pytest.Config.ArgsSource.ARGS:
            pytest_config.args.extend(str(folder) for folder in suites.folders(config))

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if file_path.suffix == ".py" and fnmatch.fnmatch(file_path.name, CHECK_FILE_PATTERN):
            shipped = suites.node_path(file_path)  # suites/host/check_host.py, as fraiseql-check names it
            if shipped is not None and not file_path.is_relative_to(self.pytest_config.rootpath):
                return CheckFile.from_parent(parent, path=file_path, nodeid=shipped)
            return CheckFile.from_parent(parent, path=file_path)
        return None

    def run(self, item: CheckItem) -> Result:
        from fraiseql_checks.core._tasks import run_to_end

        loop = self.loop  # a stop from a thread outside any run is run on, as fraiseql-check does
        return run_to_end(loop, loop.create_task(self.runner.run_check(item.check)))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        try:
            self.loop.run_until_complete(self.runner.__aexit__(None, None, None))
        finally:
            self.loop.close()
            self.config.hook.fraiseql_unconfigure(config=self.config)


def _bridge(config: pytest.Config) -> Bridge:
    bridge = config.pluginmanager.get_plugin(_BRIDGE)
    assert isinstance(bridge, Bridge)
    return bridge


class CheckFile(pytest.File):
    """A ``check_*.py`` file seen by pytest."""

    def collect(self) -> Iterator[pytest.Item]:
        bridge = _bridge(self.config)
        for found in bridge.session.collector.collect_module(Path(self.path)):
            if isinstance(found, CollectError):
                raise self.CollectError(f"{found.message}\n{found.longrepr}".rstrip())
            yield CheckItem.from_parent(self, name=found.name, check=found)

    def teardown(self) -> None:
        bridge = _bridge(self.config)
        errors = bridge.loop.run_until_complete(
            bridge.runner.fixtures.teardown_module(Path(self.path), bridge.config.get("timeout"))
        )
        if errors:
            definition, error = errors[0]
            raise RuntimeError(f"teardown of fixture {definition.name!r} failed: {type(error).__name__}: {error}")


class CheckOutcome(Exception):
    """A check that failed or errored, carrying its result for the report."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.message)
        self.result = result


class CheckFailureRepr(TerminalRepr):
    """A check's failure section, and the one line pytest's short summary and JUnit
    report show of it (``reprcrash.message``: ``AssertionError: disk almost full``)."""

    def __init__(self, text: str, reprcrash: ReprFileLocation) -> None:
        self.text = text
        self.reprcrash = reprcrash

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            tw.line(line)


class CheckItem(pytest.Item):
    """One check, run as a pytest test."""

    def __init__(self, *, check: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        for mark in check.marks:
            self.add_marker(mark)
        for name in (check.severity, *check.tags):
            self.config.addinivalue_line("markers", f"{name}: fraiseql-checks tag")
            self.add_marker(name)

    def runtest(self) -> None:
        result = _bridge(self.config).run(self)
        self.user_properties.append(("trace_id", result.trace_id))
        self.user_properties.extend(result.values.items())
        if result.outcome is Outcome.SKIPPED:
            # Reported at the check's location, as a skip inside a test function is.
            raise pytest.skip.Exception(result.message, _use_item_location=True)
        if result.outcome is not Outcome.PASSED:
            raise CheckOutcome(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CheckOutcome):
            result = excinfo.value.result
            text = result.longrepr or f"E   {result.message}"
            crash = ReprFileLocation(str(self.path), self.check.lineno, summary_message(result))
            return CheckFailureRepr(f"{text}\ntrace_id={result.trace_id}", crash)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return Path(self.path), max(self.check.lineno - 1, 0), self.check.name
