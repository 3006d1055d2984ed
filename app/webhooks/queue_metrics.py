"""The delivery queue's gauges (issue 13), measured in the database at each scrape.

Every worker of every server measures the same table, so the gauges are ``mostrecent``: the
latest measurement, whichever worker took it, is the one value reported. ``livesum`` would add
the workers' measurements up (two workers, twice the depth); ``max`` would keep the highest
value any worker ever wrote, long after the queue drained, if that worker is not scraped again
or has exited.

One statement over the pending deliveries only: ``ix_webhook_deliveries_status_next_attempt_at``
holds both columns it reads, so delivered and failed rows (the bulk of the table) are never
touched; and one over the outbox's events not yet fanned out (``webhook_events``, which the
worker empties). An event is due from the moment of its change, so the oldest of them counts
in ``waypoint_webhook_oldest_due_seconds`` too: a stalled worker shows there whichever of its
two steps stalled.

While the database does not answer, the gauges keep their last measured values (a worker's
scrape waits at most ``metrics.SCRAPE_HOOK_TIMEOUT_SECONDS`` for it);
``waypoint_webhook_queue_measured_timestamp_seconds`` says how old they are.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from app.core import metrics
from app.core.clock import utcnow
from app.core.sessions import new_session
from app.models import WebhookDelivery, WebhookEvent

DUE = metrics.gauge(
    "waypoint_webhook_deliveries_due",
    "Pending webhook deliveries whose next attempt is due (next_attempt_at <= now): the "
    "backlog no worker has taken yet.",
    mode="mostrecent",
)
OLDEST_DUE = metrics.gauge(
    "waypoint_webhook_oldest_due_seconds",
    "How long the oldest due webhook delivery has been due (now - its next_attempt_at); "
    "0 when none is due.",
    mode="mostrecent",
)
PENDING = metrics.gauge(
    "waypoint_webhook_deliveries_pending",
    "Webhook deliveries neither delivered nor given up: due, being attempted, or waiting "
    "for a retry.",
    mode="mostrecent",
)
EVENTS = metrics.gauge(
    "waypoint_webhook_events_pending",
    "Webhook events committed with their change and not yet turned into deliveries (the "
    "delivery worker's first step).",
    mode="mostrecent",
)
MEASURED = metrics.gauge(
    "waypoint_webhook_queue_measured_timestamp_seconds",
    "When the webhook queue gauges were last measured (Unix time); they keep their last "
    "values while the database does not answer.",
    mode="mostrecent",
)

_DELIVERIES = WebhookDelivery.__table__
_IS_DUE = _DELIVERIES.c.next_attempt_at <= sa.bindparam("now")
_MEASURE = sa.select(
    sa.func.count().filter(_IS_DUE),
    sa.func.min(_DELIVERIES.c.next_attempt_at).filter(_IS_DUE),
    sa.func.count(),
).where(_DELIVERIES.c.status == "pending")
_EVENTS = WebhookEvent.__table__
_MEASURE_EVENTS = sa.select(sa.func.count(), sa.func.min(_EVENTS.c.created_at))


async def measure_delivery_queue() -> None:
    """Scrape hook (``app.wiring.SCRAPE_HOOKS``): the queue's gauges, measured now."""
    now = utcnow()
    async with new_session(write=False) as session:
        due, oldest_due_at, pending = (await session.execute(_MEASURE, {"now": now})).one()
        events, oldest_event_at = (await session.execute(_MEASURE_EVENTS)).one()
    oldest = min((at for at in (oldest_due_at, oldest_event_at) if at is not None), default=None)
    DUE.set(due)
    OLDEST_DUE.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    PENDING.set(pending)
    EVENTS.set(events)
    MEASURED.set(time.time())
