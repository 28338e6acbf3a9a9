"""``type: email``: the email it renders, and delivery to a real SMTP server (aiosmtpd) in
plain text, with STARTTLS and with implicit TLS, with and without AUTH."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import email.utils
import socket
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage as MIMEMessage
from pathlib import Path
from typing import Any

import html5lib
import httpx
import pytest

from fraiseql_checks.notifiers.email import KEY_HEADER, Email
from fraiseql_checks.notify.message import Event, Message
from fraiseql_checks.notify.notifier import DeliveryError, EmailMessage, NotifierType, Transport
from fraiseql_checks.outbox import Kind
from tests.support.checkdir import CheckDir
from tests.support.services import free_port, require_binary

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
USER, PASSWORD = "checks", "smtp-pa55-9e1f"

FIRING = Event(
    kind=Kind.FIRING,
    check_id="checks/check_db.py::check_pool",
    name="check_pool",
    state="failing",
    severity="critical",
    suite="health",
    message="pool exhausted: <script>alert('x')</script> & more",
    reason="3 failing runs in a row",
    at=T0,
    since=T0 - 90,
    runbook_url="https://git.example.org/ops/blob/main/docs/runbooks/Pool.md",
    dashboard_url="https://grafana.example.org/d/health?var=<b>",
    trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    values={"lag_seconds": 7.5},
)
MESSAGE = Message(receiver="mail", key="0f1e2d3c4b5a69788796a5b4c3d2e1f0", events=(FIRING,))


def notifier(**table: Any) -> Email:
    """An email receiver built from its config table, as the config does."""
    made, _ = NotifierType("email", Email).make("mail", table, "notify.receivers[0] (mail)")
    assert isinstance(made, Email)
    return made


def config_error(**table: Any) -> str:
    with pytest.raises(ValueError) as caught:
        notifier(**table)
    return str(caught.value)


def deliver(receiver: Email, message: Message = MESSAGE) -> None:
    async def main() -> None:
        async with httpx.AsyncClient() as client:
            for item in receiver.render(message):
                await receiver.send(item, Transport(client, timeout=5.0))

    asyncio.run(main())


# ---- a real SMTP server -------------------------------------------------------------------


@dataclasses.dataclass
class Received:
    sender: str
    recipients: list[str]
    message: MIMEMessage
    tls: bool
    login: str | None


class SMTPServer:
    """aiosmtpd on loopback: keeps what it gets; refuses what it is told to."""

    def __init__(
        self,
        *,
        refuse: dict[str, str] | None = None,
        data_reply: str | None = None,
        password: str | None = None,
        **parameters: Any,
    ) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.received: list[Received] = []
        self.logins: list[tuple[str, bool]] = []
        server = self

        class Handler:
            async def handle_RCPT(self, _s: Any, _session: Any, envelope: Any, address: str, _opts: Any) -> str:
                if address in (refuse or {}):
                    return (refuse or {})[address]
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
                if data_reply:
                    return data_reply
                parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
                assert isinstance(parsed, MIMEMessage)
                tls = smtp.transport.get_extra_info("ssl_object") is not None
                login = (
                    next((name for name, ok in reversed(server.logins) if ok), None) if session.authenticated else None
                )
                server.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, tls, login))
                return "250 OK"

        def authenticator(_s: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> Any:
            ok = isinstance(data, LoginPassword) and data.login == USER.encode() and data.password == password.encode()
            server.logins.append((data.login.decode(), ok))
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

        if password is not None:
            parameters["authenticator"] = authenticator
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **parameters)

    @property
    def smarthost(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


@dataclasses.dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for localhost and 127.0.0.1, made with the openssl CLI."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            require_binary("openssl"),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return Certificate(cert, key)


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


# ---- the email, as rendered ----------------------------------------------------------------


def test_one_multipart_alternative_email_with_the_title_as_subject_and_both_parts() -> None:
    receiver = notifier(
        to=["oncall@example.org", "DBA <dba@example.org>"],
        smarthost="127.0.0.1:25",
        **{"from": "fraiseql-checks <checks@example.org>"},
    )
    (item,) = receiver.render(MESSAGE, now=T0 + 5)
    assert isinstance(item, EmailMessage)
    assert item.sender == "checks@example.org"
    assert item.recipients == ("oncall@example.org", "dba@example.org")
    mail = email.message_from_bytes(item.message.as_bytes(), policy=email.policy.default)
    assert isinstance(mail, MIMEMessage)
    assert mail.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in mail.iter_parts()] == ["text/plain", "text/html"]
    assert mail["Subject"] == MESSAGE.title == "[FIRING] check_pool failing"
    assert mail["From"] == "fraiseql-checks <checks@example.org>"
    assert mail["To"] == "oncall@example.org, DBA <dba@example.org>"
    assert email.utils.parsedate_to_datetime(mail["Date"]).timestamp() == T0 + 5
    assert mail[KEY_HEADER] == MESSAGE.key
    assert mail["Auto-Submitted"] == "auto-generated"
    text_part = mail.get_body(("plain",))
    assert text_part is not None
    assert "pool exhausted: <script>alert('x')</script> & more" in text_part.get_content()
    assert "Runbook: https://git.example.org/ops/blob/main/docs/runbooks/Pool.md" in text_part.get_content()


def test_the_html_part_is_escaped_and_parses_as_html() -> None:
    receiver = notifier(to="oncall@example.org", smarthost="127.0.0.1:25", **{"from": "checks@example.org"})
    (item,) = receiver.render(MESSAGE)
    assert isinstance(item, EmailMessage)
    part = item.message.get_body(("html",))
    assert part is not None
    html = part.get_content()
    assert "<script>" not in html
    assert "pool exhausted: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in html
    html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(html)  # raises on any parse error
    tree = html5lib.parse(html, namespaceHTMLElements=False)
    assert tree.find(".//script") is None
    links = {a.text: a.get("href") for a in tree.iter("a")}
    assert links["Runbook"] == FIRING.runbook_url
    assert links["Dashboard"] == FIRING.dashboard_url  # the attribute escaped, the link intact


def test_the_message_id_comes_from_the_key_so_a_retry_is_the_same_email() -> None:
    receiver = notifier(to="oncall@example.org", smarthost="127.0.0.1:25", **{"from": "checks@example.org"})
    first, again = (receiver.render(MESSAGE, now=T0 + n)[0] for n in (1, 60))
    other = receiver.render(dataclasses.replace(MESSAGE, key="another-key"))[0]
    assert isinstance(first, EmailMessage) and isinstance(again, EmailMessage) and isinstance(other, EmailMessage)
    assert first.message["Message-ID"] == again.message["Message-ID"] == f"<{MESSAGE.key}@example.org>"
    assert other.message["Message-ID"] != first.message["Message-ID"]


def test_a_line_break_in_a_title_does_not_end_the_subject_header() -> None:
    event = dataclasses.replace(FIRING, name="check_x[a\r\nBcc: evil@example.org]")
    receiver = notifier(to="oncall@example.org", smarthost="127.0.0.1:25", **{"from": "checks@example.org"})
    (item,) = receiver.render(dataclasses.replace(MESSAGE, events=(event,)))
    assert isinstance(item, EmailMessage)
    mail = email.message_from_bytes(item.message.as_bytes(), policy=email.policy.default)
    assert mail["Bcc"] is None
    assert mail["Subject"] == "[FIRING] check_x[a Bcc: evil@example.org] failing"


# ---- the config ------------------------------------------------------------------------------


def test_config_errors_name_the_key() -> None:
    base = {"to": "a@example.org", "from": "b@example.org", "smarthost": "smtp.example.org:587"}
    assert config_error(**{**base, "to": []}) == "notify.receivers[0] (mail).to: expected at least one address"
    assert config_error(**{**base, "to": "nobody"}) == "notify.receivers[0] (mail).to: not an email address: 'nobody'"
    assert config_error(**{**base, "smarthost": "smtp.example.org"}) == (
        "notify.receivers[0] (mail).smarthost: expected host:port, like smtp.example.org:587, got 'smtp.example.org'"
    )
    assert config_error(**{**base, "tls": "ssl"}) == (
        "notify.receivers[0] (mail).tls: expected one of none, starttls, tls, got 'ssl'"
    )
    assert (
        config_error(to="a@example.org", smarthost="h:25") == "notify.receivers[0] (mail): an email receiver needs from"
    )
    assert config_error(**base, username=USER) == "notify.receivers[0] (mail): give username and password together"
    assert config_error(**base, tls="none", username=USER, password=PASSWORD) == (
        "notify.receivers[0] (mail): tls: none would send the password in clear: use tls: starttls or tls"
    )
    assert config_error(**base, ca_file="/nonexistent/ca.pem") == (
        "notify.receivers[0] (mail): ca_file: no such file: /nonexistent/ca.pem"
    )


def test_the_password_is_a_secret_and_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    table = {"to": "a@example.org", "from": "b@example.org", "smarthost": "[::1]:25", "username": USER}
    made, secrets = NotifierType("email", Email).make("mail", {**table, "password_file": str(secret)}, "where")
    assert made.options["password"] == PASSWORD
    assert secrets == [PASSWORD]
    assert made.options["tls"] == "starttls"
    assert PASSWORD not in made.describe()
    assert made.describe() == "email a@example.org via [::1]:25 (tls: starttls)"


# ---- delivery to a real SMTP server -----------------------------------------------------------


def test_plain_smtp_delivers_one_email_to_every_recipient(smtp: SMTPServer) -> None:
    receiver = notifier(
        to=["oncall@example.org", "DBA <dba@example.org>"],
        smarthost=smtp.smarthost,
        tls="none",
        hello="checks.example.org",
        **{"from": "fraiseql-checks <checks@example.org>"},
    )
    deliver(receiver)
    (got,) = smtp.received
    assert (got.sender, got.recipients, got.tls) == (
        "checks@example.org",
        ["oncall@example.org", "dba@example.org"],
        False,
    )
    assert got.message["Subject"] == MESSAGE.title
    assert got.message["Message-ID"] == f"<{MESSAGE.key}@example.org>"
    assert got.message.get_content_type() == "multipart/alternative"
    html = got.message.get_body(("html",))
    assert html is not None and "&lt;script&gt;" in html.get_content()


def test_starttls_and_auth(certificate: Certificate) -> None:
    with SMTPServer(
        tls_context=certificate.server_context(), require_starttls=True, password=PASSWORD, auth_require_tls=True
    ) as smtp:
        receiver = notifier(
            to="oncall@example.org",
            smarthost=smtp.smarthost,
            username=USER,
            password=PASSWORD,
            ca_file=str(certificate.cert),
            **{"from": "checks@example.org"},
        )
        deliver(receiver)
    (got,) = smtp.received
    assert (got.tls, got.login) == (True, USER)
    assert got.message["Subject"] == MESSAGE.title


def test_implicit_tls(certificate: Certificate) -> None:
    # aiosmtpd counts only STARTTLS as TLS for auth_require_tls: the whole connection is TLS here.
    with SMTPServer(ssl_context=certificate.server_context(), password=PASSWORD, auth_require_tls=False) as smtp:
        receiver = notifier(
            to="oncall@example.org",
            smarthost=smtp.smarthost,
            tls="tls",
            username=USER,
            password=PASSWORD,
            ca_file=str(certificate.cert),
            **{"from": "checks@example.org"},
        )
        deliver(receiver)
    (got,) = smtp.received
    assert (got.tls, got.login) == (True, USER)


def test_an_untrusted_certificate_is_retried_unless_verification_is_off(certificate: Certificate) -> None:
    with SMTPServer(ssl_context=certificate.server_context()) as smtp:
        table = {"to": "oncall@example.org", "smarthost": smtp.smarthost, "tls": "tls", "from": "checks@example.org"}
        with pytest.raises(DeliveryError) as caught:
            deliver(notifier(**table))
        assert not caught.value.permanent
        assert str(caught.value).startswith(f"{smtp.smarthost}: the server's certificate is not trusted (")
        assert str(caught.value).endswith("); see ca_file, insecure_skip_verify")
        assert smtp.received == []
        deliver(notifier(**table, insecure_skip_verify=True))
    assert len(smtp.received) == 1


def test_a_wrong_password_is_permanent(certificate: Certificate) -> None:
    with SMTPServer(tls_context=certificate.server_context(), password=PASSWORD) as smtp:
        receiver = notifier(
            to="oncall@example.org",
            smarthost=smtp.smarthost,
            username=USER,
            password="not-the-password",
            ca_file=str(certificate.cert),
            **{"from": "checks@example.org"},
        )
        with pytest.raises(DeliveryError) as caught:
            deliver(receiver)
    assert caught.value.permanent
    assert str(caught.value).startswith(f"{smtp.smarthost} answered 535 ")
    assert "not-the-password" not in str(caught.value)
    assert smtp.logins and all(not ok for _, ok in smtp.logins)  # smtplib tries PLAIN, then LOGIN
    assert smtp.received == []


def test_starttls_not_offered_is_permanent_and_the_password_is_never_sent() -> None:
    with SMTPServer(password=PASSWORD, auth_require_tls=False) as smtp:  # no tls_context: no STARTTLS
        receiver = notifier(
            to="oncall@example.org",
            smarthost=smtp.smarthost,
            username=USER,
            password=PASSWORD,
            **{"from": "checks@example.org"},
        )
        with pytest.raises(DeliveryError) as caught:
            deliver(receiver)
    assert caught.value.permanent
    assert str(caught.value) == f"{smtp.smarthost} does not offer STARTTLS (tls: starttls)"
    assert smtp.logins == [] and smtp.received == []


def test_plain_auth_is_allowed_to_a_relay_on_loopback() -> None:
    with SMTPServer(password=PASSWORD, auth_require_tls=False) as smtp:
        receiver = notifier(
            to="oncall@example.org",
            smarthost=smtp.smarthost,
            tls="none",
            username=USER,
            password=PASSWORD,
            **{"from": "checks@example.org"},
        )
        deliver(receiver)
    assert [got.login for got in smtp.received] == [USER]


def test_a_server_that_is_down_is_retried() -> None:
    receiver = notifier(
        to="oncall@example.org", smarthost=f"127.0.0.1:{free_port()}", tls="none", **{"from": "checks@example.org"}
    )
    with pytest.raises(DeliveryError) as caught:
        deliver(receiver)
    assert not caught.value.permanent
    assert "ConnectionRefusedError" in str(caught.value)


def test_a_server_that_never_answers_is_retried_after_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never says 220
        port = silent.getsockname()[1]
        receiver = notifier(
            to="oncall@example.org",
            smarthost=f"127.0.0.1:{port}",
            tls="none",
            timeout="300ms",
            **{"from": "c@example.org"},
        )
        with pytest.raises(DeliveryError) as caught:
            deliver(receiver)
    assert not caught.value.permanent
    assert str(caught.value) == f"127.0.0.1:{port}: no answer within 0.3s"


@pytest.mark.parametrize(
    ("server", "permanent", "error"),
    [
        ({"data_reply": "451 4.3.0 try again later"}, False, "answered 451 4.3.0 try again later"),
        ({"data_reply": "554 5.7.1 rejected as spam"}, True, "answered 554 5.7.1 rejected as spam"),
        (
            {"refuse": {"oncall@example.org": "550 5.1.1 no such user"}},
            True,
            "refused oncall@example.org (550 5.1.1 no such user)",
        ),
        (
            {"refuse": {"oncall@example.org": "452 4.2.2 mailbox full"}},
            False,
            "refused oncall@example.org (452 4.2.2 mailbox full)",
        ),
    ],
)
def test_smtp_replies_4xx_are_retried_and_5xx_are_permanent(
    server: dict[str, Any], permanent: bool, error: str
) -> None:
    with SMTPServer(**server) as smtp:
        receiver = notifier(
            to="oncall@example.org", smarthost=smtp.smarthost, tls="none", **{"from": "checks@example.org"}
        )
        with pytest.raises(DeliveryError) as caught:
            deliver(receiver)
    assert caught.value.permanent is permanent
    assert str(caught.value) == f"{smtp.smarthost} {error}"


def test_a_recipient_refused_while_others_got_it_is_not_retried() -> None:
    with SMTPServer(refuse={"gone@example.org": "550 5.1.1 no such user"}) as smtp:
        receiver = notifier(
            to=["oncall@example.org", "gone@example.org"],
            smarthost=smtp.smarthost,
            tls="none",
            **{"from": "c@example.org"},
        )
        with pytest.raises(DeliveryError) as caught:
            deliver(receiver)
    assert caught.value.permanent
    assert str(caught.value) == (
        f"{smtp.smarthost} refused gone@example.org (550 5.1.1 no such user); the other recipients got it"
    )
    assert [got.recipients for got in smtp.received] == [["oncall@example.org"]]


# ---- the user's path: the CLI --------------------------------------------------------------


def test_notify_test_sends_an_email_through_the_cli(checkdir: CheckDir, certificate: Certificate) -> None:
    with SMTPServer(tls_context=certificate.server_context(), require_starttls=True, password=PASSWORD) as smtp:
        checkdir.write(
            "fraiseql-checks.yaml",
            f"""
            notify:
              receivers:
                - name: mail
                  type: email
                  to: oncall@example.org
                  from: "fraiseql-checks <checks@example.org>"
                  smarthost: {smtp.smarthost}
                  username: {USER}
                  password: "${{SMTP_PASSWORD}}"
                  ca_file: {certificate.cert}
            """,
        )
        result = checkdir.run("notify", "test", "mail", env={"SMTP_PASSWORD": PASSWORD})
    assert result.ret == 0, result.stderr
    assert (
        result.stdout.strip()
        == f"sent a test message to mail (email oncall@example.org via {smtp.smarthost} (tls: starttls))"
    )
    assert PASSWORD not in result.stdout + result.stderr
    (got,) = smtp.received
    assert got.message["Subject"] == "[TEST] a test message from fraiseql-checks to mail"
    assert (got.tls, got.login) == (True, USER)


def test_a_wrong_email_setting_is_one_line_and_exit_code_4(checkdir: CheckDir) -> None:
    checkdir.write(
        "fraiseql-checks.yaml",
        """
        notify:
          receivers:
            - {name: mail, type: email, to: oncall@example.org, from: c@example.org, smarthost: smtp.example.org}
        """,
    )
    result = checkdir.run("notify", "list")
    assert result.ret == 4
    assert result.stderr.splitlines() == [
        "ERROR: notify.receivers[0] (mail).smarthost: expected host:port, like"
        " smtp.example.org:587, got 'smtp.example.org'"
    ]
