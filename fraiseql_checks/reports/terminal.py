"""The terminal reporter: progress, failure sections and the final line, as pytest prints them."""

from __future__ import annotations

import os
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
from fraiseql_checks.result import Outcome, Result, plural

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
    parser.addoption(
        "--durations",
        metavar="N",
        type=int,
        default=None,
        help="show the N slowest set-up, check and teardown durations (N=0 for all)",
        group="output",
    )
    parser.addoption(
        "--durations-min",
        metavar="N",
        type=float,
        default=None,
        help="shortest duration in seconds the slowest list shows (default: 0.005, or 0.0 with -vv)",
        group="output",
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
        self.set_color(_use_color(str(config.getoption("color") or "auto"), self.out))
        self.width = shutil.get_terminal_size((80, 24)).columns
        self.total = 0
        self.done = 0
        self._column = 0
        self._pending: list[str] = []  # progress letters not written yet
        #: Where the progress line ends: the letters, then a space and ``[ 42%]``.
        self._last_column = self.width - 7
        self._flushed = 0.0
        self.failed: list[Result] = []
        self.skipped: list[Result] = []
        #: Every result, kept only for ``--durations``.
        self.results: list[Result] = []
        self._keep_all = config.getoption("durations") is not None
        #: Each selected check's place in the collection: sections list results in it.
        self._order: dict[str, int] = {}

    # -- writing -----------------------------------------------------------------------

    def set_color(self, color: bool) -> None:
        """Colour the output or not; each outcome's progress letter is made once, here."""
        self.color = color
        self._letters = {outcome: self.markup(_LETTER[outcome], _COLOR_OF[outcome]) for outcome in Outcome}

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
        import platform  # for the header line only: a -q run does not print it, nor import it

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
        self._order = {check.id: index for index, check in enumerate(session.checks)}
        if self.verbosity >= 0:
            collected = len(session.checks) + len(session.deselected)
            parts = [f"collected {collected} check{'s' if collected != 1 else ''}"]
            if session.collect_errors:
                parts.append(f"{len(session.collect_errors)} error{'s' if len(session.collect_errors) != 1 else ''}")
            if session.deselected:
                parts.append(f"{len(session.deselected)} deselected")
                parts.append(f"{len(session.checks)} selected")
            self.write_line(" / ".join(parts), "bold")
            for lines in self.config.hook.fraiseql_report_collectionfinish(config=self.config, session=session):
                for line in [lines] if isinstance(lines, str) else lines:
                    self.write_line(line)
            self.write_line()
        if self.config.getoption("collectonly"):
            self._list(session.checks)

    def _list(self, checks: list[Check]) -> None:
        if self.verbosity < 0:  # ids only: one write for them all
            self._end_progress_line()
            self.out.write("".join(f"{check.id}\n" for check in checks))
            return
        for check in checks:
            self.write_line(check.id)
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
        if self._keep_all:
            self.results.append(result)
        outcome = result.outcome
        if outcome is not Outcome.PASSED:
            if outcome is Outcome.SKIPPED:
                self.skipped.append(result)
            else:
                self.failed.append(result)
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
        self._pending.append(self._letters[outcome])
        self._column += 1
        if self._column >= self._last_column:
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
        if self.verbosity >= -1:
            self._failure_sections()
            self._blocking_section(session)
            self._durations()
            self.config.hook.fraiseql_terminal_summary(reporter=self, exitstatus=exitstatus)
            self._short_summary()
        if session.shouldstop and not session.interrupted:
            self.sep("!", session.shouldstop, "red")
        summary = session.summary
        if summary.failed or summary.error or session.collect_errors or session.interrupted:
            color = "red"
        elif summary.passed:
            color = "green"
        else:
            color = "yellow"
        line = summary.line(deselected=len(session.deselected))
        if self.config.getoption("collectonly"):
            count = len(session.checks)
            line = f"{count} {plural(count, 'check')} collected in {summary.duration_s:.2f}s"
        if self.verbosity < 0:
            self.write_line(line, color)
        else:
            self.sep("=", line, color, "bold")
        self.out.flush()

    def in_collection_order(self, results: list[Result]) -> list[Result]:
        """``results`` as pytest lists them: files that did not collect, then checks in
        the order they were collected (not the order they finished), then teardowns."""
        rank = {"collect": 0, "check": 1}
        last = len(self._order)
        return sorted(results, key=lambda r: (rank.get(r.kind, 2), self._order.get(r.id, last)))

    def _failure_sections(self) -> None:
        ordered = self.in_collection_order(self.failed)
        errors = [r for r in ordered if r.outcome is Outcome.ERROR]
        failures = [r for r in ordered if r.outcome is Outcome.FAILED]
        if errors:
            self.sep("=", "ERRORS", "red")
            for result in errors:
                if result.kind == "collect":
                    self.sep("_", f"ERROR collecting {result.id}", "red")
                    self.write_line(result.message)
                    if result.longrepr and self.config.getoption("tbstyle") != "no":
                        self.write_line(result.longrepr)
                    continue
                when = "teardown" if result.kind == "teardown" else result.when
                self.sep("_", f"ERROR at {when} of {result.name}", "red")
                self._failure_body(result)
        if failures:
            self.sep("=", "FAILURES", "red")
            for result in failures:
                self.sep("_", result.name, "red")
                self._failure_body(result)

    def _failure_body(self, result: Result) -> None:
        if result.longrepr and self.config.getoption("tbstyle") not in ("no", "line"):
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

    def _durations(self) -> None:
        """``--durations N``: the slowest phases, as pytest's ``slowest N durations``."""
        durations = self.config.getoption("durations")
        if durations is None:
            return
        given_min = self.config.getoption("durations_min")
        durations_min = given_min if given_min is not None else (0.005 if self.verbosity < 2 else 0.0)
        timings = [
            (seconds, when, result.id)
            for result in self.in_collection_order(self.results)
            for when, seconds in result.phases.items()
        ]
        if not timings:
            return
        timings.sort(key=lambda timing: timing[0], reverse=True)
        if durations > 0:
            self.sep("=", f"slowest {durations} durations")
            timings = timings[:durations]
        else:
            self.sep("=", "slowest durations")
        for index, (seconds, when, check_id) in enumerate(timings):
            if seconds < durations_min:
                self.write_line()
                hint = "  Use -vv to show these durations." if given_min is None else ""
                self.write_line(f"({len(timings) - index} durations < {durations_min:g}s hidden.{hint})")
                break
            self.write_line(f"{seconds:02.2f}s {when:<8} {check_id}")

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
        ordered = self.in_collection_order(self.failed)
        lines = [
            (_WORD[result.outcome], f"{result.id} - {summary_message(result)}")
            for outcome in (Outcome.FAILED, Outcome.ERROR)
            for result in ordered
            if result.outcome is outcome
        ]
        if self.verbosity >= 0:
            reasons = Counter((r.id.split("::")[0], r.message) for r in self.in_collection_order(self.skipped))
            for (where, reason), count in reasons.items():
                lines.append(("SKIPPED", f"[{count}] {where}: {reason}"))
        if not lines:
            return
        self.sep("=", "short check summary info", "cyan")
        for word, text in lines:
            color = "yellow" if word == "SKIPPED" else "red"
            self.write_line(f"{self.markup(word, color)} {text}")


def summary_message(result: Result) -> str:
    """The first line of what went wrong, as pytest's short summary words it: a failed
    ``assert`` as it reads (``assert 1 == 2``), an assertion's own message after its
    class (``AssertionError: disk almost full``), ``pytest.fail()`` as ``Failed: ...``."""
    first = (result.message.strip().splitlines() or [""])[0]
    if result.outcome is Outcome.FAILED and result.exc_type in ("AssertionError", "Failed"):
        if not (result.exc_type == "AssertionError" and first.startswith("assert ")) and first != result.exc_type:
            return f"{result.exc_type}: {first}"
    return first
