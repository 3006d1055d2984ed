"""The outbox's second half: events become deliveries, one per subscribed webhook.

A change writes one ``webhook_events`` row (``app.webhooks.outbox``); the delivery worker
takes a batch of them in one transaction, inserts their deliveries and deletes them. Many
events per transaction instead of one: the cost of ten deliveries per change leaves the
change's own transaction.

Who hears an event is decided as of its ``created_at``, the time of the change: the client's
own webhooks, and the webhooks of the therapists whose care link covered that moment, when the
object was on a shared goal or was theirs (``shared``, ``author_id`` as the change left it).
A webhook created after the change never hears of it; one deleted or disabled before the
event is fanned out is skipped (its deliveries would never be sent). A delivery's
``created_at`` and first ``next_attempt_at`` are the event's: the deliveries of an event are
listed where the change happened, and the queue's age counts from it.

On PostgreSQL the batch is taken ``FOR UPDATE SKIP LOCKED``, so workers fan out side by side;
``wait=True`` (a listing of deliveries) waits for the rows another worker holds instead, so
that whatever committed before the listing is in it.
"""

from __future__ import annotations

from app.core.sessions import new_session
from app.models import new_id
from app.webhooks import repository

BATCH = 64  # events per transaction: up to 640 deliveries for ten webhooks each


async def fan_out(*, wait: bool = False, batch: int = BATCH) -> tuple[int, int]:
    """One batch of the oldest events: their deliveries written, the events deleted, in one
    transaction. ``(events, deliveries)``; ``(0, 0)`` when there was none (one small read)."""
    async with new_session(write=False) as reader:
        if not await repository.any_event(reader):
            return 0, 0
    async with new_session(write=True) as session:
        seqs = await repository.take_events(session, batch, wait=wait)
        if not seqs:
            return 0, 0
        written = await repository.insert_deliveries(session, seqs, new_id().hex[:20])
        await repository.delete_events(session, seqs)
        await session.commit()
    return len(seqs), written


async def fan_out_all(*, wait: bool = True, batches: int = 16, batch: int = BATCH) -> int:
    """The events committed so far, batch after batch (at most ``batches``: a listing under a
    flood of writes does not chase it). How many deliveries."""
    total = 0
    for _ in range(batches):
        events, deliveries = await fan_out(wait=wait, batch=batch)
        total += deliveries
        if events == 0:
            break
    return total
