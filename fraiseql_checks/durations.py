"""Durations as people write them: ``30s``, ``1m``, ``1h30m``, ``500ms``, ``7d``."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``; a bare number is seconds.

    Raises ``ValueError`` with a message fit for a user on anything else.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '30s' or '1m', got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"expected a positive duration, got {value!r}")
        return float(value)
    text = str(value).strip().replace(" ", "")
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if number < 0:
            raise ValueError(f"expected a positive duration, got {value!r}")
        return number
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"expected a duration like '30s', '1m' or '1h30m', got {value!r}")
    return sum(float(amount) * _UNITS[unit] for amount, unit in _PART.findall(text))


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
