"""Worker threads for synchronous checks and fixtures, that a hung call cannot hold.

``concurrent.futures`` cannot give up on a running call and waits for every worker
at exit. Here a job whose caller stopped waiting (a timeout) retires its thread
once the call returns, a replacement thread takes the queue, and the threads are
daemons, so a check stuck in ``time.sleep(3600)`` neither blocks the run nor the
process exit. Results travel back in batches: one loop wake-up for many jobs.

Jobs go out in batches too: what the loop enqueues while it delivers a batch of ends
(the next checks, started from those ends' callbacks), or while its caller ``holds``
the lane, is queued when the batch ends. A thread woken at the first job of many would
wake only to wait for the GIL the loop still holds, and take it from the loop between
two of them: two wake-ups and a preempted loop for one (docs/performance.md).

Threads are started as calls block, not as jobs arrive: the first at once, then, every
``GROW_AFTER`` while jobs wait, one more for each thread found inside a call that
gave up the GIL (the event loop's thread runs, so a thread in a call is waiting on
something). Quick calls run one after the other on one thread, without a thread per
job to start and to hand the GIL to; blocking ones (a sync client waiting on the
network) still get a thread each, up to the limit, the count doubling every turn.
"""

from __future__ import annotations

import collections
import contextvars
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

#: How often, while jobs wait, the threads are looked at for calls that block.
GROW_AFTER = 0.001
#: A call running this long when the loop's thread looks is taken as blocked (a thread
#: about to finish its job may still be taking the lane's lock).
BLOCKED_AFTER = 50e-6


class Job:
    """What the lane's threads run: ``call()`` on a thread, in ``context``; ``ended()`` on the
    loop, with what it returned or raised, unless the job was abandoned first.

    A caller that keeps many calls in flight can be its own job (``runner.SyncRun``): the
    thread then touches one object a call instead of a job, a bound method and an argument
    tuple made on the loop's thread, each a cache miss on the other core (a run of 10,000
    trivial checks: ~12 ms, docs/performance.md).
    """

    __slots__ = ("cancelled", "context", "error", "started", "thread", "value")

    def __init__(self, context: contextvars.Context) -> None:
        self.context = context
        self.cancelled = False
        self.thread: threading.Thread | None = None
        self.started = 0.0  # perf_counter() when a thread took it
        #: What the call returned or raised, from its end until it is delivered.
        self.value: Any = None
        self.error: BaseException | None = None

    def call(self) -> Any:
        """On a thread of the lane, in ``context``: the call itself."""
        raise NotImplementedError

    def ended(self, value: Any, error: BaseException | None) -> None:
        """On the loop, in the batch of calls that ended with it: what ``call`` returned or raised."""
        raise NotImplementedError

    def abandoned(self) -> None:
        """On the loop: the job was given up on (``ThreadLane.abandon``); ``ended`` is not called."""


class Call(Job):
    """``func(*args, **kwargs)``, its end set on ``future`` (``ThreadLane.run``) or handed to
    ``done(value, error)`` (``ThreadLane.submit``)."""

    __slots__ = ("args", "done", "func", "future", "kwargs")

    def __init__(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        future: asyncio.Future[Any] | None,
        context: contextvars.Context,
        done: Callable[[Any, BaseException | None], None] | None = None,
    ) -> None:
        super().__init__(context)
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.future = future
        self.done = done

    def call(self) -> Any:
        return self.func(*self.args, **self.kwargs)

    def ended(self, value: Any, error: BaseException | None) -> None:
        future = self.future
        if future is None:
            done, self.done = self.done, None  # it may hold what holds the job: no cycle left
            if done is not None:
                done(value, error)
        elif future.done():
            pass  # its awaiting task was cancelled
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def abandoned(self) -> None:
        self.done = None  # what a hung call's thread keeps alive is the call, not its caller's callback


class ThreadLane:
    """Runs blocking callables on daemon threads for one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_threads: int) -> None:
        self._loop = loop
        self._max = max(1, max_threads)
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a job
        self._pending = 0  # jobs queued and not yet picked up
        self._running: set[Job] = set()  # jobs in a call on a thread that still serves the lane
        self._live = 0
        self._retired: set[threading.Thread] = set()
        self._finished: collections.deque[Job] = collections.deque()  # calls ended, to deliver
        self._wake_pending = False
        self._closed = False
        #: Jobs enqueued while the lane is held (``hold``), queued at the last ``release``.
        self._held: list[Job] = []
        self._holds = 0
        #: Whether the loop is delivering a batch of ends (``_deliver``); ``batch_ended``
        #: is called after each such batch (a caller that sends what the ends made, at once).
        self.delivering = False
        self.batch_ended: Callable[[], None] | None = None
        self._growing: asyncio.TimerHandle | None = None
        self.abandoned = 0
        #: The context the calls' ends are delivered in: the one the lane was made in (a
        #: thread's own would be empty, and what a callback starts would copy it).
        self._context = contextvars.copy_context()

    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``func(*args, **kwargs)`` on a worker thread, in a copy of the current context.

        If the awaiting task is cancelled (a timeout) while the call runs, the call
        is abandoned: its thread finishes it unobserved and then exits, and a new
        thread serves the queue.
        """
        import asyncio

        future: asyncio.Future[Any] = self._loop.create_future()
        job = Call(func, args, kwargs, future, contextvars.copy_context())
        self.enqueue(job)
        try:
            return await future
        except asyncio.CancelledError:
            self.abandon(job)
            raise

    def submit(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        context: contextvars.Context,
        done: Callable[[Any, BaseException | None], None],
    ) -> Job:
        """Call ``func(*args)`` on a worker thread in ``context``; ``done(value, error)`` is
        called on the loop when it returns (in the batch of calls that ended with it), unless
        the job was abandoned first (``abandon``). No future, no task: for callers that keep
        many calls in flight and account for each in a callback."""
        job = Call(func, args, {}, None, context, done)
        self.enqueue(job)
        return job

    def hold(self) -> bool:
        """Keep the jobs enqueued from now on until the matching ``release``, which queues
        them all at once (on the loop's thread, for what one callback starts). Holds nest:
        the outermost one's release queues them; ``False`` for a hold inside another."""
        self._holds += 1
        return self._holds == 1

    def release(self) -> None:
        if not self._holds:  # a negative depth would hold every job from now on, silently
            raise RuntimeError("ThreadLane.release() without a hold()")
        self._holds -= 1
        if self._holds:
            return
        held, self._held = self._held, []
        for job in held:
            if not job.cancelled:  # abandoned while held: it never runs
                self.enqueue(job)

    def enqueue(self, job: Job) -> None:
        """Run ``job`` (its ``call()`` on a thread, its ``ended()`` on the loop after)."""
        if self._holds:
            self._held.append(job)
            return
        with self._lock:
            self._pending += 1
            waits = self._pending > self._idle and self._live < self._max
            spawn = waits and not self._live
            if spawn:
                self._live += 1
                self._idle += 1
        self._queue.put(job)
        if spawn:
            self._spawn()
        elif waits and self._growing is None:
            self._growing = self._loop.call_later(GROW_AFTER, self._grow)

    def _grow(self) -> None:
        """While jobs wait for a thread: one more thread for each call that blocks."""
        now = time.perf_counter()
        with self._lock:
            blocked = sum(1 for job in self._running if now - job.started >= BLOCKED_AFTER)
            spawn = 0 if self._closed else max(0, min(blocked, self._pending - self._idle, self._max - self._live))
            self._live += spawn
            self._idle += spawn
            waits = self._pending > self._idle and self._live < self._max and not self._closed
        for _ in range(spawn):
            self._spawn()
        self._growing = self._loop.call_later(GROW_AFTER, self._grow) if waits else None

    def _spawn(self) -> None:
        thread = threading.Thread(target=self._work, name="fraiseql-check-worker", daemon=True)
        thread.start()

    def abandon(self, job: Job) -> None:
        """Give up on ``job``: not called if it has not started; if it is in a call, its
        thread finishes it unobserved and then exits (a new thread serves the lane)."""
        job.abandoned()
        with self._lock:
            job.cancelled = True
            thread = job.thread
            if thread is None or thread in self._retired:
                return
            self._retired.add(thread)
            self._running.discard(job)
            self._live -= 1
            self.abandoned += 1
            spawn = not self._closed
            if spawn:
                self._live += 1
                self._idle += 1
        if spawn:
            self._spawn()

    def _work(self) -> None:
        me = threading.current_thread()
        get = self._queue.get
        while True:
            job = get()
            if job is None:
                return
            with self._lock:
                self._pending -= 1
                if job.cancelled:
                    continue
                self._idle -= 1
                job.thread = me
                job.started = time.perf_counter()
                self._running.add(job)
            try:
                job.value = job.context.run(job.call)
            except BaseException as exc:  # reported to the awaiting task
                job.error = exc
            with self._lock:
                job.thread = None
                self._running.discard(job)
                self._finished.append(job)  # (the job carries its end: no tuple made per call)
                wake = not self._wake_pending
                self._wake_pending = True
                if me in self._retired:
                    self._retired.discard(me)
                    retire = True
                else:
                    self._idle += 1
                    retire = False
            if wake:
                try:
                    self._loop.call_soon_threadsafe(self._deliver, context=self._context)
                except RuntimeError:  # the loop is closed: nobody is waiting any more
                    return
            if retire:
                return

    def _deliver(self) -> None:
        with self._lock:
            self._wake_pending = False
            finished, self._finished = self._finished, collections.deque()
            waits = self._pending > self._idle
        if not waits and self._growing is not None:
            # No job waits for a thread: the look for blocked calls is not needed (it would
            # wake the loop a millisecond after every batch of quick calls). A job enqueued
            # while the threads are busy arms it again.
            self._growing.cancel()
            self._growing = None
        self.hold()
        self.delivering = True
        try:
            for job in finished:
                value, error = job.value, job.error
                job.value = job.error = None
                if job.cancelled:
                    continue
                try:
                    job.ended(value, error)
                except Exception as exc:  # a bug of the caller's: said, and the batch's other calls delivered
                    self._loop.call_exception_handler({"message": "a lane job's callback failed", "exception": exc})
        finally:
            self.delivering = False
            try:
                if self.batch_ended is not None:
                    self.batch_ended()
            except Exception as exc:
                self._loop.call_exception_handler({"message": "a lane's batch_ended failed", "exception": exc})
            finally:
                self.release()

    def close(self) -> None:
        """Let idle threads exit; threads stuck in abandoned calls stay daemons."""
        if self._growing is not None:
            self._growing.cancel()
            self._growing = None
        with self._lock:
            self._closed = True
            live = self._live
        for _ in range(live):
            self._queue.put(None)
