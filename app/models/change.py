import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from app.models.base import Field, SQLModel, dt, timestamp, uuid


class _WritingTx(ColumnElement[int]):
    """The default of ``changes.tx``: the writing transaction's id on PostgreSQL, 0 on SQLite
    (the migration 0006 sets the same per database)."""

    inherit_cache = True


@compiles(_WritingTx)
def _writing_tx_sqlite(element: _WritingTx, compiler: object, **kw: object) -> str:
    return "0"


@compiles(_WritingTx, "postgresql")
def _writing_tx_postgresql(element: _WritingTx, compiler: object, **kw: object) -> str:
    return "(pg_current_xact_id()::text::bigint)"


class Change(SQLModel, table=True):
    """The change sequence behind /v1/sync: one row per create, update or delete.

    ``tx`` is the writing transaction's id on PostgreSQL (the column's default, so no insert
    path can forget it) and 0 on SQLite; the feed serves rows in ``(tx, seq)`` order, on
    PostgreSQL only below the oldest transaction still running, so a follower never skips a
    change committed later (``app/changes/service.py``).

    Who a row is for: with ``audience_id`` null, the client ``client_id`` and, when ``shared``,
    the therapists linked to that client at the time they read it; otherwise only the user
    ``audience_id`` (a therapist told of a link that started or ended, or of an encouragement
    they wrote). A row says only *that* an object changed: the feed looks at the object when it
    serves the row and answers an upsert or a deletion (see ``app/sync/feed.py``).
    """

    __tablename__ = "changes"
    __table_args__ = (
        sa.Index("ix_changes_client_id_tx_seq", "client_id", "tx", "seq"),
        sa.Index("ix_changes_audience_id_tx_seq", "audience_id", "tx", "seq"),
    )

    seq: int | None = Field(
        default=None, sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    tx: int | None = Field(
        default=None,
        nullable=False,
        sa_type=sa.BigInteger(),
        sa_column_kwargs={"server_default": _WritingTx()},
    )
    client_id: uuid.UUID = Field(index=False)
    object_type: str = Field(max_length=16)
    object_id: uuid.UUID = Field(index=True)
    goal_id: uuid.UUID | None = None
    op: str = Field(max_length=8)
    at: dt.datetime = timestamp()
    audience_id: uuid.UUID | None = None
    shared: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
