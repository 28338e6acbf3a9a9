"""Watch mode's log lines: a level each, as text or as one JSON object per line.

``--log-format text`` (default): ``2026-01-31T10:00:00Z INFO watching 3 checks ...``.
``--log-format json``: ``{"time": ..., "level": "info", "logger": ..., "message": ...,
<extra fields>}``, one object per line (a traceback stays inside its message), for
Loki, Elasticsearch or ``jq``. ``--log-level`` (default ``info``) drops what is below it.
Records of Python's ``logging`` under ``fraiseql_checks`` (the API's, plugins') come out
the same way, through ``Forward``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

#: The levels, as ``--log-level`` and the lines spell them.
LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
FORMATS = ("text", "json")
#: The logger the watcher's own lines are written as.
WATCHER = "fraiseql_checks.watch"
#: Where ``Forward`` listens: every logger of the package.
PACKAGE = "fraiseql_checks"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: What ``logging.LogRecord`` holds besides ``extra=`` fields.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def level_name(level: int) -> str:
    """``info``, ``warning``, ... (a level between two takes the lower name)."""
    found = "debug"
    for name, number in LEVELS.items():
        if level >= number:
            found = name
    return found


def format_line(
    level: int, message: str, *, logger: str = WATCHER, fields: Mapping[str, Any] | None = None, as_json: bool
) -> str:
    """One log line, with its newline."""
    import datetime  # imported by the first line logged, not at every start

    now = datetime.datetime.now(datetime.UTC)
    if as_json:
        entry: dict[str, Any] = {
            "time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level_name(level),
            "logger": logger,
            "message": _ANSI.sub("", message),
        }
        for key, value in (fields or {}).items():
            entry.setdefault(key, value)
        return json.dumps(entry, ensure_ascii=False, default=str) + "\n"
    return f"{now.strftime('%Y-%m-%dT%H:%M:%SZ')} {level_name(level).upper()} {message}\n"


class Forward(logging.Handler):
    """Sends the package's ``logging`` records to the watcher's log (``write(level, message,
    logger, fields)``), their ``extra=`` fields kept; installed while the watcher runs."""

    def __init__(self, write: Callable[[int, str, str, dict[str, Any]], None], level: int) -> None:
        super().__init__(level)
        self._write = write
        self._level_before: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            fields = {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS and not k.startswith("_")}
            self._write(record.levelno, message, record.name, fields)
        except Exception:
            self.handleError(record)

    def install(self) -> None:
        logger = logging.getLogger(PACKAGE)
        logger.addHandler(self)
        if logger.level == logging.NOTSET or logger.level > self.level:
            self._level_before = logger.level
            logger.setLevel(self.level)

    def remove(self) -> None:
        logger = logging.getLogger(PACKAGE)
        logger.removeHandler(self)
        if self._level_before is not None:  # as it was before ``install``
            logger.setLevel(self._level_before)
            self._level_before = None
