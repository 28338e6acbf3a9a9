"""The ``api`` section, the API's own routes (the OpenAPI document), and the app served
by the watcher's HTTP server from the moment checking starts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fraiseql_checks.api.auth import SECTION, SETTINGS
from fraiseql_checks.config import Config, Parser, Setting, section
from fraiseql_checks.hookspec import hookimpl

if TYPE_CHECKING:
    from fraiseql_checks.api.endpoint import Endpoint
    from fraiseql_checks.watch.watcher import Watcher


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addsetting(Setting(SECTION, section(SETTINGS), {}, "the watcher's API and status page: tokens, private"))


@hookimpl
def fraiseql_api_endpoints(config: Config) -> Sequence[Endpoint]:
    from fraiseql_checks.api import openapi  # the API's modules are imported by watch mode only

    return openapi.ENDPOINTS


@hookimpl
def fraiseql_watch_start(watcher: Watcher) -> None:
    from fraiseql_checks.api.app import build_app

    for secret in (watcher.config.get(SECTION).get("token"), watcher.config.get(SECTION).get("read_token")):
        if secret:
            watcher.config.mask.add(secret)
    watcher.server.app = build_app(watcher)  # type: ignore[assignment]  # Starlette is an ASGI app
