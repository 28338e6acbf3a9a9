"""``type: apprise``: the long tail (Teams, Discord, Telegram, Opsgenie, ntfy, ...) through Apprise.

::

    - name: chat
      type: apprise
      urls: ["${DISCORD_URL}", "ntfy://ntfy.example.org/fraiseql"]

An optional extra: ``pip install 'fraiseql-checks[apprise]'``; a config naming this
type without it is refused when it is read. Each URL is one Apprise service (see
Apprise's wiki for the schemes); URLs are secrets: none is ever in a log line or an
error, which name the service (``Discord``) instead. Every URL gets the title and
the text of the message; the message is delivered when every service took it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from fraiseql_checks.config import Setting
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.notify import templates
from fraiseql_checks.notify.message import Message
from fraiseql_checks.notify.notifier import DeliveryError, Notification, Notifier, Notifiers, Outgoing, Transport

MISSING = "type apprise needs the apprise extra: pip install 'fraiseql-checks[apprise]'"


def as_urls(value: Any) -> list[str]:
    """One Apprise URL or a list of them."""
    urls = [value] if isinstance(value, str) else value
    if not isinstance(urls, list) or not all(isinstance(url, str) and url.strip() for url in urls) or not urls:
        # Not the value: it holds secrets.
        raise ValueError("expected an Apprise URL or a list of them")
    return [url.strip() for url in urls]


def scheme(url: str) -> str:
    """``discord`` of ``discord://...``: what an error may say about a URL."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep and head.isascii() and head.replace("+", "").isalnum() and len(head) <= 20 else "?"


def level_of(message: Message) -> str:
    """Apprise's notification type: how a chat service colours the message."""
    if message.test:
        return "info"
    if not message.problem:
        return "success"
    return "failure" if message.severity == "critical" else "warning"


def _apprise() -> Any:
    """The ``apprise`` module, imported on first use (it is an optional extra)."""
    import logging

    try:
        import apprise
    except ImportError:
        raise ValueError(MISSING) from None
    logger = logging.getLogger("apprise")
    # Apprise's debug lines carry whole URLs (a token in a path is a secret); its
    # warnings name only the host. With no logging set up, Python would print those
    # warnings on stderr: what failed is in the DeliveryError instead.
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
        logger.addHandler(logging.NullHandler())
    return apprise


class Apprise(Notifier):
    type: ClassVar[str] = "apprise"
    description: ClassVar[str] = "any of Apprise's 100+ services (Teams, Discord, Telegram, ntfy, ...); an extra"
    settings = (Setting("urls", as_urls, help="Apprise URLs, one per service (secrets)", secret=True),)

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self._services: Any = None

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        apprise = _apprise()
        urls = options.get("urls")
        if not urls:
            raise ValueError("an apprise receiver needs urls")
        for index, url in enumerate(urls):
            if apprise.Apprise.instantiate(url) is None:
                raise ValueError(f"urls[{index}]: Apprise cannot use this {scheme(url)}:// URL")

    def describe(self) -> str:
        urls = self.options["urls"]
        return f"apprise {len(urls)} URL{'' if len(urls) == 1 else 's'} ({', '.join(scheme(url) for url in urls)})"

    def render(self, message: Message) -> list[Outgoing]:
        body = templates.text(message, message.templates)
        return [Notification(message.title, body, level_of(message), what=f"message {message.key}")]

    async def send(self, outgoing: Outgoing, transport: Transport) -> None:
        if not isinstance(outgoing, Notification):
            raise TypeError(f"apprise sends Notification values, got {type(outgoing).__name__}")
        apprise = _apprise()
        if self._services is None:
            services = apprise.Apprise()
            for url in self.options["urls"]:
                services.add(url)
            self._services = services
        result = await transport.run(
            self._services.notify,
            body=outgoing.body,
            title=outgoing.title,
            notify_type=outgoing.level,
            body_format=apprise.NotifyFormat.TEXT,
        )
        if not result:
            raise DeliveryError(f"Apprise could not deliver it{_failed(result, len(self.options['urls']))}")


def _failed(result: Any, total: int) -> str:
    """Which services failed, by name (``Discord``), never by URL. Older Apprise answers
    only True or False."""
    try:
        names = [str(service.name) for service in result if not service]
    except TypeError:
        return ""
    return f" to {len(names)} of {total} services ({', '.join(names)})" if names else ""


@hookimpl
def fraiseql_add_notifiers(notifiers: Notifiers) -> None:
    notifiers.register(Apprise)
