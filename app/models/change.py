import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, timestamp, uuid


class Change(SQLModel, table=True):
    """The change sequence behind /v1/sync: one row per create, update or delete.

    Rows are written under a database-wide lock held until COMMIT, so ``seq`` follows commit
    order and a follower reading ``seq > cursor`` never skips a change committed later.
    """

    __tablename__ = "changes"
    __table_args__ = (sa.Index("ix_changes_client_id_seq", "client_id", "seq"),)

    seq: int | None = Field(
        default=None, sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    client_id: uuid.UUID = Field(index=False)
    object_type: str = Field(max_length=16)
    object_id: uuid.UUID = Field(index=True)
    goal_id: uuid.UUID | None = None
    op: str = Field(max_length=8)
    at: dt.datetime = timestamp()
