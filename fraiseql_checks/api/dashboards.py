"""``/api/v1/dashboards``: the generated Grafana dashboards — list, JSON, regenerate, push and diff.

The dashboards are what ``fraiseql-check grafana push`` uploads: ``dashboards.build``
on the watched checks, for the configured target profile. They are built once, in a
thread (rendering every suite's dashboard must not delay the checks), and again when
a reload has changed the checks or ``POST .../regenerate`` asks. Push and diff talk
to the configured Grafana (``grafana.url``, ``grafana.token``) through the command's
own client and plan: no Grafana configured is a 503, one that refuses or cannot be
reached a 502.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from starlette.convertors import StringConvertor, register_url_convertor

from fraiseql_checks.api import web
from fraiseql_checks.api.endpoint import (
    PAGINATION,
    PREFIX,
    Access,
    APIError,
    Endpoint,
    Param,
    iso,
    not_found,
    page_of,
    paginated,
    watcher_of,
)
from fraiseql_checks.config import Config, UsageError
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.stash import StashKey

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fraiseql_checks.checks import Check, CheckInfo
    from fraiseql_checks.dashboards.grafana import Change, Grafana
    from fraiseql_checks.watch.watcher import Watcher

SUITE_TAG = "suite-"
#: The actions beside ``/dashboards/{uid}``: ``GET /dashboards/push`` is a 405, not a dashboard named push.
ACTIONS = ("push", "regenerate")


class DashboardKey(StringConvertor):
    """A path segment naming a dashboard: anything but the actions."""

    regex = rf"(?!(?:{'|'.join(ACTIONS)})$)[^/]+"


register_url_convertor("dashboard", DashboardKey())


SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["uid", "name", "title", "suite", "panels", "url"],
    "properties": {
        "uid": {"type": "string"},
        "name": {"type": "string", "description": "the file `generate dashboards` writes: dashboards/<name>.json"},
        "title": {"type": "string"},
        "suite": {"type": ["string", "null"], "description": "the check suite it shows; null for the seed's six"},
        "panels": {"type": "integer", "minimum": 0, "description": "panels, rows not counted"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "url": {"type": "string", "description": "this dashboard's JSON in the API"},
    },
}
CHANGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["uid", "name", "title", "status", "grafana_url"],
    "properties": {
        "uid": {"type": "string"},
        "name": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "string", "enum": ["new", "changed", "moved", "unchanged"]},
        "grafana_url": {"type": ["string", "null"]},
        "diff": {"type": "string", "description": "unified diff, Grafana's copy to ours"},
        "pushed": {"type": "boolean"},
        "version": {"type": ["integer", "null"]},
    },
}
PUSH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["folder", "pushed", "items"],
    "properties": {
        "folder": {
            "type": "object",
            "required": ["title", "uid", "created"],
            "properties": {"title": {"type": "string"}, "uid": {"type": "string"}, "created": {"type": "boolean"}},
        },
        "pushed": {"type": "integer", "minimum": 0},
        "items": {"type": "array", "items": CHANGE_SCHEMA},
    },
}
LIST_SCHEMA: dict[str, Any] = {
    **paginated(SUMMARY_SCHEMA),
    "properties": {
        **paginated(SUMMARY_SCHEMA)["properties"],
        "built_at": {"type": "string", "format": "date-time"},
    },
}
GRAFANA_ERRORS = {
    502: ("Grafana refused the request or cannot be reached", None),
    503: ("no Grafana is configured (grafana.url)", None),
}


@dataclasses.dataclass(frozen=True)
class Built:
    """The dashboards rendered from one list of checks."""

    #: The watcher's list of checks they were built from: a reload makes a new list.
    checks: Sequence[CheckInfo]
    #: Grafana's JSON model of each dashboard, by file name, in ``build``'s order.
    dashboards: Mapping[str, Mapping[str, Any]]
    at: float

    def find(self, key: str) -> tuple[str, Mapping[str, Any]]:
        """The dashboard with this uid (or file name); a 404 otherwise."""
        for name, dashboard in self.dashboards.items():
            if key in (dashboard["uid"], name):
                return name, dashboard
        raise APIError(404, "not_found", f"no dashboard {key!r} (GET {PREFIX}/dashboards lists them)")


class Dashboards:
    """The watcher's rendered dashboards, built on first use, one build at a time."""

    def __init__(self) -> None:
        import asyncio

        self.built: Built | None = None
        self.lock = asyncio.Lock()

    async def current(self, watcher: Watcher, rebuild: bool = False) -> Built:
        import asyncio

        async with self.lock:
            checks = watcher.session.checks
            if rebuild or self.built is None or self.built.checks is not checks:
                rendered = await asyncio.to_thread(render, watcher.config, list(checks))
                self.built = Built(checks, rendered, time.time())
            return self.built


_DASHBOARDS = StashKey[Dashboards]("api.dashboards")


def dashboards_of(watcher: Watcher) -> Dashboards:
    found = watcher.config.stash.get(_DASHBOARDS)
    if found is None:
        found = watcher.config.stash[_DASHBOARDS] = Dashboards()
    return found


def render(config: Config, checks: Sequence[CheckInfo]) -> dict[str, dict[str, Any]]:
    """What ``grafana push`` uploads: every dashboard ``build`` makes for the configured profile."""
    from fraiseql_checks.dashboards.build import build

    built = build(config, cast("list[Check]", list(checks)))
    return {name: dashboard.render() for name, dashboard in built.items()}


def panel_count(dashboard: Mapping[str, Any]) -> int:
    """Panels, those inside collapsed rows too; rows themselves are not counted."""
    count = 0
    for panel in dashboard.get("panels", ()):
        if panel.get("type") == "row":
            count += len(panel.get("panels", ()))
        else:
            count += 1
    return count


def summary(name: str, dashboard: Mapping[str, Any]) -> dict[str, Any]:
    tags = list(dashboard.get("tags", ()))
    suite = next((tag.removeprefix(SUITE_TAG) for tag in tags if tag.startswith(SUITE_TAG)), None)
    return {
        "uid": dashboard["uid"],
        "name": name,
        "title": dashboard["title"],
        "suite": suite,
        "panels": panel_count(dashboard),
        "tags": tags,
        "url": f"{PREFIX}/dashboards/{dashboard['uid']}",
    }


async def _built(request: Request, rebuild: bool = False) -> Built:
    watcher = watcher_of(request)
    try:
        return await dashboards_of(watcher).current(watcher, rebuild)
    except UsageError as exc:  # a check's panel hint is wrong, two suites make one file
        raise APIError(503, "dashboards_invalid", watcher.config.mask(str(exc))) from None


def _page(request: Request, built: Built) -> dict[str, Any]:
    page = page_of(request, [summary(name, d) for name, d in built.dashboards.items()])
    page["built_at"] = iso(built.at)
    return page


async def list_dashboards(request: Request) -> Response:
    return web.JSONResponse(_page(request, await _built(request)))


async def get_dashboard(request: Request) -> Response:
    _, dashboard = (await _built(request)).find(request.path_params["uid"])
    return web.JSONResponse(dashboard)


async def regenerate(request: Request) -> Response:
    return web.JSONResponse(_page(request, await _built(request, rebuild=True)))


# ---- Grafana ------------------------------------------------------------------------------


def _grafana(config: Config) -> Grafana:
    """The command's client, for the configured Grafana; a 503 when there is none."""
    from fraiseql_checks.dashboards.grafana import Grafana, target_of

    try:
        target = target_of(config)
    except UsageError as exc:
        if not (config.get("grafana").get("url") or config.environ.get("GRAFANA_URL")):
            message = "no Grafana is configured: set grafana.url (or GRAFANA_URL) and grafana.token"
        else:
            message = config.mask(str(exc)).replace("--url: ", "grafana.url: ")
        raise APIError(503, "grafana_not_configured", message) from None
    return Grafana(target)


def _change(change: Change, name: str, with_diff: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "uid": change.uid,
        "name": name,
        "title": change.title,
        "status": change.status,
        "grafana_url": change.url,
    }
    if with_diff:
        answer["diff"] = "".join(change.diff)
    return answer


def push(config: Config, dashboards: Mapping[str, Mapping[str, Any]], force: bool, message: str) -> dict[str, Any]:
    """``grafana push``'s steps: the folder (created if missing), the plan, a save per change."""
    from fraiseql_checks.dashboards.grafana import plan

    grafana = _grafana(config)
    title = grafana.target.folder
    folder = grafana.folder(title)
    created = folder is None
    if folder is None:
        folder = grafana.create_folder(title)
    folder_uid = str(folder["uid"])
    names = {str(d["uid"]): name for name, d in dashboards.items()}
    items, pushed = [], 0
    for change in plan(grafana, dashboards, folder_uid):
        item = _change(change, names[change.uid], with_diff=False)
        item["pushed"], item["version"] = False, None
        if change.status != "unchanged" or force:
            saved = grafana.save(dashboards[names[change.uid]], folder_uid, message)
            item["pushed"], item["version"] = True, saved.get("version")
            item["grafana_url"] = grafana.link(str(saved.get("url", ""))) if saved.get("url") else change.url
            pushed += 1
        items.append(item)
    return {"folder": {"title": title, "uid": folder_uid, "created": created}, "pushed": pushed, "items": items}


def diff(config: Config, name: str, dashboard: Mapping[str, Any]) -> dict[str, Any]:
    """``grafana diff`` for one dashboard: its status and the unified diff."""
    from fraiseql_checks.dashboards.grafana import plan

    grafana = _grafana(config)
    folder = grafana.folder(grafana.target.folder)
    [change] = plan(grafana, {name: dashboard}, None if folder is None else str(folder["uid"]))
    return _change(change, name, with_diff=True)


async def _talk(watcher: Watcher, call: Any, *args: Any) -> dict[str, Any]:
    """Run a Grafana conversation in a thread (its client blocks); refusals become 502s."""
    import asyncio

    from fraiseql_checks.dashboards.grafana import GrafanaError

    try:
        answer: dict[str, Any] = await asyncio.to_thread(call, watcher.config, *args)
    except GrafanaError as exc:
        raise APIError(502, "grafana_error", watcher.config.mask(str(exc))) from None
    return answer


async def push_dashboards(request: Request) -> Response:
    from fraiseql_checks._version import __version__

    watcher = watcher_of(request)
    force = request.query_params.get("force") == "true"  # the app checked it is true or false
    message = request.query_params.get("message") or f"fraiseql-check API (fraiseql-checks {__version__})"
    built = await _built(request)
    return web.JSONResponse(await _talk(watcher, push, built.dashboards, force, message))


async def diff_dashboard(request: Request) -> Response:
    watcher = watcher_of(request)
    name, dashboard = (await _built(request)).find(request.path_params["uid"])
    return web.JSONResponse(await _talk(watcher, diff, name, dashboard))


def endpoints() -> Sequence[Endpoint]:
    uid = Param("uid", "path", {"type": "string"}, "the dashboard's uid (or its file name, e.g. operations-overview)")
    invalid = {503: ("the checks' panel hints do not make valid dashboards (the message says which)", None)}
    return [
        Endpoint(
            "GET",
            f"{PREFIX}/dashboards",
            list_dashboards,
            Access.READ,
            "The generated dashboards: the seed's six and one per check suite",
            "listDashboards",
            "dashboards",
            params=PAGINATION,
            responses={200: ("a page of dashboards, in generation order", LIST_SCHEMA), **invalid},
        ),
        Endpoint(
            "POST",
            f"{PREFIX}/dashboards/regenerate",
            regenerate,
            Access.ADMIN,
            "Build the dashboards again from the watched checks; answers the list",
            "regenerateDashboards",
            "dashboards",
            params=PAGINATION,
            responses={200: ("a page of the rebuilt dashboards", LIST_SCHEMA), **invalid},
        ),
        Endpoint(
            "POST",
            f"{PREFIX}/dashboards/push",
            push_dashboards,
            Access.ADMIN,
            "Push the dashboards to the configured Grafana, as `fraiseql-check grafana push` does",
            "pushDashboards",
            "dashboards",
            params=(
                Param("force", "query", {"type": "boolean", "default": False}, "push unchanged dashboards too"),
                Param("message", "query", {"type": "string"}, "the version message Grafana keeps"),
            ),
            responses={200: ("what was pushed, per dashboard", PUSH_SCHEMA), **GRAFANA_ERRORS},
        ),
        Endpoint(
            "GET",
            f"{PREFIX}/dashboards/{{uid:dashboard}}/diff",
            diff_dashboard,
            Access.READ,
            "How a dashboard differs from the copy the configured Grafana holds",
            "diffDashboard",
            "dashboards",
            params=(uid,),
            responses={200: ("its status and the diff", CHANGE_SCHEMA), **not_found("dashboard"), **GRAFANA_ERRORS},
        ),
        Endpoint(
            "GET",
            f"{PREFIX}/dashboards/{{uid:dashboard}}",
            get_dashboard,
            Access.READ,
            "One dashboard: Grafana's JSON model, as `generate dashboards` writes it",
            "getDashboard",
            "dashboards",
            params=(uid,),
            responses={
                200: ("the dashboard", {"type": "object", "required": ["uid", "title", "panels"]}),
                **not_found("dashboard"),
            },
        ),
    ]


@hookimpl
def fraiseql_api_endpoints(config: Config) -> Sequence[Endpoint]:
    return endpoints()
