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

from functools import lru_cache

import sqlalchemy as sa

from app.core.sessions import new_session
from app.models import WebhookDelivery, WebhookEvent, new_id

EVENTS = WebhookEvent.__table__
DELIVERIES = WebhookDelivery.__table__
BATCH = 64  # events per transaction: up to 640 deliveries for ten webhooks each

# The rule, over the events ``e`` of the batch (``:seqs``); ``{wants}``: the webhook
# subscribed to the event type.
_HEARD = "w.id AS webhook_id, w.user_id AS owner_id, e.client_id, e.event, e.body, e.created_at"
_ARMS = (
    f"SELECT {_HEARD} FROM webhook_events e JOIN webhooks w ON w.user_id = e.client_id "
    "WHERE e.seq IN :seqs AND w.active AND {wants} AND w.created_at <= e.created_at "
    "UNION ALL "
    f"SELECT {_HEARD} FROM webhook_events e "
    "JOIN care_links l ON l.client_id = e.client_id AND l.created_at <= e.created_at "
    "AND (l.ended_at IS NULL OR l.ended_at > e.created_at) "
    "JOIN webhooks w ON w.user_id = l.therapist_id "
    "WHERE e.seq IN :seqs AND w.active AND {wants} AND w.created_at <= e.created_at "
    "AND (e.shared OR w.user_id = e.author_id)"
)
_COLUMNS = (
    "id, webhook_id, user_id, client_id, event, body, status, attempts, next_attempt_at, created_at"
)
# A delivery's id: a UUIDv7 of the fan-out up to its last 48 bits, then 48 random bits per
# delivery (time first, random after: a batch's deliveries land side by side at the end of the
# primary key's index).
_IDS = {
    "postgresql": "CAST(:id_prefix || right(replace(gen_random_uuid()::text, '-', ''), 12) "
    "AS uuid)",
    "sqlite": ":id_prefix || lower(hex(randomblob(6)))",
}
_WANTS = {
    "postgresql": "w.events ? e.event",
    "sqlite": "instr(w.events, json_quote(e.event)) > 0",
}


_TAKE = sa.select(EVENTS.c.seq).order_by(EVENTS.c.seq).limit(sa.bindparam("batch"))
_DELETE = sa.delete(EVENTS).where(EVENTS.c.seq.in_(sa.bindparam("seqs", expanding=True)))
_ANY = sa.select(EVENTS.c.seq).limit(1)


@lru_cache(maxsize=2)
def _insert(dialect: str) -> sa.TextClause:
    return sa.text(
        f"INSERT INTO webhook_deliveries ({_COLUMNS}) "
        f"SELECT {_IDS[dialect]}, s.webhook_id, s.owner_id, s.client_id, s.event, s.body, "
        "'pending', 0, "
        f"s.created_at, s.created_at FROM ({_ARMS.format(wants=_WANTS[dialect])}) AS s"
    ).bindparams(sa.bindparam("seqs", expanding=True))


async def fan_out(*, wait: bool = False, batch: int = BATCH) -> tuple[int, int]:
    """One batch of the oldest events: their deliveries written, the events deleted, in one
    transaction. ``(events, deliveries)``; ``(0, 0)`` when there was none (one small read)."""
    async with new_session(write=False) as reader:
        if (await reader.execute(_ANY)).first() is None:
            return 0, 0
    async with new_session(write=True) as session:
        dialect = session.bind.dialect.name
        take = _TAKE
        if dialect == "postgresql":
            take = take.with_for_update(skip_locked=not wait)
        seqs = list((await session.execute(take, {"batch": batch})).scalars())
        if not seqs:
            return 0, 0
        params = {"seqs": seqs, "id_prefix": new_id().hex[:20]}
        written = (await session.execute(_insert(dialect), params)).rowcount
        await session.execute(_DELETE, {"seqs": seqs})
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
