"""A real SMTP server in the test process (aiosmtpd) and helpers for the mail tests."""

from __future__ import annotations

import collections
import datetime as dt
import email
import email.policy
import re
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.support.servers import free_port


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
