"""The notifier interface: what every receiver type (``slack``, ``email``, ...) provides.

A notifier type is a class with three parts, each small and testable alone:

- ``settings``: its keys, typed (``config.Setting``), with which are secrets;
  ``options(values)`` validates a receiver's table against them (and runs any
  cross-key rule the type has);
- ``render(message)``: a *pure* function from a ``Message`` to what goes on the wire
  (``HTTPRequest``, ``EmailMessage`` or ``Notification`` values), no I/O: tests check its output
  against the service's own schema or reference client;
- ``send(outgoing, transport)``: delivers one rendered item, raising
  ``DeliveryError`` (``retry_after`` for a 429 or 5xx, ``permanent`` for a refusal
  that retrying cannot fix).

Types are registered with the ``fraiseql_add_notifiers`` hook (built-in ones in
``fraiseql_checks/notifiers/``; an outside package through the ``fraiseql_checks``
entry-point group, like any plugin). A config names any number of receivers of
each type.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from fraiseql_checks.config import Setting, did_you_mean
from fraiseql_checks.registry import Registry

if TYPE_CHECKING:
    import email.message

    import httpx

    from fraiseql_checks.notify.message import Message

__all__ = [
    "DeliveryError",
    "EmailMessage",
    "HTTPRequest",
    "Notification",
    "Notifier",
    "NotifierType",
    "Notifiers",
    "Outgoing",
    "Transport",
    "check_http_response",
]

#: Threads for the notifiers' blocking work (one delivery in flight per receiver, plus rendering).
THREADS = 4
T = TypeVar("T")

#: The most of a ``Retry-After`` the sender honours: a receiver asking for an hour
#: gets its retries spaced by this instead, and the entry stays pending meanwhile.
MAX_RETRY_AFTER = 600.0


class DeliveryError(Exception):
    """A delivery that did not succeed: retried later unless ``permanent``."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        #: What the receiver asked for (``Retry-After``), in seconds.
        self.retry_after = retry_after


@dataclasses.dataclass(frozen=True)
class HTTPRequest:
    """One HTTP request a notifier sends (JSON bodies are already encoded)."""

    url: str
    body: bytes
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    method: str = "POST"
    #: What the request is, for logs: ``"trigger checks/x.py::check_y"``.
    what: str = ""


@dataclasses.dataclass(frozen=True)
class EmailMessage:
    """One email: its envelope and the message itself."""

    sender: str
    recipients: tuple[str, ...]
    message: email.message.EmailMessage
    what: str = ""


@dataclasses.dataclass(frozen=True)
class Notification:
    """A title and a plain-text body, for a notifier whose library does the delivery (Apprise)."""

    title: str
    body: str
    #: ``info``, ``success``, ``warning`` or ``failure``: how a chat service shows it.
    level: str = "info"
    what: str = ""


Outgoing = HTTPRequest | EmailMessage | Notification


class Transport:
    """What notifiers send with: one HTTP client for every receiver, with a timeout."""

    def __init__(self, http: httpx.AsyncClient, timeout: float = 10.0) -> None:
        import concurrent.futures

        self.http = http
        self.timeout = timeout
        #: Threads of their own for blocking work (rendering, smtplib, Apprise): a receiver
        #: that answers a byte at a time holds one of these, never the event loop's default
        #: executor that the rest of the watcher shares.
        self._threads = concurrent.futures.ThreadPoolExecutor(THREADS, thread_name_prefix="notify")

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` on one of the notifications' own threads."""
        import asyncio

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, functools.partial(function, *args, **kwargs))

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def post(self, request: HTTPRequest) -> httpx.Response:
        """Send ``request``; transport faults become a retryable ``DeliveryError``."""
        import httpx

        try:
            return await self.http.request(
                request.method, request.url, content=request.body, headers=dict(request.headers), timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise DeliveryError(f"{type(exc).__name__}: {reason}") from None


def check_http_response(response: httpx.Response, ok: Sequence[int] = ()) -> None:
    """Raise ``DeliveryError`` unless ``response`` succeeded: 429 and 5xx are retried
    (``Retry-After`` honoured, seconds or an HTTP date), other 4xx are permanent."""
    status = response.status_code
    if (200 <= status < 300) or status in ok:
        return
    text = response.text[:200].strip().replace("\n", " ")
    detail = f"HTTP {status}" + (f": {text}" if text else "")
    if status == 429 or status >= 500:
        raise DeliveryError(detail, retry_after=retry_after(response.headers.get("retry-after")))
    raise DeliveryError(detail, permanent=True)


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (delta-seconds or an HTTP date), bounded."""
    if not value:
        return None
    value = value.strip()
    seconds: float | None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            import email.utils

            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        import time

        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class Notifier:
    """One configured receiver of a type; subclasses set ``type``, ``settings``, ``secrets``
    and implement ``render`` and ``send``."""

    #: The ``type`` a receiver names in the config.
    type: ClassVar[str] = ""
    #: What the type is, for ``notify list`` and the docs.
    description: ClassVar[str] = ""
    #: The receiver's keys besides ``name`` and ``type``. A secret key also accepts
    #: ``<key>_file`` (a path whose content is the secret).
    settings: ClassVar[Sequence[Setting]] = ()
    #: Whether the type can send one message for several events (email, Slack); a type
    #: that sends one request per event (PagerDuty) is ``False``: its events still
    #: go out together, each as its own request.
    groups: ClassVar[bool] = True

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.options = dict(options)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Rules across keys (``ValueError``): e.g. a Slack receiver needs ``url`` or ``token``."""

    def render(self, message: Message) -> list[Outgoing]:
        """What to send for ``message``: pure, no I/O."""
        raise NotImplementedError

    async def send(self, outgoing: Outgoing, transport: Transport) -> None:
        """Deliver one item ``render`` made; ``DeliveryError`` when it did not go."""
        if not isinstance(outgoing, HTTPRequest):
            raise TypeError(f"{self.type} sends HTTP requests, got {type(outgoing).__name__}")
        response = await transport.post(outgoing)
        check_http_response(response)

    def describe(self) -> str:
        """One line for ``notify list``: where it sends, secrets masked by the caller."""
        target = self.options.get("url") or self.options.get("to") or ""
        if isinstance(target, list | tuple):
            target = ", ".join(map(str, target))
        return f"{self.type} {target}".strip()


@dataclasses.dataclass(frozen=True)
class NotifierType:
    """A registered type: its name and its class."""

    name: str
    cls: type[Notifier]

    def make(self, name: str, table: Mapping[str, Any], where: str) -> tuple[Notifier, list[str]]:
        """A receiver from its config table (without ``name`` and ``type``), and the secret
        values it holds (to mask). ``ValueError`` naming the key when the table is wrong."""
        by_name = {setting.name: setting for setting in self.cls.settings}
        secrets = {setting.name for setting in self.cls.settings if setting.secret}
        options: dict[str, Any] = {}
        found: list[str] = []
        for key, raw in table.items():
            if key.endswith("_file") and key.removesuffix("_file") in secrets:
                base = key.removesuffix("_file")
                if base in table:
                    raise ValueError(f"{where}: give {base} or {key}, not both")
                raw = _read_secret_file(raw, f"{where}.{key}")
                key = base
            setting = by_name.get(key)
            if setting is None:
                known = [*by_name, *(f"{secret}_file" for secret in secrets)]
                raise ValueError(f"{where}: unknown key {key!r} for type {self.name}{did_you_mean(key, known)}")
            try:
                options[key] = setting.type(raw)
            except ValueError as exc:
                raise ValueError(f"{where}.{key}: {exc}") from None
            if setting.secret:
                found.extend(_texts(options[key]))
        for setting in self.cls.settings:
            if setting.name not in options and setting.default is not None:
                options[setting.name] = setting.default
        try:
            self.cls.check_options(options)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        return self.cls(name, options), found


def _read_secret_file(path: Any, where: str) -> str:
    if not isinstance(path, str) or not path:
        raise ValueError(f"{where}: expected a file path, got {path!r}")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise ValueError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _texts(item)]
    return []


class Notifiers(Registry[NotifierType]):
    """The notifier types plugins registered (``fraiseql_add_notifiers``)."""

    kind = "notifier type"

    def register(self, cls: type[Notifier]) -> None:
        if not cls.type:
            raise ValueError(f"{cls.__name__} names no type")
        self.add(NotifierType(cls.type, cls))
