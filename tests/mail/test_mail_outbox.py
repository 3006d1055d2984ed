"""The mail outbox: queued in the action's transaction, sent by the worker to a real SMTP
server (aiosmtpd, in this process), retried with backoff on a fake clock, failed on a
permanent refusal, shared by two workers, and written to a Maildir without a server."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import mailbox
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.core.config import get_settings
from app.core.sessions import new_session
from app.mail.outbox import queue_mail
from app.mail.sender import MaildirSender, SmtpSender, parse_smtp_url
from app.mail.worker import MailWorker, retry_delay
from app.models import MailMessage
from tests.support.mail import FakeClock, SmtpServer, text_of
from tests.support.servers import free_port
from tests.support.waiting import until

CONTEXT = {"display_name": "Ada", "link": "http://app.test/reset-password?token=abc_DEF-123"}


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_settings(smtp, monkeypatch):
    monkeypatch.setenv("WAYPOINT_SMTP_URL", smtp.url)
    monkeypatch.setenv("WAYPOINT_MAIL_FROM", "Waypoint <hello@waypoint.test>")
    get_settings.cache_clear()
    yield smtp
    get_settings.cache_clear()


async def queue(n=1, *, commit=True, template="password_reset", **options) -> list[str]:
    async with new_session(write=True) as session:
        ids = [
            await queue_mail(
                session, to=f"ada{i}@example.com", template=template, context=CONTEXT, **options
            )
            for i in range(n)
        ]
        if commit:
            await session.commit()
        else:
            await session.rollback()
    return ids


def rows(sync_engine) -> list[dict]:
    with sync_engine.connect() as conn:
        table = MailMessage.__table__
        result = conn.execute(sa.select(table).order_by(table.c.created_at, table.c.id))
        return [dict(row._mapping) for row in result]


async def test_a_queued_message_reaches_the_smtp_server_whole(
    app_instance, smtp_settings, sync_engine
):
    (message_id,) = await queue(
        headers={
            "List-Unsubscribe": "<https://api.test/v1/unsubscribe/xyz>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    )
    assert await MailWorker().run_once() == 1
    (received,) = smtp_settings.received()
    assert received["To"] == "ada0@example.com"
    assert received["X-Envelope-To"] == "ada0@example.com"
    assert received["From"] == "Waypoint <hello@waypoint.test>"
    assert received["Subject"] == "Reset your Waypoint password"
    assert received["Message-ID"] == f"<{message_id}@waypoint.test>"
    assert received["List-Unsubscribe"] == "<https://api.test/v1/unsubscribe/xyz>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Hello Ada," in text_of(received)
    assert CONTEXT["link"] in text_of(received)
    html = received.get_body(preferencelist=("html",)).get_content()
    assert f'href="{CONTEXT["link"]}"' in html
    (row,) = rows(sync_engine)
    assert row["status"] == "sent" and row["attempts"] == 1 and row["sent_at"] is not None
    # The link is a credential: no copy of it is kept once it is sent.
    assert row["text_body"] is None and row["html_body"] is None
    assert CONTEXT["link"] not in json.dumps({k: str(v) for k, v in row.items()})
    assert await MailWorker().run_once() == 0  # sent once


async def test_a_rolled_back_action_queues_nothing(app_instance, smtp_settings, sync_engine):
    await queue(commit=False)
    assert rows(sync_engine) == []
    assert await MailWorker().run_once() == 0


class _RoundsWorker(MailWorker):
    """A mail worker that tells the test how each of its rounds ended."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.rounds: asyncio.Queue[int] = asyncio.Queue()

    async def run_once(self) -> int:
        handled = await super().run_once()
        self.rounds.put_nowait(handled)
        return handled


async def test_a_commit_wakes_the_running_worker(app_instance, smtp_settings):
    """The poll is an hour here: only the commit's wake-up can send within the test."""
    worker = _RoundsWorker(poll_seconds=3600)
    task = asyncio.create_task(worker.run())
    try:
        # The worker found nothing and waits (for an hour, or for a wake-up).
        assert await asyncio.wait_for(worker.rounds.get(), 10) == 0
        await queue()
        assert await asyncio.wait_for(worker.rounds.get(), 10) == 1
        assert len(smtp_settings.received()) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_refusing_server_delays_the_message_and_loses_nothing(
    app_instance, smtp_settings, sync_engine
):
    smtp_settings.replies.extend(["451 4.3.0 try again later", "421 4.7.0 busy"])
    (message_id,) = await queue()
    clock = FakeClock()
    worker = MailWorker(clock=clock, retry_seconds=30)
    assert await worker.run_once() == 1
    (row,) = rows(sync_engine)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["last_error"] == "SMTP 451"
    waited = (row["next_attempt_at"] - clock.now).total_seconds()
    assert 30 <= waited <= 36
    assert await worker.run_once() == 0  # not before its time
    clock.advance(seconds=37)
    assert await worker.run_once() == 1  # the 421
    clock.advance(seconds=30)
    assert await worker.run_once() == 0  # the delay doubled
    clock.advance(seconds=45)
    assert await worker.run_once() == 1
    (received,) = smtp_settings.received()
    assert received["Message-ID"].startswith(f"<{message_id}@")
    (row,) = rows(sync_engine)
    assert row["status"] == "sent" and row["attempts"] == 3


async def test_a_server_that_is_down_delays_and_then_sends_with_the_same_message_id(
    app_instance, sync_engine
):
    port = free_port()
    (message_id,) = await queue()
    clock = FakeClock()
    worker = MailWorker(sender=SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{port}")), clock=clock)
    assert await worker.run_once() == 1
    (row,) = rows(sync_engine)
    assert row["status"] == "pending" and row["last_error"] == "ConnectionRefusedError"
    server = SmtpServer()
    server.port, server.controller.port = port, port
    server.start()
    try:
        clock.advance(minutes=2)
        assert await worker.run_once() == 1
        (received,) = server.received()
        assert received["Message-ID"].startswith(f"<{message_id}@")
    finally:
        server.stop()
    assert rows(sync_engine)[0]["status"] == "sent"


async def test_a_permanent_refusal_marks_the_message_failed(
    app_instance, smtp_settings, sync_engine
):
    smtp_settings.replies.append("550 5.1.1 no such mailbox")
    await queue(2)
    assert await MailWorker().run_once() == 2  # the second one is taken
    failed, sent = sorted(rows(sync_engine), key=lambda row: row["status"])
    assert failed["status"] == "failed" and failed["last_error"] == "SMTP 550"
    assert failed["text_body"] is None and failed["sent_at"] is None
    assert sent["status"] == "sent"
    assert len(smtp_settings.received()) == 1
    assert await MailWorker().run_once() == 0  # never tried again


async def test_temporary_failures_are_retried_for_the_whole_period_then_failed(
    app_instance, sync_engine
):
    await queue()
    clock = FakeClock()
    worker = MailWorker(
        sender=SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{free_port()}")), clock=clock
    )
    attempts_in_a_day = 0
    start = clock.now
    while clock.now - start < dt.timedelta(hours=24):
        attempts_in_a_day += await worker.run_once()
        clock.advance(minutes=5)
        assert rows(sync_engine)[0]["status"] == "pending"
    assert attempts_in_a_day >= 20  # at most an hour apart
    clock.advance(hours=24)
    assert await worker.run_once() == 1
    (row,) = rows(sync_engine)
    assert row["status"] == "failed" and row["text_body"] is None


def test_backoff_doubles_up_to_an_hour_with_jitter():
    for attempts, base in [(1, 30), (2, 60), (3, 120), (8, 3600), (30, 3600)]:
        delays = [retry_delay(attempts, 30) for _ in range(200)]
        assert all(base <= d < base * 1.2 for d in delays)
        assert len(set(delays)) > 1


async def test_two_workers_send_each_message_once(app_instance, smtp_settings):
    """Two workers, each its own connections (on PostgreSQL FOR UPDATE SKIP LOCKED, on
    SQLite one claimer at a time), share the queue: each message reaches the server once."""
    import app.mail.worker as worker_module

    ids = await queue(40)
    original = worker_module.BATCH
    worker_module.BATCH = 4  # small claims, so the two really interleave
    stop = asyncio.Event()
    tasks = [asyncio.create_task(MailWorker(poll_seconds=0.05).run(stop)) for _ in range(2)]
    try:
        await until(lambda: len(smtp_settings.received()) >= len(ids), seconds=30, every=0.05)
    finally:
        # Each worker finishes the round in hand before it returns: a duplicate claimed by
        # then has been handed to the server by the time both have stopped.
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        worker_module.BATCH = original
    counts = collections.Counter(m["Message-ID"] for m in smtp_settings.received())
    assert len(counts) == len(ids)
    assert set(counts.values()) == {1}


async def test_without_an_smtp_url_messages_go_to_the_maildir(app_instance, sync_engine, capsys):
    settings = get_settings()
    assert settings.smtp_url is None
    worker = MailWorker()
    assert isinstance(worker.sender, MaildirSender)
    capsys.readouterr()
    (message_id,) = await queue()
    assert await worker.run_once() == 1
    directory = Path(settings.var_dir) / "mail"
    box = mailbox.Maildir(directory, create=False)
    (stored,) = [m for m in box if m["Message-ID"].startswith(f"<{message_id}@")]
    assert stored["Subject"] == "Reset your Waypoint password"
    assert CONTEXT["link"] in stored.get_payload()[0].get_payload(decode=True).decode()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    (sent,) = [line for line in lines if line.get("event") == "mail_sent"]
    assert sent["file"].startswith(str(directory / "new"))
    assert os.path.isfile(sent["file"])  # noqa: ASYNC240
    everything = json.dumps(lines)
    assert "abc_DEF-123" not in everything and "ada0@example.com" not in everything


async def test_refused_headers_and_addresses(app_instance):
    async with new_session(write=True) as session:
        for bad in ({"Subject": "x"}, {"X-Ok": "a\r\nBcc: b@example.com"}):
            with pytest.raises(ValueError):
                await queue_mail(
                    session, to="a@example.com", template="password_reset", context=CONTEXT,
                    headers=bad,
                )  # fmt: skip
        for to in ("a@example.com\nBcc: b@example.com", "a@example.com, b@example.com", "x"):
            with pytest.raises(ValueError):
                await queue_mail(session, to=to, template="password_reset", context=CONTEXT)
        with pytest.raises(LookupError):
            await queue_mail(session, to="a@example.com", template="../x", context=CONTEXT)
        with pytest.raises(KeyError):  # a value missing from the context
            await queue_mail(session, to="a@example.com", template="password_reset", context={})


async def test_metrics_count_sent_and_failed_and_show_the_oldest_waiting(
    client, smtp_settings, sync_engine
):
    def value(text: str, name: str) -> float:
        lines = [line for line in text.splitlines() if line.startswith(name)]
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines)

    before = (await client.get("/metrics")).text
    await queue(2)
    with sync_engine.begin() as conn:  # queued a minute ago
        minute_ago = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        conn.execute(sa.update(MailMessage.__table__).values(created_at=minute_ago))
    waiting = (await client.get("/metrics")).text
    assert value(waiting, "waypoint_mail_pending") == 2
    assert 60 <= value(waiting, "waypoint_mail_oldest_waiting_seconds") < 120
    smtp_settings.replies.append("554 5.7.1 refused")
    assert await MailWorker().run_once() == 2
    after = (await client.get("/metrics")).text
    assert value(after, "waypoint_mail_pending") == 0
    assert value(after, "waypoint_mail_oldest_waiting_seconds") == 0
    sent = 'waypoint_mail_sent_total{template="password_reset"}'
    failed = 'waypoint_mail_failed_total{template="password_reset"}'
    assert value(after, sent) - value(before, sent) == 1
    assert value(after, failed) - value(before, failed) == 1
