"""Capturing what checks print, as pytest does: shown with their failure, masked.

While checks run, ``sys.stdout`` and ``sys.stderr`` are replaced by writers that
send text to the running check's context (a context variable, so it follows a
sync check onto its worker thread) and everything else to the real stream. With
``-s`` (``--capture=no``) nothing is held back, but secrets are still masked on
their way to the terminal.
"""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING, Any

from fraiseql_checks.config import Config, Parser
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.trace import current_run

if TYPE_CHECKING:
    from fraiseql_checks.core.session import Session


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addoption(
        "--capture",
        dest="capture",
        choices=("sys", "no"),
        default="sys",
        help="'sys' (default): keep what a check prints with its result; 'no': print it as it comes",
        group="output",
    )
    parser.addoption(
        "-s", dest="capture", action="store_const", const="no", help="shortcut for --capture=no", group="output"
    )


class CheckOutput:
    """A stand-in for ``sys.stdout`` or ``sys.stderr`` during a run."""

    def __init__(self, stream: IO[str], name: str, config: Config, capture: bool) -> None:
        self._stream = stream
        self._name = name
        self._mask = config.mask
        self._capture = capture

    def write(self, text: str) -> int:
        run = current_run.get()
        if run is not None and self._capture:
            run.capture(self._name, text)
        else:
            self._stream.write(self._mask(text) if run is not None else text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding... of the real stream
        return getattr(self._stream, name)


class Capture:
    """Installed for the session, removed when it ends."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._saved: tuple[Any, Any] | None = None

    @hookimpl(tryfirst=True)
    def fraiseql_sessionstart(self, session: Session) -> None:
        capture = self.config.getoption("capture", "sys") != "no"
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout = CheckOutput(sys.stdout, "stdout", self.config, capture)
        sys.stderr = CheckOutput(sys.stderr, "stderr", self.config, capture)

    @hookimpl(trylast=True)
    def fraiseql_sessionfinish(self, session: Session, exitstatus: int) -> None:
        if self._saved is not None:
            sys.stdout, sys.stderr = self._saved
            self._saved = None


@hookimpl
def fraiseql_configure(config: Config) -> None:
    config.pluginmanager.register(Capture(config), "capture-manager")


@hookimpl
def fraiseql_unconfigure(config: Config) -> None:
    manager = config.pluginmanager.get_plugin("capture-manager")
    if manager is not None:
        manager.fraiseql_sessionfinish(None, 0)
        config.pluginmanager.unregister(manager)
