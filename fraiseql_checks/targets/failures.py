"""What went wrong reaching a target, in a few words: shared by the HTTP, database and
cache clients, and importing none of them (a run of database checks does not import httpx)."""

from __future__ import annotations

import errno
import socket
import ssl


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (``__cause__``, then ``__context__``), innermost last."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def describe_connection_error(exc: BaseException, host: str = "") -> str:
    """What went wrong opening a connection, in a few words (refused, DNS, TLS, ...)."""
    for cause in reversed(_causes(exc)):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS failure: certificate verify failed: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failure: {cause.reason or cause}"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve host {host!r}: {cause.strerror or cause}" if host else f"DNS failure: {cause}"
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):  # several addresses refused (localhost: ::1 and 127.0.0.1) arrive as one OSError
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the server"
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
        return f"TLS failure: {text}"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return f"cannot resolve host {host!r}" if host else "DNS failure"
    if "Connection refused" in text:
        return "connection refused"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
