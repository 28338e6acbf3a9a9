"""SIGHUP re-reads the config file: a real watcher applies what can change, says what changed,
refuses a bad file whole and names what needs a restart."""

from __future__ import annotations

import datetime
import re
import signal
import sqlite3
from collections.abc import Callable

import psutil

from fraiseql_checks.stores import sqlite_writer
from tests.support.checkdir import CheckDir
from tests.support.watcher import WatchProcess

Watch = Callable[..., WatchProcess]
CHECK = "checks/check_disk.py::check_disk"
#: Passes only once the config lowers the threshold below its declared default (15).
CHECK_FILE = """
from fraiseql_checks import check

@check(interval="200ms")
def check_disk(config):
    bound = config.threshold("host.disk_free_min_percent")
    assert bound <= 10, f"bound {bound:g}"
"""
BASE = "start_jitter: 50ms\nworkers: 1\n"
LOWERED = BASE + "thresholds:\n  host.disk_free_min_percent: 5\n"


def lines(stdout: str, level: str, start: str) -> list[str]:
    """The log lines at ``level`` whose message starts with ``start`` (messages only)."""
    found = []
    for line in stdout.splitlines():
        match = re.match(r"\S+Z ([A-Z]+) (.*)", line)
        if match and match[1] == level and match[2].startswith(start):
            found.append(match[2])
    return found


def reloads(watcher: WatchProcess, result: str) -> float:
    return watcher.value("fraiseql_check_reloads_total", result=result) or 0.0


def window_around_now() -> str:
    now = datetime.datetime.now(datetime.UTC)
    start = (now - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (now + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"maintenance:\n  - checks: ['checks/*']\n    start: '{start}'\n    end: '{end}'\n    reason: upgrade\n"


def test_sighup_applies_a_new_threshold_and_maintenance_window_and_says_what_changed(
    checkdir: CheckDir, watch: Watch
) -> None:
    checkdir.write("fraiseql-checks.yaml", BASE)
    checkdir.write("checks/check_disk.py", CHECK_FILE)
    watcher = watch()
    watcher.wait_for(lambda s: watcher.runs(CHECK, "failed") >= 1, what="the check to fail on the default bound")
    assert watcher.value("fraiseql_check_silenced", check=CHECK) == 0

    checkdir.write(
        "fraiseql-checks.yaml",
        LOWERED + window_around_now() + "alertmanager:\n  smtp_auth_password: hunter2-is-secret\n",
    )
    watcher.send(signal.SIGHUP)
    watcher.wait_for(lambda s: reloads(watcher, "success") == 1, what="the reload")
    # the worker runs the check on the new threshold; the watcher silences it by the new window
    watcher.wait_for(lambda s: watcher.value("fraiseql_check_up", check=CHECK) == 1, what="the check to pass")
    assert watcher.value("fraiseql_check_silenced", check=CHECK) == 1

    checkdir.write("fraiseql-checks.yaml", LOWERED)  # the window goes: the check is silenced no more
    watcher.send(signal.SIGHUP)
    watcher.wait_for(lambda s: reloads(watcher, "success") == 2, what="the second reload")
    watcher.wait_for(lambda s: watcher.value("fraiseql_check_silenced", check=CHECK) == 0, what="the window to go")
    assert watcher.stop() == 0
    assert lines(watcher.stdout, "INFO", "config fraiseql-checks.yaml:") == [
        "config fraiseql-checks.yaml: alertmanager.smtp_auth_password added: ***",
        "config fraiseql-checks.yaml: maintenance added: 1 item",
        "config fraiseql-checks.yaml: thresholds.host.disk_free_min_percent added: 5",
        "config fraiseql-checks.yaml: alertmanager.smtp_auth_password removed",
        "config fraiseql-checks.yaml: maintenance removed",
    ]
    assert "hunter2-is-secret" not in watcher.stdout + watcher.stderr
    assert lines(watcher.stdout, "WARNING", "config") == []


def test_sighup_names_each_changed_key_of_a_table_and_masks_secrets(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write(
        "fraiseql-checks.yaml",
        LOWERED + "alertmanager:\n  smtp_auth_password: first-secret-value\n  email_to: ops@example.org\n",
    )
    checkdir.write("checks/check_disk.py", CHECK_FILE)
    watcher = watch()
    watcher.wait_for(lambda s: watcher.runs(CHECK) >= 1, what="the check to pass on the lowered bound")

    checkdir.write(
        "fraiseql-checks.yaml",
        "workers: 1\n"
        + "thresholds:\n  host.disk_free_min_percent: 20\n  cache.ping_max_seconds: 0.5\n"
        + "alertmanager:\n  smtp_auth_password: second-secret-value\n"
        + "start_jitter: 0\n",
    )
    watcher.send(signal.SIGHUP)
    watcher.wait_for(lambda s: reloads(watcher, "success") == 1, what="the reload")
    watcher.wait_for(lambda s: watcher.value("fraiseql_check_up", check=CHECK) == 0, what="the raised bound to fail")
    watcher.send(signal.SIGHUP)  # the same file again
    watcher.wait_for(lambda s: reloads(watcher, "success") == 2, what="the second reload")
    assert watcher.stop() == 0
    assert lines(watcher.stdout, "INFO", "config fraiseql-checks.yaml:") == [
        "config fraiseql-checks.yaml: alertmanager.email_to removed",
        "config fraiseql-checks.yaml: alertmanager.smtp_auth_password changed: *** -> ***",
        "config fraiseql-checks.yaml: start_jitter changed: 50ms -> 0",
        "config fraiseql-checks.yaml: thresholds.cache.ping_max_seconds added: 0.5",
        "config fraiseql-checks.yaml: thresholds.host.disk_free_min_percent changed: 5 -> 20",
        "config fraiseql-checks.yaml: no change",
    ]
    assert "secret-value" not in watcher.stdout + watcher.stderr


def test_a_bad_config_is_refused_in_one_line_and_the_watcher_keeps_the_old_one(
    checkdir: CheckDir, watch: Watch
) -> None:
    checkdir.write("fraiseql-checks.yaml", LOWERED)
    checkdir.write("checks/check_disk.py", CHECK_FILE)
    watcher = watch()
    watcher.wait_for(lambda s: watcher.runs(CHECK) >= 1, what="the check to pass on the lowered bound")

    broken = [
        BASE + "thresholds: [\n",  # invalid YAML
        BASE + "failure_threshold: 0\n",  # a bad value
        BASE + "thresholdz:\n  host.disk_free_min_percent: 50\n",  # an unknown key
    ]
    for count, text in enumerate(broken, 1):
        checkdir.write("fraiseql-checks.yaml", text)
        watcher.send(signal.SIGHUP)
        watcher.wait_for(lambda s, n=count: reloads(watcher, "failure") == n, what=f"refused reload {count}")
    # still on the lowered bound: the check keeps passing, and it runs on after the reloads
    passed = watcher.runs(CHECK)
    watcher.wait_for(lambda s: watcher.runs(CHECK) >= passed + 2, what="the check to keep passing")
    assert watcher.runs(CHECK, "failed") == 0

    # a worker started now is configured as the watcher runs, not from the broken file on disk
    children = psutil.Process(watcher.process.pid).children()
    (worker,) = [child for child in children if sqlite_writer.BOOTSTRAP not in child.cmdline()]  # not the store's
    worker.kill()
    watcher.wait_for(
        lambda s: any(k[0] == "fraiseql_check_worker_restarts_total" and v >= 1 for k, v in s.items()),
        what="the worker to be replaced",
    )
    passed = watcher.runs(CHECK)
    watcher.wait_for(lambda s: watcher.runs(CHECK) >= passed + 2, what="the replaced worker to run the check")
    assert watcher.runs(CHECK, "failed") == 0
    assert watcher.stop() == 0

    refused = lines(watcher.stdout, "ERROR", "config not reloaded")
    assert len(refused) == 3, watcher.stdout
    prefix = "config not reloaded, still running on the previous one: "
    assert refused[0].startswith(prefix) and "invalid YAML" in refused[0]
    assert refused[1].startswith(prefix + "fraiseql-checks.yaml: failure_threshold: expected a whole number")
    assert refused[2] == prefix + "fraiseql-checks.yaml: unknown key 'thresholdz' (did you mean 'thresholds'?)"
    assert lines(watcher.stdout, "INFO", "config fraiseql-checks.yaml:") == []


def test_settings_read_only_at_start_are_named_in_one_warning_and_keep_their_value(
    checkdir: CheckDir, watch: Watch
) -> None:
    checkdir.write("fraiseql-checks.yaml", BASE)
    checkdir.write("checks/check_disk.py", CHECK_FILE)
    watcher = watch()
    watcher.wait_for(lambda s: watcher.runs(CHECK, "failed") >= 1, what="the first run")

    checkdir.write("fraiseql-checks.yaml", LOWERED.replace("workers: 1", "workers: 2") + "store: elsewhere.db\n")
    watcher.send(signal.SIGHUP)
    watcher.wait_for(lambda s: reloads(watcher, "success") == 1, what="the reload")
    watcher.wait_for(lambda s: watcher.value("fraiseql_check_up", check=CHECK) == 1, what="the new threshold")
    assert watcher.stop() == 0

    assert lines(watcher.stdout, "WARNING", "config") == [
        "config fraiseql-checks.yaml: needs a restart: store, workers (the previous values stay)"
    ]
    assert lines(watcher.stdout, "INFO", "config fraiseql-checks.yaml:") == [
        "config fraiseql-checks.yaml: thresholds.host.disk_free_min_percent added: 5"
    ]
    assert not (checkdir.path / "elsewhere.db").exists()
    with sqlite3.connect(checkdir.path / ".fraiseql-checks" / "results.db") as conn:
        (passed,) = conn.execute("SELECT count(*) FROM results WHERE outcome = 'passed'").fetchone()
    assert passed >= 1  # results after the reload still go to the store the watcher started with


def test_a_config_file_made_after_the_start_needs_a_restart(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("checks/check_disk.py", CHECK_FILE)
    watcher = watch("--workers", "1")
    watcher.wait_for(lambda s: watcher.runs(CHECK, "failed") >= 1, what="the first run")

    checkdir.write("fraiseql-checks.yaml", LOWERED)  # would move the root folder the check ids start from
    watcher.send(signal.SIGHUP)
    watcher.wait_for(lambda s: reloads(watcher, "success") == 1, what="the reload")
    failed = watcher.runs(CHECK, "failed")
    watcher.wait_for(lambda s: watcher.runs(CHECK, "failed") >= failed + 2, what="the check to fail on as before")
    assert watcher.stop() == 0
    assert lines(watcher.stdout, "WARNING", "config") == [
        "config fraiseql-checks.yaml: was not there at start: needs a restart"
    ]
