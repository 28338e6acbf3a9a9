"""What the watcher's HTTP server shows: ``/metrics`` (every check's series and the
watcher's own), ``/healthz`` (the process is alive) and ``/readyz`` (checks collected,
store writable, not stopping). The watcher keeps the counts; this renders them.

``/metrics`` is Prometheus' text format 0.0.4 unless the scrape's ``Accept`` prefers
OpenMetrics 1.0 (as Prometheus does), and gzip when ``Accept-Encoding`` allows it.
With ISA-L's deflate the page is compressed on the event loop, piece by piece (a few
ms for 10,000 checks: less than one hand-off to a thread and back takes on a busy
loop); with zlib's, six times slower, in a thread (zlib lets go of the GIL). The
per-check families are kept between scrapes as ``exposition.Columns``: a scrape renders
only the checks that changed.
"""

from __future__ import annotations

import asyncio
import functools
import time
import types
import zlib
from collections import Counter
from collections.abc import Awaitable, Iterator, Sequence
from typing import TYPE_CHECKING

from fraiseql_checks import metrics as m
from fraiseql_checks._version import __version__
from fraiseql_checks.watch import exposition
from fraiseql_checks.watch.http import Handler, Page, Request, batches

if TYPE_CHECKING:
    from fraiseql_checks.watch.watcher import Watcher


#: zlib's level for /metrics: 1 compresses the page about 12 times in a third of
#: the time level 6 takes (docs/performance.md); the page is mostly repeated labels.
GZIP_LEVEL = 1
_VARY = (b"vary", b"accept, accept-encoding")
_GZIP = (b"content-encoding", b"gzip")
#: Pieces smaller than this are joined before they go to ISA-L's deflate.
_GZIP_INPUT = 256 * 1024


def weights(header: bytes) -> dict[str, float]:
    """An ``Accept`` or ``Accept-Encoding`` header as {media type or coding: q}, lower-case."""
    found: dict[str, float] = {}
    for item in header.decode("latin-1").split(","):
        name, *params = (part.strip() for part in item.split(";"))
        if not name:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        name = name.lower()
        found[name] = max(q, found.get(name, 0.0))
    return found


def wants_openmetrics(accept: bytes) -> bool:
    """``Accept`` prefers OpenMetrics to the text format (a tie goes to OpenMetrics, asked by name)."""
    asked = weights(accept)
    openmetrics = asked.get("application/openmetrics-text", 0.0)
    return openmetrics > 0 and openmetrics >= asked.get("text/plain", 0.0)


def accepts_gzip(accept_encoding: bytes) -> bool:
    asked = weights(accept_encoding)
    return asked.get("gzip", asked.get("x-gzip", asked.get("*", 0.0))) > 0


@functools.cache
def deflate() -> types.ModuleType:
    """The deflate library: ISA-L's (``isal``, about six times zlib's speed at level 1 on
    this page, docs/performance.md) when installed, else zlib. Both make the same format."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib
    return isal_zlib


def gzip_pieces(
    pieces: Sequence[bytes], level: int = GZIP_LEVEL, library: types.ModuleType | None = None
) -> list[bytes]:
    """``pieces`` as one gzip stream, compressed by the deflate ``library`` (``deflate()``).

    With ISA-L, called on the event loop, piece by piece: the page is never joined.
    With zlib, called in a thread, in one call on the joined page: the library lets go
    of the GIL while it compresses, and each time it returns the thread waits for the
    event loop's thread to hand the GIL back (up to the 5 ms switch interval when the
    loop is busy); one call waits once, a call per piece waited a hundred times.
    """
    library = library or deflate()
    if library is zlib:
        return [library.compress(b"".join(pieces), level, wbits=16 + zlib.MAX_WBITS)]
    stream = library.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    # small pieces joined first: ISA-L compresses each call's input with little of the
    # history before it (a page of 2 checks in 60 pieces came out 1.6 times smaller, not 5)
    out = [compressed for compressed in map(stream.compress, batches(pieces, _GZIP_INPUT)) if compressed]
    out.append(stream.flush())
    return out


class WatcherPages:
    """The watcher's pages, by path."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        #: The per-check families, kept between scrapes (only changed checks are rendered).
        self._columns = exposition.Columns()
        #: Checks per worker, and what it was counted from (the checks, the assignment).
        self._worker_checks: tuple[tuple[int, int], Counter[str]] = ((-1, -1), Counter())

    def routes(self) -> dict[str, Handler]:
        return {"/metrics": self.metrics, "/healthz": self.health, "/readyz": self.ready}

    def metrics(self, request: Request) -> Page | Awaitable[Page]:
        w = self.watcher
        w.scrapes.scraped(time.monotonic())
        open_metrics = wants_openmetrics(request.header(b"accept"))
        series = (entry.item.series for entry in w.schedule)
        body = exposition.render(series, time.time(), self._own_lines, open_metrics, self._columns)
        kind = exposition.OPENMETRICS_CONTENT_TYPE if open_metrics else exposition.CONTENT_TYPE
        if accepts_gzip(request.header(b"accept-encoding")):
            if deflate() is zlib:
                return self._gzipped(body, kind)
            return Page(200, gzip_pieces(body), kind, (_VARY, _GZIP))
        return Page(200, body, kind, (_VARY,))

    async def _gzipped(self, body: list[bytes], kind: str) -> Page:
        return Page(200, await asyncio.to_thread(gzip_pieces, body), kind, (_VARY, _GZIP))

    def _own_lines(self) -> Iterator[str]:
        w = self.watcher
        writer, pool = w.writer, w.pool
        workers = pool.all_workers()
        yield exposition.header(m.LATENESS) + w.lateness.fill(exposition.histogram_template(m.LATENESS, ""))
        yield exposition.simple(m.IN_PROGRESS, w.in_progress)
        yield exposition.simple(m.PAST_CAPACITY, int(w.past_capacity()))
        yield exposition.simple(m.CAPACITY_SKIPS, w.capacity_skips)
        yield exposition.simple(m.LATE_SKIPS, w.late_skips)
        yield exposition.simple(m.SCHEDULED, len(w.schedule))
        yield exposition.simple(m.COLLECTION_ERRORS, w.collection_errors)
        yield exposition.labelled(m.RELOADS, w.reloads)
        yield exposition.labelled(m.FIXTURE_REBUILDS, w.fixture_rebuilds)
        yield exposition.simple(m.LOOP_BLOCKED, w.loop_interrupts)
        yield exposition.simple(m.LONGEST_BLOCK, w.longest_hold)
        yield exposition.labelled(m.LOOP_HELD, {check: n for check, n in w.held.items() if check})
        yield exposition.labelled(m.ISOLATED, {check: 1 for check in pool.isolated})
        yield exposition.labelled(m.WORKER_UP, {w.name: int(w.up) for w in workers})
        checks = self._checks_per_worker()
        yield exposition.labelled(m.WORKER_CHECKS, {w.name: checks[w.name] for w in workers})
        restarts: dict[tuple[str, ...], float] = {(w.name, r): n for w in workers for r, n in w.restarts.items()}
        yield exposition.multi(m.WORKER_RESTARTS, restarts)
        yield exposition.labelled(m.WORKER_MEMORY, {w.name: w.rss for w in workers if w.up})
        yield exposition.labelled(m.WORKER_CPU, {w.name: w.cpu_seconds() for w in workers})
        server = w.server
        yield exposition.simple(m.HTTP_OPEN, server.connections_open)
        yield exposition.simple(m.HTTP_ACCEPTED, server.connections_accepted_total)
        yield exposition.simple(m.HTTP_EVICTED, server.connections_evicted_total)
        yield exposition.simple(m.HTTP_REJECTED, server.connections_rejected_total)
        yield exposition.simple(m.HTTP_TIMEOUTS, server.requests_timed_out_total)
        yield exposition.simple(m.STORE_BACKLOG, writer.backlog)
        yield exposition.simple(m.STORE_DROPPED, writer.dropped)
        yield exposition.simple(m.STORE_WRITTEN, writer.written)
        yield exposition.simple(m.STORE_ERRORS, writer.errors)
        yield exposition.simple(m.STORE_UP, int(writer.up))
        yield exposition.labelled(m.BUILD_INFO, {__version__: 1})
        yield exposition.simple(m.START_TIME, w.started)
        yield from exposition.process_lines(w.process)
        for extra in w.extra_metrics:
            yield from extra()

    def _checks_per_worker(self) -> Counter[str]:
        """How many of the watched checks each worker runs, counted again only when the checks
        or their assignment to workers changed (10,000 lookups at every scrape otherwise)."""
        w = self.watcher
        pool = w.pool
        key = (w.schedule.version, pool.assignments)
        counted_for, checks = self._worker_checks
        if key != counted_for:
            checks = Counter(pool.worker_for(entry.key).name for entry in w.schedule)
            self._worker_checks = (key, checks)
        return checks

    def health(self) -> Page:
        w = self.watcher
        if w.scheduler_failed:
            return Page(503, b"the scheduler stopped\n")
        return Page(200, b"ok\n")

    def ready(self) -> Page:
        w = self.watcher
        problems = []
        if not w.collected:
            problems.append("checks are not collected yet")
        if not w.writer.up:
            problems.append(f"the result store is not writable: {w.config.mask(w.writer.last_error)}")
        if w.cluster is not None and w.cluster.held:
            problems.append(f"taking over {len(w.cluster.held)} checks from another watcher of the cluster")
        if w.stopping:
            problems.append("stopping")
        if problems:
            return Page(503, ("\n".join(problems) + "\n").encode())
        return Page(200, b"ready\n")
