import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, timestamp, uuid


class Change(SQLModel, table=True):
    """The change sequence behind /v1/sync: one row per create, update or delete.

    Rows are written under a database-wide lock held until COMMIT, so ``seq`` follows commit
    order and a follower reading ``seq > cursor`` never skips a change committed later.

    Who a row is for: with ``audience_id`` null, the client ``client_id`` and, when ``shared``,
    the therapists linked to that client at the time they read it; otherwise only the user
    ``audience_id`` (a therapist told of a link that started or ended, or of an encouragement
    they wrote). A row says only *that* an object changed: the feed looks at the object when it
    serves the row and answers an upsert or a deletion (see ``app/sync/feed.py``).
    """

    __tablename__ = "changes"
    __table_args__ = (
        sa.Index("ix_changes_client_id_seq", "client_id", "seq"),
        sa.Index("ix_changes_audience_id_seq", "audience_id", "seq"),
    )

    seq: int | None = Field(
        default=None, sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    client_id: uuid.UUID = Field(index=False)
    object_type: str = Field(max_length=16)
    object_id: uuid.UUID = Field(index=True)
    goal_id: uuid.UUID | None = None
    op: str = Field(max_length=8)
    at: dt.datetime = timestamp()
    audience_id: uuid.UUID | None = None
    shared: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
