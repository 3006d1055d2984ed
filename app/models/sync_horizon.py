import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, timestamp


class SyncHorizon(SQLModel, table=True):
    """Where the sync feed's retained history begins: the highest ``(tx, seq)`` of the change
    rows the retention sweep has deleted (one row, ``id`` 1; none until the first deletion).

    A follower whose cursor is before it may have missed a deleted row and must start over;
    one at or after it has missed nothing. Kept in the database, raised in the transaction of
    each deletion, so every worker of every server answers a cursor alike."""

    __tablename__ = "sync_horizon"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    tx: int = Field(sa_type=sa.BigInteger())
    seq: int = Field(sa_type=sa.BigInteger())
    updated_at: dt.datetime = timestamp()
