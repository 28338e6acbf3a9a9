"""Telling a real Ctrl-C apart from a ``KeyboardInterrupt`` that a check raised.

While a run's own SIGINT handler is installed, the first Ctrl-C stops the run
gracefully and the second raises ``KeyboardInterrupt``, after ``press()``. Any
other ``KeyboardInterrupt`` comes from user code (``raise KeyboardInterrupt`` in a
check, a fixture, a module) and is one more error of that code. Without our
handler (an embedding program) every ``KeyboardInterrupt`` counts as real.
"""

from __future__ import annotations

import threading

_pressed = threading.Event()
_handled = threading.Event()


def handling(on: bool) -> None:
    """Our SIGINT handler is (or is no longer) installed; a new run starts unpressed."""
    _pressed.clear()
    if on:
        _handled.set()
    else:
        _handled.clear()


def press() -> None:
    """Ctrl-C was pressed again: the ``KeyboardInterrupt`` about to be raised is real."""
    _pressed.set()


def is_real(exc: BaseException) -> bool:
    """``exc`` is an interrupt from the user at the terminal, which no boundary may swallow."""
    return isinstance(exc, KeyboardInterrupt) and (_pressed.is_set() or not _handled.is_set())
