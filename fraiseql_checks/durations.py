"""Durations as people write them: ``30s``, ``1m``, ``1h30m``, ``500ms``, ``7d``."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
#: The longest duration anything accepts: ten years, far beyond any interval, timeout or
#: retention, and small enough that every accepted value formats and schedules exactly.
MAX_DAYS = 3650
MAX_SECONDS = MAX_DAYS * 86400.0


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``, from zero to ``MAX_SECONDS``; a bare number is seconds.

    Raises ``ValueError`` with a one-line message naming ``value`` on anything else:
    text that is not a duration, a negative number, NaN or infinity (also spelled as
    text: ``"nan"``, ``"inf"``), and anything longer than ``MAX_DAYS`` days.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '30s' or '1m', got {value!r}")
    if isinstance(value, int):
        seconds = float(value) if abs(value) <= MAX_SECONDS else (math.inf if value > 0 else -math.inf)
    elif isinstance(value, float):
        seconds = value
    else:
        text = str(value).strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            if not _WHOLE.fullmatch(text):
                raise ValueError(f"expected a duration like '30s', '1m' or '1h30m', got {value!r}") from None
            # Only digits and units: an infinite sum is a number too long to hold, not "inf".
            seconds = sum(float(amount) * _UNITS[unit] for amount, unit in _PART.findall(text))
            return _at_most(seconds, value)
    if math.isnan(seconds) or (math.isinf(seconds) and not isinstance(value, int)):
        raise ValueError(f"expected a finite duration like '30s' or '1m', got {value!r}")
    if seconds < 0:
        raise ValueError(f"expected a positive duration, got {value!r}")
    return _at_most(seconds, value)


def _at_most(seconds: float, value: object) -> float:
    if seconds > MAX_SECONDS:
        raise ValueError(f"expected at most {MAX_DAYS}d, got {value!r}")
    return seconds + 0.0  # -0.0 is 0.0


def positive_duration(value: str | int | float) -> float:
    """``parse_duration``, and zero is refused too: for what must take some time."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration longer than zero, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling, as Prometheus writes it: ``90`` → ``1m30s``."""
    if seconds <= 0:
        return "0s"
    millis = round(seconds * 1000)
    if millis % 1000:
        return f"{millis}ms" if millis < 1000 else f"{seconds:g}s"
    rest = millis // 1000
    out = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)
