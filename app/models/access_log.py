import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, id_field, timestamp, uuid


class AccessLogEntry(SQLModel, table=True):
    """Someone other than the client read or changed the client's data."""

    __tablename__ = "access_log"
    __table_args__ = (sa.Index("ix_access_log_client_id_at_id", "client_id", "at", "id"),)

    id: uuid.UUID = id_field()
    client_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    actor_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    actor_role: str = Field(max_length=16)
    action: str = Field(max_length=8)
    object_type: str = Field(max_length=16)
    object_id: uuid.UUID
    at: dt.datetime = timestamp()
