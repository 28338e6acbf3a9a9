"""Hiding secrets in what the tool writes: every URL's password, and every secret it knows of.

Two kinds of secret are hidden (replaced by ``***``):

- the passwords of URLs, wherever they appear, without knowing them: the userinfo
  password (``postgresql://app:***@db/app``; it runs to the *last* ``@`` before the host,
  so ``p@ss``, ``a/b`` and ``x:y`` are hidden whole) and the values of query parameters
  named like a password or a token (``?password=***``, ``&sslpassword=***``,
  ``?access_token=***``);
- the values ``Masker.add`` was given: the configuration's secret settings (the config
  adds them all when it is built), written out whole, percent-encoded or decoded.

A URL ends at white space or a quote, so URLs inside JSON strings and quoted reprs are
found; a password holding a space or a quote is hidden only once it is known. Masking
runs on every result message: text without ``://`` costs one substring test, and the
known secrets one precompiled pattern.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable

#: Shorter known values are not masked: hiding every "abc" would destroy the text.
MIN_SECRET_LENGTH = 4
#: Query parameters whose value is a secret: these words anywhere in the name.
SECRET_PARAMETER_WORDS = ("password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "api-key")

_END = r"\s\"'<>`"  # what ends a URL in text: white space, quotes, angle brackets
_USERINFO = re.compile(
    rf"(?P<head>://[^{_END}:/?#@]*:)"  # [scheme]://user: (starting at "://" lets re skip ahead to it)
    rf"(?P<password>[^{_END}?#]+)"  # as much as can be, then back to the last "@" that is
    rf"@(?=[^{_END}/?#@]*(?:[/?#{_END}]|$))",  # followed by host[:port][,host...], then /, ?, # or the end
)
_SECRET_PARAMETER = re.compile(
    rf"(?P<name>[?&;][\w.~-]*?(?:{'|'.join(re.escape(w) for w in SECRET_PARAMETER_WORDS)})[\w.~-]*=)"
    rf"(?P<value>[^&#{_END}]+)",
    re.IGNORECASE,
)


def mask_urls(text: str) -> str:
    """``text`` with the password of every URL in it (userinfo and query parameters) as ``***``."""
    if "://" not in text:
        return text
    text = _USERINFO.sub(r"\g<head>***@", text)
    return _SECRET_PARAMETER.sub(r"\g<name>***", text)


def url_passwords(url: str) -> list[str]:
    """The passwords ``mask_urls`` hides in ``url``, as written (percent-encoded or not)."""
    if "://" not in url:
        return []
    found = [m["password"] for m in _USERINFO.finditer(url)]
    return found + [m["value"] for m in _SECRET_PARAMETER.finditer(url)]


def _spellings(secret: str) -> Iterable[str]:
    """``secret`` as written, decoded (``p%40ss`` → ``p@ss``) and encoded (``p@ss`` → ``p%40ss``)."""
    yield secret
    yield urllib.parse.unquote(secret)
    yield urllib.parse.quote(secret, safe="")


class Masker:
    """Hides secrets in text the tool writes: the known ones (``add``) and URL passwords.

    ``masker(text)`` returns the masked text; ``config.mask`` is the one of an invocation.
    """

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secret: str | None) -> None:
        """Hide ``secret`` wherever it appears; when it is a URL, its passwords too (``add_url``)."""
        if not secret:
            return
        self._add(secret)
        self.add_url(secret)

    def add_url(self, url: str | None) -> None:
        """Hide the passwords of ``url`` (userinfo, and query parameters named like a password
        or a token) wherever they appear, also on their own and percent-decoded; the rest of
        the URL stays readable. For a URL that is not a secret as a whole, such as the store's."""
        for password in url_passwords(url or ""):
            self._add(password)

    def _add(self, secret: str) -> None:
        new = {s for s in _spellings(secret) if len(s) >= MIN_SECRET_LENGTH and s != "***"} - self._secrets
        if new:
            self._secrets |= new
            alternatives = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in alternatives))

    def __call__(self, text: str) -> str:
        if not text:
            return text
        text = mask_urls(text)
        if self._pattern is not None:
            text = self._pattern.sub("***", text)
        return text
