"""The sync feed's statements: snapshot pages, the feed's position, the change rows a caller
follows and the documents of the objects they name; SQLite's and PostgreSQL's forms side by
side, each built once per shape (``lru_cache``) and run at the driver level (``fetch_page``).

Where the databases differ, and why (``app.sync.feed`` tells the feed's rules):

* Order. PostgreSQL serves rows in ``(tx, seq)`` order below the *horizon* (the oldest
  transaction still running, ``_horizon``); SQLite's writers take turns, ``tx`` is 0 and
  ``seq`` alone is commit order. So an entry's number is ``tx`` on PostgreSQL and ``seq`` on
  SQLite (``entry_number``).
* Ids. A document's id is written by the database: ``CAST(id AS text)`` on PostgreSQL, the
  32 hex digits made into the API's form on SQLite (``app.core.document_sql.sqlite_uuid``).
* Many ids. PostgreSQL binds one array (the statement's text never changes), SQLite an
  expanding ``IN``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.document_sql import sqlite_uuid
from app.core.reads import fetch_page
from app.encouragements.service import encouragements_readable_by
from app.goals.access import goals_readable_by, linked_clients
from app.models import Change, Encouragement, Goal, Review, Step
from app.resources import RESOURCES

CHANGES = Change.__table__
# The object types (in the feed's snapshot order) and the column that says whose each is.
RESOURCE_OWNER = {
    "goal": Goal.__table__.c.client_id,
    "step": Step.__table__.c.client_id,
    "review": Review.__table__.c.client_id,
    "encouragement": Encouragement.__table__.c.client_id,
}


def _readable_by(kind: str, is_client: bool, caller: Any) -> sa.ColumnElement[bool]:
    """The visibility rule of each type (the resource's statement already joins the goal and
    keeps only live ones).

    A client sees their own objects: said on the object's own ``client_id`` (a step's or a
    review's is always its goal's), not on the joined goal's, so a snapshot page walks the
    object's ``(client_id, id)`` or primary key index with one goal lookup per row. Said on
    the goal, PostgreSQL estimated the join as if a client's goals and steps were unrelated
    (a tenth of the rows), hashed all of the big benchmark client's goals for every page and
    sorted, several times slower (bench/README.md, "Figures behind the code's comments")."""
    if kind == "encouragement":
        return encouragements_readable_by(is_client, caller)
    if is_client:
        return RESOURCE_OWNER[kind] == caller
    return goals_readable_by(is_client, caller)


def _id_text(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[str]:
    """The id as the API writes it, made by the database (no per-row conversion)."""
    if dialect == "sqlite":
        return sa.literal_column(sqlite_uuid(f"{column.table.name}.{column.name}"), sa.String())
    return sa.cast(column, sa.Text())


def _documents(kind: str, dialect: str) -> sa.Select[Any]:
    """The resource's live objects as (document JSON text, id text), rendered by the database
    from the same declaration as the object's own GET."""
    resource = RESOURCES[kind]
    return resource.select.with_only_columns(
        resource.sql_document(dialect).label("doc"),
        _id_text(resource.id_column, dialect).label("id"),
        maintain_column_froms=True,
    )


@lru_cache(maxsize=64)
def _snapshot_statement(dialect: str, kind: str, is_client: bool) -> sa.Select[Any]:
    """A snapshot page of one type: what ``:caller`` may see with an id after ``:after``, in
    id order, ``:limit`` at most. Built once per shape; one statement per page of a type."""
    resource = RESOURCES[kind]
    id_type = resource.id_column.type
    caller = sa.bindparam("caller", type_=id_type)
    return (
        _documents(kind, dialect)
        .where(
            _readable_by(kind, is_client, caller),
            resource.id_column > sa.bindparam("after", type_=id_type),
        )
        .order_by(resource.id_column)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )


@lru_cache(maxsize=64)
def _visible_statement(dialect: str, kind: str, is_client: bool) -> sa.Select[Any]:
    """The documents of the objects ``:ids`` that ``:caller`` may see now, in one statement (so
    the visibility and the document are read at the same instant)."""
    resource = RESOURCES[kind]
    id_type = resource.id_column.type
    if dialect == "postgresql":  # one array parameter: the statement's text never changes
        in_ids = resource.id_column == sa.any_(sa.bindparam("ids", type_=ARRAY(id_type)))
    else:
        in_ids = resource.id_column.in_(sa.bindparam("ids", expanding=True))
    caller = sa.bindparam("caller", type_=id_type)
    return _documents(kind, dialect).where(in_ids, _readable_by(kind, is_client, caller))


def _horizon() -> sa.ColumnElement[int]:
    """PostgreSQL: the oldest transaction id still running as the statement began (every
    lower one has ended), as a BIGINT like ``changes.tx``."""
    xmin = sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot())
    return sa.cast(sa.cast(xmin, sa.Text()), sa.BigInteger())


_FEED_POSITION = {
    "postgresql": sa.select(_horizon(), sa.literal_column("0")),
    "sqlite": sa.select(sa.literal_column("0"), sa.func.coalesce(sa.func.max(CHANGES.c.seq), 0)),
}


@lru_cache(maxsize=64)
def _follow_statement(dialect: str, is_client: bool, types: tuple[str, ...]) -> sa.Select[Any]:
    """The change rows after ``(:tx, :seq)`` that reach ``:caller`` (on PostgreSQL only below
    the horizon), in feed order, built once per database, role and scope set (the hot path of
    a follower with nothing new: one indexed query)."""
    c = CHANGES.c
    caller = sa.bindparam("caller", type_=c.client_id.type)
    if is_client:
        reach = sa.and_(c.client_id == caller, c.audience_id.is_(None))
    else:
        reach = sa.or_(
            sa.and_(c.audience_id.is_(None), c.shared, c.client_id.in_(linked_clients(caller))),
            c.audience_id == caller,
        )
    tx, seq = sa.bindparam("tx", type_=c.tx.type), sa.bindparam("seq", type_=c.seq.type)
    if dialect == "postgresql":
        after = sa.tuple_(c.tx, c.seq) > sa.tuple_(tx, seq)
    else:
        # SQLite: writers take turns and every row's ``tx`` is 0 (the column's default there),
        # so the order is ``seq``'s. Said as a row value, SQLite walked the index on
        # ``(client_id, tx)`` only and filtered every change of the client: a follower of
        # the big benchmark client with nothing new was served a tenth as fast (bench/README.md,
        # "Figures behind the code's comments").
        after = sa.and_(c.tx == tx, c.seq > seq)
    query = sa.select(c.tx, c.seq, c.object_type, c.object_id).where(after, reach)
    if dialect == "postgresql":
        query = query.where(c.tx < _horizon())
    if len(types) < len(RESOURCE_OWNER):  # constants in the SQL: the statement is compiled once
        query = query.where(sa.or_(*(c.object_type == sa.literal_column(f"'{t}'") for t in types)))
    return query.order_by(c.tx, c.seq).limit(sa.bindparam("limit", type_=sa.Integer()))


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name


def entry_number(session: AsyncSession, tx: int, seq: int) -> int:
    """The ``seq`` an entry at the feed position ``(tx, seq)`` shows: the transaction's id on
    PostgreSQL, the row's number on SQLite."""
    return tx if _dialect(session) == "postgresql" else seq


async def feed_position(session: AsyncSession) -> tuple[int, int]:
    """``(tx, seq)`` where a new follower starts: every row after it may be one its snapshot
    did not see."""
    [(tx, seq)] = await fetch_page(session, _FEED_POSITION[_dialect(session)], {})
    return tx, seq


async def snapshot_rows(
    session: AsyncSession, kind: str, is_client: bool, params: dict[str, Any]
) -> Sequence[Sequence[Any]]:
    """A snapshot page of one type as ``(document, id)`` text pairs (``_snapshot_statement``)."""
    statement = _snapshot_statement(_dialect(session), kind, is_client)
    return await fetch_page(session, statement, params)


async def follow_rows(
    session: AsyncSession, is_client: bool, types: tuple[str, ...], params: dict[str, Any]
) -> Sequence[Sequence[Any]]:
    """The change rows after the cursor as ``(tx, seq, type, id)`` (``_follow_statement``)."""
    statement = _follow_statement(_dialect(session), is_client, types)
    return await fetch_page(session, statement, params)


async def visible_documents(
    session: AsyncSession, kind: str, is_client: bool, ids: list[uuid.UUID], caller: uuid.UUID
) -> Sequence[Sequence[Any]]:
    """``(document, id)`` of the objects ``ids`` the caller may see now."""
    statement = _visible_statement(_dialect(session), kind, is_client)
    return await fetch_page(session, statement, {"ids": ids, "caller": caller})
