"""The status page's pictures, drawn on the server as SVG: badges, the sparkline, the 90-day bar.

Badges stand alone (``/badge/{check}.svg``) and carry their colours, in the
shields.io look: a grey label on the left, the value on a coloured right. The
sparkline and the bar are inlined in the page and coloured by its CSS classes, so
dark mode restyles them; each has ``role="img"``, an ``aria-label`` and a ``<title>``.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from fraiseql_checks.status.uptime import Day, percent

#: shields.io's colours.
GREEN = "#4c1"
YELLOWGREEN = "#a4a61d"
YELLOW = "#dfb317"
ORANGE = "#fe7d37"
RED = "#e05d44"
GREY = "#9f9f9f"
LABEL = "#555"
XMLNS = "http://www.w3.org/2000/svg"
STATE_COLOURS = {"passing": GREEN, "failing": RED, "flapping": ORANGE, "unknown": GREY}

# Verdana 11px advance widths (shields.io measures text the same way), in pixels.
_NARROW = set("fijlrtI!.,:;'|() ")
_WIDE = set("mwMW%@")


def text_width(text: str) -> float:
    """Roughly how wide ``text`` is in 11px Verdana."""
    width = 0.0
    for char in text:
        if char in _NARROW:
            width += 4.0
        elif char in _WIDE:
            width += 10.5
        elif char.isupper() or char.isdigit():
            width += 7.5
        else:
            width += 6.6
    return width


def uptime_colour(value: float | None) -> str:
    if value is None:
        return GREY
    if value >= 0.999:
        return GREEN
    if value >= 0.99:
        return YELLOWGREEN
    if value >= 0.95:
        return YELLOW
    if value >= 0.90:
        return ORANGE
    return RED


def badge(label: str, value: str, colour: str) -> str:
    """A shields.io-style flat badge: ``label`` on grey, ``value`` on ``colour``."""
    left = round(text_width(label) + 10)
    right = round(text_width(value) + 10)
    width = left + right
    name = f"{label}: {value}"
    texts = []
    for text, x in ((label, left / 2), (value, left + right / 2)):
        shown = escape(text)
        texts.append(
            f'<text x="{x:.1f}" y="15" fill="#010101" fill-opacity=".3" aria-hidden="true">{shown}</text>'
            f'<text x="{x:.1f}" y="14">{shown}</text>'
        )
    return (
        f'<svg xmlns="{XMLNS}" width="{width}" height="20" role="img" aria-label={quoteattr(name)}>'
        f"<title>{escape(name)}</title>"
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="{LABEL}"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f"{''.join(texts)}</g></svg>\n"
    )


def state_badge(label: str, state: str, silenced: bool = False) -> str:
    """The badge of a check's state: ``passing`` green, ``failing`` red, ``silenced`` grey."""
    if silenced:
        return badge(label, f"{state}, silenced", GREY)
    return badge(label, state, STATE_COLOURS.get(state, GREY))


def uptime_badge(label: str, window: str, value: float | None) -> str:
    """The badge of a check's uptime over ``window``: ``uptime 30d | 98.89%``."""
    return badge(f"{label} uptime {window}" if label else f"uptime {window}", percent(value), uptime_colour(value))


def sparkline(points: Sequence[tuple[float, bool]], label: str, width: int = 120, height: int = 24) -> str:
    """Response times as a line (``points``: duration in seconds, passed), failed runs as dots."""
    if not points:
        name = f"{label}: no runs yet"
        return (
            _open_spark(width, height) + f' role="img" aria-label={quoteattr(name)}><title>{escape(name)}</title>'
            f'<line class="axis" x1="0" y1="{height - 1}" x2="{width}" y2="{height - 1}"/></svg>'
        )
    durations = [d for d, _ in points]
    top = max(durations) or 1.0
    step = width / max(len(points) - 1, 1)
    coords = [
        (i * step if len(points) > 1 else width / 2, height - 2 - (d / top) * (height - 4))
        for i, (d, _) in enumerate(points)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(
        f'<circle class="bad" cx="{x:.1f}" cy="{y:.1f}" r="2"/>'
        for (x, y), (_, passed) in zip(coords, points, strict=True)
        if not passed
    )
    name = (
        f"{label}: response time of the last {len(points)} runs,"
        f" latest {_seconds(durations[-1])}, slowest {_seconds(top)}"
    )
    return (
        _open_spark(width, height) + f' role="img" aria-label={quoteattr(name)}><title>{escape(name)}</title>'
        f'<polyline class="line" fill="none" points="{line}"/>{dots}</svg>'
    )


def _open_spark(width: int, height: int) -> str:
    return f'<svg xmlns="{XMLNS}" class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'


def day_class(day: Day) -> str:
    """The CSS class of a day of the bar."""
    if day.uptime is None:
        return "none"
    if day.uptime >= 1.0:
        return "up"
    if day.uptime >= 0.99:
        return "dip"
    if day.uptime >= 0.9:
        return "partial"
    return "down"


def bar(days: Sequence[Day], label: str, height: int = 24, titled: bool = True) -> str:
    """The 90-day bar: one rectangle per UTC day, oldest on the left, each titled with its
    uptime; or, not ``titled`` (the overview of many checks), the days of one colour in a row
    drawn as one rectangle: a few hundred bytes instead of ninety titled rectangles."""
    width = len(days) * 4
    rects = []
    if titled:
        for i, day in enumerate(days):
            date = datetime.datetime.fromtimestamp(day.start, tz=datetime.UTC).strftime("%Y-%m-%d")
            rects.append(
                f'<rect class="{day_class(day)}" x="{i * 4}" width="3" height="{height}" rx="1">'
                f"<title>{date}: {percent(day.uptime)}</title></rect>"
            )
    else:
        i = 0
        while i < len(days):
            kind, j = day_class(days[i]), i
            while j + 1 < len(days) and day_class(days[j + 1]) == kind:
                j += 1
            rects.append(f'<rect class="{kind}" x="{i * 4}" width="{(j - i) * 4 + 3}" height="{height}"/>')
            i = j + 1
    counted = [d for d in days if d.uptime is not None]
    worst = min(counted, key=lambda d: d.uptime or 0.0) if counted else None
    name = f"{label}: uptime per day over the last {len(days)} days"
    if worst is not None and worst.uptime is not None and worst.uptime < 1.0:
        date = datetime.datetime.fromtimestamp(worst.start, tz=datetime.UTC).strftime("%Y-%m-%d")
        name += f", lowest {percent(worst.uptime)} on {date}"
    elif counted:
        name += ", all 100%"
    else:
        name += ", no data"
    return (
        f'<svg xmlns="{XMLNS}" class="bar" viewBox="0 0 {max(width - 1, 1)} {height}" preserveAspectRatio="none"'
        ' role="img"'
        f" aria-label={quoteattr(name)}><title>{escape(name)}</title>{''.join(rects)}</svg>"
    )


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"
