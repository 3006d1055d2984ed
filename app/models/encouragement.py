import sqlalchemy as sa

from app.models.base import Field, SQLModel, dt, id_field, timestamp, uuid


class Encouragement(SQLModel, table=True):
    __tablename__ = "encouragements"
    __table_args__ = (
        sa.Index("ix_encouragements_client_id_created_at_id", "client_id", "created_at", "id"),
        sa.Index("ix_encouragements_author_id_created_at_id", "author_id", "created_at", "id"),
    )

    id: uuid.UUID = id_field()
    client_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    author_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    author_role: str | None = Field(default=None, max_length=16)
    goal_id: uuid.UUID | None = Field(
        default=None, foreign_key="goals.id", ondelete="CASCADE", index=True
    )
    step_id: uuid.UUID | None = Field(default=None, foreign_key="steps.id", ondelete="CASCADE")
    message: str = Field(max_length=1000)
    kind: str = Field(default="note", max_length=16)
    read_at: dt.datetime | None = timestamp(nullable=True)
    version: int = 1
    created_at: dt.datetime = timestamp()
    updated_at: dt.datetime = timestamp()
