"""One invocation: collect, run, report, and the exit code CI gates on."""

from __future__ import annotations

import argparse
import enum
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fraiseql_checks._plugins import HookCall
from fraiseql_checks.checks import Check
from fraiseql_checks.config import (
    Config,
    Parser,
    Setting,
    UsageError,
    as_duration,
    as_number_map,
    as_str,
    as_str_list,
    one_of,
)
from fraiseql_checks.core import _interrupt
from fraiseql_checks.core.collect import CollectError, Collector
from fraiseql_checks.core.fixtures import FixtureRegistry
from fraiseql_checks.core.gcpolicy import rare_collections
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.result import LONGREPR_LIMIT, MESSAGE_LIMIT, Outcome, Result, Summary, cut
from fraiseql_checks.spec import SEVERITIES
from fraiseql_checks.thresholds import SHIPPED


class ExitCode(enum.IntEnum):
    """Exit codes of a one-shot run (PRODUCT.md, "Contracts")."""

    OK = 0  # every check passed (skips allowed)
    FAILED = 1  # a check failed or errored
    INTERRUPTED = 2  # a file did not collect, or the run was interrupted
    INTERNAL_ERROR = 3
    USAGE_ERROR = 4  # bad command line or configuration
    NO_CHECKS = 5  # nothing was collected (or everything was deselected)


def _failure_count(text: str) -> int:
    """``--maxfail N``: 0 or more. A negative count would silently mean "never stop"."""
    value = int(text)  # not a number: argparse's "invalid int value: 'two'", as pytest says it
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 (no limit) or more, got {value}")
    return value


_failure_count.__name__ = "int"


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addoption("paths", nargs="*", metavar="PATH", help="check files, folders or node ids (default: checks/)")
    parser.addoption("-c", "--config", dest="configfile", metavar="FILE", help="read the configuration from FILE")
    parser.addoption(
        "-p",
        dest="plugins",
        action="append",
        default=[],
        metavar="NAME",
        help="load plugin NAME (module or entry point); -p no:NAME disables one",
    )
    parser.addoption(
        "-v", "--verbose", action="count", default=0, help="more output (one line per check)", group="output"
    )
    parser.addoption("-q", "--quiet", action="count", default=0, help="less output", group="output")
    parser.addoption(
        "-x",
        "--exitfirst",
        action="store_true",
        help="stop after the first failure or error: checks still running are cancelled, no more start",
    )
    parser.addoption(
        "--maxfail",
        metavar="N",
        type=_failure_count,
        default=0,
        help="stop after N failures or errors, as -x does after one (default 0: never)",
    )
    parser.addoption(
        "--assert",
        dest="assertmode",
        choices=("rewrite", "plain"),
        default="rewrite",
        help="'rewrite' (default) explains failing asserts as pytest does; 'plain' skips the rewriting",
    )
    parser.addoption(
        "--no-cache", dest="no_cache", action="store_true", help="do not read or write the rewritten-code cache"
    )
    parser.addoption(
        "--collect-only",
        "--co",
        dest="collectonly",
        action="store_true",
        help="list the checks and their metadata; run nothing",
    )
    parser.addsetting(Setting("paths", as_str_list, ["checks"], "where to look for checks when no path is given"))
    parser.addsetting(Setting("plugins", as_str_list, [], "plugins to load, as with -p"))
    parser.addsetting(Setting("severity", one_of(*SEVERITIES), "warning", "severity of checks that do not declare one"))
    parser.addsetting(Setting("interval", as_duration, 60.0, "default interval between runs in watch mode"))
    parser.addsetting(
        Setting("cache_dir", as_str, ".fraiseql-checks/cache", "the tool's cache folder, relative to the root")
    )
    parser.addsetting(Setting("thresholds", as_number_map, {}, "overrides of the thresholds the shipped checks use"))
    for threshold in SHIPPED:
        parser.addthreshold(threshold)


#: Text kept beyond a limit before masking, so that a secret across the cut is still masked.
_MASK_MARGIN = 4096


def _mask_and_cut(text: str, limit: int, mask: Callable[[str], str]) -> str:
    """``text`` masked and cut to ``limit``; a huge text is masked only as far as it is kept."""
    if len(text) <= limit:
        return mask(text)
    head = mask(text[: limit + _MASK_MARGIN])[:limit]
    return f"{head}... [cut: {len(text):,} characters in all, {limit:,} kept]"


def _masked(value: Any, mask: Callable[[str], str]) -> Any:
    """``value`` with every string inside it masked (the structured ``extra`` of a result)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {key: _masked(item, mask) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item, mask) for item in value]
    return value


class Session:
    """Collected checks, their results, and the outcome of the invocation."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.fixtures = FixtureRegistry()
        for plugin in config.pluginmanager.get_plugins():
            self.fixtures.parse(plugin, base=None)
        self.collector = Collector(self)
        self.initpaths: set[Path] = set()
        self.checks: list[Check] = []
        self.collect_errors: list[CollectError] = []
        self.deselected: list[Check] = []
        self.results: list[Result] = []
        self.summary = Summary()
        self.shouldstop: str | None = None
        #: Failures and errors reported so far (``-x``, ``--maxfail`` stop at ``maxfail``).
        self.testsfailed = 0
        self.interrupted = False
        #: Set by a run loop that decides the exit status itself (watch mode exits 0
        #: after a clean shutdown, whatever the checks said).
        self.exitcode: ExitCode | None = None
        #: Whether ``results`` keeps every result: asked for by what reads them after the
        #: run (the audit report). The reporters keep what they need; 10,000 results kept
        #: for no one cost a run ~1 µs a check (docs/performance.md).
        self.keep_results = False
        #: Checks that held the event loop past the report bound: id → (times, longest hold in
        #: seconds); ``""`` when the holder was not a check's.
        self.blocking: dict[str, tuple[int, float]] = {}
        self.started = time.time()
        self._start = time.perf_counter()
        self._report_result = HookCall(config.hook.fraiseql_report_result, config.pluginmanager)
        self._finish_result = HookCall(config.hook.fraiseql_result, config.pluginmanager)

    def args(self) -> list[str]:
        """The paths to collect: the command line's, else ``paths`` of the config; and the
        shipped suites chosen (``suites``, ``--suite``; ``fraiseql_checks.suites``)."""
        from fraiseql_checks.suites import collection_args

        return collection_args(self.config)

    @property
    def maxfail(self) -> int:
        """How many failures and errors end the run (``-x`` is one); 0 for no limit."""
        if self.config.getoption("exitfirst"):
            return 1
        return int(self.config.getoption("maxfail") or 0)

    def collect(self) -> None:
        with rare_collections():
            checks, errors = self.collector.collect(self.args())
        if self.collector.not_found:  # pytest's words, and its exit code 4
            raise UsageError(
                "\n".join(
                    f"not found: {nodeid}\n(no match in any of [<Module {Path(nodeid.split('::', 1)[0]).name}>])"
                    for nodeid in self.collector.not_found
                )
            )
        self.collect_errors = errors
        self.config.hook.fraiseql_collection_modifyitems(session=self, config=self.config, checks=checks)
        self.checks = checks
        self.config.hook.fraiseql_collection_finish(session=self)

    @property
    def result_hooks(self) -> bool:
        """Whether a plugin or a conftest implements ``fraiseql_result`` (``prepare`` runs it)."""
        return bool(self._finish_result)

    def prepare(self, result: Result, check: Check | None) -> str | None:
        """Finish a result before anyone sees it: plugins add to it, secrets are masked,
        and its message and traceback are cut to size. Returns the whole masked message
        when it had to be cut (watch mode logs it once), else ``None``."""
        if self._finish_result:  # none built in
            self._finish_result(result=result, check=check)
        mask = self.config.mask
        whole = None
        if len(result.message) > MESSAGE_LIMIT:
            whole = mask(result.message)
            result.message = cut(whole, MESSAGE_LIMIT)
        elif result.message:
            result.message = mask(result.message)
        # What is empty (most of a passing result) has nothing to mask.
        if result.longrepr:
            result.longrepr = _mask_and_cut(result.longrepr, LONGREPR_LIMIT, mask)
        if result.stdout:
            result.stdout = mask(result.stdout)
        if result.stderr:
            result.stderr = mask(result.stderr)
        if result.labels:
            result.labels = {name: mask(value) for name, value in result.labels.items()}
        if result.extra:
            result.extra = _masked(result.extra, mask)
        return whole

    def report(self, result: Result, check: Check | None) -> None:
        """Hand a result to every reporter (masking secrets first)."""
        self.prepare(result, check)
        self.summary.add(result.outcome)
        if self.keep_results:
            self.results.append(result)
        self._report_result(result=result)
        if result.outcome is Outcome.FAILED or result.outcome is Outcome.ERROR:
            self.testsfailed += 1
            maxfail = self.maxfail
            if maxfail and self.testsfailed >= maxfail:
                self.shouldstop = self.shouldstop or f"stopping after {maxfail} failures"

    def report_collect_errors(self) -> None:
        for error in self.collect_errors:
            self.report(
                Result(
                    id=error.id,
                    name=error.id.rsplit("/", 1)[-1],
                    outcome=Outcome.ERROR,
                    message=error.message,
                    longrepr=error.longrepr,
                    kind="collect",
                    severity="critical",
                    when="collect",
                    exc_type=error.exc_type,
                ),
                None,
            )

    def exitstatus(self) -> ExitCode:
        if self.exitcode is not None:
            return self.exitcode
        if self.interrupted or self.collect_errors:
            return ExitCode.INTERRUPTED
        if self.summary.failed or self.summary.error:
            return ExitCode.FAILED
        if not self.checks:
            return ExitCode.NO_CHECKS
        return ExitCode.OK

    @property
    def duration(self) -> float:
        return time.perf_counter() - self._start

    def main(self) -> ExitCode:
        """Collect, run, report; the reports are written however the run ends.

        ``SystemExit`` or a ``KeyboardInterrupt`` raised by a plugin or a conftest
        hook (those raised by checks, fixtures and imports are already results) ends
        the run as an internal error, after the reports are written.
        """
        hook = self.config.hook
        error: BaseException | None = None
        try:
            hook.fraiseql_sessionstart(session=self)
            hook.fraiseql_collection(session=self)
            hook.fraiseql_runloop(session=self)
        except UsageError:
            raise
        except BaseException as exc:
            if _interrupt.is_real(exc):
                self.interrupted = True
            else:
                error = exc
        self.summary.duration_s = self.duration
        status = ExitCode.INTERNAL_ERROR if error is not None else self.exitstatus()
        hook.fraiseql_sessionfinish(session=self, exitstatus=int(status))
        if error is not None:
            raise RuntimeError(f"{type(error).__name__} raised outside a check: {error}").with_traceback(
                error.__traceback__
            ) from error
        return status


@hookimpl(trylast=True)
def fraiseql_collection(session: Session) -> bool:
    """Collect in this process and report what did not collect."""
    session.collect()
    session.report_collect_errors()
    return True
