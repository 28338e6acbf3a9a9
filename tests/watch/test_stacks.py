"""Naming the check that holds a stuck worker, from the stacks ``faulthandler`` writes.

A real process spins in C (a backtracking regular expression) inside a check function;
the probe signals it and reads its dump, as the watcher does with a stuck worker.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from fraiseql_checks.watch import stacks
from fraiseql_checks.watch.workers import _PROBE_WAIT, _PROBING, Run, WorkerProcess

SPINNER = """
import faulthandler, re, signal, sys
faulthandler.register(signal.SIGUSR1, file=int(sys.argv[1]), all_threads=True, chain=False)

def check_backtracks():
    print("spinning", flush=True)
    re.match(r"(a+)+$", "a" * 60 + "b")   # holds the interpreter's lock: nothing else runs

check_backtracks()
"""
CHECK_ID = "checks/check_spins.py::check_backtracks"


@pytest.fixture
def stuck(tmp_path: Path) -> Iterator[WorkerProcess]:
    """A WorkerProcess as the pool sees it, whose process is stuck in ``check_backtracks``."""
    script = tmp_path / "check_spins.py"
    script.write_text(textwrap.dedent(SPINNER))
    dump = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, str(script), str(dump.fileno())], pass_fds=(dump.fileno(),), stdout=subprocess.PIPE
    )
    assert process.stdout is not None and process.stdout.readline() == b"spinning\n"
    info = types.SimpleNamespace(path=script, function_name="check_backtracks")
    pool = types.SimpleNamespace(infos={CHECK_ID: info})
    worker = WorkerProcess(pool, "1")  # type: ignore[arg-type]
    worker.process = process  # type: ignore[assignment]
    worker._dump = dump
    worker.inflight = {1: _run()}
    try:
        yield worker
    finally:
        process.kill()
        process.wait()
        dump.close()


def _run(started_at: float | None = None, timeout: float = 3.0) -> Run:
    started_at = time.time() if started_at is None else started_at
    return Run(seq=1, check_id=CHECK_ID, timeout=timeout, done=None, started_at=started_at)  # type: ignore[arg-type]


def _probe_until_answered(worker: WorkerProcess, now: float) -> str | None:
    """Probe from ``now`` on, the clock going on from there, until the probe has an answer."""
    offset = now - time.monotonic()
    while (found := worker._probe(time.monotonic() + offset)) == _PROBING:
        time.sleep(0.05)
    return found


def test_the_dump_of_a_process_stuck_in_c_names_the_check(stuck: WorkerProcess) -> None:
    assert _probe_until_answered(stuck, time.monotonic()) == CHECK_ID


def test_a_stuck_process_that_has_not_run_since_the_signal_is_waited_for_not_called_nameless(
    stuck: WorkerProcess,
) -> None:
    """On a loaded machine the stuck worker may not be scheduled for a while after the
    signal; reading an empty dump then must not conclude that no check holds it."""
    assert stuck.process is not None
    stuck.process.send_signal(signal.SIGSTOP)  # as if never scheduled: the signal waits
    start = time.monotonic()
    assert stuck._probe(start) == _PROBING  # signalled
    assert stuck._probe(start + 0.5) == _PROBING  # nothing written yet: still waiting
    assert stuck._probe(start + _PROBE_WAIT / 2) == _PROBING
    stuck.process.send_signal(signal.SIGCONT)
    assert _probe_until_answered(stuck, start + _PROBE_WAIT / 2) == CHECK_ID


def test_the_check_that_started_just_after_the_last_beat_is_named_as_the_holder(stuck: WorkerProcess) -> None:
    """The worker beats every half second; the loop stopped turning somewhere after the last
    beat, so a run handed over after that beat can be the one holding it (CI saw it blamed
    on nobody, and the culprit retried on the next worker)."""
    stuck.state = "ready"
    stuck.heard = time.monotonic() - 7.0  # the last beat, 7 s ago
    stuck.inflight = {1: _run(started_at=time.time() - 6.6, timeout=1.0)}  # handed over 0.4 s after it
    while stuck._killing is None:
        stuck.check_health(time.monotonic())
        time.sleep(0.05)
    assert stuck._killing.kind == "unresponsive"
    assert stuck._killing.culprit == CHECK_ID
    assert stuck._killing.reason.startswith(f"stopped answering: its event loop was held by {CHECK_ID} for")


def test_a_process_that_never_writes_its_stacks_is_given_up_on(stuck: WorkerProcess) -> None:
    assert stuck.process is not None
    stuck.process.send_signal(signal.SIGSTOP)
    start = time.monotonic()
    assert stuck._probe(start) == _PROBING
    assert stuck._probe(start + 0.5) == _PROBING
    assert stuck._probe(start + _PROBE_WAIT) is None  # the bound: the watcher goes on
    stuck.process.send_signal(signal.SIGCONT)


def test_a_dump_is_complete_once_the_main_threads_stack_reaches_its_module() -> None:
    main = 'Current thread 0x1 (most recent call first):\n  File "/c/a.py", line 3 in check_a\n'
    assert not stacks.complete("")
    assert not stacks.complete(main)  # cut after the innermost frame
    assert stacks.complete(main + '  File "<string>", line 1 in <module>\n')


def test_holder_reads_the_event_loops_thread_first_and_names_nobody_when_two_checks_show() -> None:
    running = {("/c/a.py", "check_a"): "a.py::check_a", ("/c/b.py", "check_b"): "b.py::check_b"}
    loop_thread = (
        "Current thread 0x00007f0000000001 (most recent call first):\n"
        '  File "/c/a.py", line 3 in check_a\n'
        '  File "/usr/lib/python3.11/asyncio/base_events.py", line 1922 in _run_once\n'
    )
    other = 'Thread 0x00007f0000000002 (most recent call first):\n  File "/c/b.py", line 5 in check_b\n'
    assert stacks.holder(other + "\n" + loop_thread, running) == "a.py::check_a"
    assert stacks.holder(other, running) == "b.py::check_b"
    both = other + '  File "/c/a.py", line 3 in check_a\n'
    assert stacks.holder(both, running) is None
    assert stacks.holder("", running) is None
