"""The ``fraiseql`` and ``graphql`` fixtures: a FraiseQL server's health, readiness, metrics and GraphQL.

Paths and the shape of each answer follow the target's profile (``fraiseql-v2``
by default, ``fraiseql-v1``; see FRAISEQL.md). Both fixtures share the session's
``http`` client, so every request carries the running check's ``traceparent``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from fraiseql_checks.config import Config
from fraiseql_checks.errors import TargetError
from fraiseql_checks.targets.exposition import Exposition, ExpositionError
from fraiseql_checks.targets.http import HTTPClient, json_body, status_error
from fraiseql_checks.targets.plugin import FraiseQLTarget, not_configured


class Status(Mapping[str, Any]):
    """A parsed ``/health`` or readiness answer: the JSON body (read it like a dict) and its HTTP status."""

    def __init__(self, url: str, status_code: int, body: Mapping[str, Any]) -> None:
        self.url = url
        self.status_code = status_code
        self.body = dict(body)

    def __getitem__(self, key: str) -> Any:
        return self.body[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.body)

    def __len__(self) -> int:
        return len(self.body)

    @property
    def status(self) -> str:
        return str(self.body.get("status", ""))

    @property
    def version(self) -> str | None:
        value = self.body.get("version")
        return None if value is None else str(value)

    @property
    def schema_hash(self) -> str | None:
        value = self.body.get("schema_hash")
        return None if value is None else str(value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} HTTP {self.status_code} {self.body!r}>"


class Health(Status):
    """``GET /health``. v2 answers ``healthy``, ``degraded`` (still HTTP 200) or ``unhealthy`` (HTTP 503)."""

    @property
    def healthy(self) -> bool:
        return self.status == "healthy"


class Readiness(Status):
    """``GET /readiness`` (v2) or ``/ready`` (v1): ``ready``, or ``not_ready`` with HTTP 503."""

    @property
    def ready(self) -> bool:
        return self.status == "ready" and self.status_code < 400

    @property
    def reason(self) -> str:
        """Why it is not ready: v2's ``reason``, or v1's failing ``checks``."""
        if self.body.get("reason"):
            return str(self.body["reason"])
        checks = self.body.get("checks")
        if isinstance(checks, Mapping):
            return ", ".join(f"{name}: {state}" for name, state in checks.items() if state != "ok")
        return ""


@dataclasses.dataclass(frozen=True)
class GraphQLResult:
    """A GraphQL answer: ``data``, ``errors`` (a list, empty when none) and ``extensions``."""

    data: Any
    errors: list[dict[str, Any]]
    extensions: dict[str, Any]
    status_code: int

    @property
    def error_messages(self) -> list[str]:
        return [str(error.get("message", error)) for error in self.errors]


class GraphQLClient:
    """``graphql.execute(query, variables=None)`` against the server's GraphQL endpoint."""

    def __init__(self, http: HTTPClient, url: str) -> None:
        self.http = http
        self.url = url

    async def execute(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> GraphQLResult:
        """POST the query. GraphQL errors come back in ``errors`` (with HTTP 200); a
        server that cannot answer GraphQL at all raises ``TargetError``."""
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = dict(variables)
        if operation_name is not None:
            payload["operationName"] = operation_name
        try:
            response = await self.http.post(self.url, json=payload, headers=dict(headers or {}))
        except TargetError as exc:
            raise exc.retarget("fraiseql") from exc.__cause__
        body = _graphql_body(response)
        errors = body.get("errors") or []
        extensions = body.get("extensions") or {}
        return GraphQLResult(
            data=body.get("data"),
            errors=[e if isinstance(e, dict) else {"message": str(e)} for e in errors],
            extensions=extensions if isinstance(extensions, dict) else {},
            status_code=response.status_code,
        )


def _graphql_body(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not (isinstance(body, dict) and ("errors" in body or "data" in body)):
            raise status_error(response)
        return body
    body = json_body(response)
    if not isinstance(body, dict) or not ("data" in body or "errors" in body):
        raise TargetError(
            f"POST {response.request.url}: not a GraphQL answer (no 'data' or 'errors'): {str(body)[:120]}",
            target="fraiseql",
        )
    return body


class FraiseQLClient:
    """One FraiseQL server (the first configured URL), and its ``replicas`` (one client per URL)."""

    def __init__(self, config: Config, target: FraiseQLTarget, http: HTTPClient, url: str | None = None) -> None:
        self.config = config
        self.target = target
        self.http = http
        self.url = url or target.url
        self.profile = target.profile
        self.graphql = GraphQLClient(http, self.url + target.graphql_path)
        self._last_health: Health | None = None

    @property
    def replicas(self) -> list[FraiseQLClient]:
        """A client per configured URL (``fraiseql.url`` may list several replicas)."""
        return [
            self if url == self.url else FraiseQLClient(self.config, self.target, self.http, url)
            for url in self.target.urls
        ]

    async def _status(self, path: str, setting: str) -> tuple[str, int, Mapping[str, Any]]:
        url = self.url + path
        try:
            response = await self.http.get(url)
        except TargetError as exc:
            raise exc.retarget("fraiseql") from exc.__cause__
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            # v2 answers 503 with a JSON body when the database is down: that is an answer.
            if response.status_code == 503 and isinstance(body, dict) and "status" in body:
                return url, response.status_code, body
            hint = f"is `fraiseql.{setting}` = {path!r} right?" if response.status_code == 404 else ""
            raise status_error(response, hint)
        body = json_body(response)
        if not isinstance(body, dict) or "status" not in body:
            raise TargetError(f"GET {url}: expected a JSON object with a 'status', got {str(body)[:120]}")
        return url, response.status_code, body

    async def health(self) -> Health:
        """``GET /health``, parsed; read ``status``, not only the HTTP code (``degraded`` is HTTP 200)."""
        health = Health(*await self._status(self.target.health_path, "health_path"))
        self._last_health = health
        return health

    async def readiness(self) -> Readiness:
        """``GET /readiness`` (v2) or ``/ready`` (v1), parsed."""
        return Readiness(*await self._status(self.target.readiness_path, "readiness_path"))

    @property
    def version(self) -> str | None:
        """The server's version, as of the last ``health()`` answer (v2 reports it; v1 does not)."""
        return self._last_health.version if self._last_health else None

    @property
    def schema_hash(self) -> str | None:
        """The compiled schema's hash, as of the last ``health()`` answer (v2 only)."""
        return self._last_health.schema_hash if self._last_health else None

    async def metrics(self) -> Exposition:
        """``GET /metrics`` with the bearer token, parsed; skipped when v2 has no token configured."""
        token = self.target.metrics_token
        if token is None and self.profile.metrics_need_token:
            not_configured(
                self.config, "the FraiseQL metrics token", "fraiseql.metrics_token", "FRAISEQL_METRICS_TOKEN"
            )
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = self.url + self.target.metrics_path
        try:
            response = await self.http.get(url, headers=headers)
        except TargetError as exc:
            raise exc.retarget("fraiseql") from exc.__cause__
        if response.status_code >= 400:
            hint = ""
            if response.status_code in (401, 403):
                hint = "check FRAISEQL_METRICS_TOKEN"
            elif response.status_code == 404 and self.profile.metrics_need_token:
                hint = "FraiseQL v2 serves /metrics only with FRAISEQL_METRICS_ENABLED and FRAISEQL_METRICS_TOKEN set"
            raise status_error(response, hint)
        try:
            # Parsing a big page is CPU work: on a thread, so it delays no other check.
            return await asyncio.to_thread(Exposition.parse, response.text)
        except ExpositionError as exc:
            raise TargetError(f"GET {url}: {exc}", target="fraiseql") from None
