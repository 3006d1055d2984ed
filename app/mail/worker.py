"""The mail worker: one per server process, started and stopped by the app's lifespan.

Each round claims up to ``BATCH`` due messages in one short transaction (``repository.CLAIM``),
hands them over in a thread (one SMTP connection for the batch), then records the outcomes in
one transaction, each guarded by the attempt it claimed. A message the server did not take is
tried again after ``WAYPOINT_MAIL_RETRY_SECONDS``, doubling up to an hour, for
``WAYPOINT_MAIL_RETRY_HOURS`` from when it was queued; refused for good (5xx), it is failed at
once. A worker that dies mid-attempt leaves its messages leased: they are taken again when the
lease runs out, with the same ``Message-ID``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

import anyio
import structlog

from app.core.clock import utcnow
from app.core.config import get_settings
from app.core.sessions import new_session
from app.core.wakeups import first_of
from app.mail import repository
from app.mail.outbox import MAIL_WAKEUP
from app.mail.queue_metrics import FAILED, RETRIED, SENT
from app.mail.sender import TIMEOUT_SECONDS, Outcome, Sender, build_message, sender_from_settings

log = structlog.get_logger("waypoint.mail")

BATCH = 16
# A batch over one connection: every message may take the whole time limit.
LEASE = dt.timedelta(seconds=TIMEOUT_SECONDS * (BATCH + 2))
MAX_RETRY_SECONDS = 3600.0
JITTER = 0.2
WAKE_GAP = 0.05


def retry_delay(attempts: int, base_seconds: float) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: the base, doubling,
    at most an hour, plus up to 20 % jitter."""
    return min(base_seconds * 2 ** (attempts - 1), MAX_RETRY_SECONDS) * (
        1 + JITTER * random.random()
    )


class MailWorker:
    def __init__(
        self,
        *,
        sender: Sender | None = None,
        poll_seconds: float | None = None,
        retry_seconds: float | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        settings = get_settings()
        smtp_url = settings.smtp_url.get_secret_value() if settings.smtp_url else None
        self.sender = sender or sender_from_settings(smtp_url, settings.var_dir)
        self.poll_seconds = poll_seconds or settings.mail_poll_seconds
        self.retry_seconds = retry_seconds or settings.mail_retry_seconds
        self.give_up_after = dt.timedelta(hours=settings.mail_retry_hours)
        self.clock = clock  # tests turn it forward instead of waiting
        self._wakeup = asyncio.Event()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Send until ``stop`` is set (then return after the round in hand, so what was
        handed over is recorded) or until cancelled."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        MAIL_WAKEUP.register(loop, self._wakeup)
        try:
            while not stop.is_set():
                self._wakeup.clear()
                started = loop.time()
                try:
                    handled = await self.run_once()
                except Exception as exc:  # the database is away, say: try again later
                    log.warning("mail_worker_error", error_type=type(exc).__name__)
                    handled = 0
                if handled:
                    continue
                with suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await first_of(self._wakeup, stop)
                await asyncio.sleep(max(0.0, started + WAKE_GAP - loop.time()))
        finally:
            MAIL_WAKEUP.unregister(loop, self._wakeup)

    async def run_once(self) -> int:
        """One round: claim due messages, hand them over, record the outcomes. How many
        messages were attempted."""
        claimed = await self._claim()
        if not claimed:
            return 0
        messages = [build_message(row) for row in claimed]
        outcomes = await anyio.to_thread.run_sync(self.sender.send_all, messages)
        await self._record(claimed, outcomes)
        return len(claimed)

    async def _claim(self) -> list[Any]:
        now = self.clock()
        async with new_session(write=False) as reader:
            if (await reader.execute(repository.ANY_DUE, {"now": now})).first() is None:
                return []
        async with new_session(write=True) as session:
            rows = (
                await session.execute(
                    repository.CLAIM, {"now": now, "batch": BATCH, "lease_until": now + LEASE}
                )
            ).all()
            await session.commit()
        # In the order they were queued (RETURNING keeps no order): of two links of one kind,
        # the newer, the only valid one, arrives last.
        return sorted(rows, key=lambda row: (row.created_at, row.id))

    async def _record(self, claimed: Sequence[Any], outcomes: Sequence[Outcome]) -> None:
        now = self.clock()
        finished, retried = [], []
        for row, outcome in zip(claimed, outcomes, strict=True):
            guard = {"m_id": row.id, "m_attempts": row.attempts, "m_error": outcome.error}
            if outcome.sent:
                finished.append({**guard, "m_status": "sent", "m_sent_at": now})
                SENT.labels(row.template).inc()
                log.info("mail_sent", message_id=str(row.id), template=row.template,
                         attempt=row.attempts, file=outcome.where)  # fmt: skip
            elif outcome.permanent or now - row.created_at >= self.give_up_after:
                finished.append({**guard, "m_status": "failed", "m_sent_at": None})
                FAILED.labels(row.template).inc()
                log.warning("mail_failed", message_id=str(row.id), template=row.template,
                            attempt=row.attempts, error=outcome.error)  # fmt: skip
            else:
                delay = retry_delay(row.attempts, self.retry_seconds)
                retried.append({**guard, "m_next": now + dt.timedelta(seconds=delay)})
                RETRIED.inc()
                log.info("mail_attempt_failed", message_id=str(row.id), template=row.template,
                         attempt=row.attempts, error=outcome.error)  # fmt: skip
        async with new_session(write=True) as session:
            if finished:
                await session.execute(repository.FINISHED, finished)
            if retried:
                await session.execute(repository.RETRY, retried)
            await session.commit()


async def send_mail(stop: asyncio.Event) -> None:
    """The process's mail worker (listed in ``create_app``), unless
    ``WAYPOINT_MAIL_WORKER=false``. On stop it finishes the round in hand (the lifespan
    cancels it if that takes too long: an attempt cut short is made again after its lease,
    with the same ``Message-ID``)."""
    if not get_settings().mail_worker:
        return
    await MailWorker().run(stop)
