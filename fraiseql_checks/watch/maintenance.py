"""Maintenance windows from the config: when the checks they cover are silenced.

A window is either one stretch of time (``start`` and ``end``) or a daily or
weekly slot (``from`` and ``to``, optionally ``days`` and ``timezone``). Checks
under a window still run and are stored; their state is marked silenced, so
notifiers stay quiet. ``checks`` holds glob patterns on check ids (default: all).
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_KEYS = ("checks", "start", "end", "from", "to", "days", "timezone", "reason")


@dataclasses.dataclass(frozen=True)
class MaintenanceWindow:
    checks: tuple[str, ...] = ("*",)
    reason: str = ""
    #: One stretch of time, seconds since the epoch.
    start: float | None = None
    end: float | None = None
    #: A daily slot: minutes after midnight in ``timezone``; ``to < from`` crosses midnight.
    daily_from: int | None = None
    daily_to: int | None = None
    days: tuple[int, ...] = tuple(range(7))
    timezone: str = "UTC"

    def covers(self, check_id: str) -> bool:
        return any(fnmatch.fnmatchcase(check_id, pattern) for pattern in self.checks)

    def active(self, now: float) -> bool:
        if self.start is not None and self.end is not None:
            return self.start <= now < self.end
        assert self.daily_from is not None and self.daily_to is not None
        local = datetime.datetime.fromtimestamp(now, zoneinfo.ZoneInfo(self.timezone))
        minute = local.hour * 60 + local.minute
        if self.daily_from <= self.daily_to:
            return local.weekday() in self.days and self.daily_from <= minute < self.daily_to
        if minute >= self.daily_from:  # the evening part of a slot crossing midnight
            return local.weekday() in self.days
        yesterday = (local.weekday() - 1) % 7
        return yesterday in self.days and minute < self.daily_to


def _instant(value: Any, key: str) -> float:
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{key}: expected a date and time like 2025-06-01T02:00:00Z, got {value!r}") from None
    if not isinstance(value, datetime.datetime):
        raise ValueError(f"{key}: expected a date and time like 2025-06-01T02:00:00Z, got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return float(value.timestamp())


def _minutes(value: Any, key: str) -> int:
    if isinstance(value, datetime.time):
        return value.hour * 60 + value.minute
    match = _TIME.fullmatch(str(value)) if isinstance(value, str) else None
    if match is None or int(match[1]) > 24 or int(match[2]) > 59:
        raise ValueError(f"{key}: expected a time of day like '02:30', got {value!r}")
    return min(int(match[1]) * 60 + int(match[2]), 24 * 60)


def _window(raw: Any) -> MaintenanceWindow:
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected a table with start/end or from/to, got {raw!r}")
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (expected some of: {', '.join(_KEYS)})")
    checks = raw.get("checks", ["*"])
    if isinstance(checks, str):
        checks = [checks]
    if not isinstance(checks, list) or not checks or not all(isinstance(c, str) for c in checks):
        raise ValueError(f"checks: expected a list of glob patterns on check ids, got {checks!r}")
    reason = raw.get("reason", "")
    if not isinstance(reason, str):
        raise ValueError(f"reason: expected a string, got {reason!r}")
    if "start" in raw or "end" in raw:
        if "start" not in raw or "end" not in raw or "from" in raw or "to" in raw:
            raise ValueError("a window needs both start and end (or from and to for a daily slot), not a mix")
        start, end = _instant(raw["start"], "start"), _instant(raw["end"], "end")
        if end <= start:
            raise ValueError("end must come after start")
        return MaintenanceWindow(tuple(checks), reason, start=start, end=end)
    if "from" not in raw or "to" not in raw:
        raise ValueError("a window needs start and end, or from and to (a daily slot)")
    days = raw.get("days", list(DAYS))
    if isinstance(days, str):
        days = [days]
    if not isinstance(days, list) or not all(isinstance(d, str) and d[:3].lower() in DAYS for d in days):
        raise ValueError(f"days: expected day names like ['sat', 'sun'], got {days!r}")
    timezone = raw.get("timezone", "UTC")
    try:
        zoneinfo.ZoneInfo(str(timezone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: unknown time zone {timezone!r}") from None
    return MaintenanceWindow(
        tuple(checks),
        reason,
        daily_from=_minutes(raw["from"], "from"),
        daily_to=_minutes(raw["to"], "to"),
        days=tuple(sorted({DAYS.index(d[:3].lower()) for d in days})),
        timezone=str(timezone),
    )


def as_windows(value: Any) -> list[MaintenanceWindow]:
    """The ``maintenance`` setting: a list of windows; ``ValueError`` says which is wrong."""
    if not isinstance(value, list):
        raise ValueError(f"expected a list of windows, got {value!r}")
    windows = []
    for index, raw in enumerate(value):
        try:
            windows.append(_window(raw))
        except ValueError as exc:
            raise ValueError(f"window {index + 1}: {exc}") from None
    return windows


def windows_for(check_id: str, windows: Sequence[MaintenanceWindow]) -> tuple[MaintenanceWindow, ...]:
    """The windows that cover ``check_id`` (matched once, so the per-run test is a time compare)."""
    return tuple(w for w in windows if w.covers(check_id))


def silenced(windows: Sequence[MaintenanceWindow], now: float) -> bool:
    return any(window.active(now) for window in windows)
