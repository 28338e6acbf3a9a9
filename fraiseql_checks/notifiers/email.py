"""``type: email``: one multipart email (text and HTML) per message, over SMTP.

::

    - name: oncall-mail
      type: email
      to: [oncall@example.org]
      from: "fraiseql-checks <checks@example.org>"
      smarthost: smtp.example.org:587
      tls: starttls            # none | starttls (the default) | tls (implicit, port 465)
      username: checks
      password_file: /run/secrets/smtp-password

- ``tls: starttls`` insists on STARTTLS: a server that does not offer it gets
  nothing, least of all the password. ``tls: none`` sends in clear, and accepts
  ``username`` only for a relay on this machine (loopback).
- ``ca_file`` trusts an internal CA (instead of the system's); ``insecure_skip_verify``
  turns certificate checks off, for a test server.
- The ``Message-ID`` comes from the message's idempotency key, so a retry after a
  lost answer is the same email (receivers and archives can drop the copy); the
  key is also in ``X-Fraiseql-Checks-Key``.
- SMTP replies decide what happens next: 4xx and network faults are retried,
  5xx (a refused recipient, a wrong password) are permanent.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from fraiseql_checks.config import Setting, as_bool, as_duration, as_str, one_of
from fraiseql_checks.hookspec import hookimpl
from fraiseql_checks.notify import templates
from fraiseql_checks.notify.message import Message
from fraiseql_checks.notify.notifier import DeliveryError, EmailMessage, Notifier, Notifiers, Outgoing, Transport

if TYPE_CHECKING:
    import email.message
    import ssl

# The standard library's email and smtplib (~15 ms at every start) are imported where an
# address is parsed or a mail built and sent: only where email is configured.

KEY_HEADER = "X-Fraiseql-Checks-Key"
TLS_MODES = ("none", "starttls", "tls")


def as_addresses(value: Any) -> list[str]:
    """``to``: one address, several separated by commas, or a list; each ``a@b`` or ``Name <a@b>``."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"expected an address or a list of addresses, got {value!r}")
    found = [f"{name} <{address}>" if name else address for item in items for name, address in _parse(item)]
    if not found:
        raise ValueError("expected at least one address")
    return found


def as_address(value: Any) -> str:
    """``from``: one address, ``a@b`` or ``Name <a@b>``."""
    parsed = _parse(as_str(value))
    if len(parsed) != 1:
        raise ValueError(f"expected one address, got {value!r}")
    name, address = parsed[0]
    return f"{name} <{address}>" if name else address


def _parse(text: str) -> list[tuple[str, str]]:
    import email.utils

    pairs = email.utils.getaddresses([text])
    found = []
    for name, address in pairs:
        if not name and not address:
            continue
        local, _, domain = address.rpartition("@")
        if not local or not domain or any(c.isspace() for c in address):
            raise ValueError(f"not an email address: {text!r}")
        found.append((name, address))
    return found


def as_smarthost(value: Any) -> str:
    """``host:port`` (``[::1]:25`` for an IPv6 address)."""
    host, port = split_smarthost(as_str(value))
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_smarthost(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, like smtp.example.org:587, got {text!r}")
    return host, int(port)


def address_of(text: str) -> str:
    """The bare address of ``Name <a@b>`` (what the SMTP envelope carries)."""
    import email.utils

    return email.utils.parseaddr(text)[1]


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build(message: Message, sender: str, recipients: list[str], now: float | None = None) -> email.message.EmailMessage:
    """The email for ``message``: subject the title, a text part and an HTML part (escaped)."""
    import email.message
    import email.utils

    mail = email.message.EmailMessage()
    # A header may not hold a line break; a check's name with one must not end the header.
    mail["Subject"] = " ".join(message.title.split())
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = email.utils.formatdate(time.time() if now is None else now, usegmt=True)
    domain = address_of(sender).rpartition("@")[2] or "fraiseql-checks.invalid"
    mail["Message-ID"] = f"<{message.key}@{domain}>"
    mail[KEY_HEADER] = message.key
    # RFC 3834: machine-made, so vacation responders stay quiet.
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(templates.text(message, message.templates))
    mail.add_alternative(templates.html(message, message.templates), subtype="html")
    return mail


class Email(Notifier):
    type: ClassVar[str] = "email"
    description: ClassVar[str] = "an email (text and HTML) over SMTP, with STARTTLS or implicit TLS and auth"
    settings = (
        Setting("to", as_addresses, help="who gets it: an address or a list"),
        Setting("from", as_address, help="the sender, e.g. 'fraiseql-checks <checks@example.org>'"),
        Setting("smarthost", as_smarthost, help="the SMTP server, host:port"),
        Setting("tls", one_of(*TLS_MODES), default="starttls", help="none, starttls (default) or tls (implicit)"),
        Setting("username", as_str, help="logs in with this user (needs password)"),
        Setting("password", as_str, help="the user's password", secret=True),
        Setting("hello", as_str, help="the name given in EHLO (default: this machine's)"),
        Setting("timeout", as_duration, help="for each step of the SMTP conversation (default: the sender's)"),
        Setting("ca_file", as_str, help="a PEM file of the CA certificates to trust instead of the system's"),
        Setting("insecure_skip_verify", as_bool, default=False, help="do not check the server's certificate"),
    )

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self._context: ssl.SSLContext | None = None

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        for key in ("to", "from", "smarthost"):
            if not options.get(key):
                raise ValueError(f"an email receiver needs {key}")
        if bool(options.get("username")) != bool(options.get("password")):
            raise ValueError("give username and password together")
        host, _ = split_smarthost(options["smarthost"])
        if options.get("username") and options["tls"] == "none" and not loopback(host):
            raise ValueError("tls: none would send the password in clear: use tls: starttls or tls")
        ca_file = options.get("ca_file")
        if ca_file and not Path(ca_file).is_file():
            raise ValueError(f"ca_file: no such file: {ca_file}")

    def describe(self) -> str:
        return f"email {', '.join(self.options['to'])} via {self.options['smarthost']} (tls: {self.options['tls']})"

    def render(self, message: Message, now: float | None = None) -> list[Outgoing]:
        sender, recipients = self.options["from"], list(self.options["to"])
        mail = build(message, sender, recipients, now)
        envelope = tuple(address_of(recipient) for recipient in recipients)
        return [EmailMessage(address_of(sender), envelope, mail, what=f"message {message.key}")]

    async def send(self, outgoing: Outgoing, transport: Transport) -> None:
        if not isinstance(outgoing, EmailMessage):
            raise TypeError(f"email sends EmailMessage values, got {type(outgoing).__name__}")
        await transport.run(self._deliver, outgoing, float(self.options.get("timeout") or transport.timeout))

    # -- SMTP, in a worker thread ------------------------------------------------------------

    def tls_context(self) -> ssl.SSLContext:
        import ssl

        if self._context is None:
            context = ssl.create_default_context(cafile=self.options.get("ca_file"))
            if self.options.get("insecure_skip_verify"):
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._context = context
        return self._context

    def _deliver(self, outgoing: EmailMessage, timeout: float) -> None:
        import smtplib
        import ssl

        host, port = split_smarthost(self.options["smarthost"])
        where = self.options["smarthost"]
        mode = self.options["tls"]
        hello = self.options.get("hello")
        try:
            client: smtplib.SMTP
            if mode == "tls":
                client = smtplib.SMTP_SSL(host, port, local_hostname=hello, timeout=timeout, context=self.tls_context())
            else:
                client = smtplib.SMTP(host, port, local_hostname=hello, timeout=timeout)
            with client:
                client.ehlo()
                if mode == "starttls":
                    if not client.has_extn("starttls"):
                        raise DeliveryError(f"{where} does not offer STARTTLS (tls: starttls)", permanent=True)
                    client.starttls(context=self.tls_context())
                    client.ehlo()
                if self.options.get("username"):
                    client.login(self.options["username"], self.options["password"])
                refused = client.send_message(
                    outgoing.message, from_addr=outgoing.sender, to_addrs=list(outgoing.recipients)
                )
        except DeliveryError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            raise _refused(where, exc.recipients, delivered=False) from None
        except smtplib.SMTPResponseException as exc:
            raise _reply(where, exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPNotSupportedError as exc:  # e.g. no AUTH offered
            raise DeliveryError(f"{where}: {exc}", permanent=True) from None
        except smtplib.SMTPServerDisconnected as exc:
            if isinstance(exc.__context__, TimeoutError):  # smtplib's word for a read that timed out
                raise DeliveryError(f"{where}: no answer within {timeout:g}s") from None
            raise DeliveryError(f"{where} closed the connection: {exc}") from None
        except smtplib.SMTPException as exc:  # no usable AUTH mechanism, and the like
            raise DeliveryError(f"{where}: {exc}", permanent=True) from None
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or exc.reason or str(exc)
            raise DeliveryError(
                f"{where}: the server's certificate is not trusted ({reason}); see ca_file, insecure_skip_verify"
            ) from None
        except TimeoutError:
            raise DeliveryError(f"{where}: no answer within {timeout:g}s") from None
        except OSError as exc:  # refused, unreachable, TLS handshake failures
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc.strerror or exc}") from None
        if refused:
            raise _refused(where, refused, delivered=True)


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def _reply(where: str, code: int, reply: bytes | str) -> DeliveryError:
    """A 4xx reply is worth retrying; a 5xx is a refusal."""
    return DeliveryError(f"{where} answered {code} {_text(reply)}".rstrip(), permanent=not 400 <= code < 500)


def _refused(where: str, recipients: Mapping[str, tuple[int, bytes]], delivered: bool) -> DeliveryError:
    """Recipients the server refused. When it took the message for the others, retrying would
    send them a copy: the refusal is final (and names who got it)."""
    parts = [f"{address} ({code} {_text(reply)})" for address, (code, reply) in sorted(recipients.items())]
    transient = all(400 <= code < 500 for code, _ in recipients.values())
    tail = "; the other recipients got it" if delivered else ""
    return DeliveryError(f"{where} refused {', '.join(parts)}{tail}", permanent=delivered or not transient)


@hookimpl
def fraiseql_add_notifiers(notifiers: Notifiers) -> None:
    notifiers.register(Email)
