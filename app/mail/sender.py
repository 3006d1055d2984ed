"""Handing messages over: to an SMTP server (``WAYPOINT_SMTP_URL``) or into a Maildir.

Both are blocking (the standard library's ``smtplib`` and ``mailbox``): the worker runs them
in a thread (``anyio.to_thread``), a batch at a time over one SMTP connection.

SMTP: ``smtp://[user:password@]host[:port]`` (port 25 by default) upgrades with STARTTLS
whenever the server offers it; ``smtps://`` (port 465 by default) speaks TLS from the first
byte. Certificates are checked against the system's authorities. What the server answers
decides the outcome: a 2xx sent, a 5xx refused for good, a 4xx (or no server, no connection,
a connection lost, a failed login) tried again later.
"""

from __future__ import annotations

import json
import mailbox
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Outcome:
    sent: bool
    permanent: bool = False  # a refusal that no retry will change (SMTP 5xx)
    error: str | None = None  # short: a code or a kind of failure, never the message
    where: str | None = None  # the Maildir file it was written to


class Sender(Protocol):
    def send_all(self, messages: Sequence[EmailMessage]) -> list[Outcome]: ...


def build_message(row: Any) -> EmailMessage:
    """The message a stored outbox row stands for: the same on every attempt."""
    message = EmailMessage()
    message["From"] = row.sender
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Date"] = format_datetime(row.created_at)
    message["Message-ID"] = row.message_id
    message["Auto-Submitted"] = "auto-generated"
    for name, value in json.loads(row.headers or "{}").items():
        message[name] = value
    message.set_content(row.text_body or "")
    if row.html_body:
        message.add_alternative(row.html_body, subtype="html")
    return message


class MaildirSender:
    """The embedded default: every message a file in ``directory`` (a Maildir: ``new/`` holds
    what no reader has opened yet)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send_all(self, messages: Sequence[EmailMessage]) -> list[Outcome]:
        try:
            self.directory.parent.mkdir(parents=True, exist_ok=True)
            box = mailbox.Maildir(self.directory, create=True)
        except OSError as exc:
            return [Outcome(False, error=type(exc).__name__)] * len(messages)
        outcomes = []
        for message in messages:
            try:
                key = box.add(message)
            except OSError as exc:  # a full disk, say: try again later
                outcomes.append(Outcome(False, error=type(exc).__name__))
                continue
            outcomes.append(Outcome(True, where=str(self.directory / "new" / key)))
        return outcomes


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpServer:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("WAYPOINT_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://")
    implicit = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or (465 if implicit else 25),
        implicit_tls=implicit,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def _by_code(code: int) -> Outcome:
    return Outcome(False, permanent=500 <= code < 600, error=f"SMTP {code}")


class SmtpSender:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    def _connect(self) -> smtplib.SMTP:
        s = self.server
        smtp: smtplib.SMTP
        if s.implicit_tls:
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=TIMEOUT_SECONDS, context=tls_context())
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=TIMEOUT_SECONDS)
        try:
            smtp.ehlo()
            if not s.implicit_tls and smtp.has_extn("starttls"):
                smtp.starttls(context=tls_context())
                smtp.ehlo()
            if s.username is not None:
                smtp.login(s.username, s.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send_all(self, messages: Sequence[EmailMessage]) -> list[Outcome]:
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            # No server, no connection, a refused greeting or login: nothing was handed over.
            return [Outcome(False, error=_describe(exc))] * len(messages)
        outcomes: list[Outcome] = []
        try:
            for message in messages:
                try:
                    smtp.send_message(message)
                except smtplib.SMTPRecipientsRefused as exc:
                    outcomes.append(_by_code(min(code for code, _ in exc.recipients.values())))
                except smtplib.SMTPResponseException as exc:  # sender or data refused
                    outcomes.append(_by_code(exc.smtp_code))
                except (OSError, smtplib.SMTPException) as exc:
                    # The connection is gone: this message and the rest wait for next time.
                    error = _describe(exc)
                    outcomes.extend(Outcome(False, error=error) for _ in messages[len(outcomes) :])
                    return outcomes
                else:
                    outcomes.append(Outcome(True))
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        return outcomes


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "smtp_code", None)
    return f"SMTP {code}" if isinstance(code, int) else type(exc).__name__


def sender_from_settings(smtp_url: str | None, var_dir: Path) -> Sender:
    if smtp_url:
        return SmtpSender(parse_smtp_url(smtp_url))
    return MaildirSender(var_dir / "mail")
