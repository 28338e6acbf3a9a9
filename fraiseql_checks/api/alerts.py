"""``/api/v1/alerts``: the alerting rules ``generate alerts`` writes, and the alerts Prometheus holds.

``GET /api/v1/alerts/rules`` answers the rule files of ``fraiseql-check generate
alerts`` for the watched checks, as JSON: each file's path, its profile and its
groups, as Prometheus would load them. They are made by the generator's own
``rule_files``, in a thread (rendering every rule of thousands of checks must not
delay them). ``GET /api/v1/alerts`` reads the active alerts of the configured
Prometheus (its ``/api/v1/alerts``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from fraiseql_checks.api import web
from fraiseql_checks.api.endpoint import (
    PAGINATION,
    PREFIX,
    Access,
    APIError,
    Endpoint,
    Param,
    page_of,
    paginated,
    watcher_of,
)
from fraiseql_checks.api.query import ERRORS as PROMETHEUS_ERRORS
from fraiseql_checks.api.query import prometheus_get
from fraiseql_checks.config import Config
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.stash import StashKey

if TYPE_CHECKING:
    import asyncio

    from starlette.requests import Request
    from starlette.responses import Response

    from fraiseql_checks.checks import CheckInfo
    from fraiseql_checks.core.session import Session
    from fraiseql_checks.watch.watcher import Watcher

STATES = ["pending", "firing"]
#: What tells checks' dependencies apart: the file, the fixtures asked for, the targets declared.
Key = tuple[Path, tuple[str, ...], tuple[str, ...]]

RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["alert", "expr", "labels", "annotations"],
    "properties": {
        "alert": {"type": "string"},
        "expr": {"type": "string"},
        "for": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
RULE_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["file", "profile", "groups"],
    "properties": {
        "file": {"type": "string", "description": "where `generate alerts` writes it, from the root"},
        "profile": {"type": "string"},
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "rules"],
                "properties": {"name": {"type": "string"}, "rules": {"type": "array", "items": RULE_SCHEMA}},
            },
        },
    },
}
ALERT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "an alert as Prometheus' /api/v1/alerts gives it",
    "required": ["labels", "state"],
    "properties": {
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "state": {"type": "string"},
        "activeAt": {"type": "string", "format": "date-time"},
        "value": {"type": "string"},
    },
}


class _KnownTargets:
    """``FixtureRegistry.targets_of`` answered from what the workers resolved (``CheckInfo.targets``).

    The watcher's process imports no check file, so its own fixture registry lacks the
    conftest fixtures; the rules' ``depends_on`` must be what ``generate alerts`` says.
    """

    def __init__(self, checks: Sequence[CheckInfo]) -> None:
        self._targets = {self.key(check.path, check.argnames, _declared(check)): check.targets for check in checks}

    @staticmethod
    def key(path: Path, argnames: Sequence[str], declared: Sequence[str]) -> Key:
        return path, tuple(argnames), tuple(declared)

    def targets_of(self, path: Path, argnames: Sequence[str], declared: Sequence[str] = ()) -> tuple[str, ...]:
        return self._targets.get(self.key(path, argnames, tuple(declared)), tuple(sorted(set(declared))))


class _Watched:
    """What ``rule_files`` reads of a session: the checks, and the targets they depend on."""

    def __init__(self, checks: Sequence[CheckInfo]) -> None:
        self.checks = list(checks)
        self.fixtures = _KnownTargets(checks)


def _declared(check: CheckInfo) -> tuple[str, ...]:
    return (*check.spec.depends_on, *getattr(check.spec.alert, "depends_on", ()))


def rule_documents(watcher: Watcher, checks: Sequence[CheckInfo]) -> list[dict[str, Any]]:
    """Every rule file ``generate alerts`` writes for ``checks``, parsed: file, profile, groups."""
    import yaml

    from fraiseql_checks.alerting.rules import FOLDER, rule_files, rule_settings
    from fraiseql_checks.targets.profiles import DEFAULT_PROFILE

    files = rule_files(cast("Session", _Watched(checks)), rule_settings(watcher.config))
    documents = []
    for path, text in files.items():
        parts = path.split("/")
        profile = parts[1] if len(parts) == 3 and parts[0] == FOLDER else DEFAULT_PROFILE
        documents.append({"file": path, "profile": profile, "groups": yaml.safe_load(text)["groups"]})
    return documents


@dataclasses.dataclass
class _Rules:
    """The rule documents of one list of checks (a reload makes a new list), made one at a time."""

    lock: asyncio.Lock
    checks: Sequence[CheckInfo] | None = None
    documents: list[dict[str, Any]] = dataclasses.field(default_factory=list)


_RULES = StashKey[_Rules]("api.alert_rules")


async def rules_of(watcher: Watcher) -> list[dict[str, Any]]:
    """``rule_documents`` of the watched checks, rendered again only when a reload changed them."""
    import asyncio

    rules = watcher.config.stash.get(_RULES)
    if rules is None:
        rules = watcher.config.stash[_RULES] = _Rules(asyncio.Lock())
    async with rules.lock:
        checks = watcher.session.checks  # the list a reload replaces, taken on the loop
        if rules.checks is not checks:
            rules.documents = await asyncio.to_thread(rule_documents, watcher, list(checks))
            rules.checks = checks
        return rules.documents


async def list_rules(request: Request) -> Response:
    watcher = watcher_of(request)
    documents = await rules_of(watcher)
    profile = request.query_params.get("profile")
    if profile:
        documents = [document for document in documents if document["profile"] == profile]
    return web.JSONResponse(page_of(request, documents))


async def list_alerts(request: Request) -> Response:
    watcher = watcher_of(request)
    state = request.query_params.get("state")
    if state and state not in STATES:
        raise APIError(400, "bad_parameter", f"state must be one of {', '.join(STATES)}, got {state!r}")
    body = await prometheus_get(watcher, "/api/v1/alerts", {})
    data = body.get("data")
    alerts = data.get("alerts") if isinstance(data, dict) else None
    if not isinstance(alerts, list):
        raise APIError(502, "prometheus_bad_answer", "Prometheus' /api/v1/alerts answer holds no alert list")
    name = request.query_params.get("alertname")
    chosen = [
        alert
        for alert in alerts
        if isinstance(alert, dict)
        and (not state or alert.get("state") == state)
        and (not name or (alert.get("labels") or {}).get("alertname") == name)
    ]
    chosen.sort(key=lambda alert: (str(alert.get("activeAt", "")), sorted((alert.get("labels") or {}).items())))
    return web.JSONResponse(page_of(request, chosen))


def endpoints() -> Sequence[Endpoint]:
    return [
        Endpoint(
            "GET",
            f"{PREFIX}/alerts/rules",
            list_rules,
            Access.READ,
            "The alerting rules `fraiseql-check generate alerts` writes for the watched checks, as JSON",
            "listAlertRules",
            "alerts",
            params=(Param("profile", "query", {"type": "string"}, "only this target profile's files"), *PAGINATION),
            responses={200: ("a page of rule files, in the generator's order", paginated(RULE_FILE_SCHEMA))},
        ),
        Endpoint(
            "GET",
            f"{PREFIX}/alerts",
            list_alerts,
            Access.READ,
            "The active alerts of the configured Prometheus, oldest first",
            "listAlerts",
            "alerts",
            params=(
                Param("state", "query", {"type": "string", "enum": STATES}, "only pending or only firing alerts"),
                Param("alertname", "query", {"type": "string"}, "only alerts of this name"),
                *PAGINATION,
            ),
            responses={
                200: ("a page of alerts", paginated(ALERT_SCHEMA)),
                **{status: PROMETHEUS_ERRORS[status] for status in (502, 503)},
            },
        ),
    ]


@hookimpl
def fraiseql_api_endpoints(config: Config) -> Sequence[Endpoint]:
    return endpoints()
