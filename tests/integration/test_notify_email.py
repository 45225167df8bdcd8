"""The completion email over a real local SMTP server (aiosmtpd): credentials only ever travel encrypted."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from slack_sdk import WebClient

from bot.cli import _settings
from bot.config import Settings
from bot.notify import CredentialsNeedTls, Notifier
from bot.slack_clients import OneWorkspace
from bot.store import Store
from sandbox.server import free_port


@dataclass
class MailServer:
    """What the server saw: each AUTH with whether the connection was encrypted, and the messages."""

    auths: list[tuple[str, bool]] = field(default_factory=list)  # (login, encrypted)
    messages: list[EmailMessage] = field(default_factory=list)
    port: int = 0

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        encrypted = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        self.auths.append((auth_data.login.decode(), encrypted))
        return AuthResult(success=auth_data.password == b"s3cret")

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 - aiosmtpd's hook
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_bundle(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def mail_server(request: pytest.FixtureRequest, ca: trustme.CA) -> Iterator[MailServer]:
    """`starttls` offers STARTTLS, `implicit` is TLS from the first byte (smtps), `plain` is neither.
    AUTH is accepted even in clear (auth_require_tls=False): the client alone must refuse it."""
    mode = request.param
    server = MailServer(port=free_port())
    options: dict[str, Any] = {"authenticator": server.authenticate, "auth_require_tls": False}
    if mode == "starttls":
        options["tls_context"] = _server_context(ca)
    elif mode == "implicit":
        options["ssl_context"] = _server_context(ca)
    controller = Controller(server, hostname="127.0.0.1", port=server.port, **options)
    controller.start()
    yield server
    controller.stop()


def _notifier(store: Store, smtp_url: str, ca_bundle: str) -> Notifier:
    settings = Settings(SMTP_URL=smtp_url, SMTP_FROM="bot@example.com", CA_BUNDLE=ca_bundle)
    return Notifier(OneWorkspace(WebClient(token="xoxb-unused")), settings, store)


@pytest.mark.parametrize("mail_server", ["starttls"], indirect=True)
def test_credentials_go_only_after_starttls(mail_server: MailServer, store: Store, ca_bundle: str) -> None:
    url = f"smtp://sync%40example.com:s3cret@127.0.0.1:{mail_server.port}"
    _notifier(store, url, ca_bundle).send_email("ops@example.com", "Sync finished", "All done.")
    assert mail_server.auths == [("sync@example.com", True)]
    assert [m["Subject"] for m in mail_server.messages] == ["Sync finished"]


@pytest.mark.parametrize("mail_server", ["implicit"], indirect=True)
def test_smtps_sends_credentials_over_implicit_tls(mail_server: MailServer, store: Store, ca_bundle: str) -> None:
    url = f"smtps://sync:s3cret@127.0.0.1:{mail_server.port}"
    _notifier(store, url, ca_bundle).send_email("ops@example.com", "Sync finished", "All done.")
    assert mail_server.auths == [("sync", True)] and len(mail_server.messages) == 1


@pytest.mark.parametrize("mail_server", ["plain"], indirect=True)
def test_credentials_are_never_sent_in_clear(mail_server: MailServer, store: Store, ca_bundle: str) -> None:
    url = f"smtp://sync:s3cret@127.0.0.1:{mail_server.port}"
    with pytest.raises(CredentialsNeedTls) as raised:
        _notifier(store, url, ca_bundle).send_email("ops@example.com", "Sync finished", "All done.")
    assert mail_server.auths == [] and mail_server.messages == []
    assert "STARTTLS" in raised.value.user_message and "smtps://" in raised.value.user_message
    assert "s3cret" not in raised.value.user_message and "s3cret" not in str(raised.value)


@pytest.mark.parametrize("mail_server", ["plain"], indirect=True)
def test_without_credentials_a_plain_server_still_gets_the_mail(mail_server: MailServer, store: Store,
                                                                ca_bundle: str) -> None:
    notifier = _notifier(store, f"smtp://127.0.0.1:{mail_server.port}", ca_bundle)
    notifier.send_email("ops@example.com", "Sync\r\nBcc: victim@example.com finished", "Line 1\nLine 2")
    [message] = mail_server.messages
    assert message["Subject"] == "Sync Bcc: victim@example.com finished" and message["Bcc"] is None
    assert message.get_content().splitlines() == ["Line 1", "Line 2"] and mail_server.auths == []


def test_a_malformed_smtp_url_stops_start_up() -> None:
    for url in ("http://mail.example.com", "smtp://", "smtp://host:notaport", "mail.example.com:25"):
        with pytest.raises(ValueError, match="SMTP_URL"):
            Settings(SMTP_URL=url)
    assert Settings(SMTP_URL="smtps://u:p@mail.example.com:465").SMTP_URL


def test_the_start_up_line_names_smtp_url_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_URL", "ftp://user:hunter2@mail.example.com")
    with pytest.raises(SystemExit) as raised:
        _settings(())
    assert "SMTP_URL" in str(raised.value) and "hunter2" not in str(raised.value)
