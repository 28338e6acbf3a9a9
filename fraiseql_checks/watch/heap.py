"""The garbage collector in watch mode's long-lived processes: the watcher, its workers
and the SQLite store's writer process.

What such a process builds once (the checks' metadata, the series, the collected modules
and their fixtures) lives as long as it does. Left to the collector, every full
collection walks all of it, holding the event loop for milliseconds to tens of
milliseconds each time, for nothing. Once collected, it is frozen
(``gc.freeze``: moved out of every generation), and full collections come less often.
A reload unfreezes first, so what it replaces can be collected, and freezes again after.
"""

from __future__ import annotations

import gc

#: The collector's thresholds once the checks are collected: a full collection only after
#: 100 collections of the middle generation (Python's default is 10). What is not frozen
#: is what runs bring and keep a while (results queued for the store, the runs under
#: way): with 10,000 checks past capacity the default made a full collection every
#: second in the watcher, each holding the loop 30 to 130 ms and 15 % of its time in all;
#: in a worker running 1,000 checks a full collection held its loop ~23 ms about once a
#: second (docs/performance.md). Cycles are rare in what these processes keep, and the
#: young generations still collect those of the runs. The youngest is collected after
#: 10,000 new objects, not Python's 700: a saturated watcher and its worker collected
#: nothing in them, and spent ~1 µs of each run's CPU walking what a run keeps a while
#: (~0.1 µs now); one such collection holds the watcher's loop ~3 ms.
GC_THRESHOLDS = (10_000, 10, 100)


def freeze() -> None:
    """Collect, then keep the collector off everything alive now."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def unfreeze() -> None:
    """Before building anew (a reload): what is replaced must be collectable again."""
    gc.unfreeze()
