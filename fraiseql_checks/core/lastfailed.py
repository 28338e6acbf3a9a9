"""``--lf`` and ``--ff``: rerun the checks that failed last time, or run them first (pytest's cache).

Which checks failed or errored (and which files did not collect) is kept in
``<cache_dir>/lastfailed.json`` under the root directory, written at the end of
every one-shot run; ``-p no:lastfailed`` turns it off, as ``-p no:cacheprovider``
does in pytest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from fraiseql_checks.config import Config, Parser
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.result import Outcome, Result

if TYPE_CHECKING:
    from fraiseql_checks.checks import Check
    from fraiseql_checks.core.session import Session

PLUGIN_NAME = "lastfailed-cache"
FILE_NAME = "lastfailed.json"


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addoption(
        "--lf",
        "--last-failed",
        dest="lf",
        action="store_true",
        help="run only the checks that failed or errored in the last run (all of them if none did)",
        group="selection",
    )
    parser.addoption(
        "--ff",
        "--failed-first",
        dest="failedfirst",
        action="store_true",
        help="run every check, those that failed or errored in the last run first",
        group="selection",
    )


@hookimpl
def fraiseql_configure(config: Config) -> None:
    config.pluginmanager.register(LastFailed(config), PLUGIN_NAME)


@hookimpl
def fraiseql_unconfigure(config: Config) -> None:
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is not None:
        config.pluginmanager.unregister(plugin)


def cache_file(config: Config) -> Path:
    return config.rootdir / str(config.get("cache_dir")) / FILE_NAME


def _file_of(node_id: str) -> str:
    return node_id.split("::", 1)[0]


class LastFailed:
    """The ids that failed in the last run; reorders or deselects checks with them."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.path = cache_file(config)
        self.active = bool(config.getoption("lf") or config.getoption("failedfirst"))
        self.saved = self._read()
        self.lastfailed = dict(self.saved)
        self.status: str | None = None

    def _read(self) -> dict[str, bool]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # no run yet, or a file that is not ours: start afresh, as pytest does
        if not isinstance(data, dict):
            return {}
        return {str(key): True for key, value in data.items() if value}

    @hookimpl(trylast=True)  # after -k and -m: the last failures among what they selected
    def fraiseql_collection_modifyitems(self, session: Session, config: Config, checks: list[Check]) -> None:
        # A file that did not collect last time stands for every check it now holds.
        files = {_file_of(check.id) for check in checks}
        for file in [key for key in self.lastfailed if "::" not in key and key in files]:
            del self.lastfailed[file]
            self.lastfailed.update((check.id, True) for check in checks if _file_of(check.id) == file)
        if not self.active:
            return
        if not self.lastfailed:
            self.status = "no previously failed checks, not deselecting items."
            return
        failed = [check for check in checks if check.id in self.lastfailed]
        passed = [check for check in checks if check.id not in self.lastfailed]
        if not failed:
            self.status = f"{len(self.lastfailed)} known failures not in selected checks"
            return
        if config.getoption("lf"):
            checks[:] = failed
            if passed:
                session.deselected.extend(passed)
                config.hook.fraiseql_deselected(checks=passed)
        else:
            checks[:] = failed + passed
        noun = "failure" if len(failed) == 1 else "failures"
        suffix = " first" if config.getoption("failedfirst") else ""
        self.status = f"rerun previous {len(failed)} {noun}{suffix}"

    @hookimpl
    def fraiseql_report_collectionfinish(self, config: Config, session: Session) -> str | None:
        if self.active and self.status and config.verbosity >= 0:
            return f"run-last-failure: {self.status}"
        return None

    @hookimpl
    def fraiseql_report_result(self, result: Result) -> None:
        if result.kind not in ("check", "collect"):
            return  # a module fixture's teardown is not a check to rerun
        if result.outcome in (Outcome.FAILED, Outcome.ERROR):
            self.lastfailed[result.id] = True
        elif result.kind == "check":
            self.lastfailed.pop(result.id, None)

    @hookimpl
    def fraiseql_sessionfinish(self, session: Session, exitstatus: int) -> None:
        if self.config.getoption("collectonly") or self.config.getoption("watch"):
            return
        if self.lastfailed == self.saved:
            return
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp.write_text(json.dumps(self.lastfailed, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(temp, self.path)
        except OSError:
            temp.unlink(missing_ok=True)  # a read-only tree still runs, only without --lf next time
