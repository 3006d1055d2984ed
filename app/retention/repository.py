"""The retention sweep's statements: one batch of a rule's rows deleted, and the sync feed's
horizon raised and read.

A batch is ``DELETE ... WHERE key IN (SELECT key ... LIMIT n)``. On PostgreSQL the inner
select takes its rows ``FOR UPDATE SKIP LOCKED``: two sweeps (two workers, two servers) take
different rows and never wait on each other or on a request that holds one of them. SQLite has
no row locks: its writers take turns, and a batch is one short write transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.reads import fetch_page
from app.models import SyncHorizon


class Batched(Protocol):
    """What a batch needs of a retention rule (``app.retention.rules.Rule``)."""

    @property
    def table(self) -> sa.Table: ...

    @property
    def key(self) -> sa.Column[Any]: ...

    @property
    def oldest_first(self) -> sa.Column[Any] | None: ...

    @property
    def returning(self) -> tuple[sa.Column[Any], ...]: ...


HORIZON = SyncHorizon.__table__
HORIZON_ID = 1


def _batch_statement(rule: Batched, dialect: str, expired: sa.ColumnElement[bool]) -> Any:
    key = rule.key
    if rule.oldest_first is not None:
        # Only the oldest rows are looked at (an index walk of ``limit`` entries), and those
        # of them the rule selects are deleted: no index on the rows' age is needed.
        candidates = sa.select(key).order_by(rule.oldest_first)
        outer = expired
    else:
        candidates = sa.select(key).where(expired)
        outer = sa.true()
    candidates = candidates.limit(sa.bindparam("limit", type_=sa.Integer()))
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    # SQLite: no FOR UPDATE; the write transaction (BEGIN IMMEDIATE) already excludes writers.
    return (
        sa.delete(rule.table)
        .where(key.in_(candidates.scalar_subquery()), outer)
        .returning(key, *rule.returning)
    )


async def delete_batch(
    session: AsyncSession, rule: Batched, expired: sa.ColumnElement[bool], limit: int
) -> Sequence[sa.Row[Any]]:
    """Delete at most ``limit`` rows of the rule's table that ``expired`` selects; the deleted
    rows' key (and the rule's ``returning`` columns)."""
    statement = _batch_statement(rule, session.bind.dialect.name, expired)
    return (await session.execute(statement, {"limit": limit})).all()


_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


async def raise_sync_horizon(
    session: AsyncSession, deleted: Sequence[sa.Row[Any]], now: dt.datetime
) -> None:
    """The horizon becomes the highest ``(tx, seq)`` of ``deleted`` unless it is already
    higher (two sweeps may commit in either order)."""
    if not deleted:
        return
    tx, seq = max((row.tx, row.seq) for row in deleted)
    insert = _INSERT[session.bind.dialect.name](HORIZON).values(
        id=HORIZON_ID, tx=tx, seq=seq, updated_at=now
    )
    statement = insert.on_conflict_do_update(
        index_elements=[HORIZON.c.id],
        set_={"tx": insert.excluded.tx, "seq": insert.excluded.seq,
              "updated_at": insert.excluded.updated_at},
        where=sa.tuple_(HORIZON.c.tx, HORIZON.c.seq)
        < sa.tuple_(insert.excluded.tx, insert.excluded.seq),
    )  # fmt: skip
    await session.execute(statement)


_HORIZON = sa.select(HORIZON.c.tx, HORIZON.c.seq).where(
    HORIZON.c.id == sa.bindparam("id", type_=sa.Integer())
)


async def sync_horizon(session: AsyncSession) -> tuple[int, int] | None:
    """The highest ``(tx, seq)`` deleted from the change rows, or None while none was."""
    rows = await fetch_page(session, _HORIZON, {"id": HORIZON_ID})
    return (int(rows[0][0]), int(rows[0][1])) if rows else None
