"""Typed per-run state plugins keep on the config: ``StashKey[T]`` keys in a ``Stash``.

A plugin makes its key once, at module level, with the type of what it keeps, and
reads back a value of that type without ``isinstance`` checks::

    TARGETS = StashKey[Targets]("targets")

    config.stash[TARGETS] = targets
    targets = config.stash.get(TARGETS)  # Targets | None

Each key is its own object, so two plugins cannot overwrite each other's state by
picking the same name; the name is only shown in ``repr`` and errors. The idea is
pytest's ``config.stash``.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")
D = TypeVar("D")
_MISSING: Any = object()


class StashKey(Generic[T]):
    """A key of a ``Stash`` whose value is a ``T``; equal only to itself."""

    __slots__ = ("name",)

    def __init__(self, name: str = "") -> None:
        #: What the value is, for ``repr`` and error messages.
        self.name = name

    def __repr__(self) -> str:
        return f"<StashKey {self.name or hex(id(self))}>"


class Stash:
    """A mapping from ``StashKey[T]`` to ``T``: ``stash[key]``, ``stash.get(key)``,
    ``stash.setdefault(key, value)``, ``key in stash``, ``del stash[key]``.
    """

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[StashKey[Any], object] = {}

    def __getitem__(self, key: StashKey[T]) -> T:
        """The value of ``key``; ``KeyError`` naming the key if nothing was stored under it."""
        return self._values[key]  # type: ignore[return-value]  # stored under a StashKey[T]

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._values[key] = value

    def __delitem__(self, key: StashKey[Any]) -> None:
        """Forget ``key``; ``KeyError`` if nothing was stored under it."""
        del self._values[key]

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<Stash {list(self._values)!r}>"

    @overload
    def get(self, key: StashKey[T]) -> T | None: ...
    @overload
    def get(self, key: StashKey[T], default: D) -> T | D: ...
    def get(self, key: StashKey[Any], default: Any = None) -> Any:
        """The value of ``key``, or ``default`` if nothing was stored under it."""
        return self._values.get(key, default)

    def setdefault(self, key: StashKey[T], default: T) -> T:
        """The value of ``key``, after storing ``default`` under it if there was none."""
        return self._values.setdefault(key, default)  # type: ignore[return-value]

    @overload
    def pop(self, key: StashKey[T]) -> T: ...
    @overload
    def pop(self, key: StashKey[T], default: D) -> T | D: ...
    def pop(self, key: StashKey[Any], default: Any = _MISSING) -> Any:
        """Forget ``key`` and return its value; ``default`` if nothing was stored under it
        (``KeyError`` without a default)."""
        if default is _MISSING:
            return self._values.pop(key)
        return self._values.pop(key, default)
