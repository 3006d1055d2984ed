"""A real SMTP server in the test process (aiosmtpd) and helpers for the mail tests."""

from __future__ import annotations

import collections
import datetime as dt
import email
import email.policy
import logging
import re
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.support.servers import free_port

# aiosmtpd logs every connection at INFO ("mail.log"): noise in the suite's output.
logging.getLogger("mail.log").setLevel(logging.WARNING)


class SmtpServer:
    """aiosmtpd on 127.0.0.1 in its own thread. ``replies`` is a queue of SMTP replies to
    give at DATA instead of accepting (``"451 4.3.0 later"``, ``"550 5.1.1 no"``)."""

    def __init__(self, **controller_options):
        self.messages: list[EmailMessage] = []
        self.replies: collections.deque[str] = collections.deque()
        self.lock = threading.Lock()
        server = self

        class Handler:
            async def handle_DATA(self, _server, _session, envelope):  # noqa: N802
                with server.lock:
                    if server.replies:
                        return server.replies.popleft()
                    parsed = email.message_from_bytes(
                        envelope.original_content or envelope.content, policy=email.policy.default
                    )
                    parsed["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
                    server.messages.append(parsed)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=self.port, **controller_options
        )
        self.url = f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def received(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.messages)


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def link_token(message: EmailMessage, page: str) -> str:
    """The token of the ``<app>/<page>?token=...`` link in the message's text."""
    match = re.search(rf"/{page}\?token=([A-Za-z0-9_-]+)", text_of(message))
    assert match, f"no {page} link in the message"
    return match.group(1)


class FakeClock:
    """The worker's clock, turned forward by the test instead of waited for."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class Inbox:
    """Mail as the account flows send it: the mail worker hands the outbox to ``server`` (a
    real SMTP server) on each ``fetch``; ``for_(address)`` is what that address received."""

    def __init__(self, server: SmtpServer) -> None:
        from app.mail.sender import SmtpSender, parse_smtp_url
        from app.mail.worker import MailWorker

        self.server = server
        self.worker = MailWorker(sender=SmtpSender(parse_smtp_url(server.url)))

    async def fetch(self) -> list[EmailMessage]:
        from app.account.resets import ResetWorker

        while await ResetWorker().run_once():  # reset requests into links first
            pass
        while await self.worker.run_once():
            pass
        return self.server.received()

    async def for_(self, address: str) -> list[EmailMessage]:
        return [m for m in await self.fetch() if m["To"] == address]

    async def last_token(self, address: str, page: str) -> str:
        messages = [m for m in await self.for_(address) if f"/{page}?token=" in text_of(m)]
        assert messages, f"no {page} message for {address}"
        return link_token(messages[-1], page)
