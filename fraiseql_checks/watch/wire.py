"""What the watcher and its worker processes say to each other, and how it travels.

One Unix socket pair per worker. Each frame is a 4-byte length and a pickled list
of messages, so a burst of results costs one write and one wake-up, not one per
run. A message is a tuple whose first item names it:

watcher → worker

- ``("run", seq, check_id)``: start a run of this check; its result comes back with ``seq``.
- ``("changed", change)``: a state change, for ``fraiseql_check_state_changed`` in conftests.
- ``("reload", skip, file_values)``: collect again (SIGHUP), not importing the files in
  ``skip``, after taking the config file's table the watcher now runs on (``None``: keep
  the config); answered by ``collected``.
- ``("stop",)``: finish the running checks, tear fixtures down, answer ``stopped`` and exit.
- ``("cancel",)``: cancel the running checks now (a second stop signal).

worker → watcher

- ``("importing", relpath)``: about to import this file (sent before the import, so a
  file whose import ends the process or never returns is known by name).
- ``("collected", infos, errors, kept)``: the checks (``CheckInfo``), the files that did
  not collect (``CollectError``), and the ids kept from a previous version.
- ``("result", seq, fields, rebuilt, whole_message)``: the masked, size-capped result of
  run ``seq`` as the tuple of its fields (``result_fields``); the fixtures set up again
  after it; the whole message if it was cut.
- ``("teardown", result)``: a module or session fixture whose teardown failed.
- ``("beat", stalled_for, holder)``: sent every half second by a thread of the worker:
  how long its event loop has not turned, and the check holding it (or ``None``).
- ``("blocked", check_id, seconds)``: a check held the event loop longer than the bound.
- ``("say", line)``: a line for the watcher's log.
- ``("stopped",)``: the worker finished and is exiting.

The first frame from the watcher is the worker's start-up: a dict with the command
line, ``sys.path``, the worker's name, the files not to import and the config file's table.
"""

from __future__ import annotations

import dataclasses
import io
import json
import operator
import pickle
from collections.abc import Callable
from typing import Any

from fraiseql_checks.frames import HEADER_SIZE as HEADER_SIZE
from fraiseql_checks.frames import MAX_FRAME as MAX_FRAME
from fraiseql_checks.frames import BlockingChannel as BlockingChannel
from fraiseql_checks.frames import Message as Message
from fraiseql_checks.frames import decode as decode
from fraiseql_checks.frames import encode as encode
from fraiseql_checks.frames import length_of as length_of
from fraiseql_checks.result import Result

#: The only classes a frame from a worker may hold: a worker runs users' code, and a
#: check could write a frame of its own; anything else is refused, never imported.
_WORKER_CLASSES = frozenset(
    {
        ("fraiseql_checks.result", "Result"),
        ("fraiseql_checks.result", "Outcome"),
        ("fraiseql_checks.checks", "CheckInfo"),
        ("fraiseql_checks.spec", "CheckSpec"),
        ("fraiseql_checks.alerting.alerts", "AlertSpec"),
        ("fraiseql_checks.alerting.alerts", "InvalidAlert"),
        ("fraiseql_checks.core.collect", "CollectError"),
        ("pathlib", "PosixPath"),
        ("pathlib", "WindowsPath"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
    }
)


class _WorkerUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _WORKER_CLASSES:
            raise pickle.UnpicklingError(f"a worker sent a {module}.{name}, which the watcher does not accept")
        return super().find_class(module, name)


#: A result crosses as the tuple of its fields, in this order, not as a pickled ``Result``:
#: two thirds of the bytes, and a third of the time to pickle and rebuild (no
#: reconstructor and no instance dictionary to fill; docs/performance.md).
RESULT_FIELDS = tuple(field.name for field in dataclasses.fields(Result))
#: A ``Result``'s fields as a tuple, in ``RESULT_FIELDS`` order.
result_fields: Callable[[Result], tuple[Any, ...]] = operator.attrgetter(*RESULT_FIELDS)


def result_from(fields: Any) -> Result:
    """The ``Result`` a worker sent as ``result_fields``; ``TypeError`` for anything else."""
    if type(fields) is not tuple or len(fields) != len(RESULT_FIELDS):
        raise TypeError(f"a result is a tuple of {len(RESULT_FIELDS)} fields, not {type(fields).__name__}")
    return Result(*fields)


def decode_from_worker(body: bytes) -> Any:
    """A frame from a worker: only the watcher's own message types are rebuilt."""
    return _WorkerUnpickler(io.BytesIO(body)).load()


def json_safe(value: Any, limit: int = 64 * 1024) -> Any:
    """``value`` as plain JSON data (what reports can hold), at most ``limit`` bytes of it;
    anything else becomes its ``repr``."""
    if type(value) is dict and not value:  # most runs record no extra field: 7 µs saved each
        return {}
    try:
        text = json.dumps(value, default=repr, allow_nan=True)
    except (ValueError, TypeError, RecursionError) as exc:
        return {"unreadable": f"{type(exc).__name__}: {exc}"}
    if len(text) > limit:
        return {"cut": f"{len(text):,} bytes of data, more than the {limit:,} kept"}
    return json.loads(text)
