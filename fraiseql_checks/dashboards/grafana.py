"""``fraiseql-check grafana push|diff``: upload the generated dashboards to Grafana, or show what would change.

Talks to Grafana's HTTP API through ``grafana-client``: the folder is found by
title (``GET /api/folders``) and created if missing (``POST /api/folders``, with a
uid derived from its title); each dashboard is read back by uid
(``GET /api/dashboards/uid/:uid``) and, when it differs, saved with a version
message (``POST /api/dashboards/db``, ``overwrite``). A refused token, a missing
permission, a missing folder or an unreachable Grafana is one line and exit 1;
the token is a secret, masked wherever the tool writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from fraiseql_checks._version import __version__
from fraiseql_checks.commands import CONFIG_OPTIONS, Command, Commands, Subjects, fixed
from fraiseql_checks.config import Config, Parser, Setting, UsageError, as_duration, as_str, section
from fraiseql_checks.hookspec import hookimpl

DEFAULT_FOLDER = "FraiseQL"
DEFAULT_TIMEOUT = 10.0
SETTINGS = [
    Setting("url", as_str, help="Grafana's base URL, e.g. https://grafana.example.com", env="GRAFANA_URL"),
    Setting("token", as_str, help="a service account token (Editor)", env="GRAFANA_TOKEN", secret=True),
    Setting("folder", as_str, help=f"the folder the dashboards go to (default {DEFAULT_FOLDER})"),
    Setting("timeout", as_duration, help=f"time limit of each request (default {DEFAULT_TIMEOUT:g}s)"),
]
#: Fields Grafana manages itself; they never count as a change.
MANAGED = ("id", "version")


class GrafanaError(Exception):
    """Grafana refused or could not be reached: one line for the user."""


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addsetting(Setting("grafana", section(SETTINGS), {}, "where `fraiseql-check grafana push` uploads"))


ACTIONS = {"push": "upload the generated dashboards to Grafana", "diff": "show what a push would change"}


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=sorted(ACTIONS), help="what to do (see the list below)")
    parser.add_argument("--url", dest="grafana_url", metavar="URL", help="Grafana's base URL (or GRAFANA_URL)")
    parser.add_argument(
        "--token", dest="grafana_token", metavar="TOKEN", help="service account token (better: GRAFANA_TOKEN)"
    )
    parser.add_argument("--folder", dest="grafana_folder", metavar="TITLE", help=f"default {DEFAULT_FOLDER!r}")
    parser.add_argument("--message", dest="grafana_message", metavar="TEXT", help="the version message")
    parser.add_argument("--force", dest="grafana_force", action="store_true", help="push unchanged dashboards too")
    parser.add_argument(
        "--no-create-folder",
        dest="grafana_no_create",
        action="store_true",
        help="fail when the folder does not exist instead of creating it",
    )
    parser.add_argument(
        "--exit-code", dest="grafana_exit_code", action="store_true", help="diff: exit 1 when a push would change"
    )


@dataclasses.dataclass(frozen=True)
class Target:
    url: str
    token: str | None
    folder: str
    timeout: float


def target_of(config: Config) -> Target:
    """Where to push: the command line, else the environment, else the ``grafana`` settings."""
    settings = dict(config.get("grafana"))
    for setting in SETTINGS:
        if setting.env and config.environ.get(setting.env):
            settings[setting.name] = config.environ[setting.env]
    for name in ("url", "token", "folder"):
        given = config.getoption(f"grafana_{name}")
        if given:
            settings[name] = given
    token = settings.get("token")
    if token:
        config.mask.add(token)
    url = settings.get("url")
    if not url:
        raise UsageError("no Grafana to talk to: give --url, set GRAFANA_URL, or `grafana.url` in the config")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--url: expected an http:// or https:// URL, got {url!r}")
    return Target(
        url.rstrip("/"), token, settings.get("folder") or DEFAULT_FOLDER, settings.get("timeout") or DEFAULT_TIMEOUT
    )


class Grafana:
    """The calls push and diff make, with Grafana's refusals turned into one-line ``GrafanaError``s."""

    def __init__(self, target: Target) -> None:
        from grafana_client.api import GrafanaApi

        self.target = target
        parts = urllib.parse.urlsplit(target.url)
        # grafana-client appends "api" to the URL's path: a sub-path needs its trailing slash
        path = parts.path.rstrip("/") + "/" if parts.path.strip("/") else ""
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.api: Any = GrafanaApi.from_url(
            urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", "")),
            credential=target.token,
            timeout=target.timeout,
        )

    def _call(self, what: str, call: Callable[[], Any], missing_ok: bool = False) -> Any:
        from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaTimeoutError
        from niquests.exceptions import RequestException

        where = f"Grafana at {self.target.url}"
        try:
            return call()
        except GrafanaTimeoutError:
            raise GrafanaError(f"{where} did not answer {what} within {self.target.timeout:g}s") from None
        except GrafanaClientError as exc:
            if exc.status_code == 404 and missing_ok:
                return None
            reason = _reason(exc.response)
            if exc.status_code == 401:
                raise GrafanaError(
                    f"{where} refused the token (401 Unauthorized{reason}): check --token or GRAFANA_TOKEN"
                ) from None
            if exc.status_code == 403:
                raise GrafanaError(
                    f"{where} refused {what} (403 Forbidden{reason}): the token needs the Editor role "
                    "or the dashboards:write and folders:create permissions"
                ) from None
            raise GrafanaError(f"{where} answered {exc.status_code} to {what}{reason}") from None
        except GrafanaException as exc:
            status = f" {exc.status_code}" if exc.status_code else ""
            if not exc.status_code:
                raise GrafanaError(f"cannot reach {where}: {_unreachable(exc.message)}") from None
            raise GrafanaError(f"{where} answered{status} to {what}{_reason(exc.response)}") from None
        except RequestException as exc:
            raise GrafanaError(f"cannot reach {where}: {_unreachable(str(exc))}") from None

    def folder(self, title: str) -> Mapping[str, Any] | None:
        """The folder with this title (or uid), if there is one."""
        folders = self._call("the folder list (GET /api/folders)", self.api.folder.get_all_folders) or []
        for folder in folders:
            if title in (folder.get("title"), folder.get("uid")):
                return dict(folder)
        return None

    def create_folder(self, title: str) -> Mapping[str, Any]:
        from fraiseql_checks.dashboards.model import stable_uid

        uid = stable_uid(f"folder/{title}")
        created = self._call(
            f"creating folder {title!r} (POST /api/folders)", lambda: self.api.folder.create_folder(title, uid=uid)
        )
        return dict(created)

    def dashboard(self, uid: str) -> Mapping[str, Any] | None:
        """Grafana's copy of a dashboard (``{"dashboard": ..., "meta": ...}``), or ``None``."""
        found = self._call(
            f"reading dashboard {uid} (GET /api/dashboards/uid/{uid})",
            lambda: self.api.dashboard.get_dashboard(uid),
            missing_ok=True,
        )
        return None if found is None else dict(found)

    def save(self, dashboard: Mapping[str, Any], folder_uid: str, message: str) -> Mapping[str, Any]:
        body = {"dashboard": {**dashboard, "id": None}, "folderUid": folder_uid, "message": message, "overwrite": True}
        saved = self._call(
            f"saving {dashboard.get('title')!r} (POST /api/dashboards/db)",
            lambda: self.api.dashboard.update_dashboard(body),
        )
        return dict(saved)

    def link(self, path: str) -> str:
        """A URL of Grafana's answer (``/d/uid/slug``) as the user opens it."""
        return self.origin + path if path.startswith("/") else path


def _first_line(text: str) -> str:
    return (text or "no answer").strip().splitlines()[0][:200]


_ERRNO = r"\[Errno -?\d+\] ([^'\")\]]+)"


def _unreachable(text: str) -> str:
    """The socket's reason (``Connection refused``) out of urllib3's long message, else its first line."""
    found = re.search(_ERRNO, text or "")
    if found:
        return found.group(1).strip().lower()
    if "NameResolutionError" in (text or "") or "Name or service not known" in (text or ""):
        return "the host name does not resolve"
    return _first_line(text)


def _reason(response: Any) -> str:
    if isinstance(response, Mapping) and response.get("message"):
        return f": {_first_line(str(response['message']))}"
    return ""


def _comparable(dashboard: Mapping[str, Any]) -> str:
    from fraiseql_checks.dashboards.model import to_json

    return to_json({k: v for k, v in dashboard.items() if k not in MANAGED})


@dataclasses.dataclass
class Change:
    """What a push does to one dashboard: ``new``, ``changed``, ``moved`` or ``unchanged``."""

    title: str
    uid: str
    status: str
    diff: list[str]
    url: str | None


def plan(grafana: Grafana, dashboards: Mapping[str, Mapping[str, Any]], folder_uid: str | None) -> list[Change]:
    changes = []
    for name, dashboard in dashboards.items():
        uid, title = str(dashboard["uid"]), str(dashboard["title"])
        stored = grafana.dashboard(uid)
        if stored is None:
            changes.append(Change(title, uid, "new", [], None))
            continue
        meta = stored.get("meta") or {}
        url = grafana.link(str(meta["url"])) if meta.get("url") else None
        ours, theirs = _comparable(dashboard), _comparable(stored.get("dashboard") or {})
        import difflib  # (here, not at every start of every command)

        diff = list(
            difflib.unified_diff(
                theirs.splitlines(keepends=True), ours.splitlines(keepends=True), f"{title} (Grafana)", f"{name}.json"
            )
        )
        if diff:
            status = "changed"
        elif folder_uid is not None and meta.get("folderUid") != folder_uid:
            status = "moved"
        else:
            status = "unchanged"
        changes.append(Change(title, uid, status, diff, url))
    return changes


def _say(config: Config, text: str) -> None:
    print(config.mask(text))


def _summary(changes: list[Change]) -> str:
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.status] = counts.get(change.status, 0) + 1
    order = ("new", "changed", "moved", "unchanged")
    return f"{len(changes)} dashboards: " + ", ".join(f"{counts[s]} {s}" for s in order if s in counts)


def _push(config: Config, grafana: Grafana, dashboards: Mapping[str, Mapping[str, Any]]) -> int:
    title = grafana.target.folder
    folder = grafana.folder(title)
    if folder is None:
        if config.getoption("grafana_no_create"):
            raise GrafanaError(
                f"Grafana at {grafana.target.url} has no folder {title!r} (leave out --no-create-folder to create it)"
            )
        folder = grafana.create_folder(title)
        _say(config, f"created folder {title!r} (uid {folder.get('uid')})")
    folder_uid = str(folder["uid"])
    changes = plan(grafana, dashboards, folder_uid)
    message = (
        config.getoption("grafana_message") or f"fraiseql-check generate dashboards (fraiseql-checks {__version__})"
    )
    force = bool(config.getoption("grafana_force"))
    by_uid = {str(d["uid"]): d for d in dashboards.values()}
    pushed = 0
    for change in changes:
        if change.status == "unchanged" and not force:
            _say(config, f"unchanged {change.title}: {change.url}")
            continue
        saved = grafana.save(by_uid[change.uid], folder_uid, message)
        pushed += 1
        _say(
            config,
            f"pushed    {change.title}: {grafana.link(str(saved.get('url', '')))} (version {saved.get('version')})",
        )
    _say(config, f"{len(changes)} dashboards in folder {title!r}: {pushed} pushed, {len(changes) - pushed} unchanged")
    return 0


def _diff(config: Config, grafana: Grafana, dashboards: Mapping[str, Mapping[str, Any]]) -> int:
    title = grafana.target.folder
    folder = grafana.folder(title)
    if folder is None:
        _say(config, f"folder {title!r} does not exist in Grafana: a push creates it")
    changes = plan(grafana, dashboards, None if folder is None else str(folder["uid"]))
    for change in changes:
        where = f" ({change.url})" if change.url else f" (uid {change.uid})"
        _say(config, f"{change.status:<9} {change.title}{where}")
        for line in change.diff:
            _say(config, line.rstrip("\n"))
    _say(config, _summary(changes))
    changed = any(change.status != "unchanged" for change in changes) or folder is None
    return 1 if changed and config.getoption("grafana_exit_code") else 0


def _run(config: Config) -> int:
    target = target_of(config)
    from fraiseql_checks.dashboards.build import build

    dashboards = {name: dashboard.render() for name, dashboard in build(config).items()}
    grafana = Grafana(target)
    try:
        if config.getoption("action") == "push":
            return _push(config, grafana, dashboards)
        return _diff(config, grafana, dashboards)
    except GrafanaError as exc:
        sys.stderr.write(f"ERROR: {config.mask(str(exc))}\n")
        return 1


@hookimpl
def fraiseql_add_commands(commands: Commands) -> None:
    commands.add(
        Command(
            "grafana",
            "push the generated dashboards to Grafana, or diff them",
            _arguments,
            _run,
            options=CONFIG_OPTIONS,
            subjects=Subjects("action", "actions", fixed(ACTIONS)),
        )
    )
