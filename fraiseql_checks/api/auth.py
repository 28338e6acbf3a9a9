"""Who may call what: the ``api`` section's tokens, compared in constant time.

- ``api.token`` (or ``FRAISEQL_CHECKS_API_TOKEN``): the admin token, may write;
- ``api.read_token`` (or ``FRAISEQL_CHECKS_API_READ_TOKEN``): may read;
- ``api.private``: the status page, badges and the summary need the read token too.

Sent as ``Authorization: Bearer <token>``. Without a token a request to ``/api/``
gets 401; a read token on a write route gets 403; with no admin token configured,
write routes answer 403 for everyone. A token is never echoed, and both are masked
wherever the tool writes.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from fraiseql_checks.config import Setting, as_bool, as_str

if TYPE_CHECKING:
    from starlette.requests import Request

    from fraiseql_checks.api.endpoint import Access
    from fraiseql_checks.config import Config

SECTION = "api"
TOKEN_ENV = "FRAISEQL_CHECKS_API_TOKEN"
READ_TOKEN_ENV = "FRAISEQL_CHECKS_API_READ_TOKEN"
#: How a 401 tells the client what to send (RFC 6750).
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="fraiseql-check"'}

SETTINGS = [
    Setting("token", as_str, help="the admin token: may write (silences, runs, re-sends)", env=TOKEN_ENV, secret=True),
    Setting("read_token", as_str, help="the read token: may read the API", env=READ_TOKEN_ENV, secret=True),
    Setting("private", as_bool, default=False, help="the status page and badges need the read token too"),
]


@dataclasses.dataclass(frozen=True)
class Tokens:
    admin: str = ""
    read: str = ""
    private: bool = False

    @classmethod
    def of(cls, config: Config) -> Tokens:
        values: dict[str, Any] = config.get(SECTION)
        return cls(str(values.get("token") or ""), str(values.get("read_token") or ""), bool(values.get("private")))

    def check(self, request: Request, access: Access) -> None:
        """Raise ``APIError`` (401 or 403) unless ``request`` may call a route of ``access``."""
        from fraiseql_checks.api.endpoint import Access, APIError  # the API's types: not imported at every start

        if access is Access.PUBLIC and not self.private:
            return
        given = _bearer(request.headers.get("authorization", ""))
        is_admin = bool(self.admin) and given is not None and _same(given, self.admin)
        is_reader = is_admin or (bool(self.read) and given is not None and _same(given, self.read))
        if access is Access.ADMIN:
            if is_admin:
                return
            if not self.admin:
                raise APIError(403, "forbidden", "writing is turned off: no admin token (api.token) is configured")
            if given is None:
                raise APIError(401, "unauthorized", "send the admin token: Authorization: Bearer <token>", CHALLENGE)
            if is_reader:
                raise APIError(403, "forbidden", "this route needs the admin token; the read token may only read")
            raise APIError(401, "unauthorized", "the token is not valid", CHALLENGE)
        if is_reader:
            return
        if given is None:
            raise APIError(401, "unauthorized", "send a token: Authorization: Bearer <token>", CHALLENGE)
        raise APIError(401, "unauthorized", "the token is not valid", CHALLENGE)


def _bearer(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _same(given: str, expected: str) -> bool:
    import hmac  # (here: hmac imports hashlib, which loads OpenSSL, at every start of every command)

    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))
