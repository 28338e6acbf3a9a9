"""What a re-read config file (SIGHUP) changes: which settings apply now, which need a restart.

The watcher re-reads its config file at every SIGHUP. A file that does not read or
validate is refused whole. Otherwise each top-level setting is either applied now
(``LIVE``: the watcher and its workers read it again; ``UNUSED``: only commands and
generators read it) or, if its value changed, kept until a restart: the address, the
store, the workers, the notifications, the targets' connections — whatever the watcher
or a worker built once at start. A setting this module does not know (a plugin's)
needs a restart too: nothing says it is read again.

The log names each change (``thresholds.host.cpu_used_max_percent changed: 80 -> 95``)
without ever writing a secret: a secret setting's value is ``***``, a list or a table
is written as its size, every other value goes through the config's mask.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fraiseql_checks.config import Section

if TYPE_CHECKING:
    from fraiseql_checks.config import Config, Setting

#: Settings a reload applies at once. The watcher's (state rules, maintenance windows,
#: start jitter, worker limits) it reads again; thresholds the checks read at each run, in
#: the workers; interval, timeout and severity are defaults the workers' collection reads.
LIVE = frozenset(
    {
        "thresholds",
        "maintenance",
        "failure_threshold",
        "success_threshold",
        "flapping",
        "start_jitter",
        "worker_memory_limit",
        "import_timeout",
        "interval",
        "timeout",
        "severity",
    }
)
#: Settings only commands and generators read, never the watcher: taken as they are.
UNUSED = frozenset(
    {"kubernetes", "alertmanager", "alerts", "dashboards", "metrics_contract", "junit_suite_name", "cache_dir"}
)
#: Values longer than this are cut in the log.
_LONGEST = 80


@dataclasses.dataclass(frozen=True)
class Change:
    """One key of the config file added, removed or changed (nested tables: one level down)."""

    key: str
    kind: str  # "added", "removed", "changed"
    before: Any = None
    after: Any = None


@dataclasses.dataclass
class Reread:
    """The outcome of comparing the config in use with the file as it is now."""

    #: The new configuration, as the file now gives it.
    config: Config
    #: The settings to take from it (every one but those kept for a restart).
    taken: list[str]
    #: What changed in the file among the settings taken, for the log.
    applied: list[Change]
    #: Settings whose value changed but that only a restart applies: they keep theirs.
    restart: list[str]


def compare(current: Config, new: Config) -> Reread:
    """Sort the differences between ``current`` and ``new`` (``current.reread()``)."""
    restart: list[str] = []
    taken: list[str] = []
    for name in current.parser.settings:
        if name not in LIVE and name not in UNUSED and _differs(current.get(name), new.get(name)):
            restart.append(name)
        else:
            taken.append(name)
    kept = set(restart)
    applied = [c for c in changes(current.file_values, new.file_values) if c.key.split(".", 1)[0] not in kept]
    return Reread(new, taken, applied, restart)


def _differs(before: Any, after: Any) -> bool:
    try:
        return bool(before != after)
    except Exception:  # a value that cannot be compared: assume it changed
        return True


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """The keys added, removed and changed from ``before`` to ``after`` (config file tables);
    under a key that holds a table (on either side, the other having a table or nothing),
    the table's keys are compared instead (``thresholds.x``)."""
    found: list[Change] = []
    for key in sorted(set(before) | set(after), key=str):
        old, new = before.get(key), after.get(key)
        if isinstance(old, Mapping) or isinstance(new, Mapping):
            if (old is None or isinstance(old, Mapping)) and (new is None or isinstance(new, Mapping)):
                found += [
                    dataclasses.replace(change, key=f"{key}.{change.key}")
                    for change in _flat_changes(old or {}, new or {})
                ]
                continue
        if key not in after:
            found.append(Change(str(key), "removed", before=old))
        elif key not in before:
            found.append(Change(str(key), "added", after=new))
        elif _differs(old, new):
            found.append(Change(str(key), "changed", old, new))
    return found


def _flat_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    found: list[Change] = []
    for key in sorted(set(before) | set(after), key=str):
        if key not in after:
            found.append(Change(str(key), "removed", before=before[key]))
        elif key not in before:
            found.append(Change(str(key), "added", after=after[key]))
        elif _differs(before[key], after[key]):
            found.append(Change(str(key), "changed", before[key], after[key]))
    return found


def describe(change: Change, config: Config) -> str:
    """``thresholds.x changed: 80 -> 95``, ``start_jitter added: 5s``, ``maintenance removed``;
    values masked, a secret's never shown."""
    secret = _is_secret(change.key, config.parser.settings)
    if change.kind == "removed":
        return f"{change.key} removed"
    after = _show(change.after, secret, config)
    if change.kind == "added":
        return f"{change.key} added: {after}"
    return f"{change.key} changed: {_show(change.before, secret, config)} -> {after}"


def _is_secret(key: str, settings: Mapping[str, Setting]) -> bool:
    name, _, rest = key.partition(".")
    setting = settings.get(name)
    if setting is None:
        return False
    if setting.secret:
        return True
    if rest and isinstance(setting.type, Section):
        inner = {s.name: s for s in setting.type.settings}.get(rest)
        return inner is not None and inner.secret
    return False


def _show(value: Any, secret: bool, config: Config) -> str:
    if secret:
        return "***"
    if isinstance(value, (list, tuple)):  # may hold receivers' URLs: only its size
        return f"{len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, Mapping):
        return f"a table of {len(value)} key{'s' if len(value) != 1 else ''}"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = config.mask(text)
    return text if len(text) <= _LONGEST else text[: _LONGEST - 1] + "…"
