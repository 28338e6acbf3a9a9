"""The silences of a running watcher: held in memory, kept in the store, asked at every run.

Made through the API (``api/silences.py``), a silence holds at once: the watcher
asks ``Silences.holds`` (one of ``watcher.silencers``) before it stores a run and
the notification policy asks it every second, and each check's series asks it at
every scrape, so ``fraiseql_check_silenced`` is 1 on the next one.

The store keeps them, and the watcher reads them back at start. A silence made
while the store is away holds all the same (an on-call engineer silencing a page
must not wait for the database): it is written once the store answers again, as
a deletion made meanwhile is. Every ``SYNC`` seconds the watcher writes what is
left to write and reads the store's silences again, so watchers that share a
PostgreSQL store share their silences too.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.silences import Silence
from fraiseql_checks.stores import StoreUnavailable

if TYPE_CHECKING:
    import asyncio

    from fraiseql_checks.checks import CheckInfo
    from fraiseql_checks.core.session import Session
    from fraiseql_checks.watch.watcher import Watched, Watcher

T = TypeVar("T")

PLUGIN_NAME = "silences-watching"
#: How often what is left is written and the store's silences read again.
SYNC = 5.0
#: How long one store call may take before the API answers without it.
STORE_TIMEOUT = 5.0


class Silences:
    """One watcher's silences, by id."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.by_id: dict[str, Silence] = {}
        #: Made while the store was away: still to write.
        self.unsaved: set[str] = set()
        #: Deleted while the store was away: still to delete there.
        self.undeleted: set[str] = set()
        #: Of the silences that have not ended, those matching each check (matching does
        #: not depend on time): a scrape of 10,000 checks costs a lookup each.
        self._matching: dict[str, tuple[Silence, ...]] = {}
        self._current: tuple[Silence, ...] = ()
        #: The schedule's version when its series were last made to ask ``holds``; ``None``
        #: while none asks (no silence has not ended).
        self._attached: int | None = None
        #: Counts the changes made here: a read of the store begun before one is stale.
        self._generation = 0
        self._task: asyncio.Task[None] | None = None

    # -- what the watcher asks -------------------------------------------------------------

    def holds(self, check: CheckInfo, at: float) -> bool:
        """Whether a silence holds ``check`` at ``at`` (a ``watcher.silencers`` entry)."""
        if not self._current:
            return False
        matching = self._matching.get(check.id)
        if matching is None:
            matching = self._matching[check.id] = tuple(s for s in self._current if s.matchers.match(check))
        return any(silence.active(at) for silence in matching)

    def _holds_watched(self, watched: Watched, at: float) -> bool:
        return self.holds(watched.check, at)

    def attach(self, *, again: bool = False) -> None:
        """Let every check's series ask the silences while any has not ended, and none ask
        while there is none: a scrape of 10,000 checks then asks nothing. Checks that came
        since (a reload, a hand-over from another watcher of the cluster: new series) are
        attached at the next call (``again``: at once, as after a reload)."""
        schedule = self.watcher.schedule
        attached = schedule.version if self._current else None
        if attached == self._attached and not again:
            return
        self._attached = attached
        for entry in schedule:
            series = entry.item.series
            if attached is None:
                series.silenced_by = None  # a series still silenced reads so at the next scrape
            elif series.silenced_by is None:
                series.silenced_by = functools.partial(self._holds_watched, entry.item)

    def _changed(self) -> None:
        now = time.time()
        self._current = tuple(s for s in self.by_id.values() if s.ends_at > now)
        self._matching = {}
        self.attach()

    # -- what the API asks -------------------------------------------------------------------

    def listed(self) -> list[Silence]:
        return sorted(self.by_id.values(), key=lambda s: (-s.starts_at, s.id))

    async def add(self, silence: Silence) -> bool:
        """Hold ``silence`` from now on; whether the store has it (else it is written later)."""
        self._generation += 1
        self.by_id[silence.id] = silence
        self.undeleted.discard(silence.id)
        self._changed()
        self.watcher.say(
            f"silence {silence.id} made{' by ' + silence.created_by if silence.created_by else ''}"
            f" for {silence.matchers_json()}: {silence.reason}"
        )
        try:
            await self._store_call(self.watcher.writer.store.write_silence(silence))
        except StoreUnavailable as exc:
            self.unsaved.add(silence.id)
            self.watcher.say(f"silence {silence.id} holds but is not stored yet ({exc}); it will be once it can")
            return False
        return True

    async def remove(self, silence_id: str) -> bool:
        """End and forget the silence of that id; whether there was one.

        ``StoreUnavailable`` when this watcher does not know it and the store cannot say."""
        self._generation += 1
        known = self.by_id.pop(silence_id, None)
        self._changed()
        try:
            stored = await self._store_call(self.watcher.writer.store.delete_silence(silence_id))
        except StoreUnavailable:
            if known is None:
                raise
            if silence_id in self.unsaved:
                self.unsaved.discard(silence_id)
            else:
                self.undeleted.add(silence_id)
            stored = False
        self.unsaved.discard(silence_id)
        if known is not None or stored:
            self.watcher.say(f"silence {silence_id} deleted")
        return known is not None or stored

    async def _store_call(self, call: Awaitable[T]) -> T:
        import asyncio

        try:
            return await asyncio.wait_for(call, STORE_TIMEOUT)
        except TimeoutError:
            raise StoreUnavailable(f"the store did not answer within {STORE_TIMEOUT:g}s") from None

    # -- the store ----------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the store's silences (at start, then every ``SYNC`` seconds), after writing
        what is left to write; what was made or deleted here meanwhile wins."""
        store = self.watcher.writer.store
        for silence_id in sorted(self.unsaved):
            silence = self.by_id.get(silence_id)
            if silence is not None:
                await self._store_call(store.write_silence(silence))
                self.watcher.say(f"silence {silence_id} is stored now")
            self.unsaved.discard(silence_id)
        for silence_id in sorted(self.undeleted):
            await self._store_call(store.delete_silence(silence_id))
            self.undeleted.discard(silence_id)
        generation = self._generation
        stored = await self._store_call(store.silences())
        if generation != self._generation:  # changed while reading: the next read sees it
            return
        fresh = {s.id: s for s in stored if s.id not in self.undeleted}
        fresh.update({silence_id: self.by_id[silence_id] for silence_id in self.unsaved if silence_id in self.by_id})
        if fresh != self.by_id:
            self.by_id = fresh
        self._changed()

    async def _sync(self) -> None:
        import asyncio

        while True:
            await asyncio.sleep(SYNC)
            try:
                await self.load()
            except StoreUnavailable:
                pass  # the writer reports the store down; the silences hold from memory
            except Exception as exc:  # a bug here must not stop the syncing
                self.watcher.say(f"silences: internal error: {type(exc).__name__}: {exc}")

    # -- life -----------------------------------------------------------------------------------

    async def start(self) -> None:
        import asyncio

        watcher = self.watcher
        try:
            if not watcher.writer.up:
                raise StoreUnavailable("it is unavailable")
            await self.load()
        except StoreUnavailable as exc:
            watcher.say(f"the silences could not be read from the result store ({exc}); read again every {SYNC:g}s")
        if self.by_id:
            active = sum(1 for s in self.by_id.values() if s.active(time.time()))
            watcher.say(f"{len(self.by_id)} silences read from the store, {active} holding now")
        watcher.silencers.append(self.holds)
        self.attach()
        self._task = asyncio.get_running_loop().create_task(self._sync())

    async def stop(self) -> None:
        import asyncio

        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.unsaved or self.undeleted:
            with contextlib.suppress(StoreUnavailable):
                await self.load()
        if self.unsaved:
            self.watcher.say(f"{len(self.unsaved)} silences were never stored: the store was unavailable")
        with contextlib.suppress(ValueError):
            self.watcher.silencers.remove(self.holds)

    @hookimpl
    def fraiseql_collection_finish(self, session: Session) -> None:
        """A reload may bring checks (new series) and change their tags or labels."""
        self._matching = {}
        self.attach(again=True)


def silences_of(watcher: Watcher) -> Silences | None:
    """The watcher's silences, once watching started."""
    plugin = watcher.config.pluginmanager.get_plugin(PLUGIN_NAME)
    return plugin if isinstance(plugin, Silences) else None


def start(watcher: Watcher) -> Awaitable[None]:
    """Hold the store's silences in ``watcher`` from now on (at watch start)."""
    silences = Silences(watcher)
    watcher.config.pluginmanager.register(silences, PLUGIN_NAME)
    return silences.start()


def stop(watcher: Watcher) -> Awaitable[None] | None:
    """Write what is left, and let go of ``watcher`` (at watch stop)."""
    silences = silences_of(watcher)
    if silences is None:
        return None
    watcher.config.pluginmanager.unregister(silences, PLUGIN_NAME)
    return silences.stop()
