"""SMTP with TLS and a login, as ``WAYPOINT_SMTP_URL`` says: STARTTLS when the server offers
it, implicit TLS for ``smtps://``, the user and password from the URL. The server is aiosmtpd
with a certificate made for this test (trusted by the sender through ``tls_context``)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.core.sessions import new_session
from app.mail import sender as sender_module
from app.mail.outbox import queue_mail
from app.mail.sender import SmtpSender, parse_smtp_url
from app.mail.worker import MailWorker
from tests.support.mail import SmtpServer

USER, PASSWORD = "mailer@example.com", "p@ss:word/1"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def trusting(certificate, monkeypatch):
    cert_path, _ = certificate
    monkeypatch.setattr(
        sender_module, "tls_context", lambda: ssl.create_default_context(cafile=str(cert_path))
    )


def server_context(certificate) -> ssl.SSLContext:
    cert_path, key_path = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert_path), str(key_path))
    return context


class Logins:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.seen.append((login, password, session.ssl is not None))
        return AuthResult(success=(login, password) == (USER, PASSWORD))


async def queue_one() -> None:
    async with new_session(write=True) as session:
        await queue_mail(
            session,
            to="ada@example.com",
            template="password_changed",
            context={"display_name": "Ada"},
        )
        await session.commit()


def url(scheme: str, port: int, password: str = PASSWORD) -> str:
    from urllib.parse import quote

    return f"{scheme}://{quote(USER, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}"


async def test_starttls_then_login(app_instance, certificate, trusting):
    logins = Logins()
    server = SmtpServer(
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=logins,
        auth_require_tls=True,
    ).start()
    try:
        await queue_one()
        worker = MailWorker(sender=SmtpSender(parse_smtp_url(url("smtp", server.port))))
        assert await worker.run_once() == 1
        (message,) = server.received()
        assert message["To"] == "ada@example.com"
        assert logins.seen == [(USER, PASSWORD, True)]  # the login went over TLS
    finally:
        server.stop()


async def test_implicit_tls_for_smtps(app_instance, certificate, trusting):
    logins = Logins()
    server = SmtpServer(
        ssl_context=server_context(certificate),
        authenticator=logins,
        auth_require_tls=False,
    ).start()
    try:
        await queue_one()
        worker = MailWorker(sender=SmtpSender(parse_smtp_url(url("smtps", server.port))))
        assert await worker.run_once() == 1
        assert len(server.received()) == 1  # SMTP_SSL: TLS from the first byte, or nothing
        assert [seen[:2] for seen in logins.seen] == [(USER, PASSWORD)]
    finally:
        server.stop()


async def test_a_wrong_login_or_an_untrusted_certificate_is_retried_not_lost(
    app_instance, certificate, sync_engine
):
    server = SmtpServer(
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=Logins(),
        auth_require_tls=True,
    ).start()
    try:
        await queue_one()
        # The system's authorities do not know this certificate: nothing is sent in clear.
        worker = MailWorker(sender=SmtpSender(parse_smtp_url(url("smtp", server.port))))
        assert await worker.run_once() == 1
        assert server.received() == []
        with sync_engine.connect() as conn:
            (status, error) = conn.exec_driver_sql(
                "SELECT status, last_error FROM mail_messages"
            ).one()
        assert status == "pending" and error == "SSLCertVerificationError"
    finally:
        server.stop()


def test_smtp_urls_are_read_with_their_defaults():
    plain = parse_smtp_url("smtp://mail.example.org")
    assert (plain.host, plain.port, plain.implicit_tls, plain.username) == (
        "mail.example.org", 25, False, None,
    )  # fmt: skip
    tls = parse_smtp_url(url("smtps", 2465))
    assert (tls.port, tls.implicit_tls, tls.username, tls.password) == (2465, True, USER, PASSWORD)
    assert parse_smtp_url("smtps://h").port == 465
    for bad in ("http://mail.example.org", "smtp://", "mail.example.org:25"):
        with pytest.raises(ValueError):
            parse_smtp_url(bad)
