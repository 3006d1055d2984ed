import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, id_field, json_field, timestamp, uuid


class IdempotencyKey(SQLModel, table=True):
    """A POST's first response, replayed for the same key and body within the TTL."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("user_id", "key"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    key: str = Field(max_length=255)
    fingerprint: str = Field(max_length=64)
    status_code: int | None = None
    response_body: str | None = Field(default=None, sa_type=sa.Text)
    response_headers: dict | None = json_field()
    created_at: dt.datetime = timestamp(index=True)
