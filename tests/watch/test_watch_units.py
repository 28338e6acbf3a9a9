"""Small pieces of watch mode: what counts as a lost connection, listen addresses."""

from __future__ import annotations

import asyncpg
import pytest

from fraiseql_checks.watch.plugin import as_listen
from fraiseql_checks.watch.worker import looks_like_lost_connection


def caused_by(cause: BaseException) -> Exception:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise RuntimeError("query failed") from exc
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError("peer"),
        TimeoutError(),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.exceptions.ConnectionDoesNotExistError("gone"),
        caused_by(ConnectionRefusedError()),
        type("ConnectError", (Exception,), {})("httpx-like"),
    ],
)
def test_lost_connections_are_recognised(error: BaseException) -> None:
    assert looks_like_lost_connection(error)


@pytest.mark.parametrize("error", [AssertionError("1 == 2"), ValueError("bad"), KeyError("x"), caused_by(ValueError())])
def test_other_errors_are_not(error: BaseException) -> None:
    assert not looks_like_lost_connection(error)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9470", ("127.0.0.1", 9470)),
        (":9470", ("0.0.0.0", 9470)),
        ("[::1]:9470", ("::1", 9470)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert as_listen(text) == expected


@pytest.mark.parametrize("text", ["9470", "host:port", "127.0.0.1:99999", "bad host:1"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        as_listen(text)


def test_the_watcher_rebuilds_only_its_own_message_types_from_a_worker() -> None:
    import os
    import pickle
    from pathlib import Path

    from fraiseql_checks.result import Outcome, Result
    from fraiseql_checks.watch import wire

    result = Result("checks/check_a.py::check_a", "check_a", Outcome.PASSED, started_at=1.0, labels={"a": "b"})
    frame = pickle.dumps([("result", 1, wire.result_fields(result), [], None), ("path", Path("/x"))])
    assert wire.result_from(wire.decode_from_worker(frame)[0][2]) == result
    for forged in (result, (), wire.result_fields(result)[:-1], list(wire.result_fields(result))):
        with pytest.raises(TypeError):
            wire.result_from(forged)

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match=r"posix\.system"):
        wire.decode_from_worker(pickle.dumps([Evil()]))
