"""Starlette's request and response types, imported when the API first uses them.

Every built-in plugin is imported at every start, the API's route modules among
them, and ``starlette.requests`` alone costs ~25 ms (forms, multipart, cookies),
paid by a one-shot run that serves nothing. The route modules write
``web.JSONResponse(...)``; the names resolve on first use, in a watcher that
serves the API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request as Request
    from starlette.responses import HTMLResponse as HTMLResponse
    from starlette.responses import JSONResponse as JSONResponse
    from starlette.responses import Response as Response

#: Each name this module gives, and the Starlette module it comes from.
_FROM = {
    "Request": "starlette.requests",
    "Response": "starlette.responses",
    "JSONResponse": "starlette.responses",
    "HTMLResponse": "starlette.responses",
}


def __getattr__(name: str) -> Any:
    module = _FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later uses are plain attribute reads
    return value
