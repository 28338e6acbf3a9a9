"""A local stand-in for Grafana's HTTP API that records every request and checks it against Grafana's docs.

No Grafana server installs here (VALIDATORS.md), so ``grafana push`` is tested
against this: it answers the folder and dashboard endpoints the way Grafana's
HTTP API reference describes them (status codes, bodies, error messages), and
answers 400 to a request body the reference does not allow, so a malformed call
fails the test instead of passing silently.

- ``GET /api/folders`` → ``[{"id", "uid", "title"}]``
- ``POST /api/folders`` ``{"title", "uid"?, "parentUid"?}`` → the folder; 409 if the uid exists
- ``GET /api/dashboards/uid/:uid`` → ``{"dashboard", "meta"}``; 404 ``{"message": "Dashboard not found"}``
- ``POST /api/dashboards/db`` ``{"dashboard", "folderUid"?, "folderId"?, "message"?, "overwrite"?}`` →
  ``{"id", "uid", "url", "status": "success", "version", "slug"}``; 400 when the folder does not exist,
  412 when the dashboard exists and ``overwrite`` is not true
- every call: ``Authorization: Bearer <token>``, else 401 ``{"message": "Unauthorized"}``
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.services import free_port

_UID = re.compile(r"[a-zA-Z0-9_-]{1,40}")
FOLDER_KEYS = {"title", "uid", "parentUid", "description"}
SAVE_KEYS = {"dashboard", "folderId", "folderUid", "message", "overwrite"}


@dataclasses.dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class GrafanaAPI:
    """Grafana's folders and dashboards in memory, served on a free loopback port."""

    def __init__(self, token: str = "glsa_test_token_0123456789", prefix: str = "") -> None:
        self.token = token
        self.prefix = prefix.rstrip("/")
        self.port = free_port()
        self.requests: list[Request] = []
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        #: ``(method, path prefix)`` answered 403, as Grafana does for a token without the permission.
        self.forbidden: set[tuple[str, str]] = set()
        self._ids = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def calls(self, method: str | None = None, path: str | None = None) -> list[Request]:
        return [r for r in self.requests if (method in (None, r.method)) and (path is None or r.path.startswith(path))]

    def add_folder(self, title: str, uid: str) -> None:
        self._ids += 1
        self.folders[uid] = {"id": self._ids, "uid": uid, "title": title}

    # -- the API ---------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"message": "Unauthorized"}
        for forbidden_method, forbidden_path in self.forbidden:
            if method == forbidden_method and path.startswith(forbidden_path):
                return 403, {"message": "You'll need additional permissions to perform this action."}
        if method == "POST" and headers.get("content-type", "").split(";")[0] != "application/json":
            return 400, {"message": "bad request data: expected application/json"}
        if (method, path) == ("GET", "/api/folders"):
            return 200, [dict(folder) for folder in self.folders.values()]
        if (method, path) == ("POST", "/api/folders"):
            return self._create_folder(body)
        if method == "GET" and path.startswith("/api/dashboards/uid/"):
            return self._get_dashboard(path.rsplit("/", 1)[-1])
        if (method, path) == ("POST", "/api/dashboards/db"):
            return self._save_dashboard(body)
        return 404, {"message": "Not found"}

    def _create_folder(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("title"), str) or set(body) - FOLDER_KEYS:
            return 400, {"message": f"bad request data: {body!r}"}
        uid = body.get("uid") or f"folder{len(self.folders) + 1}"
        if not _UID.fullmatch(uid):
            return 400, {"message": "uid contains illegal characters"}
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        self.add_folder(body["title"], uid)
        folder = self.folders[uid]
        return 200, {**folder, "url": f"/dashboards/f/{uid}/{_slug(body['title'])}", "version": 1, "hasAcl": False}

    def _get_dashboard(self, uid: str) -> tuple[int, Any]:
        stored = self.dashboards.get(uid)
        if stored is None:
            return 404, {"message": "Dashboard not found"}
        dashboard = stored["dashboard"]
        meta = {
            "slug": _slug(dashboard["title"]),
            "url": f"{self.prefix}/d/{uid}/{_slug(dashboard['title'])}",
            "folderUid": stored["folderUid"],
            "version": dashboard["version"],
        }
        return 200, {"dashboard": dashboard, "meta": meta}

    def _save_dashboard(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or set(body) - SAVE_KEYS or not isinstance(body.get("dashboard"), dict):
            return 400, {"message": f"bad request data: {sorted(body) if isinstance(body, dict) else body!r}"}
        dashboard = dict(body["dashboard"])
        if not isinstance(dashboard.get("title"), str) or dashboard.get("id") not in (None, *range(1, 10**6)):
            return 400, {"message": "Dashboard title cannot be empty"}
        for key, kind in (("message", str), ("overwrite", bool), ("folderUid", str)):
            if key in body and not isinstance(body[key], kind):
                return 400, {"message": f"bad request data: {key} must be a {kind.__name__}"}
        folder_uid = body.get("folderUid", "")
        if folder_uid and folder_uid not in self.folders:
            return 400, {"message": "folder not found", "status": "not-found"}
        uid = dashboard.get("uid") or f"dash{len(self.dashboards) + 1}"
        existing = self.dashboards.get(uid)
        if existing is not None and not body.get("overwrite"):
            return 412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"}
        self._ids += 1
        version = existing["dashboard"]["version"] + 1 if existing else 1
        dashboard_id = existing["dashboard"]["id"] if existing else self._ids
        dashboard.update(id=dashboard_id, uid=uid, version=version)
        self.dashboards[uid] = {"dashboard": dashboard, "folderUid": folder_uid, "message": body.get("message", "")}
        slug = _slug(dashboard["title"])
        return 200, {
            "id": dashboard_id,
            "uid": uid,
            "url": f"{self.prefix}/d/{uid}/{slug}",
            "status": "success",
            "version": version,
            "slug": slug,
        }

    # -- serving ---------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                path = self.path.split("?", 1)[0]
                headers = {k.lower(): v for k, v in self.headers.items()}
                api.requests.append(Request(self.command, path, headers, body))
                if api.prefix and not path.startswith(api.prefix + "/"):
                    status, answer = 404, {"message": "Not found"}
                else:
                    status, answer = api.answer(self.command, path[len(api.prefix) :], headers, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


@contextlib.contextmanager
def grafana_api(**kwargs: Any) -> Iterator[GrafanaAPI]:
    server = GrafanaAPI(**kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()
