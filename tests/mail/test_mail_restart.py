"""A server killed right after the commit: the message committed with the registration is
sent after a restart, once, by real ``waypoint serve`` processes (two workers sharing the
outbox), and within seconds of a commit."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import sqlalchemy as sa

from tests.support.mail import SmtpServer, link_token
from tests.support.worlds import PASSWORD


async def wait_for(condition, seconds: float) -> None:
    """Poll ``condition`` until it holds, at most ``seconds``: what it looks at is done by the
    server processes, which have no event to wait for here."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def register(base: str, email: str) -> None:
    r = httpx.post(
        f"{base}/v1/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": "K", "role": "client"},
        timeout=30,
    )
    assert r.status_code == 201, r.text


async def test_a_server_killed_after_the_commit_sends_after_restart_once(
    app_instance, sync_engine, serve
):
    smtp = SmtpServer().start()
    try:
        env = {**os.environ, "WAYPOINT_SMTP_URL": smtp.url}
        server = serve({**env, "WAYPOINT_MAIL_WORKER": "false"})
        register(server.url, "killed@example.com")
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        assert smtp.received() == []
        with sync_engine.connect() as conn:
            status = conn.execute(sa.text("SELECT status FROM mail_messages")).scalars().all()
        assert status == ["pending"]

        # Two worker processes, each with its mail worker; the poll is 30 s, so what is sent
        # at once was found at start-up, and what follows a commit was woken by it.
        server = serve({**env, "WAYPOINT_MAIL_POLL_SECONDS": "30"}, workers=2)
        await wait_for(lambda: len(smtp.received()) == 1, 20)
        (message,) = smtp.received()
        assert message["To"] == "killed@example.com"
        assert link_token(message, "verify-email")
        started = time.monotonic()
        register(server.url, "second@example.com")
        await wait_for(lambda: len(smtp.received()) == 2, 10)
        assert time.monotonic() - started < 10
        # A duplicate would need a second claim of a message (attempts 2). Stopped with
        # SIGTERM, each worker process finishes the round in hand before it exits: once
        # ``stop`` returns, everything the processes handed over has reached the server.
        assert server.stop() == 0
        assert [m["To"] for m in smtp.received()] == ["killed@example.com", "second@example.com"]
        with sync_engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT status, attempts FROM mail_messages")).all()
        assert sorted(tuple(row) for row in rows) == [("sent", 1), ("sent", 1)]
    finally:
        smtp.stop()
