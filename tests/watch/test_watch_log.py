"""Watch mode's log: a level on every line, ``--log-level``, and ``--log-format json``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from tests.support.checkdir import CheckDir
from tests.support.watcher import WatchProcess

Watch = Callable[..., WatchProcess]
FAILING = "def check_down():\n    assert 1 == 2, 'down'\n"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def run_until_failing(checkdir: CheckDir, watch: Watch, *args: str) -> WatchProcess:
    checkdir.write("fraiseql-checks.yaml", "start_jitter: 50ms\n")
    checkdir.write("checks/check_down.py", FAILING)
    watcher = watch("--workers", "1", *args)
    watcher.wait_for(lambda _: watcher.runs("checks/check_down.py::check_down", "failed") >= 1, what="a failed run")
    assert watcher.stop() == 0
    return watcher


def test_text_lines_show_their_level(checkdir: CheckDir, watch: Watch) -> None:
    watcher = run_until_failing(checkdir, watch)
    lines = [line for line in watcher.stdout.splitlines() if TIME.match(line.split(" ", 1)[0])]
    levels = {line.split(" ")[1] for line in lines}
    assert levels <= {"DEBUG", "INFO", "WARNING", "ERROR"}, lines
    assert any(line.split(" ")[1] == "INFO" and "watching 1 check" in line for line in lines), lines
    (failing,) = [line for line in lines if "-> FAILING" in line]
    assert failing.split(" ")[1] == "WARNING"


def test_log_level_warning_drops_info_lines(checkdir: CheckDir, watch: Watch) -> None:
    watcher = run_until_failing(checkdir, watch, "--log-level", "warning")
    logged = [line for line in watcher.stdout.splitlines() if TIME.match(line.split(" ", 1)[0])]
    assert [line.split(" ")[1] for line in logged] == ["WARNING"], logged
    assert "unknown -> FAILING" in logged[0]


def test_json_log_is_one_object_per_line(checkdir: CheckDir, watch: Watch) -> None:
    watcher = run_until_failing(checkdir, watch, "--log-format", "json", "--color", "yes")
    entries = [json.loads(line) for line in watcher.stdout.splitlines()]  # every line, the header too
    assert entries
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry), entry
        assert TIME.match(entry["time"]) and entry["level"] in {"debug", "info", "warning", "error"}
        assert "\x1b[" not in entry["message"]
    (change,) = [e for e in entries if e.get("state") == "failing"]
    assert change["level"] == "warning"
    assert change["check"] == "checks/check_down.py::check_down"
    assert change["previous"] == "unknown" and change["silenced"] is False
    assert "down" in change["message"]
    assert any(e["message"].startswith("watching 1 check") and e["level"] == "info" for e in entries)


def test_bad_log_options_are_one_line_and_exit_4(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_down.py", FAILING)
    result = checkdir.run("--watch", "--log-format", "xml")
    assert result.ret == 4
    assert result.stderr.splitlines() == [
        "ERROR: argument --log-format: invalid choice: 'xml' (choose from 'text', 'json')"
    ]
