"""Which check a stuck worker is running: read from the stacks ``faulthandler`` dumped.

A check stuck in C code that keeps the interpreter's lock (a regular expression
that backtracks for minutes) stops every thread of its worker, so the worker cannot
say which check it runs. ``faulthandler`` can: on a signal, it writes every
thread's Python stack from C, without the lock. The watcher sends the signal and
reads the dump here: the frames of the check functions that were running name the
culprit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_THREAD = re.compile(r"^(Current thread|Thread) 0x[0-9a-f]+")
_FRAME = re.compile(r'^\s+File "(?P<file>.*)", line \d+ in (?P<function>\S+)$')
#: A frame of these means the thread runs the worker's event loop.
_LOOP_FRAMES = ("run_until_complete", "_run_once", "run_forever")

Frame = tuple[str, str]


def threads(dump: str) -> list[list[Frame]]:
    """Each thread's frames, innermost first, as ``(file, function)``."""
    found: list[list[Frame]] = []
    for line in dump.splitlines():
        if _THREAD.match(line):
            found.append([])
            continue
        match = _FRAME.match(line)
        if match and found:
            found[-1].append((match["file"], match["function"]))
    return found


def complete(dump: str) -> bool:
    """Whether the whole dump is written: the main thread comes last, and its stack ends
    (outermost frame) in the ``<module>`` that started the process."""
    found = threads(dump)
    return bool(found) and bool(found[-1]) and found[-1][-1][1] == "<module>"


def holder(dump: str, running: Mapping[Frame, str]) -> str | None:
    """The check (by id) a dump shows running, from ``running``: ``(file, function)`` of each
    check in flight → its id. The event loop's thread is asked first, then the others;
    ``None`` unless exactly one check is found there."""
    stacks = threads(dump)
    loop = [stack for stack in stacks if any(function in _LOOP_FRAMES for _, function in stack)]
    others = [stack for stack in stacks if stack not in loop]
    for group in (loop, others):
        found = {running[frame] for stack in group for frame in stack if frame in running}
        if len(found) == 1:
            return found.pop()
        if found:
            return None
    return None
