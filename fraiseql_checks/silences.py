"""Silences as data: which checks one silence holds quiet, and from when until when.

A leaf module: the API makes silences, the result stores keep them, the watcher
asks them whether a check is silenced (as it asks its maintenance windows). A
silenced check still runs and is stored; its results and state changes are marked
silenced, ``fraiseql_check_silenced`` is 1 and notifications stay quiet.

A silence holds a check when every matcher it has matches: ``check`` a glob on the
check id, ``tags`` any of the check's tags, ``labels`` all equal, ``severity``
equal. A silence has at least one matcher.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["Matchers", "Silence", "new_silence_id"]


class Silenceable(Protocol):
    """What a matcher reads of a check (``checks.CheckInfo`` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def labels(self) -> Mapping[str, str]: ...


@dataclasses.dataclass(frozen=True)
class Matchers:
    """Which checks a silence holds: each given matcher must match."""

    #: A glob on the check id (``checks/db/*``).
    check: str | None = None
    #: Any of these among the check's tags.
    tags: tuple[str, ...] = ()
    #: Every one equal to the check's label of that name.
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    severity: str | None = None

    @property
    def empty(self) -> bool:
        return self.check is None and not self.tags and not self.labels and self.severity is None

    def match(self, check: Silenceable) -> bool:
        if self.check is not None and not fnmatch.fnmatchcase(check.id, self.check):
            return False
        if self.severity is not None and check.severity != self.severity:
            return False
        if self.tags and not any(tag in check.tags for tag in self.tags):
            return False
        labels = check.labels
        return all(labels.get(name) == value for name, value in self.labels.items())

    def to_json(self) -> dict[str, Any]:
        """The matchers given, as the API shows them."""
        out: dict[str, Any] = {}
        if self.check is not None:
            out["check"] = self.check
        if self.tags:
            out["tags"] = list(self.tags)
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.severity is not None:
            out["severity"] = self.severity
        return out

    @classmethod
    def of(cls, value: Mapping[str, Any]) -> Matchers:
        return cls(
            check=value.get("check"),
            tags=tuple(value.get("tags", ())),
            labels=dict(value.get("labels", {})),
            severity=value.get("severity"),
        )


@dataclasses.dataclass(frozen=True)
class Silence:
    """One silence: its matchers, why, who, and its stretch of time ``[starts_at, ends_at)``."""

    id: str
    matchers: Matchers
    reason: str
    starts_at: float
    ends_at: float
    created_at: float
    created_by: str = ""

    def active(self, at: float) -> bool:
        return self.starts_at <= at < self.ends_at

    def holds(self, check: Silenceable, at: float) -> bool:
        """Whether this silence holds ``check`` at ``at``."""
        return self.active(at) and self.matchers.match(check)

    def matchers_json(self) -> str:
        return json.dumps(self.matchers.to_json(), separators=(",", ":"), sort_keys=True)


def new_silence_id() -> str:
    """A fresh id: random, short enough to type."""
    return secrets.token_hex(8)
