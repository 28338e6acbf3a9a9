"""``fraiseql-check --watch``: options, settings, the watch run loop and its terminal output.

The ``fraiseql_runloop`` implementation here runs before the one-shot runner's
and takes over when ``--watch`` is given. In watch mode the terminal shows one
line per state change and per notice (with ``-v``, one per run) instead of
pytest-like progress, and nothing accumulates in memory over the watcher's life.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import queue
import sys
import threading
from typing import IO, TYPE_CHECKING, Any

from fraiseql_checks.config import (
    Config,
    Parser,
    Setting,
    UsageError,
    as_duration,
    as_duration_or_zero,
    as_positive_int,
    as_str,
    one_of,
    section,
)
from fraiseql_checks.core.runner import run_on_new_loop
from fraiseql_checks.core.session import ExitCode
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.reports.terminal import TerminalReporter
from fraiseql_checks.result import Outcome, Result, plural
from fraiseql_checks.stash import StashKey
from fraiseql_checks.watch.log import FORMATS, LEVELS, WATCHER, Forward, format_line

if TYPE_CHECKING:
    from fraiseql_checks.checks import Check
    from fraiseql_checks.core.session import Session
    from fraiseql_checks.stores import Store
    from fraiseql_checks.watch.maintenance import MaintenanceWindow
    from fraiseql_checks.watch.state import StateChange
    from fraiseql_checks.watch.watcher import Watcher, WatchSettings

# The watcher, its HTTP server, the stores and the state machine are imported when
# --watch is given: every run registers this plugin, few runs watch.

DEFAULT_LISTEN = "127.0.0.1:9470"
DEFAULT_STORE = ".fraiseql-checks/results.db"
#: The settings and the store of a run with ``--watch``, made at configure time.
_PREPARED: StashKey[tuple[WatchSettings, Store]] = StashKey("watch")
#: The running watcher, for the reporter's last line.
_WATCHER: StashKey[Watcher] = StashKey("watcher")
#: The lock file held open (and locked) while a watcher uses a SQLite store.
_STORE_LOCK: StashKey[IO[str]] = StashKey("store-lock")


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
        help="run every check on its interval until SIGTERM or SIGINT; SIGHUP re-reads the config and the checks",
        group="watch mode",
    )
    parser.addoption(
        "--listen",
        metavar="HOST:PORT",
        help=f"where the watcher serves /metrics, /healthz and /readyz (default {DEFAULT_LISTEN})",
        group="watch mode",
    )
    parser.addoption(
        "--workers",
        metavar="N",
        help="worker processes that run the checks (default: one per core)",
        group="watch mode",
    )
    parser.addoption(
        "--store",
        metavar="URL",
        help=f"where results go: a SQLite file (default {DEFAULT_STORE}) or postgresql://user@host/db",
        group="watch mode",
    )
    parser.addoption(
        "--log-format",
        dest="log_format",
        choices=FORMATS,
        help="the watcher's log lines: text (default) or json, one object per line",
        group="watch mode",
    )
    parser.addoption(
        "--log-level",
        dest="log_level",
        choices=tuple(LEVELS),
        help="the least level the watcher logs: debug, info (default), warning, error",
        group="watch mode",
    )
    settings = [
        Setting(
            "log_format",
            one_of(*FORMATS),
            "text",
            "watch mode's log: text or json (one object per line)",
            option="log_format",
            env="FRAISEQL_CHECKS_LOG_FORMAT",
        ),
        Setting(
            "log_level",
            one_of(*LEVELS),
            "info",
            "watch mode's least logged level: debug, info, warning, error",
            option="log_level",
            env="FRAISEQL_CHECKS_LOG_LEVEL",
        ),
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
        Setting(
            "cluster",
            _as_cluster,
            None,
            "watchers sharing a PostgreSQL store and this name split the checks between them (default: default)",
            env="FRAISEQL_CHECKS_CLUSTER",
        ),
        Setting("retention", as_duration, as_duration("30d"), "how long the store keeps results and state changes"),
        Setting(
            "rollup_retention",
            as_duration,
            as_duration("400d"),
            "how long the store keeps the daily and hourly SLO rollups (at least the retention)",
        ),
        Setting(
            "store_buffer",
            as_positive_int,
            100_000,
            "results kept in memory while the store is away; past it the oldest are dropped",
        ),
        Setting(
            "start_jitter",
            as_duration_or_zero,
            10.0,
            "first runs are spread at random over this long (or the check's interval, if shorter)",
        ),
        Setting("failure_threshold", as_positive_int, 1, "failing runs in a row before a check's state is failing"),
        Setting("success_threshold", as_positive_int, 1, "passing runs in a row before a failing check recovers"),
        Setting("flapping", section(FLAPPING_SETTINGS), {}, "flapping detection: {changes = 5, window = '10m'}"),
        Setting("maintenance", _as_windows, [], "maintenance windows: checks still run, their state is silenced"),
        Setting(
            "workers",
            as_positive_int,
            max(os.cpu_count() or 1, 1),
            "worker processes that run the checks (default: one per core)",
            option="workers",
            env="FRAISEQL_CHECKS_WORKERS",
        ),
        Setting(
            "worker_memory_limit",
            as_size,
            as_size("1GiB"),
            "a worker process whose resident memory grows past this is replaced (0: no limit)",
        ),
        Setting(
            "import_timeout",
            as_duration,
            30.0,
            "a worker that takes longer to import one check file is replaced and the file reported as broken",
        ),
    ]
    for setting in settings:
        parser.addsetting(setting)


def _as_cluster(value: Any) -> str:
    text = as_str(value).strip()
    if not text or len(text) > 100:
        raise ValueError(f"expected a cluster name of 1 to 100 characters, got {value!r}")
    return text


_SIZE_UNITS = {"": 1, "b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "kb": 10**3, "mb": 10**6, "gb": 10**9}


def as_size(value: Any) -> int:
    """A size in bytes: a whole number, or with a unit (``512MiB``, ``1GiB``, ``500MB``); 0 means none."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    text = str(value).strip().replace(" ", "") if isinstance(value, str) else ""
    number = text.rstrip("KkMmGgIiBb")
    unit = text[len(number) :].lower()
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if unit not in _SIZE_UNITS or not math.isfinite(amount) or amount < 0:
        raise ValueError(f"expected a size such as 512MiB or 1GiB, got {value!r}")
    return int(amount * _SIZE_UNITS[unit])


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
        workers=config.get("workers"),
        worker_memory_limit=config.get("worker_memory_limit"),
        import_timeout=config.get("import_timeout"),
    )


@hookimpl(trylast=True)
def fraiseql_configure(config: Config) -> None:
    if not config.getoption("watch") or config.getoption("collectonly"):
        return
    for option, flag in (("junitxml", "--junitxml"), ("report_json", "--report-json")):
        if config.getoption(option):
            raise UsageError(f"{flag} cannot be used with --watch: results go to the store (--store)")
    url = config.get("store")
    config.mask.add_url(url)
    from fraiseql_checks.stores import open_store

    store = open_store(config, url)
    _claim_store(config, store)
    config.stash[_PREPARED] = (settings_of(config), store)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        config.pluginmanager.unregister(reporter)
    config.pluginmanager.register(WatchReporter(config), "terminalreporter")


def _claim_store(config: Config, store: Store) -> None:
    """A SQLite store is one watcher's: refuse ``cluster`` with it, and a second watcher on
    the same file (an exclusive lock beside the database, held for the watcher's life)."""
    from fraiseql_checks.stores.sqlite import SQLiteStore

    if not isinstance(store, SQLiteStore):
        return
    if config.get("cluster") is not None:
        raise UsageError(
            f"cluster: needs a PostgreSQL store (store: postgresql://...); a SQLite store ({store.path}) is one"
            " watcher's"
        )
    import fcntl

    lock_path = store.path.with_name(store.path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+")
    except OSError as exc:
        raise UsageError(f"cannot open the result store's lock {lock_path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise UsageError(
            f"store: {store.path} is used by another watcher (pid {holder}); a SQLite store is one watcher's"
            " (share a PostgreSQL store to run several)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    config.stash[_STORE_LOCK] = handle


@hookimpl(tryfirst=True)
def fraiseql_collection(session: Session) -> bool | None:
    """The watcher imports no check file: its worker processes collect. It only makes
    sure the paths exist, so that a typo is one line and exit code 4 here."""
    config = session.config
    if _PREPARED not in config.stash:
        return None
    for arg in session.args():
        path_text = arg.partition("::")[0]
        if not (config.invocation_dir / path_text).exists():
            raise UsageError(f"file or directory not found: {path_text}")
    return True


@hookimpl(tryfirst=True)
def fraiseql_runloop(session: Session) -> bool | None:
    config = session.config
    prepared = config.stash.get(_PREPARED)
    if prepared is None:
        return None
    settings, store = prepared
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    say = reporter.notice if isinstance(reporter, WatchReporter) else _say
    from fraiseql_checks.watch.watcher import NothingToWatch, Watcher

    watcher = Watcher(session, store, settings, say)
    config.stash[_WATCHER] = watcher
    from fraiseql_checks.stores.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        from fraiseql_checks.watch.cluster import Cluster

        watcher.cluster = Cluster(store, config.get("cluster") or "default", watcher, say=watcher.say)
        watcher.extra_metrics.append(watcher.cluster.metric_lines)

    async def main() -> None:
        try:
            await watcher.run()
        except OSError as exc:
            if not watcher.server.address:
                raise UsageError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None
            raise

    try:
        run_on_new_loop(session, main)
    except NothingToWatch:
        session.exitcode = ExitCode.NO_CHECKS
        return True
    session.exitcode = ExitCode.OK  # a clean stop, whatever the checks said
    return True


@hookimpl(trylast=True)
def fraiseql_fixture_broken(error: BaseException) -> bool | None:
    from fraiseql_checks.watch.worker import looks_like_lost_connection

    return looks_like_lost_connection(error)


def _say(line: str, level: int = logging.INFO) -> None:
    sys.stdout.write(format_line(level, line, as_json=False))
    sys.stdout.flush()


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


#: What the log may hold in memory while the terminal (or the pipe behind it) does not
#: keep up; past it, lines are dropped and counted.
_LOG_BACKLOG = 16 * 2**20


class WatchReporter(TerminalReporter):
    """The terminal in watch mode: notices and state changes, one timestamped line each.

    Lines are written by a thread of their own: a terminal or a pipe that stops
    reading blocks that thread, never the watcher's event loop (its probes, its
    metrics, its schedule). What the thread cannot write in time is dropped and
    counted, and the count is written when the output flows again."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.level = LEVELS[config.get("log_level")]
        self.as_json = config.get("log_format") == "json"
        if self.as_json:
            self.set_color(False)  # no escape codes in a JSON message
        self._forward = Forward(
            lambda level, line, logger, fields: self.notice(line, level, logger=logger, **fields), self.level
        )
        self._forward.install()
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._queued = 0
        self._dropped = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._write_lines, name="fraiseql-check-log", daemon=True)
        self._thread.start()

    def write_line(self, text: str = "", *styles: str) -> None:
        if not self.as_json:
            super().write_line(text, *styles)
        elif text.strip():  # the session's header, as log lines too: every line of the output is JSON
            self.notice(text)

    def sep(self, char: str, title: str = "", *styles: str) -> None:
        if not self.as_json:
            super().sep(char, title, *styles)
        elif title:
            self.notice(title)

    def notice(self, line: str, level: int = logging.INFO, *, logger: str = WATCHER, **fields: Any) -> None:
        """Log ``line`` at ``level`` (if ``--log-level`` lets it through); ``fields`` go into
        the JSON object (``check``, ``state``, ...)."""
        if level < self.level:
            return
        text = format_line(level, line, logger=logger, fields=fields, as_json=self.as_json)
        with self._lock:
            if self._queued + len(text) > _LOG_BACKLOG:
                self._dropped += 1
                return
            self._queued += len(text)
        self._lines.put(text)

    def _write_lines(self) -> None:
        while True:
            text = self._lines.get()
            if text is None:
                return
            with self._lock:
                self._queued -= len(text)
                dropped, self._dropped = self._dropped, 0
            try:
                if dropped:
                    self.out.write(
                        format_line(
                            logging.WARNING,
                            f"{dropped} log lines dropped: the output did not keep up",
                            fields={"dropped": dropped},
                            as_json=self.as_json,
                        )
                    )
                self.out.write(text)
                if self._lines.empty():
                    self.out.flush()
            except (OSError, ValueError):
                continue

    def drain(self, timeout: float = 10.0) -> None:
        """Write what is queued (for at most ``timeout`` seconds), then stop the thread."""
        self._forward.remove()
        self._lines.put(None)
        self._thread.join(timeout)

    @hookimpl
    def fraiseql_report_result(self, result: Result) -> None:
        if result.kind == "collect":
            self.notice(self.markup(f"collecting {result.id}: {result.message}", "red"), logging.ERROR, file=result.id)
        elif result.kind == "teardown":
            self.notice(self.markup(f"{result.id}: {result.message}", "red"), logging.ERROR, check=result.id)
        elif self.verbosity > 0 or self.level <= logging.DEBUG:
            line = f"{result.id} {result.outcome.value.upper()} {result.duration_s * 1000:.0f}ms"
            if result.outcome is not Outcome.PASSED and result.message:
                line += f" - {_first_line(result.message)}"
            fields: dict[str, Any] = {
                "check": result.id,
                "outcome": result.outcome.value,
                "duration_s": round(result.duration_s, 6),
            }
            self.notice(line, logging.INFO if self.verbosity > 0 else logging.DEBUG, **fields)

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
        level = logging.INFO if change.state is State.PASSING else logging.WARNING
        fields: dict[str, Any] = {
            "check": change.check_id,
            "previous": change.previous.value,
            "state": change.state.value,
            "reason": change.reason,
            "silenced": bool(change.silenced),
        }
        self.notice(line, level, **fields)

    @hookimpl
    def fraiseql_sessionfinish(self, session: Session, exitstatus: int) -> None:
        watcher = self.config.stash.get(_WATCHER)
        if watcher is None or session.exitcode is ExitCode.NO_CHECKS:
            self.drain()
            super().fraiseql_sessionfinish(session, exitstatus)
            return
        totals = watcher.totals or watcher.writer.totals()
        self.notice(
            f"stopped after {watcher.runs} {plural(watcher.runs, 'run')}"
            f" of {len(watcher.schedule)} {plural(len(watcher.schedule), 'check')};"
            f" results, states and state changes: {totals}"
        )
        self.drain()
