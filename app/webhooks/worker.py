"""The delivery worker: one per server process, started and stopped by the app's lifespan.

Each round first turns a batch of the outbox's events into deliveries (``fan_out``), then
claims up to ``BATCH`` due deliveries in one short transaction: on PostgreSQL with
``FOR UPDATE SKIP LOCKED``, so any number of workers in any number of servers share the queue
without waiting on each other; on SQLite the claim is a write transaction, so claimers take
turns. Claiming counts the attempt and pushes ``next_attempt_at`` past the attempt's time limit
(a lease): no other worker takes the delivery meanwhile, and one whose worker died mid-attempt
is taken again once the lease runs out (at least once, never lost). The attempts are sent
concurrently, then their outcomes are written in one transaction, each guarded by the attempt
number it claimed.

Requests come first: while the process is serving requests the worker spends at most about
2 % of its time delivering (it sleeps 49 times as long as its last round took, and wakes
early once no request is in flight), so a burst of writes is not slowed by its own webhooks
(each delivery costs about as much CPU as a third of a goal create: 10 webhooks per create
delivered at once would halve the rate of creates); the queue still moves during the burst
and drains at full speed after it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog

from app.core.admission import requests_in_flight
from app.core.clock import utcnow
from app.core.config import get_settings
from app.core.sessions import new_session
from app.models import Webhook, WebhookDelivery
from app.webhooks.fanout import fan_out
from app.webhooks.outbox import DELIVERY_WAKEUP
from app.webhooks.sender import TIMEOUT_SECONDS, AttemptResult, new_http_client, post
from app.webhooks.signing import signature_header

log = structlog.get_logger("waypoint.webhooks")

MAX_ATTEMPTS = 8
BATCH = 64
SENDING_AT_ONCE = 8
LEASE = dt.timedelta(seconds=TIMEOUT_SECONDS * 6)
# A webhook every attempt of which failed for this long is disabled.
DISABLE_AFTER = dt.timedelta(days=3)
BUSY_SLEEP_FACTOR = 49.0
IDLE_CHECK_SECONDS = 0.1  # while yielding: how often it looks whether requests are still served
WAKE_GAP = 0.05
JITTER = 0.2

WEBHOOKS = Webhook.__table__
DELIVERIES = WebhookDelivery.__table__

_ANY_DUE = (
    sa.select(DELIVERIES.c.id)
    .where(DELIVERIES.c.status == "pending", DELIVERIES.c.next_attempt_at <= sa.bindparam("now"))
    .limit(1)
)
_DUE = (
    sa.select(DELIVERIES.c.id)
    .where(DELIVERIES.c.status == "pending", DELIVERIES.c.next_attempt_at <= sa.bindparam("now"))
    .order_by(DELIVERIES.c.next_attempt_at)
    .limit(sa.bindparam("batch"))
    .with_for_update(skip_locked=True)  # SQLite: no such clause; its writers take turns
)
_CLAIM = (
    sa.update(DELIVERIES)
    .where(DELIVERIES.c.id.in_(_DUE.scalar_subquery()))
    .values(attempts=DELIVERIES.c.attempts + 1, next_attempt_at=sa.bindparam("lease_until"))
    .returning(
        DELIVERIES.c.id, DELIVERIES.c.webhook_id, DELIVERIES.c.event, DELIVERIES.c.body,
        DELIVERIES.c.attempts,
    )
)  # fmt: skip
_TARGETS = sa.select(WEBHOOKS.c.id, WEBHOOKS.c.url, WEBHOOKS.c.secret, WEBHOOKS.c.active).where(
    WEBHOOKS.c.id.in_(sa.bindparam("ids", expanding=True))
)
_OUTCOME = (
    sa.update(DELIVERIES)
    .where(
        DELIVERIES.c.id == sa.bindparam("b_id"),
        DELIVERIES.c.attempts == sa.bindparam("b_attempts"),
        DELIVERIES.c.status == "pending",
    )
    .values(
        status=sa.bindparam("b_status"),
        next_attempt_at=sa.bindparam("b_next"),
        delivered_at=sa.bindparam("b_delivered"),
        last_status_code=sa.bindparam("b_code"),
        last_error=sa.bindparam("b_error"),
    )
)
_HOOK_IDS = sa.bindparam("hook_ids", expanding=True)
_HEALTHY = (
    sa.update(WEBHOOKS)
    .where(WEBHOOKS.c.id.in_(_HOOK_IDS), WEBHOOKS.c.failing_since.is_not(None))
    .values(failing_since=None)
)
_FAILING = (
    sa.update(WEBHOOKS)
    .where(WEBHOOKS.c.id.in_(_HOOK_IDS), WEBHOOKS.c.failing_since.is_(None))
    .values(failing_since=sa.bindparam("now"))
)
_DISABLE = (
    sa.update(WEBHOOKS)
    .where(
        WEBHOOKS.c.id.in_(_HOOK_IDS),
        WEBHOOKS.c.active,
        WEBHOOKS.c.failing_since <= sa.bindparam("since"),
    )
    .values(active=False, disabled_at=sa.bindparam("now"))
)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    webhook_id: uuid.UUID
    event: str
    body: str
    attempts: int
    url: str | None  # None: the webhook is disabled
    secret: str


def retry_delay(attempts: int, base_seconds: float) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: the base, doubling each
    time, plus up to 20 % jitter (never earlier than the doubling says)."""
    return base_seconds * 2 ** (attempts - 1) * (1 + JITTER * random.random())


class DeliveryWorker:
    def __init__(
        self,
        *,
        poll_seconds: float | None = None,
        retry_seconds: float | None = None,
        allow_private: bool | None = None,
        yield_to_requests: bool = True,
    ) -> None:
        settings = get_settings()
        self.poll_seconds = poll_seconds or settings.webhook_poll_seconds
        self.retry_seconds = (
            settings.webhook_retry_seconds if retry_seconds is None else retry_seconds
        )
        self.allow_private = (
            settings.webhooks_allow_private if allow_private is None else allow_private
        )
        self.yield_to_requests = yield_to_requests
        self._wakeup = asyncio.Event()
        self._client = new_http_client()
        # httpcore's pool matches queued requests to connections in time that grows with
        # both: a few attempts at once send faster than many (bench/README.md, "Figures
        # behind the code's comments").
        self._sending = asyncio.Semaphore(SENDING_AT_ONCE)
        self.fanned = 0  # events the last round turned into deliveries

    async def run(self) -> None:
        """Deliver until cancelled."""
        loop = asyncio.get_running_loop()
        DELIVERY_WAKEUP.register(loop, self._wakeup)
        try:
            while True:
                self._wakeup.clear()
                started = time.monotonic()
                try:
                    handled = await self.run_once()
                except Exception as exc:  # the database is away, say: try again later
                    log.warning("webhook_worker_error", error_type=type(exc).__name__)
                    handled = self.fanned = 0
                if handled or self.fanned:
                    if self.yield_to_requests:
                        await self._yield(time.monotonic() - started)
                    continue
                with suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wakeup.wait()
                # Woken by every commit that may have written deliveries: at most
                # 1 / WAKE_GAP looks a second however busy the writers are.
                await asyncio.sleep(max(0.0, started + WAKE_GAP - time.monotonic()))
        finally:
            DELIVERY_WAKEUP.unregister(loop, self._wakeup)
            await self.aclose()

    async def _yield(self, busy: float) -> None:
        """While requests are served, sleep ``BUSY_SLEEP_FACTOR`` times the round's ``busy``
        seconds (2 % of the process's time, however long a round takes on a slow machine);
        stop sleeping as soon as no request is in flight (the queue drains at full speed
        once a burst is over)."""
        until = time.monotonic() + busy * BUSY_SLEEP_FACTOR
        # A poll, not an event: the admission middleware would have to signal every idle moment.
        while requests_in_flight() and (left := until - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(left, IDLE_CHECK_SECONDS))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def run_once(self) -> int:
        """One round: fan out a batch of events (``self.fanned`` of them), claim due
        deliveries, attempt them, record the outcomes. How many deliveries were attempted."""
        try:
            self.fanned = (await fan_out())[0]
        except Exception as exc:  # the deliveries already made are still attempted
            log.warning("webhook_fan_out_error", error_type=type(exc).__name__)
            self.fanned = 0
        claimed = await self._claim()
        if not claimed:
            return 0
        results = await asyncio.gather(*(self._limited(delivery) for delivery in claimed))
        await self._record(claimed, results)
        return len(claimed)

    async def _claim(self) -> list[Claimed]:
        now = utcnow()
        async with new_session(write=False) as reader:
            if (await reader.execute(_ANY_DUE, {"now": now})).first() is None:
                return []
        async with new_session(write=True) as session:
            now = utcnow()
            rows = (
                await session.execute(
                    _CLAIM, {"now": now, "batch": BATCH, "lease_until": now + LEASE}
                )
            ).all()
            targets: dict[uuid.UUID, Any] = {}
            if rows:
                hook_ids = list({row.webhook_id for row in rows})
                result = await session.execute(_TARGETS, {"ids": hook_ids})
                targets = {row.id: row for row in result}
            await session.commit()
        # A webhook deleted meanwhile (its deliveries go with it) counts as disabled: the
        # delivery is marked failed rather than claimed again after every lease.
        return [
            Claimed(
                row.id,
                row.webhook_id,
                row.event,
                row.body,
                row.attempts,
                target.url if target is not None and target.active else None,
                target.secret if target is not None else "",
            )
            for row in rows
            for target in (targets.get(row.webhook_id),)
        ]

    async def _limited(self, delivery: Claimed) -> AttemptResult:
        async with self._sending:
            return await self._attempt(delivery)

    async def _attempt(self, delivery: Claimed) -> AttemptResult:
        if delivery.url is None:
            return AttemptResult(None, "the webhook is disabled")
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            "Waypoint-Event": delivery.event,
            "Waypoint-Delivery": str(delivery.id),
            "Waypoint-Signature": signature_header(delivery.secret, body, int(time.time())),
        }
        result = await post(
            self._client, delivery.url, body, headers, allow_private=self.allow_private
        )
        if not result.delivered:
            log.info(
                "webhook_attempt_failed",
                delivery_id=str(delivery.id),
                webhook_id=str(delivery.webhook_id),
                attempt=delivery.attempts,
                status_code=result.status_code,
                error=result.error,
            )
        return result

    async def _record(self, claimed: Sequence[Claimed], results: Sequence[AttemptResult]) -> None:
        now = utcnow()
        outcomes = []
        healthy: set[uuid.UUID] = set()
        failing: set[uuid.UUID] = set()
        for delivery, result in zip(claimed, results, strict=True):
            outcome = {
                "b_id": delivery.id,
                "b_attempts": delivery.attempts,
                "b_code": result.status_code,
                "b_error": result.error,
                "b_delivered": None,
            }
            if result.delivered:
                outcome.update(b_status="delivered", b_next=now, b_delivered=now)
                healthy.add(delivery.webhook_id)
            elif delivery.attempts >= MAX_ATTEMPTS or delivery.url is None:
                outcome.update(b_status="failed", b_next=now)
                failing.add(delivery.webhook_id)
            else:
                delay = retry_delay(delivery.attempts, self.retry_seconds)
                outcome.update(b_status="pending", b_next=now + dt.timedelta(seconds=delay))
                failing.add(delivery.webhook_id)
            outcomes.append(outcome)
        failing -= healthy
        async with new_session(write=True) as session:
            await session.execute(_OUTCOME, outcomes)
            if healthy:
                await session.execute(_HEALTHY, {"hook_ids": list(healthy)})
            if failing:
                ids = list(failing)
                await session.execute(_FAILING, {"hook_ids": ids, "now": now})
                await session.execute(
                    _DISABLE, {"hook_ids": ids, "now": now, "since": now - DISABLE_AFTER}
                )
            await session.commit()


async def deliver_webhooks(stop: asyncio.Event) -> None:
    """The process's delivery worker (listed in ``app.wiring.BACKGROUND_WORKERS``), unless
    ``WAYPOINT_WEBHOOK_WORKER=false``. Stopped between or during attempts: an attempt cut
    short is made again after its lease."""
    if not get_settings().webhook_worker:
        return
    task = asyncio.create_task(DeliveryWorker().run(), name="webhook-delivery-worker")
    try:
        await stop.wait()
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
