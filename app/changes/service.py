"""The change sequence: every create, update and delete of a client's data, in commit order.

Services call ``record_change``; the rows are written just before COMMIT by the statements of
``app.changes.repository`` (on PostgreSQL a new goal's row goes with the goal's own INSERT,
see ``with_goal_change`` there). Each row carries ``tx``, the writing transaction's id on
PostgreSQL (the column's default) and 0 on SQLite, and the feed (``app/sync/feed.py``) serves
a follower rows in ``(tx, seq)`` order.

Why that is commit order enough: on PostgreSQL the feed serves only rows whose ``tx`` is below
the oldest transaction still running when it reads (``pg_snapshot_xmin``); every transaction
with a lower id has ended, so no row can ever appear behind a follower's cursor. SQLite
serializes writers, so there ``seq`` already follows commit order and ``(0, seq)`` is ``seq``.

What the horizon does not give: the *expansions* (a care link started or ended, a goal turned
private or deleted) read the client's rows and objects as committed when they run, and a
transaction still writing that client's data is not among them; had it committed before the
expansion's COMMIT, a therapist could read its row while still linked and never be told to
delete it. So on PostgreSQL each client has a lock (``pg_advisory_xact_lock`` on a key made
from the client's id, held to COMMIT): a transaction writing change rows for a client holds it
shared, one writing an expansion holds it exclusive. Writers never wait for each other (not of
the same client either); an expansion waits for that client's writers in flight, and they for
it, as every writer waited for every other under the single lock this replaces.

It used to be a transaction-scoped advisory lock taken by every write before its change rows
and held to COMMIT, which made every writer of the whole service commit one after another.
Creates with two workers on PostgreSQL went faster and cost the database less CPU without it
(``bench/feed_lock.py``; bench/README.md, "Figures behind the code's comments"); and on a
server with more cores the lock would have capped every write of the service at one COMMIT
after another.

The price: a long-running writing transaction anywhere in the PostgreSQL cluster (the horizon
is cluster-wide) holds the feed back; followers wait for it, nothing is missed.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.changes import repository
from app.core.clock import utcnow
from app.core.unit_of_work import CommitContext

_PENDING = "waypoint.pending_changes"
_EXPANSIONS = "waypoint.pending_change_expansions"


def record_change(
    session: AsyncSession,
    *,
    client_id: uuid.UUID,
    object_type: str,
    object_id: uuid.UUID,
    op: str,
    goal_id: uuid.UUID | None = None,
    audience_id: uuid.UUID | None = None,
    shared: bool | None = None,
) -> None:
    """Note a change, written before COMMIT. ``shared`` None: decided from the goal then."""
    session.info.setdefault(_PENDING, []).append(
        {
            "client_id": client_id,
            "object_type": object_type,
            "object_id": object_id,
            "goal_id": goal_id,
            "op": op,
            "audience_id": audience_id,
            "shared": shared,
        }
    )


def record_goal_visibility_change(
    session: AsyncSession, client_id: uuid.UUID, goal_id: uuid.UUID
) -> None:
    """The client's goal turned private or shared: the goal, its steps and reviews change for
    linked therapists (they leave or come back into their sight)."""
    session.info.setdefault(_EXPANSIONS, []).append(("visibility", client_id, goal_id))


def record_goal_encouragements_change(
    session: AsyncSession, client_id: uuid.UUID, goal_id: uuid.UUID
) -> None:
    """The client's goal was deleted: the encouragements about it leave every reader's sight."""
    session.info.setdefault(_EXPANSIONS, []).append(("encouragements", client_id, goal_id))


def record_link_change(
    session: AsyncSession, therapist_id: uuid.UUID, client_id: uuid.UUID
) -> None:
    """A care link started or ended: everything of the client the therapist ever had in sight
    changes for them (the feed then answers upserts or deletions as the link now stands)."""
    session.info.setdefault(_EXPANSIONS, []).append(("link", client_id, therapist_id))


async def write_pending_changes(session: AsyncSession) -> None:
    pending = session.info.pop(_PENDING, None)
    expansions = session.info.pop(_EXPANSIONS, None)
    if not pending and not expansions:
        return
    now = utcnow()
    if expansions:
        expanding = {expansion[1] for expansion in expansions}
        writing = {change["client_id"] for change in pending or ()}
        await repository.lock_clients(session, writing, expanding)
    if pending:
        await repository.insert_changes(session, pending, now)
        notes = [c["object_id"] for c in pending if c["object_type"] == "encouragement"]
        if notes:
            await repository.insert_author_rows(session, notes, now)
    for kind, client_id, other_id in expansions or ():
        if kind == "visibility":
            await repository.insert_goal_visibility_rows(session, other_id, now)
        elif kind == "encouragements":
            await repository.insert_goal_encouragement_rows(session, other_id, now)
        else:
            await repository.insert_link_rows(session, client_id, other_id, now)


async def write_changes(context: CommitContext) -> None:
    """Before-commit hook: the changes the request's services recorded."""
    await write_pending_changes(context.session)
