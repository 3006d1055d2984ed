"""The change sequence: every create, update and delete of a client's data, in commit order.

Services call ``record_change``; the rows are written just before COMMIT (on PostgreSQL a
new goal's row goes with the goal's own INSERT, see ``with_goal_change``). Each row carries
``tx``, the writing transaction's id on PostgreSQL (the column's default) and 0 on SQLite, and
the feed (``app/sync/feed.py``) serves a follower rows in ``(tx, seq)`` order.

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
Creates with two workers on PostgreSQL (``bench/feed_lock.py``: wrk at 50 connections on the
bench data, this code against main's with the lock, interleaved, 3 rounds of 10 s): 617 / 658
/ 653 rps against 555 / 612 / 539, a median per-round ratio of 1.11 (+11 %; the issue's
estimate was 12 %), PostgreSQL CPU 0.37 against 0.52 ms per create (median round); and on a
server with more cores the lock would have capped every write of the service at one COMMIT
after another.

The price: a long-running writing transaction anywhere in the PostgreSQL cluster (the horizon
is cluster-wide) holds the feed back; followers wait for it, nothing is missed.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.sqlite_inline import sqlite_inline, sqlite_transaction_connection, sqlite_value
from app.core.unit_of_work import CommitContext
from app.models import Change, Encouragement, Goal, Review, Step, User

_PENDING = "waypoint.pending_changes"
_EXPANSIONS = "waypoint.pending_change_expansions"
_COLUMNS = ("client_id", "object_type", "object_id", "goal_id", "op", "audience_id", "shared")
# ``shared`` when not given: a goal's, step's or review's row is for linked therapists when the
# goal is shared as this transaction leaves it (writers hold the goal's row lock until COMMIT).
# The client locks are taken in key order, so two transactions never wait for each other.
_LOCK_CLIENTS = sa.text(
    "SELECT count(CASE WHEN l.exclusive THEN pg_advisory_xact_lock(l.key) "
    "ELSE pg_advisory_xact_lock_shared(l.key) END) "
    "FROM unnest(CAST(:keys AS bigint[]), CAST(:exclusive AS boolean[])) AS l (key, exclusive)"
)
_INSERT = sa.text(
    "INSERT INTO changes (client_id, object_type, object_id, goal_id, op, at, audience_id, shared) "
    "SELECT rows.client_id, rows.object_type, rows.object_id, rows.goal_id, rows.op, :at, "
    "rows.audience_id, COALESCE(rows.shared, rows.object_type <> 'encouragement' AND EXISTS "
    "(SELECT 1 FROM goals g WHERE g.id = rows.goal_id AND g.visibility = 'shared')) "
    "FROM (SELECT count(pg_advisory_xact_lock_shared(k)) FROM unnest(CAST(:keys AS bigint[])) "
    "AS k) AS lock, unnest(CAST(:client_id AS uuid[]), CAST(:object_type AS text[]), "
    "CAST(:object_id AS uuid[]), CAST(:goal_id AS uuid[]), CAST(:op AS text[]), "
    "CAST(:audience_id AS uuid[]), CAST(:shared AS boolean[])) "
    "WITH ORDINALITY AS rows (client_id, object_type, object_id, goal_id, op, audience_id, "
    "shared, n) "
    "ORDER BY rows.n"
)


def client_lock_key(client_id: uuid.UUID) -> int:
    """The key of the client's lock (64 bits of its id; two clients sharing one only wait
    for each other's expansions)."""
    return int.from_bytes(client_id.bytes[:8], "big", signed=True)


def with_goal_change(insert: sa.Insert) -> sa.Insert:
    """PostgreSQL: ``insert`` of one new goal (its parameters named after its columns) and the
    goal's ``upsert`` change as one statement: one round trip fewer on the hottest write. The
    client's lock is taken shared, as the before-commit hook takes it, once the client's
    ``users`` row is held (``FOR KEY SHARE``, as the foreign key check would hold it). Extra
    parameters: ``change_lock`` (``client_lock_key`` of the client) and ``change_at``."""
    changes = Change.__table__
    users = User.__table__
    # The client's row first, then the client's lock (docs/hardening-concurrency.md): a
    # subquery with a locking clause is run as its own step, before the lock is asked for.
    owner = (
        sa.select(users.c.id)
        .where(users.c.id == sa.bindparam("client_id", type_=users.c.id.type))
        .with_for_update(read=True, key_share=True)
        .subquery("owner")
    )
    lock = (
        sa.select(
            sa.func.pg_advisory_xact_lock_shared(sa.bindparam("change_lock", type_=sa.BigInteger()))
        )
        .select_from(owner)
        .subquery("lock")
    )
    row = sa.select(
        sa.bindparam("client_id", type_=changes.c.client_id.type),
        sa.literal("goal"),
        sa.bindparam("id", type_=changes.c.object_id.type),
        sa.bindparam("id", type_=changes.c.goal_id.type),
        sa.literal("upsert"),
        sa.bindparam("change_at", type_=changes.c.at.type),
        sa.bindparam("visibility", type_=sa.String()) == sa.literal("shared"),
    ).select_from(lock)
    return (
        sa.insert(changes)
        .from_select(
            ["client_id", "object_type", "object_id", "goal_id", "op", "at", "shared"], row
        )
        .add_cte(insert.cte("created"))
    )


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
    postgres = session.bind.dialect.name == "postgresql"
    if expansions and postgres:
        await _lock_clients(session, pending or [], expansions)
    if pending and postgres:
        await session.execute(
            _INSERT,
            {
                "at": now,
                "keys": sorted({client_lock_key(c["client_id"]) for c in pending}),
                **{name: [change[name] for change in pending] for name in _COLUMNS},
            },
        )
    elif pending:
        await _sqlite_insert(session, pending, now)
    if pending:
        notes = [c["object_id"] for c in pending if c["object_type"] == "encouragement"]
        if notes:
            await session.execute(_author_rows(ENCOURAGEMENTS.c.id.in_(notes), now))
    for expansion in expansions or ():
        for statement in _expand(expansion, now):
            await session.execute(statement)


async def _lock_clients(session: AsyncSession, pending: list[dict], expansions: list) -> None:
    """The locks of the clients whose data changes: exclusive for an expansion's client."""
    exclusive = {client_lock_key(expansion[1]) for expansion in expansions}
    keys = sorted(exclusive | {client_lock_key(c["client_id"]) for c in pending})
    await session.execute(
        _LOCK_CLIENTS, {"keys": keys, "exclusive": [key in exclusive for key in keys]}
    )


GOALS = Goal.__table__
STEPS = Step.__table__
REVIEWS = Review.__table__
ENCOURAGEMENTS = Encouragement.__table__
CHANGES = Change.__table__
_INSERT_COLUMNS = ["client_id", "object_type", "object_id", "goal_id", "op", "at"]
_INSERT_COLUMNS += ["audience_id", "shared"]


# SQLite: run inline on the transaction's connection (``app.core.sqlite_inline``): through
# aiosqlite the change row cost a goal create three thread hops, its rps 0.58 of a bare
# insert's on the bench (target 0.60).
_SQLITE_INSERT = (
    "INSERT INTO changes (client_id, object_type, object_id, goal_id, op, at, audience_id, "
    "shared) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


async def _sqlite_insert(session: AsyncSession, pending: list[dict], now: object) -> None:
    db = await sqlite_transaction_connection(session)
    goal_ids = sorted({c["goal_id"].hex for c in pending if c["shared"] is None and c["goal_id"]})
    shared_goals: set[str] = set()
    if goal_ids:
        marks = ", ".join("?" * len(goal_ids))
        sql = f"SELECT id FROM goals WHERE visibility = 'shared' AND id IN ({marks})"
        shared_goals = {row[0] for row in sqlite_inline(db, sql, tuple(goal_ids))}
    rows = []
    for change in pending:
        shared = change["shared"]
        if shared is None:
            shared = (
                change["object_type"] != "encouragement"
                and change["goal_id"] is not None
                and change["goal_id"].hex in shared_goals
            )
        values = (*(change[name] for name in _COLUMNS[:5]), now, change["audience_id"], shared)
        rows.append(tuple(sqlite_value(value) for value in values))
    sqlite_inline(db, _SQLITE_INSERT, rows)


def _author_rows(where: sa.ColumnElement[bool], now: object) -> sa.Insert:
    """A row for the therapist who wrote each of these encouragements (they see what they sent)."""
    e = ENCOURAGEMENTS.c
    return sa.insert(CHANGES).from_select(
        _INSERT_COLUMNS,
        sa.select(
            e.client_id, sa.literal("encouragement"), e.id, e.goal_id, sa.literal("upsert"),
            sa.literal(now, CHANGES.c.at.type), e.author_id, sa.false(),
        ).where(where, e.author_role == "therapist", e.author_id.is_not(None)),
    )  # fmt: skip


def _expand(expansion: tuple, now: object) -> list[sa.Insert]:
    at = sa.literal(now, CHANGES.c.at.type)
    upsert = sa.literal("upsert")
    kind = expansion[0]
    if kind == "visibility":
        goal_id = expansion[2]
        owner = sa.select(GOALS.c.client_id).where(GOALS.c.id == goal_id).scalar_subquery()
        parts = [
            sa.select(
                GOALS.c.client_id, sa.literal("goal"), GOALS.c.id, GOALS.c.id, upsert, at,
                sa.null(), sa.true(),
            ).where(GOALS.c.id == goal_id),
            sa.select(
                owner, sa.literal("step"), STEPS.c.id, STEPS.c.goal_id, upsert, at, sa.null(),
                sa.true(),
            ).where(STEPS.c.goal_id == goal_id, STEPS.c.deleted_at.is_(None)),
            sa.select(
                owner, sa.literal("review"), REVIEWS.c.id, REVIEWS.c.goal_id, upsert, at,
                sa.null(), sa.true(),
            ).where(REVIEWS.c.goal_id == goal_id),
        ]  # fmt: skip
        return [sa.insert(CHANGES).from_select(_INSERT_COLUMNS, part) for part in parts]
    if kind == "encouragements":
        e = ENCOURAGEMENTS.c
        on_goal = e.goal_id == expansion[2]
        return [
            sa.insert(CHANGES).from_select(
                _INSERT_COLUMNS,
                sa.select(
                    e.client_id, sa.literal("encouragement"), e.id, e.goal_id, upsert, at,
                    sa.null(), sa.false(),
                ).where(on_goal),
            ),
            _author_rows(on_goal, now),
        ]  # fmt: skip
    _, client_id, therapist_id = expansion
    c = CHANGES.c
    seen = (
        sa.select(
            c.client_id, c.object_type, c.object_id, sa.null(), upsert, at,
            sa.literal(therapist_id, c.audience_id.type), sa.false(),
        )
        .where(
            c.client_id == client_id,
            sa.or_(sa.and_(c.audience_id.is_(None), c.shared), c.audience_id == therapist_id),
        )
        .group_by(c.client_id, c.object_type, c.object_id)
    )  # fmt: skip
    return [sa.insert(CHANGES).from_select(_INSERT_COLUMNS, seen)]


async def write_changes(context: CommitContext) -> None:
    """Before-commit hook: the changes the request's services recorded."""
    await write_pending_changes(context.session)
