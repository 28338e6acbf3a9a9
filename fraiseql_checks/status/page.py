"""The status page and a check's detail page: what they show, rendered by Jinja2 (autoescaped).

``overview`` and ``detail`` gather what a page shows into plain views (state,
"blocked by", "silenced", uptime, the bar, the sparkline, the last incidents,
maintenance notices); the templates in ``status/templates/`` only lay them out.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from fraiseql_checks.states import State
from fraiseql_checks.status import svg
from fraiseql_checks.status.board import CHANGES_SECONDS, StatusBoard
from fraiseql_checks.status.uptime import DAY, EMPTY, WINDOWS, Uptime, percent
from fraiseql_checks.stores import StoreUnavailable

if TYPE_CHECKING:
    from fraiseql_checks.states import StateChange
    from fraiseql_checks.watch.maintenance import MaintenanceWindow
    from fraiseql_checks.watch.watcher import Watched, Watcher

TEMPLATES = Path(__file__).parent / "templates"
#: How often the page reloads itself, in seconds.
REFRESH = 30
#: How far back the overview looks for incidents, and how many it shows per check.
INCIDENT_WINDOW = 30 * DAY
INCIDENTS_SHOWN = 3
#: The detail page: incidents over the bar's 90 days, results of the last day.
DETAIL_INCIDENT_WINDOW = 90 * DAY
DETAIL_RESULTS = 200
#: One-off maintenance windows this close are announced.
UPCOMING = 14 * DAY
BAD_STATES = (State.FAILING, State.FLAPPING)


@dataclasses.dataclass(frozen=True)
class Incident:
    """A stretch of failing or flapping: from the change into it to the change out of it."""

    state: str
    started: float | None  # None: before the window looked
    ended: float | None  # None: still going on
    message: str

    @property
    def duration(self) -> str:
        if self.started is None:
            return "longer than the window shown"
        return human_duration((self.ended or time.time()) - self.started)


@dataclasses.dataclass(frozen=True)
class Notice:
    """A maintenance window worth telling: in progress, upcoming, or recurring."""

    status: str  # "in progress", "upcoming", "recurring"
    title: str
    text: str
    start: float | None = None
    end: float | None = None


@dataclasses.dataclass
class CheckView:
    id: str
    name: str
    suite: str
    severity: str
    state: str
    since: float | None
    silenced: bool
    blocked_by: str
    targets: tuple[str, ...]
    uptime: Uptime
    sparkline: Markup
    bar: Markup
    incidents: list[Incident]
    description: str = ""
    runbook: str | None = None
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    results: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def href(self) -> str:
        return "checks/" + urllib.parse.quote(self.id, safe="")

    @property
    def badge_href(self) -> str:
        return "badge/" + urllib.parse.quote(self.id, safe="") + ".svg"

    @property
    def failing(self) -> bool:
        return self.state in {s.value for s in BAD_STATES}

    @property
    def state_text(self) -> str:
        """``failing``, ``failing — blocked by database``, ``failing — silenced``."""
        parts = [self.state]
        if self.failing and self.blocked_by:
            parts.append(f"blocked by {self.blocked_by}")
        if self.silenced:
            parts.append("silenced")
        return " — ".join(parts)


@dataclasses.dataclass
class Group:
    name: str
    checks: list[CheckView]

    @property
    def worst(self) -> str:
        states = {c.state for c in self.checks}
        for state in ("failing", "flapping", "unknown"):
            if state in states:
                return state
        return "passing"


def human_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def when(epoch: float | None) -> str:
    if not epoch:
        return ""
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(epoch: float | None) -> str:
    if not epoch:
        return ""
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).isoformat().replace("+00:00", "Z")


def incidents_of(changes: Iterable[StateChange]) -> list[Incident]:
    """The incidents the changes of one check tell (oldest first), newest first."""
    found: list[Incident] = []
    current: dict[str, Any] | None = None
    first = True
    for change in changes:
        bad_now = change.state in BAD_STATES
        bad_before = change.previous in BAD_STATES
        if first and bad_before and current is None:
            current = {"state": change.previous.value, "started": None, "message": ""}
        first = False
        if bad_now and current is None:
            current = {"state": change.state.value, "started": change.at, "message": change.message}
        elif bad_now and current is not None:
            current["state"] = change.state.value
            current["message"] = current["message"] or change.message
        elif not bad_now and current is not None:
            found.append(Incident(current["state"], current["started"], change.at, current["message"]))
            current = None
    if current is not None:
        found.append(Incident(current["state"], current["started"], None, current["message"]))
    return found[::-1]


def notices(windows: Sequence[MaintenanceWindow], now: float) -> list[Notice]:
    """The maintenance windows in progress, the one-off ones to come, and the recurring ones."""
    found: list[Notice] = []
    for window in windows:
        covers = "all checks" if window.checks == ("*",) else ", ".join(window.checks)
        reason = window.reason or "maintenance"
        if window.start is not None and window.end is not None:
            if window.active(now):
                found.append(
                    Notice(
                        "in progress", reason, f"until {when(window.end)}; covers {covers}", window.start, window.end
                    )
                )
            elif now < window.start <= now + UPCOMING:
                found.append(
                    Notice(
                        "upcoming",
                        reason,
                        f"{when(window.start)} to {when(window.end)}; covers {covers}",
                        window.start,
                        window.end,
                    )
                )
            continue
        assert window.daily_from is not None and window.daily_to is not None
        days = "every day" if len(window.days) == 7 else ", ".join(_DAY_NAMES[d] for d in window.days)
        slot = f"{_clock(window.daily_from)}–{_clock(window.daily_to)} {window.timezone}, {days}; covers {covers}"
        found.append(Notice("in progress" if window.active(now) else "recurring", reason, slot))
    order = {"in progress": 0, "upcoming": 1, "recurring": 2}
    return sorted(found, key=lambda n: (order[n.status], n.start or 0.0))


_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def watched_checks(watcher: Watcher) -> list[Watched]:
    """Every check, in a cluster those the other watchers run too (as stored)."""
    return watcher.view()


def check_view(
    watcher: Watcher,
    board: StatusBoard,
    watched: Watched,
    uptime: Uptime,
    changes: Sequence[StateChange],
    now: float,
    points: Sequence[tuple[float, bool]] | None = None,
    incidents_shown: int = INCIDENTS_SHOWN,
    detail: bool = False,
) -> CheckView:
    check, state = watched.check, watched.state
    if points is None:  # the overview: drawn once per new run or uptime, not at every page load
        runs = board.recent.get(check.id, ())
        latest = runs[-1] if runs else None
        drawn = board.drawings.get(check.id)
        if drawn is not None and drawn[0] == latest and drawn[1] is uptime and not detail:
            sparkline, bar = drawn[2], drawn[3]
        else:
            sparkline = svg.sparkline([(duration, passed) for _, duration, passed in runs], check.name)
            bar = svg.bar(uptime.days, check.name, titled=detail)
            if not detail:
                board.drawings[check.id] = (latest, uptime, sparkline, bar)
    else:
        sparkline = svg.sparkline(points, check.name)
        bar = svg.bar(uptime.days, check.name, titled=detail)
    return CheckView(
        id=check.id,
        name=check.name,
        suite=check.suite,
        severity=check.severity,
        state=state.state.value,
        since=state.since,
        silenced=watcher.is_silenced(watched, now),
        blocked_by=board.blocked_by.get(check.id, ""),
        targets=tuple(check.targets),
        uptime=uptime,
        sparkline=Markup(sparkline),  # built by svg.py, escaped there
        bar=Markup(bar),
        incidents=incidents_of(changes)[:incidents_shown],
        description=check.description,
        runbook=check.runbook,
        labels=dict(check.labels),
    )


def group_views(views: Sequence[CheckView], label: str | None) -> list[Group]:
    """The checks by suite, or by the value of ``label`` (``no <label>`` last)."""
    groups: dict[str, list[CheckView]] = {}
    for view in views:
        key = view.suite if not label else view.labels.get(label, "")
        groups.setdefault(key, []).append(view)
    missing = f"no {label}" if label else "no suite"
    ordered = sorted(groups.items(), key=lambda item: (item[0] == "", item[0]))
    return [Group(name or missing, checks) for name, checks in ordered]


async def _changes_by_check(
    watcher: Watcher, since: float, now: float, check_id: str | None = None
) -> dict[str, list[StateChange]]:
    try:
        changes = await watcher.writer.store.state_changes(since, now + 1, check_id)
    except StoreUnavailable:
        return {}
    return _by_check(changes)


async def _overview_changes(watcher: Watcher, board: StatusBoard, now: float) -> dict[str, list[StateChange]]:
    """Every check's changes over ``INCIDENT_WINDOW``, read again at most every ``CHANGES_SECONDS``
    or when a run may have changed a state (``StatusBoard.changes``)."""
    cached, generation = board.changes, board.generation
    if cached is not None and cached[1] == generation and now - cached[0] < CHANGES_SECONDS:
        return cached[2]
    try:
        changes = await watcher.writer.store.state_changes(now - INCIDENT_WINDOW, now + 1)
    except StoreUnavailable:
        return {}
    by_check = _by_check(changes)
    board.changes = (now, generation, by_check)  # a run meanwhile has moved the generation on
    return by_check


def _by_check(changes: Iterable[StateChange]) -> dict[str, list[StateChange]]:
    by_check: dict[str, list[StateChange]] = {}
    for change in changes:
        by_check.setdefault(change.check_id, []).append(change)
    return by_check


async def _uptimes(board: StatusBoard, check_ids: Sequence[str]) -> tuple[dict[str, Uptime], bool]:
    """The uptime of each check, and whether the store answered."""
    try:
        return await board.uptime.get(check_ids), True
    except StoreUnavailable:
        return {}, False


def _common(watcher: Watcher, now: float, store_up: bool) -> dict[str, Any]:
    return {
        "refresh": REFRESH,
        "now": now,
        "notices": notices(watcher.settings.maintenance, now),
        "windows": list(WINDOWS),
        "store_up": store_up,
    }


async def overview(watcher: Watcher, board: StatusBoard, label: str | None = None, base: str = "") -> str:
    """The status page: every watched check, grouped by suite or by ``label``."""
    now = time.time()
    checked = watched_checks(watcher)
    uptimes, store_up = await _uptimes(board, [w.check.id for w in checked])
    changes = await _overview_changes(watcher, board, now)
    views = [
        check_view(watcher, board, w, uptimes.get(w.check.id, EMPTY), changes.get(w.check.id, []), now) for w in checked
    ]
    counts = {
        state: sum(1 for v in views if v.state == state) for state in ("passing", "failing", "flapping", "unknown")
    }
    labels = sorted({name for w in checked for name in w.check.labels})
    if len(board.drawings) > 2 * len(checked):  # checks gone since: their drawings go too
        shown = {w.check.id for w in checked}
        board.drawings = {key: value for key, value in board.drawings.items() if key in shown}
    return render(
        "index.html.j2",
        groups=group_views(views, label),
        counts=counts,
        total=len(views),
        label=label or "",
        labels=labels,
        base=base,
        **_common(watcher, now, store_up),
    )


async def detail(watcher: Watcher, board: StatusBoard, watched: Watched, base: str = "../") -> str:
    """A check's page: its state, metadata, uptime, the bar, its last results and incidents."""
    now = time.time()
    check_id = watched.check.id
    uptimes, store_up = await _uptimes(board, [w.check.id for w in watched_checks(watcher)])
    changes = await _changes_by_check(watcher, now - DETAIL_INCIDENT_WINDOW, now, check_id)
    try:
        results = await watcher.writer.store.results(check_id, now - DAY, now + 1)
    except StoreUnavailable:
        results, store_up = [], False
    results = results[-DETAIL_RESULTS:]
    points = [(r.duration_s, r.outcome.value == "passed") for r in results] if results else None
    view = check_view(
        watcher,
        board,
        watched,
        uptimes.get(check_id, EMPTY),
        changes.get(check_id, []),
        now,
        points=points,
        incidents_shown=50,
        detail=True,
    )
    view.results = [
        {"at": r.started_at, "outcome": r.outcome.value, "duration": r.duration_s, "message": r.message}
        for r in reversed(results[-20:])
    ]
    return render("check.html.j2", check=view, base=base, **_common(watcher, now, store_up))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = when
    env.filters["iso"] = iso
    env.filters["percent"] = percent
    env.filters["ago"] = lambda epoch: human_duration(time.time() - epoch) if epoch else ""
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
