"""The statements that write change rows, SQLite's and PostgreSQL's forms side by side.

The columns of a change row are named once (``COLUMNS``); every statement here is built from
that tuple. The rules the rows follow (commit order, the client locks, who reads which row)
are told in ``app.changes.service``.

PostgreSQL writes a transaction's rows with one ``INSERT ... SELECT`` over arrays, under the
shared lock of each client (exclusive first for a client whose data an expansion rereads).
SQLite has no such locks (writers take turns) and writes inline on the transaction's
connection (``app.core.sqlite_inline``): through aiosqlite every statement is a thread hop,
which the hottest write cannot afford (``bench/README.md``).
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.sqlite_inline import sqlite_inline, sqlite_transaction_connection, sqlite_value
from app.models import Change, Encouragement, Goal, Review, Step, User

GOALS = Goal.__table__
STEPS = Step.__table__
REVIEWS = Review.__table__
ENCOURAGEMENTS = Encouragement.__table__
CHANGES = Change.__table__

# A change row as the statements write it; ``at`` is the commit's time, the others are given
# per row (``RECORDED``, the keys of a recorded change).
COLUMNS = ("client_id", "object_type", "object_id", "goal_id", "op", "at", "audience_id", "shared")
RECORDED = tuple(name for name in COLUMNS if name != "at")
# PostgreSQL's array type of each recorded column.
_ARRAY_TYPES = {
    "client_id": "uuid",
    "object_type": "text",
    "object_id": "uuid",
    "goal_id": "uuid",
    "op": "text",
    "audience_id": "uuid",
    "shared": "boolean",
}


def client_lock_key(client_id: uuid.UUID) -> int:
    """The key of the client's lock (64 bits of its id; two clients sharing one only wait
    for each other's expansions)."""
    return int.from_bytes(client_id.bytes[:8], "big", signed=True)


# PostgreSQL. The client locks are taken in key order, so two transactions never wait for
# each other. ``shared`` when not given: a goal's, step's or review's row is for linked
# therapists when the goal is shared as this transaction leaves it (writers hold the goal's
# row lock until COMMIT).
_LOCK_CLIENTS = sa.text(
    "SELECT count(CASE WHEN l.exclusive THEN pg_advisory_xact_lock(l.key) "
    "ELSE pg_advisory_xact_lock_shared(l.key) END) "
    "FROM unnest(CAST(:keys AS bigint[]), CAST(:exclusive AS boolean[])) AS l (key, exclusive)"
)
# What each column of a row is, as PostgreSQL selects it from the arrays ``rows``.
_PG_VALUES = {name: f"rows.{name}" for name in RECORDED} | {
    "at": ":at",
    "shared": "COALESCE(rows.shared, rows.object_type <> 'encouragement' AND EXISTS "
    "(SELECT 1 FROM goals g WHERE g.id = rows.goal_id AND g.visibility = 'shared'))",
}
_PG_INSERT = sa.text(
    f"INSERT INTO changes ({', '.join(COLUMNS)}) "
    f"SELECT {', '.join(_PG_VALUES[name] for name in COLUMNS)} "
    "FROM (SELECT count(pg_advisory_xact_lock_shared(k)) FROM unnest(CAST(:keys AS bigint[])) "
    "AS k) AS lock, unnest("
    + ", ".join(f"CAST(:{name} AS {_ARRAY_TYPES[name]}[])" for name in RECORDED)
    + f") WITH ORDINALITY AS rows ({', '.join(RECORDED)}, n) ORDER BY rows.n"
)

# SQLite: the rows as the driver takes them, and the goals that are shared among theirs.
_SQLITE_INSERT = (
    f"INSERT INTO changes ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)
_SQLITE_SHARED_GOALS = "SELECT id FROM goals WHERE visibility = 'shared' AND id IN ({marks})"


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
        .from_select([name for name in COLUMNS if name != "audience_id"], row)
        .add_cte(insert.cte("created"))
    )


def _postgres(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


async def lock_clients(
    session: AsyncSession, writing: set[uuid.UUID], expanding: set[uuid.UUID]
) -> None:
    """PostgreSQL: the locks of the clients whose data changes, exclusive for the ``expanding``
    ones; taken before an expansion rereads a client's rows. SQLite: nothing (one writer)."""
    if not _postgres(session):
        return
    exclusive = {client_lock_key(client_id) for client_id in expanding}
    keys = sorted(exclusive | {client_lock_key(client_id) for client_id in writing})
    await session.execute(
        _LOCK_CLIENTS, {"keys": keys, "exclusive": [key in exclusive for key in keys]}
    )


async def insert_changes(session: AsyncSession, pending: list[dict], now: object) -> None:
    """The recorded changes (dicts keyed by ``RECORDED``) as rows, in order."""
    if _postgres(session):
        await session.execute(
            _PG_INSERT,
            {
                "at": now,
                "keys": sorted({client_lock_key(c["client_id"]) for c in pending}),
                **{name: [change[name] for change in pending] for name in RECORDED},
            },
        )
        return
    db = await sqlite_transaction_connection(session)
    goal_ids = sorted({c["goal_id"].hex for c in pending if c["shared"] is None and c["goal_id"]})
    shared_goals: set[str] = set()
    if goal_ids:
        sql = _SQLITE_SHARED_GOALS.format(marks=", ".join("?" * len(goal_ids)))
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
        values = {**change, "at": now, "shared": shared}
        rows.append(tuple(sqlite_value(values[name]) for name in COLUMNS))
    sqlite_inline(db, _SQLITE_INSERT, rows)


async def insert_author_rows(
    session: AsyncSession, encouragement_ids: list[uuid.UUID], now: object
) -> None:
    """A row for the therapist who wrote each of these encouragements."""
    await session.execute(_author_rows(ENCOURAGEMENTS.c.id.in_(encouragement_ids), now))


def _author_rows(where: sa.ColumnElement[bool], now: object) -> sa.Insert:
    """A row for the therapist who wrote each of these encouragements (they see what they sent)."""
    e = ENCOURAGEMENTS.c
    return sa.insert(CHANGES).from_select(
        list(COLUMNS),
        sa.select(
            e.client_id, sa.literal("encouragement"), e.id, e.goal_id, sa.literal("upsert"),
            sa.literal(now, CHANGES.c.at.type), e.author_id, sa.false(),
        ).where(where, e.author_role == "therapist", e.author_id.is_not(None)),
    )  # fmt: skip


async def insert_goal_visibility_rows(
    session: AsyncSession, goal_id: uuid.UUID, now: object
) -> None:
    """The goal, its live steps and its reviews, each as a row for linked therapists."""
    at = sa.literal(now, CHANGES.c.at.type)
    upsert = sa.literal("upsert")
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
    for part in parts:
        await session.execute(sa.insert(CHANGES).from_select(list(COLUMNS), part))


async def insert_goal_encouragement_rows(
    session: AsyncSession, goal_id: uuid.UUID, now: object
) -> None:
    """The encouragements about the goal, for their client and for the therapists who wrote
    them."""
    e = ENCOURAGEMENTS.c
    on_goal = e.goal_id == goal_id
    at = sa.literal(now, CHANGES.c.at.type)
    for_client = sa.select(
        e.client_id, sa.literal("encouragement"), e.id, e.goal_id, sa.literal("upsert"), at,
        sa.null(), sa.false(),
    ).where(on_goal)  # fmt: skip
    await session.execute(sa.insert(CHANGES).from_select(list(COLUMNS), for_client))
    await session.execute(_author_rows(on_goal, now))


async def insert_link_rows(
    session: AsyncSession, client_id: uuid.UUID, therapist_id: uuid.UUID, now: object
) -> None:
    """A row addressed to the therapist for every object of the client they ever had in
    sight."""
    c = CHANGES.c
    at = sa.literal(now, CHANGES.c.at.type)
    seen = (
        sa.select(
            c.client_id, c.object_type, c.object_id, sa.null(), sa.literal("upsert"), at,
            sa.literal(therapist_id, c.audience_id.type), sa.false(),
        )
        .where(
            c.client_id == client_id,
            sa.or_(sa.and_(c.audience_id.is_(None), c.shared), c.audience_id == therapist_id),
        )
        .group_by(c.client_id, c.object_type, c.object_id)
    )  # fmt: skip
    await session.execute(sa.insert(CHANGES).from_select(list(COLUMNS), seen))
