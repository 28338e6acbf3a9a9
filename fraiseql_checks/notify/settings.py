"""The ``notify`` section: receivers, routes, the default, timing, links.

::

    notify:
      group_wait: 10s
      repeat_interval: 4h
      receivers:
        - {name: chat, type: slack, url: "${SLACK_WEBHOOK_URL}"}
      routes:
        - {match: {severity: critical}, receivers: [pager, chat]}
      default: [chat]

The section's plain keys are typed settings (``SETTINGS``); receivers are checked
against their type's own settings once the notifier types are known
(``notify_settings``), each secret masked everywhere from then on. Every problem is
a ``UsageError`` (exit 4) naming the key.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fraiseql_checks.config import (
    Setting,
    UsageError,
    as_duration,
    as_duration_or_zero,
    as_positive_int,
    as_str,
    as_str_list,
    did_you_mean,
)
from fraiseql_checks.runbooks import BASE_URL, BASE_URL_ENV, SECTION
from fraiseql_checks.stash import StashKey

if TYPE_CHECKING:
    from fraiseql_checks.checks import CheckInfo
    from fraiseql_checks.config import Config
    from fraiseql_checks.notify.notifier import Notifier, Notifiers

DEFAULT_GROUP_WAIT = 10.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0
#: How long a delivery that keeps failing (a receiver down, 5xx) is retried before
#: it goes to the dead letters.
DEFAULT_GIVE_UP_AFTER = 24 * 3600.0
#: What a route may match on besides labels: the check's severity, tags, suite and id (a glob).
MATCH_KEYS = ("severity", "tags", "suite", "check")


def as_tables(value: Any) -> list[dict[str, Any]]:
    """A list of tables (``receivers``, ``routes``)."""
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise ValueError(f"expected a list of tables, got {value!r}")
    return [dict(item) for item in value]


SETTINGS = [
    Setting(
        BASE_URL,
        as_str,
        help="base URL a runbook path is joined to, in alert rules, dashboards and messages "
        "(e.g. https://github.com/acme/ops/blob/main/; default: none, the path alone)",
        env=BASE_URL_ENV,
    ),
    Setting("receivers", as_tables, help="where messages go: a list of {name, type, ...}"),
    Setting("routes", as_tables, help="which checks go to which receivers: [{match, receivers, continue}]"),
    Setting("default", as_str_list, help="the receivers of a check no route matches"),
    Setting("group_wait", as_duration_or_zero, help="changes within this window go out as one message (default 10s)"),
    Setting("repeat_interval", as_duration_or_zero, help="a reminder while a check stays failing; 0 = never (4h)"),
    Setting("give_up_after", as_duration, help="how long a failing delivery is retried before it is dead (24h)"),
    Setting("max_per_message", as_positive_int, help="events listed in one message at most (default 50)"),
    Setting("templates", as_str, help="a folder of templates replacing the built-in ones (text.txt.j2, html.html.j2)"),
]


@dataclasses.dataclass(frozen=True)
class Route:
    """``{match: {...}, receivers: [...], continue: false}``."""

    match: Mapping[str, tuple[str, ...]]
    receivers: tuple[str, ...]
    continue_: bool = False

    def matches(self, check: CheckInfo) -> bool:
        """Every key matches (a list: any of its values): ``severity``, ``tags`` (any of the
        check's), ``suite``, ``check`` (globs on the id), else the label of that name."""
        for key, wanted in self.match.items():
            if key == "severity":
                ok = check.severity in wanted
            elif key == "tags":
                ok = any(tag in wanted for tag in check.tags)
            elif key == "suite":
                ok = check.suite in wanted
            elif key == "check":
                ok = any(fnmatch.fnmatchcase(check.id, pattern) for pattern in wanted)
            else:
                ok = check.labels.get(key) in wanted
            if not ok:
                return False
        return True


@dataclasses.dataclass(frozen=True)
class NotifySettings:
    receivers: Mapping[str, Notifier]
    routes: tuple[Route, ...] = ()
    default: tuple[str, ...] = ()
    group_wait: float = DEFAULT_GROUP_WAIT
    repeat_interval: float = DEFAULT_REPEAT_INTERVAL
    give_up_after: float = DEFAULT_GIVE_UP_AFTER
    max_per_message: int = 50
    runbook_base_url: str = ""
    #: Grafana's base URL (``grafana.url``), for links to a check's suite dashboard.
    grafana_url: str = ""
    templates: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.receivers)

    def receivers_for(self, check: CheckInfo) -> tuple[str, ...]:
        """Who hears about ``check``: its ``@check(notify=...)``, else the routes (first match
        wins unless it says ``continue``), else ``default``. Unknown names are left out
        (``unknown_receivers`` reports them)."""
        if check.spec.notify is not None:
            return tuple(name for name in dict.fromkeys(check.spec.notify) if name in self.receivers)
        chosen: list[str] = []
        for route in self.routes:
            if route.matches(check):
                chosen.extend(route.receivers)
                if not route.continue_:
                    break
        else:
            if not chosen:
                chosen.extend(self.default)
        return tuple(dict.fromkeys(chosen))

    def unknown_receivers(self, check: CheckInfo) -> list[str]:
        """Names ``@check(notify=...)`` gives that no receiver has."""
        return [name for name in check.spec.notify or () if name not in self.receivers]


NOTIFY_SETTINGS: StashKey[NotifySettings] = StashKey("notify.settings")


def notifier_types(config: Config) -> Notifiers:
    # the notifiers' types: imported when notifying, not at every start
    from fraiseql_checks.notify.notifier import Notifiers

    notifiers = Notifiers()
    config.hook.fraiseql_add_notifiers.call_historic(kwargs={"notifiers": notifiers})
    return notifiers


def notify_settings(config: Config) -> NotifySettings:
    """The checked ``notify`` section (once per run); ``UsageError`` naming the key."""
    found = config.stash.get(NOTIFY_SETTINGS)
    if found is None:
        try:
            found = _build(config, notifier_types(config))
        except ValueError as exc:
            raise UsageError(config.mask(f"{SECTION}.{exc}")) from None
        config.stash[NOTIFY_SETTINGS] = found
    return found


def _build(config: Config, types: Notifiers) -> NotifySettings:
    values = config.get(SECTION)
    receivers: dict[str, Notifier] = {}
    for index, table in enumerate(values.get("receivers", [])):
        where = f"receivers[{index}]"
        name, kind = table.get("name"), table.get("type")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: every receiver needs a name")
        where = f"receivers[{index}] ({name})"
        if name in receivers:
            raise ValueError(f"{where}: the name {name!r} is used twice")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"{where}: give its type ({', '.join(types.names())})")
        notifier_type = types.get(kind)
        if notifier_type is None:
            raise ValueError(f"{where}: unknown type {kind!r}{did_you_mean(kind, types.names())}")
        options = {key: value for key, value in table.items() if key not in ("name", "type")}
        receiver, secrets = notifier_type.make(name, options, where)
        for secret in secrets:
            config.mask.add(secret)
        for text in _texts(options):  # URLs with passwords or tokens in their query
            config.mask.add_url(text)
        receivers[name] = receiver
    routes = tuple(_route(table, f"routes[{index}]", receivers) for index, table in enumerate(values.get("routes", [])))
    default = tuple(_known(values.get("default", []), "default", receivers))
    grafana = config.get("grafana") if _declared(config, "grafana") else {}
    return NotifySettings(
        receivers=receivers,
        routes=routes,
        default=default,
        group_wait=values.get("group_wait", DEFAULT_GROUP_WAIT),
        repeat_interval=values.get("repeat_interval", DEFAULT_REPEAT_INTERVAL),
        give_up_after=values.get("give_up_after", DEFAULT_GIVE_UP_AFTER),
        max_per_message=values.get("max_per_message", 50),
        runbook_base_url=values.get(BASE_URL) or "",
        grafana_url=str(grafana.get("url") or ""),
        templates=str(config.rootdir / values["templates"]) if values.get("templates") else None,
    )


def _route(table: Mapping[str, Any], where: str, receivers: Mapping[str, Notifier]) -> Route:
    unknown = set(table) - {"match", "receivers", "continue"}
    if unknown:
        key = sorted(unknown)[0]
        raise ValueError(f"{where}: unknown key {key!r}{did_you_mean(key, ['match', 'receivers', 'continue'])}")
    match = table.get("match", {})
    if not isinstance(match, Mapping):
        raise ValueError(f"{where}.match: expected a table of label names to values, got {match!r}")
    wanted: dict[str, tuple[str, ...]] = {}
    for key, value in match.items():
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise ValueError(f"{where}.match.{key}: expected a string or a list of strings, got {value!r}")
        wanted[str(key)] = tuple(values)
    names = table.get("receivers")
    if names is None:
        raise ValueError(f"{where}: give the receivers it sends to")
    proceed = table.get("continue", False)
    if not isinstance(proceed, bool):
        raise ValueError(f"{where}.continue: expected true or false, got {proceed!r}")
    return Route(wanted, tuple(_known(names, f"{where}.receivers", receivers)), proceed)


def _known(names: Any, where: str, receivers: Mapping[str, Notifier]) -> list[str]:
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"{where}: expected a list of receiver names, got {names!r}")
    for name in names:
        if name not in receivers:
            known = did_you_mean(name, receivers) if receivers else " (no receivers are configured)"
            raise ValueError(f"{where}: unknown receiver {name!r}{known}")
    return list(names)


def _declared(config: Config, name: str) -> bool:
    try:
        config.get(name)
    except KeyError:
        return False
    return True


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, Sequence):
        return [text for item in value for text in _texts(item)]
    return []
