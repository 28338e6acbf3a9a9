"""The terminal reporter: progress, failure sections and the final line, as pytest prints them."""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from collections import Counter
from typing import IO, TYPE_CHECKING

from fraiseql_checks._version import __version__
from fraiseql_checks.config import Config, Parser
from fraiseql_checks.core._pytest_compat import PYTEST_VERSION
from fraiseql_checks.durations import format_duration
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.result import Outcome, Result

if TYPE_CHECKING:
    from fraiseql_checks.checks import Check
    from fraiseql_checks.core.session import Session

_COLORS = {"red": 31, "green": 32, "yellow": 33, "cyan": 36, "bold": 1}
_LETTER = {Outcome.PASSED: ".", Outcome.FAILED: "F", Outcome.ERROR: "E", Outcome.SKIPPED: "s"}
_WORD = {Outcome.PASSED: "PASSED", Outcome.FAILED: "FAILED", Outcome.ERROR: "ERROR", Outcome.SKIPPED: "SKIPPED"}
_COLOR_OF = {Outcome.PASSED: "green", Outcome.FAILED: "red", Outcome.ERROR: "red", Outcome.SKIPPED: "yellow"}


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addoption(
        "--tb",
        dest="tbstyle",
        choices=("short", "long", "line", "native", "no"),
        default="short",
        help="traceback style of failure sections (default: short)",
        group="output",
    )
    parser.addoption(
        "--color", choices=("yes", "no", "auto"), default="auto", help="colored output (default: auto)", group="output"
    )


@hookimpl
def fraiseql_configure(config: Config) -> None:
    config.pluginmanager.register(TerminalReporter(config), "terminalreporter")


@hookimpl
def fraiseql_unconfigure(config: Config) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        config.pluginmanager.unregister(reporter)


def _use_color(choice: str, out: IO[str]) -> bool:
    if choice != "auto":
        return choice == "yes"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return out.isatty() and os.environ.get("TERM") != "dumb"


class TerminalReporter:
    """Writes the run to the terminal; other plugins add lines through ``write_line``."""

    def __init__(self, config: Config, out: IO[str] | None = None) -> None:
        self.config = config
        self.out = out or sys.stdout
        self.verbosity = config.verbosity
        self.color = _use_color(str(config.getoption("color") or "auto"), self.out)
        self.width = shutil.get_terminal_size((80, 24)).columns
        self.total = 0
        self.done = 0
        self._column = 0
        self._pending: list[str] = []  # progress letters not written yet
        self._flushed = 0.0
        self.failed: list[Result] = []
        self.skipped: list[Result] = []

    # -- writing -----------------------------------------------------------------------

    def markup(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        codes = ";".join(str(_COLORS[s]) for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def write(self, text: str, *styles: str) -> None:
        self.out.write(self.markup(text, *styles))

    def write_line(self, text: str = "", *styles: str) -> None:
        self._end_progress_line()
        self.out.write(self.markup(text, *styles) + "\n")

    def sep(self, char: str, title: str = "", *styles: str) -> None:
        self._end_progress_line()
        if title:
            fill = max(self.width - len(title) - 2, 4) // 2
            line = f"{char * fill} {title} {char * fill}"
            if len(line) < self.width:
                line += char * (self.width - len(line))
        else:
            line = char * self.width
        self.out.write(self.markup(line, *styles) + "\n")

    def _end_progress_line(self) -> None:
        if self._column:
            self._write_percent()

    def _write_pending(self) -> None:
        if self._pending:
            self.out.write("".join(self._pending))
            self._pending.clear()

    def _write_percent(self) -> None:
        self._write_pending()
        percent = f"[{100 * self.done // max(self.total, 1):3d}%]"
        pad = self.width - self._column - len(percent)
        self.out.write(" " * max(pad, 1) + percent + "\n")
        self._column = 0

    # -- hooks -------------------------------------------------------------------------

    @hookimpl
    def fraiseql_sessionstart(self, session: Session) -> None:
        if self.verbosity < 0:
            return
        self.sep("=", "fraiseql-check session starts", "bold")
        self.write_line(
            f"platform {sys.platform} -- Python {platform.python_version()}, "
            f"fraiseql-checks {__version__}, pytest {PYTEST_VERSION}"
        )
        config = self.config
        configfile = f", configfile: {config.relpath(config.config_file)}" if config.config_file else ""
        self.write_line(f"rootdir: {config.rootdir}{configfile}")
        for lines in config.hook.fraiseql_report_header(config=config):
            for line in [lines] if isinstance(lines, str) else lines:
                self.write_line(line)

    @hookimpl
    def fraiseql_collection_finish(self, session: Session) -> None:
        self.total = len(session.checks) + len(session.collect_errors)
        if self.verbosity >= 0:
            collected = len(session.checks) + len(session.deselected)
            parts = [f"collected {collected} check{'s' if collected != 1 else ''}"]
            if session.collect_errors:
                parts.append(f"{len(session.collect_errors)} error{'s' if len(session.collect_errors) != 1 else ''}")
            if session.deselected:
                parts.append(f"{len(session.deselected)} deselected")
                parts.append(f"{len(session.checks)} selected")
            self.write_line(" / ".join(parts), "bold")
            self.write_line()
        if self.config.getoption("collectonly"):
            self._list(session.checks)

    def _list(self, checks: list[Check]) -> None:
        for check in checks:
            self.write_line(check.id)
            if self.verbosity < 0:
                continue
            meta = [
                f"severity={check.severity}",
                f"interval={format_duration(check.interval)}",
                f"timeout={format_duration(check.timeout)}",
            ]
            if check.tags:
                meta.append(f"tags={','.join(check.tags)}")
            if check.labels:
                meta.append("labels=" + ",".join(f"{k}={v}" for k, v in check.labels.items()))
            if check.runbook:
                meta.append(f"runbook={check.runbook}")
            if check.spec.owner:
                meta.append(f"owner={check.spec.owner}")
            if check.spec.slo:
                meta.append(f"slo={check.spec.slo}")
            self.write_line("    " + " ".join(meta))
            if check.description:
                self.write_line(f"    {check.description}")

    @hookimpl
    def fraiseql_report_result(self, result: Result) -> None:
        self.done += 1
        if result.outcome in (Outcome.FAILED, Outcome.ERROR):
            self.failed.append(result)
        elif result.outcome is Outcome.SKIPPED:
            self.skipped.append(result)
        if self.verbosity > 0:
            word = self.markup(_WORD[result.outcome], _COLOR_OF[result.outcome])
            percent = f"[{100 * self.done // max(self.total, 1):3d}%]"
            line = f"{result.id} {word}"
            visible = len(result.id) + 1 + len(_WORD[result.outcome])
            if result.outcome is Outcome.SKIPPED and result.message:
                line += f" ({result.message})"
                visible += len(result.message) + 3
            self.out.write(line + " " * max(self.width - visible - len(percent), 1) + percent + "\n")
            return
        if self.verbosity < -1:
            return
        self._pending.append(self.markup(_LETTER[result.outcome], _COLOR_OF[result.outcome]))
        self._column += 1
        if self._column >= self.width - 7:
            self._write_percent()
        now = time.monotonic()
        if now - self._flushed > 0.1:  # live progress without a write per check
            self._flushed = now
            self._write_pending()
            self.out.flush()

    @hookimpl
    def fraiseql_sessionfinish(self, session: Session, exitstatus: int) -> None:
        self._end_progress_line()
        if session.interrupted:
            self.sep("!", "KeyboardInterrupt: stopped; the results so far follow", "red")
        elif session.shouldstop:
            self.sep("!", session.shouldstop, "red")
        if self.verbosity >= -1:
            self._failure_sections()
            self._blocking_section(session)
            self.config.hook.fraiseql_terminal_summary(reporter=self, exitstatus=exitstatus)
            self._short_summary()
        summary = session.summary
        if summary.failed or summary.error or session.collect_errors or session.interrupted:
            color = "red"
        elif summary.passed:
            color = "green"
        else:
            color = "yellow"
        line = summary.line()
        if session.deselected:
            line = line.replace(" in ", f", {len(session.deselected)} deselected in ", 1)
        if self.config.getoption("collectonly"):
            line = f"{len(session.checks)} checks collected in {summary.duration_s:.2f}s"
        if self.verbosity < 0:
            self.write_line(line, color)
        else:
            self.sep("=", line, color, "bold")
        self.out.flush()

    def _failure_sections(self) -> None:
        collect = [r for r in self.failed if r.kind == "collect"]
        errors = [r for r in self.failed if r.kind != "collect"]
        tbstyle = self.config.getoption("tbstyle")
        if collect:
            self.sep("=", "ERRORS", "red")
            for result in collect:
                self.sep("_", f"ERROR collecting {result.id}", "red")
                self.write_line(result.message)
                if result.longrepr and tbstyle != "no":
                    self.write_line(result.longrepr)
        if errors:
            self.sep("=", "FAILURES", "red")
            for result in errors:
                self.sep("_", result.name if result.kind == "check" else result.id, "red")
                if result.longrepr and tbstyle not in ("no", "line"):
                    self.write_line(result.longrepr)
                else:
                    self.write_line(f"E   {result.message}")
                for stream in ("stdout", "stderr"):
                    text = getattr(result, stream)
                    if text:
                        self.sep("-", f"Captured {stream}")
                        self.write_line(text.rstrip("\n"))
                details = []
                if result.trace_id:
                    details.append(f"trace_id={result.trace_id}")
                details.extend(f"{k}={v:g}" for k, v in result.values.items())
                if details:
                    self.write_line("  ".join(details), "cyan")

    def _blocking_section(self, session: Session) -> None:
        if not session.blocking:
            return
        self.sep("=", "blocking the event loop", "yellow")
        for check_id, (count, longest) in sorted(session.blocking.items()):
            who = check_id or "code outside any check"
            times = "" if count == 1 else f" ({count} times)"
            self.write_line(f"{who} held the event loop for {longest:.2f}s{times}")
        self.write_line(
            "CPU work or a blocking call in an async def delays every other check; run it in a thread"
            " (await asyncio.to_thread(...)) or make the check a plain def"
        )

    def _short_summary(self) -> None:
        lines = []
        for result in self.failed:
            first = (result.message.strip().splitlines() or [""])[0]
            lines.append((_WORD[result.outcome], f"{result.id} - {first}"))
        if self.verbosity >= 0:
            reasons = Counter((r.id.split("::")[0], r.message) for r in self.skipped)
            for (where, reason), count in reasons.items():
                lines.append(("SKIPPED", f"[{count}] {where}: {reason}"))
        if not lines:
            return
        self.sep("=", "short check summary info", "cyan")
        for word, text in lines:
            color = "yellow" if word == "SKIPPED" else "red"
            self.write_line(f"{self.markup(word, color)} {text}")
