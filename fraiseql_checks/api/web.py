"""Starlette's request and response types, imported when the API first uses them.

Every built-in plugin is imported at every start, the API's route modules among
them, and ``starlette.requests`` alone costs ~25 ms (forms, multipart, cookies),
paid by a one-shot run that serves nothing. The route modules write
``web.JSONResponse(...)``; the names resolve on first use, in a watcher that
serves the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraiseql_checks._lazy import lazy_names

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


__getattr__ = lazy_names(__name__, _FROM)
