"""``fraiseql-check --watch`` end to end: a real watcher process, its /metrics, its store, signals."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.checkdir import CheckDir
from tests.support.services import prometheus, require_binary, wait_until
from tests.support.watcher import Samples, WatchProcess

Watch = Callable[..., WatchProcess]
FAST = "start_jitter: 50ms\n"


def stored(checkdir: CheckDir, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(checkdir.path / ".fraiseql-checks" / "results.db") as conn:
        return conn.execute(sql).fetchall()


def test_prometheus_scrapes_up_for_a_passing_and_a_failing_check(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST + "notify:\n  runbook_base_url: https://git.example.org/ops/\n")
    checkdir.write(
        "checks/check_site.py",
        """
        from fraiseql_checks import check, record

        @check(interval="500ms", severity="critical", runbook="docs/runbooks/site.md")
        def check_home_page():
            record("latency_seconds", 0.125)

        @check(interval="500ms")
        async def check_login():
            assert "token" == "no token"
        """,
    )
    watcher = watch()
    with prometheus([watcher.address]) as server:

        def both_scraped() -> dict[str, str] | None:
            found = {r["metric"]["check"]: r["value"][1] for r in server.query("fraiseql_check_up")}  # type: ignore[index]
            return found if len(found) == 2 else None

        up = wait_until(both_scraped, timeout=60, every=0.25, what="Prometheus to scrape both checks")
        assert up == {"checks/check_site.py::check_home_page": "1", "checks/check_site.py::check_login": "0"}
        (value,) = server.query('fraiseql_check_value{name="latency_seconds"}')
        assert value["value"][1] == "0.125"  # type: ignore[index]
        (info,) = server.query('fraiseql_check_info{severity="critical"}')
        # the link the alerts and dashboards give: joined to notify.runbook_base_url
        assert info["metric"]["runbook"] == "https://git.example.org/ops/docs/runbooks/site.md"  # type: ignore[index]
        (state,) = server.query("fraiseql_check_state == 1")
        assert state["metric"]["check"] == "checks/check_site.py::check_login"  # type: ignore[index]
    assert watcher.stop() == 0


def test_promtool_accepts_the_live_page_and_the_probes_answer(checkdir: CheckDir, watch: Watch) -> None:
    promtool = require_binary("promtool")
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write("checks/check_one.py", "def check_one():\n    pass\n")
    watcher = watch()
    watcher.wait_for(lambda s: s.get(("fraiseql_check_up", (("check", "checks/check_one.py::check_one"),))))
    done = subprocess.run([promtool, "check", "metrics"], input=watcher.metrics_text(), capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert watcher.get("/healthz") == (200, "ok\n")
    assert watcher.get("/readyz") == (200, "ready\n")
    status, body = watcher.get("/nope")
    assert status == 404 and "/metrics" in body
    assert watcher.stop() == 0


#: A check that takes 1.5 s, as an ``async def`` (a task in its worker) and as a ``def``
#: without fixtures (a run without a task: ``Runner.start_sync``).
SLOW_RUNS = {"async def": "await asyncio.sleep(1.5)", "def": "time.sleep(1.5)"}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("kind", SLOW_RUNS)
def test_a_stop_signal_lets_running_checks_finish_flushes_the_store_and_exits_0(
    checkdir: CheckDir, watch: Watch, signum: int, kind: str
) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_slow.py",
        f"""
        import asyncio, time
        from fraiseql_checks import check

        @check(interval="1h", timeout="30s")
        {kind} check_slow():
            {SLOW_RUNS[kind]}
        """,
    )
    watcher = watch()
    watcher.wait_for(lambda s: s.get(("fraiseql_check_runs_in_progress", ())) == 1, what="the slow run to start")
    assert watcher.stop(signum) == 0
    assert "stopping: no new runs" in watcher.stdout
    assert "stopped after 1 run of 1 check;" in watcher.stdout, watcher.stdout
    rows = stored(checkdir, "SELECT check_id, outcome, duration_s FROM results")
    assert [(check_id, outcome) for check_id, outcome, _ in rows] == [("checks/check_slow.py::check_slow", "passed")]
    assert float(rows[0][2]) >= 1.5  # type: ignore[arg-type]  # it ran to the end, it was not cut short


def test_a_stop_signal_starts_none_of_the_runs_still_waiting_for_a_slot(checkdir: CheckDir, watch: Watch) -> None:
    """Stopping lets the runs under way finish, but a run still waiting for a concurrency
    slot has not started: it is dropped, not started after the signal."""
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_slow.py",
        """
        import asyncio
        from fraiseql_checks import check

        @check(interval="1h", timeout="30s")
        async def check_first():
            await asyncio.sleep(1.5)

        @check(interval="1h", timeout="30s")
        async def check_second():
            await asyncio.sleep(1.5)
        """,
    )
    watcher = watch("--concurrency", "1")
    watcher.wait_for(
        lambda s: s.get(("fraiseql_check_runs_in_progress", ())) == 2, what="one run going and one waiting for the slot"
    )
    assert watcher.stop() == 0
    assert "stopped after 1 run of 2 checks;" in watcher.stdout, watcher.stdout
    assert len(stored(checkdir, "SELECT check_id FROM results")) == 1


@pytest.mark.parametrize("kind", ["async def", "def"])
def test_a_second_stop_signal_cancels_running_checks(checkdir: CheckDir, watch: Watch, kind: str) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    wait = "await asyncio.sleep(3600)" if kind == "async def" else "time.sleep(3600)"
    checkdir.write(
        "checks/check_slow.py",
        f"""
        import asyncio, time
        from fraiseql_checks import check

        @check(interval="1h", timeout="1h")
        {kind} check_forever():
            {wait}
        """,
    )
    watcher = watch()
    watcher.wait_for(lambda s: s.get(("fraiseql_check_runs_in_progress", ())) == 1, what="the run to start")
    watcher.send(signal.SIGTERM)
    wait_until(lambda: watcher.get("/readyz")[0] == 503, what="/readyz to say it is stopping")
    assert watcher.stop(signal.SIGTERM) == 0
    assert "stopping now: cancelling running checks" in watcher.stdout


def test_sighup_reloads_keeping_state_and_the_previous_version_of_a_broken_file(
    checkdir: CheckDir, watch: Watch
) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_a.py", 'from fraiseql_checks import check\n\n@check(interval="200ms")\ndef check_a():\n    pass\n'
    )
    checkdir.write(
        "checks/check_b.py", 'from fraiseql_checks import check\n\n@check(interval="200ms")\ndef check_b():\n    pass\n'
    )
    watcher = watch()
    a, b, b2 = "checks/check_a.py::check_a", "checks/check_b.py::check_b", "checks/check_b.py::check_b2"
    watcher.wait_for(lambda s: watcher.runs(a) >= 2 and watcher.runs(b) >= 2)
    b_before = watcher.runs(b)

    checkdir.write("checks/check_a.py", "def check_a(:\n")  # no longer imports
    checkdir.write(
        "checks/check_b.py",
        'from fraiseql_checks import check\n\n@check(interval="200ms")\ndef check_b():\n    pass\n\n'
        '@check(interval="200ms")\ndef check_b2():\n    assert False, "new and failing"\n',
    )
    watcher.send(signal.SIGHUP)

    def reloaded(samples: Samples) -> bool:
        return samples.get(("fraiseql_check_collection_errors", ())) == 1 and (
            ("fraiseql_check_up", (("check", b2),)) in samples
        )

    watcher.wait_for(reloaded, what="the reload")
    a_after_reload = watcher.runs(a)
    assert watcher.runs(b) >= b_before  # counters (and state) carried over, not reset
    watcher.wait_for(lambda s: watcher.runs(a) > a_after_reload + 2, what="the previous check_a to keep running")
    assert watcher.value("fraiseql_check_reloads_total", result="failure") == 1
    assert watcher.value("fraiseql_check_up", check=b2) == 0

    checkdir.write(
        "checks/check_a.py", 'from fraiseql_checks import check\n\n@check(interval="200ms")\ndef check_a():\n    pass\n'
    )
    watcher.send(signal.SIGHUP)
    watcher.wait_for(lambda s: s.get(("fraiseql_check_collection_errors", ())) == 0, what="the second reload")
    assert watcher.value("fraiseql_check_reloads_total", result="success") == 1
    assert watcher.stop() == 0
    assert "ERROR collecting checks/check_a.py: error importing check module: SyntaxError" in watcher.stdout
    assert f"{b2} unknown -> FAILING" in watcher.stdout
    assert "reloaded; 1 checks keep their previous version" in watcher.stdout
    errors = stored(checkdir, "SELECT check_id, kind FROM results WHERE kind = 'collect'")
    assert errors == [("checks/check_a.py", "collect")]


def test_a_check_that_raises_hangs_or_blocks_does_not_stop_the_others(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_faults.py",
        """
        import asyncio, time
        from fraiseql_checks import check

        @check(interval="100ms")
        def check_healthy():
            pass

        @check(interval="300ms")
        def check_raises():
            raise ConnectionResetError("peer went away")

        @check(interval="300ms", timeout="300ms")
        async def check_hangs():
            await asyncio.sleep(3600)

        @check(interval="300ms", timeout="300ms")
        def check_hangs_in_a_thread():
            time.sleep(3600)

        @check(interval="300ms", timeout="300ms")
        async def check_blocks_the_loop():
            time.sleep(3600)
        """,
    )
    watcher = watch()
    ids = {
        name: f"checks/check_faults.py::check_{name}"
        for name in ("healthy", "raises", "hangs", "hangs_in_a_thread", "blocks_the_loop")
    }

    def faults_seen_twice(samples: Samples) -> bool:
        return all(
            watcher.runs(ids[n], "error") >= 2 for n in ("raises", "hangs", "hangs_in_a_thread", "blocks_the_loop")
        )

    watcher.wait_for(faults_seen_twice, timeout=60, what="every faulty check to error twice")
    healthy = watcher.runs(ids["healthy"])
    watcher.wait_for(lambda s: watcher.runs(ids["healthy"]) > healthy + 3, what="the healthy check to go on")
    assert watcher.runs(ids["healthy"], "error") == 0
    assert (watcher.value("fraiseql_check_event_loop_blocked_total") or 0) >= 2
    assert watcher.stop() == 0
    messages = dict(stored(checkdir, "SELECT check_id, message FROM results WHERE outcome = 'error' GROUP BY check_id"))
    assert messages[ids["raises"]] == "ConnectionResetError: peer went away"
    assert messages[ids["hangs"]] == "timed out after 0.3s"
    assert messages[ids["hangs_in_a_thread"]] == "timed out after 0.3s"
    assert "blocked the event loop" in str(messages[ids["blocks_the_loop"]])


def test_overlapping_runs_are_skipped_and_the_concurrency_cap_holds(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_busy.py",
        """
        import asyncio
        from fraiseql_checks import check, record

        running = {"all": 0, "most": 0}

        async def busy(seconds):
            running["all"] += 1
            running["most"] = max(running["most"], running["all"])
            try:
                await asyncio.sleep(seconds)
            finally:
                running["all"] -= 1
            record("most_at_once", running["most"])

        @check(interval="100ms", timeout="5s")
        async def check_slow():
            await busy(0.35)

        @check(interval="100ms", timeout="5s")
        async def check_other():
            await busy(0.05)

        @check(interval="100ms", timeout="5s")
        async def check_third():
            await busy(0.05)
        """,
    )
    watcher = watch("--concurrency", "2")
    slow = "checks/check_busy.py::check_slow"
    watcher.wait_for(
        lambda s: (
            (watcher.value("fraiseql_check_skipped_overlapping_runs_total", check=slow) or 0) >= 3
            and watcher.runs(slow) >= 3
        ),
        what="skipped overlapping runs of the slow check",
    )
    most = watcher.value("fraiseql_check_value", check=slow, name="most_at_once")
    assert most == 2  # two at a time, never three
    assert watcher.stop() == 0


def test_the_workers_run_with_watch_modes_concurrency_default(checkdir: CheckDir, watch: Watch) -> None:
    """The watcher's slots and each worker's threads and HTTP connections (sized from the
    setting) agree: watch mode's default, 1,000 (docs/watch-mode.md), not a run's 100."""
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_config.py",
        """
        from fraiseql_checks import check, record

        @check(interval="100ms")
        def check_concurrency(config):
            record("concurrency", config.get("concurrency"))
            record("timeout", config.get("timeout"))
        """,
    )
    watcher = watch("--workers", "2")
    name = "checks/check_config.py::check_concurrency"
    watcher.wait_for(lambda s: watcher.runs(name) >= 1, what="a run of the check")
    assert watcher.value("fraiseql_check_value", check=name, name="concurrency") == 1000
    # a reload: the worker reads the changed file again, with watch mode's defaults still
    checkdir.write("fraiseql-checks.yaml", FAST + "timeout: 9s\n")
    watcher.send(signal.SIGHUP)
    watcher.wait_for(
        lambda s: watcher.value("fraiseql_check_value", check=name, name="timeout") == 9,
        what="a run with the reloaded config",
    )
    assert watcher.value("fraiseql_check_value", check=name, name="concurrency") == 1000
    assert watcher.stop() == 0


def test_past_capacity_is_a_metric_and_a_log_line_and_a_merely_slow_check_is_not_it(
    checkdir: CheckDir, watch: Watch
) -> None:
    """Runs that wait a whole interval for a concurrency slot make the watcher past its
    capacity (their next slots are skipped); a check whose own run outlasts its interval
    has its slots skipped too, but the watcher has room to spare."""
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_busy.py",
        """
        import asyncio
        from fraiseql_checks import check

        @check(interval="100ms", timeout="5s")
        async def check_one():
            await asyncio.sleep(0.15)

        @check(interval="100ms", timeout="5s")
        async def check_two():
            await asyncio.sleep(0.15)

        @check(interval="100ms", timeout="5s")
        async def check_three():
            await asyncio.sleep(0.15)
        """,
    )
    crowded = watch("--concurrency", "1")  # 0.45 s of runs due every 0.1 s, one at a time
    crowded.wait_for(
        lambda s: s.get(("fraiseql_check_capacity_skipped_runs_total", ()), 0) >= 3,
        what="slots skipped because runs waited for the only concurrency slot",
    )
    assert crowded.value("fraiseql_check_past_capacity") == 1
    assert crowded.stop() == 0
    assert "past capacity: runs wait a whole interval for a concurrency slot" in crowded.stderr + crowded.stdout

    checkdir.write(
        "checks/check_busy.py",
        """
        import asyncio
        from fraiseql_checks import check

        @check(interval="500ms", timeout="5s")
        async def check_slow():
            await asyncio.sleep(1.75)
        """,
    )
    # intervals of 500 ms: a run must be held up half a second past its own time to count
    # for capacity, which a starved CI machine's hiccup does not reach
    roomy = watch("--concurrency", "10")
    slow = "checks/check_busy.py::check_slow"
    roomy.wait_for(
        lambda s: s.get(("fraiseql_check_skipped_overlapping_runs_total", (("check", slow),)), 0) >= 3,
        what="skipped overlapping runs of the slow check",
    )
    assert roomy.value("fraiseql_check_capacity_skipped_runs_total") == 0
    assert roomy.value("fraiseql_check_past_capacity") == 0
    assert roomy.stop() == 0
    assert "past capacity" not in roomy.stderr + roomy.stdout


def test_runs_that_wait_in_their_worker_make_the_watcher_past_capacity_with_slots_to_spare(
    checkdir: CheckDir, watch: Watch
) -> None:
    """Slots to spare (50 for 4 checks) but one worker whose loop each run holds for 40 ms:
    160 ms of runs due every 50 ms wait in the worker, in flight a whole interval longer
    than they run, and their next slots are skipped for the lack of capacity (no run
    ever waits for a slot)."""
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_hold.py",
        """
        import time
        import pytest
        from fraiseql_checks import check

        @check(interval="50ms", timeout="5s")
        @pytest.mark.parametrize("n", [1, 2, 3, 4])
        async def check_hold(n):
            time.sleep(0.04)
        """,
    )
    crowded = watch("--concurrency", "50", "--workers", "1")
    crowded.wait_for(
        lambda s: s.get(("fraiseql_check_capacity_skipped_runs_total", ()), 0) >= 3,
        what="slots skipped because runs waited a whole interval in their worker",
    )
    assert crowded.value("fraiseql_check_past_capacity") == 1
    assert crowded.stop() == 0
    said = crowded.stderr + crowded.stdout
    # the advice follows the cause: no run waited for a slot, so more slots are not it
    assert "past capacity: runs in flight a whole interval longer than they run" in said
    assert "raise --concurrency" not in said


def test_slots_that_pass_while_the_watcher_is_stopped_are_counted_not_dropped(checkdir: CheckDir, watch: Watch) -> None:
    """The watcher stopped (SIGSTOP) for a second, ten intervals of its checks: when it goes on,
    each check runs once, late, and the slots that passed meanwhile are counted, not dropped
    unseen, and the log says so."""
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_quick.py",
        """
        import pytest
        from fraiseql_checks import check

        @check(interval="100ms")
        @pytest.mark.parametrize("n", [1, 2, 3])
        def check_quick(n):
            pass
        """,
    )
    watcher = watch()
    watcher.wait_for(
        lambda s: sum(value for (name, _), value in s.items() if name == "fraiseql_check_runs_total") >= 6,
        what="runs of the three checks",
    )
    before = watcher.value("fraiseql_check_late_skipped_runs_total")
    capacity_before = watcher.value("fraiseql_check_capacity_skipped_runs_total")
    assert before is not None and capacity_before is not None
    watcher.process.send_signal(signal.SIGSTOP)
    try:
        time.sleep(1.0)  # the stimulus, not a wait for something: stopped for ten intervals
    finally:
        watcher.process.send_signal(signal.SIGCONT)
    # each check: nine slots or so passed while stopped (fewer for a check whose run was in
    # flight at the stop: those count as overlapping runs)
    watcher.wait_for(
        lambda s: s.get(("fraiseql_check_late_skipped_runs_total", ()), 0) >= before + 2 * 5,
        what="the slots that passed while the watcher was stopped, counted",
    )
    # late slots alone do not make the watcher past capacity: only a run it caught in flight
    # at the stop can (its wait includes the stop), and then it is counted as such
    samples = watcher.metrics()
    caught_in_flight = samples[("fraiseql_check_capacity_skipped_runs_total", ())] > capacity_before
    assert samples[("fraiseql_check_past_capacity", ())] == int(caught_in_flight)
    assert watcher.stop() == 0
    said = watcher.stderr + watcher.stdout
    assert "passed while this watcher was late to hand their runs out" in said
    past = [line for line in said.splitlines() if "past capacity:" in line]
    assert bool(past) == caught_in_flight
    assert all("runs in flight a whole interval" in line for line in past)  # never for the late slots


def test_state_changes_reach_the_hook_once_and_maintenance_windows_silence_them(
    checkdir: CheckDir, watch: Watch
) -> None:
    events = checkdir.path / "events.jsonl"
    checkdir.write(
        "fraiseql-checks.yaml",
        FAST + 'maintenance:\n  - checks: ["*::check_silenced"]\n    from: "00:00"\n    to: "24:00"\n',
    )
    checkdir.write(
        "checks/conftest.py",
        f"""
        import json

        def fraiseql_check_state_changed(change, check):
            with open({str(events)!r}, "a") as out:
                out.write(json.dumps([change.check_id, change.previous.value, change.state.value,
                                      change.silenced, change.reason, check.severity]) + "\\n")
        """,
    )
    checkdir.write(
        "checks/check_down.py",
        """
        from fraiseql_checks import check

        @check(interval="100ms", failure_threshold=3, severity="critical")
        def check_down():
            assert False, "down"

        @check(interval="100ms")
        def check_silenced():
            assert False, "down too"
        """,
    )
    watcher = watch()
    down = "checks/check_down.py::check_down"
    watcher.wait_for(lambda s: watcher.runs(down, "failed") >= 8, what="eight failing runs")
    assert watcher.value("fraiseql_check_silenced", check="checks/check_down.py::check_silenced") == 1
    assert watcher.value("fraiseql_check_consecutive_failures", check=down) >= 8  # type: ignore[operator]
    assert watcher.stop() == 0
    lines = sorted(json.loads(line) for line in events.read_text().splitlines())
    assert lines == [
        [down, "unknown", "failing", False, "3 failing runs in a row", "critical"],
        ["checks/check_down.py::check_silenced", "unknown", "failing", True, "1 failing run in a row", "warning"],
    ]
    assert "[silenced: maintenance window]" in watcher.stdout
    changes = stored(checkdir, "SELECT check_id, state, silenced FROM state_changes ORDER BY check_id")
    assert changes == [(down, "failing", 0), ("checks/check_down.py::check_silenced", "failing", 1)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--listen", "nowhere"), "--listen: expected HOST:PORT such as 127.0.0.1:9470, got 'nowhere'"),
        (("--store", "mysql://db/results"), "no result store handles 'mysql://db/results'"),
        (("--junitxml", "out.xml"), "--junitxml cannot be used with --watch"),
    ],
)
def test_bad_watch_options_are_one_line_and_exit_4(checkdir: CheckDir, args: tuple[str, ...], message: str) -> None:
    checkdir.write("checks/check_one.py", "def check_one():\n    pass\n")
    result = checkdir.run("--watch", *args)
    assert result.ret == 4
    assert result.stderr.splitlines() == [f"ERROR: {message}"] or message in result.stderr.splitlines()[0]
    assert len(result.stderr.splitlines()) == 1


def test_an_address_in_use_is_one_line_and_exit_4(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("checks/check_one.py", "def check_one():\n    pass\n")
    first = watch()
    result = checkdir.run("--watch", "--listen", first.address, "--store", "second.db", timeout=60)
    assert result.ret == 4
    assert result.stderr.strip().startswith(f"ERROR: cannot listen on {first.address}:")
    assert len(result.stderr.splitlines()) == 1
    assert first.stop() == 0


def test_nothing_to_watch_exits_5(checkdir: CheckDir) -> None:
    (checkdir.path / "checks").mkdir()
    assert checkdir.run("--watch").ret == 5


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://watcher:s3cr3t-pw@127.0.0.1:{port}/results", "postgresql://watcher:***@127.0.0.1"),
        ("postgresql://watcher:s3cr3t@pw/x@127.0.0.1:{port}/results", "postgresql://watcher:***@127.0.0.1"),
        ("postgresql://watcher@127.0.0.1:{port}/results?password=s3cr3t-pw", "/results?password=***"),
    ],
    ids=["userinfo", "password-with-at-and-slash", "query-parameter"],
)
def test_the_store_password_is_masked_and_readyz_says_the_store_is_away(
    checkdir: CheckDir, watch: Watch, url: str, shown: str
) -> None:
    from tests.support.services import free_port

    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write("checks/check_one.py", "def check_one():\n    pass\n")
    url = url.format(port=free_port())
    watcher = watch("--store", url, ready=False)
    wait_until(lambda: _answers(watcher), what="the HTTP server")
    status, body = watcher.get("/readyz")
    assert status == 503 and "the result store is not writable" in body and "s3cr3t" not in body
    assert watcher.get("/healthz")[0] == 200
    watcher.wait_for(lambda s: s.get(("fraiseql_check_store_backlog", ()), 0) >= 2, what="results to queue")
    assert watcher.value("fraiseql_check_store_up") == 0
    assert watcher.stop() == 0
    assert "s3cr3t" not in watcher.stdout + watcher.stderr
    assert shown in watcher.stdout
    assert "were not written" in watcher.stdout


def _answers(watcher: WatchProcess) -> bool:
    try:
        watcher.get("/healthz")
    except OSError:
        return False
    return True


def test_the_sqlite_store_is_in_the_root_folder_by_default(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write(
        "checks/check_one.py", "from fraiseql_checks import record\n\ndef check_one():\n    record('x', 1.5)\n"
    )
    watcher = watch()
    watcher.wait_for(lambda s: watcher.runs("checks/check_one.py::check_one") >= 1)
    assert watcher.stop() == 0
    assert Path(checkdir.path / ".fraiseql-checks" / "results.db").is_file()
    assert stored(checkdir, "SELECT recorded_values FROM results") == [('{"x":1.5}',)]
    (mode,) = stored(checkdir, "PRAGMA journal_mode")[0]
    assert mode == "wal"


def test_plugins_add_pages_at_start_and_decide_what_a_broken_fixture_is(checkdir: CheckDir, watch: Watch) -> None:
    """Watcher hooks belong to plugins (the watcher's own process loads no conftest);
    the fixture hook is a conftest's, in the worker that runs the check."""
    stopped = checkdir.path / "stopped.txt"
    checkdir.write("fraiseql-checks.yaml", FAST + "plugins: [pages_plugin]\n")
    checkdir.write(
        "plugins/pages_plugin.py",
        f"""
        from fraiseql_checks.watch.http import Page

        def fraiseql_watch_start(watcher):
            watcher.server.routes["/hello"] = lambda: Page(200, b"hello from a plugin\\n")

        def fraiseql_watch_stop(watcher):
            async def write():
                open({str(stopped)!r}, "w").write(f"{{watcher.runs}} runs")
            return write()
        """,
    )
    checkdir.write(
        "checks/conftest.py",
        """
        from fraiseql_checks import fixture

        def fraiseql_fixture_broken(error):
            return False  # never rebuild: this client reconnects by itself

        @fixture(scope="session")
        def client():
            return object()
        """,
    )
    checkdir.write(
        "checks/check_client.py",
        """
        from fraiseql_checks import check

        @check(interval="100ms")
        def check_client(client):
            raise ConnectionResetError("lost")
        """,
    )
    watcher = watch(env={"PYTHONPATH": str(checkdir.path / "plugins")})
    assert watcher.get("/hello") == (200, "hello from a plugin\n")
    check = "checks/check_client.py::check_client"
    watcher.wait_for(lambda s: watcher.runs(check, "error") >= 3, what="errors")
    assert watcher.value("fraiseql_check_fixture_rebuilds_total", fixture="client") is None
    assert watcher.stop() == 0
    assert stopped.read_text().endswith(" runs")


def test_a_conftest_implementing_a_watcher_hook_is_told_it_is_not_called(checkdir: CheckDir, watch: Watch) -> None:
    checkdir.write("fraiseql-checks.yaml", FAST)
    checkdir.write("checks/conftest.py", "def fraiseql_watch_start(watcher):\n    raise AssertionError('not here')\n")
    checkdir.write("checks/check_one.py", "def check_one():\n    pass\n")
    watcher = watch("--workers", "1")
    watcher.wait_for(lambda s: watcher.runs("checks/check_one.py::check_one") >= 1)
    assert watcher.stop() == 0
    assert "checks/conftest.py: fraiseql_watch_start is a hook of the watcher's own process" in watcher.stdout
