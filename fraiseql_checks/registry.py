"""A registry of named things plugins contribute: subcommands, generators.

Each name once; listed in name order. ``fraiseql_add_commands`` and
``fraiseql_add_generators`` hand plugins one of these to fill.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """Named entries; ``kind`` says what they are in error messages."""

    kind = "entry"

    def __init__(self) -> None:
        self._entries: dict[str, T] = {}

    def add(self, entry: T) -> None:
        if entry.name in self._entries:
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry

    def get(self, name: str) -> T | None:
        return self._entries.get(name)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __iter__(self) -> Iterator[T]:
        return iter(self._entries[name] for name in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._entries
