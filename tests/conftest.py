"""Fixtures of the test suite: a check folder that runs the real CLI, and watchers started in it
(the helpers themselves are in ``tests/support``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.checkdir import CheckDir
from tests.support.services import throwaway_schema
from tests.support.watcher import WatchProcess


@pytest.fixture
def checkdir(tmp_path: Path) -> CheckDir:
    return CheckDir(tmp_path)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A DSN whose tables land in a fresh schema of the shared PostgreSQL, dropped afterwards."""
    with throwaway_schema() as dsn:
        yield dsn


@pytest.fixture
def watch(checkdir: CheckDir) -> Iterator[Callable[..., WatchProcess]]:
    """Start ``fraiseql-check --watch`` in the check folder: ``watch("--store", url)``."""
    started: list[WatchProcess] = []

    def start(
        *args: str, env: dict[str, str] | None = None, ready: bool = True, port: int | None = None
    ) -> WatchProcess:
        process = WatchProcess(checkdir, args, env, port)
        started.append(process)
        if ready:
            process.wait_ready()
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.process.kill()
            process.process.communicate()
