"""Python's cyclic garbage collector in a one-shot run: rare while the process starts and
collects, and kept off what lives as long as the run (frozen: what start-up built once it
is over, what was collected once the run starts).

Starting and collecting build what lives as long as the run: the modules and plugins,
the checks, their modules and fixtures. The collector's passes over those, triggered by
the very allocations that build them, find nothing to free (docs/performance.md). It is
never off: a check file that makes cyclic garbage by the million at import must not make
the process grow without bound. Watch mode's long-lived processes have their own policy
(``watch.heap``).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: The cyclic garbage collector's thresholds while starting and collecting: a young
#: generation of 50,000 objects instead of 700, and a full collection only after 1,000
#: collections of the middle one. Garbage a check file makes at import (cycles included)
#: is still collected, young; what collecting builds is not gone over again and again.
COLLECTING_GC_THRESHOLDS = (50_000, 10, 1_000)

#: Whether this process is ``fraiseql-check``'s own (``own_process``, by its entry point),
#: not a host's (a test suite, pytest with our plugin) that calls into it.
_owned = False


def own_process() -> None:
    """Called by the command's entry point: what it freezes stays frozen to the end."""
    global _owned
    _owned = True


def started() -> None:
    """Start-up is over (plugins loaded, configuration read): in our own process, what it
    built lives as long as the process and is frozen, so that the young collection while
    collecting checks goes over what collecting built only (~50,000 objects fewer: ~2 ms
    of a run of 10,000 checks). Its little garbage (a few dozen objects of cycles made at
    import) is frozen with it. In a host's process, nothing."""
    if _owned:
        gc.freeze()


@contextlib.contextmanager
def rare_collections() -> Iterator[None]:
    """The collector runs rarely for a while, as it was after.

    Not more than that: freezing each collected file's objects as soon as they are built
    (an O(1) move, ~4 ms off collecting 10,000 checks) also froze the cyclic garbage its
    import had made, for the whole run, finalizers never run; the young collections
    that go over what collecting built are what frees it.
    """
    before = gc.get_threshold()
    gc.set_threshold(*COLLECTING_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextlib.contextmanager
def collector_off_the_checks() -> Iterator[None]:
    """A one-shot run's cyclic garbage collections leave alone what was alive before it (the
    collected checks, their modules and fixtures, the plugins) and come as rarely as
    while collecting. Each run makes a few hundred objects; with Python's thresholds
    that was a young collection every few checks and full ones walking all 10,000
    checks: ~40 ms of a run of 10,000 trivial checks (docs/performance.md). Garbage the
    checks make, cycles included, is still collected young. Where something else froze
    objects already (a host process), nothing is frozen or unfrozen here: unfreezing is
    all or nothing. In our own process (``own_process``) it freezes without asking (the
    count walks every frozen object) and leaves it frozen: the process ends after."""
    ours = _owned or not gc.get_freeze_count()
    if ours:
        gc.freeze()
    try:
        with rare_collections():
            yield
    finally:
        if ours and not _owned:
            gc.unfreeze()  # an in-process caller's next session must be collectable again
