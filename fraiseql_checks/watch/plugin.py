"""``fraiseql-check --watch``: options, settings, the watch run loop and its terminal output.

The ``fraiseql_runloop`` implementation here runs before the one-shot runner's
and takes over when ``--watch`` is given. In watch mode the terminal shows one
line per state change and per notice (with ``-v``, one per run) instead of
pytest-like progress, and nothing accumulates in memory over the watcher's life.
"""

from __future__ import annotations

import datetime
import ipaddress
import sys
import urllib.parse
from typing import TYPE_CHECKING, Any

from fraiseql_checks.config import (
    Config,
    Parser,
    Setting,
    UsageError,
    as_duration,
    as_positive_int,
    as_str,
    section,
)
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.result import Outcome, Result
from fraiseql_checks.runner import run_on_new_loop
from fraiseql_checks.session import ExitCode
from fraiseql_checks.terminal import TerminalReporter

if TYPE_CHECKING:
    from fraiseql_checks.checks import Check
    from fraiseql_checks.session import Session
    from fraiseql_checks.watch.maintenance import MaintenanceWindow
    from fraiseql_checks.watch.state import StateChange
    from fraiseql_checks.watch.watcher import WatchSettings

# The watcher, its HTTP server, the stores and the state machine are imported when
# --watch is given: every run registers this plugin, few runs watch.

DEFAULT_LISTEN = "127.0.0.1:9470"
DEFAULT_STORE = ".fraiseql-checks/results.db"
_STASH_KEY = "watch"


def as_listen(value: Any) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9470`` for IPv6, ``:9470`` for every interface)."""
    text = as_str(value).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9470, got {text!r}")
    host = host.strip("[]") or "0.0.0.0"
    if not host.replace("-", "").replace(".", "").isalnum():
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9470, got {text!r}") from None
    return host, int(port)


FLAPPING_SETTINGS = [
    Setting("changes", as_positive_int, 5, "state changes within the window that make a check flapping"),
    Setting("window", as_duration, 600.0, "the flapping window"),
]


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addoption(
        "--watch",
        action="store_true",
        help="run every check on its interval until SIGTERM or SIGINT; SIGHUP re-collects the checks",
        group="watch mode",
    )
    parser.addoption(
        "--listen",
        metavar="HOST:PORT",
        help=f"where the watcher serves /metrics, /healthz and /readyz (default {DEFAULT_LISTEN})",
        group="watch mode",
    )
    parser.addoption(
        "--store",
        metavar="URL",
        help=f"where results go: a SQLite file (default {DEFAULT_STORE}) or postgresql://user@host/db",
        group="watch mode",
    )
    settings = [
        Setting(
            "listen",
            as_listen,
            as_listen(DEFAULT_LISTEN),
            "address of the watcher's HTTP server",
            option="listen",
            env="FRAISEQL_CHECKS_LISTEN",
        ),
        Setting(
            "store",
            as_str,
            DEFAULT_STORE,
            "result store: a SQLite file path or a postgresql:// URL",
            option="store",
            env="FRAISEQL_CHECKS_STORE",
        ),
        Setting("retention", as_duration, as_duration("30d"), "how long the store keeps results and state changes"),
        Setting(
            "rollup_retention",
            as_duration,
            as_duration("400d"),
            "how long the store keeps the hourly SLO rollups (at least the retention)",
        ),
        Setting(
            "store_buffer",
            as_positive_int,
            100_000,
            "results kept in memory while the store is away; past it the oldest are dropped",
        ),
        Setting(
            "start_jitter",
            as_duration,
            10.0,
            "first runs are spread at random over this long (or the check's interval, if shorter)",
        ),
        Setting("failure_threshold", as_positive_int, 1, "failing runs in a row before a check's state is failing"),
        Setting("success_threshold", as_positive_int, 1, "passing runs in a row before a failing check recovers"),
        Setting("flapping", section(FLAPPING_SETTINGS), {}, "flapping detection: {changes = 5, window = '10m'}"),
        Setting("maintenance", _as_windows, [], "maintenance windows: checks still run, their state is silenced"),
    ]
    for setting in settings:
        parser.addsetting(setting)


def _as_windows(value: Any) -> list[MaintenanceWindow]:
    from fraiseql_checks.watch.maintenance import as_windows

    return as_windows(value)


def settings_of(config: Config) -> WatchSettings:
    from fraiseql_checks.watch.watcher import WatchSettings

    host, port = config.get("listen")
    flapping = {s.name: s.default for s in FLAPPING_SETTINGS} | config.get("flapping")
    return WatchSettings(
        host=host,
        port=port,
        store_buffer=config.get("store_buffer"),
        retention=config.get("retention"),
        rollup_retention=max(config.get("rollup_retention"), config.get("retention")),
        start_jitter=config.get("start_jitter"),
        failure_threshold=config.get("failure_threshold"),
        success_threshold=config.get("success_threshold"),
        flap_changes=flapping["changes"],
        flap_window=flapping["window"],
        maintenance=tuple(config.get("maintenance")),
    )


@hookimpl(trylast=True)
def fraiseql_configure(config: Config) -> None:
    if not config.getoption("watch") or config.getoption("collectonly"):
        return
    for option, flag in (("junitxml", "--junitxml"), ("report_json", "--report-json")):
        if config.getoption(option):
            raise UsageError(f"{flag} cannot be used with --watch: results go to the store (--store)")
    url = config.get("store")
    password = urllib.parse.urlsplit(url).password if "://" in url else None
    if password:
        config.mask.add(urllib.parse.unquote(password))
    from fraiseql_checks.stores import open_store

    store = open_store(config, url)
    config.stash[_STASH_KEY] = (settings_of(config), store)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        config.pluginmanager.unregister(reporter)
    config.pluginmanager.register(WatchReporter(config), "terminalreporter")


@hookimpl(tryfirst=True)
def fraiseql_runloop(session: Session) -> bool | None:
    config = session.config
    prepared = config.stash.get(_STASH_KEY)
    if prepared is None:
        return None
    settings, store = prepared
    if not session.checks and not session.collect_errors:
        return None  # nothing to watch: the one-shot runner says so, exit code 5
    session.keep_results = False
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    say = reporter.notice if isinstance(reporter, WatchReporter) else _say
    from fraiseql_checks.watch.watcher import Watcher

    watcher = Watcher(session, store, settings, say)
    config.stash["watcher"] = watcher

    async def main() -> None:
        try:
            await watcher.run()
        except OSError as exc:
            if not watcher.server.address:
                raise UsageError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None
            raise

    run_on_new_loop(session, main)
    session.exitcode = ExitCode.OK  # a clean stop, whatever the checks said
    return True


@hookimpl(trylast=True)
def fraiseql_fixture_broken(error: BaseException) -> bool | None:
    from fraiseql_checks.watch.watcher import looks_like_lost_connection

    return looks_like_lost_connection(error)


def _say(line: str) -> None:
    sys.stdout.write(f"{_now()} {line}\n")
    sys.stdout.flush()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


class WatchReporter(TerminalReporter):
    """The terminal in watch mode: notices and state changes, one timestamped line each."""

    def notice(self, line: str) -> None:
        self.write_line(f"{_now()} {line}")
        self.out.flush()

    @hookimpl
    def fraiseql_report_result(self, result: Result) -> None:
        if result.kind == "collect":
            self.notice(self.markup(f"ERROR collecting {result.id}: {result.message}", "red"))
        elif result.kind == "teardown":
            self.notice(self.markup(f"ERROR {result.id}: {result.message}", "red"))
        elif self.verbosity > 0:
            line = f"{result.id} {result.outcome.value.upper()} {result.duration_s * 1000:.0f}ms"
            if result.outcome is not Outcome.PASSED and result.message:
                line += f" - {_first_line(result.message)}"
            self.notice(line)

    @hookimpl
    def fraiseql_check_state_changed(self, change: StateChange, check: Check | None) -> None:
        from fraiseql_checks.watch.state import State

        if change.previous is State.UNKNOWN and change.state is State.PASSING and self.verbosity <= 0:
            return  # a check starting well is not news (with -v it is shown)
        color = {State.PASSING: "green", State.FAILING: "red", State.FLAPPING: "yellow"}.get(change.state)
        line = (
            f"{change.check_id} {change.previous.value} -> {self.markup(change.state.value.upper(), color or 'bold')}"
        )
        line += f" ({change.reason})"
        if change.silenced:
            line += " [silenced: maintenance window]"
        if change.state is not State.PASSING and change.message:
            line += f": {_first_line(change.message)}"
        self.notice(line)

    @hookimpl
    def fraiseql_sessionfinish(self, session: Session, exitstatus: int) -> None:
        from fraiseql_checks.watch.watcher import Watcher

        watcher = self.config.stash.get("watcher")
        if not isinstance(watcher, Watcher):
            super().fraiseql_sessionfinish(session, exitstatus)
            return
        writer = watcher.writer
        self.notice(
            f"stopped after {watcher.runs} runs of {len(watcher.schedule)} checks;"
            f" {writer.written} results and state changes stored, {writer.dropped} dropped,"
            f" {writer.backlog} not written"
        )
